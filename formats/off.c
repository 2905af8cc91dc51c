/*
 * off.c - Geomview OFF reader: OFF, COFF, NOFF, CNOFF, STOFF, 4OFF, nOFF
 * and their combinations, ascii and BINARY.
 *
 * Spec: Geomview manual, "OFF Files" and "Binary format",
 * http://www.geomview.org/docs/html/OFF.html and
 * http://www.geomview.org/docs/html/Binary-format.html.
 *
 *   [ST][C][N][4][n]OFF [BINARY]   keyword, prefixes in this order
 *   [Ndim]                         only with n; only 3 is supported
 *   NVertices NFaces [NEdges]      NEdges is optional and ignored
 *   x y z [w] [nx ny nz] [r g b [a]] [s t]     one vertex per line
 *   Nv v0 v1 ... [colour]          one face per line
 *
 * Text rules: '#' starts a comment anywhere, running to the end of the
 * line; blank lines and any blanks (CRLF too) are allowed; the counts may
 * sit on the keyword's line ("OFF 8 6 0"), glued to the keyword
 * ("OFF8 6 0") or on a later line.  The keyword is required: files
 * without it are not recognised (NEEDSWORK: Geomview also reads
 * keyword-less files, which cannot be told from other number tables).
 * A vertex is one line, so the optional alpha of COFF colours is known
 * from the number of values on it; extra values on a vertex line are
 * ignored with a warning.  A face's indices may continue onto following
 * lines; its colour is whatever follows the last index up to the end of
 * that line.
 *
 * 4OFF vertices are homogeneous: x/w y/w z/w; w == 0 gives a non-finite
 * vertex (kept, reported by scan_finalize).  N -> scan.normals, C ->
 * scan.colors, ST -> scan.uvs.
 *
 * Colours, per face (after the indices) and per vertex (COFF):
 *   nothing           no colour
 *   one integer       a colormap index: ignored, counted in a warning
 *   3 or 4 integers   RGB[A] 0..255
 *   3 or 4 floats     RGB[A] 0..1; when a component is above 1 the
 *                     values are taken as 0..255, as Geomview does
 *   anything else     ignored, counted in a warning
 * A value is an integer when written without '.', exponent or inf/nan,
 * so "1 0 0" is a near-black 0..255 colour (the spec's integer reading)
 * while "1.0 0 0" is red.  Out-of-range values are clamped (warning).
 * Once any face has a colour, faces without one get Geomview's default
 * for that case, grey (170, 170, 170, 170).  Alpha defaults to 255.
 *
 * Faces: polygons of any degree are triangulated (formats/triangulate.h);
 * each triangle keeps its polygon's colour.  Faces with fewer than 3
 * vertices (edges and points, found in real files) are skipped with one
 * warning counting them, but their indices are still checked.  An index
 * outside 0..NVertices-1 is an error naming the line, face and index.
 * n_polygons is NFaces as declared, skipped faces included.
 *
 * BINARY (Geomview binary format): after the newline that ends the
 * "BINARY" line, big-endian int32 counts and float32 data in the same
 * order as the text; each face is int32 Nv, Nv int32 indices, int32
 * Ncolors (0..4) and Ncolors float32 components.  Vertex colours are 4
 * floats.
 *
 * Safe on untrusted input: the counts are checked against the limits and
 * against the fewest bytes the declared vertices and faces could take
 * (two per text number, four per binary number) before any allocation;
 * the triangle array grows with the faces actually read.
 * Thread-safe (no global state).
 */
#include "formats.h"
#include "../common/alloc.h"
#include "../common/err.h"
#include "textscan.h"
#include "triangulate.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../common/banned.h"

#define MAX_VALUES 24       /* values kept from one vertex line */
#define MAX_COLOR_VALUES 8  /* values kept after a face's indices */

static const uint8_t default_face_color[4] = { 170, 170, 170, 170 };

struct off_hdr {
	bool st, col, nrm, four, binary;
	uint64_t nv, nf;
	unsigned ncomp;         /* position values per vertex: 3, or 4 (w) */
};

/* ---- text cursor ---------------------------------------------------- */

struct ocur {
	const char *p, *end;
	long line;
};

/* Skip blanks, line breaks and comments. */
static void skip_space(struct ocur *c)
{
	while (c->p < c->end) {
		char ch = *c->p;
		if (ts_is_space(ch)) {
			c->p++;
		} else if (ch == '\n') {
			c->line++;
			c->p++;
		} else if (ch == '#') {
			c->p = ts_find_eol(c->p, c->end);
		} else {
			break;
		}
	}
}

