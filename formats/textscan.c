/*
 * textscan.c - bounded number and line scanning (see textscan.h).
 *
 * The float fast path follows Clinger, "How to Read Floating Point
 * Numbers Accurately" (PLDI 1990): when the decimal mantissa fits in 53
 * bits and the power of ten is exactly representable (|e| <= 22), one
 * IEEE multiplication or division gives the correctly rounded result.
 * Everything else goes to strtod on a bounded, NUL-terminated copy.
 */
#include "textscan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/banned.h"

static const double pow10_exact[23] = {
	1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

const char *ts_find_eol(const char *p, const char *end)
{
	const char *q = memchr(p, '\n', (size_t)(end - p));
	return q ? q : end;
}

bool tcur_next_line(struct tcur *c, const char **ls, const char **le)
{
	if (c->p >= c->end)
		return false;
	const char *s = c->p;
	const char *e = ts_find_eol(s, c->end);
	c->p = e < c->end ? e + 1 : e;
	if (e > s && e[-1] == '\r')
		e--;
	*ls = s;
	*le = e;
	if (c->p > s && c->p[-1] == '\n')
		c->line++;
	return true;
}

static inline bool is_digit(char ch)
{
	return (unsigned char)(ch - '0') < 10;
}

static const char *parse_special(const char *p, const char *end, double *out)
{
	bool neg = false;
	const char *q = p;
	if (q < end && (*q == '+' || *q == '-'))
		neg = *q++ == '-';
	size_t left = (size_t)(end - q);
	if (left >= 3 && ts_ieq(q, q + 3, "nan")) {
		q += 3;
		/* nan(chars) */
		if (q < end && *q == '(') {
			const char *r = q + 1;
			while (r < end && (is_digit(*r) || (unsigned)((*r | 32) - 'a') < 26u || *r == '_'))
				r++;
			if (r < end && *r == ')')
				q = r + 1;
		}
		*out = neg ? -NAN : NAN;
		return q;
	}
	if (left >= 8 && ts_ieq(q, q + 8, "infinity")) {
		*out = neg ? -INFINITY : INFINITY;
		return q + 8;
	}
	if (left >= 3 && ts_ieq(q, q + 3, "inf")) {
		*out = neg ? -INFINITY : INFINITY;
		return q + 3;
	}
	return NULL;
}

static const char *slow_path(const char *start, const char *stop, double *out)
{
	char tmp[512];
	size_t n = (size_t)(stop - start);
	char *heap = NULL, *s = tmp;
	if (n >= sizeof(tmp)) {
		heap = malloc(n + 1);
		if (!heap)
			return NULL;
		s = heap;
	}
	memcpy(s, start, n);
	s[n] = '\0';
	char *ep;
	*out = strtod(s, &ep);
	const char *r = start + (ep - s);
	free(heap);
	return r == start ? NULL : r;
}

const char *ts_parse_double(const char *p, const char *end, double *out)
{
	const char *start = p;
	bool neg = false;
	uint64_t mant = 0;
	int ndig = 0, dropped = 0, frac = 0;
	long exp10 = 0;

	if (p < end && (*p == '+' || *p == '-'))
		neg = *p++ == '-';
	const char *digits = p;
	while (p < end && *p == '0')
		p++;
	while (p < end && is_digit(*p)) {
		if (ndig < 19) {
			mant = mant * 10 + (uint64_t)(*p - '0');
			ndig++;
		} else {
			dropped++;
		}
		p++;
	}
	bool any = p > digits;
	if (p < end && *p == '.') {
		p++;
		const char *fs = p;
		if (!mant) {
			while (p < end && *p == '0') {
				p++;
				frac++;
			}
		}
		while (p < end && is_digit(*p)) {
			if (ndig < 19) {
				mant = mant * 10 + (uint64_t)(*p - '0');
				ndig++;
				frac++;
			} else {
				dropped++;
			}
			p++;
		}
		(void)fs;
		any = any || p > digits + 1;
	}
	if (!any)
		return parse_special(start, end, out);
	if (p < end && (*p == 'e' || *p == 'E')) {
		const char *q = p + 1;
		bool eneg = false;
		if (q < end && (*q == '+' || *q == '-'))
			eneg = *q++ == '-';
		if (q < end && is_digit(*q)) {
			long ev = 0;
			while (q < end && is_digit(*q)) {
				if (ev < 100000)
					ev = ev * 10 + (*q - '0');
				q++;
			}
			exp10 = eneg ? -ev : ev;
			p = q;
		}
	}
	/* digits past the 19th in the integer part scale up; past it in the
	 * fraction they only matter for rounding -> slow path */
	if (dropped)
		return slow_path(start, p, out);
	long e = exp10 - frac;
	double v;
	if (mant == 0) {
		v = 0.0;
	} else if (mant < ((uint64_t)1 << 53) && e >= -22 && e <= 22) {
		v = (double)mant;
		if (e < 0)
			v /= pow10_exact[-e];
		else
			v *= pow10_exact[e];
	} else {
		return slow_path(start, p, out);
	}
	*out = neg ? -v : v;
	return p;
}

const char *ts_parse_float(const char *p, const char *end, float *out)
{
	double d;
	const char *r = ts_parse_double(p, end, &d);
	if (r)
		*out = (float)d;
	return r;
}

const char *ts_parse_u64(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = p;
	while (p < end && is_digit(*p)) {
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return NULL;
		v = v * 10 + d;
		p++;
	}
	if (p == s)
		return NULL;
	*out = v;
	return p;
}

const char *ts_parse_i64(const char *p, const char *end, int64_t *out)
{
	bool neg = false;
	if (p < end && (*p == '+' || *p == '-'))
		neg = *p++ == '-';
	if (p < end && *p == '+')
		return NULL;
	uint64_t v;
	const char *r = ts_parse_u64(p, end, &v);
	if (!r)
		return NULL;
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			return NULL;
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		if (v > (uint64_t)INT64_MAX)
			return NULL;
		*out = (int64_t)v;
	}
	return r;
}

bool ts_eq(const char *a, const char *ae, const char *w)
{
	size_t n = strlen(w);
	return (size_t)(ae - a) == n && memcmp(a, w, n) == 0;
}

bool ts_ieq(const char *a, const char *ae, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(ae - a) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char x = a[i], y = w[i];
		if (x >= 'A' && x <= 'Z')
			x = (char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (char)(y + 32);
		if (x != y)
			return false;
	}
	return true;
}
