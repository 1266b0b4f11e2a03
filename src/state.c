/* state.c: the optimizer state behind the external pointer.
 *
 * Owns: the named R list kept in the pointer's `prot` slot (its fields:
 * state_layout.h) and the small C struct at the pointer's address that
 * caches raw pointers into that list. The R list is the truth: serialize()
 * keeps it while it turns the address into NULL, so state_get() rebuilds the
 * cache from it, after checking every part, and a restored optimizer
 * continues. A list of an older format (rmsprop 0.1.0) is migrated then; a
 * newer or unknown one is refused with a classed error naming both formats.
 * The C struct also points to what the last step proved about its results
 * (`known`, rmsprop.h; used by step.c), kept alive by a weak reference on
 * the pointer and never saved.
 * Must never: hand out the state vectors themselves (only copies), keep
 * malloc'd memory anywhere but the address, or trust a list it did not
 * check (a saved file can be edited).
 */
#include "calls.h"
#include <math.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define RMS_NAME(e, s) s,
static const char *state_names[] = {STATE_FIELDS(RMS_NAME) ""};
static const char *config_names[] = {CONFIG_FIELDS(RMS_NAME) ""};
#undef RMS_NAME

/* The tag of every state pointer; the symbol is looked up once (install()
 * hashes and compares the name, on every step otherwise). */
static SEXP state_tag(void) {
  static SEXP tag = NULL;
  if (tag == NULL) tag = Rf_install("rmsprop_state");
  return tag;
}

/* Raise a classed R condition from C through the package's own
 * rmsprop_abort(), so C-side refusals look like every other error of the
 * package. The call is built with every piece protected. */
void rms_abort(const char *kind, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  SEXP ns = PROTECT(R_FindNamespace(PROTECT(Rf_mkString("rmsprop"))));
  SEXP k = PROTECT(Rf_mkString(kind));
  SEXP m = PROTECT(Rf_mkString(msg));
  SEXP call = PROTECT(Rf_lang3(Rf_install("rmsprop_abort"), k, m));
  Rf_eval(call, ns);
  UNPROTECT(5);
  Rf_error("%s", msg); /* not reached: rmsprop_abort() always signals */
}

/* Number of C structs alive: lets the tests see that finalizers run. */
static int live_states = 0;

static void state_finalize(SEXP ptr) {
  rms_state *st = (rms_state *) R_ExternalPtrAddr(ptr);
  if (st == NULL) return;
  free(st);
  live_states--;
  R_ClearExternalPtr(ptr);
}

static int is_real_of_length(SEXP x, R_xlen_t n) {
  return TYPEOF(x) == REALSXP && XLENGTH(x) == n && ATTRIB(x) == R_NilValue;
}

/* The names attribute of x equals `names` (count and order). */
static int has_names(SEXP x, const char **names, int n) {
  SEXP nm = Rf_getAttrib(x, R_NamesSymbol);
  if (TYPEOF(nm) != STRSXP || XLENGTH(nm) != n) return 0;
  for (int i = 0; i < n; i++)
    if (strcmp(CHAR(STRING_ELT(nm, i)), names[i]) != 0) return 0;
  return 1;
}

/* A named double vector holding the configuration: only its names as
 * attributes, every name in CONFIG_FIELDS order. */
static int is_config_vector(SEXP x) {
  if (TYPEOF(x) != REALSXP || XLENGTH(x) != CFG_LENGTH) return 0;
  for (SEXP a = ATTRIB(x); a != R_NilValue; a = CDR(a))
    if (TAG(a) != R_NamesSymbol) return 0;
  return has_names(x, config_names, CFG_LENGTH);
}

/* The format a saved list was written in: STATE_FORMAT, 1 for 0.1.0's
 * unnamed list of nine, or what its `format` field says; -1 if none. */
static int state_format(SEXP list) {
  if (TYPEOF(list) != VECSXP) return -1;
  SEXP nm = Rf_getAttrib(list, R_NamesSymbol);
  if (nm == R_NilValue) return XLENGTH(list) == 9 ? 1 : -1;
  /* The list's own length too: R keeps names as long as the list, but an
   * edited file can pair a names attribute with a shorter (empty) list. */
  if (TYPEOF(nm) != STRSXP || XLENGTH(nm) < 1 || XLENGTH(list) < 1 ||
      strcmp(CHAR(STRING_ELT(nm, 0)), "format") != 0)
    return -1;
  SEXP f = VECTOR_ELT(list, 0);
  if (TYPEOF(f) != INTSXP || XLENGTH(f) != 1 || INTEGER(f)[0] == NA_INTEGER) return -1;
  return INTEGER(f)[0];
}

