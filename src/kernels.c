/* kernels.c: the numeric loops of one optimizer step, on plain double arrays.
 *
 * Owns: the arithmetic of SPEC A1 steps 2-8, written in exactly the order of
 * the SPEC formulas so results agree with a plain-R reference bit for bit
 * (and whether every value a step wrote is finite, for step.c);
 * the choice of instruction set (AVX2 or SSE2 where the CPU has it, checked
 * at run time, else portable scalar C) and of the number of threads.
 * Must never: call the R API (these functions run inside OpenMP parallel
 * regions), allocate, raise errors, or reorder floating point operations (no
 * algebraic shortcuts such as multiplying by 1/x, no fused multiply-add).
 *
 * Why SIMD by hand: R compiles packages at -O2 with math errno on, where GCC
 * keeps sqrt and division scalar; the flags that fix that are non-portable in
 * Makevars. SSE2/AVX intrinsics give the vector sqrt and division (IEEE,
 * correctly rounded, so every lane equals the scalar result) without them.
 * Why the results never depend on threads: every loop is element-wise except
 * the sum of squares, which is cut into fixed chunks whose order is fixed.
 */
#include "rmsprop.h"
#include "kernels_omp.h"
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif
/* pthread_atfork() where fork() exists and OpenMP may hold a thread pool. */
#if defined(_OPENMP) && !defined(_WIN32) && (defined(__unix__) || defined(__APPLE__))
#include <pthread.h>
#define RMS_HAVE_ATFORK 1
#endif

/* Contraction of a * b + c into an FMA would change results; it can only
 * happen when the compiler is told the CPU has FMA (e.g. -march=native in a
 * user's Makevars). Clang honours the standard pragma; for GCC it is the
 * default -ffp-contract=fast that would contract, hence the optimize pragma,
 * used only in that case. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && (defined(__FP_FAST_FMA) || defined(__FMA__))
#pragma GCC optimize("fp-contract=off")
#endif

/* Everything one pass needs, flattened so the loops read plain fields. */
typedef struct {
  double lr, rho, one_minus_rho, eps, beta, wd;
  double ls, k, cn, cd, cv;
  double ls_inv, k_inv; /* exact reciprocals of ls and k, or 0 (see exact_reciprocal) */
  int has_ls, has_cn, has_cv;
  double em, one_minus_em;
  int overwrite;
  int variant; /* centered | momentum << 1 | decay << 2 | transform << 3 | ema << 4 */
  const double *v_in, *g;
  double *v_out, *ms, *mom, *mg, *acc, *avg;
  int *nonfinite; /* set to 1 when a value written is not finite */
} kjob;

/* Called by a range (possibly on several threads at once) that wrote a
 * value that is not finite; the flag only ever goes from 0 to 1. */
static void kernel_note_nonfinite(const kjob *j) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
  *j->nonfinite = 1;
}

/* ---- the loops, once per instruction set -------------------------------- */

/* How far ahead (in doubles, 4 KB) the scan for non-finite values asks for
 * memory; measured on this project's machine (bench/). */
#define SCAN_AHEAD 512

#define VT double
#define VW 1
#define SUF(x) x##_scalar
#define KATTR
#define VLD(p) (*(p))
#define VST(p, x) (*(p) = (x))
#define VSET1(x) (x)
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMUL(a, b) ((a) * (b))
#define VDIV(a, b) ((a) / (b))
#define VSQRT(a) sqrt(a)
#define VMAXLO(lo, x) ((lo) > (x) ? (lo) : (x))
#define VMINHI(hi, x) ((hi) < (x) ? (hi) : (x))
#include "kernels_body.h"
#include "kernels_undef.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define RMS_X86 1
#include <immintrin.h>

/* SSE2: two doubles per vector. MAXPD/MINPD return their second operand
 * when either is NaN, which is exactly (lo > x ? lo : x). */
