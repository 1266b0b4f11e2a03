/* structure.c: the C walk of a variable structure, the one place in C that
 * knows the matching rules (R/structure.R words them and has the same rules
 * for R code; a table-driven test holds the two to the same verdicts).
 *
 * The optimizer's skeleton (made by R when it is built) mirrors the lists
 * with their names; its leaves are length-one doubles holding the variable's
 * length, with its dims in the attribute "leaf_dim". The rules:
 * - variables must have the built structure exactly: the same nesting, list
 *   lengths and list names, numeric leaves (double, integer, logical; not
 *   factors) of the same length and dim. Names of a numeric vector and
 *   dimnames are labels, not structure: they are not compared.
 * - gradients follow the variables, leniently: a NULL stands for a variable
 *   or a whole sub-list; an unnamed list matches a named one by position; a
 *   gradient without dim is accepted for an array of the same length; for a
 *   variable without dim, a gradient whose dim is a vector's (every extent
 *   but at most one equal to 1, e.g. the one-column matrix crossprod() gives)
 *   is accepted. Anything else that differs is a problem.
 * Owns: the walk, the records of the variables it finds, the description of
 * the first problem (what, where: the path and the nodes, so R can word the
 * message without walking again), and the fresh copy of a structure.
 * Must never: allocate before the walk has passed (except the problem
 * report), or raise an R error for what the caller passed.
 */
#include "calls.h"
#include <stddef.h>
#include <string.h>

#define RMS_NAME(e, s) s,
static const char *problem_names[] = {RMS_PROBLEMS(RMS_NAME) ""};
#undef RMS_NAME

#define MAX_DEPTH ((int) (sizeof(((walk_ctx *) 0)->path_index) / sizeof(R_xlen_t)))

static void fail(walk_ctx *w, int problem, int in_grads, SEXP skel, SEXP found) {
  if (w->problem != PROBLEM_NONE) return;
  w->problem = problem;
  w->in_grads = in_grads;
  w->skel_at = skel;
  w->found_at = found;
}

void walk_fail_at(walk_ctx *w, int problem, int in_grads, R_xlen_t index, R_xlen_t position,
                  SEXP found) {
  if (w->problem != PROBLEM_NONE) return;
  w->problem = problem;
  w->in_grads = in_grads;
  w->index = index;
  w->position = position;
  w->depth = -1; /* the path comes from `index` (R knows the paths) */
  w->skel_at = R_NilValue;
  w->found_at = found;
}

static int same_string(SEXP a, SEXP b) {
  if (a == b) return 1;
  if (a == NA_STRING || b == NA_STRING) return 0;
  /* Bytes-encoded strings cannot be translated: compare them as bytes. */
  if (Rf_getCharCE(a) == CE_BYTES || Rf_getCharCE(b) == CE_BYTES)
    return Rf_getCharCE(a) == Rf_getCharCE(b) && strcmp(CHAR(a), CHAR(b)) == 0;
  return strcmp(Rf_translateCharUTF8(a), Rf_translateCharUTF8(b)) == 0;
}

static int same_names(SEXP a, SEXP b) {
  if (a == b) return 1;
  if (a == R_NilValue || b == R_NilValue) return 0;
  if (TYPEOF(a) != STRSXP || TYPEOF(b) != STRSXP) return 0;
  R_xlen_t n = XLENGTH(a);
  if (XLENGTH(b) != n) return 0;
  /* R keeps one copy of each string: equal names are mostly the same pointer. */
  const SEXP *pa = STRING_PTR_RO(a), *pb = STRING_PTR_RO(b);
  for (R_xlen_t i = 0; i < n; i++)
    if (pa[i] != pb[i] && !same_string(pa[i], pb[i])) return 0;
  return 1;
}

/* Rf_getAttrib() searches; most leaves have no attributes at all. */
static SEXP attribute(SEXP x, SEXP name) {
  return ATTRIB(x) == R_NilValue ? R_NilValue : Rf_getAttrib(x, name);
}

static int same_dims(SEXP a, SEXP b) {
  if (a == R_NilValue || b == R_NilValue) return a == b;
  if (TYPEOF(a) != INTSXP || TYPEOF(b) != INTSXP || XLENGTH(a) != XLENGTH(b)) return 0;
  return memcmp(INTEGER(a), INTEGER(b), XLENGTH(a) * sizeof(int)) == 0;
}

/* The dim of a vector laid out as an array: every extent but one is 1. */
static int is_vector_dim(SEXP d) {
  if (TYPEOF(d) != INTSXP) return 0;
  int big = 0;
  for (R_xlen_t i = 0; i < XLENGTH(d); i++)
    if (INTEGER(d)[i] != 1) big++;
  return big <= 1;
}

static int is_numeric_leaf(SEXP x) {
  int t = TYPEOF(x);
  return (t == REALSXP || t == INTSXP || t == LGLSXP) && !(OBJECT(x) && Rf_inherits(x, "factor"));
}

