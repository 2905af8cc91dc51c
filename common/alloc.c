/*
 * alloc.c - checked allocation with failure injection (see alloc.h).
 */
#include "alloc.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

#include "banned.h"

static _Atomic long fail_countdown = -1;
static _Atomic uint64_t n_allocs;

static bool should_fail(void)
{
	n_allocs++;
	long c = fail_countdown;
	if (c < 0)
		return false;
	if (c == 0)
		return true;
	fail_countdown = c - 1;
	return false;
}

long alloc_fail_after(long n)
{
	long made = (long)n_allocs;
	n_allocs = 0;
	fail_countdown = n;
	return made;
}

uint64_t alloc_count(void)
{
	return n_allocs;
}

void *xmalloc(size_t size)
{
	if (should_fail())
		return NULL;
	return malloc(size ? size : 1);
}

void *xcalloc(size_t n, size_t size)
{
	if (should_fail())
		return NULL;
	if (!n || !size)
		n = size = 1;
	return calloc(n, size);
}

void *xrealloc(void *p, size_t size)
{
	if (should_fail())
		return NULL;
	return realloc(p, size ? size : 1);
}

void xfree(void *p)
{
	free(p);
}

void *alloc_array(size_t n, size_t size)
{
	size_t bytes;
	if (ckd_mul(&bytes, n, size))
		return NULL;
	return xmalloc(bytes);
}

void *alloc_array_zero(size_t n, size_t size)
{
	size_t bytes;
	if (ckd_mul(&bytes, n, size))
		return NULL;
	return xcalloc(1, bytes);
}

void *realloc_array(void *p, size_t n, size_t size)
{
	size_t bytes;
	if (ckd_mul(&bytes, n, size))
		return NULL;
	return xrealloc(p, bytes);
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *d = xmalloc(len + 1);
	if (!d)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, SIZE_MAX);
}

int alloc_grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 16;
	while (ncap < need) {
		if (ckd_mul(&ncap, ncap, (size_t)2))
			return ERR_NOMEM;
	}
	void *np = realloc_array(*p, ncap, size);
	if (!np)
		return ERR_NOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}
