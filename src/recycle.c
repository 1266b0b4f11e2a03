/* recycle.c: memory for large result vectors, kept and reused instead of
 * being handed back to the operating system.
 *
 * Why: a fresh vector of a million doubles comes from mmap(), and the kernel
 * faults in and zeroes each page the first time the step writes it, which
 * costs more than the step itself. In a training loop each result is garbage
 * a step later, so the blocks R's garbage collector frees are kept here (up to
 * a byte limit) and given to the next result of the same size, already mapped.
 *
 * Safety: R calls block_free() from its garbage collector, possibly long after
 * the optimizer is gone, so this code must stay loaded for as long as R runs:
 * the package never unloads its DLL (there is no .onUnload), which its state
 * finalizers need anyway. The callbacks use no R API; R runs them on its main
 * thread only, so the cache needs no lock.
 */
#include "calls.h"
#include <R_ext/Rallocators.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Each block starts with its size; R's part (its copy of the allocator, then
 * the vector) follows at this offset, a multiple of malloc()'s alignment. */
#define BLOCK_HEADER 64
/* Blocks are sized in whole pages, so results of nearly equal length share. */
#define BLOCK_ROUND 4096
#define CACHE_SLOTS 64

typedef struct {
  void *base;
  size_t size;
} cached_block;

/* Oldest first: a block that does not fit pushes out the oldest ones, since
 * results of the size just freed are the likeliest to be asked for next. */
static cached_block cache[CACHE_SLOTS];
static int n_cached = 0;
static size_t cached_bytes = 0;
/* The limit, on the bytes cached and (separately) on the bytes in use. The
 * default covers a training loop on ten million doubles (80 MB results);
 * larger limits measured no faster (bench/), only bigger. */
static size_t cache_limit = (size_t) 256 << 20;
static double n_reused = 0, n_fresh = 0;
/* Bytes of blocks R holds (results alive, or garbage not yet collected). */
static size_t in_use_bytes = 0;

static void cache_remove(int i) {
  cached_bytes -= cache[i].size;
  memmove(cache + i, cache + i + 1, (size_t) (n_cached - i - 1) * sizeof(cached_block));
  n_cached--;
}

static size_t block_size(size_t request) {
  size_t total = request + BLOCK_HEADER;
  if (total < request) return 0; /* overflow */
  return (total + BLOCK_ROUND - 1) / BLOCK_ROUND * BLOCK_ROUND;
}

static void *block_alloc(R_allocator_t *allocator, size_t request) {
  (void) allocator;
  size_t size = block_size(request);
  if (size == 0) return NULL;
  /* The most recently freed block of this size: likeliest still in cache. */
  for (int i = n_cached - 1; i >= 0; i--) {
    if (cache[i].size != size) continue;
    char *base = (char *) cache[i].base;
    cache_remove(i);
    n_reused++;
    in_use_bytes += size;
    return base + BLOCK_HEADER;
  }
  char *base = (char *) malloc(size);
  if (base == NULL) return NULL; /* R reports the failed allocation */
  *(size_t *) base = size;
  n_fresh++;
  in_use_bytes += size;
  return base + BLOCK_HEADER;
}

static void block_free(R_allocator_t *allocator, void *p) {
  (void) allocator;
  char *base = (char *) p - BLOCK_HEADER;
  size_t size = *(size_t *) base;
  in_use_bytes -= size;
  if (size > cache_limit) {
    free(base);
    return;
  }
  while (n_cached > 0 && (n_cached == CACHE_SLOTS || size > cache_limit - cached_bytes)) {
    free(cache[0].base);
    cache_remove(0);
  }
  cache[n_cached].base = base;
  cache[n_cached].size = size;
  n_cached++;
  cached_bytes += size;
}

static void release_cache(void) {
  while (n_cached > 0) {
    free(cache[0].base);
    cache_remove(0);
  }
}

/* Below this length malloc() recycles memory well by itself. */
#define RECYCLE_MIN_LENGTH 8192

/* R does not count memory from a custom allocator toward the trigger of its
 * next collection, so the blocks come back only when R collects for its own
 * reasons. Blocks in use are therefore capped (past the limit, results are
 * ordinary R vectors), and once half the limit is in use each recycled result
 * also allocates a stand-in R does count: a raw vector of the same size that
 * is garbage at once. R never writes its data, so the system never maps its
 * pages: it costs a malloc() and a free(), and makes R collect soon, before
 * the cap forces ordinary allocations (fresh pages again). Measured on loops,
 * discarded results and many optimizers (bench/), this beat both a stand-in
 * for every result (R then collects as often as for its own vectors) and none
 * (the cap is hit before R collects). What recycling holds beyond R's own
 * memory stays below twice the limit (in use plus cached). */
SEXP recycled_doubles(R_xlen_t n) {
  static R_allocator_t allocator = {block_alloc, block_free, NULL, NULL};
  size_t size = block_size((size_t) n * sizeof(double));
  if (n < RECYCLE_MIN_LENGTH || size == 0 || size > cache_limit ||
      in_use_bytes > cache_limit - size)
    return Rf_allocVector(REALSXP, n);
  SEXP res = PROTECT(Rf_allocVector3(REALSXP, n, &allocator));
  if (in_use_bytes > cache_limit / 2) Rf_allocVector(RAWSXP, (R_xlen_t) size);
  UNPROTECT(1);
  return res;
}

SEXP C_recycle_info(void) {
  const char *names[] = {"cached_bytes", "limit_bytes", "reused", "fresh", "in_use_bytes", ""};
  SEXP res = PROTECT(Rf_mkNamed(VECSXP, names));
  SET_VECTOR_ELT(res, 0, Rf_ScalarReal((double) cached_bytes));
  SET_VECTOR_ELT(res, 1, Rf_ScalarReal((double) cache_limit));
  SET_VECTOR_ELT(res, 2, Rf_ScalarReal(n_reused));
  SET_VECTOR_ELT(res, 3, Rf_ScalarReal(n_fresh));
  SET_VECTOR_ELT(res, 4, Rf_ScalarReal((double) in_use_bytes));
  UNPROTECT(1);
  return res;
}

/* A new limit in bytes (R has checked it); 0 turns recycling off. Cached
 * blocks are released either way, so this also empties the cache. */
SEXP C_set_recycle_limit(SEXP bytes) {
  double b = Rf_asReal(bytes);
  if (!R_FINITE(b) || b < 0) rms_abort("argument", "the recycling limit must be a finite number >= 0");
  release_cache();
  cache_limit = b >= (double) SIZE_MAX ? SIZE_MAX : (size_t) b;
  return R_NilValue;
}
