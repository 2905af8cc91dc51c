/*
 * scan.c - the in-memory scan model (see scan.h).
 */
#include "scan.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../common/banned.h"

void scan_init(struct scan *s)
{
	memset(s, 0, sizeof(*s));
	s->format = "";
	s->units = UNITS_UNKNOWN;
}

void scan_release(struct scan *s)
{
	xfree(s->positions);
	xfree(s->normals);
	xfree(s->colors);
	xfree(s->uvs);
	xfree(s->indices);
	xfree(s->corner_uvs);
	xfree(s->face_material);
	xfree(s->face_colors);
	for (size_t i = 0; i < s->n_materials; i++)
		xfree(s->materials[i].name);
	xfree(s->materials);
	for (size_t i = 0; i < s->n_textures; i++) {
		xfree(s->textures[i].declared);
		xfree(s->textures[i].resolved);
	}
	xfree(s->textures);
	for (size_t i = 0; i < s->n_libraries; i++)
		xfree(s->libraries[i]);
	xfree(s->libraries);
	for (size_t i = 0; i < s->n_meta; i++) {
		xfree(s->meta[i].key);
		xfree(s->meta[i].value);
	}
	xfree(s->meta);
	for (size_t i = 0; i < s->n_warnings; i++)
		xfree(s->warnings[i]);
	xfree(s->warnings);
	scan_init(s);
}

void scan_free(struct scan **sp)
{
	if (!sp || !*sp)
		return;
	scan_release(*sp);
	xfree(*sp);
	*sp = NULL;
}

int scan_warn(struct scan *s, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* a flood of warnings is itself one warning */
	if (s->n_warnings >= 64)
		return 0;
	char **nw = realloc_array(s->warnings, s->n_warnings + 1, sizeof(*nw));
	if (!nw)
		return ERR_NOMEM;
	s->warnings = nw;
	if (s->n_warnings == 63)
		snprintf(buf, sizeof(buf), "more warnings not shown");
	char *d = xstrdup(buf);
	if (!d)
		return ERR_NOMEM;
	s->warnings[s->n_warnings++] = d;
	return 0;
}

int scan_meta_add(struct scan *s, const char *key, size_t klen,
		  const char *value, size_t vlen)
{
	if (s->n_meta >= 1024)
		return 0;
	struct scan_kv *nm = realloc_array(s->meta, s->n_meta + 1, sizeof(*nm));
	if (!nm)
		return ERR_NOMEM;
	s->meta = nm;
	char *k = xstrndup(key, klen), *v = xstrndup(value, vlen);
	if (!k || !v) {
		xfree(k);
		xfree(v);
		return ERR_NOMEM;
	}
	s->meta[s->n_meta].key = k;
	s->meta[s->n_meta].value = v;
	s->n_meta++;
	return 0;
}

const char *scan_meta_get(const struct scan *s, const char *key)
{
	for (size_t i = 0; i < s->n_meta; i++)
		if (!strcmp(s->meta[i].key, key))
			return s->meta[i].value;
	return NULL;
}

int32_t scan_material_intern(struct scan *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->n_materials; i++)
		if (strlen(s->materials[i].name) == len &&
		    !memcmp(s->materials[i].name, name, len))
			return (int32_t)i;
	if (s->n_materials >= INT32_MAX)
		return ERR_NOMEM;
	struct scan_material *nm =
		realloc_array(s->materials, s->n_materials + 1, sizeof(*nm));
	if (!nm)
		return ERR_NOMEM;
	s->materials = nm;
	char *d = xstrndup(name, len);
	if (!d)
		return ERR_NOMEM;
	struct scan_material *m = &s->materials[s->n_materials];
	m->name = d;
	m->texture = -1;
	m->kd[0] = m->kd[1] = m->kd[2] = 0.8f;
	m->defined = false;
	return (int32_t)s->n_materials++;
}

