/*
 * obj.c - Wavefront OBJ reader.
 *
 * Spec: Wavefront "Object Files (.obj)", Advanced Visualizer manual,
 * appendix B1 (https://paulbourke.net/dataformats/obj/).
 *
 * Read, all from the caller's buffer (no per-line allocation):
 *  1. the buffer is cut into chunks at logical line starts (one chunk
 *     for files under OBJ_CHUNK_BYTES);
 *  2. count pass (chunks in parallel): v, vt, vn, faces and triangles,
 *     line length and polygon degree limits, and where the mtllib, usemtl
 *     and "# units" lines are;
 *  3. serial: prefix sums give each chunk its first line number and
 *     first vertex/face slot; counts are checked against struct limits,
 *     then arrays are allocated at their exact size; mtllib and usemtl
 *     lines are handled in file order (materials interned);
 *  4. vertex pass (parallel): v, vt, vn values;
 *  5. face pass (parallel): faces resolved, triangulated, written;
 *  6. per-vertex normals picked, scan_finalize().
 * Each chunk writes only its own slots, so the scan is the same for any
 * number of threads or chunks.
 *
 * What is kept, and how:
 *  - v x y z [w] | v x y z r g b: positions; colours (0..1 floats,
 *    clamped, NaN -> 0) become RGBA8, vertices without colour in a file
 *    that has some are white.  MSVC's "1.#IND"/"1.#INF" are read as NaN/Inf.
 *  - vt u [v [w]]: per-corner UVs (corner_uvs, w dropped); corners
 *    without vt in a file that has some get (0,0) and a warning.
 *  - vn: OBJ normals belong to face corners, struct scan has per-vertex
 *    normals: a vertex takes the vn of the first face (in file order)
 *    that gives it one, the lowest vn index within that face; vertices
 *    never given one get (0,0,0) and a warning.
 *  - f: every index form (v, v/vt, v//vn, v/vt/vn; empty fields as in
 *    "1//" allowed), negative indices relative to the elements read so
 *    far, positive ones against the whole file.  Polygons are ear-clipped
 *    (triangulate.h).
 *  - p, l, o, g, s and other grouping/display statements: ignored (all v
 *    are kept, so points need nothing).  Unknown statements: skipped with
 *    one warning naming the first.
 *  - mtllib: declared names into s->libraries (formats.c loads them);
 *    several per line, "\ " escapes, and a name with spaces when the words
 *    only end in ".mtl" together ("mtllib my mats.mtl").
 *  - usemtl NAME (rest of the line, may hold spaces): face_material.
 *  - "# units mm": s->units.
 *  - '\' at the end of a line continues it; '#' starts a comment
 *    anywhere; CRLF, no final newline, a UTF-8 BOM are fine; UTF-16 and
 *    binary data are refused with a clear error.
 *
 * Safe on untrusted input: counts come from the data itself and are
 * checked against struct limits before anything is allocated; every index
 * is bounds-checked before use.
 */
#include "formats.h"
#include "obj_int.h"
#include "textscan.h"
#include "triangulate.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../common/banned.h"

#define NO_INDEX UINT32_MAX
#define KEY_NONE UINT64_MAX

enum kw {
	KW_BLANK,   /* empty or comment */
	KW_V,
	KW_VT,
	KW_VN,
	KW_F,
	KW_USEMTL,
	KW_MTLLIB,
	KW_UNITS,   /* "# units mm" */
	KW_IGNORED, /* known, nothing to keep */
	KW_UNKNOWN
};

struct directive {
	size_t off; /* byte offset of the logical line */
	long line;  /* its line number (chunk-relative until fixed up) */
};

struct chunk {
	const char *start, *end; /* [start, end) begins at a logical line */

	/* count pass */
	long n_lines;            /* physical lines */
	size_t nv, nvt, nvn, npoly, nusemtl, n_known, n_unknown;
	size_t n_short;          /* faces with fewer than 3 vertices (skipped) */
	long short_line;         /* the first of them, chunk-relative */
	uint64_t ntri;
	uint32_t max_degree;
	bool colors;             /* some v has r g b */
	long unknown_line;       /* first unknown statement, chunk-relative */
	char unknown_kw[24];
	struct directive *dirs;
	size_t n_dirs, dirs_cap;

	/* bases: totals of the chunks before this one */
	long line0;              /* line number of the first line */
	size_t v0, vt0, vn0, poly0, ev0;
	uint64_t tri0, tri_end;

	/* face pass */
	size_t n_corner_vt, n_corner_no_vt;
	size_t n_bad_vt, n_bad_vn;  /* corners naming a vt/vn that does not exist */
	long bad_vt_line, bad_vn_line;

	/* scratch, owned */
	struct obj_lines lines;
	uint32_t *corners;       /* 6 * max_degree: v, vt, vn, 3 * triangles */
	struct triangulator tr;

	int rc;
	struct err err;
};

/* What the passes share, read-only while chunks run (but for the arrays
 * each chunk fills in its own range). */
struct reader {
	const struct limits *lim;
	struct scan *s;
	struct chunk *chunks;
	size_t n_chunks;
	size_t nv, nvt, nvn, npoly, nusemtl;
	uint64_t ntri;
	uint32_t max_degree;
	bool colors;
	float *vt;          /* 2 * nvt */
	float *vn;          /* 3 * nvn */
	uint64_t *nkey;     /* nv: (polygon << 32 | vn) of the normal chosen */
	int32_t *events;    /* material of each usemtl line, in file order */
};

/* ---- logical lines ---- */