/* Skip blanks and a comment on this line; true at end of line or input. */
static bool at_eol(struct ocur *c)
{
	c->p = ts_skip_blank(c->p, c->end);
	if (c->p < c->end && *c->p == '#')
		c->p = ts_find_eol(c->p, c->end);
	return c->p >= c->end || *c->p == '\n';
}

static const char *tok_end(const char *p, const char *end)
{
	while (p < end && !ts_is_space(*p) && *p != '\n' && *p != '#')
		p++;
	return p;
}

/* Printable copy of a token (at most 24 bytes) for "near '...'". */
static const char *near_tok(char *buf, size_t n, const char *p, const char *end)
{
	size_t i = 0;
	if (p >= end)
		return "end of file";
	while (p < end && i + 1 < n && i < 24 && !ts_is_space(*p) && *p != '\n') {
		unsigned char ch = (unsigned char)*p++;
		buf[i++] = (ch >= 0x20 && ch < 0x7F) ? (char)ch : '?';
	}
	buf[i] = '\0';
	return buf;
}

/* Unsigned integer token: the whole token must be digits. */
static bool tok_u64(struct ocur *c, uint64_t *v)
{
	const char *te = tok_end(c->p, c->end);
	const char *q = ts_parse_u64(c->p, te, v);
	if (q != te || te == c->p)
		return false;
	c->p = te;
	return true;
}

static bool tok_i64(struct ocur *c, int64_t *v)
{
	const char *te = tok_end(c->p, c->end);
	const char *q = ts_parse_i64(c->p, te, v);
	if (q != te || te == c->p)
		return false;
	c->p = te;
	return true;
}