/* A slot is present exactly when the configuration asks for it. */
static double *slot_pointer(SEXP list, int which, int wanted, R_xlen_t total, const char **bad) {
  SEXP x = VECTOR_ELT(list, which);
  if (!wanted) {
    if (x != R_NilValue) *bad = "a slot that the configuration does not use";
    return NULL;
  }
  if (!is_real_of_length(x, total)) {
    *bad = "a slot of the wrong type or length";
    return NULL;
  }
  return REAL(x);
}

/* Check a list of the current format and point the cache into it; returns
 * NULL when all is well, otherwise what is wrong (the caller raises). */
static const char *state_sync(rms_state *st, SEXP list) {
  const char *bad = NULL;
  if (TYPEOF(list) != VECSXP || XLENGTH(list) != ST_LENGTH ||
      !has_names(list, state_names, ST_LENGTH))
    return "not a state list";
  if (state_format(list) != STATE_FORMAT) return "a state list of another format";
  SEXP cfg = VECTOR_ELT(list, ST_CONFIG), it = VECTOR_ELT(list, ST_ITERATIONS);
  SEXP last = VECTOR_ELT(list, ST_LAST_LR);
  if (!is_config_vector(cfg)) return "a malformed configuration";
  if (!is_real_of_length(it, 1) || !R_FINITE(REAL(it)[0]) || REAL(it)[0] < 0 ||
      REAL(it)[0] != floor(REAL(it)[0]))
    return "a malformed iteration counter";
  if (!is_real_of_length(last, 1) || (!ISNA(REAL(last)[0]) &&
      !(R_FINITE(REAL(last)[0]) && REAL(last)[0] >= 0)))
    return "a malformed last learning rate";
  for (int i = 0; i < CFG_LENGTH; i++) {
    if (!R_FINITE(REAL(cfg)[i])) return "a non-finite configuration value";
    st->cfg[i] = REAL(cfg)[i];
  }
  /* The ranges optimizer_rmsprop() allows (0 = "not set"): a saved file can
   * be edited, and a value outside them could make the kernels misbehave. */
  const double *c = st->cfg;
  if (c[CFG_RHO] < 0 || c[CFG_RHO] > 1 || c[CFG_MOMENTUM] < 0 || c[CFG_MOMENTUM] > 1 ||
      c[CFG_EMA_MOMENTUM] < 0 || c[CFG_EMA_MOMENTUM] > 1 || !(c[CFG_EPSILON] > 0) ||
      (c[CFG_CENTERED] != 0 && c[CFG_CENTERED] != 1) || (c[CFG_USE_EMA] != 0 && c[CFG_USE_EMA] != 1) ||
      c[CFG_WEIGHT_DECAY] < 0 || c[CFG_CLIPNORM] < 0 || c[CFG_CLIPVALUE] < 0 ||
      c[CFG_GLOBAL_CLIPNORM] < 0 || c[CFG_LOSS_SCALE] < 0 ||
      c[CFG_EMA_OVERWRITE] < 0 || c[CFG_EMA_OVERWRITE] != floor(c[CFG_EMA_OVERWRITE]) ||
      (c[CFG_ACCUM_STEPS] != 0 && c[CFG_ACCUM_STEPS] < 2) ||
      c[CFG_ACCUM_STEPS] != floor(c[CFG_ACCUM_STEPS]))
    return "a configuration value out of range";
  st->iterations = REAL(it);
  st->last_lr = REAL(last);
  SEXP off = VECTOR_ELT(list, ST_OFFSETS), mask = VECTOR_ELT(list, ST_DECAY_MASK);
  st->built = off != R_NilValue;
  st->nvar = st->total = 0;
  st->offsets = NULL;
  st->decay_mask = NULL;
  if (st->built) {
    if (TYPEOF(off) != REALSXP || XLENGTH(off) < 2 || ATTRIB(off) != R_NilValue)
      return "malformed offsets";
    R_xlen_t nvar = XLENGTH(off) - 1;
    const double *o = REAL(off);
    if (o[0] != 0) return "malformed offsets";
    for (R_xlen_t i = 0; i < nvar; i++)
      if (!(o[i + 1] >= o[i]) || o[i + 1] != floor(o[i + 1]) || o[i + 1] > 4.5e15)
        return "malformed offsets";
    if (TYPEOF(mask) != INTSXP || XLENGTH(mask) != nvar) return "a malformed weight-decay mask";
    st->nvar = nvar;
    st->total = (R_xlen_t) o[nvar];
    st->offsets = o;
    st->decay_mask = INTEGER(mask);
  } else if (mask != R_NilValue) {
    return "a weight-decay mask without variables";
  }
  int b = st->built;
  st->velocity = slot_pointer(list, ST_VELOCITY, b, st->total, &bad);
  st->momentum = slot_pointer(list, ST_MOMENTUM, b && st->cfg[CFG_MOMENTUM] > 0, st->total, &bad);
  st->average_gradient =
    slot_pointer(list, ST_AVERAGE_GRADIENT, b && st->cfg[CFG_CENTERED] != 0, st->total, &bad);
  st->ema = slot_pointer(list, ST_EMA, b && st->cfg[CFG_USE_EMA] != 0, st->total, &bad);
  st->accumulator =
    slot_pointer(list, ST_ACCUMULATOR, b && st->cfg[CFG_ACCUM_STEPS] != 0, st->total, &bad);
  return bad;
}

