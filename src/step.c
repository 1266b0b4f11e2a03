/* step.c: the .Call entry points of one optimizer step.
 *
 * Owns: walking the caller's variables and gradients against the structure
 * the optimizer was built on, checking every leaf (type, length, dims,
 * finiteness) BEFORE any state changes, then driving the kernels over all
 * variables in one pass and building the results.
 * Must never: write into a vector the caller can see (except in the
 * documented in-place mode), change state before every check has passed,
 * or raise an R error for bad user input: input problems are returned to R
 * as an "rmsprop_signal" list, and R raises the classed condition.
 */
#include "rmsprop.h"
#include <math.h>
#include <string.h>
#include <stdlib.h>

/* ---- walking the structure ------------------------------------------- */

enum { SIG_NONE, SIG_STRUCTURE, SIG_TYPE, SIG_LENGTH, SIG_DIM, SIG_NONFINITE,
       SIG_ALL_NULL, SIG_NULL_GRADIENTS, SIG_SHARED, SIG_IN_PLACE_TYPE, SIG_SLOW,
       SIG_CORRUPT };

static const char *signal_names[] = {
  "none", "structure", "type", "length", "dim", "nonfinite", "all_null",
  "null_gradients", "shared", "in_place_type", "slow", "corrupt"
};

/* Everything the step needs to know about one variable. */
typedef struct {
  SEXP var, grad, skel;   /* the caller's leaves and the skeleton's */
  const double *g;        /* gradient as doubles, NULL when the gradient is NULL */
  const double *vin;      /* where the current values are read */
  double *out;            /* where the new values are written */
  R_xlen_t len;           /* the variable's length (XLENGTH is a call) */
  int written;
} leaf_rec;

/* Steps on up to this many variables keep their records on the C stack
 * (7 KB): lists of many small variables then make no heap allocation for
 * them, which is a tenth of such a step's cost. */
#define FEW_LEAVES 128

typedef struct {
  R_xlen_t nvar, next;
  const double *offsets;  /* the C state's segments, checked against the skeleton */
  leaf_rec *leaves;
  int code;          /* SIG_* of the first problem found */
  int which;         /* 0 = variables, 1 = gradients */
  R_xlen_t index;    /* 1-based flat index of the variable, 0 = the structure */
  char detail[200];
} walk_ctx;