int32_t scan_texture_add(struct scan *s, const char *declared, size_t len)
{
	for (size_t i = 0; i < s->n_textures; i++)
		if (strlen(s->textures[i].declared) == len &&
		    !memcmp(s->textures[i].declared, declared, len))
			return (int32_t)i;
	if (s->n_textures >= INT32_MAX)
		return ERR_NOMEM;
	struct scan_texture *nt =
		realloc_array(s->textures, s->n_textures + 1, sizeof(*nt));
	if (!nt)
		return ERR_NOMEM;
	s->textures = nt;
	char *d = xstrndup(declared, len);
	if (!d)
		return ERR_NOMEM;
	s->textures[s->n_textures].declared = d;
	s->textures[s->n_textures].resolved = NULL;
	s->textures[s->n_textures].exists = false;
	return (int32_t)s->n_textures++;
}

static int alloc_one(void **p, size_t n, size_t size, struct err *e)
{
	if (*p)
		return 0;
	*p = alloc_array(n ? n : 1, size);
	if (!*p)
		return err_set(e, ERR_NOMEM, "out of memory for %zu elements", n);
	return 0;
}

int scan_alloc(struct scan *s, size_t nv, size_t nf, unsigned flags,
	       struct err *e)
{
	int rc;
	if ((rc = alloc_one((void **)&s->positions, nv, 3 * sizeof(float), e)))
		return rc;
	if ((rc = alloc_one((void **)&s->indices, nf, 3 * sizeof(uint32_t), e)))
		return rc;
	if ((flags & SCAN_ALLOC_NORMALS) &&
	    (rc = alloc_one((void **)&s->normals, nv, 3 * sizeof(float), e)))
		return rc;
	if ((flags & SCAN_ALLOC_COLORS) &&
	    (rc = alloc_one((void **)&s->colors, nv, 4, e)))
		return rc;
	if ((flags & SCAN_ALLOC_UVS) &&
	    (rc = alloc_one((void **)&s->uvs, nv, 2 * sizeof(float), e)))
		return rc;
	if ((flags & SCAN_ALLOC_CORNER_UVS) &&
	    (rc = alloc_one((void **)&s->corner_uvs, nf, 6 * sizeof(float), e)))
		return rc;
	if ((flags & SCAN_ALLOC_FACE_MATERIAL) &&
	    (rc = alloc_one((void **)&s->face_material, nf, sizeof(int32_t), e)))
		return rc;
	if ((flags & SCAN_ALLOC_FACE_COLORS) &&
	    (rc = alloc_one((void **)&s->face_colors, nf, 4, e)))
		return rc;
	return 0;
}

/*
 * Bounding box and non-finite count of positions[0 .. 3n).  The fast
 * pass runs min/max over the flat float array in 12 lanes (4 vertices),
 * which vectorises; it is exact when every coordinate is finite, which
 * it also checks.  Otherwise the per-vertex pass leaves out whole
 * vertices with any non-finite coordinate.
 */
static size_t bbox(const float *pos, size_t n, float lo[3], float hi[3])
{
	float l[12], h[12];
	int nonfinite = 0;
	size_t n12 = 3 * n / 12 * 12;
	for (int k = 0; k < 12; k++) {
		l[k] = INFINITY;
		h[k] = -INFINITY;
	}
	for (size_t j = 0; j < n12; j += 12) {
		for (int k = 0; k < 12; k++) {
			float v = pos[j + (size_t)k];
			l[k] = v < l[k] ? v : l[k];
			h[k] = v > h[k] ? v : h[k];
			nonfinite |= !(v - v == 0.0f);
		}
	}
	for (size_t j = n12; j < 3 * n; j++)
		nonfinite |= !(pos[j] - pos[j] == 0.0f);
	if (!nonfinite) {
		for (int k = 0; k < 3; k++) {
			lo[k] = INFINITY;
			hi[k] = -INFINITY;
		}
		for (int k = 0; k < 12; k++) {
			lo[k % 3] = l[k] < lo[k % 3] ? l[k] : lo[k % 3];
			hi[k % 3] = h[k] > hi[k % 3] ? h[k] : hi[k % 3];
		}
		for (size_t j = n12; j < 3 * n; j++) {
			lo[j % 3] = pos[j] < lo[j % 3] ? pos[j] : lo[j % 3];
			hi[j % 3] = pos[j] > hi[j % 3] ? pos[j] : hi[j % 3];
		}
		if (!n)
			for (int k = 0; k < 3; k++)
				lo[k] = hi[k] = 0.0f;
		return 0;
	}
	size_t bad = 0;
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		const float *p = pos + 3 * i;
		if (!(__builtin_isfinite(p[0]) && __builtin_isfinite(p[1]) &&
		      __builtin_isfinite(p[2]))) {
			bad++;
			continue;
		}
		for (int k = 0; k < 3; k++) {
			if (!any || p[k] < lo[k])
				lo[k] = p[k];
			if (!any || p[k] > hi[k])
				hi[k] = p[k];
		}
		any = true;
	}
	if (!any)
		for (int k = 0; k < 3; k++)
			lo[k] = hi[k] = 0.0f;
	return bad;
}

