/* floor.c: the hardware floor for bench/bench.R, a plain fused RMSprop loop
 * (SPEC A1 step 6 without options) that the compiler vectorises. bench.R
 * compiles it with R CMD SHLIB and flags that are fine here but not in the
 * package (-O3 -fno-math-errno, optionally -mavx2: never -mfma, so the
 * arithmetic is the package's). Not part of the package build. */
#include <R.h>
#include <Rinternals.h>
#include <math.h>

static void fused(R_xlen_t n, const double *v_in, const double *g, double *v_out, double *ms,
                  double lr, double rho, double eps) {
  const double omr = 1 - rho;
  for (R_xlen_t i = 0; i < n; i++) {
    double gi = g[i];
    double s = rho * ms[i] + omr * (gi * gi);
    ms[i] = s;
    v_out[i] = v_in[i] - lr * gi / sqrt(s + eps);
  }
}

/* In place: v and ms are overwritten. */
SEXP floor_in_place(SEXP v, SEXP g, SEXP ms, SEXP lr, SEXP rho, SEXP eps) {
  fused(XLENGTH(v), REAL(v), REAL(g), REAL(v), REAL(ms), Rf_asReal(lr), Rf_asReal(rho),
        Rf_asReal(eps));
  return R_NilValue;
}

/* Value semantics: a fresh result vector, ms updated. */
SEXP floor_value(SEXP v, SEXP g, SEXP ms, SEXP lr, SEXP rho, SEXP eps) {
  SEXP out = PROTECT(Rf_allocVector(REALSXP, XLENGTH(v)));
  fused(XLENGTH(v), REAL(v), REAL(g), REAL(out), REAL(ms), Rf_asReal(lr), Rf_asReal(rho),
        Rf_asReal(eps));
  UNPROTECT(1);
  return out;
}