/* An empty state list of the current format (every field NULL but format). */
static SEXP new_state_list(void) {
  SEXP list = PROTECT(Rf_allocVector(VECSXP, ST_LENGTH));
  SEXP nm = PROTECT(Rf_allocVector(STRSXP, ST_LENGTH));
  for (int i = 0; i < ST_LENGTH; i++) SET_STRING_ELT(nm, i, Rf_mkChar(state_names[i]));
  Rf_setAttrib(list, R_NamesSymbol, nm);
  SET_VECTOR_ELT(list, ST_FORMAT, Rf_ScalarInteger(STATE_FORMAT));
  UNPROTECT(2);
  return list;
}

static SEXP named_config(SEXP values) {
  SEXP cfg = PROTECT(Rf_allocVector(REALSXP, CFG_LENGTH));
  SEXP nm = PROTECT(Rf_allocVector(STRSXP, CFG_LENGTH));
  for (int i = 0; i < CFG_LENGTH; i++) {
    REAL(cfg)[i] = REAL(values)[i];
    SET_STRING_ELT(nm, i, Rf_mkChar(config_names[i]));
  }
  Rf_setAttrib(cfg, R_NamesSymbol, nm);
  UNPROTECT(2);
  return cfg;
}

/* Format 1 (0.1.0): an unnamed list of nine, the configuration an unnamed
 * vector in the same order as today's CONFIG_FIELDS. Its vectors are reused
 * as they are; the sync that follows checks them. */
static SEXP migrate_v1(SEXP old) {
  static const int from[] = {ST_CONFIG, ST_ITERATIONS, ST_OFFSETS, ST_DECAY_MASK, ST_VELOCITY,
                             ST_MOMENTUM, ST_AVERAGE_GRADIENT, ST_EMA, ST_ACCUMULATOR};
  SEXP list = PROTECT(new_state_list());
  for (int i = 0; i < 9; i++) SET_VECTOR_ELT(list, from[i], VECTOR_ELT(old, i));
  SEXP cfg = VECTOR_ELT(old, 0);
  if (TYPEOF(cfg) == REALSXP && XLENGTH(cfg) == CFG_LENGTH && ATTRIB(cfg) == R_NilValue)
    SET_VECTOR_ELT(list, ST_CONFIG, named_config(cfg));
  SET_VECTOR_ELT(list, ST_LAST_LR, Rf_ScalarReal(NA_REAL));
  UNPROTECT(1);
  return list;
}

static void check_is_state_pointer(SEXP ptr) {
  if (TYPEOF(ptr) != EXTPTRSXP || R_ExternalPtrTag(ptr) != state_tag())
    rms_abort("state", "not an optimizer state pointer");
}

