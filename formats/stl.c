/*
 * stl.c - STL reader (StereoLithography), ascii and binary.
 *
 * Spec: 3D Systems, "StereoLithography Interface Specification" (1989);
 * summary and the colour extensions in
 * https://en.wikipedia.org/wiki/STL_(file_format).
 *
 * Binary: an 80-byte header, a little-endian uint32 triangle count n,
 * then n records of 50 bytes (normal, three vertices as float32 xyz, a
 * uint16 "attribute byte count").  The file must hold 84 + 50*n bytes:
 * fewer is an error (`offset N: truncated: header declares T triangles,
 * file holds only K`); more is read with a warning about the trailing
 * bytes.
 *
 * Ascii or binary: many binary writers start the header with "solid",
 * so the keyword alone decides nothing.  The rule, in order:
 *   1. at least 84 bytes and 84 + 50*n == len exactly: binary;
 *   2. starts with "solid" (after blanks) and holds no NUL byte: ascii;
 *   3. anything else: binary.
 * STL text never holds a NUL, while binary data nearly always does
 * (padded headers, zero coordinates, zero attribute words), so a
 * "solid"-header binary with trailing junk or cut short still gets the
 * binary answer (a warning, or the truncation error).
 *
 * Ascii: `solid [name]`, then `facet normal nx ny nz / outer loop /
 * vertex x y z` x3 `/ endloop / endfacet`, ..., `endsolid [name]`;
 * several solids may follow one another.  Keywords are matched without
 * regard to case and tokens may be split by any blanks or line breaks
 * (CRLF, indentation, blank lines).  Every error names the line:
 * `line N: expected 'vertex' near 'xyz'`, a facet with other than three
 * vertices, a bad number.  A file that ends after a complete facet
 * without its `endsolid` is read with a warning (the geometry is whole);
 * one that ends inside a facet, or in a solid that has no facet yet, is
 * an error.
 *
 * Welding: STL repeats every corner; positions equal as floats are
 * welded into one vertex with an open-addressing hash table over the
 * stored positions (expected O(1) per corner, no per-vertex allocation),
 * so the scan is an indexed mesh whose n_vertices is the number of
 * distinct positions.  -0.0 is stored as +0.0 so the two weld; NaN
 * coordinates weld only with the same bit pattern.  Vertex order is
 * first occurrence, whatever the hash.  NEEDSWORK: the hash is unseeded,
 * so a crafted file could force long probe chains (slow, never wrong).
 * n_faces and n_polygons are the triangles in the file (degenerate ones
 * kept).  The file's facet normals are ignored (no vertex normals are
 * produced).
 *
 * Colours (binary only) go to scan.face_colors:
 *   - Materialise Magics: the header holds "COLOR=" and 4 bytes RGBA, the
 *     default colour; a facet whose attribute has bit 15 clear carries
 *     its own 5-bit colour (red bits 0-4, green 5-9, blue 10-14).
 *   - VisCAM/SolidView, when there is no "COLOR=": a facet whose
 *     attribute has bit 15 set carries a colour (blue bits 0-4, green
 *     5-9, red 10-14); facets without one are white.
 * 5-bit channels widen as (v << 3) | (v >> 2) so 31 maps to 255.
 *
 * Units: unknown unless the header (binary) or the `solid` line (ascii)
 * says `units=mm` (any name scan_units_parse knows).
 *
 * Safe on untrusted input: the binary count is checked against the file
 * size and the limits before anything is allocated; ascii arrays grow
 * with the data actually read.  Thread-safe (no global state).
 */
#include "formats.h"
#include "../common/alloc.h"
#include "../common/err.h"
#include "textscan.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../common/banned.h"

#define STL_HEADER 80
#define STL_PREAMBLE 84
#define STL_RECORD 50

/* ---- welding ------------------------------------------------------- */

#define SLOT_EMPTY UINT32_MAX