int scan_finalize(struct scan *s, struct err *e)
{
	s->n_nonfinite = bbox(s->positions, s->n_vertices, s->bbox_min, s->bbox_max);

	/* any index out of range?  (omp simd: vectorised also at -O2) */
	uint32_t over = 0;
	if (s->n_vertices <= UINT32_MAX) {
		const uint32_t *idx = s->indices, nv = (uint32_t)s->n_vertices;
		size_t n = 3 * s->n_faces;
#pragma omp simd reduction(|:over)
		for (size_t i = 0; i < n; i++)
			over |= idx[i] >= nv;
	}
	for (size_t f = 0; over && f < s->n_faces; f++) {
		for (int k = 0; k < 3; k++) {
			uint32_t v = s->indices[3 * f + k];
			if (v >= s->n_vertices)
				return err_set(e, ERR_FORMAT,
					       "face %zu: vertex index %u out of range (have %zu)",
					       f, v, s->n_vertices);
		}
	}
	if (s->n_nonfinite &&
	    scan_warn(s, "%zu vertices have non-finite coordinates (ignored for bbox and descriptors)",
		      s->n_nonfinite))
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

static const struct {
	const char *name;
	enum scan_units u;
} unit_names[] = {
	{ "mm", UNITS_MM }, { "millimeter", UNITS_MM }, { "millimeters", UNITS_MM },
	{ "millimetre", UNITS_MM }, { "millimetres", UNITS_MM },
	{ "cm", UNITS_CM }, { "centimeter", UNITS_CM }, { "centimeters", UNITS_CM },
	{ "centimetre", UNITS_CM }, { "centimetres", UNITS_CM },
	{ "m", UNITS_M }, { "meter", UNITS_M }, { "meters", UNITS_M },
	{ "metre", UNITS_M }, { "metres", UNITS_M },
	{ "in", UNITS_IN }, { "inch", UNITS_IN }, { "inches", UNITS_IN },
	{ "um", UNITS_UM }, { "micron", UNITS_UM }, { "microns", UNITS_UM },
	{ "micrometer", UNITS_UM }, { "micrometers", UNITS_UM },
};

enum scan_units scan_units_parse(const char *str, size_t len)
{
	for (size_t i = 0; i < sizeof(unit_names) / sizeof(unit_names[0]); i++)
		if (strlen(unit_names[i].name) == len &&
		    !strncasecmp(unit_names[i].name, str, len))
			return unit_names[i].u;
	return UNITS_UNKNOWN;
}

const char *scan_units_name(enum scan_units u)
{
	switch (u) {
	case UNITS_MM: return "mm";
	case UNITS_CM: return "cm";
	case UNITS_M: return "m";
	case UNITS_IN: return "in";
	case UNITS_UM: return "um";
	default: return "unknown";
	}
}

double scan_units_mm(enum scan_units u)
{
	switch (u) {
	case UNITS_MM: return 1.0;
	case UNITS_CM: return 10.0;
	case UNITS_M: return 1000.0;
	case UNITS_IN: return 25.4;
	case UNITS_UM: return 0.001;
	default: return 0.0;
	}
}