/* The one getter: every entry point reaches the state through it. */
rms_state *state_get(SEXP ptr) {
  check_is_state_pointer(ptr);
  rms_state *st = (rms_state *) R_ExternalPtrAddr(ptr);
  if (st != NULL) return st;
  /* NULL address: the object came back from serialize(); rebuild the cache,
   * migrating a list of an older format first. */
  SEXP list = R_ExternalPtrProtected(ptr);
  int format = state_format(list);
  if (format > STATE_FORMAT) {
    rms_abort("format", "this optimizer was saved in state format %d by a newer rmsprop; "
              "this version reads formats 1 to %d. Update rmsprop to load it.",
              format, STATE_FORMAT);
  }
  int nprot = 0;
  if (format == 1) {
    list = PROTECT(migrate_v1(list));
    nprot++;
  }
  rms_state tmp;
  const char *bad = state_sync(&tmp, list);
  if (bad != NULL) {
    if (format < 1)
      rms_abort("format", "the optimizer state is not in any format this version of rmsprop "
                "knows (it reads formats 1 to %d): %s", STATE_FORMAT, bad);
    rms_abort("state", "the optimizer state is corrupted (%s)", bad);
  }
  /* What the steps prove about their results (rmsprop.h): a weak reference
   * keyed on the pointer keeps it alive exactly as long as the pointer, and
   * out of what serialize() writes (a restored optimizer starts empty). R
   * keeps the weak reference itself in its own list. */
  tmp.known = PROTECT(Rf_allocVector(VECSXP, 1));
  nprot++;
  R_MakeWeakRef(ptr, tmp.known, R_NilValue, FALSE);
  tmp.known_epoch = 0;
  /* The finalizer first: registering it allocates, and an allocation error
   * after malloc() would leave the block at the address with nothing to
   * free it. It is NULL-safe, so registering it before the address is set
   * (or when malloc() then fails) is harmless. From malloc() to
   * R_SetExternalPtrAddr() nothing may allocate or raise an error. */
  R_RegisterCFinalizerEx(ptr, state_finalize, TRUE);
  st = (rms_state *) malloc(sizeof(rms_state));
  if (st == NULL) rms_abort("state", "out of memory");
  *st = tmp;
  if (format == 1) R_SetExternalPtrProtected(ptr, list);
  live_states++;
  R_SetExternalPtrAddr(ptr, st);
  UNPROTECT(nprot);
  return st;
}

SEXP state_list(SEXP ptr) {
  check_is_state_pointer(ptr);
  return R_ExternalPtrProtected(ptr);
}

/* Replace the whole state list (after the caller built or checked it). The
 * list is checked first, so a bad one leaves the old state in place. */
static void state_replace(SEXP ptr, SEXP list) {
  rms_state *st = state_get(ptr), tmp;
  const char *bad = state_sync(&tmp, list);
  if (bad != NULL) rms_abort("state", "refusing a state list with %s", bad);
  R_SetExternalPtrProtected(ptr, list);
  tmp.known = st->known;
  tmp.known_epoch = st->known_epoch;
  *st = tmp;
  known_clear(st); /* the variables may have another structure now */
}

static SEXP new_state_pointer(SEXP list) {
  SEXP ptr = PROTECT(R_MakeExternalPtr(NULL, state_tag(), list));
  state_get(ptr);
  UNPROTECT(1);
  return ptr;
}

/* The layout R follows: the format, the state fields and the configuration
 * names, in order. */
SEXP C_state_layout(void) {
  const char *names[] = {"format", "fields", "config", ""};
  SEXP out = PROTECT(Rf_mkNamed(VECSXP, names));
  SET_VECTOR_ELT(out, 0, Rf_ScalarInteger(STATE_FORMAT));
  SEXP f = PROTECT(Rf_allocVector(STRSXP, ST_LENGTH));
  for (int i = 0; i < ST_LENGTH; i++) SET_STRING_ELT(f, i, Rf_mkChar(state_names[i]));
  SET_VECTOR_ELT(out, 1, f);
  SEXP c = PROTECT(Rf_allocVector(STRSXP, CFG_LENGTH));
  for (int i = 0; i < CFG_LENGTH; i++) SET_STRING_ELT(c, i, Rf_mkChar(config_names[i]));
  SET_VECTOR_ELT(out, 2, c);
  UNPROTECT(3);
  return out;
}

/* `config`: the numeric configuration, named in CONFIG_FIELDS order (R's
 * config_vector() builds it by those names). */
SEXP C_state_new(SEXP config) {
  if (!is_config_vector(config)) rms_abort("state", "malformed configuration");
  SEXP list = PROTECT(new_state_list());
  SET_VECTOR_ELT(list, ST_CONFIG, Rf_duplicate(config));
  SET_VECTOR_ELT(list, ST_ITERATIONS, Rf_ScalarReal(0));
  SET_VECTOR_ELT(list, ST_LAST_LR, Rf_ScalarReal(NA_REAL));
  SEXP ptr = new_state_pointer(list);
  UNPROTECT(1);
  return ptr;
}

