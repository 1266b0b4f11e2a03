/* state.c: the optimizer state behind the external pointer.
 *
 * Owns: the R list kept in the pointer's `prot` slot (config, counter,
 * segment offsets, weight-decay mask and one long double vector per slot
 * kind) and the small C struct at the pointer's address that caches raw
 * pointers into that list. The R list is the truth: serialize() keeps it
 * while it turns the address into NULL, so state_get() rebuilds the cache
 * from it, after checking every part, and a restored optimizer continues.
 * Must never: hand out the state vectors themselves (only copies), keep
 * malloc'd memory anywhere but the address, or trust a list it did not
 * check (a saved file can be edited).
 */
#include "rmsprop.h"
#include <math.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>

static SEXP state_tag(void) { return Rf_install("rmsprop_state"); }

/* Raise a classed R condition (rmsprop_error_state) from C, through the
 * package's own rmsprop_abort(), so C-side refusals look like every other
 * error of the package. Only for problems that R code cannot check first
 * (a damaged or forged state); never returns. */
void rms_abort(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  SEXP ns = PROTECT(R_FindNamespace(Rf_mkString("rmsprop")));
  SEXP call = PROTECT(Rf_lang3(Rf_install("rmsprop_abort"), Rf_mkString("state"), Rf_mkString(msg)));
  Rf_eval(call, ns);
  UNPROTECT(2);
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

/* Check the list and point the cache into it; returns NULL when all is well,
 * otherwise what is wrong (the caller raises the error). */
static const char *state_sync(rms_state *st, SEXP list) {
  const char *bad = NULL;
  if (TYPEOF(list) != VECSXP || XLENGTH(list) != ST_LENGTH) return "not a state list";
  SEXP cfg = VECTOR_ELT(list, ST_CONFIG), it = VECTOR_ELT(list, ST_ITERATIONS);
  if (!is_real_of_length(cfg, CFG_LENGTH)) return "a malformed configuration";
  if (!is_real_of_length(it, 1) || !R_FINITE(REAL(it)[0]) || REAL(it)[0] < 0 ||
      REAL(it)[0] != floor(REAL(it)[0]))
    return "a malformed iteration counter";
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

static void check_is_state_pointer(SEXP ptr) {
  if (TYPEOF(ptr) != EXTPTRSXP || R_ExternalPtrTag(ptr) != state_tag())
    rms_abort("not an optimizer state pointer");
}

/* The one getter: every entry point reaches the state through it. */
rms_state *state_get(SEXP ptr) {
  check_is_state_pointer(ptr);
  rms_state *st = (rms_state *) R_ExternalPtrAddr(ptr);
  if (st != NULL) return st;
  /* NULL address: the object came back from serialize(); rebuild the cache. */
  rms_state tmp;
  const char *bad = state_sync(&tmp, R_ExternalPtrProtected(ptr));
  if (bad != NULL) rms_abort("the optimizer state is corrupted (%s)", bad);
  st = (rms_state *) malloc(sizeof(rms_state));
  if (st == NULL) rms_abort("out of memory");
  *st = tmp;
  live_states++;
  R_SetExternalPtrAddr(ptr, st);
  R_RegisterCFinalizerEx(ptr, state_finalize, TRUE);
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
  if (bad != NULL) rms_abort("refusing a state list with %s", bad);
  R_SetExternalPtrProtected(ptr, list);
  *st = tmp;
}

static SEXP new_state_pointer(SEXP list) {
  SEXP ptr = PROTECT(R_MakeExternalPtr(NULL, state_tag(), list));
  state_get(ptr);
  UNPROTECT(1);
  return ptr;
}

SEXP C_state_new(SEXP config) {
  if (!is_real_of_length(config, CFG_LENGTH)) rms_abort("malformed configuration");
  SEXP list = PROTECT(Rf_allocVector(VECSXP, ST_LENGTH));
  SET_VECTOR_ELT(list, ST_CONFIG, Rf_duplicate(config));
  SET_VECTOR_ELT(list, ST_ITERATIONS, Rf_ScalarReal(0));
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
  R_xlen_t nvar = XLENGTH(lengths);
  if (TYPEOF(lengths) != REALSXP || nvar < 1 || TYPEOF(decay_mask) != INTSXP ||
      XLENGTH(decay_mask) != nvar)
    rms_abort("malformed build request");
  SEXP old = state_list(ptr);
  SEXP list = PROTECT(Rf_allocVector(VECSXP, ST_LENGTH));
  SET_VECTOR_ELT(list, ST_CONFIG, VECTOR_ELT(old, ST_CONFIG));
  SET_VECTOR_ELT(list, ST_ITERATIONS, Rf_duplicate(VECTOR_ELT(old, ST_ITERATIONS)));
  SEXP off = PROTECT(Rf_allocVector(REALSXP, nvar + 1));
  REAL(off)[0] = 0;
  for (R_xlen_t i = 0; i < nvar; i++) {
    double n = REAL(lengths)[i];
    if (!(n >= 0) || n != floor(n)) rms_abort("malformed build request");
    REAL(off)[i + 1] = REAL(off)[i] + n;
  }
  R_xlen_t total = (R_xlen_t) REAL(off)[nvar];
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

SEXP C_state_iterations(SEXP ptr) {
  return Rf_ScalarReal(*state_get(ptr)->iterations);
}

SEXP C_live_states(void) { return Rf_ScalarInteger(live_states); }

/* Drop the C cache now (as serialize() would): used by tests of the rebuild. */
SEXP C_state_forget(SEXP ptr) {
  check_is_state_pointer(ptr);
  state_finalize(ptr);
  return R_NilValue;
}