/* The problem a leaf that should be numeric has. */
static int leaf_problem(SEXP x) {
  return TYPEOF(x) == VECSXP ? PROBLEM_NOT_LEAF : PROBLEM_TYPE;
}

/* A list of the caller's (variables, or gradients with in_grads) against a
 * list of the skeleton: a list, of the same length, with the same names;
 * gradients may have no names (matched by position). 1 = a problem. */
static int list_problem(walk_ctx *w, SEXP skel, SEXP skel_names, SEXP x, int in_grads) {
  int problem = PROBLEM_NONE;
  if (TYPEOF(x) != VECSXP) {
    problem = PROBLEM_NOT_LIST;
  } else if (XLENGTH(x) != XLENGTH(skel)) {
    problem = PROBLEM_LIST_LENGTH;
  } else {
    SEXP names = attribute(x, R_NamesSymbol);
    if (!(in_grads && names == R_NilValue) && !same_names(names, skel_names))
      problem = PROBLEM_NAMES;
  }
  if (problem == PROBLEM_NONE) return 0;
  fail(w, problem, in_grads, skel, x);
  return 1;
}

static void walk(walk_ctx *w, SEXP skel, SEXP v, SEXP g, int with_grads) {
  if (w->problem != PROBLEM_NONE) return;
  if (TYPEOF(skel) == VECSXP) {
    R_xlen_t n = XLENGTH(skel);
    if (w->depth >= MAX_DEPTH) {
      fail(w, PROBLEM_CORRUPT, 0, skel, v);
      return;
    }
    SEXP skel_names = attribute(skel, R_NamesSymbol);
    if (list_problem(w, skel, skel_names, v, 0)) return;
    int has_g = with_grads && g != R_NilValue;
    if (has_g && list_problem(w, skel, skel_names, g, 1)) return;
    int d = w->depth++;
    w->path_names[d] = skel_names;
    for (R_xlen_t i = 0; i < n && w->problem == PROBLEM_NONE; i++) {
      w->path_index[d] = i;
      walk(w, VECTOR_ELT(skel, i), VECTOR_ELT(v, i), has_g ? VECTOR_ELT(g, i) : R_NilValue,
           with_grads);
    }
    if (w->problem == PROBLEM_NONE) w->depth--;
    return;
  }
  /* a leaf */
  if (w->next >= w->nvar || TYPEOF(skel) != REALSXP || XLENGTH(skel) != 1) {
    fail(w, PROBLEM_CORRUPT, 0, skel, v);
    return;
  }
  /* The R-side structure and the C segments must agree, or the kernels would
   * write past a vector (possible only with tampered internals). Compared as
   * doubles: the offsets are checked whole numbers (state.c), but the
   * skeleton's value is not, and casting a NaN or a huge double to an
   * integer is undefined. */
  const double len_d = REAL(skel)[0];
  if (!(len_d == w->offsets[w->next + 1] - w->offsets[w->next])) {
    fail(w, PROBLEM_CORRUPT, 0, skel, v);
    return;
  }
  R_xlen_t len = (R_xlen_t) len_d;
  w->index = w->next + 1;
  if (!is_numeric_leaf(v)) {
    fail(w, leaf_problem(v), 0, skel, v);
    return;
  }
  if (XLENGTH(v) != len) {
    fail(w, PROBLEM_LENGTH, 0, skel, v);
    return;
  }
  /* The skeleton keeps the dims as "leaf_dim": R refuses a "dim" that does
   * not match the length-one leaf. */
  static SEXP leaf_dim = NULL;
  if (leaf_dim == NULL) leaf_dim = Rf_install("leaf_dim");
  SEXP dim = attribute(skel, leaf_dim);
  if (!same_dims(attribute(v, R_DimSymbol), dim)) {
    fail(w, PROBLEM_DIM, 0, skel, v);
    return;
  }
  if (with_grads && g != R_NilValue) {
    if (!is_numeric_leaf(g)) {
      fail(w, leaf_problem(g), 1, skel, g);
      return;
    }
    if (XLENGTH(g) != len) {
      fail(w, PROBLEM_LENGTH, 1, skel, g);
      return;
    }
    SEXP gdim = attribute(g, R_DimSymbol);
    if (gdim != R_NilValue && !same_dims(gdim, dim) && !(dim == R_NilValue && is_vector_dim(gdim))) {
      fail(w, PROBLEM_DIM, 1, skel, g);
      return;
    }
  }
  leaf_rec *rec = &w->leaves[w->next];
  memset(rec, 0, sizeof *rec);
  rec->var = v;
  rec->grad = with_grads ? g : R_NilValue;
  rec->len = len;
  w->next++;
  w->index = 0;
}

