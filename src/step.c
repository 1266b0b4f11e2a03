/* step.c: the .Call entry points of a step, and of the other calls that take
 * the caller's variables (finalize_variable_values, build on a built
 * optimizer).
 *
 * Owns: the order of one call: walk the structure (structure.c), check every
 * value (gradients and variables finite, in-place rules), make the results,
 * then update (update.c). Every check comes BEFORE any state changes. And
 * what a step proved about its results (the vectors it wrote all finite),
 * which spares the next step a read of those very vectors (below).
 * Must never: write into a vector the caller can see (except in the
 * documented in-place mode), evaluate R code, or raise an R error for bad
 * user input: input problems come back to R as an "rmsprop_signal" list
 * (structure.c), and R words the classed condition from it.
 */
#include "calls.h"
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Flags of C_step (an integer). */
#define STEP_IN_PLACE 1  /* overwrite the caller's double vectors */
#define STEP_ALLOW_NULL 2 /* R has warned about NULL gradients: go ahead */

static int ptr_compare(const void *a, const void *b) {
  const void *pa = *(const void *const *) a, *pb = *(const void *const *) b;
  return pa < pb ? -1 : (pa > pb ? 1 : 0);
}

/* Small variables are scanned here: the kernels' dispatch (instruction
 * set, threads) costs more than the loop for a few numbers, and a list of
 * many small variables pays it for each. Same answer as the kernel. */
#define SMALL_SCAN 32
static R_xlen_t small_first_nonfinite(R_xlen_t n, const double *a, const double *b, int *in_b) {
  /* x * 0 is 0 exactly for finite x, NaN otherwise (R_FINITE is a call). */
  for (R_xlen_t i = 0; i < n; i++) {
    if (!(a[i] * 0 == 0)) return i;
    if (b != NULL && !(b[i] * 0 == 0)) {
      *in_b = 1;
      return i;
    }
  }
  return -1;
}

/* ---- what the last step proved ---------------------------------------------
 *
 * Refusing non-finite variables (SPEC B) costs a read of every variable
 * before the update, which for large variables is a pass over memory of its
 * own. In the common loops, `x <- opt$step(g, x)` and `opt$step_in_place(g,
 * x)` again, the variables are the very vectors the last step wrote, and the
 * update saw every value it wrote (the kernels report it): reading them again
 * proves nothing new. So after each step the state holds, per variable, the
 * vector it wrote when all of it was finite (st->known, rmsprop.h), and a
 * variable that is that very vector (the same SEXP, at the same position)
 * skips the scan; its gradient is scanned as always.
 * Why that is safe: the state holds each such vector twice, so its
 * reference count is at least two (MAYBE_SHARED) whoever else has it, even
 * as a temporary (`f(opt$step(g, x))`), and everything in R that changes a
 * vector's values (`x[i] <- v`, `x$w[i] <- v`, arithmetic that reuses an
 * operand's memory, C code that follows R's rules: copy what is
 * MAYBE_SHARED, or MAYBE_REFERENCED) copies it first: the changed
 * variable is another vector. What writes into a vector without that check:
 * step_in_place() of any optimizer logs the vectors it writes (write_log),
 * and a state's knowledge of a vector lapses when the log shows a write to
 * it since (or has lost track: then every variable is scanned once). ALTREP
 * vectors (whose data may live elsewhere) and short variables (a scan costs
 * nothing) are never held. C code that writes into shared vectors against
 * R's rules (as Rcpp permits) is outside what this can see. */
#define KNOWN_MIN_LENGTH (SMALL_SCAN + 1)

/* The last WRITE_LOG vectors step_in_place() wrote, by address (compared,
 * never followed: a vector a state holds stays at its address while held, so
 * an equal address after the state's epoch is a write to that very vector),
 * and the number of writes ever logged. R's main thread only. */
#define WRITE_LOG 256
static const void *write_log[WRITE_LOG];
static unsigned long long n_writes = 1;

void known_clear(rms_state *st) {
  st->known_epoch = 0;
  SET_VECTOR_ELT(st->known, 0, R_NilValue);
}

