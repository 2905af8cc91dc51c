/*
 * alloc.h - every allocation in refscan goes through here.
 *
 * The array forms do checked count * size math and return NULL on overflow
 * as on exhaustion, so a hostile count can never wrap into a small buffer.
 * Tests can make the Nth allocation fail (alloc_fail_after) to prove that
 * every error path is clean and leak-free.  Thread-safe.
 */
#ifndef REFSCAN_ALLOC_H
#define REFSCAN_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Overflow-checked size math: true when the result overflowed. */
#define ckd_add(r, a, b) __builtin_add_overflow((a), (b), (r))
#define ckd_mul(r, a, b) __builtin_mul_overflow((a), (b), (r))

/* malloc/calloc/realloc/free; NULL on failure (or injected failure). */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
void xfree(void *p);

/* n * size bytes, NULL when the product overflows or allocation fails. */
void *alloc_array(size_t n, size_t size);
/* Same, zero-filled. */
void *alloc_array_zero(size_t n, size_t size);
/* Resize p to n * size bytes; on failure p is untouched and NULL returned. */
void *realloc_array(void *p, size_t n, size_t size);

/* strdup / strndup through the checked allocator. */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/*
 * Grow *p (holding *cap elements of size bytes) so that at least need
 * elements fit, doubling.  Returns 0, or ERR_NOMEM leaving *p and *cap as
 * they were.
 */
int alloc_grow(void **p, size_t *cap, size_t need, size_t size);

/*
 * Test hook: make every allocation after the next n succeed/fail.
 * n < 0 disables injection (the default).  Returns how many allocations
 * were made since the last call.  Not for production use.
 */
long alloc_fail_after(long n);

/* Number of allocations made since start (for tests). */
uint64_t alloc_count(void);

#endif
