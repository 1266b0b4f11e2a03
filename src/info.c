/* info.c: what the kernels run on (instruction set, threads), for users and
 * benchmarks. Owns no state beyond what kernels.c reports. */
#include "calls.h"

SEXP C_kernel_info(void) {
  const char *names[] = {"isa", "threads", "cores", ""};
  SEXP out = PROTECT(Rf_mkNamed(VECSXP, names));
  SET_VECTOR_ELT(out, 0, Rf_mkString(kernel_isa()));
  SET_VECTOR_ELT(out, 1, Rf_ScalarInteger(kernel_threads()));
  SET_VECTOR_ELT(out, 2, Rf_ScalarInteger(kernel_cores()));
  UNPROTECT(1);
  return out;
}

SEXP C_set_threads(SEXP n) {
  int k = Rf_asInteger(n);
  if (k == NA_INTEGER || k < 0) rms_abort("argument", "the thread count must be a whole number >= 0");
  kernel_set_threads(k);
  return R_NilValue;
}