/* The list of vectors the last step proved finite (2 * nvar: each vector at
 * i and again at nvar + i), or R_NilValue. */
static SEXP known_list(const rms_state *st) {
  if (st->known_epoch == 0) return R_NilValue;
  SEXP k = VECTOR_ELT(st->known, 0);
  return TYPEOF(k) == VECSXP && XLENGTH(k) == 2 * st->nvar ? k : R_NilValue;
}

/* Is x the i-th vector of `known`, and unwritten by step_in_place() since? */
static int is_known(const rms_state *st, SEXP known, R_xlen_t i, SEXP x) {
  if (known == R_NilValue || VECTOR_ELT(known, i) != x) return 0;
  unsigned long long since = st->known_epoch;
  if (n_writes - since > WRITE_LOG) return 0;
  for (unsigned long long e = since; e < n_writes; e++)
    if (write_log[e % WRITE_LOG] == (const void *) x) return 0;
  return 1;
}

/* Before the update (allocating then cannot fail halfway): the list the
 * results will go into, when some variable is long enough to be held. */
static void known_prepare(rms_state *st, const leaf_rec *L) {
  R_xlen_t i = 0;
  while (i < st->nvar && L[i].len < KNOWN_MIN_LENGTH) i++;
  if (i == st->nvar) return;
  SEXP k = VECTOR_ELT(st->known, 0);
  if (TYPEOF(k) != VECSXP || XLENGTH(k) != 2 * st->nvar)
    SET_VECTOR_ELT(st->known, 0, Rf_allocVector(VECSXP, 2 * st->nvar));
}

/* After the update: log what step_in_place() wrote, then hold each result
 * that is long, not ALTREP, and was written finite, and forget the rest.
 * Allocates nothing. */
static void known_record(rms_state *st, const leaf_rec *L, int in_place) {
  const R_xlen_t nvar = st->nvar;
  SEXP k = VECTOR_ELT(st->known, 0);
  if (TYPEOF(k) != VECSXP || XLENGTH(k) != 2 * nvar) return; /* nothing long */
  for (R_xlen_t i = 0; i < nvar; i++) {
    int is_long = L[i].len >= KNOWN_MIN_LENGTH;
    if (in_place && is_long) write_log[n_writes++ % WRITE_LOG] = (const void *) L[i].res;
    SEXP keep = is_long && L[i].finite && !ALTREP(L[i].res) ? L[i].res : R_NilValue;
    if (VECTOR_ELT(k, i) != keep) {
      SET_VECTOR_ELT(k, i, keep);
      SET_VECTOR_ELT(k, nvar + i, keep);
    }
  }
  st->known_epoch = n_writes;
}

/* Values as doubles for every record, and the first non-finite value of a
 * gradient or a variable (one pass over both); 0 when all are finite. A
 * variable the last step proved finite (`known`, see above) is not read:
 * only its gradient is. */
static int scan_values(walk_ctx *w, int with_grads, const rms_state *st) {
  SEXP known = known_list(st);
  leaf_rec *L = w->leaves;
  for (R_xlen_t i = 0; i < w->nvar; i++) {
    L[i].vin = leaf_doubles(L[i].var);
    L[i].g = with_grads && L[i].grad != R_NilValue ? leaf_doubles(L[i].grad) : NULL;
    int in_g = 0;
    R_xlen_t bad;
    if (L[i].len <= SMALL_SCAN) {
      bad = small_first_nonfinite(L[i].len, L[i].vin, L[i].g, &in_g);
    } else if (is_known(st, known, i, L[i].var)) {
      bad = L[i].g == NULL ? -1 : kernel_first_nonfinite_pair(L[i].len, L[i].g, NULL, &in_g);
      in_g = 1;
    } else {
      bad = kernel_first_nonfinite_pair(L[i].len, L[i].vin, L[i].g, &in_g);
    }
    if (bad >= 0) {
      walk_fail_at(w, PROBLEM_NONFINITE, in_g, i + 1, bad + 1, R_NilValue);
      return 1;
    }
  }
  return 0;
}