#define VT __m128d
#define VW 2
#define SUF(x) x##_sse2
#define KATTR __attribute__((target("sse2")))
#define VLD(p) _mm_loadu_pd(p)
#define VST(p, x) _mm_storeu_pd((p), (x))
#define VSET1(x) _mm_set1_pd(x)
#define VADD(a, b) _mm_add_pd((a), (b))
#define VSUB(a, b) _mm_sub_pd((a), (b))
#define VMUL(a, b) _mm_mul_pd((a), (b))
#define VDIV(a, b) _mm_div_pd((a), (b))
#define VSQRT(a) _mm_sqrt_pd(a)
#define VMAXLO(lo, x) _mm_max_pd((lo), (x))
#define VMINHI(hi, x) _mm_min_pd((hi), (x))
/* acc | (lanes of x that are NaN), and whether any lane of acc is set */
#define VORUNORD(acc, x) _mm_or_pd((acc), _mm_cmpunord_pd((x), (x)))
/* a hint only: never faults, also past the end of an array */
#define VPREFETCH(p) _mm_prefetch((const char *) (p), _MM_HINT_T0)
#define VANYSET(acc) (_mm_movemask_pd(acc) != 0)
#define VOR(a, b) _mm_or_pd((a), (b))
#include "kernels_body.h"
#include "kernels_undef.h"

/* AVX2 (the AVX subset): four doubles per vector. Not "fma": no contraction. */
#define VT __m256d
#define VW 4
#define SUF(x) x##_avx2
#define KATTR __attribute__((target("avx2")))
#define VLD(p) _mm256_loadu_pd(p)
#define VST(p, x) _mm256_storeu_pd((p), (x))
#define VSET1(x) _mm256_set1_pd(x)
#define VADD(a, b) _mm256_add_pd((a), (b))
#define VSUB(a, b) _mm256_sub_pd((a), (b))
#define VMUL(a, b) _mm256_mul_pd((a), (b))
#define VDIV(a, b) _mm256_div_pd((a), (b))
#define VSQRT(a) _mm256_sqrt_pd(a)
#define VMAXLO(lo, x) _mm256_max_pd((lo), (x))
#define VMINHI(hi, x) _mm256_min_pd((hi), (x))
#define VORUNORD(acc, x) _mm256_or_pd((acc), _mm256_cmp_pd((x), (x), _CMP_UNORD_Q))
#define VPREFETCH(p) _mm_prefetch((const char *) (p), _MM_HINT_T0)
#define VANYSET(acc) (_mm256_movemask_pd(acc) != 0)
#define VOR(a, b) _mm256_or_pd((a), (b))
#include "kernels_body.h"
#include "kernels_undef.h"
#endif

/* ---- choosing the instruction set --------------------------------------- */

typedef void (*range_fn)(const kjob *, R_xlen_t, R_xlen_t);
typedef double (*sum_fn)(const kjob *, R_xlen_t, R_xlen_t);
typedef R_xlen_t (*find_fn)(const double *, R_xlen_t, R_xlen_t);

typedef struct {
  const char *name;
  range_fn update, accumulate, ema;
  sum_fn sumsq;
  find_fn nonfinite;
} isa_table;

static const isa_table isa_scalar = {"scalar", rms_range_scalar, accumulate_range_scalar,
                                     ema_range_scalar, sumsq_range_scalar,
                                     nonfinite_range_scalar};
#ifdef RMS_X86
static const isa_table isa_sse2 = {"sse2", rms_range_sse2, accumulate_range_sse2,
                                   ema_range_sse2, sumsq_range_sse2,
                                   nonfinite_range_sse2};
/* The AVX2 loops leave the upper halves of the vector registers in use, and
 * GCC adds no vzeroupper to functions with a target attribute: every SSE
 * instruction run afterwards in this thread (R's arithmetic, BLAS, RTMB's
 * tapes) then pays a state transition on Intel CPUs, measured here as a 5x
 * slower RTMB gradient after each step. So the table's AVX2 entries clear
 * them when a loop returns (vzeroupper keeps the low lane: a returned double
 * is intact). */
