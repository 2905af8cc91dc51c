/*
 * ply.c - Stanford PLY reader (ascii, binary little and big endian) and
 * binary little-endian PLY writer.
 *
 * Spec: Greg Turk, "The PLY Polygon File Format",
 * http://paulbourke.net/dataformats/ply/
 *
 * Reading makes two passes over the body, both straight from the caller's
 * buffer (no copies, no per-line allocation):
 *
 *   1. walk: find where each element starts, and check every declared
 *      count, list length and record against the bytes that remain and
 *      against struct limits; count the triangles the faces will make and
 *      remember the largest polygon.  Fixed-stride binary elements are
 *      skipped with one multiplication (count * stride must fit in what
 *      is left), so a header claiming 2^40 vertices fails here.
 *   2. decode: allocate exactly what the walk measured, decode the vertex
 *      element (the usual layout - float32 x y z, normals, UVs at
 *      consecutive offsets, uchar colours, host byte order - in one fused
 *      pass; per-property converters otherwise), then the face element
 *      (triangles in blocks when the count is a uchar and the indices int
 *      or uint; other polygons through triangulate.h).
 *
 * Invariants: nothing is allocated from a file count before that count has
 * been checked; the decode pass re-checks every list count it reads (a
 * mapped file can change between the passes); every index is
 * < n_vertices before it is stored.  Vertices are decoded before faces
 * whatever their order in the file, because the triangulator needs
 * positions.  Ascii records are one per line.
 */
#include "formats.h"
#include "writers.h"
#include "textscan.h"
#include "triangulate.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/banned.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_BIG_ENDIAN 1
#else
#define HOST_BIG_ENDIAN 0
#endif

enum ptype { T_NONE, T_I8, T_U8, T_I16, T_U16, T_I32, T_U32, T_F32, T_F64 };

static const struct {
	const char *name;
	enum ptype type;
} type_names[] = {
	{ "char", T_I8 },    { "int8", T_I8 },     { "uchar", T_U8 },
	{ "uint8", T_U8 },   { "short", T_I16 },   { "int16", T_I16 },
	{ "ushort", T_U16 }, { "uint16", T_U16 },  { "int", T_I32 },
	{ "int32", T_I32 },  { "uint", T_U32 },    { "uint32", T_U32 },
	{ "float", T_F32 },  { "float32", T_F32 }, { "double", T_F64 },
	{ "float64", T_F64 },
};

static const unsigned char type_size[] = { 0, 1, 1, 2, 2, 4, 4, 4, 8 };

/*
 * What a property feeds.  Vertex roles R_X..R_V are also slot numbers
 * (role - R_X) into struct ply.vslot; face roles likewise into fslot.
 */
enum role {
	R_NONE = 0,
	R_X, R_Y, R_Z, R_NX, R_NY, R_NZ, R_RED, R_GREEN, R_BLUE, R_ALPHA, R_U, R_V,
	R_INDICES, R_TEXCOORD, R_FRED, R_FGREEN, R_FBLUE, R_FALPHA
};
#define N_VSLOTS (R_V - R_X + 1)
#define N_FSLOTS (R_FALPHA - R_INDICES + 1)
#define VS(r) ((r) - R_X)
#define FS(r) ((r) - R_INDICES)

static const struct {
	const char *name;
	enum role role;
} vertex_names[] = {
	{ "x", R_X }, { "y", R_Y }, { "z", R_Z },
	{ "nx", R_NX }, { "ny", R_NY }, { "nz", R_NZ },
	{ "normal_x", R_NX }, { "normal_y", R_NY }, { "normal_z", R_NZ },
	{ "red", R_RED }, { "green", R_GREEN }, { "blue", R_BLUE }, { "alpha", R_ALPHA },
	{ "diffuse_red", R_RED }, { "diffuse_green", R_GREEN },
	{ "diffuse_blue", R_BLUE }, { "diffuse_alpha", R_ALPHA },
	{ "u", R_U }, { "v", R_V }, { "s", R_U }, { "t", R_V },
	{ "texture_u", R_U }, { "texture_v", R_V },
	{ "texture_s", R_U }, { "texture_t", R_V },
};

static const struct {
	const char *name;
	enum role role;
} face_names[] = {
	{ "vertex_indices", R_INDICES }, { "vertex_index", R_INDICES },
	{ "texcoord", R_TEXCOORD },
	{ "red", R_FRED }, { "green", R_FGREEN }, { "blue", R_FBLUE },
	{ "alpha", R_FALPHA },
};

struct prop {
	const char *name;        /* points into the header, not NUL-ended */
	size_t name_len;
	enum ptype type;         /* scalar type, or the list's item type */
	enum ptype count_type;   /* T_NONE for a scalar */
	enum role role;
	size_t offset;           /* bytes into a fixed-stride record */
	long line;               /* header line */
};

struct elem {
	const char *name;        /* points into the header */
	size_t name_len;
	uint64_t count;          /* records declared */
	size_t first, n_props;   /* props[first .. first + n_props) */
	size_t stride;           /* bytes per record when fixed */
	size_t min_rec;          /* smallest possible record in bytes */
	bool fixed;              /* binary record size known (no lists) */
	long line;               /* header line */
	size_t start;            /* body offset of the first record (walk) */
	long start_line;         /* ascii: line of the first record */
};

struct ply {
	const unsigned char *buf;
	size_t len;
	const struct limits *lim;
	struct scan *out;
	struct err *e;
	bool ascii;
	bool swap;               /* file byte order differs from the host's */

	struct elem *elems;
	size_t n_elems, cap_elems;
	struct prop *props;
	size_t n_props, cap_props;
	size_t vert, face;       /* element index, SIZE_MAX when absent */
	int vslot[N_VSLOTS];     /* property index per vertex slot, -1 */
	int fslot[N_FSLOTS];     /* property index per face slot, -1 */
	bool has_normals, has_colors, has_uvs, has_tc, has_fcolors;

	size_t body;             /* offset of the first body byte */
	long body_line;          /* line of the first body byte */
	uint64_t n_tris;         /* triangles the faces make (walk) */
	uint64_t max_n;          /* largest polygon (walk) */
	uint64_t max_m;          /* largest texcoord list (walk) */

	size_t tri;              /* triangles emitted so far (decode) */
	struct triangulator tr;
	uint32_t *poly;          /* max_n indices of the current polygon */
	float *tc;               /* max_m texcoords of the current face */
};

/* ------------------------------------------------------------------ */
/* errors */

/*
 * Error at a place in the body: a line for ascii, a byte offset for
 * binary.  where is the line or the offset.
 */
__attribute__((format(printf, 4, 5)))
static int perr(struct ply *p, int code, int64_t where, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->ascii)
		return err_set_line(p->e, code, (long)where, "%s", msg);
	return err_set_offset(p->e, code, where, "%s", msg);
}

static int nomem(struct ply *p)
{
	return err_set(p->e, ERR_NOMEM, "out of memory");
}

#define ENAME(el) (int)(el)->name_len, (el)->name
#define PNAME(pr) (int)(pr)->name_len, (pr)->name

/* Printable prefix of a token for messages. */
static int tok_len(const char *s, const char *se)
{
	size_t n = (size_t)(se - s);
	return (int)(n > 32 ? 32 : n);
}

/* "face 12" or "element 'edge' 12": the record an error is about */
static const char *rec_name(const struct ply *p, const struct elem *el,
			    uint64_t rec, char *buf, size_t n)
{
	if (p->face != SIZE_MAX && el == &p->elems[p->face])
		snprintf(buf, n, "face %" PRIu64, rec);
	else
		snprintf(buf, n, "element '%.*s' %" PRIu64, ENAME(el), rec);
	return buf;
}

/* ------------------------------------------------------------------ */
/* scalar decoding */

static inline uint16_t ld16(const unsigned char *q, bool sw)
{
	uint16_t v;
	memcpy(&v, q, 2);
	return sw ? __builtin_bswap16(v) : v;
}

static inline uint32_t ld32(const unsigned char *q, bool sw)
{
	uint32_t v;
	memcpy(&v, q, 4);
	return sw ? __builtin_bswap32(v) : v;
}

static inline uint64_t ld64(const unsigned char *q, bool sw)
{
	uint64_t v;
	memcpy(&v, q, 8);
	return sw ? __builtin_bswap64(v) : v;
}

