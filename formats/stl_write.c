/*
 * stl_write.c - STL writer, binary and ascii (see writers.h).
 *
 * Spec: https://www.fabbers.com/tech/STL_Format (3D Systems, 1989).
 * Binary: 80-byte header, uint32 triangle count, then per triangle a
 * normal, three vertices (12 little-endian float32 in all) and a uint16
 * attribute count, 50 bytes.  The header must not begin with "solid":
 * many readers take that as the ascii form.  The per-facet normal is
 * recomputed from the vertex order (right-hand rule), as STL expects.
 */
#include "writers.h"
#include "scan.h"
#include "../common/err.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../common/banned.h"

#define STL_HEADER_BYTES 80
#define STL_RECORD_BYTES 50
#define STL_BATCH 1024 /* triangles per fwrite (50 KiB on the stack) */

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void put_f32(unsigned char *p, float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	put_le32(p, u);
}

/* Unit normal of triangle f (0,0,0 when degenerate). */
static void facet_normal(const struct scan *s, size_t f, float n[3])
{
	const uint32_t *t = s->indices + 3 * f;
	const float *a = s->positions + 3 * t[0];
	const float *b = s->positions + 3 * t[1];
	const float *c = s->positions + 3 * t[2];
	double u[3], v[3], w[3];
	for (int k = 0; k < 3; k++) {
		u[k] = (double)b[k] - (double)a[k];
		v[k] = (double)c[k] - (double)a[k];
	}
	w[0] = u[1] * v[2] - u[2] * v[1];
	w[1] = u[2] * v[0] - u[0] * v[2];
	w[2] = u[0] * v[1] - u[1] * v[0];
	double len = sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
	for (int k = 0; k < 3; k++)
		n[k] = len > 0 && isfinite(len) ? (float)(w[k] / len) : 0.0f;
}

static int check_faces(const struct scan *s, struct err *e)
{
	for (size_t f = 0; f < s->n_faces; f++)
		for (int k = 0; k < 3; k++)
			if (s->indices[3 * f + k] >= s->n_vertices)
				return err_set(e, ERR_FORMAT,
					       "face %zu: vertex index %u out of range (have %zu)",
					       f, s->indices[3 * f + k], s->n_vertices);
	return 0;
}

static int write_binary(FILE *fp, const struct scan *s, struct err *e)
{
	unsigned char hdr[STL_HEADER_BYTES + 4];
	unsigned char out[STL_BATCH * STL_RECORD_BYTES];

	if (s->n_faces > UINT32_MAX)
		return err_set(e, ERR_LIMIT, "%zu triangles do not fit a binary STL (limit %u)",
			       s->n_faces, UINT32_MAX);
	memset(hdr, ' ', STL_HEADER_BYTES);
	const char *title = s->units != UNITS_UNKNOWN ?
		"binary STL written by refscan, units " : "binary STL written by refscan";
	int n = snprintf((char *)hdr, STL_HEADER_BYTES, "%s%s", title,
			 s->units != UNITS_UNKNOWN ? scan_units_name(s->units) : "");
	if (n > 0 && n < STL_HEADER_BYTES)
		hdr[n] = ' '; /* snprintf's NUL: keep the header printable */
	put_le32(hdr + STL_HEADER_BYTES, (uint32_t)s->n_faces);
	if (fwrite(hdr, 1, sizeof(hdr), fp) != sizeof(hdr))
		return err_set_errno(e, ERR_IO, "write failed (header)");

	size_t in_batch = 0;
	for (size_t f = 0; f < s->n_faces; f++) {
		unsigned char *r = out + in_batch * STL_RECORD_BYTES;
		float nrm[3];
		facet_normal(s, f, nrm);
		for (int k = 0; k < 3; k++)
			put_f32(r + 4 * k, nrm[k]);
		for (int c = 0; c < 3; c++) {
			const float *p = s->positions + 3 * s->indices[3 * f + c];
			for (int k = 0; k < 3; k++)
				put_f32(r + 12 + 12 * c + 4 * k, p[k]);
		}
		r[48] = r[49] = 0;
		if (++in_batch == STL_BATCH || f + 1 == s->n_faces) {
			size_t bytes = in_batch * STL_RECORD_BYTES;
			if (fwrite(out, 1, bytes, fp) != bytes)
				return err_set_errno(e, ERR_IO, "write failed (triangle %zu)", f);
			in_batch = 0;
		}
	}
	return 0;
}

static int write_ascii(FILE *fp, const struct scan *s, struct err *e)
{
	if (fputs("solid refscan\n", fp) == EOF)
		goto io;
	for (size_t f = 0; f < s->n_faces; f++) {
		float nrm[3];
		facet_normal(s, f, nrm);
		if (fprintf(fp, "  facet normal %.7g %.7g %.7g\n    outer loop\n",
			    (double)nrm[0], (double)nrm[1], (double)nrm[2]) < 0)
			goto io;
		for (int c = 0; c < 3; c++) {
			const float *p = s->positions + 3 * s->indices[3 * f + c];
			if (fprintf(fp, "      vertex %.9g %.9g %.9g\n",
				    (double)p[0], (double)p[1], (double)p[2]) < 0)
				goto io;
		}
		if (fputs("    endloop\n  endfacet\n", fp) == EOF)
			goto io;
	}
	if (fputs("endsolid refscan\n", fp) == EOF)
		goto io;
	return 0;
io:
	return err_set_errno(e, ERR_IO, "write failed");
}

int stl_write_stream(FILE *fp, const struct scan *s, int ascii, struct err *e)
{
	int rc;
	if (s->n_faces == 0 && s->n_vertices > 0)
		return err_set(e, ERR_UNSUPPORTED,
			       "STL cannot hold a point cloud (%zu points, no triangles)",
			       s->n_vertices);
	if ((rc = check_faces(s, e)))
		return rc;
	rc = ascii ? write_ascii(fp, s, e) : write_binary(fp, s, e);
	if (rc)
		return rc;
	if (fflush(fp) != 0 || ferror(fp))
		return err_set_errno(e, ERR_IO, "write failed (flush)");
	return 0;
}

int stl_write(const char *path, const struct scan *s, int ascii, struct err *e)
{
	struct wfile w;
	int rc = wfile_open(&w, path, e);
	if (rc)
		return rc;
	rc = stl_write_stream(w.fp, s, ascii, e);
	if (rc) {
		wfile_abort(&w);
		err_set_path(e, path);
		return rc;
	}
	return wfile_commit(&w, e);
}
