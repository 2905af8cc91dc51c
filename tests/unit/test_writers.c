/*
 * test_writers.c - OBJ, MTL and STL writers (formats/writers.h): exact
 * byte layout, every attribute written and read back by the real readers,
 * atomic replacement, and clean failures (full disk, file size limit,
 * bad targets, bad indices, allocation failures).
 *
 * Files go to tests/build/ under the repository (REFSCAN_TOP, or the
 * current folder), removed at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/err.h"
#include "formats/formats.h"
#include "formats/image.h"
#include "formats/scan.h"
#include "formats/writers.h"
#include "tests/lib/gen.h"

static char tmpdir[600];

#define assert_near(a, b, tol) assert_near_at((a), (b), (tol), #a, __FILE__, __LINE__)
static void assert_near_at(double a, double b, double tol, const char *what,
			   const char *file, int line)
{
	if (!(fabs(a - b) <= tol))
		fail_msg("%s:%d: %s = %.9g, want %.9g +- %.3g", file, line, what, a, b, tol);
}

static int setup_tmp(void **state)
{
	(void)state;
	const char *top = getenv("REFSCAN_TOP");
	char base[512];
	snprintf(base, sizeof(base), "%s/tests/build", top ? top : ".");
	if (mkdir(base, 0777) != 0 && errno != EEXIST)
		return -1;
	snprintf(tmpdir, sizeof(tmpdir), "%s/writers-XXXXXX", base);
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int rm_entry(const char *p, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)type;
	(void)f;
	return remove(p);
}

static int teardown_tmp(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void path_in(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", tmpdir, name);
}

/* Whole file into a malloc'd buffer. */
static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	unsigned char *b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	b[n] = 0;
	*len = (size_t)n;
	return b;
}

