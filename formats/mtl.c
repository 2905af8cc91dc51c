/*
 * mtl.c - Wavefront material library (MTL) reader.
 *
 * Spec: Wavefront "Material Library Files (.mtl)", Advanced Visualizer
 * manual, appendix B1 (https://paulbourke.net/dataformats/mtl/).
 *
 * Kept: newmtl NAME (rest of the line, may hold spaces), Kd r [g b]
 * (one value means grey), map_Kd [options] PATH.  The texture options
 * (-blendu -blendv -bm -boost -cc -clamp -imfchan -mm -o -s -t -texres,
 * plus -type and -colorspace seen in the wild) are skipped with their
 * arguments and the path is the rest of the line, so paths with spaces
 * work.  Other maps (map_Ka, bump, map_Bump, norm, ...) and the shading
 * statements are known and ignored.
 *
 * A material defined twice keeps its first definition (a warning).  A
 * bad value is a warning naming the line, not an error: the library is
 * still used for what it defines correctly.  Errors: UTF-16 or binary
 * data, ERR_LIMIT (line length, too many textures or materials) and
 * ERR_NOMEM.  Comments, CRLF, tabs, a UTF-8 BOM and '\' continuations
 * are handled as in OBJ.  Safe on untrusted input.
 */
#include "formats.h"
#include "obj_int.h"
#include "textscan.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <string.h>

#include "../common/banned.h"

/* ---- name -> material index ---- */