#define AVX2_CLEAN(name, ret, params, args)                                    \
  static __attribute__((target("avx2"))) ret name##_avx2_clean params {         \
    ret out = name##_avx2 args;                                                 \
    _mm256_zeroupper();                                                         \
    return out;                                                                 \
  }
#define AVX2_CLEAN_VOID(name)                                                  \
  static __attribute__((target("avx2"))) void name##_avx2_clean(              \
      const kjob *j, R_xlen_t b, R_xlen_t e) {                                  \
    name##_avx2(j, b, e);                                                       \
    _mm256_zeroupper();                                                         \
  }
AVX2_CLEAN_VOID(rms_range)
AVX2_CLEAN_VOID(accumulate_range)
AVX2_CLEAN_VOID(ema_range)
AVX2_CLEAN(sumsq_range, double, (const kjob *j, R_xlen_t b, R_xlen_t e), (j, b, e))
AVX2_CLEAN(nonfinite_range, R_xlen_t, (const double *x, R_xlen_t b, R_xlen_t e), (x, b, e))
static const isa_table isa_avx2 = {"avx2", rms_range_avx2_clean, accumulate_range_avx2_clean,
                                   ema_range_avx2_clean, sumsq_range_avx2_clean,
                                   nonfinite_range_avx2_clean};
#endif

/* Decided once, on the first call (always from R's main thread). */
static const isa_table *isa = NULL;

static const isa_table *kernel_table(void) {
  if (isa != NULL) return isa;
  const isa_table *t = &isa_scalar;
#ifdef RMS_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) t = &isa_avx2;
  else if (__builtin_cpu_supports("sse2")) t = &isa_sse2;
#endif
  /* RMSPROP_ISA=scalar|sse2 forces a narrower set (for tests and benches);
   * a wider one than the CPU has is never taken. */
  const char *force = getenv("RMSPROP_ISA");
  if (force != NULL) {
    if (strcmp(force, "scalar") == 0) t = &isa_scalar;
#ifdef RMS_X86
    else if (strcmp(force, "sse2") == 0 && t == &isa_avx2) t = &isa_sse2;
#endif
  }
  isa = t;
  return t;
}

const char *kernel_isa(void) { return kernel_table()->name; }

/* ---- threads ------------------------------------------------------------- */

/* Below this many elements a step stays on one thread: the fork/join of a
 * parallel region costs more than it saves. */
#define PAR_MIN 65536
/* The most threads any region uses (also the size of per-thread arrays). */
#define KERNEL_MAX_THREADS 256

/* 0 = the default: OpenMP's (OMP_NUM_THREADS, else all cores), or the
 * environment variable RMSPROP_NUM_THREADS when set; always within
 * OMP_THREAD_LIMIT. Set only from R's main thread. */
static int user_threads = 0;

/* 1 in a process made by fork() (parallel::mclapply(), mcparallel(),
 * future's multicore) from a process that had loaded the package: it runs on
 * one thread whatever the setting. Why: GNU OpenMP keeps the worker threads
 * of its first parallel region as a pool, and fork() copies the pool's
 * bookkeeping but not its threads, so a child that opens a parallel region
 * with more than one thread waits for ever for threads that do not exist.
 * Set by the child handler that kernel_register_fork_handler() registers
 * (as data.table does in src/openmp-utils.c); the parent is never touched
 * and keeps its threads. Inherited by the child's own children. */
#ifdef RMS_HAVE_ATFORK
static int forked_child = 0;

/* Runs in the child right after fork(), on its only thread. */
static void on_fork_child(void) { forked_child = 1; }
#endif

/* Called once from R_init_rmsprop(). glibc drops the handler when the
 * shared library is unloaded (pthread_atfork() is tied to the caller's
 * DSO), so unloading and loading again registers a fresh one. Where fork()
 * or OpenMP does not exist there is nothing to do. */
void kernel_register_fork_handler(void) {
#ifdef RMS_HAVE_ATFORK
  static int registered = 0;
  if (!registered && pthread_atfork(NULL, NULL, on_fork_child) == 0) registered = 1;
#endif
}

