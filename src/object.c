/* object.c: reading an optimizer object's data without running any of it.
 *
 * An optimizer (R/object.R) is an environment holding one binding, `.data`,
 * an environment of plain data (configuration, learning rate, structure,
 * the state pointer). Objects saved by rmsprop 0.1.0 and 0.2.0 carried their
 * methods as closures; their data sits in the `private` environment of their
 * `step` closure. A file can hold anything, so before R code reads a loaded
 * object this file looks at it from C, where nothing is evaluated: an
 * active binding is a function R would call on reading, and a promise is
 * code R would run on first use, so both are reported and never touched.
 *
 * Owns: the gate every `$` goes through (C_object_data: the data of an
 * object checked in this session, or NULL), locating the data of any
 * layout, reading named fields of it, telling plain data from code, and the
 * session mark that says "checked in this process".
 * Must never: evaluate anything, call an active binding, force a promise, or
 * raise an R error for what a file holds (problems are returned to R).
 */
#include "calls.h"

/* The mark's address is what says "checked in this session": an external
 * pointer keeps its address only in the process that set it (serialize()
 * writes NULL), so a loaded or unserialized object is checked again before
 * its data is trusted. */
static int session_mark;

/* Symbols used on every `$`: installed once (installing hashes the name). */
static SEXP sym_data = NULL, sym_session = NULL;
static SEXP sym(const char *name) { return Rf_install(name); }
static void init_symbols(void) {
  if (sym_data == NULL) {
    sym_data = Rf_install(".data");
    sym_session = Rf_install(".session");
  }
}

/* Bits of a frame cell's levels that R sets for active and locked bindings
 * (ACTIVE_BINDING_MASK, BINDING_LOCK_MASK in R's envir.c, unchanged since
 * active bindings exist). */
#define CELL_ACTIVE (1 << 15)
#define CELL_LOCKED (1 << 14)
/* The most bindings an object's environment may have (a frame longer than
 * this is damaged). */
#define MAX_CELLS 10000

/* The frame cell of `s` in a chain, checking every cell on the way: a
 * damaged file can give an environment a frame that is not a pairlist of
 * symbols (R's own lookups would follow it blindly). Returns R_NilValue if
 * absent, NULL if the chain is damaged. */
static SEXP chain_cell(SEXP c, SEXP s, int *budget) {
  for (; c != R_NilValue; c = CDR(c)) {
    if (TYPEOF(c) != LISTSXP || TYPEOF(TAG(c)) != SYMSXP || --(*budget) < 0) return NULL;
    if (TAG(c) == s) return c;
  }
  return R_NilValue;
}

/* The cell binding `s` in the frame of `env` (its own frame only, hashed or
 * not), R_NilValue if absent, NULL if the environment is damaged. Only
 * environments made by R's unserialize() or by this package reach here:
 * not the base environment (its bindings live in the symbols). */
static SEXP frame_cell(SEXP env, SEXP s) {
  if (TYPEOF(env) != ENVSXP || env == R_BaseEnv || env == R_BaseNamespace) return NULL;
  int budget = MAX_CELLS;
  SEXP h = HASHTAB(env);
  if (h == R_NilValue) return chain_cell(FRAME(env), s, &budget);
  if (TYPEOF(h) != VECSXP) return NULL;
  SEXP found = R_NilValue;
  for (R_xlen_t i = 0, n = XLENGTH(h); i < n; i++) {
    SEXP c = chain_cell(VECTOR_ELT(h, i), s, &budget);
    if (c == NULL) return NULL;
    if (c != R_NilValue) found = c;
  }
  return found;
}

/* The value bound to `s` in `env` (its own frame only) if that binding is a
 * plain one or a promise already forced (0.2.0's objects keep their
 * constructor's arguments so); else R_UnboundValue, with `why` saying what
 * it is. Nothing is evaluated: active bindings and promises are looked at,
 * never called or forced. */
static SEXP plain_value(SEXP env, SEXP s, const char **why) {
  SEXP cell = frame_cell(env, s);
  *why = "a damaged environment";
  if (cell == NULL) return R_UnboundValue;
  *why = "absent";
  if (cell == R_NilValue) return R_UnboundValue;
  *why = "an active binding";
  if (LEVELS(cell) & CELL_ACTIVE) return R_UnboundValue;
  SEXP v = CAR(cell);
  *why = "absent";
  if (v == R_UnboundValue) return R_UnboundValue;
  if (TYPEOF(v) == PROMSXP) {
    *why = "an unevaluated promise";
    v = PRVALUE(v);
    if (v == R_UnboundValue || TYPEOF(v) == PROMSXP) return R_UnboundValue;
  }
  *why = NULL;
  return v;
}

