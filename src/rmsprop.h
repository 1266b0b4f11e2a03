/* rmsprop.h: the private header shared by the C files of the package.
 *
 * kernels.c (with kernels_body.h) owns the numeric loops (plain doubles, no R
 * API); state.c owns the external pointer and the R list that holds the
 * optimizer state (its layout: state_layout.h); structure.c owns the walk of
 * the caller's variables and gradients against the built structure;
 * update.c drives the kernels over all variables for one call; step.c holds
 * the .Call entry points of a step (their prototypes, with every other
 * entry point's, are in calls.h); info.c reports what the kernels run on;
 * recycle.c gives large results memory that earlier results gave back.
 * It compiles on its own: every type it uses comes from the headers below.
 */
#ifndef RMSPROP_H
#define RMSPROP_H

#ifndef R_NO_REMAP
#define R_NO_REMAP
#endif
#include <R.h>
#include <Rinternals.h>
#include <stddef.h>
#include "state_layout.h"

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
 * is ignored in favour of a->acc); threads and SIMD inside. Returns 1 when
 * every value written to v_out is finite, else 0. */
int rms_step(const rms_params *p, const grad_transform *t, double ema_m, int ema_overwrite,
             R_xlen_t n, const rms_arrays *a);
/* EMA of a segment the update did not touch: avg updated from v_in, and v_out
 * gets v_in (or avg on overwrite calls). Returns 1 when every value v_out
 * then holds is finite, else 0. */
int ema_step(double m, int overwrite, R_xlen_t n, const double *v_in, double *v_out, double *avg);
/* The first element (0-based) at which a or b (b may be NULL) is not
 * finite, in one pass over both, or -1; *in_b tells which (a wins a tie). */
R_xlen_t kernel_first_nonfinite_pair(R_xlen_t n, const double *a, const double *b, int *in_b);
void fill_zero(R_xlen_t n, double *x);
void copy_doubles(R_xlen_t n, const double *from, double *to);
const char *kernel_isa(void);
int kernel_threads(void);
void kernel_set_threads(int n);
int kernel_cores(void);
void kernel_register_fork_handler(void);   /* once, from R_init_rmsprop() */

/* ---- state.c ---------------------------------------------------------- */

/* The pointer's address: config scalars and raw pointers into the R vectors
 * of the state list, rebuilt from the list whenever the address is NULL. */
typedef struct {
  double cfg[CFG_LENGTH];
  int built;
  R_xlen_t nvar, total;
  double *iterations, *last_lr;
  const double *offsets; /* nvar + 1 offsets, stored as doubles */
  const int *decay_mask;
  double *velocity, *momentum, *average_gradient, *ema, *accumulator;
  /* What the last step proved about its results (step.c): `known` is a list
   * of length one whose element is a list holding, for each variable, the
   * vector the step returned or updated when every value it wrote there was
   * finite (else NULL). Held twice, so R's reference count of each is at
   * least two and R copies it before any change (a changed variable is
   * another vector). `known` is the value of a weak reference keyed on the
   * pointer: alive with the optimizer, never in its prot slot, so
   * serialize() never writes it. `known_epoch`: the count of in-place
   * writes when it was recorded (step.c); 0 = empty. */
  SEXP known;
  unsigned long long known_epoch;
} rms_state;

/* Raise an R error of class rmsprop_error_<kind> from C. Only for what R
 * code cannot check first (a damaged, forged or newer state, a misuse of an
 * internal entry point); never returns. */
void rms_abort(const char *kind, const char *fmt, ...);
rms_state *state_get(SEXP ptr);
SEXP state_list(SEXP ptr);

/* ---- structure.c ------------------------------------------------------- */

/* What a step knows about one variable after the walk. */
typedef struct {
  SEXP var, grad;         /* the caller's leaves (grad R_NilValue = NULL gradient) */
  const double *g;        /* gradient as doubles, NULL when the gradient is NULL */
  const double *vin;      /* where the current values are read */
  double *out;            /* where the new values are written */
  R_xlen_t len;           /* the variable's length */
  int written;            /* the update wrote out */
  SEXP res;               /* the vector holding the new values (the caller's, in place) */
  int finite;             /* every value res holds after the update is finite */
} leaf_rec;