int kernel_threads(void) {
#ifdef _OPENMP
#ifdef RMS_HAVE_ATFORK
  if (forked_child) return 1;
#endif
  int n = user_threads;
  if (n <= 0) {
    const char *env = getenv("RMSPROP_NUM_THREADS");
    if (env != NULL) n = atoi(env);
  }
  if (n <= 0) n = omp_get_max_threads();
  /* Never more threads than cores (more cannot go faster, and tens of
   * thousands exhaust the stack or make libgomp fail to create them), than
   * OMP_THREAD_LIMIT, or than KERNEL_MAX_THREADS (the per-thread arrays). */
  int limit = omp_get_thread_limit(), procs = omp_get_num_procs();
  if (n > limit) n = limit;
  if (n > procs) n = procs;
  if (n > KERNEL_MAX_THREADS) n = KERNEL_MAX_THREADS;
  return n < 1 ? 1 : n;
#else
  return 1;
#endif
}

void kernel_set_threads(int n) { user_threads = n < 0 ? 0 : n; }

/* The cores OpenMP may use (1 without OpenMP): the most threads a region
 * ever gets. */
int kernel_cores(void) {
#ifdef _OPENMP
  int procs = omp_get_num_procs();
  return procs < 1 ? 1 : procs > KERNEL_MAX_THREADS ? KERNEL_MAX_THREADS : procs;
#else
  return 1;
#endif
}

/* The threads for a region over n elements: none below PAR_MIN, and at
 * least PAR_MIN / 4 elements per thread (the fork/join costs more than a
 * smaller share saves). Every parallel region takes its count from here. */
static int threads_for(R_xlen_t n) {
  if (n < PAR_MIN) return 1;
  int nt = kernel_threads();
  if (nt > 1 && n / nt < PAR_MIN / 4) nt = (int) (n / (PAR_MIN / 4));
  return nt < 1 ? 1 : nt;
}

/* Runs fn over [0, n): serially for small n, else as contiguous ranges, one
 * per thread, cut at multiples of 8 elements (64 bytes) so no two threads
 * write the same cache line. Element-wise work only. */
static void run_range(range_fn fn, const kjob *j, R_xlen_t n) {
  if (n <= 0) return;
  int nt = threads_for(n);
#ifdef _OPENMP
  if (nt > 1) {
#pragma omp parallel num_threads(nt)
    {
      R_xlen_t T = omp_get_num_threads(), t = omp_get_thread_num();
      R_xlen_t per = ((n + T - 1) / T + 7) & ~((R_xlen_t) 7);
      R_xlen_t b = t * per, e = b + per < n ? b + per : n;
      if (b < e) fn(j, b, e);
    }
    return;
  }
#endif
  fn(j, 0, n);
}

/* ---- fresh result vectors ------------------------------------------------ */

/* A result vector of 16 MB or more is fresh memory from mmap (glibc maps
 * every block above 32 MB, and smaller ones when the heap cannot reuse), and
 * its first touch, in the update, page-faults: with 4 KB pages that costs
 * more than the update itself (about 50 ms for 1e7 doubles here, 20 ms with
 * 2 MB pages). So before the first touch, ask Linux for transparent huge
 * pages on the whole 2 MB-aligned part of the block, as PyTorch's CPU
 * allocator does. Only advice: the contents and every result are unchanged,
 * and where THP is off or unavailable nothing happens. */
#define HUGE_MIN ((size_t) 16 << 20)

static void fresh_output(double *p, R_xlen_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  size_t bytes = (size_t) n * sizeof(double);
  if (bytes < HUGE_MIN) return;
  const uintptr_t page = (uintptr_t) 1 << 21;
  uintptr_t a = ((uintptr_t) p + page - 1) & ~(page - 1);
  uintptr_t e = ((uintptr_t) p + bytes) & ~(page - 1);
  if (e > a) (void) madvise((void *) a, e - a, MADV_HUGEPAGE);
#else
  (void) p;
  (void) n;
#endif
}

/* ---- the API of rmsprop.h ------------------------------------------------ */

