/* kernels_omp.h: OpenMP when the compiler has it, a serial stand-in when it
 * does not (SHLIB_OPENMP_CFLAGS may be empty, e.g. Apple clang), so
 * kernels.c compiles and gives the same results either way. */
#ifndef RMSPROP_KERNELS_OMP_H
#define RMSPROP_KERNELS_OMP_H
#ifdef _OPENMP
#include <omp.h>
#else
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_limit(void) { return 1; }
static inline int omp_get_num_procs(void) { return 1; }
#endif
#endif