void walk_structure(walk_ctx *w, leaf_rec *stack, const rms_state *st, SEXP skel, SEXP vars,
                    SEXP grads, int with_grads) {
  R_xlen_t nvar = st->nvar;
  /* The path arrays are written as the walk descends: only the fields
   * before them need clearing (2 KB less to clear on every step). */
  memset(w, 0, offsetof(walk_ctx, path_names));
  w->nvar = nvar;
  w->offsets = st->offsets;
  w->skel_at = w->found_at = R_NilValue;
  /* R_alloc memory is freed by R when the .Call returns, also on error. */
  w->leaves = nvar <= FEW_LEAVES ? stack : (leaf_rec *) R_alloc(nvar, sizeof(leaf_rec));
  walk(w, skel, vars, grads, with_grads);
  if (w->problem == PROBLEM_NONE && w->next != nvar) fail(w, PROBLEM_CORRUPT, 0, skel, vars);
}

SEXP walk_signal(const walk_ctx *w, SEXP extra) {
  const char *names[] = {"kind", "in_grads", "index", "position", "path_names", "path_index",
                         "skeleton", "found", "extra", ""};
  SEXP s = PROTECT(Rf_mkNamed(VECSXP, names));
  SET_VECTOR_ELT(s, 0, Rf_mkString(problem_names[w->problem]));
  SET_VECTOR_ELT(s, 1, Rf_ScalarLogical(w->in_grads));
  SET_VECTOR_ELT(s, 2, Rf_ScalarReal((double) w->index));
  SET_VECTOR_ELT(s, 3, Rf_ScalarReal((double) w->position));
  int depth = w->depth < 0 ? 0 : w->depth;
  SEXP pn = PROTECT(Rf_allocVector(STRSXP, depth));
  SEXP pi = PROTECT(Rf_allocVector(REALSXP, depth));
  for (int d = 0; d < depth; d++) {
    SEXP nm = w->path_names[d];
    R_xlen_t i = w->path_index[d];
    SET_STRING_ELT(pn, d, TYPEOF(nm) == STRSXP && i < XLENGTH(nm) ? STRING_ELT(nm, i) : NA_STRING);
    REAL(pi)[d] = (double) i + 1;
  }
  SET_VECTOR_ELT(s, 4, pn);
  SET_VECTOR_ELT(s, 5, pi);
  SET_VECTOR_ELT(s, 6, w->skel_at);
  SET_VECTOR_ELT(s, 7, w->found_at);
  SET_VECTOR_ELT(s, 8, extra);
  SEXP cls = PROTECT(Rf_mkString("rmsprop_signal"));
  Rf_setAttrib(s, R_ClassSymbol, cls);
  UNPROTECT(4);
  return s;
}

const double *leaf_doubles(SEXP x) {
  if (TYPEOF(x) == REALSXP) return REAL_RO(x);
  R_xlen_t n = XLENGTH(x);
  /* Never NULL: a NULL `g` means "no gradient" to the step, and R_alloc(0)
   * returns NULL. Nothing is read at a zero-length address. */
  static const double nothing = 0;
  if (n == 0) return &nothing;
  double *out = (double *) R_alloc(n, sizeof(double));
  const int *p = TYPEOF(x) == INTSXP ? INTEGER_RO(x) : LOGICAL_RO(x);
  for (R_xlen_t i = 0; i < n; i++) out[i] = p[i] == NA_INTEGER ? NA_REAL : (double) p[i];
  return out;
}

/* Lists keep their attributes; every leaf becomes a new double vector with
 * the leaf's attributes. `vin` is where each leaf's values are read as
 * doubles: the caller's vector when it is double (the update reads it there
 * and writes the result once), else the converted copy in the leaf. */
SEXP copy_structure(SEXP skel, SEXP v, leaf_rec *leaves, R_xlen_t *next) {
  if (TYPEOF(skel) == VECSXP) {
    R_xlen_t n = XLENGTH(skel);
    SEXP res = PROTECT(Rf_allocVector(VECSXP, n));
    DUPLICATE_ATTRIB(res, v);
    for (R_xlen_t i = 0; i < n; i++)
      SET_VECTOR_ELT(res, i, copy_structure(VECTOR_ELT(skel, i), VECTOR_ELT(v, i), leaves, next));
    UNPROTECT(1);
    return res;
  }
  leaf_rec *rec = &leaves[*next];
  R_xlen_t n = rec->len;
  SEXP leaf = PROTECT(recycled_doubles(n));
  DUPLICATE_ATTRIB(leaf, v);
  rec->out = REAL(leaf);
  rec->res = leaf;
  if (TYPEOF(v) == REALSXP) {
    rec->vin = REAL_RO(v);
  } else {
    /* Not for n == 0: leaf_doubles() then gives R_alloc(0)'s NULL, and
     * memcpy() from NULL is undefined even for no bytes. */
    if (n > 0)
      memcpy(REAL(leaf), rec->vin != NULL ? rec->vin : leaf_doubles(v), (size_t) n * sizeof(double));
    rec->vin = REAL(leaf);
  }
  (*next)++;
  UNPROTECT(1);
  return leaf;
}
