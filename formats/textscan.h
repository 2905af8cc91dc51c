/*
 * textscan.h - bounded text scanning shared by the text readers
 * (PLY ascii, OBJ, MTL, STL ascii, OFF, PCD ascii, XYZ).
 *
 * Everything works on [p, end) with an explicit end pointer: no NUL
 * sentinel is assumed and nothing reads past end.  Number parsers accept
 * what strtod/strtoll accept for plain decimal data, are exact (the fast
 * path is Clinger's: mantissa < 2^53 and |exp10| <= 22, otherwise strtod
 * on a bounded copy), and report overflow instead of wrapping.
 * Safe on untrusted input; thread-safe (no state).
 */
#ifndef REFSCAN_TEXTSCAN_H
#define REFSCAN_TEXTSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tcur {
	const char *p;    /* next unread byte */
	const char *end;  /* one past the last byte */
	long line;        /* 1-based line of p */
};

static inline void tcur_init(struct tcur *c, const void *buf, size_t len)
{
	c->p = (const char *)buf;
	c->end = c->p + len;
	c->line = 1;
}

static inline bool ts_is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Skip blanks (not newlines). */
static inline const char *ts_skip_blank(const char *p, const char *end)
{
	while (p < end && ts_is_space(*p))
		p++;
	return p;
}

/* Pointer to the next '\n' in [p,end), or end. */
const char *ts_find_eol(const char *p, const char *end);

/*
 * Next line: sets *ls and *le to the line without its '\n' (and without a
 * trailing '\r'), advances the cursor past the newline and counts it.
 * Returns false at end of input.
 */
bool tcur_next_line(struct tcur *c, const char **ls, const char **le);

/* End of the token starting at p (first blank or newline, or end). */
static inline const char *ts_token_end(const char *p, const char *end)
{
	while (p < end && !ts_is_space(*p) && *p != '\n')
		p++;
	return p;
}

/*
 * Parse a decimal floating-point number at p (after optional blanks is
 * NOT done: call ts_skip_blank first).  Accepts [+-]digits[.digits][eE[+-]digits],
 * ".5", "5.", "inf", "infinity", "nan" (any case).  On success stores the
 * value and returns the pointer after the number; returns NULL when there
 * is no number at p.  Out-of-range values become +-HUGE_VAL / 0 like strtod.
 */
const char *ts_parse_double(const char *p, const char *end, double *out);

/* Same, rounding to float. */
const char *ts_parse_float(const char *p, const char *end, float *out);

/*
 * Parse a signed decimal integer.  Returns the pointer after it, or NULL
 * when there is no integer or it overflows int64.
 */
const char *ts_parse_i64(const char *p, const char *end, int64_t *out);

/* Unsigned decimal integer; NULL on no digits, a sign, or overflow. */
const char *ts_parse_u64(const char *p, const char *end, uint64_t *out);

/* True when [a, ae) equals the NUL-terminated word w (case-sensitive). */
bool ts_eq(const char *a, const char *ae, const char *w);

/* Same, ASCII case-insensitive. */
bool ts_ieq(const char *a, const char *ae, const char *w);

#endif
