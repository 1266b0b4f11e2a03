/* calls.h: the prototypes of every .Call entry point, in one place. init.c
 * registers them from here, and each file that defines one includes this
 * header, so the compiler checks every definition against its registration.
 * The argument counts in init.c must match these. */
#ifndef RMSPROP_CALLS_H
#define RMSPROP_CALLS_H
#include "rmsprop.h"

/* state.c */
SEXP C_state_layout(void);
SEXP C_state_new(SEXP config);
SEXP C_state_build(SEXP ptr, SEXP lengths, SEXP decay_mask);
SEXP C_state_get(SEXP ptr);
SEXP C_state_set(SEXP ptr, SEXP list);
SEXP C_state_clone(SEXP ptr);
SEXP C_state_scalars(SEXP ptr);
SEXP C_state_forget(SEXP ptr);
SEXP C_live_states(void);

/* step.c */
SEXP C_step(SEXP ptr, SEXP grads, SEXP vars, SEXP skel, SEXP lr, SEXP flags, SEXP loss_scale);
SEXP C_ema_values(SEXP ptr, SEXP vars, SEXP skel);
SEXP C_check_structure(SEXP ptr, SEXP vars, SEXP skel);

/* info.c */
SEXP C_kernel_info(void);
SEXP C_set_threads(SEXP n);

/* object.c */
SEXP C_object_data(SEXP x, SEXP name);
SEXP C_object_find(SEXP x);
SEXP C_object_fields(SEXP env, SEXP fields);
SEXP C_data_kind(SEXP x, SEXP allow, SEXP max_depth);
SEXP C_object_mark(SEXP data);

/* recycle.c */
SEXP C_recycle_info(void);
SEXP C_set_recycle_limit(SEXP bytes);

#endif