static inline float ldf32(const unsigned char *q, bool sw)
{
	uint32_t u = ld32(q, sw);
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static inline double ldf64(const unsigned char *q, bool sw)
{
	uint64_t u = ld64(q, sw);
	double d;
	memcpy(&d, &u, 8);
	return d;
}

/* Any scalar as a double (exact for every type but float64 itself). */
static inline double get_d(const unsigned char *q, enum ptype t, bool sw)
{
	switch (t) {
	case T_I8: return (int8_t)q[0];
	case T_U8: return q[0];
	case T_I16: return (int16_t)ld16(q, sw);
	case T_U16: return ld16(q, sw);
	case T_I32: return (int32_t)ld32(q, sw);
	case T_U32: return ld32(q, sw);
	case T_F32: return ldf32(q, sw);
	case T_F64: return ldf64(q, sw);
	default: return 0;
	}
}

/* An integer scalar (count or index types are always integers). */
static inline int64_t get_i(const unsigned char *q, enum ptype t, bool sw)
{
	switch (t) {
	case T_I8: return (int8_t)q[0];
	case T_U8: return q[0];
	case T_I16: return (int16_t)ld16(q, sw);
	case T_U16: return ld16(q, sw);
	case T_I32: return (int32_t)ld32(q, sw);
	case T_U32: return ld32(q, sw);
	default: return 0;
	}
}

static inline bool is_int_type(enum ptype t)
{
	return t >= T_I8 && t <= T_U32;
}

/*
 * Colour channel to 0..255: floating-point colours are 0..1, ushort ones
 * 0..65535, every other integer type is taken as 0..255 and clamped.
 */
static inline uint8_t color_from(double v, enum ptype t)
{
	if (t == T_F32 || t == T_F64)
		v = v * 255.0 + 0.5;
	else if (t == T_U16)
		v = v / 257.0 + 0.5;
	if (!(v > 0))
		return 0;
	if (v >= 255)
		return 255;
	return (uint8_t)v;
}

/* ------------------------------------------------------------------ */
/* header */

static int add_elem(struct ply *p, struct elem **out)
{
	if (alloc_grow((void **)&p->elems, &p->cap_elems, p->n_elems + 1,
		       sizeof(*p->elems)))
		return nomem(p);
	*out = &p->elems[p->n_elems++];
	memset(*out, 0, sizeof(**out));
	(*out)->first = p->n_props;
	return 0;
}

static int add_prop(struct ply *p, struct prop **out)
{
	if (alloc_grow((void **)&p->props, &p->cap_props, p->n_props + 1,
		       sizeof(*p->props)))
		return nomem(p);
	*out = &p->props[p->n_props++];
	memset(*out, 0, sizeof(**out));
	return 0;
}

/* Next blank-separated word of [*q, end); s == *we when there is none. */
static const char *word(const char **q, const char *end, const char **we)
{
	const char *s = ts_skip_blank(*q, end);
	const char *t = ts_token_end(s, end);
	*we = t;
	*q = t;
	return s;
}

static bool parse_type(const char *s, const char *se, enum ptype *t)
{
	for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
		if (ts_eq(s, se, type_names[i].name)) {
			*t = type_names[i].type;
			return true;
		}
	}
	return false;
}

/*
 * comment / obj_info lines: `TextureFile <path>` adds a texture (the path
 * may contain blanks), `units <u>` sets the units; everything else is
 * kept as metadata under the keyword ("comment" or "obj_info").
 */
static int header_comment(struct ply *p, const char *kw, const char *kwe,
			  const char *s, const char *se, long line)
{
	struct scan *out = p->out;
	s = ts_skip_blank(s, se);
	while (se > s && ts_is_space(se[-1]))
		se--;
	if (s == se)
		return 0;
	const char *q = s, *we;
	const char *w = word(&q, se, &we);
	if (ts_ieq(w, we, "TextureFile")) {
		const char *path = ts_skip_blank(q, se);
		if (path == se) {
			if (scan_warn(out, "line %ld: 'TextureFile' without a path", line))
				return nomem(p);
			return 0;
		}
		if (out->n_textures >= p->lim->max_referenced_files) {
			if (scan_warn(out, "line %ld: more than %zu textures; '%.*s' ignored",
				      line, p->lim->max_referenced_files,
				      tok_len(path, se), path))
				return nomem(p);
			return 0;
		}
		if (scan_texture_add(out, path, (size_t)(se - path)) < 0)
			return nomem(p);
		return 0;
	}
	const char *ke = we;
	if (ke > w && ke[-1] == ':')
		ke--;
	if (ts_ieq(w, ke, "units") || ts_ieq(w, ke, "unit")) {
		const char *ue;
		const char *u = word(&q, se, &ue);
		if (u < ue && *u == ':')
			u++;
		enum scan_units un = scan_units_parse(u, (size_t)(ue - u));
		if (un == UNITS_UNKNOWN) {
			if (scan_warn(out, "line %ld: unknown units '%.*s'", line,
				      tok_len(u, ue), u))
				return nomem(p);
			return 0;
		}
		out->units = un;
		if (scan_meta_add(out, "units", 5, u, (size_t)(ue - u)))
			return nomem(p);
		return 0;
	}
	if (scan_meta_add(out, kw, (size_t)(kwe - kw), s, (size_t)(se - s)))
		return nomem(p);
	return 0;
}

static int header_format(struct ply *p, const char *q, const char *end,
			 long line)
{
	const char *ee, *ve;
	const char *enc = word(&q, end, &ee);
	const char *ver = word(&q, end, &ve);
	if (ts_eq(enc, ee, "ascii")) {
		p->ascii = true;
	} else if (ts_eq(enc, ee, "binary_little_endian")) {
		p->swap = HOST_BIG_ENDIAN;
	} else if (ts_eq(enc, ee, "binary_big_endian")) {
		p->swap = !HOST_BIG_ENDIAN;
	} else {
		return err_set_line(p->e, ERR_FORMAT, line,
				    "unknown ply format '%.*s' (expected ascii, binary_little_endian or binary_big_endian)",
				    tok_len(enc, ee), enc);
	}
	double v;
	if (ver == ve || ts_parse_double(ver, ve, &v) != ve || v != 1.0)
		return err_set_line(p->e, ERR_VERSION, line,
				    "unsupported ply version '%.*s' (only 1.0)",
				    tok_len(ver, ve), ver);
	snprintf(p->out->encoding, sizeof(p->out->encoding), "%.*s",
		 (int)(ee - enc), enc);
	return 0;
}

static int header_element(struct ply *p, const char *q, const char *end,
			  long line)
{
	const char *ne, *ce;
	const char *name = word(&q, end, &ne);
	const char *cnt = word(&q, end, &ce);
	uint64_t count;
	if (name == ne)
		return err_set_line(p->e, ERR_FORMAT, line, "element without a name");
	if (cnt == ce || ts_parse_u64(cnt, ce, &count) != ce)
		return err_set_line(p->e, ERR_FORMAT, line,
				    "element '%.*s': bad count '%.*s'",
				    tok_len(name, ne), name, tok_len(cnt, ce), cnt);
	struct elem *el = NULL;
	int rc = add_elem(p, &el);
	if (rc)
		return rc;
	el->name = name;
	el->name_len = (size_t)(ne - name);
	el->count = count;
	el->line = line;
	return 0;
}

static int header_property(struct ply *p, const char *q, const char *end,
			   long line)
{
	if (!p->n_elems)
		return err_set_line(p->e, ERR_FORMAT, line,
				    "property before any element");
	struct elem *el = &p->elems[p->n_elems - 1];
	if (el->n_props >= p->lim->max_properties)
		return err_set_line(p->e, ERR_LIMIT, line,
				    "element '%.*s': more than %zu properties",
				    ENAME(el), p->lim->max_properties);
	const char *te;
	const char *t = word(&q, end, &te);
	enum ptype type, ctype = T_NONE;
	if (ts_eq(t, te, "list")) {
		const char *ce;
		const char *c = word(&q, end, &ce);
		if (!parse_type(c, ce, &ctype))
			return err_set_line(p->e, ERR_FORMAT, line,
					    "element '%.*s': unknown list count type '%.*s'",
					    ENAME(el), tok_len(c, ce), c);
		if (!is_int_type(ctype))
			return err_set_line(p->e, ERR_FORMAT, line,
					    "element '%.*s': list count type '%.*s' is not an integer type",
					    ENAME(el), tok_len(c, ce), c);
		t = word(&q, end, &te);
	}
	if (!parse_type(t, te, &type))
		return err_set_line(p->e, ERR_FORMAT, line,
				    "element '%.*s': unknown property type '%.*s'",
				    ENAME(el), tok_len(t, te), t);
	const char *ne;
	const char *name = word(&q, end, &ne);
	if (name == ne)
		return err_set_line(p->e, ERR_FORMAT, line,
				    "element '%.*s': property without a name",
				    ENAME(el));
	struct prop *pr = NULL;
	int rc = add_prop(p, &pr);
	if (rc)
		return rc;
	pr->name = name;
	pr->name_len = (size_t)(ne - name);
	pr->type = type;
	pr->count_type = ctype;
	pr->line = line;
	p->elems[p->n_elems - 1].n_props++;
	return 0;
}