struct welder {
	float *pos;       /* 3 * cap floats, n in use */
	size_t n;         /* distinct positions stored */
	size_t cap;       /* positions pos has room for */
	uint32_t *slots;  /* n_slots entries: index into pos, or SLOT_EMPTY */
	size_t n_slots;   /* power of two, kept > 2 * n */
	uint64_t max;     /* limit on n (struct limits max_vertices) */
};

static void welder_release(struct welder *w)
{
	xfree(w->pos);
	xfree(w->slots);
	memset(w, 0, sizeof(*w));
}

static inline uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

static inline size_t hash_pos(const float *p)
{
	uint64_t h = (uint64_t)f32_bits(p[0]) * 0x9E3779B97F4A7C15ull;
	h ^= (uint64_t)f32_bits(p[1]) * 0xC2B2AE3D27D4EB4Full;
	h ^= (uint64_t)f32_bits(p[2]) * 0x165667B19E3779F9ull;
	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ull;
	h ^= h >> 32;
	return (size_t)h;
}

static int welder_rehash(struct welder *w, size_t n_slots)
{
	uint32_t *slots = alloc_array(n_slots, sizeof(*slots));
	if (!slots)
		return ERR_NOMEM;
	memset(slots, 0xFF, n_slots * sizeof(*slots));
	size_t mask = n_slots - 1;
	for (size_t i = 0; i < w->n; i++) {
		size_t h = hash_pos(w->pos + 3 * i) & mask;
		while (slots[h] != SLOT_EMPTY)
			h = (h + 1) & mask;
		slots[h] = (uint32_t)i;
	}
	xfree(w->slots);
	w->slots = slots;
	w->n_slots = n_slots;
	return 0;
}

/* Room for expect distinct positions before the first growth. */
static int welder_init(struct welder *w, size_t expect, uint64_t max)
{
	memset(w, 0, sizeof(*w));
	w->max = max;
	if (expect < 64)
		expect = 64;
	size_t n_slots = 128;
	while (n_slots / 2 < expect && n_slots < ((size_t)1 << 40))
		n_slots *= 2;
	w->pos = alloc_array(expect, 3 * sizeof(float));
	if (!w->pos)
		return ERR_NOMEM;
	w->cap = expect;
	return welder_rehash(w, n_slots);
}

/* A position ready for the table: canonical coordinates and their hash. */
struct wkey {
	float p[3];
	size_t h;
};

static inline void wkey_make(struct wkey *k, float x, float y, float z)
{
	/* x == 0 is also true for -0.0: store +0.0 so both weld */
	k->p[0] = x == 0.0f ? 0.0f : x;
	k->p[1] = y == 0.0f ? 0.0f : y;
	k->p[2] = z == 0.0f ? 0.0f : z;
	k->h = hash_pos(k->p);
}

/*
 * Start loading the slot a key will probe: the table is far larger than
 * the caches, so looking a few corners ahead hides most of the misses.
 */
static inline void welder_prefetch(const struct welder *w, const struct wkey *k)
{
	__builtin_prefetch(w->slots + (k->h & (w->n_slots - 1)));
}

/*
 * Index of position k, adding it when new.  Returns 0, ERR_NOMEM, or
 * ERR_LIMIT when a new position would pass w->max.
 */
static int welder_add_key(struct welder *w, const struct wkey *k, uint32_t *out)
{
	size_t mask = w->n_slots - 1;
	size_t h = k->h & mask;
	for (;;) {
		uint32_t i = w->slots[h];
		if (i == SLOT_EMPTY)
			break;
		if (!memcmp(w->pos + 3 * (size_t)i, k->p, sizeof(k->p))) {
			*out = i;
			return 0;
		}
		h = (h + 1) & mask;
	}
	if ((uint64_t)w->n >= w->max || w->n >= SLOT_EMPTY)
		return ERR_LIMIT;
	if (w->n == w->cap) {
		void *np = w->pos;
		size_t cap = w->cap;
		if (alloc_grow(&np, &cap, w->n + 1, 3 * sizeof(float)))
			return ERR_NOMEM;
		w->pos = np;
		w->cap = cap;
	}
	memcpy(w->pos + 3 * w->n, k->p, sizeof(k->p));
	w->slots[h] = (uint32_t)w->n;
	*out = (uint32_t)w->n++;
	/* keep the load factor under 1/2 */
	if (w->n * 2 > w->n_slots) {
		if (w->n_slots > SIZE_MAX / 2 / sizeof(uint32_t))
			return ERR_NOMEM;
		return welder_rehash(w, w->n_slots * 2);
	}
	return 0;
}