static SEXP zeros(R_xlen_t n) {
  SEXP x = PROTECT(Rf_allocVector(REALSXP, n));
  fill_zero(n, REAL(x));
  UNPROTECT(1);
  return x;
}

/* Allocate every slot for variables of the given lengths. */
SEXP C_state_build(SEXP ptr, SEXP lengths, SEXP decay_mask) {
  rms_state *st = state_get(ptr);
  if (TYPEOF(lengths) != REALSXP || XLENGTH(lengths) < 1 || TYPEOF(decay_mask) != INTSXP ||
      XLENGTH(decay_mask) != XLENGTH(lengths))
    rms_abort("state", "malformed build request");
  R_xlen_t nvar = XLENGTH(lengths);
  SEXP off = PROTECT(Rf_allocVector(REALSXP, nvar + 1));
  REAL(off)[0] = 0;
  for (R_xlen_t i = 0; i < nvar; i++) {
    double n = REAL(lengths)[i];
    if (!(n >= 0) || n != floor(n) || n > 4.5e15) rms_abort("state", "malformed build request");
    REAL(off)[i + 1] = REAL(off)[i] + n;
  }
  R_xlen_t total = (R_xlen_t) REAL(off)[nvar];
  SEXP old = state_list(ptr);
  SEXP list = PROTECT(new_state_list());
  SET_VECTOR_ELT(list, ST_CONFIG, VECTOR_ELT(old, ST_CONFIG));
  SET_VECTOR_ELT(list, ST_ITERATIONS, Rf_duplicate(VECTOR_ELT(old, ST_ITERATIONS)));
  SET_VECTOR_ELT(list, ST_LAST_LR, Rf_duplicate(VECTOR_ELT(old, ST_LAST_LR)));
  SET_VECTOR_ELT(list, ST_OFFSETS, off);
  SET_VECTOR_ELT(list, ST_DECAY_MASK, Rf_duplicate(decay_mask));
  SET_VECTOR_ELT(list, ST_VELOCITY, zeros(total));
  if (st->cfg[CFG_MOMENTUM] > 0) SET_VECTOR_ELT(list, ST_MOMENTUM, zeros(total));
  if (st->cfg[CFG_CENTERED] != 0) SET_VECTOR_ELT(list, ST_AVERAGE_GRADIENT, zeros(total));
  if (st->cfg[CFG_USE_EMA] != 0) SET_VECTOR_ELT(list, ST_EMA, zeros(total));
  if (st->cfg[CFG_ACCUM_STEPS] != 0) SET_VECTOR_ELT(list, ST_ACCUMULATOR, zeros(total));
  state_replace(ptr, list);
  UNPROTECT(2);
  return R_NilValue;
}

/* A deep copy of the state list: what R code may look at or keep. */
SEXP C_state_get(SEXP ptr) {
  state_get(ptr);
  return Rf_duplicate(state_list(ptr));
}

/* Install a state list that R code assembled (load, rollback of a build). */
SEXP C_state_set(SEXP ptr, SEXP list) {
  SEXP copy = PROTECT(Rf_duplicate(list));
  state_replace(ptr, copy);
  UNPROTECT(1);
  return R_NilValue;
}

SEXP C_state_clone(SEXP ptr) {
  state_get(ptr);
  SEXP list = PROTECT(Rf_duplicate(state_list(ptr)));
  SEXP out = new_state_pointer(list);
  UNPROTECT(1);
  return out;
}

/* The two scalars R reads often, without copying the state:
 * c(iterations, last_learning_rate). */
SEXP C_state_scalars(SEXP ptr) {
  rms_state *st = state_get(ptr);
  SEXP out = PROTECT(Rf_allocVector(REALSXP, 2));
  REAL(out)[0] = *st->iterations;
  REAL(out)[1] = *st->last_lr;
  UNPROTECT(1);
  return out;
}

SEXP C_live_states(void) { return Rf_ScalarInteger(live_states); }

/* Drop the C cache now (as serialize() would): used by tests of the rebuild. */
SEXP C_state_forget(SEXP ptr) {
  check_is_state_pointer(ptr);
  state_finalize(ptr);
  return R_NilValue;
}