/*
 * Parse the header up to `end_header`; sets body/body_line.  The header
 * is scanned within max_header_bytes only.
 */
static int parse_header(struct ply *p)
{
	size_t cap = p->lim->max_header_bytes;
	size_t hlen = p->len < cap ? p->len : cap;
	struct tcur c;
	const char *ls, *le;
	bool have_format = false;
	int rc;

	tcur_init(&c, p->buf, hlen);
	if (!tcur_next_line(&c, &ls, &le))
		return err_set_offset(p->e, ERR_FORMAT, 0, "empty file");
	while (le > ls && ts_is_space(le[-1]))
		le--;
	if (!ts_eq(ls, le, "ply"))
		return err_set_line(p->e, ERR_FORMAT, 1,
				    "not a ply file (first line is not 'ply')");
	for (;;) {
		long line = c.line;
		if (!tcur_next_line(&c, &ls, &le)) {
			if (hlen < p->len)
				return err_set_line(p->e, ERR_LIMIT, line,
						    "header longer than %zu bytes (no 'end_header')",
						    cap);
			return err_set_line(p->e, ERR_FORMAT, line,
					    "missing 'end_header'");
		}
		/* a line cut by the header cap is not a whole line */
		if (c.p == c.end && hlen < p->len && c.p[-1] != '\n')
			return err_set_line(p->e, ERR_LIMIT, line,
					    "header longer than %zu bytes (no 'end_header')",
					    cap);
		const char *q = ls, *kwe;
		const char *kw = word(&q, le, &kwe);
		if (kw == kwe)
			continue;
		if (ts_eq(kw, kwe, "end_header"))
			break;
		if (ts_eq(kw, kwe, "comment") || ts_eq(kw, kwe, "obj_info")) {
			rc = header_comment(p, kw, kwe, q, le, line);
		} else if (ts_eq(kw, kwe, "format")) {
			if (have_format)
				return err_set_line(p->e, ERR_FORMAT, line,
						    "second 'format' line");
			have_format = true;
			rc = header_format(p, q, le, line);
		} else if (ts_eq(kw, kwe, "element")) {
			if (!have_format)
				return err_set_line(p->e, ERR_FORMAT, line,
						    "'element' before the 'format' line");
			rc = header_element(p, q, le, line);
		} else if (ts_eq(kw, kwe, "property")) {
			rc = header_property(p, q, le, line);
		} else {
			/* some exporters write a bare text line here */
			rc = scan_warn(p->out, "line %ld: unknown header line '%.*s' ignored",
				       line, tok_len(kw, le), kw) ? nomem(p) : 0;
		}
		if (rc)
			return rc;
	}
	if (!have_format)
		return err_set_line(p->e, ERR_FORMAT, c.line - 1,
				    "missing 'format' line");
	p->body = (size_t)((const unsigned char *)c.p - p->buf);
	p->body_line = c.line;
	return 0;
}

/* ------------------------------------------------------------------ */
/* layout and roles */

static enum role lookup_role(const struct prop *pr, bool vertex)
{
	if (vertex) {
		for (size_t i = 0; i < sizeof(vertex_names) / sizeof(vertex_names[0]); i++)
			if (ts_eq(pr->name, pr->name + pr->name_len, vertex_names[i].name))
				return vertex_names[i].role;
	} else {
		for (size_t i = 0; i < sizeof(face_names) / sizeof(face_names[0]); i++)
			if (ts_eq(pr->name, pr->name + pr->name_len, face_names[i].name))
				return face_names[i].role;
	}
	return R_NONE;
}

/* Drop the roles of slots [a, b) unless all of them are present. */
static void need_all(struct ply *p, int *slot, int a, int b, bool *has)
{
	bool all = true;
	for (int i = a; i < b; i++)
		all = all && slot[i] >= 0;
	*has = all;
	if (all)
		return;
	for (int i = a; i < b; i++) {
		if (slot[i] >= 0)
			p->props[slot[i]].role = R_NONE;
		slot[i] = -1;
	}
}