/* In place: plain double vectors only (an ALTREP vector, such as a compact
 * sequence `as.double(1:n)` or a memory-mapped or wrapped one, keeps a
 * description of its values that writing through REAL() would not update:
 * sum() would still answer from the description), and no two backed by the
 * same memory (they
 * would be updated twice). A gradient backed by another variable's memory
 * is copied first: the update of that variable would otherwise change it
 * before (or, with a global clip norm, after) it is read, and the result
 * would differ from step()'s. A gradient that is its own variable needs no
 * copy: each element is read before it is written. */
static int check_in_place(walk_ctx *w) {
  leaf_rec *L = w->leaves;
  R_xlen_t nvar = w->nvar;
  for (R_xlen_t i = 0; i < nvar; i++) {
    if (TYPEOF(L[i].var) != REALSXP) {
      walk_fail_at(w, PROBLEM_IN_PLACE_TYPE, 0, i + 1, 0, L[i].var);
      return 1;
    }
    if (ALTREP(L[i].var)) {
      walk_fail_at(w, PROBLEM_IN_PLACE_ALTREP, 0, i + 1, 0, R_NilValue);
      return 1;
    }
  }
  if (nvar > 1) {
    void **p = (void **) R_alloc(nvar, sizeof(void *));
    R_xlen_t np = 0;
    for (R_xlen_t i = 0; i < nvar; i++)
      if (L[i].len > 0) p[np++] = (void *) REAL(L[i].var);
    qsort(p, np, sizeof(void *), ptr_compare);
    for (R_xlen_t i = 1; i < np; i++) {
      if (p[i] == p[i - 1]) {
        walk_fail_at(w, PROBLEM_SHARED, 0, 0, 0, R_NilValue);
        return 1;
      }
    }
    for (R_xlen_t i = 0; i < nvar; i++) {
      const void *g = L[i].g;
      if (g == NULL || L[i].len == 0 || g == (const void *) REAL(L[i].var) ||
          bsearch(&g, p, np, sizeof(void *), ptr_compare) == NULL)
        continue;
      double *copy = (double *) R_alloc(L[i].len, sizeof(double));
      memcpy(copy, L[i].g, (size_t) L[i].len * sizeof(double));
      L[i].g = copy;
    }
  }
  return 0;
}

/* One call of step(). `lr` is the learning rate R resolved for this call;
 * `loss_scale_` > 0 overrides the configured loss_scale_factor (the dynamic
 * loss-scale wrapper passes its current scale, SPEC A5). Returns the new
 * variables (or, in place, the caller's own, updated), or a signal with
 * nothing changed. */