static uint64_t hash_name(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static bool name_is(const struct scan *s, int32_t idx, const char *p, size_t n)
{
	const char *name = s->materials[idx].name;
	return strlen(name) == n && !memcmp(name, p, n);
}

static void put(struct mtl_names *m, const struct scan *s, int32_t idx)
{
	const char *name = s->materials[idx].name;
	size_t i = (size_t)hash_name(name, strlen(name)) & (m->cap - 1);
	while (m->slots[i] >= 0)
		i = (i + 1) & (m->cap - 1);
	m->slots[i] = idx;
	m->used++;
}

static int rehash(struct mtl_names *m, const struct scan *s, size_t cap)
{
	int32_t *slots = alloc_array(cap, sizeof(int32_t));
	if (!slots)
		return ERR_NOMEM;
	memset(slots, 0xFF, cap * sizeof(int32_t));
	xfree(m->slots);
	m->slots = slots;
	m->cap = cap;
	m->used = 0;
	for (size_t i = 0; i < s->n_materials; i++)
		put(m, s, (int32_t)i);
	return 0;
}

int mtl_names_init(struct mtl_names *m, const struct scan *s)
{
	size_t cap = 16;
	memset(m, 0, sizeof(*m));
	while (cap < 2 * s->n_materials + 2)
		cap *= 2;
	return rehash(m, s, cap);
}

void mtl_names_release(struct mtl_names *m)
{
	xfree(m->slots);
	memset(m, 0, sizeof(*m));
}

int32_t mtl_names_intern(struct mtl_names *m, struct scan *s, const char *name,
			 size_t len, struct err *e)
{
	size_t i = (size_t)hash_name(name, len) & (m->cap - 1);
	for (; m->slots[i] >= 0; i = (i + 1) & (m->cap - 1))
		if (name_is(s, m->slots[i], name, len))
			return m->slots[i];
	if (s->n_materials >= OBJ_MAX_MATERIALS)
		return err_set(e, ERR_LIMIT, "more than %u materials", OBJ_MAX_MATERIALS);
	int32_t idx = scan_material_intern(s, name, len);
	if (idx < 0)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (2 * (m->used + 1) > m->cap) {
		if (rehash(m, s, 2 * m->cap))
			return err_set(e, ERR_NOMEM, "out of memory");
	} else {
		put(m, s, idx);
	}
	return idx;
}

/* ---- map_Kd options ---- */

struct texopt {
	const char *name;
	unsigned min, max; /* arguments; past min only numbers are taken */
};

static const struct texopt texopts[] = {
	{ "-blendu", 1, 1 }, { "-blendv", 1, 1 }, { "-bm", 1, 1 },
	{ "-boost", 1, 1 },  { "-cc", 1, 1 },     { "-clamp", 1, 1 },
	{ "-imfchan", 1, 1 }, { "-mm", 1, 2 },    { "-o", 1, 3 },
	{ "-s", 1, 3 },      { "-t", 1, 3 },      { "-texres", 1, 1 },
	{ "-type", 1, 1 },   { "-colorspace", 1, 1 },
};

static bool is_number_token(const char *p, const char *q)
{
	double d;
	const char *r = ts_parse_double(p, q, &d);
	return r == q;
}

/*
 * Skip the options at p; returns where the path starts (trimmed line
 * end when there is none).  A word starting with '-' that is no option
 * begins the path.
 */
static const char *skip_texopts(const char *p, const char *le)
{
	for (;;) {
		p = ts_skip_blank(p, le);
		if (p >= le || *p != '-')
			return p;
		const char *q = ts_token_end(p, le);
		const struct texopt *o = NULL;
		for (size_t i = 0; i < sizeof(texopts) / sizeof(texopts[0]); i++)
			if (ts_eq(p, q, texopts[i].name))
				o = &texopts[i];
		if (!o)
			return p;
		p = q;
		for (unsigned k = 0; k < o->max; k++) {
			const char *a = ts_skip_blank(p, le);
			const char *ae = ts_token_end(a, le);
			if (a >= le)
				return le;
			if (k >= o->min && !is_number_token(a, ae))
				break;
			p = ae;
		}
	}
}

/* ---- reader ---- */

static const char *const ignored_kw[] = {
	"Ka", "Ks", "Ke", "Kt", "Ns", "Ni", "d", "Tr", "Tf", "illum", "sharpness",
	"map_Ka", "map_Ks", "map_Ke", "map_Ns", "map_d", "map_Tr", "map_bump",
	"map_Bump", "bump", "norm", "disp", "decal", "refl", "map_refl", "Pr",
	"Pm", "Ps", "Pc", "Pcr", "aniso", "anisor", "map_Pr", "map_Pm", "map_Ps",
	"map_RMA", "map_ORM", "map_Disp", "map_norm",
};

struct mtl_state {
	struct scan *s;
	const struct limits *lim;
	struct err *e;
	struct mtl_names names;
	int32_t cur;   /* material being defined, -1 before the first newmtl */
	bool skip;     /* cur was defined before: ignore its statements */
	size_t n_orphan, n_unknown;
	long unknown_line;
	char unknown_kw[24];
};

static int warnf(struct mtl_state *st, int rc)
{
	return rc ? err_set(st->e, ERR_NOMEM, "out of memory") : 0;
}

static int do_newmtl(struct mtl_state *st, const char *p, const char *le, long lno)
{
	while (le > p && ts_is_space(le[-1]))
		le--;
	p = ts_skip_blank(p, le);
	st->cur = -1;
	st->skip = false;
	if (p == le)
		return warnf(st, scan_warn(st->s, "line %ld: newmtl without a name", lno));
	int32_t m = mtl_names_intern(&st->names, st->s, p, (size_t)(le - p), st->e);
	if (m < 0) {
		st->e->line = lno;
		return m;
	}
	st->cur = m;
	if (st->s->materials[m].defined) {
		st->skip = true;
		return warnf(st, scan_warn(st->s, "line %ld: material '%s' defined again; the first definition is kept",
					   lno, st->s->materials[m].name));
	}
	st->s->materials[m].defined = true;
	return 0;
}

static int do_kd(struct mtl_state *st, const char *p, const char *le, long lno)
{
	float v[3];
	int n = 0;
	p = ts_skip_blank(p, le);
	const char *w = ts_token_end(p, le);
	/* "Kd spectral file.rfl [f]" and "Kd xyz x y z" are not RGB */
	if (ts_eq(p, w, "spectral") || ts_eq(p, w, "xyz"))
		return warnf(st, scan_warn(st->s, "line %ld: Kd %.*s is not supported; default colour kept",
					   lno, (int)(w - p), p));
	while (n < 3) {
		p = ts_skip_blank(p, le);
		if (p >= le || *p == '#')
			break;
		double d;
		const char *q = ts_parse_double(p, le, &d);
		if (!q || (q < le && !ts_is_space(*q)))
			return warnf(st, scan_warn(st->s, "line %ld: bad Kd value; default colour kept", lno));
		v[n++] = (float)(d < 0 ? 0 : d > 1 ? 1 : d);
		p = q;
	}
	if (n == 0 || n == 2)
		return warnf(st, scan_warn(st->s, "line %ld: Kd needs 1 or 3 values; default colour kept", lno));
	if (n == 1)
		v[1] = v[2] = v[0];
	memcpy(st->s->materials[st->cur].kd, v, sizeof(v));
	return 0;
}

static int do_map_kd(struct mtl_state *st, const char *p, const char *le, long lno)
{
	while (le > p && ts_is_space(le[-1]))
		le--;
	p = skip_texopts(p, le);
	if (p >= le)
		return warnf(st, scan_warn(st->s, "line %ld: map_Kd without a file name", lno));
	struct scan *s = st->s;
	size_t n = (size_t)(le - p);
	bool known = false;
	for (size_t i = 0; i < s->n_textures; i++)
		if (strlen(s->textures[i].declared) == n && !memcmp(s->textures[i].declared, p, n))
			known = true;
	if (!known && s->n_textures >= st->lim->max_referenced_files)
		return err_set_line(st->e, ERR_LIMIT, lno, "more than %zu textures",
				    st->lim->max_referenced_files);
	int32_t t = scan_texture_add(s, p, n);
	if (t < 0)
		return err_set_line(st->e, ERR_NOMEM, lno, "out of memory");
	s->materials[st->cur].texture = t;
	return 0;
}

static int mtl_line(struct mtl_state *st, const char *ls, const char *le, long lno)
{
	const char *p = ts_skip_blank(ls, le);
	if (p == le || *p == '#')
		return 0;
	const char *ke = ts_token_end(p, le);
	if (ts_ieq(p, ke, "newmtl"))
		return do_newmtl(st, ke, le, lno);
	bool kd = ts_ieq(p, ke, "Kd"), map_kd = ts_ieq(p, ke, "map_Kd");
	if (kd || map_kd) {
		if (st->cur < 0) {
			st->n_orphan++;
			return 0;
		}
		if (st->skip)
			return 0;
		return kd ? do_kd(st, ke, le, lno) : do_map_kd(st, ke, le, lno);
	}
	for (size_t i = 0; i < sizeof(ignored_kw) / sizeof(ignored_kw[0]); i++)
		if (ts_ieq(p, ke, ignored_kw[i]))
			return 0;
	if (!st->n_unknown++) {
		size_t i = 0;
		for (; p < ke && i + 1 < sizeof(st->unknown_kw); p++)
			st->unknown_kw[i++] = *p >= 0x20 && *p < 0x7F ? *p : '?';
		st->unknown_kw[i] = '\0';
		st->unknown_line = lno;
	}
	return 0;
}

int mtl_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *s, struct err *e)
{
	struct mtl_state st;
	struct obj_lines L;
	size_t padding;
	const char *ls, *le;
	long lno;
	int rc;

	if (!lim)
		lim = limits_default();
	memset(&st, 0, sizeof(st));
	memset(&L, 0, sizeof(L));
	st.s = s;
	st.lim = lim;
	st.e = e;
	st.cur = -1;
	if (len >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF) {
		buf += 3;
		len -= 3;
	}
	if ((rc = obj_check_text(buf, &len, &padding, e)) < 0)
		return rc;
	if ((rc = mtl_names_init(&st.names, s)) < 0)
		return err_set(e, ERR_NOMEM, "out of memory");
	L.p = (const char *)buf;
	L.end = L.p + len;
	L.line = 1;
	L.max_len = lim->max_line_length;
	while ((rc = obj_next_line(&L, &ls, &le, &lno, e)) > 0)
		if ((rc = mtl_line(&st, ls, le, lno)) < 0)
			goto out;
	if (rc < 0)
		goto out;
	if (st.n_orphan &&
	    (rc = warnf(&st, scan_warn(s, "%zu Kd/map_Kd lines before any newmtl ignored", st.n_orphan))))
		goto out;
	if (st.n_unknown &&
	    (rc = warnf(&st, scan_warn(s, "line %ld: unknown material statement '%s' ignored (%zu such lines)",
				       st.unknown_line, st.unknown_kw, st.n_unknown))))
		goto out;
	rc = 0;
out:
	xfree(L.join);
	mtl_names_release(&st.names);
	return rc;
}
