/*
 * xyz.c - plain point lists: XYZ, PTS (Leica) and TXT/ASC exports.
 *
 * One point per line, numbers separated by blanks and/or one comma.
 * Blank lines and comment lines ('#' or '//') are skipped.  There is no
 * header, so the meaning of the columns is worked out from the first data
 * lines (up to SAMPLE_LINES of them), trying these layouts in order and
 * taking the first whose every sampled line fits:
 *
 *   columns  layout                     accepted when
 *   3        x y z                      always
 *   4        x y z intensity            always (intensity is not kept)
 *   6        x y z nx ny nz             the last three are unit vectors
 *                                       (length 0.9..1.1, or all zero)
 *   6        x y z r g b                the last three are colours
 *   7        x y z r g b a              colours, and a is 255 (or 1.0) on
 *                                       every line (CloudCompare RGBA)
 *   7        x y z intensity r g b      the last three are colours (PTS)
 *   9        x y z nx ny nz r g b       unit vectors, then colours
 *   9        x y z r g b nx ny nz       colours, then unit vectors
 *   other    x y z and ignored columns  with a warning naming the count
 *
 * Colours are 0..255 numbers, or 0..1 numbers when every sampled colour
 * value is at most 1 and at least one is written with a '.' or exponent.
 * The layout chosen is recorded as metadata "columns".
 *
 * PTS: when the first data line is a single non-negative integer it is a
 * point count; Leica files may hold several such blocks, each opened by
 * its count, and every block must have exactly its count of points.
 *
 * A line with a different number of columns than the layout is an error
 * naming the line.  Safe on untrusted input: the point arrays are sized
 * from the number of lines present (one pass with memchr), never from a
 * declared count.
 */
#include "formats.h"
#include "textscan.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../common/banned.h"

#define SAMPLE_LINES 1000
#define MAX_COLUMNS 64
#define LAYOUT_COLUMNS 9   /* the widest known layout */

enum group { G_END, G_NORMAL, G_COLOR, G_ALPHA, G_INTENSITY };

struct layout {
	int columns;
	enum group groups[4];  /* after x y z, G_END-terminated */
	const char *names;     /* for the "columns" metadata */
};

static const struct layout layouts[] = {
	{ 3, { G_END }, "x y z" },
	{ 4, { G_INTENSITY, G_END }, "x y z intensity" },
	{ 6, { G_NORMAL, G_END }, "x y z nx ny nz" },
	{ 6, { G_COLOR, G_END }, "x y z r g b" },
	{ 7, { G_COLOR, G_ALPHA, G_END }, "x y z r g b a" },
	{ 7, { G_INTENSITY, G_COLOR, G_END }, "x y z intensity r g b" },
	{ 9, { G_NORMAL, G_COLOR, G_END }, "x y z nx ny nz r g b" },
	{ 9, { G_COLOR, G_NORMAL, G_END }, "x y z r g b nx ny nz" },
};

struct row {
	int n;                     /* columns found */
	bool dotted[MAX_COLUMNS];  /* written with '.', 'e' or 'E' */
	double v[MAX_COLUMNS];
};

/* The first columns of a sampled line: enough to test every layout. */
struct sample {
	bool dotted[LAYOUT_COLUMNS];
	double v[LAYOUT_COLUMNS];
};

static bool is_comment(const char *p, const char *e)
{
	return p < e && (*p == '#' || (*p == '/' && e - p > 1 && p[1] == '/'));
}

/*
 * Split [p, e) into numbers.  Returns the column count, or -1 with *bad
 * at the offending token, or -2 when there are more than MAX_COLUMNS.
 */
static int split_row(const char *p, const char *e, struct row *r, const char **bad)
{
	r->n = 0;
	p = ts_skip_blank(p, e);
	while (p < e) {
		if (r->n == MAX_COLUMNS)
			return -2;
		const char *q = ts_parse_double(p, e, &r->v[r->n]);
		if (!q || (q < e && !ts_is_space(*q) && *q != ',')) {
			*bad = p;
			return -1;
		}
		bool dot = false;
		for (const char *t = p; t < q; t++)
			dot |= *t == '.' || *t == 'e' || *t == 'E';
		r->dotted[r->n++] = dot;
		p = ts_skip_blank(q, e);
		if (p < e && *p == ',')
			p = ts_skip_blank(p + 1, e);
	}
	return r->n;
}