SEXP C_step(SEXP ptr, SEXP grads, SEXP vars, SEXP skel, SEXP lr_, SEXP flags_, SEXP loss_scale_) {
  rms_state *st = state_get(ptr);
  walk_ctx w;
  /* R's part of the road, asked for before anything is looked at: build on
   * the first step; evaluate a rate that is not a number (once per call). */
  if (skel == R_NilValue || TYPEOF(lr_) != REALSXP || XLENGTH(lr_) != 1) {
    memset(&w, 0, offsetof(walk_ctx, path_names));
    w.skel_at = w.found_at = R_NilValue;
    w.problem = skel == R_NilValue ? PROBLEM_NOT_BUILT : PROBLEM_LEARNING_RATE;
    return walk_signal(&w, R_NilValue);
  }
  if (!st->built) rms_abort("state", "the optimizer is not built");
  if (!R_FINITE(REAL(lr_)[0]) || REAL(lr_)[0] < 0)
    rms_abort("learning_rate", "the learning rate must be a finite number >= 0");
  if (TYPEOF(flags_) != INTSXP || XLENGTH(flags_) != 1 || INTEGER(flags_)[0] == NA_INTEGER)
    rms_abort("state", "malformed step flags");
  if (TYPEOF(loss_scale_) != REALSXP || XLENGTH(loss_scale_) != 1 ||
      !(R_FINITE(REAL(loss_scale_)[0]) && REAL(loss_scale_)[0] >= 0))
    rms_abort("state", "malformed loss scale");
  const int flags = INTEGER(flags_)[0];
  const int in_place = flags & STEP_IN_PLACE;
  const R_xlen_t nvar = st->nvar;

  /* 1. Every check, before anything changes. */
  leaf_rec stack[FEW_LEAVES];
  walk_structure(&w, stack, st, skel, vars, grads, 1);
  if (w.problem != PROBLEM_NONE || scan_values(&w, 1, st))
    return walk_signal(&w, R_NilValue);
  leaf_rec *L = w.leaves;
  R_xlen_t n_null = 0;
  for (R_xlen_t i = 0; i < nvar; i++) n_null += L[i].g == NULL;
  if (n_null == nvar) {
    walk_fail_at(&w, PROBLEM_ALL_NULL, 1, 0, 0, R_NilValue);
    return walk_signal(&w, R_NilValue);
  }
  /* NULL gradients: R warns before anything changes (a warning turned into
   * an error must find the optimizer as it was), then calls again. */
  if (n_null > 0 && !(flags & STEP_ALLOW_NULL)) {
    SEXP idx = PROTECT(Rf_allocVector(REALSXP, n_null));
    R_xlen_t j = 0;
    for (R_xlen_t i = 0; i < nvar; i++)
      if (L[i].g == NULL) REAL(idx)[j++] = (double) i + 1;
    walk_fail_at(&w, PROBLEM_NULL_GRADIENTS, 1, 0, 0, R_NilValue);
    SEXP sig = walk_signal(&w, idx);
    UNPROTECT(1);
    return sig;
  }
  if (in_place && check_in_place(&w)) return walk_signal(&w, R_NilValue);
  /* A pending Ctrl-C fires here, before the state changes, never halfway. */
  R_CheckUserInterrupt();

  /* 2. Results: fresh vectors shaped like the caller's variables, or (in
   * place) the caller's own vectors. */
  int nprot = 0;
  SEXP result = vars;
  if (in_place) {
    for (R_xlen_t i = 0; i < nvar; i++) {
      L[i].out = REAL(L[i].var);
      L[i].res = L[i].var;
    }
  } else {
    R_xlen_t next = 0;
    result = PROTECT(copy_structure(skel, vars, L, &next));
    nprot++;
  }
  known_prepare(st, L);

  /* 3. The update: nothing after this point can fail. */
  update_all(st, L, REAL(lr_)[0], REAL(loss_scale_)[0]);
  known_record(st, L, in_place);
  UNPROTECT(nprot);
  return result;
}

/* finalize_variable_values(): the variables with their EMA values in place
 * of their values (the variables themselves without EMA or before the first
 * step), after the same checks as a step. */
SEXP C_ema_values(SEXP ptr, SEXP vars, SEXP skel) {
  rms_state *st = state_get(ptr);
  if (!st->built) rms_abort("state", "the optimizer is not built");
  walk_ctx w;
  leaf_rec stack[FEW_LEAVES];
  walk_structure(&w, stack, st, skel, vars, R_NilValue, 0);
  if (w.problem != PROBLEM_NONE || scan_values(&w, 0, st))
    return walk_signal(&w, R_NilValue);
  if (st->ema == NULL || *st->iterations == 0) return vars;
  leaf_rec *L = w.leaves;
  R_xlen_t next = 0;
  SEXP result = PROTECT(copy_structure(skel, vars, L, &next));
  for (R_xlen_t i = 0; i < st->nvar; i++) {
    R_xlen_t o = (R_xlen_t) st->offsets[i], n = (R_xlen_t) st->offsets[i + 1] - o;
    copy_doubles(n, st->ema + o, L[i].out);
  }
  UNPROTECT(1);
  return result;
}

/* Does `vars` have the built structure? NULL when it does, else a signal. */
SEXP C_check_structure(SEXP ptr, SEXP vars, SEXP skel) {
  rms_state *st = state_get(ptr);
  if (!st->built) rms_abort("state", "the optimizer is not built");
  walk_ctx w;
  leaf_rec stack[FEW_LEAVES];
  walk_structure(&w, stack, st, skel, vars, R_NilValue, 0);
  return w.problem == PROBLEM_NONE ? R_NilValue : walk_signal(&w, R_NilValue);
}