/* [+-]digits only: an integer colour component. */
static bool is_int_literal(const char *p, const char *e)
{
	if (p < e && (*p == '+' || *p == '-'))
		p++;
	if (p == e)
		return false;
	for (; p < e; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

/* ---- colours -------------------------------------------------------- */

struct color_stats {
	size_t clamped;    /* values outside their range */
};

/*
 * Convert n (3 or 4) colour values to RGBA bytes.  ints: every value was
 * written as an integer (0..255); otherwise 0..1, or 0..255 when any
 * component exceeds 1 (Geomview's reading).
 */
static void to_rgba(const double *v, unsigned n, bool ints, uint8_t out[4],
		    struct color_stats *cs)
{
	bool scale255 = ints;
	for (unsigned i = 0; i < n && !scale255; i++)
		if (v[i] > 1.0)
			scale255 = true;
	for (unsigned i = 0; i < 4; i++) {
		double x = i < n ? v[i] : (scale255 ? 255.0 : 1.0);
		double hi = scale255 ? 255.0 : 1.0;
		if (!(x >= 0.0)) {   /* negative or NaN */
			x = 0.0;
			cs->clamped++;
		} else if (x > hi) {
			x = hi;
			cs->clamped++;
		}
		out[i] = (uint8_t)(scale255 ? x + 0.5 : x * 255.0 + 0.5);
	}
}

/* ---- header --------------------------------------------------------- */

/*
 * Parse the keyword at c->p ([ST][C][N][4][n]OFF).  Returns true and
 * moves past it; the next byte is a blank, line break, '#', digit or the
 * end.  *ndim is set for the n prefix.
 */
static bool parse_keyword(const char **pp, const char *end, struct off_hdr *h,
			  bool *ndim)
{
	const char *p = *pp;
	if (end - p >= 2 && p[0] == 'S' && p[1] == 'T') {
		h->st = true;
		p += 2;
	}
	if (p < end && *p == 'C') {
		h->col = true;
		p++;
	}
	if (p < end && *p == 'N') {
		h->nrm = true;
		p++;
	}
	if (p < end && *p == '4') {
		h->four = true;
		p++;
	}
	if (p < end && *p == 'n') {
		*ndim = true;
		p++;
	}
	if (end - p < 3 || memcmp(p, "OFF", 3))
		return false;
	p += 3;
	if (p < end && !ts_is_space(*p) && *p != '\n' && *p != '#' &&
	    !(*p >= '0' && *p <= '9'))
		return false;
	*pp = p;
	return true;
}

static size_t skip_bom(const unsigned char *buf, size_t len)
{
	return len >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF ? 3 : 0;
}

/* ---- reader state --------------------------------------------------- */

struct off_reader {
	const struct limits *lim;
	struct scan *s;
	struct err *e;
	struct off_hdr h;
	struct triangulator tr;
	uint32_t *poly;          /* one face's indices */
	size_t poly_cap;
	size_t tri_cap;          /* triangles s->indices (and face_colors) hold */
	size_t n_short;          /* faces with < 3 vertices, skipped */
	size_t n_cmap;           /* faces with a colormap index */
	size_t n_oddcol;         /* faces with 2 or > 4 trailing values */
	size_t n_extra;          /* vertex lines with extra values */
	struct color_stats cs;
};

/* Room for `more` triangles past n_faces in indices (and face_colors). */
static int reserve_tris(struct off_reader *r, size_t more, long line, int64_t off)
{
	struct scan *s = r->s;
	size_t need;
	if (ckd_add(&need, s->n_faces, more) || (uint64_t)need > r->lim->max_faces) {
		if (off >= 0)
			return err_set_offset(r->e, ERR_LIMIT, off,
					      "more than %llu triangles (limit)",
					      (unsigned long long)r->lim->max_faces);
		return err_set_line(r->e, ERR_LIMIT, line, "more than %llu triangles (limit)",
				    (unsigned long long)r->lim->max_faces);
	}
	if (need <= r->tri_cap)
		return 0;
	size_t cap = r->tri_cap;
	void *p = s->indices;
	if (alloc_grow(&p, &cap, need, 3 * sizeof(uint32_t)))
		return err_set(r->e, ERR_NOMEM, "out of memory for %zu triangles", need);
	s->indices = p;
	if (s->face_colors) {
		uint8_t *fc = realloc_array(s->face_colors, cap, 4);
		if (!fc) {
			/* indices grew; keep tri_cap at what both arrays hold */
			return err_set(r->e, ERR_NOMEM, "out of memory for %zu face colours", need);
		}
		s->face_colors = fc;
	}
	r->tri_cap = cap;
	return 0;
}

/* First coloured face: create face_colors, earlier triangles grey. */
static int start_face_colors(struct off_reader *r)
{
	struct scan *s = r->s;
	s->face_colors = alloc_array(r->tri_cap ? r->tri_cap : 1, 4);
	if (!s->face_colors)
		return err_set(r->e, ERR_NOMEM, "out of memory for face colours");
	for (size_t i = 0; i < s->n_faces; i++)
		memcpy(s->face_colors + 4 * i, default_face_color, 4);
	return 0;
}

static int grow_poly(struct off_reader *r, size_t k)
{
	void *p = r->poly;
	if (alloc_grow(&p, &r->poly_cap, k ? k : 1, sizeof(uint32_t)))
		return err_set(r->e, ERR_NOMEM, "out of memory for a %zu-vertex face", k);
	r->poly = p;
	return 0;
}

/*
 * Triangulate r->poly[0..k) (k >= 3, indices checked) and give its
 * triangles colour rgba (NULL: none).
 */
static int emit_polygon(struct off_reader *r, uint32_t k, const uint8_t *rgba,
			long line, int64_t off)
{
	struct scan *s = r->s;
	int rc;
	size_t ntri = (size_t)k - 2;
	if ((rc = reserve_tris(r, ntri, line, off)) < 0)
		return rc;
	if (rgba && !s->face_colors && (rc = start_face_colors(r)) < 0)
		return rc;
	rc = triangulate_polygon(&r->tr, s->positions, s->n_vertices, r->poly, k,
				 s->indices + 3 * s->n_faces, r->e);
	if (rc < 0) {
		if (r->e && off >= 0) {
			r->e->offset = off;
			r->e->line = 0;
		} else if (r->e) {
			r->e->line = line;
			r->e->offset = -1;
		}
		return rc;
	}
	if (s->face_colors) {
		const uint8_t *c = rgba ? rgba : default_face_color;
		for (size_t t = 0; t < ntri; t++)
			memcpy(s->face_colors + 4 * (s->n_faces + t), c, 4);
	}
	s->n_faces += ntri;
	return 0;
}

/* Per-vertex arrays for the header's prefixes. */
static int alloc_vertices(struct off_reader *r)
{
	unsigned flags = 0;
	if (r->h.nrm)
		flags |= SCAN_ALLOC_NORMALS;
	if (r->h.col)
		flags |= SCAN_ALLOC_COLORS;
	if (r->h.st)
		flags |= SCAN_ALLOC_UVS;
	int rc = scan_alloc(r->s, (size_t)r->h.nv, 0, flags, r->e);
	if (rc < 0)
		return rc;
	r->s->n_vertices = (size_t)r->h.nv;
	/* scan_alloc gave indices room for one triangle */
	r->tri_cap = 1;
	return 0;
}

/* Initial triangle room: the declared faces, bounded by the bytes left. */
static int alloc_faces(struct off_reader *r, size_t bytes_left, size_t min_face_bytes)
{
	uint64_t cap = r->h.nf;
	uint64_t by_bytes = bytes_left / min_face_bytes + 1;
	if (cap > by_bytes)
		cap = by_bytes;
	if (cap <= r->tri_cap)
		return 0;
	if ((uint64_t)cap > r->lim->max_faces)
		cap = r->lim->max_faces;
	uint32_t *p = realloc_array(r->s->indices, (size_t)cap, 3 * sizeof(uint32_t));
	if (!p)
		return err_set(r->e, ERR_NOMEM, "out of memory for %llu faces",
			       (unsigned long long)cap);
	r->s->indices = p;
	r->tri_cap = (size_t)cap;
	return 0;
}

static void set_position(struct off_reader *r, size_t i, const double *v)
{
	float *p = r->s->positions + 3 * i;
	if (r->h.four) {
		double w = v[3];
		if (w == 0.0) {
			p[0] = p[1] = p[2] = NAN;
			return;
		}
		for (int k = 0; k < 3; k++)
			p[k] = (float)(v[k] / w);
		return;
	}
	for (int k = 0; k < 3; k++)
		p[k] = (float)v[k];
}

static int finish_warnings(struct off_reader *r)
{
	struct scan *s = r->s;
	int rc = 0;
	if (r->n_short)
		rc |= scan_warn(s, "%zu faces with fewer than 3 vertices skipped (edges or points)",
				r->n_short);
	if (r->n_cmap)
		rc |= scan_warn(s, "%zu faces give a colormap index instead of a colour (ignored)",
				r->n_cmap);
	if (r->n_oddcol)
		rc |= scan_warn(s, "%zu faces end with values that are not a colour (ignored)",
				r->n_oddcol);
	if (r->n_extra)
		rc |= scan_warn(s, "%zu vertex lines carry extra values (ignored)", r->n_extra);
	if (r->cs.clamped)
		rc |= scan_warn(s, "%zu colour values out of range (clamped)", r->cs.clamped);
	return rc ? err_set(r->e, ERR_NOMEM, "out of memory") : 0;
}

/* ---- ascii body ----------------------------------------------------- */

static int read_ascii_vertices(struct off_reader *r, struct ocur *c)
{
	const struct off_hdr *h = &r->h;
	struct scan *s = r->s;
	unsigned need = h->ncomp + (h->nrm ? 3u : 0u) + (h->col ? 3u : 0u) + (h->st ? 2u : 0u);
	double v[MAX_VALUES];
	bool vint[MAX_VALUES];
	char nb[32];

	for (size_t i = 0; i < s->n_vertices; i++) {
		skip_space(c);
		if (c->p >= c->end)
			return err_set_line(r->e, ERR_FORMAT, c->line,
					    "truncated: expected vertex %zu of %zu near end of file",
					    i, s->n_vertices);
		long line = c->line;
		size_t n = 0;
		while (!at_eol(c)) {
			const char *ts = c->p, *te = tok_end(ts, c->end);
			double d;
			if (ts_parse_double(ts, te, &d) != te)
				return err_set_line(r->e, ERR_FORMAT, line,
						    "vertex %zu: bad number near '%s'", i,
						    near_tok(nb, sizeof(nb), ts, te));
			if (n < MAX_VALUES) {
				v[n] = d;
				vint[n] = is_int_literal(ts, te);
			}
			n++;
			c->p = te;
		}
		if (n < need)
			return err_set_line(r->e, ERR_FORMAT, line,
					    "vertex %zu: expected %u values, found %zu", i, need, n);
		size_t extra = n - need;
		bool alpha = h->col && extra >= 1;
		if (alpha)
			extra--;
		if (extra)
			r->n_extra++;
		set_position(r, i, v);
		unsigned k = h->ncomp;
		if (h->nrm) {
			for (int j = 0; j < 3; j++)
				s->normals[3 * i + (size_t)j] = (float)v[k + (unsigned)j];
			k += 3;
		}
		if (h->col) {
			unsigned nc = alpha ? 4u : 3u;
			bool ints = true;
			for (unsigned j = 0; j < nc; j++)
				ints = ints && vint[k + j];
			to_rgba(v + k, nc, ints, s->colors + 4 * i, &r->cs);
			k += nc;
		}
		if (h->st) {
			s->uvs[2 * i] = (float)v[k];
			s->uvs[2 * i + 1] = (float)v[k + 1];
		}
	}
	return 0;
}

static int read_ascii_faces(struct off_reader *r, struct ocur *c)
{
	struct scan *s = r->s;
	const struct limits *lim = r->lim;
	char nb[32];
	int rc;

	for (size_t f = 0; f < (size_t)r->h.nf; f++) {
		skip_space(c);
		if (c->p >= c->end)
			return err_set_line(r->e, ERR_FORMAT, c->line,
					    "truncated: expected face %zu of %llu near end of file",
					    f, (unsigned long long)r->h.nf);
		long line = c->line;
		const char *ts = c->p;
		int64_t k;
		if (!tok_i64(c, &k))
			return err_set_line(r->e, ERR_FORMAT, line,
					    "face %zu: bad vertex count near '%s'", f,
					    near_tok(nb, sizeof(nb), ts, tok_end(ts, c->end)));
		if (k < 0)
			return err_set_line(r->e, ERR_FORMAT, line,
					    "face %zu: negative vertex count %lld", f, (long long)k);
		if ((uint64_t)k > lim->max_polygon_degree)
			return err_set_line(r->e, ERR_LIMIT, line,
					    "face %zu: %lld vertices (limit %u)", f,
					    (long long)k, lim->max_polygon_degree);
		/* each index takes at least a digit and a separator */
		if ((uint64_t)k > (uint64_t)(c->end - c->p) / 2)
			return err_set_line(r->e, ERR_FORMAT, line,
					    "truncated: face %zu declares %lld vertices, more than the file holds",
					    f, (long long)k);
		if ((rc = grow_poly(r, (size_t)k)) < 0)
			return rc;
		for (int64_t j = 0; j < k; j++) {
			skip_space(c);
			long iline = c->line;
			int64_t idx;
			ts = c->p;
			if (ts >= c->end)
				return err_set_line(r->e, ERR_FORMAT, iline,
						    "truncated: face %zu: expected vertex index near end of file", f);
			if (!tok_i64(c, &idx))
				return err_set_line(r->e, ERR_FORMAT, iline,
						    "face %zu: bad vertex index near '%s'", f,
						    near_tok(nb, sizeof(nb), ts, tok_end(ts, c->end)));
			if (idx < 0 || (uint64_t)idx >= (uint64_t)s->n_vertices)
				return err_set_line(r->e, ERR_FORMAT, iline,
						    "face %zu: vertex index %lld out of range (have %zu)",
						    f, (long long)idx, s->n_vertices);
			r->poly[j] = (uint32_t)idx;
		}
		/* colour: the rest of the line holding the last index */
		double cv[MAX_COLOR_VALUES];
		bool ints = true;
		unsigned ncol = 0;
		while (!at_eol(c)) {
			const char *cs = c->p, *ce = tok_end(cs, c->end);
			double d;
			if (ts_parse_double(cs, ce, &d) != ce)
				return err_set_line(r->e, ERR_FORMAT, c->line,
						    "face %zu: bad colour value near '%s'", f,
						    near_tok(nb, sizeof(nb), cs, ce));
			if (ncol < MAX_COLOR_VALUES) {
				cv[ncol] = d;
				ints = ints && is_int_literal(cs, ce);
			}
			if (ncol < UINT32_MAX)
				ncol++;
			c->p = ce;
		}
		if (k < 3) {
			r->n_short++;
			continue;
		}
		uint8_t rgba[4];
		const uint8_t *col = NULL;
		if (ncol == 3 || ncol == 4) {
			to_rgba(cv, ncol, ints, rgba, &r->cs);
			col = rgba;
		} else if (ncol == 1) {
			r->n_cmap++;
		} else if (ncol) {
			r->n_oddcol++;
		}
		if ((rc = emit_polygon(r, (uint32_t)k, col, line, -1)) < 0)
			return rc;
	}
	skip_space(c);
	if (c->p < c->end && scan_warn(s, "line %ld: data after the last face ignored", c->line))
		return err_set(r->e, ERR_NOMEM, "out of memory");
	return 0;
}

/* ---- binary body ---------------------------------------------------- */

static inline uint32_t rd_u32be(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	       (uint32_t)p[3];
}

static inline int32_t rd_i32be(const unsigned char *p)
{
	uint32_t u = rd_u32be(p);
	int32_t i;
	memcpy(&i, &u, sizeof(i));
	return i;
}

static inline float rd_f32be(const unsigned char *p)
{
	uint32_t u = rd_u32be(p);
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

struct bcur {
	const unsigned char *base; /* start of the file, for offsets */
	const unsigned char *p, *end;
};

static inline int64_t boff(const struct bcur *b)
{
	return (int64_t)(b->p - b->base);
}

static inline size_t bleft(const struct bcur *b)
{
	return (size_t)(b->end - b->p);
}

static int read_binary_body(struct off_reader *r, struct bcur *b)
{
	const struct off_hdr *h = &r->h;
	struct scan *s = r->s;
	const struct limits *lim = r->lim;
	int rc;
	unsigned per_vertex = h->ncomp + (h->nrm ? 3u : 0u) + (h->col ? 4u : 0u) +
			      (h->st ? 2u : 0u);

	for (size_t i = 0; i < s->n_vertices; i++) {
		double v[MAX_VALUES];
		if (bleft(b) < 4 * (size_t)per_vertex)
			return err_set_offset(r->e, ERR_FORMAT, boff(b),
					      "truncated: vertex %zu of %zu", i, s->n_vertices);
		for (unsigned j = 0; j < per_vertex; j++)
			v[j] = rd_f32be(b->p + 4 * j);
		b->p += 4 * (size_t)per_vertex;
		set_position(r, i, v);
		unsigned k = h->ncomp;
		if (h->nrm) {
			for (int j = 0; j < 3; j++)
				s->normals[3 * i + (size_t)j] = (float)v[k + (unsigned)j];
			k += 3;
		}
		if (h->col) {
			to_rgba(v + k, 4, false, s->colors + 4 * i, &r->cs);
			k += 4;
		}
		if (h->st) {
			s->uvs[2 * i] = (float)v[k];
			s->uvs[2 * i + 1] = (float)v[k + 1];
		}
	}
	for (size_t f = 0; f < (size_t)h->nf; f++) {
		int64_t off = boff(b);
		if (bleft(b) < 4)
			return err_set_offset(r->e, ERR_FORMAT, off,
					      "truncated: face %zu of %llu", f,
					      (unsigned long long)h->nf);
		int32_t k = rd_i32be(b->p);
		if (k < 0)
			return err_set_offset(r->e, ERR_FORMAT, off,
					      "face %zu: negative vertex count %d", f, k);
		if ((uint32_t)k > lim->max_polygon_degree)
			return err_set_offset(r->e, ERR_LIMIT, off,
					      "face %zu: %d vertices (limit %u)", f, k,
					      lim->max_polygon_degree);
		/* k indices and the colour count */
		if ((uint64_t)bleft(b) - 4 < 4 * (uint64_t)k + 4)
			return err_set_offset(r->e, ERR_FORMAT, off,
					      "truncated: face %zu declares %d vertices, more than the file holds",
					      f, k);
		b->p += 4;
		if ((rc = grow_poly(r, (size_t)k)) < 0)
			return rc;
		for (int32_t j = 0; j < k; j++) {
			int32_t idx = rd_i32be(b->p);
			if (idx < 0 || (uint64_t)idx >= (uint64_t)s->n_vertices)
				return err_set_offset(r->e, ERR_FORMAT, boff(b),
						      "face %zu: vertex index %d out of range (have %zu)",
						      f, idx, s->n_vertices);
			r->poly[j] = (uint32_t)idx;
			b->p += 4;
		}
		int32_t ncol = rd_i32be(b->p);
		if (ncol < 0 || ncol > 4)
			return err_set_offset(r->e, ERR_FORMAT, boff(b),
					      "face %zu: %d colour components (expected 0 to 4)",
					      f, ncol);
		b->p += 4;
		if (bleft(b) < 4 * (size_t)ncol)
			return err_set_offset(r->e, ERR_FORMAT, boff(b),
					      "truncated: colour of face %zu", f);
		double cv[4];
		for (int32_t j = 0; j < ncol; j++)
			cv[j] = rd_f32be(b->p + 4 * j);
		b->p += 4 * (size_t)ncol;
		if (k < 3) {
			r->n_short++;
			continue;
		}
		uint8_t rgba[4];
		const uint8_t *col = NULL;
		if (ncol >= 3) {
			to_rgba(cv, (unsigned)ncol, false, rgba, &r->cs);
			col = rgba;
		} else if (ncol == 1) {
			r->n_cmap++;
		} else if (ncol) {
			r->n_oddcol++;
		}
		if ((rc = emit_polygon(r, (uint32_t)k, col, 0, off)) < 0)
			return rc;
	}
	if (b->p < b->end &&
	    scan_warn(s, "%zu bytes after the last face ignored", bleft(b)))
		return err_set(r->e, ERR_NOMEM, "out of memory");
	return 0;
}

/* ---- entry points --------------------------------------------------- */

/*
 * Check the declared counts against the limits and the bytes left, then
 * allocate.  min_v/min_f: fewest bytes one vertex / face can take.
 */
static int check_counts(struct off_reader *r, size_t left, uint64_t min_v,
			uint64_t min_f, long line, int64_t off)
{
	const struct off_hdr *h = &r->h;
	const struct limits *lim = r->lim;
	int code = 0;
	char msg[200];
	uint64_t need_v, need_f, need;

	if (h->nv > lim->max_vertices) {
		code = ERR_LIMIT;
		snprintf(msg, sizeof(msg), "header declares %llu vertices (limit %llu)",
			 (unsigned long long)h->nv, (unsigned long long)lim->max_vertices);
	} else if (h->nf > lim->max_faces) {
		code = ERR_LIMIT;
		snprintf(msg, sizeof(msg), "header declares %llu faces (limit %llu)",
			 (unsigned long long)h->nf, (unsigned long long)lim->max_faces);
	} else if (ckd_mul(&need_v, h->nv, min_v) || ckd_mul(&need_f, h->nf, min_f) ||
		   ckd_add(&need, need_v, need_f) || need > (uint64_t)left + 1) {
		code = ERR_FORMAT;
		snprintf(msg, sizeof(msg),
			 "truncated: header declares %llu vertices and %llu faces, more than the %zu bytes that follow hold",
			 (unsigned long long)h->nv, (unsigned long long)h->nf, left);
	}
	if (!code)
		return 0;
	if (off >= 0)
		return err_set_offset(r->e, code, off, "%s", msg);
	return err_set_line(r->e, code, line, "%s", msg);
}

int off_probe(const unsigned char *buf, size_t len)
{
	struct ocur c = { (const char *)buf + skip_bom(buf, len), (const char *)buf + len, 1 };
	/* a few comment lines may come first; give up after 64 KiB */
	if (len > 65536)
		c.end = (const char *)buf + 65536;
	skip_space(&c);
	struct off_hdr h;
	bool ndim = false;
	memset(&h, 0, sizeof(h));
	const char *p = c.p;
	return parse_keyword(&p, c.end, &h, &ndim) ? 100 : 0;
}

int off_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e)
{
	struct off_reader r;
	struct ocur c;
	char nb[32];
	bool ndim = false;
	int rc = 0;

	if (!lim)
		lim = limits_default();
	scan_init(out);
	memset(&r, 0, sizeof(r));
	r.lim = lim;
	r.s = out;
	r.e = e;
	triangulator_init(&r.tr);

	if (len == 0) {
		rc = err_set_offset(e, ERR_FORMAT, 0, "empty file");
		goto out;
	}
	c.p = (const char *)buf + skip_bom(buf, len);
	c.end = (const char *)buf + len;
	c.line = 1;
	skip_space(&c);
	const char *kw = c.p;
	if (!parse_keyword(&c.p, c.end, &r.h, &ndim)) {
		rc = err_set_line(e, ERR_FORMAT, c.line,
				  "expected an OFF keyword ([ST][C][N][4][n]OFF) near '%s'",
				  near_tok(nb, sizeof(nb), kw, tok_end(kw, c.end)));
		goto out;
	}
	r.h.ncomp = r.h.four ? 4 : 3;
	if (!at_eol(&c) && (size_t)(c.end - c.p) >= 6 && !memcmp(c.p, "BINARY", 6) &&
	    tok_end(c.p, c.end) == c.p + 6) {
		r.h.binary = true;
		c.p += 6;
		/* binary data starts after the newline ending this line */
		if (!at_eol(&c) || c.p >= c.end) {
			rc = err_set_line(e, ERR_FORMAT, c.line,
					  "expected a line break after 'BINARY' near '%s'",
					  near_tok(nb, sizeof(nb), c.p, tok_end(c.p, c.end)));
			goto out;
		}
		c.p++;
		c.line++;
	}
	snprintf(out->encoding, sizeof(out->encoding), r.h.binary ? "binary" : "ascii");

	if (r.h.binary) {
		struct bcur b = { buf, (const unsigned char *)c.p, buf + len };
		int64_t hoff = boff(&b);
		size_t nints = ndim ? 4 : 3;
		if (bleft(&b) < 4 * nints) {
			rc = err_set_offset(e, ERR_FORMAT, hoff, "truncated: binary OFF counts");
			goto out;
		}
		if (ndim) {
			int32_t dim = rd_i32be(b.p);
			b.p += 4;
			if (dim != 3) {
				rc = err_set_offset(e, ERR_UNSUPPORTED, hoff,
						    "nOFF with dimension %d is not supported (only 3)", dim);
				goto out;
			}
		}
		int32_t nv = rd_i32be(b.p), nf = rd_i32be(b.p + 4);
		b.p += 12; /* NEdges ignored */
		if (nv < 0 || nf < 0) {
			rc = err_set_offset(e, ERR_FORMAT, hoff, "negative counts (%d vertices, %d faces)",
					    nv, nf);
			goto out;
		}
		r.h.nv = (uint64_t)nv;
		r.h.nf = (uint64_t)nf;
		uint64_t per_v = 4u * (r.h.ncomp + (r.h.nrm ? 3u : 0u) + (r.h.col ? 4u : 0u) +
				       (r.h.st ? 2u : 0u));
		if ((rc = check_counts(&r, bleft(&b), per_v, 8, 0, hoff)) < 0)
			goto out;
		/* check_counts bounded nv * per_v by the bytes left (+1) */
		size_t vbytes = (size_t)(r.h.nv * per_v);
		size_t fbytes = bleft(&b) > vbytes ? bleft(&b) - vbytes : 0;
		/* a binary triangle takes 20 bytes */
		if ((rc = alloc_vertices(&r)) < 0 || (rc = alloc_faces(&r, fbytes, 16)) < 0)
			goto out;
		if ((rc = read_binary_body(&r, &b)) < 0)
			goto out;
	} else {
		uint64_t dim = 3;
		const char *ts;
		if (ndim) {
			skip_space(&c);
			ts = c.p;
			if (!tok_u64(&c, &dim)) {
				rc = err_set_line(e, ERR_FORMAT, c.line, "bad dimension near '%s'",
						  near_tok(nb, sizeof(nb), ts, tok_end(ts, c.end)));
				goto out;
			}
			if (dim != 3) {
				rc = err_set_line(e, ERR_UNSUPPORTED, c.line,
						  "nOFF with dimension %llu is not supported (only 3)",
						  (unsigned long long)dim);
				goto out;
			}
		}
		uint64_t *counts[2] = { &r.h.nv, &r.h.nf };
		static const char *const what[2] = { "vertex count", "face count" };
		for (int i = 0; i < 2; i++) {
			skip_space(&c);
			ts = c.p;
			if (!tok_u64(&c, counts[i])) {
				rc = err_set_line(e, ERR_FORMAT, c.line, "bad %s near '%s'", what[i],
						  near_tok(nb, sizeof(nb), ts, tok_end(ts, c.end)));
				goto out;
			}
		}
		long cline = c.line;
		/* an optional edge count, then nothing else on the line */
		int64_t ne;
		if (!at_eol(&c) && (!tok_i64(&c, &ne) || !at_eol(&c))) {
			rc = err_set_line(e, ERR_FORMAT, cline,
					  "unexpected '%s' after the vertex and face counts",
					  near_tok(nb, sizeof(nb), c.p, tok_end(c.p, c.end)));
			goto out;
		}
		if ((size_t)(c.p - (const char *)buf) > lim->max_header_bytes) {
			rc = err_set_line(e, ERR_LIMIT, cline, "header longer than %zu bytes (limit)",
					  lim->max_header_bytes);
			goto out;
		}
		unsigned need = r.h.ncomp + (r.h.nrm ? 3u : 0u) + (r.h.col ? 3u : 0u) +
				(r.h.st ? 2u : 0u);
		size_t left = (size_t)(c.end - c.p);
		if ((rc = check_counts(&r, left, 2u * need, 2, cline, -1)) < 0)
			goto out;
		if ((rc = alloc_vertices(&r)) < 0)
			goto out;
		if ((rc = read_ascii_vertices(&r, &c)) < 0)
			goto out;
		/* a triangle "3 a b c" takes at least 8 bytes */
		if ((rc = alloc_faces(&r, (size_t)(c.end - c.p), 8)) < 0)
			goto out;
		if ((rc = read_ascii_faces(&r, &c)) < 0)
			goto out;
	}
	out->n_polygons = (size_t)r.h.nf;
	if ((rc = finish_warnings(&r)) < 0)
		goto out;
	rc = scan_finalize(out, e);
out:
	xfree(r.poly);
	triangulator_release(&r.tr);
	if (rc < 0)
		scan_release(out);
	return rc;
}