/* Kinds of problem a walk or a step reports to R (R words the message). */
#define RMS_PROBLEMS(X)                                                     \
  X(NONE, "none")                                                           \
  X(NOT_BUILT, "not_built")       /* R builds, then steps */                \
  X(LEARNING_RATE, "learning_rate") /* R evaluates the rate, then steps */  \
  X(NOT_LIST, "not_list")         /* a list was expected */                 \
  X(NOT_LEAF, "not_leaf")         /* a numeric array was expected */        \
  X(LIST_LENGTH, "list_length")                                             \
  X(NAMES, "names")                                                         \
  X(TYPE, "type")                 /* a leaf of a non-numeric type */        \
  X(LENGTH, "length")                                                       \
  X(DIM, "dim")                                                             \
  X(NONFINITE, "nonfinite")                                                 \
  X(ALL_NULL, "all_null")                                                   \
  X(NULL_GRADIENTS, "null_gradients")                                       \
  X(IN_PLACE_TYPE, "in_place_type")                                         \
  X(IN_PLACE_ALTREP, "in_place_altrep") /* not plain memory: refused */     \
  X(SHARED, "shared")                                                       \
  X(CORRUPT, "corrupt")
#define RMS_ENUM_PROBLEM(e, s) PROBLEM_##e,
enum { RMS_PROBLEMS(RMS_ENUM_PROBLEM) PROBLEM_COUNT };
#undef RMS_ENUM_PROBLEM

/* A walk over the caller's structure against the built skeleton. */
typedef struct {
  R_xlen_t nvar, next;
  const double *offsets;  /* the C state's segments, checked against the skeleton */
  leaf_rec *leaves;
  int problem;            /* PROBLEM_* of the first problem found */
  int in_grads;           /* 1: found in the gradients, 0: in the variables */
  R_xlen_t index;         /* 1-based depth-first index of the variable, 0 = none */
  R_xlen_t position;      /* 1-based element position (non-finite values), 0 = none */
  SEXP skel_at, found_at; /* the skeleton node and the caller's node where it was found */
  int depth;              /* the path from the top to that node: */
  SEXP path_names[128];   /*   names of the list at each level (or R_NilValue) */
  R_xlen_t path_index[128]; /* and the 0-based index taken there */
} walk_ctx;

/* Steps on up to this many variables keep their records on the C stack:
 * lists of many small variables then make no heap allocation for them. */
#define FEW_LEAVES 128

/* Walk `vars` (and `grads` when with_grads) against `skel`; on success the
 * records of every variable are in w->leaves (stack or R_alloc memory). */
void walk_structure(walk_ctx *w, leaf_rec *stack, const rms_state *st, SEXP skel, SEXP vars,
                    SEXP grads, int with_grads);
/* Record a problem found outside the walk (at variable `index`, 1-based;
 * `found` the caller's leaf, or R_NilValue). */
void walk_fail_at(walk_ctx *w, int problem, int in_grads, R_xlen_t index, R_xlen_t position,
                  SEXP found);
/* The R list describing the problem in w (class "rmsprop_signal"). */
SEXP walk_signal(const walk_ctx *w, SEXP extra);
/* A double view of a numeric leaf (integers and logicals are converted into
 * R_alloc memory, freed when the .Call returns). Never NULL, also for a
 * zero-length leaf: a NULL gradient pointer means "no gradient". */
const double *leaf_doubles(SEXP x);
/* A fresh copy of the caller's structure whose leaves are new double
 * vectors with the caller's attributes; sets vin/out of every record. */
SEXP copy_structure(SEXP skel, SEXP v, leaf_rec *leaves, R_xlen_t *next);

/* ---- update.c ----------------------------------------------------------- */

/* SPEC A1 steps 2-9 over every variable (the records hold g, vin and out),
 * after every check has passed. `loss_scale` 0 = the configured factor. */
void update_all(rms_state *st, leaf_rec *L, double lr, double loss_scale);

/* ---- step.c --------------------------------------------------------------- */

/* Forget what the last step proved (a state list replaced: state.c). */
void known_clear(rms_state *st);

/* ---- recycle.c -------------------------------------------------------- */

/* A new double vector of length n; large ones reuse memory R has freed. */
SEXP recycled_doubles(R_xlen_t n);

#endif