static int join_lines(struct obj_lines *L, const char *s, const char *t,
		      const char **ls, const char **le, long lno, struct err *e)
{
	size_t n = 0;
	for (;;) {
		/* [s, t) is a piece whose continuation backslash is cut off */
		size_t piece = (size_t)(t - s);
		if (piece > L->max_len || n > L->max_len - piece)
			return err_set_line(e, ERR_LIMIT, lno,
					    "line is longer than %zu bytes (with its continuations)",
					    L->max_len);
		if (alloc_grow((void **)&L->join, &L->join_cap, n + piece + 2, 1))
			return err_set_line(e, ERR_NOMEM, lno, "out of memory joining continued lines");
		memcpy(L->join + n, s, piece);
		n += piece;
		L->join[n++] = ' ';
		if (L->p >= L->end)
			break;
		s = L->p;
		const char *nl = memchr(s, '\n', (size_t)(L->end - s));
		t = nl ? nl : L->end;
		L->p = nl ? nl + 1 : L->end;
		L->line++;
		if (t > s && t[-1] == '\r')
			t--;
		if (t > s && t[-1] == '\\') {
			if (nl) {
				t--;
				continue;
			}
			t--;
		}
		piece = (size_t)(t - s);
		if (piece > L->max_len || n > L->max_len - piece)
			return err_set_line(e, ERR_LIMIT, lno,
					    "line is longer than %zu bytes (with its continuations)",
					    L->max_len);
		if (alloc_grow((void **)&L->join, &L->join_cap, n + piece + 1, 1))
			return err_set_line(e, ERR_NOMEM, lno, "out of memory joining continued lines");
		memcpy(L->join + n, s, piece);
		n += piece;
		break;
	}
	*ls = L->join;
	*le = L->join + n;
	return 1;
}

static inline int next_line(struct obj_lines *L, const char **ls, const char **le,
			    long *lno, struct err *e)
{
	if (L->p >= L->end)
		return 0;
	const char *s = L->p;
	const char *nl = memchr(s, '\n', (size_t)(L->end - s));
	const char *t = nl ? nl : L->end;
	*lno = L->line++;
	L->p = nl ? nl + 1 : L->end;
	if (t > s && t[-1] == '\r')
		t--;
	if ((size_t)(t - s) > L->max_len)
		return err_set_line(e, ERR_LIMIT, *lno, "line is longer than %zu bytes",
				    L->max_len);
	if (t > s && t[-1] == '\\') {
		if (nl)
			return join_lines(L, s, t - 1, ls, le, *lno, e);
		t--; /* a continuation at the very end continues nothing */
	}
	*ls = s;
	*le = t;
	return 1;
}

int obj_next_line(struct obj_lines *L, const char **ls, const char **le,
		  long *lno, struct err *e)
{
	return next_line(L, ls, le, lno, e);
}

/* ---- text checks ---- */

/* UTF-16 without a BOM: ASCII text has a NUL in every other byte. */
static bool looks_utf16(const unsigned char *b, size_t len)
{
	if (len >= 2 && ((b[0] == 0xFF && b[1] == 0xFE) || (b[0] == 0xFE && b[1] == 0xFF)))
		return true;
	size_t n = len < 512 ? len : 512, z[2] = { 0, 0 };
	if (n < 4)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!b[i])
			z[i & 1]++;
	size_t half = n / 2;
	return z[0] * 10 >= half * 8 || z[1] * 10 >= half * 8;
}

int obj_check_text(const unsigned char *buf, size_t *len, size_t *padding,
		   struct err *e)
{
	*padding = 0;
	if (looks_utf16(buf, *len))
		return err_set_line(e, ERR_UNSUPPORTED, 1,
				    "UTF-16 text is not supported (save the file as UTF-8)");
	/* classic Mac OS line ends (CR only): the whole file would be one line */
	size_t head = *len < 4096 ? *len : 4096, n_cr = 0;
	if (!memchr(buf, '\n', head))
		for (size_t i = 0; i < head; i++)
			n_cr += buf[i] == '\r';
	if (n_cr >= 2)
		return err_set_line(e, ERR_UNSUPPORTED, 1,
				    "lines end in CR only (classic Mac OS); convert them to LF or CRLF");
	const unsigned char *z = memchr(buf, 0, *len);
	if (!z)
		return 0;
	size_t at = (size_t)(z - buf);
	size_t i = at;
	while (i < *len && !buf[i])
		i++;
	if (i == *len) {
		/* zero padding after the text (preallocated or truncated copies) */
		*padding = *len - at;
		*len = at;
		return 0;
	}
	long line = 1;
	for (const unsigned char *p = buf; (p = memchr(p, '\n', (size_t)(z - p))); p++)
		line++;
	return err_set_line(e, ERR_FORMAT, line,
			    "NUL byte at offset %zu: binary data, not a text file", at);
}

/* ---- small helpers ---- */

/* Printable copy of the token at p, for messages. */
static const char *snip(const char *p, const char *le, char *buf, size_t n)
{
	size_t i = 0;
	while (p < le && !ts_is_space(*p) && i + 1 < n) {
		unsigned char ch = (unsigned char)*p++;
		buf[i++] = ch >= 0x20 && ch < 0x7F ? (char)ch : '?';
	}
	buf[i] = '\0';
	return buf;
}

static inline const char *trim_end(const char *p, const char *le)
{
	while (le > p && ts_is_space(le[-1]))
		le--;
	return le;
}

/*
 * Blank-separated tokens before a comment.  A '#' starts a comment at the
 * start of a token only ("v 1 2 3 # note"); inside a token it is data, so
 * "1.#IND" stays one number and "3#x" is a bad one, in every pass alike.
 */
static size_t count_tokens(const char *p, const char *le)
{
	size_t n = 0;
	for (;;) {
		while (p < le && ts_is_space(*p))
			p++;
		if (p >= le || *p == '#')
			return n;
		n++;
		while (p < le && !ts_is_space(*p))
			p++;
	}
}

static bool is_units_comment(const char *p, const char *le)
{
	p = ts_skip_blank(p + 1, le);
	const char *q = ts_token_end(p, le);
	return ts_ieq(p, q, "units");
}

/*
 * Classify the statement at p (first non-blank byte of a line).  *rest
 * is set past the keyword.  The one classifier all passes use, so they
 * agree on every line.
 */