/* 1 / x when x is a power of two whose reciprocal is a normal double, else 0.
 * Then y * (1 / x) and y / x are the correctly rounded value of the same real
 * number y / x for every y (overflow and underflow included): the same bits,
 * and a multiplication is several times cheaper than a division. Dynamic
 * loss scales and most accumulation counts are powers of two. */
static double exact_reciprocal(double x) {
  int e;
  if (!(x > 0) || !isfinite(x) || frexp(x, &e) != 0.5) return 0;
  double r = 1 / x;
  return isfinite(r) && r >= DBL_MIN && r * x == 1 ? r : 0;
}

static void job_transform(kjob *j, const grad_transform *t) {
  j->ls = t != NULL ? t->loss_scale : 0;
  j->has_ls = j->ls != 0;
  j->k = t != NULL ? t->accum_steps : 0;
  j->cn = t != NULL ? t->clip_norm : 0;
  j->has_cn = j->cn != 0;
  j->cd = t != NULL ? t->clip_denom : 0;
  j->cv = t != NULL ? t->clip_value : 0;
  j->has_cv = j->cv != 0;
  j->ls_inv = j->has_ls ? exact_reciprocal(j->ls) : 0;
  j->k_inv = j->k != 0 ? exact_reciprocal(j->k) : 0;
}

/* Sums of fixed chunks of this many elements, added in chunk order: the
 * same sum for every thread count and instruction set. */
#define SUMSQ_CHUNK 4096
/* Chunks per parallel round (their sums wait in a stack array). */
#define SUMSQ_ROUND 256

double grad_sumsq(const grad_transform *t, R_xlen_t n, const double *g) {
  const isa_table *T = kernel_table();
  kjob j;
  memset(&j, 0, sizeof j);
  job_transform(&j, t);
  j.g = g;
  j.acc = (double *) t->acc; /* only read here */
  R_xlen_t nchunk = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
  int nt = threads_for(n);
  double total = 0;
  for (R_xlen_t c0 = 0; c0 < nchunk; c0 += SUMSQ_ROUND) {
    int m = (int) (nchunk - c0 < SUMSQ_ROUND ? nchunk - c0 : SUMSQ_ROUND);
    double part[SUMSQ_ROUND];
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && m > 1)
#endif
    for (int c = 0; c < m; c++) {
      R_xlen_t b = (c0 + c) * SUMSQ_CHUNK;
      R_xlen_t e = b + SUMSQ_CHUNK < n ? b + SUMSQ_CHUNK : n;
      part[c] = T->sumsq(&j, b, e);
    }
    for (int c = 0; c < m; c++) total += part[c];
  }
  (void) nt;
  return total;
}

void grad_accumulate(double loss_scale, R_xlen_t n, const double *g, double *acc) {
  kjob j;
  memset(&j, 0, sizeof j);
  j.ls = loss_scale;
  j.has_ls = loss_scale != 0;
  j.ls_inv = j.has_ls ? exact_reciprocal(loss_scale) : 0;
  j.g = g;
  j.acc = acc;
  run_range(kernel_table()->accumulate, &j, n);
}

static void job_params(kjob *j, const rms_params *p) {
  j->lr = p->lr;
  j->rho = p->rho;
  j->one_minus_rho = 1 - p->rho;
  j->eps = p->epsilon;
  j->beta = p->momentum;
  j->wd = p->weight_decay;
}

int rms_step(const rms_params *p, const grad_transform *t, double ema_m, int ema_overwrite,
             R_xlen_t n, const rms_arrays *a) {
  kjob j;
  int nonfinite = 0;
  memset(&j, 0, sizeof j);
  j.nonfinite = &nonfinite;
  job_params(&j, p);
  job_transform(&j, t);
  j.em = ema_m;
  j.one_minus_em = 1 - ema_m;
  j.overwrite = ema_overwrite != 0;
  j.v_in = a->v_in;
  j.g = a->g;
  j.v_out = a->v_out;
  j.ms = a->ms;
  j.mom = a->mom;
  j.mg = a->mg;
  j.acc = a->acc;
  j.avg = a->avg;
  int centered = p->centered != 0, mom = p->momentum > 0, decay = p->weight_decay != 0;
  int tr = j.has_ls || j.acc != NULL || j.has_cn || j.has_cv;
  int ema = a->avg != NULL;
  j.variant = centered | mom << 1 | decay << 2 | tr << 3 | ema << 4;
  if (a->v_out != a->v_in) fresh_output(a->v_out, n);
  run_range(kernel_table()->update, &j, n);
  return !nonfinite;
}

