/* init.c: registration of the .Call entry points, and nothing else. */
#include "rmsprop.h"
#include <R_ext/Rdynload.h>

SEXP C_state_new(SEXP config);
SEXP C_state_build(SEXP ptr, SEXP lengths, SEXP decay_mask);
SEXP C_state_get(SEXP ptr);
SEXP C_state_set(SEXP ptr, SEXP list);
SEXP C_state_clone(SEXP ptr);
SEXP C_state_iterations(SEXP ptr);
SEXP C_state_forget(SEXP ptr);
SEXP C_live_states(void);
SEXP C_step(SEXP ptr, SEXP grads, SEXP vars, SEXP skel, SEXP lr, SEXP in_place,
            SEXP loss_scale);
SEXP C_step_private(SEXP private_env, SEXP grads, SEXP vars, SEXP in_place);
SEXP C_ema_values(SEXP ptr, SEXP vars, SEXP skel);
SEXP C_check_structure(SEXP ptr, SEXP vars, SEXP skel);
SEXP C_kernel_info(void);
SEXP C_set_threads(SEXP n);
SEXP C_recycle_info(void);
SEXP C_set_recycle_limit(SEXP bytes);

#define CALLDEF(name, n) {#name, (DL_FUNC) &name, n}

static const R_CallMethodDef call_methods[] = {
  CALLDEF(C_state_new, 1),
  CALLDEF(C_state_build, 3),
  CALLDEF(C_state_get, 1),
  CALLDEF(C_state_set, 2),
  CALLDEF(C_state_clone, 1),
  CALLDEF(C_state_iterations, 1),
  CALLDEF(C_state_forget, 1),
  CALLDEF(C_live_states, 0),
  CALLDEF(C_step, 7),
  CALLDEF(C_step_private, 4),
  CALLDEF(C_ema_values, 3),
  CALLDEF(C_check_structure, 3),
  CALLDEF(C_kernel_info, 0),
  CALLDEF(C_set_threads, 1),
  CALLDEF(C_recycle_info, 0),
  CALLDEF(C_set_recycle_limit, 1),
  {NULL, NULL, 0}
};

void R_init_rmsprop(DllInfo *dll) {
  R_registerRoutines(dll, NULL, call_methods, NULL, NULL);
  R_useDynamicSymbols(dll, FALSE);
  R_forceSymbols(dll, TRUE);
  kernel_register_fork_handler();
}