static enum kw classify(const char *p, const char *le, const char **rest)
{
	if (p >= le)
		return KW_BLANK;
	const char *ke = p;
	while (ke < le && !ts_is_space(*ke))
		ke++;
	*rest = ke;
	size_t n = (size_t)(ke - p);
	switch (p[0]) {
	case '#':
		return is_units_comment(p, le) ? KW_UNITS : KW_BLANK;
	case 'v':
		if (n == 1)
			return KW_V;
		if (n == 2 && p[1] == 't')
			return KW_VT;
		if (n == 2 && p[1] == 'n')
			return KW_VN;
		if (n == 2 && p[1] == 'p')
			return KW_IGNORED; /* free-form parameter vertex */
		break;
	case 'f':
		if (n == 1)
			return KW_F;
		break;
	case 'u':
		if (n == 6 && !memcmp(p, "usemtl", 6))
			return KW_USEMTL;
		if (n == 6 && !memcmp(p, "usemap", 6))
			return KW_IGNORED;
		break;
	case 'm':
		if (n == 6 && !memcmp(p, "mtllib", 6))
			return KW_MTLLIB;
		if (n == 6 && !memcmp(p, "maplib", 6))
			return KW_IGNORED;
		if (n == 2 && p[1] == 'g')
			return KW_IGNORED;
		break;
	case 'o': case 'g': case 's': case 'l': case 'p':
		if (n == 1)
			return KW_IGNORED;
		break;
	default:
		break;
	}
	/* display and rendering attributes that say nothing about shape */
	static const char *const ignored[] = {
		"lod", "bevel", "c_interp", "d_interp", "shadow_obj", "trace_obj",
	};
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		if (ts_eq(p, ke, ignored[i]))
			return KW_IGNORED;
	return KW_UNKNOWN;
}

/*
 * A number followed by a blank or the end.  Also MSVC's "1.#IND",
 * "-1.#INF", "1.#QNAN" (as NaN / Inf), written by old Windows exporters.
 */
static const char *parse_num(const char *p, const char *le, float *out)
{
	double d;
	const char *q = ts_parse_double(p, le, &d);
	if (!q)
		return NULL;
	if (q < le && *q == '#' && q + 1 < le && q[-1] == '.') {
		const char *w = q + 1, *we = w;
		while (we < le && ((*we >= 'A' && *we <= 'Z') || (*we >= 'a' && *we <= 'z')))
			we++;
		bool inf = ts_ieq(w, we, "INF");
		if (inf || ts_ieq(w, we, "IND") || ts_ieq(w, we, "QNAN") || ts_ieq(w, we, "SNAN")) {
			d = inf ? copysign(INFINITY, d) : NAN;
			while (we < le && *we >= '0' && *we <= '9')
				we++;
			q = we;
		}
	}
	if (q < le && !ts_is_space(*q))
		return NULL;
	if (d > FLT_MAX)
		*out = INFINITY;
	else if (d < -FLT_MAX)
		*out = -INFINITY;
	else
		*out = (float)d;
	return q;
}

static int add_directive(struct chunk *c, const char *ls, long line)
{
	if (alloc_grow((void **)&c->dirs, &c->dirs_cap, c->n_dirs + 1, sizeof(*c->dirs)))
		return err_set_line(&c->err, ERR_NOMEM, line, "out of memory");
	c->dirs[c->n_dirs].off = (size_t)(ls - c->start);
	c->dirs[c->n_dirs].line = line;
	c->n_dirs++;
	return 0;
}

static void lines_at(struct obj_lines *L, const struct chunk *c, const char *p,
		     long line, const struct limits *lim)
{
	L->p = p;
	L->end = c->end;
	L->line = line;
	L->max_len = lim->max_line_length;
}

/* ---- pass 1: counts ---- */

static int count_chunk(struct chunk *c, const struct limits *lim)
{
	struct obj_lines *L = &c->lines;
	const char *ls, *le, *rest;
	long lno;
	int r;

	lines_at(L, c, c->start, 1, lim);
	for (;;) {
		const char *at = L->p; /* where the logical line starts */
		if ((r = next_line(L, &ls, &le, &lno, &c->err)) <= 0)
			break;
		const char *p = ts_skip_blank(ls, le);
		if (p == le)
			continue;
		enum kw k = classify(p, le, &rest);
		switch (k) {
		case KW_BLANK:
			break;
		case KW_V: {
			size_t n = count_tokens(rest, le);
			if (n < 3)
				return err_set_line(&c->err, ERR_FORMAT, lno,
						    "vertex has %zu coordinates (need 3)", n);
			if (n >= 6)
				c->colors = true;
			c->nv++;
			break;
		}
		case KW_VT:
			c->nvt++;
			break;
		case KW_VN:
			c->nvn++;
			break;
		case KW_F: {
			size_t n = count_tokens(rest, le);
			/*
			 * Edges and points written as faces (some exporters do)
			 * are not surface: skipped with one warning, as in OFF,
			 * so the rest of the scan is kept.  Their indices are
			 * still checked in the face pass.
			 */
			if (n < 3) {
				if (!c->n_short++)
					c->short_line = lno;
				break;
			}
			if (n > lim->max_polygon_degree)
				return err_set_line(&c->err, ERR_LIMIT, lno,
						    "face with %zu vertices (limit %u)", n,
						    lim->max_polygon_degree);
			c->npoly++;
			c->ntri += n - 2;
			if (n > c->max_degree)
				c->max_degree = (uint32_t)n;
			break;
		}
		case KW_USEMTL:
			c->nusemtl++;
			/* fall through */
		case KW_MTLLIB:
		case KW_UNITS:
			if ((r = add_directive(c, at, lno)) < 0)
				return r;
			break;
		case KW_IGNORED:
			break;
		case KW_UNKNOWN:
			if (!c->n_unknown++) {
				c->unknown_line = lno;
				snip(p, le, c->unknown_kw, sizeof(c->unknown_kw));
			}
			continue;
		}
		if (k != KW_BLANK)
			c->n_known++;
	}
	c->n_lines = L->line - 1;
	return r;
}

/* ---- pass 2: vertex data ---- */

static inline uint8_t to_u8(float f)
{
	if (!(f > 0))
		return 0; /* also NaN */
	if (f >= 1)
		return 255;
	return (uint8_t)lrintf(f * 255.0f);
}

static int bad_number(struct chunk *c, long lno, const char *p, const char *le)
{
	char tok[32];
	return err_set_line(&c->err, ERR_FORMAT, lno, "bad number near '%s'",
			    snip(p, le, tok, sizeof(tok)));
}

/* Up to max numbers from p to the end of the statement; count in *n. */
static int parse_numbers(struct chunk *c, long lno, const char *p, const char *le,
			 float *vals, int max, int *n)
{
	*n = 0;
	for (;;) {
		p = ts_skip_blank(p, le);
		if (p >= le || *p == '#')
			return 0;
		float f;
		const char *q = parse_num(p, le, &f);
		if (!q)
			return bad_number(c, lno, p, le);
		if (*n < max)
			vals[*n] = f;
		(*n)++;
		p = q;
	}
}

