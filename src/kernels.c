/* kernels.c: the numeric loops of one optimizer step, on plain double arrays.
 *
 * Owns: the arithmetic of SPEC A1 steps 2-7, written in exactly the order of
 * the SPEC formulas so results agree with a plain-R reference bit for bit
 * wherever IEEE arithmetic allows.
 * Must never: call the R API, allocate, raise errors, or reorder floating
 * point operations (no algebraic shortcuts such as multiplying by 1/x).
 */
#include "rmsprop.h"
#include <math.h>

int grad_transform_active(const grad_transform *t) {
  return t->loss_scale != 0 || t->acc != NULL || t->clip_norm != 0 || t->clip_value != 0;
}

/* The gradient before clipping: g / loss_scale, then (g + acc) / k. */
static inline double pre_clip(const grad_transform *t, const double *g, R_xlen_t i) {
  double x = g[i];
  if (t->loss_scale != 0) x = x / t->loss_scale;
  if (t->acc != NULL) x = (x + t->acc[i]) / t->accum_steps;
  return x;
}

void grad_prepare(const grad_transform *t, R_xlen_t n, const double *g, double *out) {
  const double cn = t->clip_norm, cd = t->clip_denom, cv = t->clip_value;
  for (R_xlen_t i = 0; i < n; i++) {
    double x = pre_clip(t, g, i);
    if (cn != 0) x = x * cn / cd;
    if (cv != 0) x = x < -cv ? -cv : (x > cv ? cv : x);
    out[i] = x;
  }
}

/* Sum of squares of the pre-clip gradient, summed in index order so the
 * result never depends on how the work is split. */
double grad_sumsq(const grad_transform *t, R_xlen_t n, const double *g) {
  double s = 0;
  for (R_xlen_t i = 0; i < n; i++) {
    double x = pre_clip(t, g, i);
    s += x * x;
  }
  return s;
}

void grad_accumulate(double loss_scale, R_xlen_t n, const double *g, double *acc) {
  if (loss_scale != 0) {
    for (R_xlen_t i = 0; i < n; i++) acc[i] = acc[i] + g[i] / loss_scale;
  } else {
    for (R_xlen_t i = 0; i < n; i++) acc[i] = acc[i] + g[i];
  }
}

/* Weight decay of SPEC A1 step 5, applied to the value the update reads. */
static inline double decayed(const rms_params *p, double v) {
  return p->weight_decay != 0 ? v - v * p->weight_decay * p->lr : v;
}

/* One loop per (centered, momentum) combination keeps every inner loop free
 * of branches on loop-invariant flags. */
void rms_update(const rms_params *p, R_xlen_t n, const double *v_in, const double *g,
                double *v_out, double *ms, double *mom, double *mg) {
  const double lr = p->lr, rho = p->rho, one_minus_rho = 1 - p->rho;
  const double eps = p->epsilon, beta = p->momentum;
  if (!p->centered && beta == 0) {
    for (R_xlen_t i = 0; i < n; i++) {
      double gi = g[i];
      double s = rho * ms[i] + one_minus_rho * (gi * gi);
      ms[i] = s;
      v_out[i] = decayed(p, v_in[i]) - lr * gi / sqrt(s + eps);
    }
  } else if (!p->centered) {
    for (R_xlen_t i = 0; i < n; i++) {
      double gi = g[i];
      double s = rho * ms[i] + one_minus_rho * (gi * gi);
      ms[i] = s;
      double m = beta * mom[i] + lr * gi / sqrt(s + eps);
      mom[i] = m;
      v_out[i] = decayed(p, v_in[i]) - m;
    }
  } else {
    for (R_xlen_t i = 0; i < n; i++) {
      double gi = g[i];
      double s = rho * ms[i] + one_minus_rho * (gi * gi);
      double a = rho * mg[i] + one_minus_rho * gi;
      ms[i] = s;
      mg[i] = a;
      double inc = lr * gi / sqrt(s - a * a + eps);
      if (beta > 0) {
        double m = beta * mom[i] + inc;
        mom[i] = m;
        v_out[i] = decayed(p, v_in[i]) - m;
      } else {
        v_out[i] = decayed(p, v_in[i]) - inc;
      }
    }
  }
}

void ema_update(double m, R_xlen_t n, const double *v, double *avg) {
  const double one_minus_m = 1 - m;
  for (R_xlen_t i = 0; i < n; i++) avg[i] = m * avg[i] + one_minus_m * v[i];
}

void fill_zero(R_xlen_t n, double *x) {
  for (R_xlen_t i = 0; i < n; i++) x[i] = 0;
}

void copy_doubles(R_xlen_t n, const double *from, double *to) {
  if (from != to)
    for (R_xlen_t i = 0; i < n; i++) to[i] = from[i];
}

const char *kernel_isa(void) { return "scalar"; }
int kernel_threads(void) { return 1; }
void kernel_set_threads(int n) { (void) n; }
