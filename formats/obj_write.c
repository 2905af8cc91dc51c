/*
 * obj_write.c - Wavefront OBJ writer (see writers.h).
 *
 * Spec: https://paulbourke.net/dataformats/obj/ (v, vt, vn, f, usemtl,
 * mtllib).  Vertex colours use the widespread `v x y z r g b` extension
 * (MeshLab, ZBrush, many scanner exports) with components in 0..1.
 *
 * Invariants: indices are 1-based in the file; vt indices follow the vn
 * layout chosen once per file (per vertex, or per corner when the scan has
 * corner UVs), so every face line has the same shape.
 */
#include "writers.h"
#include "scan.h"
#include "../common/err.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../common/banned.h"

/* Decimal digits of v into p (no NUL); returns the length. */
static size_t put_u64(char *p, uint64_t v)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

static int io_fail(struct err *e, const char *what)
{
	return err_set_errno(e, ERR_IO, "write failed (%s)", what);
}

int obj_write_stream(FILE *fp, const struct scan *s, const char *mtl_name,
		     struct err *e)
{
	const size_t nv = s->n_vertices, nf = s->n_faces;
	const bool corner = s->corner_uvs != NULL && nf > 0;
	const bool has_vt = corner || s->uvs != NULL;
	const bool has_vn = s->normals != NULL;
	char line[256];

	if (fprintf(fp, "# written by refscan\n") < 0)
		return io_fail(e, "header");
	if (s->units != UNITS_UNKNOWN &&
	    fprintf(fp, "# units %s\n", scan_units_name(s->units)) < 0)
		return io_fail(e, "header");
	if (mtl_name && fprintf(fp, "mtllib %s\n", mtl_name) < 0)
		return io_fail(e, "header");
	if (fprintf(fp, "# %zu vertices, %zu triangles\n", nv, nf) < 0)
		return io_fail(e, "header");

	for (size_t i = 0; i < nv; i++) {
		const float *p = s->positions + 3 * i;
		int n;
		if (s->colors) {
			const uint8_t *c = s->colors + 4 * i;
			n = snprintf(line, sizeof(line), "v %.9g %.9g %.9g %.6g %.6g %.6g\n",
				     (double)p[0], (double)p[1], (double)p[2],
				     c[0] / 255.0, c[1] / 255.0, c[2] / 255.0);
		} else {
			n = snprintf(line, sizeof(line), "v %.9g %.9g %.9g\n",
				     (double)p[0], (double)p[1], (double)p[2]);
		}
		if (fwrite(line, 1, (size_t)n, fp) != (size_t)n)
			return io_fail(e, "vertex");
	}
	if (corner) {
		for (size_t i = 0; i < 3 * nf; i++) {
			const float *t = s->corner_uvs + 2 * i;
			int n = snprintf(line, sizeof(line), "vt %.7g %.7g\n",
					 (double)t[0], (double)t[1]);
			if (fwrite(line, 1, (size_t)n, fp) != (size_t)n)
				return io_fail(e, "texture coordinate");
		}
	} else if (s->uvs) {
		for (size_t i = 0; i < nv; i++) {
			const float *t = s->uvs + 2 * i;
			int n = snprintf(line, sizeof(line), "vt %.7g %.7g\n",
					 (double)t[0], (double)t[1]);
			if (fwrite(line, 1, (size_t)n, fp) != (size_t)n)
				return io_fail(e, "texture coordinate");
		}
	}
	if (has_vn) {
		for (size_t i = 0; i < nv; i++) {
			const float *q = s->normals + 3 * i;
			int n = snprintf(line, sizeof(line), "vn %.7g %.7g %.7g\n",
					 (double)q[0], (double)q[1], (double)q[2]);
			if (fwrite(line, 1, (size_t)n, fp) != (size_t)n)
				return io_fail(e, "normal");
		}
	}

	int32_t cur = -1;
	if (!s->face_material && s->n_materials > 0 && nf > 0) {
		if (fprintf(fp, "usemtl %s\n", s->materials[0].name) < 0)
			return io_fail(e, "usemtl");
	}
	for (size_t f = 0; f < nf; f++) {
		if (s->face_material) {
			int32_t m = s->face_material[f];
			/*
			 * OBJ cannot return to "no material": a face with -1
			 * after a material keeps the one before it.
			 */
			if (m >= 0 && m != cur && (size_t)m < s->n_materials) {
				if (fprintf(fp, "usemtl %s\n", s->materials[m].name) < 0)
					return io_fail(e, "usemtl");
				cur = m;
			}
		}
		char *p = line;
		*p++ = 'f';
		for (int k = 0; k < 3; k++) {
			uint32_t v = s->indices[3 * f + k];
			if (v >= nv)
				return err_set(e, ERR_FORMAT,
					       "face %zu: vertex index %u out of range (have %zu)",
					       f, v, nv);
			*p++ = ' ';
			p += put_u64(p, (uint64_t)v + 1);
			if (has_vt) {
				*p++ = '/';
				p += put_u64(p, corner ? (uint64_t)(3 * f + (size_t)k) + 1
						       : (uint64_t)v + 1);
			}
			if (has_vn) {
				*p++ = '/';
				if (!has_vt)
					*p++ = '/';
				p += put_u64(p, (uint64_t)v + 1);
			}
		}
		*p++ = '\n';
		size_t n = (size_t)(p - line);
		if (fwrite(line, 1, n, fp) != n)
			return io_fail(e, "face");
	}
	if (fflush(fp) != 0 || ferror(fp))
		return io_fail(e, "flush");
	return 0;
}

int obj_write(const char *path, const struct scan *s, const char *mtl_name,
	      struct err *e)
{
	struct wfile w;
	int rc = wfile_open(&w, path, e);
	if (rc)
		return rc;
	rc = obj_write_stream(w.fp, s, mtl_name, e);
	if (rc) {
		wfile_abort(&w);
		err_set_path(e, path);
		return rc;
	}
	return wfile_commit(&w, e);
}
