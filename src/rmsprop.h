/* rmsprop.h: private header shared by the C files of the package.
 *
 * kernels.c (with kernels_body.h) owns the numeric loops (plain doubles, no R
 * API); state.c owns the external pointer and the R vectors that hold the
 * optimizer state; step.c owns the .Call entry points that validate R input
 * and drive the kernels; info.c reports what the kernels run on; recycle.c
 * gives large results memory that earlier results have given back.
 */
#ifndef RMSPROP_H
#define RMSPROP_H

#ifndef R_NO_REMAP
#define R_NO_REMAP
/* ---- recycle.c -------------------------------------------------------- */

/* A new double vector of length n; large ones reuse memory R has freed. */
SEXP recycled_doubles(R_xlen_t n);

#endif
#include <R.h>
#include <Rinternals.h>
#include <stddef.h>

/* ---- kernels.c -------------------------------------------------------- */

/* What one RMSprop update needs besides the arrays. */
typedef struct {
  double lr, rho, momentum, epsilon;
  double weight_decay; /* 0 when this variable takes no weight decay */
  int centered;
} rms_params;

/* How a raw gradient becomes the gradient the update uses (SPEC A1 2-4). */
typedef struct {
  double loss_scale;      /* divide by it; 0 = off */
  const double *acc;      /* accumulated gradients to add, or NULL */
  double accum_steps;     /* divide (g + acc) by it; 0 = off */
  double clip_norm;       /* c of g * c / max(norm, c); 0 = off */
  double clip_denom;      /* max(norm, c) */
  double clip_value;      /* clamp to [-c, c]; 0 = off */
} grad_transform;

double grad_sumsq(const grad_transform *t, R_xlen_t n, const double *g);
void grad_accumulate(double loss_scale, R_xlen_t n, const double *g, double *acc);

/* The arrays of one variable segment for the fused step. */
typedef struct {
  const double *v_in, *g;  /* values read, raw gradient */
  double *v_out;           /* new values (may equal v_in: in place) */
  double *ms, *mom, *mg;   /* slots; mom and mg NULL when unused */
  double *acc;             /* accumulated gradients, read then reset to 0; NULL = none */
  double *avg;             /* EMA averages, NULL = no EMA */
} rms_arrays;
/* SPEC A1 steps 2-8 for one segment in one pass (t may be NULL; its acc field
 * is ignored in favour of a->acc); threads and SIMD inside. */
void rms_step(const rms_params *p, const grad_transform *t, double ema_m, int ema_overwrite,
              R_xlen_t n, const rms_arrays *a);
/* EMA of a segment the update did not touch: avg updated from v_in, and v_out
 * gets v_in (or avg on overwrite calls). */
void ema_step(double m, int overwrite, R_xlen_t n, const double *v_in, double *v_out, double *avg);
/* First non-finite element of x (0-based), or -1. */
R_xlen_t kernel_first_nonfinite(R_xlen_t n, const double *x);
void fill_zero(R_xlen_t n, double *x);
void copy_doubles(R_xlen_t n, const double *from, double *to);
const char *kernel_isa(void);
int kernel_threads(void);
void kernel_set_threads(int n);
void kernel_register_fork_handler(void);   /* once, from R_init_rmsprop() */

/* ---- state.c ---------------------------------------------------------- */

/* Positions of the numeric configuration in the "config" vector of the state. */
enum {
  CFG_RHO, CFG_MOMENTUM, CFG_EPSILON, CFG_CENTERED, CFG_WEIGHT_DECAY, CFG_CLIPNORM,
  CFG_CLIPVALUE, CFG_GLOBAL_CLIPNORM, CFG_USE_EMA, CFG_EMA_MOMENTUM, CFG_EMA_OVERWRITE,
  CFG_LOSS_SCALE, CFG_ACCUM_STEPS, CFG_LENGTH
};

/* Positions in the state list kept in the pointer's `prot` slot. */
enum {
  ST_CONFIG, ST_ITERATIONS, ST_OFFSETS, ST_DECAY_MASK, ST_VELOCITY, ST_MOMENTUM,
  ST_AVERAGE_GRADIENT, ST_EMA, ST_ACCUMULATOR, ST_LENGTH
};

/* The pointer's address: config scalars and raw pointers into the R vectors
 * of `prot`, rebuilt from `prot` whenever the address is NULL. */
typedef struct {
  double cfg[CFG_LENGTH];
  int built;
  R_xlen_t nvar, total;
  double *iterations;
  const double *offsets; /* nvar + 1 offsets, stored as doubles */
  const int *decay_mask;
  double *velocity, *momentum, *average_gradient, *ema, *accumulator;
} rms_state;

void rms_abort(const char *fmt, ...);
rms_state *state_get(SEXP ptr);
SEXP state_list(SEXP ptr);

/* ---- recycle.c -------------------------------------------------------- */

/* A new double vector of length n; large ones reuse memory R has freed. */
SEXP recycled_doubles(R_xlen_t n);

#endif