static int assign_roles(struct ply *p)
{
	for (int i = 0; i < N_VSLOTS; i++)
		p->vslot[i] = -1;
	for (int i = 0; i < N_FSLOTS; i++)
		p->fslot[i] = -1;
	p->vert = p->face = SIZE_MAX;
	for (size_t i = 0; i < p->n_elems; i++) {
		struct elem *el = &p->elems[i];
		const char *ne = el->name + el->name_len;
		bool is_vert = ts_eq(el->name, ne, "vertex");
		bool is_face = ts_eq(el->name, ne, "face");
		if ((is_vert && p->vert != SIZE_MAX) || (is_face && p->face != SIZE_MAX)) {
			if (scan_warn(p->out, "line %ld: second '%.*s' element ignored",
				      el->line, ENAME(el)))
				return nomem(p);
			continue;
		}
		if (is_vert)
			p->vert = i;
		else if (is_face)
			p->face = i;
		else
			continue;
		for (size_t k = 0; k < el->n_props; k++) {
			struct prop *pr = &p->props[el->first + k];
			enum role r = lookup_role(pr, is_vert);
			if (r == R_NONE)
				continue;
			int *slot = is_vert ? &p->vslot[VS(r)] : &p->fslot[FS(r)];
			if (*slot >= 0)
				continue;
			bool want_list = r == R_INDICES || r == R_TEXCOORD;
			if ((pr->count_type != T_NONE) != want_list) {
				if (r == R_INDICES || (is_vert && r <= R_Z))
					return err_set_line(p->e, ERR_FORMAT, pr->line,
							    "element '%.*s': property '%.*s' must be %s",
							    ENAME(el), PNAME(pr),
							    want_list ? "a list" : "a scalar");
				continue;
			}
			if (r == R_INDICES && !is_int_type(pr->type))
				return err_set_line(p->e, ERR_FORMAT, pr->line,
						    "element 'face': property '%.*s' must hold integers",
						    PNAME(pr));
			pr->role = r;
			*slot = (int)(el->first + k);
		}
	}
	if (p->vert != SIZE_MAX) {
		const struct elem *el = &p->elems[p->vert];
		static const char *const xyz[3] = { "x", "y", "z" };
		for (int k = 0; k < 3; k++)
			if (p->vslot[k] < 0)
				return err_set_line(p->e, ERR_FORMAT, el->line,
						    "element 'vertex' has no '%s' property", xyz[k]);
		need_all(p, p->vslot, VS(R_NX), VS(R_NZ) + 1, &p->has_normals);
		need_all(p, p->vslot, VS(R_RED), VS(R_BLUE) + 1, &p->has_colors);
		if (!p->has_colors && p->vslot[VS(R_ALPHA)] >= 0) {
			p->props[p->vslot[VS(R_ALPHA)]].role = R_NONE;
			p->vslot[VS(R_ALPHA)] = -1;
		}
		need_all(p, p->vslot, VS(R_U), VS(R_V) + 1, &p->has_uvs);
		uint64_t cap = p->lim->max_vertices < INT32_MAX ? p->lim->max_vertices
								 : INT32_MAX;
		if (el->count > cap)
			return err_set_line(p->e, ERR_LIMIT, el->line,
					    "element 'vertex': %" PRIu64 " vertices exceed the limit of %" PRIu64,
					    el->count, cap);
	} else if (scan_warn(p->out, "no 'vertex' element")) {
		return nomem(p);
	}
	if (p->face != SIZE_MAX) {
		const struct elem *el = &p->elems[p->face];
		if (p->fslot[FS(R_INDICES)] < 0)
			return err_set_line(p->e, ERR_FORMAT, el->line,
					    "element 'face' has no 'vertex_indices' list");
		p->has_tc = p->fslot[FS(R_TEXCOORD)] >= 0;
		need_all(p, p->fslot, FS(R_FRED), FS(R_FBLUE) + 1, &p->has_fcolors);
		if (!p->has_fcolors && p->fslot[FS(R_FALPHA)] >= 0) {
			p->props[p->fslot[FS(R_FALPHA)]].role = R_NONE;
			p->fslot[FS(R_FALPHA)] = -1;
		}
		if (el->count > p->lim->max_faces)
			return err_set_line(p->e, ERR_LIMIT, el->line,
					    "element 'face': %" PRIu64 " faces exceed the limit of %" PRIu64,
					    el->count, p->lim->max_faces);
	}
	/* record layout: offsets of fixed-stride records, smallest record */
	for (size_t i = 0; i < p->n_elems; i++) {
		struct elem *el = &p->elems[i];
		size_t off = 0, min = 0;
		el->fixed = true;
		for (size_t k = 0; k < el->n_props; k++) {
			struct prop *pr = &p->props[el->first + k];
			pr->offset = off;
			if (pr->count_type != T_NONE) {
				el->fixed = false;
				min += type_size[pr->count_type];
			} else {
				off += type_size[pr->type];
				min += type_size[pr->type];
			}
		}
		el->stride = off;
		/* ascii: every value is at least one character */
		el->min_rec = p->ascii ? el->n_props : min;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* walk: check the body, find element starts, count triangles */

static int truncated(struct ply *p, const struct elem *el, uint64_t rec,
		     const struct prop *pr, int64_t where)
{
	char rn[96];
	return perr(p, ERR_FORMAT, where,
		    "%s: property '%.*s': unexpected end of file (%" PRIu64 " declared)",
		    rec_name(p, el, rec, rn, sizeof(rn)), PNAME(pr), el->count);
}

/* Check one list's length; updates triangle and scratch sizes for faces. */
static int check_list(struct ply *p, const struct elem *el, const struct prop *pr,
		      uint64_t rec, int64_t n, int64_t where)
{
	bool face = p->face != SIZE_MAX && el == &p->elems[p->face];
	char rn[96];
	if (n < 0)
		return perr(p, ERR_FORMAT, where,
			    "%s: property '%.*s': negative list count %" PRId64,
			    rec_name(p, el, rec, rn, sizeof(rn)), PNAME(pr), n);
	if (!face || pr->role == R_NONE)
		return 0;
	uint64_t deg = p->lim->max_polygon_degree;
	if (pr->role == R_TEXCOORD) {
		if ((uint64_t)n > 2 * deg)
			return perr(p, ERR_LIMIT, where,
				    "face %" PRIu64 ": 'texcoord' list of %" PRId64 " values exceeds the limit of %" PRIu64,
				    rec, n, 2 * deg);
		if ((uint64_t)n > p->max_m)
			p->max_m = (uint64_t)n;
		return 0;
	}
	if (n < 3)
		return perr(p, ERR_FORMAT, where,
			    "face %" PRIu64 ": polygon with %" PRId64 " vertices (need at least 3)",
			    rec, n);
	if ((uint64_t)n > deg)
		return perr(p, ERR_LIMIT, where,
			    "face %" PRIu64 ": polygon with %" PRId64 " vertices exceeds the limit of %" PRIu64,
			    rec, n, deg);
	p->n_tris += (uint64_t)n - 2;
	if (p->n_tris > p->lim->max_faces)
		return perr(p, ERR_LIMIT, where,
			    "face %" PRIu64 ": more than %" PRIu64 " triangles",
			    rec, p->lim->max_faces);
	if ((uint64_t)n > p->max_n)
		p->max_n = (uint64_t)n;
	return 0;
}

/*
 * Triangles are checked and decoded in blocks: testing that the next
 * FACE_BLOCK counts are all 3 needs independent loads only, where
 * following count after count is a chain of dependent loads (several
 * times slower).  This works when the face element's only list is a
 * `uchar` count of int or uint vertex_indices (any scalars around it):
 * then every triangle record has the same size.  Other records, and
 * other layouts, go one record at a time.
 */
#define FACE_BLOCK 32

struct tri_layout {
	size_t count_at;         /* offset of the list count in a record */
	size_t rec;              /* bytes in a triangle record */
	size_t col_off[4];       /* face colour offsets in a triangle record */
	enum ptype col_type[4];  /* T_NONE when absent */
};

static bool tri_layout_of(const struct ply *p, const struct elem *el,
			  struct tri_layout *t)
{
	const struct prop *props = &p->props[el->first], *list = NULL;
	size_t scalars = 0;
	memset(t, 0, sizeof(*t));
	for (size_t k = 0; k < el->n_props; k++) {
		const struct prop *pr = &props[k];
		if (pr->count_type) {
			if (list)
				return false;
			list = pr;
			t->count_at = pr->offset;
		} else {
			scalars += type_size[pr->type];
		}
	}
	if (!list || list->role != R_INDICES || list->count_type != T_U8 ||
	    (list->type != T_I32 && list->type != T_U32))
		return false;
	t->rec = scalars + 13;
	for (size_t k = 0; k < el->n_props; k++) {
		const struct prop *pr = &props[k];
		if (pr->role < R_FRED)
			continue;
		/* scalar offsets skip lists; past the list add its 13 bytes */
		t->col_off[pr->role - R_FRED] = pr->offset + (pr > list ? 13 : 0);
		t->col_type[pr->role - R_FRED] = pr->type;
	}
	return true;
}

static inline bool tri_block(const unsigned char *q, size_t rec)
{
	unsigned ok = 1;
	for (size_t j = 0; j < FACE_BLOCK; j++)
		ok &= q[rec * j] == 3;
	return ok;
}

/* Walk records [r0, r1) of el from *pos_io, one at a time. */
static int walk_records_binary(struct ply *p, const struct elem *el,
			       uint64_t r0, uint64_t r1, size_t *pos_io)
{
	const unsigned char *b = p->buf;
	size_t len = p->len, pos = *pos_io;
	const struct prop *props = &p->props[el->first];
	int rc;
	for (uint64_t r = r0; r < r1; r++) {
		for (size_t k = 0; k < el->n_props; k++) {
			const struct prop *pr = &props[k];
			size_t sz = type_size[pr->count_type ? pr->count_type : pr->type];
			if (sz > len - pos)
				return truncated(p, el, r, pr, (int64_t)pos);
			if (!pr->count_type) {
				pos += sz;
				continue;
			}
			int64_t n = get_i(b + pos, pr->count_type, p->swap);
			if ((rc = check_list(p, el, pr, r, n, (int64_t)pos)))
				return rc;
			size_t isz = type_size[pr->type];
			if ((uint64_t)n > (len - pos - sz) / isz) {
				char rn[96];
				return perr(p, ERR_FORMAT, (int64_t)pos,
					    "%s: property '%.*s': list of %" PRId64 " items runs past the end of the file",
					    rec_name(p, el, r, rn, sizeof(rn)), PNAME(pr), n);
			}
			pos += sz + (size_t)n * isz;
		}
	}
	*pos_io = pos;
	return 0;
}

static int walk_faces_binary(struct ply *p, const struct elem *el, size_t *pos_io)
{
	struct tri_layout t;
	size_t pos = *pos_io;
	int rc;
	if (!tri_layout_of(p, el, &t) || p->lim->max_polygon_degree < 3)
		return walk_records_binary(p, el, 0, el->count, pos_io);
	for (uint64_t f = 0; f < el->count;) {
		if (el->count - f >= FACE_BLOCK && p->len - pos >= FACE_BLOCK * t.rec &&
		    tri_block(p->buf + pos + t.count_at, t.rec)) {
			pos += FACE_BLOCK * t.rec;
			f += FACE_BLOCK;
			p->n_tris += FACE_BLOCK;
			if (p->n_tris > p->lim->max_faces)
				return perr(p, ERR_LIMIT, (int64_t)pos,
					    "face %" PRIu64 ": more than %" PRIu64 " triangles",
					    f - 1, p->lim->max_faces);
			if (p->max_n < 3)
				p->max_n = 3;
			continue;
		}
		if ((rc = walk_records_binary(p, el, f, f + 1, &pos)))
			return rc;
		f++;
	}
	*pos_io = pos;
	return 0;
}

static int walk_binary(struct ply *p)
{
	size_t pos = p->body;
	int rc;
	for (size_t i = 0; i < p->n_elems; i++) {
		struct elem *el = &p->elems[i];
		el->start = pos;
		if (!el->count || !el->n_props)
			continue;
		size_t left = p->len - pos;
		if (el->fixed) {
			if (el->count > left / el->stride) {
				/* name the first property that does not fit */
				uint64_t rec = left / el->stride;
				size_t rem = left % el->stride, k = 0;
				while (k + 1 < el->n_props &&
				       p->props[el->first + k].offset +
					       type_size[p->props[el->first + k].type] <= rem)
					k++;
				const struct prop *pr = &p->props[el->first + k];
				return truncated(p, el, rec, pr,
						 (int64_t)(pos + rec * el->stride + pr->offset));
			}
			pos += (size_t)el->count * el->stride;
			continue;
		}
		if (el->count > left / el->min_rec)
			return perr(p, ERR_FORMAT, (int64_t)pos,
				    "element '%.*s': %" PRIu64 " records of at least %zu bytes do not fit in the %zu bytes left",
				    ENAME(el), el->count, el->min_rec, left);
		if (i == p->face)
			rc = walk_faces_binary(p, el, &pos);
		else
			rc = walk_records_binary(p, el, 0, el->count, &pos);
		if (rc)
			return rc;
	}
	if (pos < p->len &&
	    scan_warn(p->out, "offset %zu: %zu bytes of trailing data after the last element ignored",
		      pos, p->len - pos))
		return nomem(p);
	return 0;
}

/*
 * ascii records are one per line (as the spec says and as exporters
 * write them): a record with too few values is an error on its line,
 * extra values at the end of a line are ignored with one warning.  Blank
 * lines between records are skipped.
 */

/* Next non-blank line of body into rec; false at end of input. */
static bool next_record(struct tcur *body, struct tcur *rec)
{
	const char *ls, *le;
	for (;;) {
		long line = body->line;
		if (!tcur_next_line(body, &ls, &le))
			return false;
		if (ts_skip_blank(ls, le) == le)
			continue;
		rec->p = ls;
		rec->end = le;
		rec->line = line;
		return true;
	}
}

/* Next value of a record line. */
static inline bool next_tok(struct tcur *c, const char **ts, const char **te)
{
	const char *q = ts_skip_blank(c->p, c->end);
	if (q >= c->end) {
		c->p = q;
		return false;
	}
	*ts = q;
	q = ts_token_end(q, c->end);
	*te = q;
	c->p = q;
	return true;
}

static int tok_missing(struct ply *p, const struct elem *el, uint64_t rec,
		       const struct prop *pr, const struct tcur *c)
{
	char rn[96];
	return perr(p, ERR_FORMAT, c->line,
		    "%s: property '%.*s': value missing (%zu properties declared)",
		    rec_name(p, el, rec, rn, sizeof(rn)), PNAME(pr), el->n_props);
}

/* An ascii list count or index: an integer, whole token. */
static int tok_int(struct ply *p, const struct elem *el, uint64_t rec,
		   const struct prop *pr, struct tcur *c, int64_t *v)
{
	const char *ts, *te;
	if (!next_tok(c, &ts, &te))
		return tok_missing(p, el, rec, pr, c);
	if (ts_parse_i64(ts, te, v) != te) {
		char rn[96];
		return perr(p, ERR_FORMAT, c->line,
			    "%s: property '%.*s': expected an integer near '%.*s'",
			    rec_name(p, el, rec, rn, sizeof(rn)), PNAME(pr),
			    tok_len(ts, te), ts);
	}
	return 0;
}

static int tok_num(struct ply *p, const struct elem *el, uint64_t rec,
		   const struct prop *pr, struct tcur *c, double *v)
{
	const char *ts, *te;
	if (!next_tok(c, &ts, &te))
		return tok_missing(p, el, rec, pr, c);
	if (ts_parse_double(ts, te, v) != te) {
		char rn[96];
		return perr(p, ERR_FORMAT, c->line,
			    "%s: property '%.*s': expected a number near '%.*s'",
			    rec_name(p, el, rec, rn, sizeof(rn)), PNAME(pr),
			    tok_len(ts, te), ts);
	}
	return 0;
}

static int tok_skip(struct ply *p, const struct elem *el, uint64_t rec,
		    const struct prop *pr, struct tcur *c, uint64_t n)
{
	const char *ts, *te;
	for (uint64_t i = 0; i < n; i++)
		if (!next_tok(c, &ts, &te))
			return tok_missing(p, el, rec, pr, c);
	return 0;
}

/* Start reading element el's records: the body cursor at its first line. */
static void ascii_at(const struct ply *p, const struct elem *el, struct tcur *c)
{
	tcur_init(c, p->buf + el->start, p->len - el->start);
	c->line = el->start_line;
}

static int walk_ascii(struct ply *p)
{
	struct tcur c, r;
	uint64_t n_extra = 0;
	long first_extra = 0;
	const char *ts, *te;
	int rc;

	tcur_init(&c, p->buf + p->body, p->len - p->body);
	c.line = p->body_line;
	for (size_t i = 0; i < p->n_elems; i++) {
		struct elem *el = &p->elems[i];
		el->start = (size_t)((const unsigned char *)c.p - p->buf);
		el->start_line = c.line;
		if (!el->count || !el->n_props)
			continue;
		size_t left = (size_t)(c.end - c.p);
		if (el->count > left / el->min_rec)
			return perr(p, ERR_FORMAT, el->line,
				    "element '%.*s': %" PRIu64 " records of %zu values do not fit in the %zu bytes left",
				    ENAME(el), el->count, el->n_props, left);
		const struct prop *props = &p->props[el->first];
		for (uint64_t k = 0; k < el->count; k++) {
			if (!next_record(&c, &r))
				return truncated(p, el, k, &props[0], c.line);
			for (size_t j = 0; j < el->n_props; j++) {
				const struct prop *pr = &props[j];
				if (!pr->count_type) {
					if ((rc = tok_skip(p, el, k, pr, &r, 1)))
						return rc;
					continue;
				}
				int64_t n;
				if ((rc = tok_int(p, el, k, pr, &r, &n)) ||
				    (rc = check_list(p, el, pr, k, n, r.line)) ||
				    (rc = tok_skip(p, el, k, pr, &r, (uint64_t)n)))
					return rc;
			}
			if (next_tok(&r, &ts, &te) && !n_extra++)
				first_extra = r.line;
		}
	}
	if (n_extra &&
	    scan_warn(p->out, "line %ld: %" PRIu64 " records have more values than their properties; extra values ignored",
		      first_extra, n_extra))
		return nomem(p);
	if (next_record(&c, &r) &&
	    scan_warn(p->out, "line %ld: trailing data after the last element ignored",
		      r.line))
		return nomem(p);
	return 0;
}

/* ------------------------------------------------------------------ */
/* decode: vertices */

/*
 * The decode pass reads bytes the walk has checked, but a mapped file
 * can change under us: every list count is checked again, so a changed
 * file gives an error instead of an overflow.
 */
static int changed(struct ply *p, int64_t where)
{
	return perr(p, ERR_IO, where, "the file changed while it was being read");
}

struct slot {
	size_t off;
	enum ptype type;
};

static void slots_of(const struct ply *p, int first, int n, struct slot *sl)
{
	for (int i = 0; i < n; i++) {
		int k = p->vslot[first + i];
		sl[i].off = k >= 0 ? p->props[k].offset : 0;
		sl[i].type = k >= 0 ? p->props[k].type : T_NONE;
	}
}

/*
 * The general fixed-stride path (byte-swapped, scattered or converted
 * values): n records of stride bytes from base, k float slots into out.
 */
static void dec_floats(const unsigned char *base, size_t stride, size_t n,
		       const struct slot *sl, size_t k, float *out, bool sw)
{
	bool f32 = true;
	for (size_t j = 0; j < k; j++)
		f32 = f32 && sl[j].type == T_F32;
	if (f32) {
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < k; j++)
				out[k * i + j] = ldf32(base + i * stride + sl[j].off, sw);
		return;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < k; j++)
			out[k * i + j] = (float)get_d(base + i * stride + sl[j].off,
						      sl[j].type, sw);
}

/* RGB(A) slots into RGBA bytes; a missing alpha is 255 */
static void dec_colors(const unsigned char *base, size_t stride, size_t n,
		       const struct slot *sl, uint8_t *out, bool sw)
{
	for (size_t i = 0; i < n; i++) {
		const unsigned char *r = base + i * stride;
		uint8_t *o = out + 4 * i;
		for (int j = 0; j < 4; j++)
			o[j] = sl[j].type == T_NONE ? 255
				: sl[j].type == T_U8 ? r[sl[j].off]
				: color_from(get_d(r + sl[j].off, sl[j].type, sw), sl[j].type);
	}
}

/* Store one decoded vertex value in its slot. */
static inline void put_vertex(struct scan *s, size_t i, enum role r, double v,
			      enum ptype t)
{
	switch (r) {
	case R_X: case R_Y: case R_Z:
		s->positions[3 * i + (size_t)(r - R_X)] = (float)v;
		break;
	case R_NX: case R_NY: case R_NZ:
		s->normals[3 * i + (size_t)(r - R_NX)] = (float)v;
		break;
	case R_RED: case R_GREEN: case R_BLUE: case R_ALPHA:
		s->colors[4 * i + (size_t)(r - R_RED)] = color_from(v, t);
		break;
	case R_U: case R_V:
		s->uvs[2 * i + (size_t)(r - R_U)] = (float)v;
		break;
	default:
		break;
	}
}

static void fill_alpha(struct ply *p, size_t nv)
{
	if (p->has_colors && p->vslot[VS(R_ALPHA)] < 0)
		for (size_t i = 0; i < nv; i++)
			p->out->colors[4 * i + 3] = 255;
}

/*
 * The usual scanner layout, decoded in one pass over the records:
 * float32 x y z (and nx ny nz, u v) at consecutive offsets in the host
 * byte order, uchar colours anywhere in the record.
 */
struct fast_layout {
	size_t pos, nrm, uv;     /* offsets of x, nx, u */
	size_t col[4];           /* offsets of red green blue alpha */
	unsigned what;           /* FAST_* */
};

enum { FAST_NRM = 1, FAST_COL = 2, FAST_ALPHA = 4, FAST_UV = 8 };

static inline __attribute__((always_inline)) void
fast_range(const unsigned char *base, size_t stride, size_t i0, size_t i1,
	   const struct fast_layout *L, struct scan *s, unsigned what)
{
	float *pos = s->positions, *nrm = s->normals, *uv = s->uvs;
	uint8_t *col = s->colors;
	for (size_t i = i0; i < i1; i++) {
		const unsigned char *r = base + i * stride;
		memcpy(pos + 3 * i, r + L->pos, 12);
		if (what & FAST_NRM)
			memcpy(nrm + 3 * i, r + L->nrm, 12);
		if (what & FAST_COL) {
			uint8_t *o = col + 4 * i;
			o[0] = r[L->col[0]];
			o[1] = r[L->col[1]];
			o[2] = r[L->col[2]];
			o[3] = (what & FAST_ALPHA) ? r[L->col[3]] : 255;
		}
		if (what & FAST_UV)
			memcpy(uv + 2 * i, r + L->uv, 8);
	}
}

/* one copy of the loop per attribute set, so each is branch-free */
static void fast_vertices(const unsigned char *base, size_t stride, size_t i0,
			  size_t i1, const struct fast_layout *L, struct scan *s)
{
#define FAST(w) case w: fast_range(base, stride, i0, i1, L, s, w); break
	switch (L->what) {
	FAST(0);
	FAST(FAST_NRM);
	FAST(FAST_COL);
	FAST(FAST_NRM | FAST_COL);
	FAST(FAST_COL | FAST_ALPHA);
	FAST(FAST_NRM | FAST_COL | FAST_ALPHA);
	FAST(FAST_UV);
	FAST(FAST_NRM | FAST_UV);
	FAST(FAST_COL | FAST_UV);
	FAST(FAST_NRM | FAST_COL | FAST_UV);
	FAST(FAST_COL | FAST_ALPHA | FAST_UV);
	FAST(FAST_NRM | FAST_COL | FAST_ALPHA | FAST_UV);
	default: break;
	}
#undef FAST
}

/* Fill L when the vertex element has the fast layout. */
static bool fast_layout_of(const struct ply *p, struct fast_layout *L)
{
	struct slot sl[4];
	if (p->swap)
		return false;
	memset(L, 0, sizeof(*L));
	slots_of(p, VS(R_X), 3, sl);
	for (int k = 0; k < 3; k++)
		if (sl[k].type != T_F32 || sl[k].off != sl[0].off + 4 * (size_t)k)
			return false;
	L->pos = sl[0].off;
	if (p->has_normals) {
		slots_of(p, VS(R_NX), 3, sl);
		for (int k = 0; k < 3; k++)
			if (sl[k].type != T_F32 || sl[k].off != sl[0].off + 4 * (size_t)k)
				return false;
		L->nrm = sl[0].off;
		L->what |= FAST_NRM;
	}
	if (p->has_uvs) {
		slots_of(p, VS(R_U), 2, sl);
		if (sl[0].type != T_F32 || sl[1].type != T_F32 || sl[1].off != sl[0].off + 4)
			return false;
		L->uv = sl[0].off;
		L->what |= FAST_UV;
	}
	if (p->has_colors) {
		slots_of(p, VS(R_RED), 4, sl);
		for (int k = 0; k < 4; k++) {
			if (sl[k].type != T_U8 && !(k == 3 && sl[k].type == T_NONE))
				return false;
			L->col[k] = sl[k].off;
		}
		L->what |= FAST_COL | (sl[3].type == T_U8 ? FAST_ALPHA : 0);
	}
	return true;
}

static int decode_vertices_binary(struct ply *p)
{
	const struct elem *el = &p->elems[p->vert];
	struct scan *s = p->out;
	size_t nv = (size_t)el->count;
	const unsigned char *base = p->buf + el->start;
	struct slot sl[4];

	struct fast_layout L;
	if (el->fixed && fast_layout_of(p, &L)) {
		/*
		 * One thread: the pass is bound by memory, and a second
		 * thread measured slower on a loaded two-core machine.
		 */
		fast_vertices(base, el->stride, 0, nv, &L, s);
		return 0;
	}
	if (el->fixed) {
		slots_of(p, VS(R_X), 3, sl);
		dec_floats(base, el->stride, nv, sl, 3, s->positions, p->swap);
		if (p->has_normals) {
			slots_of(p, VS(R_NX), 3, sl);
			dec_floats(base, el->stride, nv, sl, 3, s->normals, p->swap);
		}
		if (p->has_uvs) {
			slots_of(p, VS(R_U), 2, sl);
			dec_floats(base, el->stride, nv, sl, 2, s->uvs, p->swap);
		}
		if (p->has_colors) {
			slots_of(p, VS(R_RED), 4, sl);
			dec_colors(base, el->stride, nv, sl, s->colors, p->swap);
		}
		return 0;
	}
	/* records with lists: one at a time */
	const unsigned char *b = p->buf;
	const struct prop *props = &p->props[el->first];
	size_t pos = el->start, len = p->len;
	fill_alpha(p, nv);
	for (size_t i = 0; i < nv; i++) {
		for (size_t k = 0; k < el->n_props; k++) {
			const struct prop *pr = &props[k];
			size_t isz = type_size[pr->type];
			size_t sz = pr->count_type ? type_size[pr->count_type] : isz;
			if (sz > len - pos)
				return changed(p, (int64_t)pos);
			if (pr->count_type) {
				int64_t n = get_i(b + pos, pr->count_type, p->swap);
				pos += sz;
				if (n < 0 || (uint64_t)n > (len - pos) / isz)
					return changed(p, (int64_t)pos);
				pos += (size_t)n * isz;
				continue;
			}
			if (pr->role)
				put_vertex(s, i, pr->role, get_d(b + pos, pr->type, p->swap),
					   pr->type);
			pos += sz;
		}
	}
	return 0;
}

static int decode_vertices_ascii(struct ply *p)
{
	const struct elem *el = &p->elems[p->vert];
	struct scan *s = p->out;
	size_t nv = (size_t)el->count;
	const struct prop *props = &p->props[el->first];
	struct tcur body, c;
	int rc;

	ascii_at(p, el, &body);
	fill_alpha(p, nv);
	for (size_t i = 0; i < nv; i++) {
		if (!next_record(&body, &c))
			return truncated(p, el, i, &props[0], body.line);
		for (size_t k = 0; k < el->n_props; k++) {
			const struct prop *pr = &props[k];
			if (pr->count_type) {
				int64_t n;
				if ((rc = tok_int(p, el, i, pr, &c, &n)) ||
				    (rc = tok_skip(p, el, i, pr, &c, (uint64_t)n)))
					return rc;
				continue;
			}
			if (!pr->role) {
				if ((rc = tok_skip(p, el, i, pr, &c, 1)))
					return rc;
				continue;
			}
			double v;
			if ((rc = tok_num(p, el, i, pr, &c, &v)))
				return rc;
			put_vertex(s, i, pr->role, v, pr->type);
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* decode: faces */

static int index_err(struct ply *p, uint64_t f, int64_t v, int64_t where)
{
	return perr(p, ERR_FORMAT, where,
		    "face %" PRIu64 ": vertex index %" PRId64 " out of range (have %zu)",
		    f, v, p->out->n_vertices);
}

/*
 * Emit the triangles of face f from p->poly[0..n) (indices checked), with
 * its m texcoords in p->tc and its colour.
 */
static int emit_polygon(struct ply *p, uint64_t f, int64_t where, uint32_t n,
			uint64_t m, const uint8_t rgba[4])
{
	struct scan *s = p->out;
	size_t nt = n - 2;
	int rc;

	if (p->tri > s->n_faces || nt > s->n_faces - p->tri)
		return perr(p, ERR_INTERNAL, where,
			    "face %" PRIu64 ": more triangles than counted", f);
	uint32_t *dst = s->indices + 3 * p->tri;
	if (p->has_tc && m != 0 && m != 2 * (uint64_t)n)
		return perr(p, ERR_FORMAT, where,
			    "face %" PRIu64 ": 'texcoord' has %" PRIu64 " values for %u corners (need 2 per corner)",
			    f, m, n);
	if (n == 3) {
		memcpy(dst, p->poly, 3 * sizeof(*dst));
		if (p->has_tc) {
			float *cu = s->corner_uvs + 6 * p->tri;
			for (int k = 0; k < 6; k++)
				cu[k] = m ? p->tc[k] : 0.0f;
		}
	} else if (!p->has_tc) {
		rc = triangulate_polygon(&p->tr, s->positions, s->n_vertices,
					 p->poly, n, dst, p->e);
		if (rc == ERR_NOMEM)
			return nomem(p);
		if (rc)
			return perr(p, rc, where, "face %" PRIu64 ": cannot triangulate", f);
	} else {
		/* triangulate corner numbers, so each corner keeps its UV */
		rc = triangulate_polygon_corners(&p->tr, s->positions, s->n_vertices,
						 p->poly, n, dst, p->e);
		if (rc == ERR_NOMEM)
			return nomem(p);
		if (rc)
			return perr(p, rc, where, "face %" PRIu64 ": cannot triangulate", f);
		float *cu = s->corner_uvs + 6 * p->tri;
		for (size_t k = 0; k < 3 * nt; k++) {
			uint32_t cn = dst[k] < n ? dst[k] : 0;
			cu[2 * k] = m ? p->tc[2 * cn] : 0.0f;
			cu[2 * k + 1] = m ? p->tc[2 * cn + 1] : 0.0f;
			dst[k] = p->poly[cn];
		}
	}
	if (p->has_fcolors)
		for (size_t t = 0; t < nt; t++)
			memcpy(s->face_colors + 4 * (p->tri + t), rgba, 4);
	p->tri += nt;
	return 0;
}

/* One face record at *pos_io (general layout). */
static int decode_face_record(struct ply *p, uint64_t f, size_t *pos_io)
{
	const struct elem *el = &p->elems[p->face];
	const struct prop *props = &p->props[el->first];
	const unsigned char *b = p->buf;
	const size_t nv = p->out->n_vertices, len = p->len, start = *pos_io;
	const bool sw = p->swap;
	size_t pos = start;
	uint32_t n = 0;
	uint64_t m = 0;
	uint8_t rgba[4] = { 255, 255, 255, 255 };

	for (size_t k = 0; k < el->n_props; k++) {
		const struct prop *pr = &props[k];
		size_t isz = type_size[pr->type];
		size_t sz = pr->count_type ? type_size[pr->count_type] : isz;
		if (sz > len - pos)
			return changed(p, (int64_t)pos);
		if (!pr->count_type) {
			if (pr->role >= R_FRED)
				rgba[pr->role - R_FRED] =
					color_from(get_d(b + pos, pr->type, sw), pr->type);
			pos += sz;
			continue;
		}
		int64_t cnt = get_i(b + pos, pr->count_type, sw);
		pos += sz;
		if (cnt < 0 || (uint64_t)cnt > (len - pos) / isz ||
		    (pr->role == R_INDICES && (cnt < 3 || (uint64_t)cnt > p->max_n)) ||
		    (pr->role == R_TEXCOORD && (uint64_t)cnt > p->max_m))
			return changed(p, (int64_t)pos);
		if (pr->role == R_INDICES) {
			for (int64_t j = 0; j < cnt; j++, pos += isz) {
				int64_t v = get_i(b + pos, pr->type, sw);
				if (v < 0 || (uint64_t)v >= nv)
					return index_err(p, f, v, (int64_t)pos);
				p->poly[j] = (uint32_t)v;
			}
			n = (uint32_t)cnt;
		} else if (pr->role == R_TEXCOORD) {
			for (int64_t j = 0; j < cnt; j++, pos += isz)
				p->tc[j] = (float)get_d(b + pos, pr->type, sw);
			m = (uint64_t)cnt;
		} else {
			pos += (size_t)cnt * isz;
		}
	}
	*pos_io = pos;
	return emit_polygon(p, f, (int64_t)start, n, m, rgba);
}

/* FACE_BLOCK triangles at q (counts checked): false on a bad index */
static bool decode_tri_block(struct ply *p, const struct tri_layout *t,
			     const unsigned char *q)
{
	struct scan *s = p->out;
	const bool sw = p->swap;
	const uint32_t nv = (uint32_t)s->n_vertices; /* <= INT32_MAX */
	uint32_t *dst = s->indices + 3 * p->tri;
	uint32_t bad = 0;
	for (size_t j = 0; j < FACE_BLOCK; j++) {
		const unsigned char *r = q + t->rec * j + t->count_at + 1;
		uint32_t a = ld32(r, sw), b = ld32(r + 4, sw), c = ld32(r + 8, sw);
		dst[3 * j] = a;
		dst[3 * j + 1] = b;
		dst[3 * j + 2] = c;
		bad |= (uint32_t)(a >= nv) | (uint32_t)(b >= nv) | (uint32_t)(c >= nv);
	}
	if (bad)
		return false;
	if (p->has_fcolors) {
		uint8_t *fc = s->face_colors + 4 * p->tri;
		for (size_t j = 0; j < FACE_BLOCK; j++)
			for (int k = 0; k < 4; k++) {
				const unsigned char *r = q + t->rec * j + t->col_off[k];
				enum ptype ty = t->col_type[k];
				fc[4 * j + (size_t)k] = ty == T_NONE ? 255 : ty == T_U8 ? r[0]
					: color_from(get_d(r, ty, sw), ty);
			}
	}
	return true;
}

static int decode_faces_binary(struct ply *p)
{
	const struct elem *el = &p->elems[p->face];
	struct scan *s = p->out;
	size_t pos = el->start;
	struct tri_layout t;
	bool blocks = tri_layout_of(p, el, &t);
	int rc;

	for (uint64_t f = 0; f < el->count;) {
		/* a block with a bad index goes record by record, to name it */
		if (blocks && el->count - f >= FACE_BLOCK &&
		    s->n_faces - p->tri >= FACE_BLOCK &&
		    p->len - pos >= FACE_BLOCK * t.rec &&
		    tri_block(p->buf + pos + t.count_at, t.rec) &&
		    decode_tri_block(p, &t, p->buf + pos)) {
			p->tri += FACE_BLOCK;
			f += FACE_BLOCK;
			pos += FACE_BLOCK * t.rec;
			continue;
		}
		if ((rc = decode_face_record(p, f, &pos)))
			return rc;
		f++;
	}
	return 0;
}

static int decode_faces_ascii(struct ply *p)
{
	const struct elem *el = &p->elems[p->face];
	struct scan *s = p->out;
	const struct prop *props = &p->props[el->first];
	const size_t nv = s->n_vertices;
	struct tcur body, c;
	int rc;

	ascii_at(p, el, &body);
	for (uint64_t f = 0; f < el->count; f++) {
		if (!next_record(&body, &c))
			return truncated(p, el, f, &props[0], body.line);
		long line = c.line;
		uint32_t n = 0;
		uint64_t m = 0;
		uint8_t rgba[4] = { 255, 255, 255, 255 };
		for (size_t k = 0; k < el->n_props; k++) {
			const struct prop *pr = &props[k];
			if (!pr->count_type) {
				if (pr->role >= R_FRED) {
					double v;
					if ((rc = tok_num(p, el, f, pr, &c, &v)))
						return rc;
					rgba[pr->role - R_FRED] = color_from(v, pr->type);
				} else if ((rc = tok_skip(p, el, f, pr, &c, 1))) {
					return rc;
				}
				continue;
			}
			int64_t cnt;
			if ((rc = tok_int(p, el, f, pr, &c, &cnt)))
				return rc;
			if (cnt < 0 ||
			    (pr->role == R_INDICES && (cnt < 3 || (uint64_t)cnt > p->max_n)) ||
			    (pr->role == R_TEXCOORD && (uint64_t)cnt > p->max_m))
				return changed(p, c.line);
			if (pr->role == R_INDICES) {
				for (int64_t j = 0; j < cnt; j++) {
					int64_t v;
					if ((rc = tok_int(p, el, f, pr, &c, &v)))
						return rc;
					if (v < 0 || (uint64_t)v >= nv)
						return index_err(p, f, v, c.line);
					p->poly[j] = (uint32_t)v;
				}
				n = (uint32_t)cnt;
			} else if (pr->role == R_TEXCOORD) {
				for (int64_t j = 0; j < cnt; j++) {
					double v;
					if ((rc = tok_num(p, el, f, pr, &c, &v)))
						return rc;
					p->tc[j] = (float)v;
				}
				m = (uint64_t)cnt;
			} else if ((rc = tok_skip(p, el, f, pr, &c, (uint64_t)cnt))) {
				return rc;
			}
		}
		if ((rc = emit_polygon(p, f, line, n, m, rgba)))
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* reader entry points */

int ply_probe(const unsigned char *buf, size_t len)
{
	size_t i = 3;
	if (len < 4 || memcmp(buf, "ply", 3))
		return 0;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r'))
		i++;
	return i < len && buf[i] == '\n' ? 100 : 0;
}

static int alloc_scratch(struct ply *p)
{
	size_t n = p->max_n > 3 ? (size_t)p->max_n : 3;
	p->poly = alloc_array(n, sizeof(*p->poly));
	if (!p->poly)
		return nomem(p);
	if (!p->has_tc)
		return 0;
	p->tc = alloc_array(p->max_m > 6 ? (size_t)p->max_m : 6, sizeof(*p->tc));
	if (!p->tc)
		return nomem(p);
	return 0;
}

int ply_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e)
{
	struct ply p;
	int rc;

	memset(&p, 0, sizeof(p));
	p.buf = buf;
	p.len = len;
	p.lim = lim ? lim : limits_default();
	p.out = out;
	p.e = e;
	triangulator_init(&p.tr);
	scan_init(out);
	out->format = "ply";

	if ((rc = parse_header(&p)) || (rc = assign_roles(&p)))
		goto out;
	rc = p.ascii ? walk_ascii(&p) : walk_binary(&p);
	if (rc)
		goto out;

	size_t nv = p.vert != SIZE_MAX ? (size_t)p.elems[p.vert].count : 0;
	size_t nf = (size_t)p.n_tris;
	unsigned flags = (p.has_normals ? SCAN_ALLOC_NORMALS : 0) |
			 (p.has_colors ? SCAN_ALLOC_COLORS : 0) |
			 (p.has_uvs ? SCAN_ALLOC_UVS : 0) |
			 (p.has_tc ? SCAN_ALLOC_CORNER_UVS : 0) |
			 (p.has_fcolors ? SCAN_ALLOC_FACE_COLORS : 0);
	if ((rc = scan_alloc(out, nv, nf, flags, e)))
		goto out;
	out->n_vertices = nv;
	out->n_faces = nf;
	if (nv) {
		rc = p.ascii ? decode_vertices_ascii(&p) : decode_vertices_binary(&p);
		if (rc)
			goto out;
	}
	if (p.face != SIZE_MAX) {
		out->n_polygons = (size_t)p.elems[p.face].count;
		if ((rc = alloc_scratch(&p)))
			goto out;
		rc = p.ascii ? decode_faces_ascii(&p) : decode_faces_binary(&p);
		if (rc)
			goto out;
		if (p.tri != nf) {
			rc = err_set(e, ERR_INTERNAL, "faces made %zu triangles, counted %zu",
				     p.tri, nf);
			goto out;
		}
		if (p.tr.n_fanned &&
		    scan_warn(out, "%zu polygons with more than %u vertices split as a fan (right only for convex ones)",
			      p.tr.n_fanned, TRIANGULATE_MAX_EAR)) {
			rc = nomem(&p);
			goto out;
		}
	}
	rc = scan_finalize(out, e);
out:
	xfree(p.tc);
	xfree(p.poly);
	triangulator_release(&p.tr);
	xfree(p.props);
	xfree(p.elems);
	if (rc)
		scan_release(out);
	return rc;
}

/* ------------------------------------------------------------------ */
/* writer */

struct wbuf {
	FILE *fp;
	unsigned char b[1 << 16];
	size_t n;
	struct err *e;
};

static int wflush(struct wbuf *w)
{
	if (w->n && fwrite(w->b, 1, w->n, w->fp) != w->n)
		return err_set_errno(w->e, ERR_IO, "cannot write ply data");
	w->n = 0;
	return 0;
}

static inline int wreserve(struct wbuf *w, size_t n)
{
	return sizeof(w->b) - w->n < n ? wflush(w) : 0;
}

static inline void put_u32le(struct wbuf *w, uint32_t v)
{
	unsigned char *d = w->b + w->n;
	d[0] = (unsigned char)v;
	d[1] = (unsigned char)(v >> 8);
	d[2] = (unsigned char)(v >> 16);
	d[3] = (unsigned char)(v >> 24);
	w->n += 4;
}

static inline void put_f32le(struct wbuf *w, float f)
{
	uint32_t v;
	memcpy(&v, &f, 4);
	put_u32le(w, v);
}

static int write_header(FILE *fp, const struct scan *s, struct err *e)
{
	for (size_t i = 0; i < s->n_textures; i++)
		if (strpbrk(s->textures[i].declared, "\r\n"))
			return err_set(e, ERR_FORMAT,
				       "texture %zu: path contains a line break", i);
	if (s->n_vertices > INT32_MAX)
		return err_set(e, ERR_LIMIT, "%zu vertices do not fit in int indices",
			       s->n_vertices);
	int bad = fputs("ply\nformat binary_little_endian 1.0\n", fp) < 0;
	if (s->units != UNITS_UNKNOWN)
		bad |= fprintf(fp, "comment units %s\n", scan_units_name(s->units)) < 0;
	for (size_t i = 0; i < s->n_textures; i++)
		bad |= fprintf(fp, "comment TextureFile %s\n", s->textures[i].declared) < 0;
	bad |= fprintf(fp, "element vertex %zu\n"
		       "property float x\nproperty float y\nproperty float z\n",
		       s->n_vertices) < 0;
	if (s->normals)
		bad |= fputs("property float nx\nproperty float ny\nproperty float nz\n", fp) < 0;
	if (s->colors)
		bad |= fputs("property uchar red\nproperty uchar green\n"
			     "property uchar blue\nproperty uchar alpha\n", fp) < 0;
	if (s->uvs)
		bad |= fputs("property float u\nproperty float v\n", fp) < 0;
	bad |= fprintf(fp, "element face %zu\nproperty list uchar int vertex_indices\n",
		       s->n_faces) < 0;
	if (s->corner_uvs)
		bad |= fputs("property list uchar float texcoord\n", fp) < 0;
	if (s->face_colors)
		bad |= fputs("property uchar red\nproperty uchar green\n"
			     "property uchar blue\nproperty uchar alpha\n", fp) < 0;
	bad |= fputs("end_header\n", fp) < 0;
	if (bad)
		return err_set_errno(e, ERR_IO, "cannot write ply header");
	return 0;
}

int ply_write_stream(void *fpv, const struct scan *s, struct err *e)
{
	FILE *fp = fpv;
	struct wbuf *w;
	int rc;

	if ((rc = write_header(fp, s, e)))
		return rc;
	w = xmalloc(sizeof(*w));
	if (!w)
		return err_set(e, ERR_NOMEM, "out of memory");
	w->fp = fp;
	w->n = 0;
	w->e = e;
	for (size_t i = 0; i < s->n_vertices; i++) {
		if ((rc = wreserve(w, 36)))
			goto out;
		for (int k = 0; k < 3; k++)
			put_f32le(w, s->positions[3 * i + (size_t)k]);
		if (s->normals)
			for (int k = 0; k < 3; k++)
				put_f32le(w, s->normals[3 * i + (size_t)k]);
		if (s->colors) {
			memcpy(w->b + w->n, s->colors + 4 * i, 4);
			w->n += 4;
		}
		if (s->uvs)
			for (int k = 0; k < 2; k++)
				put_f32le(w, s->uvs[2 * i + (size_t)k]);
	}
	for (size_t f = 0; f < s->n_faces; f++) {
		if ((rc = wreserve(w, 13 + 25 + 4)))
			goto out;
		w->b[w->n++] = 3;
		for (int k = 0; k < 3; k++)
			put_u32le(w, s->indices[3 * f + (size_t)k]);
		if (s->corner_uvs) {
			w->b[w->n++] = 6;
			for (int k = 0; k < 6; k++)
				put_f32le(w, s->corner_uvs[6 * f + (size_t)k]);
		}
		if (s->face_colors) {
			memcpy(w->b + w->n, s->face_colors + 4 * f, 4);
			w->n += 4;
		}
	}
	if ((rc = wflush(w)))
		goto out;
	if (fflush(fp) || ferror(fp))
		rc = err_set_errno(e, ERR_IO, "cannot write ply data");
out:
	xfree(w);
	return rc;
}

int ply_write(const char *path, const struct scan *s, struct err *e)
{
	struct wfile w;
	int rc = wfile_open(&w, path, e);
	if (rc)
		return rc;
	if ((rc = ply_write_stream(w.fp, s, e))) {
		wfile_abort(&w);
		err_set_path(e, path);
		return rc;
	}
	return wfile_commit(&w, e);
}