static int has_mark(SEXP data) {
  const char *why;
  SEXP m = plain_value(data, sym_session, &why);
  return TYPEOF(m) == EXTPTRSXP && R_ExternalPtrAddr(m) == (void *) &session_mark;
}

/* The data environment of an object of today's layout (`.data`) or of an
 * older one (the `private` of its `step` closure's environment), or
 * R_UnboundValue. `layout` is set to 3 or 2 (2 = methods as closures, 0.1.0
 * or 0.2.0). */
static SEXP find_data(SEXP x, int *layout, const char **why) {
  init_symbols();
  *layout = 0;
  *why = "not an environment";
  if (TYPEOF(x) != ENVSXP) return R_UnboundValue;
  SEXP d = plain_value(x, sym_data, why);
  if (d != R_UnboundValue) {
    *layout = 3;
    if (TYPEOF(d) != ENVSXP) {
      *why = "`.data` is not an environment";
      return R_UnboundValue;
    }
    return d;
  }
  SEXP step = plain_value(x, sym("step"), why);
  if (step == R_UnboundValue) return R_UnboundValue;
  *layout = 2;
  *why = "its `step` is not a closure";
  if (TYPEOF(step) != CLOSXP) return R_UnboundValue;
  d = plain_value(CLOENV(step), sym("private"), why);
  if (d == R_UnboundValue) return R_UnboundValue;
  if (TYPEOF(d) != ENVSXP) {
    *why = "its `private` is not an environment";
    return R_UnboundValue;
  }
  return d;
}

/* The gate of `$`: the data environment of `x` when it was checked in this
 * session and `name` is a name R can compare, else NULL (R then takes the
 * slow road, which checks, migrates or refuses). */
SEXP C_object_data(SEXP x, SEXP name) {
  if (TYPEOF(name) != STRSXP || XLENGTH(name) != 1) return R_NilValue;
  SEXP c = STRING_ELT(name, 0);
  if (c == NA_STRING || Rf_getCharCE(c) == CE_BYTES) return R_NilValue;
  int layout;
  const char *why;
  SEXP d = find_data(x, &layout, &why);
  if (d == R_UnboundValue || !has_mark(d)) return R_NilValue;
  return d;
}

/* list(layout = 3L or 2L, data = <environment>, problem = NULL) or
 * list(layout, data = NULL, problem = "<what is wrong>"). */
SEXP C_object_find(SEXP x) {
  const char *names[] = {"layout", "data", "problem", ""};
  SEXP out = PROTECT(Rf_mkNamed(VECSXP, names));
  int layout;
  const char *why;
  SEXP d = find_data(x, &layout, &why);
  SET_VECTOR_ELT(out, 0, Rf_ScalarInteger(layout));
  if (d == R_UnboundValue) {
    SET_VECTOR_ELT(out, 2, Rf_mkString(why == NULL ? "no data" : why));
  } else {
    SET_VECTOR_ELT(out, 1, d);
  }
  UNPROTECT(1);
  return out;
}

/* list(values = <named list>, problems = <named character>): the value of
 * each field of `env` named in `fields`, read as plain_value() does, and
 * what is wrong with the fields that cannot be read ("absent", "an active
 * binding", "an unevaluated promise", or "locked": R writes these fields).
 * `locked_env` is TRUE when no binding can be added. */
SEXP C_object_fields(SEXP env, SEXP fields) {
  if (TYPEOF(env) != ENVSXP || TYPEOF(fields) != STRSXP)
    rms_abort("state", "malformed object field request");
  init_symbols();
  R_xlen_t n = XLENGTH(fields);
  const char *names[] = {"values", "problems", "locked_env", ""};
  SEXP out = PROTECT(Rf_mkNamed(VECSXP, names));
  SEXP values = PROTECT(Rf_allocVector(VECSXP, n));
  SEXP problems = PROTECT(Rf_allocVector(STRSXP, n));
  for (R_xlen_t i = 0; i < n; i++) {
    SEXP s = Rf_installTrChar(STRING_ELT(fields, i));
    const char *why;
    SEXP v = plain_value(env, s, &why);
    if (v == R_UnboundValue) {
      SET_STRING_ELT(problems, i, Rf_mkChar(why));
    } else {
      SET_VECTOR_ELT(values, i, v);
      SET_STRING_ELT(problems, i, Rf_mkChar(LEVELS(frame_cell(env, s)) & CELL_LOCKED ? "locked" : ""));
    }
  }
  Rf_setAttrib(values, R_NamesSymbol, fields);
  Rf_setAttrib(problems, R_NamesSymbol, fields);
  SET_VECTOR_ELT(out, 0, values);
  SET_VECTOR_ELT(out, 1, problems);
  SET_VECTOR_ELT(out, 2, Rf_ScalarLogical(R_EnvironmentIsLocked(env)));
  UNPROTECT(3);
  return out;
}