/* A count line: one non-negative integer and nothing else. */
static bool count_line(const char *p, const char *e, uint64_t *n)
{
	p = ts_skip_blank(p, e);
	const char *q = ts_parse_u64(p, e, n);
	return q && ts_skip_blank(q, e) == e;
}

int xyz_probe(const unsigned char *buf, size_t len)
{
	struct tcur c;
	const char *ls, *le;
	size_t n = len < 4096 ? len : 4096;
	int lines = 0, cols = 0;
	struct row r;
	const char *bad;

	for (size_t i = 0; i < n; i++)
		if (buf[i] < 0x20 && buf[i] != '\n' && buf[i] != '\r' && buf[i] != '\t')
			return 0;
	tcur_init(&c, buf, n);
	while (lines < 5 && tcur_next_line(&c, &ls, &le)) {
		/* the window may cut the last line short */
		if (le == c.end && n < len)
			break;
		ls = ts_skip_blank(ls, le);
		if (ls == le || is_comment(ls, le))
			continue;
		uint64_t count;
		if (!lines && !cols && count_line(ls, le, &count))
			continue;
		int k = split_row(ls, le, &r, &bad);
		if (k < 3 || (cols && k != cols))
			return 0;
		cols = k;
		lines++;
	}
	return lines ? 20 : 0;
}

static bool unit_vector(const double *v)
{
	double l2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
	return (l2 >= 0.81 && l2 <= 1.21) || (v[0] == 0 && v[1] == 0 && v[2] == 0);
}

static bool color_value(double v)
{
	return v >= 0 && v <= 255;
}

struct detect {
	const struct layout *layout; /* NULL: x y z and ignored columns */
	int columns;
	bool unit_colors;            /* colours are 0..1 */
};

struct stats {
	double color_max;            /* largest sampled colour value */
	bool color_dotted;           /* some colour written as a float */
	bool alpha_255, alpha_1;     /* every alpha is 255 / every alpha is 1 */
};

/* Does sampled line r fit layout l?  Accumulates colour statistics. */
static bool row_fits(const struct layout *l, const struct sample *r, struct stats *st)
{
	int col = 3;
	for (int g = 0; l->groups[g] != G_END; g++) {
		switch (l->groups[g]) {
		case G_NORMAL:
			if (!unit_vector(r->v + col))
				return false;
			col += 3;
			break;
		case G_COLOR:
			for (int k = 0; k < 3; k++, col++) {
				if (!color_value(r->v[col]))
					return false;
				if (r->v[col] > st->color_max)
					st->color_max = r->v[col];
				st->color_dotted |= r->dotted[col];
			}
			break;
		case G_ALPHA:
			if (!color_value(r->v[col]))
				return false;
			st->alpha_255 &= r->v[col] == 255;
			st->alpha_1 &= r->v[col] == 1;
			col++;
			break;
		default:
			col++;
			break;
		}
	}
	return true;
}

static bool has_group(const struct layout *l, enum group g)
{
	for (int i = 0; l->groups[i] != G_END; i++)
		if (l->groups[i] == g)
			return true;
	return false;
}

/* Pick the layout from the sampled lines (all with d->columns columns). */
static void choose_layout(const struct sample *rows, size_t n_rows, struct detect *d)
{
	d->layout = NULL;
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		const struct layout *l = &layouts[i];
		struct stats st = { .alpha_255 = true, .alpha_1 = true };
		size_t k;
		if (l->columns != d->columns)
			continue;
		for (k = 0; k < n_rows; k++)
			if (!row_fits(l, &rows[k], &st))
				break;
		if (k < n_rows)
			continue;
		bool unit = st.color_max <= 1 && st.color_dotted;
		/* RGBA only with alpha always opaque, else it is PTS intensity */
		if (has_group(l, G_ALPHA) && !(unit ? st.alpha_1 : st.alpha_255))
			continue;
		d->layout = l;
		d->unit_colors = unit;
		return;
	}
}

