/* init.c: registration of the .Call entry points (declared in calls.h), and
 * nothing else. */
#include "calls.h"
#include <R_ext/Rdynload.h>

#define CALLDEF(name, n) {#name, (DL_FUNC) &name, n}

static const R_CallMethodDef call_methods[] = {
  CALLDEF(C_state_layout, 0),
  CALLDEF(C_state_new, 1),
  CALLDEF(C_state_build, 3),
  CALLDEF(C_state_get, 1),
  CALLDEF(C_state_set, 2),
  CALLDEF(C_state_clone, 1),
  CALLDEF(C_state_scalars, 1),
  CALLDEF(C_state_forget, 1),
  CALLDEF(C_live_states, 0),
  CALLDEF(C_step, 7),
  CALLDEF(C_ema_values, 3),
  CALLDEF(C_check_structure, 3),
  CALLDEF(C_kernel_info, 0),
  CALLDEF(C_set_threads, 1),
  CALLDEF(C_object_data, 2),
  CALLDEF(C_object_find, 1),
  CALLDEF(C_object_fields, 2),
  CALLDEF(C_data_kind, 3),
  CALLDEF(C_object_mark, 1),
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