/* Plain data: NULL, atomic vectors and lists of them (attributes included),
 * at most `depth` levels deep. 0 = plain data, 1 = something else (a
 * function, an environment, a pointer, code, a promise), 2 = too deep. */
static int plain_data(SEXP x, int depth) {
  if (depth < 0) return 2;
  int r = 0;
  switch (TYPEOF(x)) {
  case NILSXP:
    return 0;
  case LGLSXP: case INTSXP: case REALSXP: case CPLXSXP: case STRSXP: case RAWSXP:
    break;
  case VECSXP:
    for (R_xlen_t i = 0, n = XLENGTH(x); i < n && r == 0; i++)
      r = plain_data(VECTOR_ELT(x, i), depth - 1);
    break;
  default:
    return 1;
  }
  for (SEXP a = ATTRIB(x); a != R_NilValue && r == 0; a = CDR(a)) {
    if (TYPEOF(a) != LISTSXP || TYPEOF(TAG(a)) != SYMSXP) return 1;
    r = plain_data(CAR(a), depth - 1);
  }
  return r;
}

/* What `x` is, without evaluating it: "data" (plain data, see
 * plain_data()), "function" (a closure; its contents are the user's and not
 * looked at), "environment", "externalptr", "too deep", or "code" (anything
 * else: a promise, a call, byte code, ...). `allow` names the elements of a
 * top-level list that may be closures (a configuration's learning rate):
 * the rest of the list must be plain data. */
SEXP C_data_kind(SEXP x, SEXP allow, SEXP max_depth) {
  int depth = Rf_asInteger(max_depth);
  if (depth == NA_INTEGER || TYPEOF(allow) != STRSXP)
    rms_abort("state", "malformed data kind request");
  const char *kind = "code";
  switch (TYPEOF(x)) {
  case CLOSXP: kind = "function"; break;
  case ENVSXP: kind = "environment"; break;
  case EXTPTRSXP: kind = "externalptr"; break;
  case VECSXP: {
    SEXP nms = Rf_getAttrib(x, R_NamesSymbol);
    int r = 0;
    for (R_xlen_t i = 0, n = XLENGTH(x); i < n && r == 0; i++) {
      SEXP e = VECTOR_ELT(x, i);
      int allowed = 0;
      if (TYPEOF(e) == CLOSXP && TYPEOF(nms) == STRSXP)
        for (R_xlen_t k = 0; k < XLENGTH(allow); k++)
          if (STRING_ELT(nms, i) == STRING_ELT(allow, k)) allowed = 1;
      if (!allowed) r = plain_data(e, depth - 1);
    }
    for (SEXP a = ATTRIB(x); a != R_NilValue && r == 0; a = CDR(a)) {
      if (TYPEOF(a) != LISTSXP || TYPEOF(TAG(a)) != SYMSXP) r = 1;
      else r = plain_data(CAR(a), depth - 1);
    }
    kind = r == 0 ? "data" : r == 2 ? "too deep" : "code";
    break;
  }
  default: {
    int r = plain_data(x, depth);
    kind = r == 0 ? "data" : r == 2 ? "too deep" : "code";
  }
  }
  return Rf_mkString(kind);
}

/* Marks a data environment as checked in this session (see session_mark). */
SEXP C_object_mark(SEXP data) {
  init_symbols();
  SEXP cell = frame_cell(data, sym_session);
  if (TYPEOF(data) != ENVSXP || R_EnvironmentIsLocked(data) || cell == NULL ||
      (cell != R_NilValue && (LEVELS(cell) & (CELL_ACTIVE | CELL_LOCKED))))
    rms_abort("format", "this optimizer's data cannot be used (was the file damaged?)");
  init_symbols();
  SEXP m = PROTECT(R_MakeExternalPtr((void *) &session_mark, R_NilValue, R_NilValue));
  Rf_defineVar(sym_session, m, data);
  UNPROTECT(1);
  return R_NilValue;
}