static int vertex_chunk(struct chunk *c, struct reader *rd)
{
	struct scan *s = rd->s;
	struct obj_lines *L = &c->lines;
	const char *ls, *le, *rest;
	long lno;
	int r, n;
	float val[7];
	size_t iv = c->v0, ivt = c->vt0, ivn = c->vn0;
	size_t v_end = c->v0 + c->nv, vt_end = c->vt0 + c->nvt, vn_end = c->vn0 + c->nvn;

	lines_at(L, c, c->start, c->line0, rd->lim);
	while ((r = next_line(L, &ls, &le, &lno, &c->err)) > 0) {
		const char *p = ts_skip_blank(ls, le);
		if (p == le || *p != 'v')
			continue;
		enum kw k = classify(p, le, &rest);
		if (k == KW_V) {
			if ((r = parse_numbers(c, lno, rest, le, val, 7, &n)) < 0)
				return r;
			if (n < 3 || iv >= v_end)
				return err_set_line(&c->err, ERR_INTERNAL, lno, "vertex count changed between passes");
			memcpy(s->positions + 3 * iv, val, 3 * sizeof(float));
			if (s->colors) {
				uint8_t *col = s->colors + 4 * iv;
				if (n >= 6) {
					col[0] = to_u8(val[3]);
					col[1] = to_u8(val[4]);
					col[2] = to_u8(val[5]);
				} else {
					col[0] = col[1] = col[2] = 255;
				}
				col[3] = 255;
			}
			iv++;
		} else if (k == KW_VT) {
			if ((r = parse_numbers(c, lno, rest, le, val, 3, &n)) < 0)
				return r;
			if (n < 1)
				return err_set_line(&c->err, ERR_FORMAT, lno,
						    "texture coordinate without values");
			if (ivt >= vt_end)
				return err_set_line(&c->err, ERR_INTERNAL, lno, "vt count changed between passes");
			rd->vt[2 * ivt] = val[0];
			rd->vt[2 * ivt + 1] = n > 1 ? val[1] : 0.0f;
			ivt++;
		} else if (k == KW_VN) {
			if ((r = parse_numbers(c, lno, rest, le, val, 3, &n)) < 0)
				return r;
			if (n < 3)
				return err_set_line(&c->err, ERR_FORMAT, lno,
						    "normal has %d components (need 3)", n);
			if (ivn >= vn_end)
				return err_set_line(&c->err, ERR_INTERNAL, lno, "vn count changed between passes");
			memcpy(rd->vn + 3 * ivn, val, 3 * sizeof(float));
			ivn++;
		}
	}
	return r;
}

/* ---- pass 3: faces ---- */

/*
 * OBJ index i (1-based, or negative: relative to the `seen` elements read
 * before this line) to a 0-based index below total.
 */
static inline bool resolve(int64_t i, size_t seen, size_t total, uint32_t *out)
{
	if (i > 0) {
		if ((uint64_t)i > total)
			return false;
		*out = (uint32_t)(i - 1);
		return true;
	}
	if (i < 0 && (uint64_t)-(i + 1) < seen) {
		*out = (uint32_t)(seen - (size_t)(-(i + 1)) - 1);
		return true;
	}
	return false;
}

/*
 * OBJ index [+-]digits.  Up to 18 digits cannot overflow and are read
 * inline (this is the hot loop of big files); longer ones go through the
 * overflow-checked ts_parse_i64.
 */
static inline const char *parse_index(const char *p, const char *le, int64_t *out)
{
	const char *q = p;
	bool neg = false;
	if (q < le && (*q == '-' || *q == '+'))
		neg = *q++ == '-';
	const char *d = q;
	uint64_t v = 0;
	while (q < le && (unsigned char)(*q - '0') < 10 && q - d < 18)
		v = v * 10 + (uint64_t)(*q++ - '0');
	if (q == d)
		return NULL;
	if (q < le && (unsigned char)(*q - '0') < 10)
		return ts_parse_i64(p, le, out);
	*out = neg ? -(int64_t)v : (int64_t)v;
	return q;
}