static int store_color(uint8_t *dst, const double *v, int n, bool unit, long line,
		       struct err *e)
{
	double max = unit ? 1.0 : 255.0;
	for (int k = 0; k < n; k++) {
		if (!(v[k] >= 0 && v[k] <= max))
			return err_set_line(e, ERR_FORMAT, line,
					    "colour value %g out of range 0..%g", v[k], max);
		dst[k] = (uint8_t)(unit ? v[k] * 255.0 + 0.5 : v[k] + 0.5);
	}
	return 0;
}

static int store_row(struct scan *s, size_t i, const struct detect *d,
		     const struct row *r, long line, struct err *e)
{
	int col = 3, rc;
	for (int k = 0; k < 3; k++)
		s->positions[3 * i + k] = (float)r->v[k];
	if (!d->layout)
		return 0;
	uint8_t *rgba = s->colors ? s->colors + 4 * i : NULL;
	if (rgba)
		rgba[3] = 255;
	for (int g = 0; d->layout->groups[g] != G_END; g++) {
		switch (d->layout->groups[g]) {
		case G_NORMAL:
			for (int k = 0; k < 3; k++)
				s->normals[3 * i + k] = (float)r->v[col + k];
			col += 3;
			break;
		case G_COLOR:
			if ((rc = store_color(rgba, r->v + col, 3, d->unit_colors, line, e)) < 0)
				return rc;
			col += 3;
			break;
		case G_ALPHA:
			if ((rc = store_color(rgba + 3, r->v + col, 1, d->unit_colors, line, e)) < 0)
				return rc;
			col++;
			break;
		default:
			col++;
			break;
		}
	}
	return 0;
}

/* Lines in [buf, buf+len): newlines, plus one for an unterminated tail. */
static size_t count_lines(const unsigned char *buf, size_t len)
{
	size_t n = 0;
	const unsigned char *p = buf, *end = buf + len;
	while (p < end) {
		const unsigned char *q = memchr(p, '\n', (size_t)(end - p));
		n++;
		if (!q)
			break;
		p = q + 1;
	}
	return n;
}

struct pts_block {
	uint64_t declared; /* points the count line promises */
	uint64_t seen;
	long line;         /* of the count line, 0 when not PTS */
};

static int close_block(const struct pts_block *b, struct err *e)
{
	if (b->line && b->seen != b->declared)
		return err_set_line(e, ERR_FORMAT, b->line,
				    "count line declares %llu points, the block has %llu",
				    (unsigned long long)b->declared, (unsigned long long)b->seen);
	return 0;
}

