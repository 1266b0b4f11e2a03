/* state_layout.h: the layout of the optimizer state, defined once.
 *
 * The state is a named R list kept in the external pointer's `prot` slot
 * (state.c). Its fields and the names of the numeric configuration vector
 * are listed here and nowhere else: C builds and checks the list by these
 * tables, and R reads the same names through C_state_layout() (R code never
 * counts positions). Change a field, and STATE_FORMAT goes up, with a
 * migration from the old format in state.c.
 *
 * Formats: 1 = rmsprop 0.1.0 (an unnamed list of 9: config, iterations,
 * offsets, decay_mask, velocity, momentum, average_gradient, ema,
 * accumulator); 2 = this layout (named, with `format` and
 * `last_learning_rate`).
 */
#ifndef RMSPROP_STATE_LAYOUT_H
#define RMSPROP_STATE_LAYOUT_H

#define STATE_FORMAT 2

/* X(ENUM_NAME, "r_name") for every field of the state list, in order. */
#define STATE_FIELDS(X)                                                       \
  X(FORMAT, "format")                 /* integer: STATE_FORMAT */             \
  X(CONFIG, "config")                 /* named double: CONFIG_FIELDS */       \
  X(ITERATIONS, "iterations")         /* double: the raw call counter */      \
  X(LAST_LR, "last_learning_rate")    /* double: rate of the last call, NA */ \
  X(OFFSETS, "offsets")               /* double nvar+1, NULL until built */   \
  X(DECAY_MASK, "decay_mask")         /* integer nvar: 1 = takes decay */     \
  X(VELOCITY, "velocity")             /* slots: double of the total length, */\
  X(MOMENTUM, "momentum")             /* NULL when the configuration does   */\
  X(AVERAGE_GRADIENT, "average_gradient") /* not use them                  */ \
  X(EMA, "ema")                                                               \
  X(ACCUMULATOR, "accumulator")

/* X(ENUM_NAME, "r_name") for the numeric configuration; the R names are
 * those of optimizer_rmsprop()'s arguments (0 stands for NULL). */
#define CONFIG_FIELDS(X)                                                  \
  X(RHO, "rho")                                                           \
  X(MOMENTUM, "momentum")                                                 \
  X(EPSILON, "epsilon")                                                   \
  X(CENTERED, "centered")                                                 \
  X(WEIGHT_DECAY, "weight_decay")                                         \
  X(CLIPNORM, "clipnorm")                                                 \
  X(CLIPVALUE, "clipvalue")                                               \
  X(GLOBAL_CLIPNORM, "global_clipnorm")                                   \
  X(USE_EMA, "use_ema")                                                   \
  X(EMA_MOMENTUM, "ema_momentum")                                         \
  X(EMA_OVERWRITE, "ema_overwrite_frequency")                             \
  X(LOSS_SCALE, "loss_scale_factor")                                      \
  X(ACCUM_STEPS, "gradient_accumulation_steps")

#define RMS_ENUM_ST(e, s) ST_##e,
#define RMS_ENUM_CFG(e, s) CFG_##e,
enum { STATE_FIELDS(RMS_ENUM_ST) ST_LENGTH };
enum { CONFIG_FIELDS(RMS_ENUM_CFG) CFG_LENGTH };
#undef RMS_ENUM_ST
#undef RMS_ENUM_CFG

#endif