static inline void key_min(uint64_t *slot, uint64_t key)
{
	uint64_t cur = __atomic_load_n(slot, __ATOMIC_RELAXED);
	while (key < cur &&
	       !__atomic_compare_exchange_n(slot, &cur, key, true, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
}

static int bad_corner(struct chunk *c, long lno, const char *p, const char *le)
{
	char tok[32];
	return err_set_line(&c->err, ERR_FORMAT, lno, "bad face vertex '%s'",
			    snip(p, le, tok, sizeof(tok)));
}

static int face_chunk(struct chunk *c, struct reader *rd)
{
	static const uint32_t tri3[3] = { 0, 1, 2 };
	struct scan *s = rd->s;
	struct obj_lines *L = &c->lines;
	const char *ls, *le, *rest;
	long lno = c->line0;
	int r;
	size_t seen_v = c->v0, seen_vt = c->vt0, seen_vn = c->vn0;
	size_t poly = c->poly0, ev = c->ev0;
	uint64_t tri = c->tri0;
	int32_t mat = ev ? rd->events[ev - 1] : -1;
	uint32_t maxk = rd->max_degree;
	uint32_t *cv = c->corners, *cvt = cv + maxk, *cvn = cvt + maxk, *out = cvn + maxk;

	lines_at(L, c, c->start, c->line0, rd->lim);
	while ((r = next_line(L, &ls, &le, &lno, &c->err)) > 0) {
		const char *p = ts_skip_blank(ls, le);
		if (p == le)
			continue;
		/* only v/vt/vn (for relative indices), usemtl and f matter */
		if (*p != 'v' && *p != 'f' && *p != 'u')
			continue;
		enum kw k = classify(p, le, &rest);
		if (k == KW_V) {
			seen_v++;
			continue;
		}
		if (k == KW_VT) {
			seen_vt++;
			continue;
		}
		if (k == KW_VN) {
			seen_vn++;
			continue;
		}
		if (k == KW_USEMTL) {
			mat = rd->events[ev++];
			continue;
		}
		if (k != KW_F)
			continue;

		uint32_t n = 0;
		bool any_vt = false;
		const char *q = rest;
		for (;;) {
			q = ts_skip_blank(q, le);
			if (q >= le || *q == '#')
				break;
			if (n >= maxk)
				return err_set_line(&c->err, ERR_INTERNAL, lno, "face size changed between passes");
			int64_t iv, it = 0, in = 0;
			bool has_t = false, has_n = false;
			const char *t = parse_index(q, le, &iv);
			if (!t)
				return bad_corner(c, lno, q, le);
			if (t < le && *t == '/') {
				t++;
				if (t < le && *t != '/' && !ts_is_space(*t)) {
					if (!(t = parse_index(t, le, &it)))
						return bad_corner(c, lno, q, le);
					has_t = true;
				}
				if (t < le && *t == '/') {
					t++;
					if (t < le && !ts_is_space(*t)) {
						if (!(t = parse_index(t, le, &in)))
							return bad_corner(c, lno, q, le);
						has_n = true;
					}
				}
			}
			if (t < le && !ts_is_space(*t))
				return bad_corner(c, lno, q, le);
			if (!resolve(iv, seen_v, rd->nv, &cv[n]))
				return err_set_line(&c->err, ERR_FORMAT, lno,
						    "face vertex index %lld out of range (have %zu)",
						    (long long)iv, iv < 0 ? seen_v : rd->nv);
			/* a broken vt/vn reference loses that attribute only */
			cvt[n] = NO_INDEX;
			if (has_t) {
				if (resolve(it, seen_vt, rd->nvt, &cvt[n]))
					any_vt = true;
				else if (!c->n_bad_vt++)
					c->bad_vt_line = lno;
			}
			cvn[n] = NO_INDEX;
			if (has_n && !resolve(in, seen_vn, rd->nvn, &cvn[n]) && !c->n_bad_vn++)
				c->bad_vn_line = lno;
			n++;
			q = t;
		}
		if (n < 3)
			continue; /* counted and warned about in the count pass */
		if (tri + (n - 2) > c->tri_end)
			return err_set_line(&c->err, ERR_INTERNAL, lno, "face size changed between passes");

		const uint32_t *co = tri3;
		if (n > 3) {
			r = triangulate_polygon_corners(&c->tr, s->positions, rd->nv, cv, n, out, &c->err);
			if (r < 0) {
				c->err.line = lno;
				return r;
			}
			co = out;
		}
		for (uint32_t i = 0; i < 3 * (n - 2); i++)
			s->indices[3 * tri + i] = cv[co[i]];
		if (s->corner_uvs) {
			float *uv = s->corner_uvs + 6 * tri;
			for (uint32_t i = 0; i < 3 * (n - 2); i++) {
				uint32_t t = cvt[co[i]];
				uv[2 * i] = t == NO_INDEX ? 0.0f : rd->vt[2 * t];
				uv[2 * i + 1] = t == NO_INDEX ? 0.0f : rd->vt[2 * t + 1];
			}
			if (any_vt) {
				for (uint32_t i = 0; i < n; i++) {
					if (cvt[i] == NO_INDEX)
						c->n_corner_no_vt++;
					else
						c->n_corner_vt++;
				}
			} else {
				c->n_corner_no_vt += n;
			}
		}
		if (s->face_material)
			for (uint32_t i = 0; i < n - 2; i++)
				s->face_material[tri + i] = mat;
		if (rd->nkey)
			for (uint32_t i = 0; i < n; i++)
				if (cvn[i] != NO_INDEX)
					key_min(&rd->nkey[cv[i]], (uint64_t)poly << 32 | cvn[i]);
		tri += n - 2;
		poly++;
	}
	if (r == 0 && tri != c->tri_end)
		return err_set_line(&c->err, ERR_INTERNAL, lno, "face count changed between passes");
	return r;
}

/* ---- directives (serial, file order) ---- */

static bool ends_with_mtl(const char *p, const char *q)
{
	return q - p >= 4 && ts_ieq(q - 4, q, ".mtl");
}

/* End of a token in which "\ " is an escaped blank, not a separator. */
static const char *escaped_token_end(const char *p, const char *le)
{
	while (p < le && !ts_is_space(*p)) {
		if (*p == '\\' && p + 1 < le && (p[1] == ' ' || p[1] == '\t'))
			p++;
		p++;
	}
	return p;
}

static int add_library(struct scan *s, const char *p, const char *q,
		       const struct limits *lim, long lno, struct err *e)
{
	char *name = xmalloc((size_t)(q - p) + 1);
	size_t n = 0;
	if (!name)
		return err_set_line(e, ERR_NOMEM, lno, "out of memory");
	for (; p < q; p++) {
		if (*p == '\\' && p + 1 < q && (p[1] == ' ' || p[1] == '\t'))
			p++;
		name[n++] = *p;
	}
	name[n] = '\0';
	for (size_t i = 0; i < s->n_libraries; i++)
		if (!strcmp(s->libraries[i], name)) {
			xfree(name);
			return 0;
		}
	if (s->n_libraries >= lim->max_referenced_files) {
		xfree(name);
		return err_set_line(e, ERR_LIMIT, lno, "more than %zu material libraries",
				    lim->max_referenced_files);
	}
	char **nl = realloc_array(s->libraries, s->n_libraries + 1, sizeof(*nl));
	if (!nl) {
		xfree(name);
		return err_set_line(e, ERR_NOMEM, lno, "out of memory");
	}
	s->libraries = nl;
	s->libraries[s->n_libraries++] = name;
	return 0;
}

/*
 * mtllib: names split at blanks, except that words are grouped until one
 * ends in ".mtl", so "mtllib a.mtl b.mtl" is two names and "mtllib my
 * mats.mtl" one; words after the last ".mtl" form one name.
 */
static int do_mtllib(struct scan *s, const char *p, const char *le,
		     const struct limits *lim, long lno, struct err *e)
{
	le = trim_end(p, le);
	p = ts_skip_blank(p, le);
	if (p == le)
		return scan_warn(s, "line %ld: mtllib without a file name", lno) ?
			       err_set(e, ERR_NOMEM, "out of memory") : 0;
	while (p < le) {
		const char *g = p, *q;
		for (;;) {
			q = escaped_token_end(p, le);
			if (ends_with_mtl(p, q))
				break; /* a word ending in .mtl closes the name */
			const char *nx = ts_skip_blank(q, le);
			if (nx >= le)
				break; /* the words left form one name */
			p = nx;
		}
		int rc = add_library(s, g, q, lim, lno, e);
		if (rc)
			return rc;
		p = ts_skip_blank(q, le);
	}
	return 0;
}

static int do_directives(struct reader *rd, struct err *e)
{
	struct scan *s = rd->s;
	struct mtl_names names;
	struct obj_lines L;
	const char *ls, *le, *rest;
	long lno;
	size_t ev = 0;
	int rc;

	memset(&L, 0, sizeof(L));
	if ((rc = mtl_names_init(&names, s)) < 0)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t ci = 0; ci < rd->n_chunks; ci++) {
		struct chunk *c = &rd->chunks[ci];
		for (size_t d = 0; d < c->n_dirs; d++) {
			lines_at(&L, c, c->start + c->dirs[d].off, c->dirs[d].line, rd->lim);
			if ((rc = obj_next_line(&L, &ls, &le, &lno, e)) <= 0) {
				if (!rc)
					rc = err_set_line(e, ERR_INTERNAL, c->dirs[d].line, "directive line vanished");
				goto out;
			}
			const char *p = ts_skip_blank(ls, le);
			enum kw k = classify(p, le, &rest);
			if (k == KW_USEMTL) {
				const char *ne = trim_end(rest, le);
				const char *nb = ts_skip_blank(rest, ne);
				int32_t m = -1;
				if (nb < ne) {
					m = mtl_names_intern(&names, s, nb, (size_t)(ne - nb), e);
					if (m < 0) {
						rc = m;
						e->line = lno;
						goto out;
					}
				}
				rd->events[ev++] = m;
			} else if (k == KW_MTLLIB) {
				if ((rc = do_mtllib(s, rest, le, rd->lim, lno, e)) < 0)
					goto out;
			} else if (k == KW_UNITS) {
				const char *u = ts_skip_blank(p + 1, le);
				u = ts_skip_blank(ts_token_end(u, le), le);
				const char *ue = ts_token_end(u, le);
				enum scan_units units = scan_units_parse(u, (size_t)(ue - u));
				if (units != UNITS_UNKNOWN)
					s->units = units;
				else if (scan_warn(s, "line %ld: unknown units '%.*s' ignored", lno,
						   (int)(ue - u < 32 ? ue - u : 32), u))
					rc = ERR_NOMEM;
			}
			if (rc < 0) {
				rc = err_set(e, ERR_NOMEM, "out of memory");
				goto out;
			}
		}
	}
	rc = 0;
out:
	xfree(L.join);
	mtl_names_release(&names);
	return rc;
}

/* ---- driver ---- */

/* Cut [p, end) into chunks of about want bytes, each at a logical line. */
static const char *chunk_end(const char *p, const char *end, size_t want)
{
	if ((size_t)(end - p) <= want)
		return end;
	const char *q = p + want;
	for (;;) {
		const char *nl = memchr(q, '\n', (size_t)(end - q));
		if (!nl)
			return end;
		const char *t = nl;
		if (t > p && t[-1] == '\r')
			t--;
		/* a line ending in '\' continues: not a boundary */
		if (!(t > p && t[-1] == '\\'))
			return nl + 1;
		q = nl + 1;
	}
}

static void chunk_release(struct chunk *c)
{
	xfree(c->dirs);
	xfree(c->lines.join);
	xfree(c->corners);
	triangulator_release(&c->tr);
}

/* The error of the first failed chunk (they run in file order, so the
 * first is also the earliest line) into e. */
static int first_error(struct reader *rd, struct err *e)
{
	for (size_t i = 0; i < rd->n_chunks; i++) {
		struct chunk *c = &rd->chunks[i];
		if (c->rc < 0) {
			e->code = c->err.code;
			e->line = c->err.line;
			e->offset = -1;
			memcpy(e->msg, c->err.msg, sizeof(e->msg));
			return c->rc;
		}
	}
	return 0;
}

static int alloc_arrays(struct reader *rd, struct err *e)
{
	struct scan *s = rd->s;
	unsigned flags = 0;
	if (rd->colors)
		flags |= SCAN_ALLOC_COLORS;
	if (rd->nvn && rd->nv && rd->ntri)
		flags |= SCAN_ALLOC_NORMALS;
	if (rd->nvt && rd->ntri)
		flags |= SCAN_ALLOC_CORNER_UVS;
	if (rd->nusemtl && rd->ntri)
		flags |= SCAN_ALLOC_FACE_MATERIAL;
	int rc = scan_alloc(s, rd->nv, (size_t)rd->ntri, flags, e);
	if (rc)
		return rc;
	if ((rd->nvt && !(rd->vt = alloc_array(rd->nvt, 2 * sizeof(float)))) ||
	    (rd->nvn && !(rd->vn = alloc_array(rd->nvn, 3 * sizeof(float)))) ||
	    (rd->nusemtl && !(rd->events = alloc_array(rd->nusemtl, sizeof(int32_t)))))
		return err_set(e, ERR_NOMEM, "out of memory for %zu texture coordinates and %zu normals",
			       rd->nvt, rd->nvn);
	if (s->normals) {
		if (!(rd->nkey = alloc_array(rd->nv, sizeof(uint64_t))))
			return err_set(e, ERR_NOMEM, "out of memory for %zu normals", rd->nv);
		memset(rd->nkey, 0xFF, rd->nv * sizeof(uint64_t));
	}
	return 0;
}

static int check_limits(const struct reader *rd, struct err *e)
{
	uint64_t maxv = rd->lim->max_vertices < UINT32_MAX ? rd->lim->max_vertices : UINT32_MAX;
	uint64_t maxf = rd->lim->max_faces < UINT32_MAX ? rd->lim->max_faces : UINT32_MAX;
	if (rd->nv > maxv)
		return err_set(e, ERR_LIMIT, "%zu vertices (limit %llu)", rd->nv,
			       (unsigned long long)maxv);
	if (rd->nvt > maxv)
		return err_set(e, ERR_LIMIT, "%zu texture coordinates (limit %llu)", rd->nvt,
			       (unsigned long long)maxv);
	if (rd->nvn > maxv)
		return err_set(e, ERR_LIMIT, "%zu normals (limit %llu)", rd->nvn,
			       (unsigned long long)maxv);
	if (rd->ntri > maxf)
		return err_set(e, ERR_LIMIT, "%llu triangles (limit %llu)",
			       (unsigned long long)rd->ntri, (unsigned long long)maxf);
	return 0;
}

/* Per-vertex normals from the chosen corner of each vertex. */
static size_t pick_normals(struct reader *rd)
{
	struct scan *s = rd->s;
	size_t assigned = 0;
	const size_t nv = rd->nv;
#pragma omp parallel for reduction(+ : assigned) if (nv > 1000000)
	for (size_t i = 0; i < nv; i++) {
		uint64_t k = rd->nkey[i];
		float *n = s->normals + 3 * i;
		if (k == KEY_NONE) {
			n[0] = n[1] = n[2] = 0.0f;
			continue;
		}
		memcpy(n, rd->vn + 3 * (k & 0xFFFFFFFFu), 3 * sizeof(float));
		assigned++;
	}
	return assigned;
}

static int warn(struct err *e, int rc)
{
	return rc ? err_set(e, ERR_NOMEM, "out of memory") : 0;
}

static int finish(struct reader *rd, struct err *e)
{
	struct scan *s = rd->s;
	size_t n_corner_vt = 0, n_corner_no_vt = 0, n_fanned = 0, n_unknown = 0;
	size_t n_bad_vt = 0, n_bad_vn = 0, n_short = 0;
	long bad_vt_line = 0, bad_vn_line = 0, short_line = 0;
	struct chunk *first_unknown = NULL;
	int rc;

	for (size_t i = 0; i < rd->n_chunks; i++) {
		struct chunk *c = &rd->chunks[i];
		if (c->n_bad_vt && !n_bad_vt)
			bad_vt_line = c->bad_vt_line;
		if (c->n_bad_vn && !n_bad_vn)
			bad_vn_line = c->bad_vn_line;
		if (c->n_short && !n_short)
			short_line = c->line0 + c->short_line - 1;
		n_short += c->n_short;
		n_bad_vt += c->n_bad_vt;
		n_bad_vn += c->n_bad_vn;
		n_corner_vt += c->n_corner_vt;
		n_corner_no_vt += c->n_corner_no_vt;
		n_fanned += c->tr.n_fanned;
		n_unknown += c->n_unknown;
		if (c->n_unknown && !first_unknown)
			first_unknown = c;
	}
	if (n_bad_vt &&
	    (rc = warn(e, scan_warn(s, "line %ld: %zu face corners name a texture coordinate that does not exist (have %zu; ignored)",
				    bad_vt_line, n_bad_vt, rd->nvt))))
		return rc;
	if (n_bad_vn &&
	    (rc = warn(e, scan_warn(s, "line %ld: %zu face corners name a normal that does not exist (have %zu; ignored)",
				    bad_vn_line, n_bad_vn, rd->nvn))))
		return rc;
	if (s->normals) {
		size_t assigned = pick_normals(rd);
		if (!assigned) {
			xfree(s->normals);
			s->normals = NULL;
		} else if (assigned < rd->nv &&
			   (rc = warn(e, scan_warn(s, "%zu of %zu vertices have no normal from a face (set to 0,0,0)",
						      rd->nv - assigned, rd->nv))))
			return rc;
	}
	if (s->corner_uvs) {
		if (!n_corner_vt) {
			xfree(s->corner_uvs);
			s->corner_uvs = NULL;
		} else if (n_corner_no_vt &&
			   (rc = warn(e, scan_warn(s, "%zu face corners have no texture coordinate (set to 0,0)",
						      n_corner_no_vt))))
			return rc;
	}
	if (n_short &&
	    (rc = warn(e, scan_warn(s, "line %ld: %zu faces with fewer than 3 vertices skipped (not surface)",
				       short_line, n_short))))
		return rc;
	if (n_fanned &&
	    (rc = warn(e, scan_warn(s, "%zu polygons with more than %u vertices were split as a fan (wrong if concave)",
				       n_fanned, TRIANGULATE_MAX_EAR))))
		return rc;
	if (n_unknown &&
	    (rc = warn(e, scan_warn(s, "line %ld: unknown statement '%s' ignored (%zu such lines)",
				       first_unknown->unknown_line + first_unknown->line0 - 1,
				       first_unknown->unknown_kw, n_unknown))))
		return rc;
	if (!rd->nv && (rc = warn(e, scan_warn(s, "no vertices"))))
		return rc;
	return 0;
}

int obj_read_chunked(const unsigned char *buf, size_t len,
		     const struct limits *lim, struct scan *s, struct err *e,
		     size_t chunk_bytes)
{
	struct reader rd;
	size_t padding = 0;
	int rc;

	if (!lim)
		lim = limits_default();
	if (!chunk_bytes)
		chunk_bytes = OBJ_CHUNK_BYTES;
	memset(&rd, 0, sizeof(rd));
	rd.lim = lim;
	rd.s = s;
	s->format = "obj";
	snprintf(s->encoding, sizeof(s->encoding), "ascii");

	if (len >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF) {
		buf += 3;
		len -= 3;
	}
	if ((rc = obj_check_text(buf, &len, &padding, e)) < 0)
		return rc;
	if (!len)
		return err_set(e, ERR_FORMAT, "empty file");

	/* chunks */
	const char *text = (const char *)buf, *end = text + len;
	size_t cap = len / chunk_bytes + 2;
	rd.chunks = alloc_array_zero(cap, sizeof(*rd.chunks));
	if (!rd.chunks)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (const char *p = text; p < end && rd.n_chunks < cap;) {
		struct chunk *c = &rd.chunks[rd.n_chunks++];
		c->start = p;
		c->end = rd.n_chunks == cap ? end : chunk_end(p, end, chunk_bytes);
		triangulator_init(&c->tr);
		err_init(&c->err);
		p = c->end;
	}
	const size_t nc = rd.n_chunks;

	/* pass 1 */
#pragma omp parallel for schedule(dynamic, 1) if (nc > 1)
	for (size_t i = 0; i < nc; i++)
		rd.chunks[i].rc = count_chunk(&rd.chunks[i], lim);

	long line = 1;
	size_t n_known = 0, n_unknown = 0;
	for (size_t i = 0; i < nc; i++) {
		struct chunk *c = &rd.chunks[i];
		c->line0 = line;
		if (c->rc < 0 && c->err.line > 0)
			c->err.line += line - 1;
		for (size_t d = 0; d < c->n_dirs; d++)
			c->dirs[d].line += line - 1;
		line += c->n_lines;
		c->v0 = rd.nv;
		c->vt0 = rd.nvt;
		c->vn0 = rd.nvn;
		c->poly0 = rd.npoly;
		c->ev0 = rd.nusemtl;
		c->tri0 = rd.ntri;
		rd.nv += c->nv;
		rd.nvt += c->nvt;
		rd.nvn += c->nvn;
		rd.npoly += c->npoly;
		rd.nusemtl += c->nusemtl;
		rd.ntri += c->ntri;
		c->tri_end = rd.ntri;
		n_known += c->n_known;
		n_unknown += c->n_unknown;
		if (c->max_degree > rd.max_degree)
			rd.max_degree = c->max_degree;
		rd.colors = rd.colors || c->colors;
	}
	if ((rc = first_error(&rd, e)) < 0)
		goto out;
	if (!n_known && n_unknown) {
		struct chunk *c = rd.chunks;
		while (!c->n_unknown)
			c++;
		rc = err_set_line(e, ERR_FORMAT, c->unknown_line + c->line0 - 1,
				  "not an OBJ file: no OBJ statements, starts with '%s'",
				  c->unknown_kw);
		goto out;
	}
	if (!rd.npoly) {
		/* faces that are all edges or points: not a surface, and not a
		 * point cloud either (those have no f lines) */
		for (size_t i = 0; i < nc; i++) {
			struct chunk *c = &rd.chunks[i];
			if (c->n_short) {
				rc = err_set_line(e, ERR_FORMAT, c->short_line + c->line0 - 1,
						  "no face has 3 or more vertices");
				goto out;
			}
		}
	}
	if ((rc = check_limits(&rd, e)) < 0 || (rc = alloc_arrays(&rd, e)) < 0 ||
	    (rc = do_directives(&rd, e)) < 0)
		goto out;
	if (padding && (rc = warn(e, scan_warn(s, "%zu NUL bytes of padding after the text ignored",
						  padding))))
		goto out;
	s->n_vertices = rd.nv;
	s->n_faces = (size_t)rd.ntri;
	s->n_polygons = rd.npoly;

	/* pass 2 */
#pragma omp parallel for schedule(dynamic, 1) if (nc > 1)
	for (size_t i = 0; i < nc; i++)
		rd.chunks[i].rc = vertex_chunk(&rd.chunks[i], &rd);
	if ((rc = first_error(&rd, e)) < 0)
		goto out;

	/* pass 3 */
	if (rd.npoly) {
#pragma omp parallel for schedule(dynamic, 1) if (nc > 1)
		for (size_t i = 0; i < nc; i++) {
			struct chunk *c = &rd.chunks[i];
			if (!c->npoly) {
				c->rc = 0;
				continue;
			}
			c->corners = alloc_array(rd.max_degree, 6 * sizeof(uint32_t));
			if (!c->corners) {
				c->rc = err_set_line(&c->err, ERR_NOMEM, c->line0,
						     "out of memory for a face of %u vertices",
						     rd.max_degree);
				continue;
			}
			c->rc = face_chunk(c, &rd);
		}
		if ((rc = first_error(&rd, e)) < 0)
			goto out;
	}

	if ((rc = finish(&rd, e)) < 0)
		goto out;
	rc = scan_finalize(s, e);
out:
	for (size_t i = 0; i < rd.n_chunks; i++)
		chunk_release(&rd.chunks[i]);
	xfree(rd.chunks);
	xfree(rd.vt);
	xfree(rd.vn);
	xfree(rd.nkey);
	xfree(rd.events);
	if (rc < 0)
		scan_release(s);
	return rc;
}

int obj_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e)
{
	return obj_read_chunked(buf, len, lim, out, e, 0);
}