/* Report the token at bad, quoted safely: 40 bytes, '?' for non-printing. */
static int bad_number(const char *bad, const char *le, long line, struct err *e)
{
	const char *te = bad + (bad < le);
	char q[48];
	size_t n = 0;
	while (te < le && !ts_is_space(*te) && *te != ',')
		te++;
	for (const char *p = bad; p < te && n < 40; p++)
		q[n++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
	if (te - bad > 40) {
		memcpy(q + n, "...", 3);
		n += 3;
	}
	q[n] = '\0';
	return err_set_line(e, ERR_FORMAT, line, "bad number near '%s'", q);
}

/*
 * Next line that is not blank or a comment, trimmed, with its number;
 * false at the end.  Enforces the line length limit (*rc).
 */
static bool next_data_line(struct tcur *c, const char **ls, const char **le,
			   long *line, const struct limits *lim, int *rc,
			   struct err *e)
{
	for (;;) {
		*line = c->line;
		if (!tcur_next_line(c, ls, le))
			return false;
		if ((size_t)(*le - *ls) > lim->max_line_length) {
			*rc = err_set_line(e, ERR_LIMIT, *line, "line longer than %zu bytes",
					   lim->max_line_length);
			return false;
		}
		*ls = ts_skip_blank(*ls, *le);
		if (*ls != *le && !is_comment(*ls, *le))
			return true;
	}
}

int xyz_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e)
{
	struct tcur c;
	const char *ls, *le, *bad;
	struct sample *sample = NULL;
	struct row r;
	struct detect d = { 0 };
	struct pts_block blk = { 0 };
	size_t n_sample = 0, cap, i = 0;
	long line, first_line = 0;
	bool pts = false;
	uint64_t count;
	int k, rc = 0;

	if (!lim)
		lim = limits_default();
	scan_init(out);
	cap = count_lines(buf, len);
	if (cap > lim->max_vertices)
		cap = (size_t)lim->max_vertices;

	/* pass 1: the first data lines decide the layout */
	sample = alloc_array(SAMPLE_LINES, sizeof(*sample));
	if (!sample) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	tcur_init(&c, buf, len);
	while (n_sample < SAMPLE_LINES &&
	       next_data_line(&c, &ls, &le, &line, lim, &rc, e)) {
		if (!first_line && !pts && count_line(ls, le, &count)) {
			pts = true;
			continue;
		}
		k = split_row(ls, le, &r, &bad);
		if (!first_line) {
			/* the first point fixes the column count */
			if (k == -2) {
				rc = err_set_line(e, ERR_LIMIT, line, "more than %d columns",
						  MAX_COLUMNS);
				goto out;
			}
			if (k < 0) {
				rc = bad_number(bad, le, line, e);
				goto out;
			}
			if (k < 3) {
				rc = err_set_line(e, ERR_FORMAT, line,
						  "%d columns: a point needs at least x y z", k);
				goto out;
			}
			first_line = line;
			d.columns = k;
		}
		if (k != d.columns)
			break; /* reported with its line by pass 2 */
		for (int j = 0; j < k && j < LAYOUT_COLUMNS; j++) {
			sample[n_sample].v[j] = r.v[j];
			sample[n_sample].dotted[j] = r.dotted[j];
		}
		n_sample++;
	}
	if (rc < 0)
		goto out;
	if (!first_line) {
		rc = pts ? err_set(e, ERR_FORMAT, "no points after the count line") :
			   err_set(e, ERR_FORMAT, "no points (only blank and comment lines)");
		goto out;
	}
	choose_layout(sample, n_sample, &d);
	xfree(sample);
	sample = NULL;

	unsigned flags = 0;
	if (d.layout && has_group(d.layout, G_NORMAL))
		flags |= SCAN_ALLOC_NORMALS;
	if (d.layout && has_group(d.layout, G_COLOR))
		flags |= SCAN_ALLOC_COLORS;
	if ((rc = scan_alloc(out, cap, 0, flags, e)) < 0)
		goto out;
	char names[64];
	if (d.layout)
		snprintf(names, sizeof(names), "%s", d.layout->names);
	else
		snprintf(names, sizeof(names), "x y z and %d ignored", d.columns - 3);
	if (scan_meta_add(out, "columns", 7, names, strlen(names)) ||
	    (!d.layout && scan_warn(out,
		"%d columns do not match a known layout: read x y z, ignored the other %d",
		d.columns, d.columns - 3))) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}

	/* pass 2: every line */
	tcur_init(&c, buf, len);
	while (next_data_line(&c, &ls, &le, &line, lim, &rc, e)) {
		if (pts && count_line(ls, le, &count)) {
			if ((rc = close_block(&blk, e)) < 0)
				goto out;
			blk.declared = count;
			blk.seen = 0;
			blk.line = line;
			continue;
		}
		k = split_row(ls, le, &r, &bad);
		if (k == -2) {
			rc = err_set_line(e, ERR_LIMIT, line, "more than %d columns", MAX_COLUMNS);
			goto out;
		}
		if (k < 0) {
			rc = bad_number(bad, le, line, e);
			goto out;
		}
		if (k != d.columns) {
			rc = err_set_line(e, ERR_FORMAT, line,
					  "%d columns, expected %d like line %ld", k, d.columns,
					  first_line);
			goto out;
		}
		if (pts && blk.seen == blk.declared) {
			rc = err_set_line(e, ERR_FORMAT, line,
					  "point beyond the %llu declared on line %ld",
					  (unsigned long long)blk.declared, blk.line);
			goto out;
		}
		if (i == cap) {
			rc = err_set_line(e, ERR_LIMIT, line, "more than %llu points",
					  (unsigned long long)lim->max_vertices);
			goto out;
		}
		if ((rc = store_row(out, i, &d, &r, line, e)) < 0)
			goto out;
		i++;
		blk.seen++;
	}
	if (rc < 0 || (rc = close_block(&blk, e)) < 0)
		goto out;
	out->n_vertices = i;
	out->format = "xyz";
	snprintf(out->encoding, sizeof(out->encoding), "ascii");
	rc = scan_finalize(out, e);
out:
	xfree(sample);
	if (rc < 0)
		scan_release(out);
	return rc;
}