static void fail(walk_ctx *w, int code, int which, const char *detail) {
  if (w->code != SIG_NONE) return;
  w->code = code;
  w->which = which;
  w->index = w->next + 1;
  strncpy(w->detail, detail, sizeof w->detail - 1);
  w->detail[sizeof w->detail - 1] = '\0';
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

static int is_numeric_leaf(SEXP x) {
  int t = TYPEOF(x);
  return (t == REALSXP || t == INTSXP || t == LGLSXP) && !(OBJECT(x) && Rf_inherits(x, "factor"));
}

/* Leaves of the skeleton are length-1 doubles (the variable's length) with
 * the variable's dims; inner nodes are lists with its names. */
static void walk(walk_ctx *w, SEXP skel, SEXP v, SEXP g, int with_grads) {
  if (w->code != SIG_NONE) return;
  if (TYPEOF(skel) == VECSXP) {
    R_xlen_t n = XLENGTH(skel);
    if (TYPEOF(v) != VECSXP || XLENGTH(v) != n) {
      fail(w, SIG_STRUCTURE, 0, "list");
      return;
    }
    SEXP skel_names = attribute(skel, R_NamesSymbol);
    if (!same_names(attribute(v, R_NamesSymbol), skel_names)) {
      fail(w, SIG_STRUCTURE, 0, "names");
      return;
    }
    if (with_grads && g != R_NilValue) {
      if (TYPEOF(g) != VECSXP || XLENGTH(g) != n) {
        fail(w, SIG_STRUCTURE, 1, "list");
        return;
      }
      SEXP gn = attribute(g, R_NamesSymbol);
      if (gn != R_NilValue && !same_names(gn, skel_names)) {
        fail(w, SIG_STRUCTURE, 1, "names");
        return;
      }
    }
    for (R_xlen_t i = 0; i < n; i++)
      walk(w, VECTOR_ELT(skel, i), VECTOR_ELT(v, i),
           (with_grads && g != R_NilValue) ? VECTOR_ELT(g, i) : R_NilValue, with_grads);
    return;
  }
  /* a leaf */
  if (w->next >= w->nvar) {
    fail(w, SIG_STRUCTURE, 0, "count");
    return;
  }
  if (TYPEOF(skel) != REALSXP || XLENGTH(skel) != 1) {
    fail(w, SIG_CORRUPT, 0, "skeleton");
    return;
  }
  R_xlen_t len = (R_xlen_t) REAL(skel)[0];
  /* The R-side structure and the C segments must agree, or the kernels would
   * write past a vector (possible only with tampered internals). */
  if ((R_xlen_t) w->offsets[w->next + 1] - (R_xlen_t) w->offsets[w->next] != len) {
    fail(w, SIG_CORRUPT, 0, "segments");
    return;
  }
  if (!is_numeric_leaf(v)) {
    fail(w, TYPEOF(v) == VECSXP ? SIG_STRUCTURE : SIG_TYPE, 0, Rf_type2char(TYPEOF(v)));
    return;
  }
  if (XLENGTH(v) != len) {
    fail(w, SIG_STRUCTURE, 0, "length");
    return;
  }
  /* The skeleton keeps the dims as "leaf_dim": R refuses a "dim" that does
   * not match the length-one leaf. */
  static SEXP leaf_dim = NULL;
  if (leaf_dim == NULL) leaf_dim = Rf_install("leaf_dim");
  SEXP dim = attribute(skel, leaf_dim);
  if (!same_dims(attribute(v, R_DimSymbol), dim)) {
    fail(w, SIG_STRUCTURE, 0, "dim");
    return;
  }
  if (with_grads && g != R_NilValue) {
    if (!is_numeric_leaf(g)) {
      fail(w, TYPEOF(g) == VECSXP ? SIG_STRUCTURE : SIG_TYPE, 1,
           Rf_inherits(g, "factor") ? "factor" : Rf_type2char(TYPEOF(g)));
      return;
    }
    if (XLENGTH(g) != len) {
      fail(w, SIG_LENGTH, 1, "length");
      return;
    }
    SEXP gdim = attribute(g, R_DimSymbol);
    if (gdim != R_NilValue && dim != R_NilValue && !same_dims(gdim, dim)) {
      fail(w, SIG_DIM, 1, "dim");
      return;
    }
  }
  leaf_rec *rec = &w->leaves[w->next];
  memset(rec, 0, sizeof *rec);
  rec->var = v;
  rec->grad = with_grads ? g : R_NilValue;
  rec->skel = skel;
  rec->len = len;
  w->next++;
}

/* `stack` holds FEW_LEAVES records; more come from R_alloc (freed by R when
 * the .Call returns, also on error). */
static void walk_all(walk_ctx *w, leaf_rec *stack, const rms_state *st, SEXP skel, SEXP vars,
                     SEXP grads, int with_grads) {
  R_xlen_t nvar = st->nvar;
  memset(w, 0, sizeof *w);
  w->nvar = nvar;
  w->offsets = st->offsets;
  w->leaves = nvar <= FEW_LEAVES ? stack : (leaf_rec *) R_alloc(nvar, sizeof(leaf_rec));
  walk(w, skel, vars, grads, with_grads);
  if (w->code == SIG_NONE && w->next != nvar) fail(w, SIG_STRUCTURE, 0, "count");
}

/* The signal R turns into a classed condition or a warning. */
static SEXP make_signal(const walk_ctx *w, int code, SEXP null_index) {
  const char *names[] = {"kind", "which", "index", "detail", "null_index", ""};
  SEXP s = PROTECT(Rf_mkNamed(VECSXP, names));
  SET_VECTOR_ELT(s, 0, Rf_mkString(signal_names[code]));
  SET_VECTOR_ELT(s, 1, Rf_mkString(w->which ? "grads" : "variables"));
  SET_VECTOR_ELT(s, 2, Rf_ScalarReal((double) w->index));
  SET_VECTOR_ELT(s, 3, Rf_mkString(w->detail));
  SET_VECTOR_ELT(s, 4, null_index);
  Rf_setAttrib(s, R_ClassSymbol, Rf_mkString("rmsprop_signal"));
  UNPROTECT(1);
  return s;
}

/* The "slow" signal: this call needs R's help (build, or a learning rate that
 * is not a plain number). Nothing was checked or changed yet. */
static SEXP slow_signal(void) {
  walk_ctx w;
  memset(&w, 0, sizeof w);
  return make_signal(&w, SIG_SLOW, R_NilValue);
}

/* ---- reading gradients ------------------------------------------------ */

/* A double view of a numeric leaf (integers and logicals are converted into
 * scratch memory that R frees when the .Call returns). */
static const double *as_doubles(SEXP x) {
  if (TYPEOF(x) == REALSXP) return REAL_RO(x);
  R_xlen_t n = XLENGTH(x);
  double *out = (double *) R_alloc(n, sizeof(double));
  const int *p = TYPEOF(x) == INTSXP ? INTEGER_RO(x) : LOGICAL_RO(x);
  for (R_xlen_t i = 0; i < n; i++) out[i] = p[i] == NA_INTEGER ? NA_REAL : (double) p[i];
  return out;
}

/* The first non-finite element (0-based) or -1: a SIMD, threaded scan. */
static R_xlen_t first_nonfinite(const double *x, R_xlen_t n) {
  return kernel_first_nonfinite(n, x);
}

static int ptr_compare(const void *a, const void *b) {
  const void *pa = *(const void *const *) a, *pb = *(const void *const *) b;
  return pa < pb ? -1 : (pa > pb ? 1 : 0);
}

/* ---- building results ------------------------------------------------- */

/* A fresh copy of the caller's structure: lists keep their attributes, every
 * leaf becomes a new double vector with the leaf's attributes. `vin` gets
 * where each leaf's values can be read as doubles: the caller's vector when
 * it is double (the values are not copied yet: the update reads them from
 * there and writes the result once), else the converted copy in the leaf. */
static SEXP copy_structure(SEXP skel, SEXP v, leaf_rec *leaves, R_xlen_t *next) {
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
  if (TYPEOF(v) == REALSXP) {
    rec->vin = REAL_RO(v);
  } else {
    copy_doubles(n, as_doubles(v), REAL(leaf));
    rec->vin = REAL(leaf);
  }
  (*next)++;
  UNPROTECT(1);
  return leaf;
}

/* ---- the step ---------------------------------------------------------- */

/* `loss_scale_` overrides the configured loss_scale_factor when > 0: the
 * dynamic loss-scale wrapper passes its current scale there (SPEC A5). */
SEXP C_step(SEXP ptr, SEXP grads, SEXP vars, SEXP skel, SEXP lr_, SEXP in_place_,
            SEXP loss_scale_) {
  rms_state *st = state_get(ptr);
  if (!st->built) rms_abort("the optimizer is not built");
  if (TYPEOF(lr_) != REALSXP || XLENGTH(lr_) != 1 || !R_FINITE(REAL(lr_)[0]) || REAL(lr_)[0] < 0)
    rms_abort("the learning rate must be a finite number >= 0");
  const double lr = REAL(lr_)[0];
  /* Bit 0: update in place; bit 1: the caller has already warned about NULL
   * gradients (see step 1), so go ahead. */
  const int flags = Rf_asInteger(in_place_);
  const int in_place = flags != NA_INTEGER && (flags & 1);
  const int allow_null = flags != NA_INTEGER && (flags & 2);
  const double *cfg = st->cfg;
  const R_xlen_t nvar = st->nvar;

  /* 1. Every check, before anything changes. */
  walk_ctx w;
  leaf_rec stack[FEW_LEAVES];
  walk_all(&w, stack, st, skel, vars, grads, 1);
  if (w.code != SIG_NONE) return make_signal(&w, w.code, R_NilValue);
  leaf_rec *L = w.leaves;
  R_xlen_t n_null = 0;
  for (R_xlen_t i = 0; i < nvar; i++) {
    if (L[i].grad == R_NilValue) {
      n_null++;
      continue;
    }
    L[i].g = as_doubles(L[i].grad);
    R_xlen_t bad = first_nonfinite(L[i].g, L[i].len);
    if (bad >= 0) {
      w.index = i + 1;
      w.which = 1;
      snprintf(w.detail, sizeof w.detail, "%.0f", (double) bad + 1);
      return make_signal(&w, SIG_NONFINITE, R_NilValue);
    }
  }
  if (n_null == nvar) return make_signal(&w, SIG_ALL_NULL, R_NilValue);
  /* NULL gradients: R warns before anything changes (a warning turned into
   * an error must find the optimizer as it was), then calls again. */
  if (n_null > 0 && !allow_null) {
    SEXP idx = PROTECT(Rf_allocVector(REALSXP, n_null));
    R_xlen_t j = 0;
    for (R_xlen_t i = 0; i < nvar; i++)
      if (L[i].g == NULL && L[i].grad == R_NilValue) REAL(idx)[j++] = (double) i + 1;
    SEXP sig = make_signal(&w, SIG_NULL_GRADIENTS, idx);
    UNPROTECT(1);
    return sig;
  }
  if (in_place) {
    for (R_xlen_t i = 0; i < nvar; i++) {
      if (TYPEOF(L[i].var) != REALSXP) {
        w.index = i + 1;
        snprintf(w.detail, sizeof w.detail, "%s", Rf_type2char(TYPEOF(L[i].var)));
        return make_signal(&w, SIG_IN_PLACE_TYPE, R_NilValue);
      }
    }
    /* Two variables backed by the same memory would be updated twice. */
    if (nvar > 1) {
      void **p = (void **) R_alloc(nvar, sizeof(void *));
      R_xlen_t np = 0;
      for (R_xlen_t i = 0; i < nvar; i++)
        if (XLENGTH(L[i].var) > 0) p[np++] = (void *) REAL(L[i].var);
      qsort(p, np, sizeof(void *), ptr_compare);
      for (R_xlen_t i = 1; i < np; i++) {
        if (p[i] == p[i - 1]) {
          w.index = 0;
          return make_signal(&w, SIG_SHARED, R_NilValue);
        }
      }
    }
  }
  /* A pending Ctrl-C fires here, before the state changes, never halfway. */
  R_CheckUserInterrupt();

  /* 2. Results: fresh vectors shaped like the caller's variables, or (in
   * place) the caller's own vectors. Each variable is read from L[i].vin and
   * written to L[i].out exactly once; `written` marks those the update wrote. */
  int nprot = 0;
  SEXP result = vars;
  if (in_place) {
    for (R_xlen_t i = 0; i < nvar; i++) L[i].out = REAL(L[i].var), L[i].vin = L[i].out;
  } else {
    R_xlen_t next = 0;
    result = PROTECT(copy_structure(skel, vars, L, &next));
    nprot++;
  }

  /* 3. The update (SPEC A1 steps 2-6), one variable segment at a time, in
   * one fused pass per segment (kernels.c: SIMD, threads for long segments)
   * that also transforms the gradient, resets the accumulator and, with EMA,
   * does SPEC A1 7-8 for the segment. */
  const double *off = st->offsets;
  const double k = cfg[CFG_ACCUM_STEPS];
  const double it = *st->iterations;
  const int is_update = k == 0 || fmod(it + 1, k) == 0;
  const double override = Rf_asReal(loss_scale_);
  const double loss_scale = R_FINITE(override) && override > 0 ? override : cfg[CFG_LOSS_SCALE];
  const int use_ema = cfg[CFG_USE_EMA] != 0;
  double ema_m = 0;
  int overwrite = 0;
  if (use_ema) {
    double iterations = k != 0 ? floor(it / k) : it;
    double f = cfg[CFG_EMA_OVERWRITE];
    ema_m = iterations == 0 ? 0 : cfg[CFG_EMA_MOMENTUM];
    overwrite = f != 0 && fmod(iterations + 1, f) == 0;
  }
  if (!is_update) {
    for (R_xlen_t i = 0; i < nvar; i++) {
      if (L[i].g == NULL) continue;
      R_xlen_t o = (R_xlen_t) off[i], n = (R_xlen_t) off[i + 1] - o;
      grad_accumulate(loss_scale, n, L[i].g, st->accumulator + o);
    }
  } else {
    grad_transform t = {loss_scale, NULL, k, 0, 0, cfg[CFG_CLIPVALUE]};
    double global_denom = 0;
    if (cfg[CFG_GLOBAL_CLIPNORM] != 0) {
      double total = 0;
      for (R_xlen_t i = 0; i < nvar; i++) {
        if (L[i].g == NULL) continue;
        R_xlen_t o = (R_xlen_t) off[i], n = (R_xlen_t) off[i + 1] - o;
        t.acc = k != 0 ? st->accumulator + o : NULL;
        total += grad_sumsq(&t, n, L[i].g);
      }
      double norm = sqrt(total), c = cfg[CFG_GLOBAL_CLIPNORM];
      global_denom = norm > c ? norm : c;
    }
    rms_params p = {lr, cfg[CFG_RHO], cfg[CFG_MOMENTUM], cfg[CFG_EPSILON], 0,
                    cfg[CFG_CENTERED] != 0};
    for (R_xlen_t i = 0; i < nvar; i++) {
      if (L[i].g == NULL) continue;
      R_xlen_t o = (R_xlen_t) off[i], n = (R_xlen_t) off[i + 1] - o;
      double *acc = k != 0 ? st->accumulator + o : NULL;
      t.acc = acc;
      if (cfg[CFG_GLOBAL_CLIPNORM] != 0) {
        t.clip_norm = cfg[CFG_GLOBAL_CLIPNORM];
        t.clip_denom = global_denom;
      } else if (cfg[CFG_CLIPNORM] != 0) {
        /* Reads the accumulator, so before the update resets it. */
        double norm = sqrt(grad_sumsq(&t, n, L[i].g)), c = cfg[CFG_CLIPNORM];
        t.clip_norm = c;
        t.clip_denom = norm > c ? norm : c;
      }
      p.weight_decay = st->decay_mask[i] ? cfg[CFG_WEIGHT_DECAY] : 0;
      rms_arrays a = {L[i].vin, L[i].g, L[i].out, st->velocity + o,
                      st->momentum ? st->momentum + o : NULL,
                      st->average_gradient ? st->average_gradient + o : NULL,
                      acc, use_ema ? st->ema + o : NULL};
      rms_step(&p, &t, ema_m, overwrite, n, &a);
      L[i].written = 1;
    }
  }

  /* 4. Variables the update did not touch keep their values (copied on the
   * value path); with EMA their averages move too (SPEC A1 7-8). */
  for (R_xlen_t i = 0; i < nvar; i++) {
    if (L[i].written) continue;
    R_xlen_t o = (R_xlen_t) off[i], n = (R_xlen_t) off[i + 1] - o;
    if (use_ema) ema_step(ema_m, overwrite, n, L[i].vin, L[i].out, st->ema + o);
    else copy_doubles(n, L[i].vin, L[i].out);
    /* Keras resets every accumulator on an update call, also those of
     * variables whose gradient was NULL in this call. */
    if (is_update && k != 0) fill_zero(n, st->accumulator + o);
  }
  *st->iterations = it + 1;
  UNPROTECT(nprot);
  return result;
}

/* The variables with their EMA values in place of their values. */
SEXP C_ema_values(SEXP ptr, SEXP vars, SEXP skel) {
  rms_state *st = state_get(ptr);
  walk_ctx w;
  leaf_rec stack[FEW_LEAVES];
  walk_all(&w, stack, st, skel, vars, R_NilValue, 0);
  if (w.code != SIG_NONE) return make_signal(&w, w.code, R_NilValue);
  leaf_rec *L = w.leaves;
  R_xlen_t next = 0;
  SEXP result = PROTECT(copy_structure(skel, vars, L, &next));
  for (R_xlen_t i = 0; i < st->nvar; i++) {
    R_xlen_t o = (R_xlen_t) st->offsets[i], n = (R_xlen_t) st->offsets[i + 1] - o;
    copy_doubles(n, st->ema != NULL ? st->ema + o : L[i].vin, L[i].out);
  }
  UNPROTECT(1);
  return result;
}

/* Does `vars` have the built structure? NULL when it does, else a signal. */
SEXP C_check_structure(SEXP ptr, SEXP vars, SEXP skel) {
  rms_state *st = state_get(ptr);
  walk_ctx w;
  leaf_rec stack[FEW_LEAVES];
  walk_all(&w, stack, st, skel, vars, R_NilValue, 0);
  return w.code == SIG_NONE ? R_NilValue : make_signal(&w, w.code, R_NilValue);
}

/* The fast path of opt$step(): reads the pointer, the structure and the
 * learning rate from the optimizer's private environment, so the R method is
 * one closure and one .Call. Anything unusual goes to R's optimizer_step(). */
SEXP C_step_private(SEXP private_env, SEXP grads, SEXP vars, SEXP in_place) {
  static SEXP s_ptr = NULL, s_skeleton, s_lr;
  if (s_ptr == NULL) {
    s_ptr = Rf_install("ptr");
    s_skeleton = Rf_install("skeleton");
    s_lr = Rf_install("lr");
  }
  if (TYPEOF(private_env) != ENVSXP) rms_abort("not an optimizer");
  SEXP ptr = Rf_findVarInFrame3(private_env, s_ptr, TRUE);
  SEXP skel = Rf_findVarInFrame3(private_env, s_skeleton, TRUE);
  SEXP lr = Rf_findVarInFrame3(private_env, s_lr, TRUE);
  int nprot = 0;
  SEXP res;
  if (TYPEOF(ptr) != EXTPTRSXP || skel == R_UnboundValue || skel == R_NilValue ||
      TYPEOF(lr) != REALSXP || XLENGTH(lr) != 1) {
    res = PROTECT(slow_signal());
    nprot++;
  } else {
    PROTECT(lr);
    SEXP zero = PROTECT(Rf_ScalarReal(0));
    res = PROTECT(C_step(ptr, grads, vars, skel, lr, in_place, zero));
    nprot += 3;
  }
  if (TYPEOF(res) == VECSXP && Rf_inherits(res, "rmsprop_signal")) {
    /* Nothing changed: hand the call to R's general path (first step,
     * schedules, NULL-gradient warnings, classed errors). Doing it from here
     * keeps the R method a bare .Call. */
    SEXP ns = PROTECT(R_FindNamespace(Rf_mkString("rmsprop")));
    /* quote() the caller's values: a symbol or call among them must be
     * passed on as data, never evaluated. */
    SEXP q = Rf_install("quote");
    SEXP qg = PROTECT(Rf_lang2(q, grads)), qv = PROTECT(Rf_lang2(q, vars));
    SEXP call = PROTECT(Rf_lang5(Rf_install("optimizer_step"), private_env, qg, qv, in_place));
    nprot += 4;
    res = Rf_eval(call, ns);
  }
  UNPROTECT(nprot);
  return res;
}