static int welder_add(struct welder *w, float x, float y, float z, uint32_t *out)
{
	struct wkey k;
	wkey_make(&k, x, y, z);
	return welder_add_key(w, &k, out);
}

/* Hand the positions to s (shrunk to fit) and free the table. */
static void welder_detach(struct welder *w, struct scan *s)
{
	float *p = w->pos;
	if (w->n && w->n < w->cap) {
		/* a failed shrink keeps the larger block, which is fine */
		float *q = realloc_array(p, w->n, 3 * sizeof(float));
		if (q)
			p = q;
	}
	s->positions = p;
	s->n_vertices = w->n;
	w->pos = NULL;
	welder_release(w);
}

static int weld_error(int rc, const struct limits *lim, struct err *e)
{
	if (rc == ERR_LIMIT)
		return err_set(e, ERR_LIMIT, "more than %llu distinct vertices (limit)",
			       (unsigned long long)lim->max_vertices);
	return err_set(e, ERR_NOMEM, "out of memory welding vertices");
}

/* ---- shared helpers ------------------------------------------------ */

static inline uint32_t rd_u32le(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline float rd_f32le(const unsigned char *p)
{
	uint32_t u = rd_u32le(p);
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

static inline bool is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z');
}

/* Find "units=NAME" (any case) in [p, end) and set s->units. */
static void parse_units(struct scan *s, const char *p, const char *end)
{
	static const char key[] = "units=";
	size_t klen = sizeof(key) - 1;
	for (; (size_t)(end - p) > klen; p++) {
		if (!ts_ieq(p, p + klen, key))
			continue;
		const char *v = p + klen, *ve = v;
		while (ve < end && is_alnum(*ve))
			ve++;
		enum scan_units u = scan_units_parse(v, (size_t)(ve - v));
		if (u != UNITS_UNKNOWN) {
			s->units = u;
			return;
		}
	}
}

/* Printable copy of up to 24 bytes of a token for "near '...'". */
static const char *near_tok(char *buf, size_t n, const char *p, const char *end)
{
	size_t i = 0;
	if (p >= end)
		return "end of file";
	while (p < end && i + 1 < n && i < 24 && !ts_is_space(*p) && *p != '\n') {
		unsigned char c = (unsigned char)*p++;
		buf[i++] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
	}
	buf[i] = '\0';
	return buf;
}

static size_t skip_bom(const unsigned char *buf, size_t len)
{
	return len >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF ? 3 : 0;
}

/* True when the text (after a BOM and blanks) starts with "solid" + blank/EOL/EOF. */
static bool starts_with_solid(const unsigned char *buf, size_t len)
{
	const char *p = (const char *)buf + skip_bom(buf, len);
	const char *end = (const char *)buf + len;
	while (p < end && (ts_is_space(*p) || *p == '\n'))
		p++;
	if ((size_t)(end - p) < 5 || !ts_ieq(p, p + 5, "solid"))
		return false;
	p += 5;
	return p == end || ts_is_space(*p) || *p == '\n';
}

static bool binary_size_matches(const unsigned char *buf, size_t len)
{
	if (len < STL_PREAMBLE)
		return false;
	uint64_t n = rd_u32le(buf + STL_HEADER);
	return (uint64_t)(len - STL_PREAMBLE) == n * STL_RECORD;
}

/* ---- binary -------------------------------------------------------- */

static inline uint8_t widen5(unsigned v)
{
	return (uint8_t)((v << 3) | (v >> 2));
}

/*
 * Colour handling for a binary file.  magics: header had "COLOR=" with
 * default rgba; otherwise VisCAM rules.
 */
struct stl_colors {
	bool magics;
	uint8_t def[4];
};

#define WELD_AHEAD 32 /* corners; a power of two */

static inline void corner_key(const unsigned char *buf, size_t c, struct wkey *k)
{
	const unsigned char *v = buf + STL_PREAMBLE + c / 3 * STL_RECORD + 12 + 12 * (c % 3);
	wkey_make(k, rd_f32le(v), rd_f32le(v + 4), rd_f32le(v + 8));
}

/* Colour of facet i of n from its attribute word, per the rules above. */
static int facet_color(const unsigned char *buf, size_t i, uint32_t n,
		       const struct stl_colors *col, struct scan *s, struct err *e)
{
	const unsigned char *r = buf + STL_PREAMBLE + i * STL_RECORD;
	unsigned attr = (unsigned)r[48] | (unsigned)r[49] << 8;
	uint8_t *fc;
	if (col->magics) {
		fc = s->face_colors + 4 * i;
		if (attr & 0x8000) {
			memcpy(fc, col->def, 4);
		} else {
			fc[0] = widen5(attr & 31);
			fc[1] = widen5((attr >> 5) & 31);
			fc[2] = widen5((attr >> 10) & 31);
			fc[3] = 255;
		}
	} else if (attr & 0x8000) {
		if (!s->face_colors) {
			/* first VisCAM colour: earlier facets are white */
			s->face_colors = alloc_array(n, 4);
			if (!s->face_colors)
				return err_set(e, ERR_NOMEM, "out of memory for %u face colours", n);
			memset(s->face_colors, 255, 4 * i);
		}
		fc = s->face_colors + 4 * i;
		fc[0] = widen5((attr >> 10) & 31);
		fc[1] = widen5((attr >> 5) & 31);
		fc[2] = widen5(attr & 31);
		fc[3] = 255;
	} else if (s->face_colors) {
		memset(s->face_colors + 4 * i, 255, 4);
	}
	return 0;
}

static int read_binary(const unsigned char *buf, size_t len,
		       const struct limits *lim, struct scan *s, struct err *e)
{
	struct welder w = { 0 };
	int rc = 0;

	if (len < STL_PREAMBLE)
		return err_set_offset(e, ERR_FORMAT, (int64_t)len,
				      "truncated: a binary STL needs an 84-byte header, file has %zu bytes",
				      len);
	uint32_t n = rd_u32le(buf + STL_HEADER);
	size_t have = (len - STL_PREAMBLE) / STL_RECORD;
	if ((uint64_t)n > lim->max_faces)
		return err_set_offset(e, ERR_LIMIT, STL_HEADER,
				      "header declares %u triangles (limit %llu)", n,
				      (unsigned long long)lim->max_faces);
	if ((uint64_t)n > (uint64_t)have)
		return err_set_offset(e, ERR_FORMAT,
				      (int64_t)(STL_PREAMBLE + (uint64_t)have * STL_RECORD),
				      "truncated: header declares %u triangles, file holds only %zu",
				      n, have);
	snprintf(s->encoding, sizeof(s->encoding), "binary");
	parse_units(s, (const char *)buf, (const char *)buf + STL_HEADER);

	struct stl_colors col = { .magics = false, .def = { 255, 255, 255, 255 } };
	const unsigned char *tag = memmem(buf, STL_HEADER, "COLOR=", 6);
	if (tag && tag + 10 <= buf + STL_HEADER) {
		col.magics = true;
		memcpy(col.def, tag + 6, 4);
	}

	s->indices = alloc_array((size_t)n ? n : 1, 3 * sizeof(uint32_t));
	if (!s->indices) {
		rc = err_set(e, ERR_NOMEM, "out of memory for %u triangles", n);
		goto out;
	}
	if (col.magics) {
		s->face_colors = alloc_array((size_t)n ? n : 1, 4);
		if (!s->face_colors) {
			rc = err_set(e, ERR_NOMEM, "out of memory for %u face colours", n);
			goto out;
		}
	}
	/* a closed mesh has about half as many vertices as triangles */
	if ((rc = welder_init(&w, (size_t)n / 2 + 16, lim->max_vertices)) < 0) {
		rc = weld_error(rc, lim, e);
		goto out;
	}
	/* corners in file order, each key made WELD_AHEAD corners early */
	size_t total = 3 * (size_t)n;
	struct wkey ring[WELD_AHEAD];
	for (size_t c = 0; c < total && c < WELD_AHEAD; c++) {
		corner_key(buf, c, &ring[c]);
		welder_prefetch(&w, &ring[c]);
	}
	for (size_t c = 0; c < total; c++) {
		struct wkey k = ring[c % WELD_AHEAD];
		if (c + WELD_AHEAD < total) {
			struct wkey *next = &ring[c % WELD_AHEAD];
			corner_key(buf, c + WELD_AHEAD, next);
			welder_prefetch(&w, next);
		}
		if ((rc = welder_add_key(&w, &k, &s->indices[c])) < 0) {
			rc = weld_error(rc, lim, e);
			if (e) {
				e->offset = (int64_t)(STL_PREAMBLE + c / 3 * STL_RECORD);
				e->line = 0;
			}
			goto out;
		}
		if (c % 3 == 2 && (rc = facet_color(buf, c / 3, n, &col, s, e)) < 0)
			goto out;
	}
	s->n_faces = n;
	s->n_polygons = n;
	welder_detach(&w, s);
	if (len > STL_PREAMBLE + (size_t)n * STL_RECORD &&
	    scan_warn(s, "%zu bytes after the %u declared triangles ignored",
		      len - STL_PREAMBLE - (size_t)n * STL_RECORD, n)) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = 0;
out:
	welder_release(&w);
	return rc;
}

/* ---- ascii --------------------------------------------------------- */

struct acur {
	const char *p, *end;
	long line;
};

/* Next token into [*ts, *te); false at end of input.  Counts lines. */
static bool next_tok(struct acur *c, const char **ts, const char **te)
{
	const char *p = c->p, *end = c->end;
	for (;;) {
		while (p < end && ts_is_space(*p))
			p++;
		if (p < end && *p == '\n') {
			c->line++;
			p++;
			continue;
		}
		break;
	}
	c->p = p;
	if (p >= end)
		return false;
	*ts = p;
	*te = c->p = ts_token_end(p, end);
	return true;
}

/* Rest of the current line (blanks trimmed); the cursor moves past it. */
static void rest_of_line(struct acur *c, const char **ls, const char **le)
{
	const char *p = ts_skip_blank(c->p, c->end);
	const char *e = ts_find_eol(p, c->end);
	c->p = e;
	while (e > p && ts_is_space(e[-1]))
		e--;
	*ls = p;
	*le = e;
}

struct ascii_state {
	struct acur c;
	const struct limits *lim;
	struct scan *s;
	struct err *e;
	struct welder w;
	size_t cap_faces;  /* triangles s->indices has room for */
	size_t n_faces;
};

static int expect_word(struct ascii_state *st, const char *w)
{
	const char *ts, *te;
	char nb[32];
	long line = st->c.line;
	if (!next_tok(&st->c, &ts, &te))
		return err_set_line(st->e, ERR_FORMAT, line,
				    "expected '%s' near end of file", w);
	if (!ts_ieq(ts, te, w))
		return err_set_line(st->e, ERR_FORMAT, st->c.line,
				    "expected '%s' near '%s'", w,
				    near_tok(nb, sizeof(nb), ts, te));
	return 0;
}

static int read_number(struct ascii_state *st, const char *what, float *out)
{
	const char *ts, *te;
	char nb[32];
	long line = st->c.line;
	if (!next_tok(&st->c, &ts, &te))
		return err_set_line(st->e, ERR_FORMAT, line,
				    "expected %s near end of file", what);
	const char *q = ts_parse_float(ts, te, out);
	if (q != te)
		return err_set_line(st->e, ERR_FORMAT, st->c.line,
				    "bad number in %s near '%s'", what,
				    near_tok(nb, sizeof(nb), ts, te));
	return 0;
}

/* One facet, after its 'facet' keyword. */
static int read_facet(struct ascii_state *st)
{
	const char *ts, *te;
	char nb[32];
	float v[3][3], junk;
	int rc;
	long facet_line = st->c.line;
	size_t f = st->n_faces;

	if ((rc = expect_word(st, "normal")) < 0)
		return rc;
	for (int k = 0; k < 3; k++)
		if ((rc = read_number(st, "normal", &junk)) < 0)
			return rc;
	if ((rc = expect_word(st, "outer")) < 0 || (rc = expect_word(st, "loop")) < 0)
		return rc;
	uint32_t nv = 0;
	for (;;) {
		long line = st->c.line;
		if (!next_tok(&st->c, &ts, &te))
			return err_set_line(st->e, ERR_FORMAT, line,
					    "facet %zu: expected '%s' near end of file",
					    f, nv < 3 ? "vertex" : "endloop");
		if (!ts_ieq(ts, te, "vertex"))
			break;
		for (int k = 0; k < 3; k++) {
			float *dst = nv < 3 ? &v[nv][k] : &junk;
			if ((rc = read_number(st, "vertex", dst)) < 0)
				return rc;
		}
		if (nv < UINT32_MAX)
			nv++;
	}
	if (nv != 3 && ts_ieq(ts, te, "endloop"))
		return err_set_line(st->e, ERR_FORMAT, facet_line,
				    "facet %zu has %u vertices (expected 3)", f, nv);
	if (!ts_ieq(ts, te, "endloop"))
		return err_set_line(st->e, ERR_FORMAT, st->c.line,
				    "expected '%s' near '%s'",
				    nv < 3 ? "vertex" : "endloop",
				    near_tok(nb, sizeof(nb), ts, te));
	if ((rc = expect_word(st, "endfacet")) < 0)
		return rc;

	if ((uint64_t)f >= st->lim->max_faces)
		return err_set_line(st->e, ERR_LIMIT, facet_line,
				    "more than %llu triangles (limit)",
				    (unsigned long long)st->lim->max_faces);
	if (f == st->cap_faces) {
		void *p = st->s->indices;
		if (alloc_grow(&p, &st->cap_faces, f + 1, 3 * sizeof(uint32_t)))
			return err_set(st->e, ERR_NOMEM, "out of memory for %zu triangles", f + 1);
		st->s->indices = p;
	}
	for (int k = 0; k < 3; k++) {
		rc = welder_add(&st->w, v[k][0], v[k][1], v[k][2],
				&st->s->indices[3 * f + (size_t)k]);
		if (rc < 0) {
			rc = weld_error(rc, st->lim, st->e);
			if (st->e) {
				st->e->line = facet_line;
				st->e->offset = -1;
			}
			return rc;
		}
	}
	st->n_faces++;
	return 0;
}

static int read_ascii(const unsigned char *buf, size_t len,
		      const struct limits *lim, struct scan *s, struct err *e)
{
	struct ascii_state st = { .lim = lim, .s = s, .e = e };
	const char *ts, *te, *name = NULL, *name_end = NULL;
	char nb[32];
	bool in_solid = false;
	size_t n_solids = 0, solid_first_face = 0;
	int rc;

	st.c.p = (const char *)buf + skip_bom(buf, len);
	st.c.end = (const char *)buf + len;
	st.c.line = 1;
	snprintf(s->encoding, sizeof(s->encoding), "ascii");
	/* ~250 bytes per facet of typical ascii; grows as needed */
	if ((rc = welder_init(&st.w, len / 500 + 16, lim->max_vertices)) < 0) {
		rc = weld_error(rc, lim, e);
		goto out;
	}
	for (;;) {
		long line = st.c.line;
		if (!next_tok(&st.c, &ts, &te)) {
			if (!in_solid)
				break;
			/* a whole facet ended the file: keep it, say endsolid is missing */
			if (st.n_faces == solid_first_face) {
				rc = err_set_line(e, ERR_FORMAT, line,
						  "expected 'facet' or 'endsolid' near end of file");
				goto out;
			}
			if (scan_warn(s, "line %ld: missing 'endsolid' at end of file", line)) {
				rc = err_set(e, ERR_NOMEM, "out of memory");
				goto out;
			}
			break;
		}
		if (!in_solid) {
			if (!ts_ieq(ts, te, "solid")) {
				rc = err_set_line(e, ERR_FORMAT, st.c.line,
						  "expected 'solid' near '%s'",
						  near_tok(nb, sizeof(nb), ts, te));
				goto out;
			}
			rest_of_line(&st.c, &name, &name_end);
			if (!n_solids)
				parse_units(s, name, name_end);
			in_solid = true;
			n_solids++;
			solid_first_face = st.n_faces;
		} else if (ts_ieq(ts, te, "facet")) {
			if ((rc = read_facet(&st)) < 0)
				goto out;
		} else if (ts_ieq(ts, te, "endsolid")) {
			/* the name after endsolid often differs from the solid's: not checked */
			rest_of_line(&st.c, &name, &name_end);
			in_solid = false;
		} else {
			rc = err_set_line(e, ERR_FORMAT, st.c.line,
					  "expected 'facet' or 'endsolid' near '%s'",
					  near_tok(nb, sizeof(nb), ts, te));
			goto out;
		}
	}
	if (!n_solids) {
		rc = err_set_line(e, ERR_FORMAT, st.c.line, "expected 'solid' near end of file");
		goto out;
	}
	if (!s->indices && !(s->indices = alloc_array(1, 3 * sizeof(uint32_t)))) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	s->n_faces = st.n_faces;
	s->n_polygons = st.n_faces;
	welder_detach(&st.w, s);
	rc = 0;
out:
	welder_release(&st.w);
	return rc;
}

/* ---- entry points -------------------------------------------------- */

int stl_probe(const unsigned char *buf, size_t len)
{
	if (binary_size_matches(buf, len))
		return 100;
	if (starts_with_solid(buf, len)) {
		size_t n = len < 4096 ? len : 4096;
		if (memmem(buf, n, "facet", 5) || memmem(buf, n, "endsolid", 8) ||
		    memmem(buf, n, "FACET", 5) || memmem(buf, n, "ENDSOLID", 8))
			return 100;
		return 60;
	}
	/* text never holds NUL; float records and padded headers nearly always do */
	if (len < STL_PREAMBLE || !memchr(buf, '\0', len < 256 ? len : 256))
		return 0;
	/* binary with trailing bytes: the declared triangles fit */
	uint64_t n = rd_u32le(buf + STL_HEADER);
	if (n && n * STL_RECORD < (uint64_t)(len - STL_PREAMBLE))
		return 20;
	/*
	 * The weakest claim: a cut-short binary STL says nothing about itself,
	 * but with a .stl name it should still reach this reader for a clear
	 * "truncated" error.
	 */
	return 1;
}

int stl_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e)
{
	int rc;
	if (!lim)
		lim = limits_default();
	scan_init(out);
	if (len == 0)
		return err_set_offset(e, ERR_FORMAT, 0, "empty file");
	if (!binary_size_matches(buf, len) && starts_with_solid(buf, len) &&
	    !memchr(buf, '\0', len))
		rc = read_ascii(buf, len, lim, out, e);
	else
		rc = read_binary(buf, len, lim, out, e);
	if (rc == 0)
		rc = scan_finalize(out, e);
	if (rc < 0)
		scan_release(out);
	return rc;
}