int ema_step(double m, int overwrite, R_xlen_t n, const double *v_in, double *v_out,
             double *avg) {
  kjob j;
  int nonfinite = 0;
  memset(&j, 0, sizeof j);
  j.nonfinite = &nonfinite;
  j.em = m;
  j.one_minus_em = 1 - m;
  j.overwrite = overwrite != 0;
  j.v_in = v_in;
  j.v_out = v_out;
  j.avg = avg;
  if (v_out != v_in) fresh_output(v_out, n);
  run_range(kernel_table()->ema, &j, n);
  return !nonfinite;
}

static void zero_range(const kjob *j, R_xlen_t b, R_xlen_t e) {
  memset(j->v_out + b, 0, (size_t) (e - b) * sizeof(double));
}

static void copy_range(const kjob *j, R_xlen_t b, R_xlen_t e) {
  memcpy(j->v_out + b, j->v_in + b, (size_t) (e - b) * sizeof(double));
}

void fill_zero(R_xlen_t n, double *x) {
  kjob j;
  memset(&j, 0, sizeof j);
  j.v_out = x;
  run_range(zero_range, &j, n);
}

void copy_doubles(R_xlen_t n, const double *from, double *to) {
  if (from == to) return;
  kjob j;
  memset(&j, 0, sizeof j);
  j.v_in = from;
  j.v_out = to;
  fresh_output(to, n);
  run_range(copy_range, &j, n);
}

/* The first non-finite element of a or b, in one pass over both: block by
 * block (a block of each fits in the first-level cache), so the step's later
 * reads find them in cache and the variables cost no pass of their own. */
#define PAIR_BLOCK 4096
static R_xlen_t pair_range(find_fn fn, const double *a, const double *b, R_xlen_t s, R_xlen_t e,
                           int *in_b) {
  for (R_xlen_t i = s; i < e; i += PAIR_BLOCK) {
    R_xlen_t end = i + PAIR_BLOCK < e ? i + PAIR_BLOCK : e;
    R_xlen_t fa = fn(a, i, end), fb = b != NULL ? fn(b, i, end) : -1;
    if (fa >= 0 || fb >= 0) {
      *in_b = fa < 0 || (fb >= 0 && fb < fa);
      return *in_b ? fb : fa;
    }
  }
  return -1;
}

R_xlen_t kernel_first_nonfinite_pair(R_xlen_t n, const double *a, const double *b, int *in_b) {
  find_fn fn = kernel_table()->nonfinite;
  *in_b = 0;
  int nt = threads_for(n);
#ifdef _OPENMP
  if (nt > 1) {
    R_xlen_t found[KERNEL_MAX_THREADS];
    int which[KERNEL_MAX_THREADS], used = 1;
#pragma omp parallel num_threads(nt)
    {
      R_xlen_t T = omp_get_num_threads(), t = omp_get_thread_num();
      R_xlen_t per = ((n + T - 1) / T + 7) & ~((R_xlen_t) 7);
      R_xlen_t s = t * per, e = s + per < n ? s + per : n;
      which[t] = 0;
      found[t] = s < e ? pair_range(fn, a, b, s, e, &which[t]) : -1;
      if (t == 0) used = (int) T;
    }
    for (int t = 0; t < used; t++) {
      if (found[t] >= 0) {
        *in_b = which[t];
        return found[t];
      }
    }
    return -1;
  }
#endif
  return n > 0 ? pair_range(fn, a, b, 0, n, in_b) : -1;
}