/* ---- probe ---- */

static int probe_text(const char *p, const char *end, bool complete)
{
	size_t strong = 0, known = 0, unknown = 0, comments = 0, lines = 0;
	while (p < end && lines < 200) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl && !complete)
			break; /* a cut-off last line says nothing */
		const char *le = nl ? nl : end;
		const char *q = ts_skip_blank(p, le), *rest;
		p = nl ? nl + 1 : end;
		lines++;
		if (q == le)
			continue;
		if (*q == '#') {
			comments++;
			continue;
		}
		enum kw k = classify(q, le, &rest);
		if (k == KW_UNKNOWN) {
			if (!strong && !known)
				return 0; /* the first statement is not OBJ */
			unknown++;
			continue;
		}
		rest = ts_skip_blank(rest, le);
		double d;
		int64_t i;
		if ((k == KW_V || k == KW_VT || k == KW_VN) && ts_parse_double(rest, le, &d))
			strong++;
		else if (k == KW_F && ts_parse_i64(rest, le, &i))
			strong++;
		else
			known++;
	}
	if (!strong && !known)
		return comments && !unknown ? 5 : 0;
	if (unknown > strong + known)
		return 0;
	return strong ? 60 : 40;
}

int obj_probe(const unsigned char *buf, size_t len)
{
	size_t n = len < 4096 ? len : 4096;
	if (n >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF) {
		buf += 3;
		n -= 3;
		len -= 3;
	}
	if (looks_utf16(buf, n)) {
		/* let obj_read say "UTF-16" when the text under it is OBJ */
		char tmp[2048];
		size_t m = 0, i = (buf[0] == 0 || (n > 1 && buf[0] == 0xFE)) ? 1 : 0;
		if (n >= 2 && ((buf[0] == 0xFF && buf[1] == 0xFE) || (buf[0] == 0xFE && buf[1] == 0xFF)))
			i += 2;
		for (; i < n && m < sizeof(tmp); i += 2)
			tmp[m++] = (char)buf[i];
		return probe_text(tmp, tmp + m, n == len) ? 30 : 0;
	}
	if (memchr(buf, 0, n))
		return 0;
	return probe_text((const char *)buf, (const char *)buf + n, n == len);
}