/* Names in dir other than . and .. (for "nothing left behind"). */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	assert_non_null(d);
	for (struct dirent *de; (de = readdir(d));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float lef(const unsigned char *p)
{
	uint32_t u = le32(p);
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

/* A 20 x 10 mm rectangle in z = 2 as two triangles, normals +z. */
static void quad_scan(struct scan *s)
{
	struct err e;
	err_init(&e);
	scan_init(s);
	assert_int_equal(scan_alloc(s, 4, 2, SCAN_ALLOC_NORMALS, &e), 0);
	const float pos[12] = { 0, 0, 2, 20, 0, 2, 20, 10, 2, 0, 10, 2 };
	const uint32_t idx[6] = { 0, 1, 2, 0, 2, 3 };
	memcpy(s->positions, pos, sizeof(pos));
	memcpy(s->indices, idx, sizeof(idx));
	for (int v = 0; v < 4; v++) {
		s->normals[3 * v] = s->normals[3 * v + 1] = 0;
		s->normals[3 * v + 2] = 1;
	}
	s->n_vertices = 4;
	s->n_faces = s->n_polygons = 2;
	s->units = UNITS_MM;
	assert_int_equal(scan_finalize(s, &e), 0);
}

static void gen_small(struct scan *s, enum gen_color color, bool uvs)
{
	struct gen_params p;
	struct err e;
	err_init(&e);
	gen_params_init(&p);
	p.form = GEN_FORM_BLOB;
	p.material = GEN_MAT_SKIN;
	p.size_mm = 40;
	p.triangles = 3000;
	p.color = color;
	p.uvs = uvs;
	assert_int_equal(gen_scan(&p, s, NULL, &e), 0);
}

static void test_stl_binary_has_header_count_and_records(void **state)
{
	(void)state;
	char path[700];
	struct scan s;
	struct err e;
	size_t len;
	err_init(&e);
	quad_scan(&s);
	path_in(path, sizeof(path), "quad.stl");
	assert_int_equal(stl_write(path, &s, 0, &e), 0);
	unsigned char *b = slurp(path, &len);
	assert_int_equal(len, 84 + 50 * 2);
	/* readers take a header starting with "solid" for ascii */
	assert_true(memcmp(b, "solid", 5) != 0);
	for (int i = 0; i < 80; i++)
		assert_true(b[i] >= 0x20 && b[i] < 0x7F);
	assert_non_null(memmem(b, 80, "units mm", 8));
	assert_int_equal(le32(b + 80), 2);
	const unsigned char *r = b + 84;
	/* facet normal from the winding: +z */
	assert_true(lef(r) == 0.0f && lef(r + 4) == 0.0f && lef(r + 8) == 1.0f);
	const float want[9] = { 0, 0, 2, 20, 0, 2, 20, 10, 2 };
	for (int k = 0; k < 9; k++)
		assert_true(lef(r + 12 + 4 * k) == want[k]);
	assert_int_equal(r[48] | r[49] << 8, 0);
	const unsigned char *r2 = b + 84 + 50;
	assert_true(lef(r2 + 12 + 4 * 6) == 0.0f && lef(r2 + 12 + 4 * 7) == 10.0f);
	free(b);
	scan_release(&s);
}

static void test_stl_binary_size_is_84_plus_50_per_triangle(void **state)
{
	(void)state;
	char path[700];
	struct scan s;
	struct err e;
	size_t len;
	err_init(&e);
	gen_small(&s, GEN_COLOR_VERTEX, false);
	path_in(path, sizeof(path), "blob.stl");
	assert_int_equal(stl_write(path, &s, 0, &e), 0);
	unsigned char *b = slurp(path, &len);
	assert_int_equal(len, 84 + 50 * s.n_faces);
	assert_int_equal(le32(b + 80), s.n_faces);
	for (size_t f = 0; f < s.n_faces; f++) {
		const unsigned char *r = b + 84 + 50 * f;
		double n2 = 0;
		for (int k = 0; k < 3; k++)
			n2 += (double)lef(r + 4 * k) * lef(r + 4 * k);
		assert_near(n2, 1.0, 1e-5);
		/* the third corner of face f is the scan's vertex */
		const float *p = s.positions + 3 * s.indices[3 * f + 2];
		for (int k = 0; k < 3; k++)
			assert_true(lef(r + 36 + 4 * k) == p[k]);
	}
	free(b);
	scan_release(&s);
}

static void test_stl_ascii_lists_every_facet_exactly(void **state)
{
	(void)state;
	char path[700];
	struct scan s;
	struct err e;
	size_t len;
	err_init(&e);
	gen_small(&s, GEN_COLOR_NONE, false);
	path_in(path, sizeof(path), "blob-ascii.stl");
	assert_int_equal(stl_write(path, &s, 1, &e), 0);
	char *b = (char *)slurp(path, &len);
	assert_true(!strncmp(b, "solid refscan\n", 14));
	assert_true(len > 17 && !strcmp(b + len - 17, "endsolid refscan\n"));
	size_t facets = 0, verts = 0;
	for (char *p = b; (p = strstr(p, "facet normal")); p += 12)
		facets++;
	assert_int_equal(facets, s.n_faces);
	/* vertices round-trip exactly (9 significant digits) */
	char *p = b;
	while ((p = strstr(p, "vertex "))) {
		p += 7;
		size_t f = verts / 3, c = verts % 3;
		const float *q = s.positions + 3 * s.indices[3 * f + c];
		for (int k = 0; k < 3; k++) {
			char *end;
			float v = strtof(p, &end);
			assert_true(end != p);
			assert_true(v == q[k]);
			p = end;
		}
		verts++;
	}
	assert_int_equal(verts, 3 * s.n_faces);
	free(b);
	scan_release(&s);
}

/* Parse an OBJ written by obj_write and compare with s line by line. */
static void check_obj_text(const char *text, const struct scan *s, const char *mtl)
{
	size_t nv = 0, nvt = 0, nvn = 0, nf = 0, nusemtl = 0;
	int units = 0, lib = 0;
	const char *p = text;
	while (*p) {
		const char *eol = strchr(p, '\n');
		assert_non_null(eol);
		char *end;
		if (!strncmp(p, "# units mm", 10)) {
			units = 1;
		} else if (!strncmp(p, "mtllib ", 7)) {
			lib = mtl && !strncmp(p + 7, mtl, strlen(mtl));
		} else if (!strncmp(p, "v ", 2)) {
			const char *q = p + 2;
			for (int k = 0; k < 3; k++, q = end) {
				float v = strtof(q, &end);
				assert_true(v == s->positions[3 * nv + (size_t)k]);
			}
			if (s->colors) {
				for (int k = 0; k < 3; k++, q = end) {
					double c = strtod(q, &end);
					assert_true(end != q);
					assert_int_equal(lrint(c * 255.0), s->colors[4 * nv + (size_t)k]);
				}
			}
			assert_true(end == eol);
			nv++;
		} else if (!strncmp(p, "vt ", 3)) {
			const char *q = p + 3;
			const float *t = s->corner_uvs ? s->corner_uvs + 2 * nvt : s->uvs + 2 * nvt;
			for (int k = 0; k < 2; k++, q = end)
				assert_near(strtod(q, &end), t[k], 1e-6);
			nvt++;
		} else if (!strncmp(p, "vn ", 3)) {
			const char *q = p + 3;
			for (int k = 0; k < 3; k++, q = end)
				assert_near(strtod(q, &end), s->normals[3 * nvn + (size_t)k], 1e-6);
			nvn++;
		} else if (!strncmp(p, "usemtl ", 7)) {
			nusemtl++;
		} else if (!strncmp(p, "f ", 2)) {
			const char *q = p + 1;
			for (int k = 0; k < 3; k++) {
				unsigned long v = strtoul(q, &end, 10);
				assert_int_equal(v, s->indices[3 * nf + (size_t)k] + 1);
				q = end;
				if (s->uvs || s->corner_uvs) {
					assert_int_equal(*q, '/');
					unsigned long t = strtoul(q + 1, &end, 10);
					assert_int_equal(t, s->corner_uvs ? 3 * nf + (size_t)k + 1 : v);
					q = end;
				}
				if (s->normals) {
					assert_true(q[0] == '/' && (s->uvs || s->corner_uvs || q[1] == '/'));
					q += (s->uvs || s->corner_uvs) ? 1 : 2;
					assert_int_equal(strtoul(q, &end, 10), v);
					q = end;
				}
			}
			assert_true(q == eol);
			nf++;
		}
		p = eol + 1;
	}
	assert_int_equal(nv, s->n_vertices);
	assert_int_equal(nvt, s->corner_uvs ? 3 * s->n_faces : s->uvs ? s->n_vertices : 0);
	assert_int_equal(nvn, s->normals ? s->n_vertices : 0);
	assert_int_equal(nf, s->n_faces);
	assert_true(units == (s->units == UNITS_MM));
	assert_true(lib == (mtl != NULL));
	if (!s->face_material)
		assert_int_equal(nusemtl, s->n_materials ? 1 : 0);
}

static void test_obj_writes_every_vertex_attribute_and_face(void **state)
{
	(void)state;
	char path[700];
	struct scan s;
	struct err e;
	size_t len;
	err_init(&e);
	gen_small(&s, GEN_COLOR_VERTEX, true);
	path_in(path, sizeof(path), "blob.obj");
	assert_int_equal(obj_write(path, &s, "blob.mtl", &e), 0);
	char *b = (char *)slurp(path, &len);
	check_obj_text(b, &s, "blob.mtl");
	free(b);
	/* without normals and UVs the faces are bare indices */
	xfree(s.normals);
	s.normals = NULL;
	xfree(s.uvs);
	s.uvs = NULL;
	xfree(s.colors);
	s.colors = NULL;
	assert_int_equal(obj_write(path, &s, NULL, &e), 0);
	b = (char *)slurp(path, &len);
	check_obj_text(b, &s, NULL);
	free(b);
	scan_release(&s);
}

static void test_obj_corner_uvs_and_material_runs(void **state)
{
	(void)state;
	char path[700];
	struct scan s;
	struct err e;
	size_t len;
	err_init(&e);
	quad_scan(&s);
	assert_int_equal(scan_alloc(&s, 4, 2, SCAN_ALLOC_CORNER_UVS | SCAN_ALLOC_FACE_MATERIAL, &e), 0);
	for (int i = 0; i < 12; i++)
		s.corner_uvs[i] = (float)i / 16.0f;
	assert_int_equal(scan_material_intern(&s, "red", 3), 0);
	assert_int_equal(scan_material_intern(&s, "blue", 4), 1);
	s.face_material[0] = 1;
	s.face_material[1] = 0;
	path_in(path, sizeof(path), "quad.obj");
	assert_int_equal(obj_write(path, &s, "quad.mtl", &e), 0);
	char *b = (char *)slurp(path, &len);
	check_obj_text(b, &s, "quad.mtl");
	const char *u1 = strstr(b, "usemtl blue\nf 1/1/1 2/2/2 3/3/3\n");
	const char *u2 = strstr(b, "usemtl red\nf 1/4/1 3/5/3 4/6/4\n");
	assert_non_null(u1);
	assert_non_null(u2);
	assert_true(u1 < u2);
	free(b);
	scan_release(&s);
}

static void test_mtl_lists_materials_colours_and_textures(void **state)
{
	(void)state;
	char path[700];
	struct scan s;
	struct err e;
	size_t len;
	err_init(&e);
	scan_init(&s);
	assert_int_equal(scan_material_intern(&s, "skin", 4), 0);
	assert_int_equal(scan_material_intern(&s, "nail", 4), 1);
	assert_int_equal(scan_texture_add(&s, "tex/skin diffuse.png", 20), 0);
	s.materials[0].texture = 0;
	s.materials[1].kd[0] = 0.5f;
	s.materials[1].kd[1] = 0.25f;
	s.materials[1].kd[2] = 0.125f;
	path_in(path, sizeof(path), "two.mtl");
	assert_int_equal(mtl_write(path, &s, &e), 0);
	char *b = (char *)slurp(path, &len);
	assert_non_null(strstr(b, "\nnewmtl skin\nKa 0 0 0\nKd 0.8 0.8 0.8\n"));
	assert_non_null(strstr(b, "map_Kd tex/skin diffuse.png\n"));
	const char *nail = strstr(b, "\nnewmtl nail\n");
	assert_non_null(nail);
	assert_non_null(strstr(nail, "Kd 0.5 0.25 0.125\n"));
	assert_null(strstr(nail, "map_Kd"));
	/* the real MTL reader agrees */
	struct scan r;
	scan_init(&r);
	assert_int_equal(mtl_read((const unsigned char *)b, len, limits_default(), &r, &e), 0);
	assert_int_equal(r.n_materials, 2);
	assert_int_equal(r.n_textures, 1);
	assert_string_equal(r.textures[0].declared, "tex/skin diffuse.png");
	assert_int_equal(r.materials[1].texture, -1);
	assert_near(r.materials[1].kd[1], 0.25, 1e-6);
	scan_release(&r);
	free(b);
	scan_release(&s);
}

/* Read path back with the real readers and compare with what was written. */
static void check_read_back(const char *path, enum gen_format f, const struct scan *s)
{
	struct scan r;
	struct err e;
	err_init(&e);
	int rc = scan_read_file(path, NULL, &r, &e);
	if (rc)
		fail_msg("%s: %s", gen_format_name(f), e.msg);
	assert_int_equal(r.n_faces, s->n_faces);
	/* corner positions match for every format (STL welds its vertices) */
	for (size_t t = 0; t < s->n_faces; t++)
		for (int c = 0; c < 3; c++) {
			const float *a = s->positions + 3 * s->indices[3 * t + (size_t)c];
			const float *b = r.positions + 3 * r.indices[3 * t + (size_t)c];
			if (memcmp(a, b, 3 * sizeof(float)))
				fail_msg("%s: face %zu corner %d differs", gen_format_name(f), t, c);
		}
	if (f == GEN_FMT_STL || f == GEN_FMT_STL_ASCII) {
		scan_release(&r);
		return;
	}
	assert_int_equal(r.n_vertices, s->n_vertices);
	assert_memory_equal(r.indices, s->indices, 3 * s->n_faces * sizeof(uint32_t));
	assert_int_equal(r.units, UNITS_MM);
	assert_true((r.normals != NULL) == (s->normals != NULL));
	for (size_t v = 0; s->normals && v < 3 * s->n_vertices; v++)
		assert_near(r.normals[v], s->normals[v], 1e-6);
	assert_true((r.colors != NULL) == (s->colors != NULL));
	if (s->colors)
		for (size_t v = 0; v < s->n_vertices; v++)
			assert_memory_equal(r.colors + 4 * v, s->colors + 4 * v, 3);
	if (s->uvs) {
		/* per vertex (PLY) or per corner (OBJ vt) */
		assert_true(r.uvs || r.corner_uvs);
		for (size_t t = 0; t < s->n_faces; t++)
			for (int c = 0; c < 3; c++) {
				uint32_t v = s->indices[3 * t + (size_t)c];
				const float *w = s->uvs + 2 * v;
				const float *g = r.corner_uvs ? r.corner_uvs + 6 * t + 2 * c : r.uvs + 2 * v;
				assert_near(g[0], w[0], 1e-6);
				assert_near(g[1], w[1], 1e-6);
			}
	}
	if (s->n_textures) {
		assert_int_equal(r.n_textures, 1);
		assert_string_equal(r.textures[0].declared, s->textures[0].declared);
		assert_true(r.textures[0].exists);
	}
	scan_release(&r);
}

static void test_generated_scans_read_back_in_every_format(void **state)
{
	(void)state;
	for (int f = 0; f < GEN_N_FORMATS; f++) {
		for (int color = 0; color < GEN_N_COLORS; color++) {
			char path[700], name[64], tex[64];
			struct gen_params p;
			struct scan s;
			struct image img;
			struct err e;
			err_init(&e);
			gen_params_init(&p);
			p.form = GEN_FORM_TORUS;
			p.material = GEN_MAT_FABRIC;
			p.size_mm = 30;
			p.triangles = 2000;
			p.color = (enum gen_color)color;
			p.texture_px = 32;
			snprintf(name, sizeof(name), "rb-%d-%d.%s", f, color,
				 gen_format_ext((enum gen_format)f));
			snprintf(tex, sizeof(tex), "rb-%d-%d.png", f, color);
			p.texture_name = tex;
			path_in(path, sizeof(path), name);
			assert_int_equal(gen_scan(&p, &s, &img, &e), 0);
			if (gen_write(path, (enum gen_format)f, &s, &img, &e))
				fail_msg("%s: %s", name, e.msg);
			check_read_back(path, (enum gen_format)f, &s);
			scan_release(&s);
			image_release(&img);
		}
	}
}

static void test_writes_are_deterministic(void **state)
{
	(void)state;
	char a[700], b[700];
	struct scan s;
	struct err e;
	size_t la, lb;
	err_init(&e);
	gen_small(&s, GEN_COLOR_VERTEX, true);
	for (int ascii = 0; ascii < 2; ascii++) {
		path_in(a, sizeof(a), "det-a.stl");
		path_in(b, sizeof(b), "det-b.stl");
		assert_int_equal(stl_write(a, &s, ascii, &e), 0);
		assert_int_equal(stl_write(b, &s, ascii, &e), 0);
		unsigned char *x = slurp(a, &la), *y = slurp(b, &lb);
		assert_int_equal(la, lb);
		assert_memory_equal(x, y, la);
		free(x);
		free(y);
	}
	path_in(a, sizeof(a), "det-a.obj");
	path_in(b, sizeof(b), "det-b.obj");
	assert_int_equal(obj_write(a, &s, NULL, &e), 0);
	assert_int_equal(obj_write(b, &s, NULL, &e), 0);
	unsigned char *x = slurp(a, &la), *y = slurp(b, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(x, y, la);
	free(x);
	free(y);
	scan_release(&s);
}

static void test_stream_writers_report_a_full_disk(void **state)
{
	(void)state;
	struct scan s;
	struct err e;
	gen_small(&s, GEN_COLOR_NONE, false);
	for (int w = 0; w < 4; w++) {
		FILE *fp = fopen("/dev/full", "w");
		if (!fp)
			skip();
		err_init(&e);
		int rc = w == 0 ? obj_write_stream(fp, &s, NULL, &e) :
			 w == 1 ? stl_write_stream(fp, &s, 0, &e) :
			 w == 2 ? stl_write_stream(fp, &s, 1, &e) :
				  mtl_write_stream(fp, &s, &e);
		fclose(fp);
		assert_int_equal(rc, ERR_IO);
		assert_non_null(strstr(e.msg, "write failed"));
		assert_non_null(strstr(e.msg, "No space left on device"));
	}
	scan_release(&s);
}

static void test_failed_write_keeps_the_old_file_and_leaves_no_temp(void **state)
{
	(void)state;
	char dir[700], path[760];
	struct scan big, old;
	struct err e;
	size_t len;
	err_init(&e);
	path_in(dir, sizeof(dir), "efbig");
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/scan.stl", dir);
	quad_scan(&old);
	assert_int_equal(stl_write(path, &old, 0, &e), 0);
	gen_small(&big, GEN_COLOR_NONE, false);
	for (int w = 0; w < 3; w++) {
		struct rlimit was, small;
		assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
		small = was;
		small.rlim_cur = 4096;
		void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
		assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
		int rc = w == 0 ? stl_write(path, &big, 0, &e) :
			 w == 1 ? stl_write(path, &big, 1, &e) : obj_write(path, &big, NULL, &e);
		assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
		signal(SIGXFSZ, prev);
		assert_int_equal(rc, ERR_IO);
		assert_non_null(strstr(e.msg, "File too large"));
		assert_string_equal(e.path, path);
		/* the previous file is intact and alone */
		assert_int_equal(count_entries(dir), 1);
		unsigned char *b = slurp(path, &len);
		assert_int_equal(len, 84 + 2 * 50);
		free(b);
	}
	scan_release(&big);
	scan_release(&old);
}

static void test_writers_refuse_bad_targets(void **state)
{
	(void)state;
	char path[700];
	struct scan s;
	struct err e;
	err_init(&e);
	quad_scan(&s);
	path_in(path, sizeof(path), "adir");
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(stl_write(path, &s, 0, &e), ERR_IO);
	assert_non_null(strstr(e.msg, "not a regular file"));
	assert_int_equal(count_entries(path), 0);
	path_in(path, sizeof(path), "no/such/dir/x.obj");
	assert_int_equal(obj_write(path, &s, NULL, &e), ERR_IO);
	assert_non_null(strstr(e.msg, "cannot create"));
	assert_non_null(strstr(e.msg, "No such file or directory"));
	assert_int_equal(mtl_write(path, &s, &e), ERR_IO);
	scan_release(&s);
}

static void test_writers_reject_out_of_range_indices(void **state)
{
	(void)state;
	char dir[700], path[760];
	struct scan s;
	struct err e;
	err_init(&e);
	quad_scan(&s);
	s.indices[4] = 7;
	path_in(dir, sizeof(dir), "badidx");
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/x.obj", dir);
	assert_int_equal(obj_write(path, &s, NULL, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "face 1: vertex index 7 out of range (have 4)");
	snprintf(path, sizeof(path), "%s/x.stl", dir);
	assert_int_equal(stl_write(path, &s, 0, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "face 1: vertex index 7 out of range (have 4)");
	assert_int_equal(count_entries(dir), 0);
	scan_release(&s);
}

static void test_stl_refuses_point_clouds(void **state)
{
	(void)state;
	char path[700];
	struct scan s;
	struct err e;
	err_init(&e);
	quad_scan(&s);
	s.n_faces = 0;
	path_in(path, sizeof(path), "cloud.stl");
	assert_int_equal(stl_write(path, &s, 0, &e), ERR_UNSUPPORTED);
	assert_non_null(strstr(e.msg, "point cloud (4 points"));
	assert_int_equal(access(path, F_OK), -1);
	/* an OBJ holds bare vertices */
	path_in(path, sizeof(path), "cloud.obj");
	assert_int_equal(obj_write(path, &s, NULL, &e), 0);
	s.n_faces = 2;
	scan_release(&s);
}

static void test_writers_fail_cleanly_when_allocations_fail(void **state)
{
	(void)state;
	char dir[700], path[760];
	struct scan s;
	err_init(NULL);
	quad_scan(&s);
	path_in(dir, sizeof(dir), "oom");
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/x.obj", dir);
	int ok = 0;
	for (long n = 0; n < 20 && !ok; n++) {
		struct err e;
		err_init(&e);
		alloc_fail_after(n);
		int rc = obj_write(path, &s, NULL, &e);
		alloc_fail_after(-1);
		if (rc == 0) {
			ok = 1;
		} else {
			assert_int_equal(rc, ERR_NOMEM);
			assert_int_equal(count_entries(dir), 0);
		}
	}
	assert_true(ok);
	assert_int_equal(count_entries(dir), 1);
	scan_release(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stl_binary_has_header_count_and_records),
		cmocka_unit_test(test_stl_binary_size_is_84_plus_50_per_triangle),
		cmocka_unit_test(test_stl_ascii_lists_every_facet_exactly),
		cmocka_unit_test(test_obj_writes_every_vertex_attribute_and_face),
		cmocka_unit_test(test_obj_corner_uvs_and_material_runs),
		cmocka_unit_test(test_mtl_lists_materials_colours_and_textures),
		cmocka_unit_test(test_generated_scans_read_back_in_every_format),
		cmocka_unit_test(test_writes_are_deterministic),
		cmocka_unit_test(test_stream_writers_report_a_full_disk),
		cmocka_unit_test(test_failed_write_keeps_the_old_file_and_leaves_no_temp),
		cmocka_unit_test(test_writers_refuse_bad_targets),
		cmocka_unit_test(test_writers_reject_out_of_range_indices),
		cmocka_unit_test(test_stl_refuses_point_clouds),
		cmocka_unit_test(test_writers_fail_cleanly_when_allocations_fail),
	};
	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
