/*
 * eval_retrieval.c - retrieval quality of the descriptors, the number we
 * steer by (scripts/eval-retrieval runs it on the usual corpora).
 *
 *   eval_retrieval [options] PATH...       reference scans (files or folders)
 *   eval_retrieval [options] --gen         a generated forms x materials corpus
 *
 * References are described once.  For each perturbation type each
 * reference gives --queries seeded perturbed copies (rigid motion and
 * scale 0.4-2.5x, noise along the normals, 4x decimation, point sampling,
 * a 30% planar crop, combinations, one scanner position, holes, stray
 * specks, a cloud of graded density, midpoint subdivision, Taubin
 * smoothing); every query is described and
 * searched exactly (brute force, squared L2 over the whole vector) among
 * the references.  Printed per perturbation: top-1, top-5 and mAP, for the
 * descriptor and, in the same run, for a D2-only baseline (the D2
 * histogram of the same samples, Osada et al. 2002).
 *
 * With --cla FILE (Princeton Shape Benchmark class file; model names are
 * file stems or 0-based indices) each reference also queries the others
 * and the class nearest neighbour, first tier, second tier, DCG and mAP
 * are printed (Shilane et al., SMI 2004).  --gen does the same with the
 * relief material as the class ("material M on form A finds material M on
 * the other forms").  --same FILE lists groups of references that are the
 * same object up to similarity (same .cla format); a query that finds any
 * member of its group counts as correct.  --copies finds such groups by
 * geometry: references whose surfaces coincide once position, size,
 * orientation and handedness are normalised away (one model exported to
 * several files, spheres of several tessellations), which no descriptor
 * invariant to those can, or should, tell apart.
 *
 * Output: a text table, or with --json one object per line.  Exit 0, 64
 * usage, 66 no references, 70 when a description fails.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* the generator and its perturbations are shared with the tests */
#include "../lib/gen.c"

#include "common/exitcodes.h"
#include "common/out.h"
#include "formats/formats.h"
#include "formats/image.h"
#include "indexer/describe.h"
#include "indexer/desc_int.h"
#include "query/rank.h"
#include "common/err.h"
#include "common/alloc.h"

#include "common/banned.h"

static const char eval_usage[] =
	"usage: eval_retrieval [options] PATH...\n"
	"       eval_retrieval [options] --gen\n"
	"\n"
	"Describe reference scans, make seeded perturbed queries, search exactly\n"
	"and print top-1, top-5 and mAP per perturbation, next to a D2 baseline.\n"
	"\n"
	"  --gen               generated corpus: every form x material\n"
	"  --forms N           --gen: first N forms (default all 7)\n"
	"  --materials N       --gen: first N materials incl. none (default all 9)\n"
	"  --triangles N       --gen: triangles per scan (default 60000)\n"
	"  --spacing-mm S      --gen: instead, as many triangles as sample each\n"
	"                      surface every S mm (a scanner's resolution), at\n"
	"                      least 20000 and at most --triangles\n"
	"  --colour            --gen: vary colour (vertex, texture); default none\n"
	"  --photo-relief LIST --gen: instead of the generator's materials, relief\n"
	"                      from photographs (comma list of PNG/JPEG files),\n"
	"                      each at 40 and 100 mm per image width: the classes\n"
	"                      of the material task; every form 80 mm, 0.5 mm deep\n"
	"  --min-faces N       skip references with fewer faces (default 200)\n"
	"  --queries N         queries per reference and perturbation (default 1)\n"
	"  --perturb LIST      comma list of rigid,noise,noise-strong,decimate,\n"
	"                      points,crop,combo,view,holes,outliers,density,\n"
	"                      subdivide,smooth,winding,noise-spacing\n"
	"                      (default all); NAME:V sets a strength: noise:S and\n"
	"                      noise-strong:S (sigma as a fraction of the\n"
	"                      diagonal, default 0.0005, 0.002), decimate:F\n"
	"                      (factor, default 4), points:F (points per vertex,\n"
	"                      default 1), crop:K (kept, default 0.7), holes:F\n"
	"                      (share cut in 5 holes, default 0.1), outliers:F\n"
	"                      (stray triangles per face, default 0.01),\n"
	"                      density:R (a cloud R times denser at one end,\n"
	"                      default 10), subdivide:L (midpoint levels, 1-3,\n"
	"                      default 1), smooth:N (Taubin iterations, default\n"
	"                      10), winding:F (share of triangles turned,\n"
	"                      default 0.5; 1: inside out), noise-spacing:F\n"
	"                      (sigma in point spacings, default 0.3)\n"
	"  --cla FILE          class file: also class retrieval figures\n"
	"  --same FILE         groups of references that are the same object\n"
	"  --copies            also group references whose surfaces coincide after\n"
	"                      normalising position, size, orientation and\n"
	"                      handedness (one model saved to several files)\n"
	"  --no-views          rank references by their own vectors only, not also\n"
	"                      by their views' (as `refscan index` stores them)\n"
	"  --fine-always       compare the fine cues of every pair, as the ranking\n"
	"                      did before it left them out of pairs of unlike\n"
	"                      noise (rank.h, Noise): the same run's peer\n"
	"  --surface           with --gen or --photo-relief: the perturbed queries\n"
	"                      ask the surface question (surface preset, as\n"
	"                      `refscan query --surface`): a query is right when it\n"
	"                      finds its material on another form, its own\n"
	"                      reference left out\n"
	"  --seed K            seed of the queries and of --gen (default 1)\n"
	"  --threads N         OpenMP threads (default all)\n"
	"  --verbose           name every query whose top-1 is wrong\n"
	"  --dump FILE         write the vectors as text lines: \"ref NAME CLASS GROUP\n"
	"                      v...\" and \"query PERTURBATION REF v...\"\n"
	"  --json              one JSON object per line\n"
	"  --name NAME         the task name in JSON rows (default references or\n"
	"                      generated; classes get NAME-classes or NAME-material)\n"
	"  -h, --help          show this help\n";

enum {
	OPT_GEN = 256, OPT_FORMS, OPT_MATS, OPT_TRIS, OPT_COLOUR, OPT_MINF,
	OPT_QUERIES, OPT_PERTURB, OPT_CLA, OPT_SAME, OPT_SEED, OPT_THREADS,
	OPT_VERBOSE, OPT_JSON, OPT_DUMP, OPT_NAME, OPT_SPACING, OPT_COPIES, OPT_PHOTO,
	OPT_NO_VIEWS, OPT_SURFACE, OPT_FINE_ALWAYS,
};

static const struct option eval_options[] = {
	{ "gen", no_argument, NULL, OPT_GEN },
	{ "forms", required_argument, NULL, OPT_FORMS },
	{ "materials", required_argument, NULL, OPT_MATS },
	{ "triangles", required_argument, NULL, OPT_TRIS },
	{ "spacing-mm", required_argument, NULL, OPT_SPACING },
	{ "colour", no_argument, NULL, OPT_COLOUR },
	{ "min-faces", required_argument, NULL, OPT_MINF },
	{ "queries", required_argument, NULL, OPT_QUERIES },
	{ "perturb", required_argument, NULL, OPT_PERTURB },
	{ "cla", required_argument, NULL, OPT_CLA },
	{ "same", required_argument, NULL, OPT_SAME },
	{ "copies", no_argument, NULL, OPT_COPIES },
	{ "photo-relief", required_argument, NULL, OPT_PHOTO },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "dump", required_argument, NULL, OPT_DUMP },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "no-views", no_argument, NULL, OPT_NO_VIEWS },
	{ "surface", no_argument, NULL, OPT_SURFACE },
	{ "fine-always", no_argument, NULL, OPT_FINE_ALWAYS },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

enum pert {
	P_RIGID, P_NOISE, P_NOISE_STRONG, P_DECIMATE, P_POINTS, P_CROP, P_COMBO, P_VIEW,
	P_HOLES, P_OUTLIERS, P_DENSITY, P_SUBDIVIDE, P_SMOOTH, P_WINDING, P_NOISE_SPACING,
	N_PERT
};
static const char *const pert_names[N_PERT] = {
	"rigid", "noise", "noise-strong", "decimate", "points", "crop", "combo", "view",
	"holes", "outliers", "density", "subdivide", "smooth", "winding", "noise-spacing",
};

/* One row of the table: a perturbation at a strength (NAN: its default). */
struct run {
	enum pert p;
	double v;
	char label[48];
};
#define MAX_RUNS 32

struct ref {
	char *name;          /* file stem or form/material */
	struct scan s;
	struct image *tex;   /* aligned with s.textures, or NULL */
	size_t n_tex;
	float *v;            /* descriptor record: own vector, then DESC_VIEWS views' */
	struct desc_info info;
	int cls;             /* class index, -1 none */
	int group;           /* same-object group, own index when none */
};

struct refs {
	struct ref *r;
	size_t n, cap;
	/* the described references as rank_search() reads them (refs_table) */
	int64_t *ids;
	float *vecs;
	size_t views; /* views per reference ranked (0 or DESC_VIEWS) */
};

static size_t dim;
static int n_threads;
static uint64_t seed = 1;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int add_ref(struct refs *R, const char *name, struct scan *s,
		   struct image *tex, size_t n_tex)
{
	if (R->n == R->cap) {
		size_t cap = R->cap ? 2 * R->cap : 64;
		struct ref *nr = realloc_array(R->r, cap, sizeof(*nr));
		if (!nr)
			return ERR_NOMEM;
		R->r = nr;
		R->cap = cap;
	}
	struct ref *r = &R->r[R->n];
	memset(r, 0, sizeof(*r));
	r->name = xstrdup(name);
	r->s = *s;
	r->tex = tex;
	r->n_tex = n_tex;
	r->cls = -1;
	r->group = (int)R->n;
	R->n++;
	return r->name ? 0 : ERR_NOMEM;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collect scan files under path (sorted, recursive). */
static int collect(const char *path, char ***list, size_t *n, size_t *cap)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		out_error("cannot read '%s': %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (*n == *cap) {
			*cap = *cap ? 2 * *cap : 64;
			char **nl = realloc_array(*list, *cap, sizeof(char *));
			if (!nl)
				return -1;
			*list = nl;
		}
		(*list)[(*n)++] = xstrdup(path);
		return 0;
	}
	DIR *d = opendir(path);
	if (!d) {
		out_error("cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t nn = 0, nc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (nn == nc) {
			nc = nc ? 2 * nc : 64;
			char **t = realloc_array(names, nc, sizeof(char *));
			if (!t)
				break;
			names = t;
		}
		names[nn++] = xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, nn, sizeof(char *), cmp_str);
	for (size_t i = 0; i < nn; i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", path, names[i]);
		struct stat s2;
		if (stat(p, &s2) == 0 && (S_ISDIR(s2.st_mode) || format_is_scan_name(p)))
			collect(p, list, n, cap);
		xfree(names[i]);
	}
	xfree(names);
	return 0;
}

static const char *stem_of(const char *path, char *buf, size_t n)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	snprintf(buf, n, "%s", b);
	char *dot = strrchr(buf, '.');
	if (dot && dot != buf)
		*dot = 0;
	return buf;
}

static int load_files(struct refs *R, char **files, size_t n, size_t min_faces)
{
	for (size_t i = 0; i < n; i++) {
		struct scan s;
		struct err e;
		struct image *tex = NULL;
		size_t failed = 0;
		char stem[256];
		err_init(&e);
		if (scan_read_file(files[i], NULL, &s, &e) < 0 || s.n_faces < min_faces) {
			scan_release(&s);
			continue;
		}
		if (describe_load_textures(&s, NULL, &tex, &failed, &e) < 0) {
			scan_release(&s);
			continue;
		}
		if (add_ref(R, stem_of(files[i], stem, sizeof(stem)), &s, tex, s.n_textures) < 0)
			return -1;
	}
	return 0;
}

/*
 * Triangles that sample p's surface at spacing_mm (vertices ~ area /
 * spacing^2, two triangles a vertex), measured on a coarse copy, within
 * [20000, max_tris].  0 when the coarse copy cannot be made.
 */
static size_t tris_for_spacing(const struct gen_params *p0, double spacing, size_t max_tris)
{
	struct gen_params p = *p0;
	struct scan s;
	struct err e;
	err_init(&e);
	scan_init(&s);
	p.triangles = 4000;
	p.color = GEN_COLOR_NONE;
	p.texture_name = NULL;
	size_t t = 0;
	if (gen_scan(&p, &s, NULL, &e) == 0) {
		double want = 2.0 * gen_surface_area(&s) / (spacing * spacing);
		t = want < 20000 ? 20000 : want > (double)max_tris ? max_tris : (size_t)want;
	}
	scan_release(&s);
	return t;
}

/*
 * Generated corpus: every form x material pair once, with the library's
 * per-material sizes and amplitudes (gen_library_item: a fabric swatch is
 * small, a piece of bark large), tris triangles each, or (spacing > 0)
 * as many as sample each surface at that spacing in mm, as a scanner of
 * that resolution would, up to max_tris.
 */
static int load_gen(struct refs *R, int n_forms, int n_mats, size_t tris, bool colour,
		    double spacing, size_t max_tris)
{
	size_t n = (size_t)GEN_N_FORMS * GEN_N_MATERIALS;
	struct ref *tmp = alloc_array_zero(n, sizeof(*tmp));
	int rc = 0;
	if (!tmp)
		return -1;
	#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
	for (size_t i = 0; i < n; i++) {
		struct gen_params p;
		enum gen_format fmt;
		struct err e;
		err_init(&e);
		gen_library_item(i, seed, tris, &p, &fmt);
		tmp[i].cls = -2;
		if ((int)p.form >= n_forms || (int)p.material >= n_mats)
			continue;
		if (!colour)
			p.color = GEN_COLOR_NONE;
		if (spacing > 0 && !(p.triangles = tris_for_spacing(&p, spacing, max_tris))) {
			#pragma omp critical
			{
				out_error("gen %s/%s: cannot size the scan", gen_form_name(p.form),
					  gen_material_name(p.material));
				rc = -1;
			}
			continue;
		}
		struct image *tex = NULL;
		if (p.color == GEN_COLOR_TEXTURE) {
			tex = alloc_array_zero(1, sizeof(*tex));
			p.texture_name = "texture.png";
		}
		if (gen_scan(&p, &tmp[i].s, tex, &e) < 0) {
			char buf[512];
			#pragma omp critical
			{
				out_error("gen %s/%s: %s", gen_form_name(p.form),
					  gen_material_name(p.material), err_format(&e, buf, sizeof(buf)));
				rc = -1;
			}
		}
		tmp[i].tex = tex;
		tmp[i].n_tex = tex ? tmp[i].s.n_textures : 0;
		tmp[i].cls = (int)p.material;
		char name[128];
		snprintf(name, sizeof(name), "%s-%s", gen_form_name(p.form), gen_material_name(p.material));
		tmp[i].name = xstrdup(name);
	}
	for (size_t i = 0; i < n && !rc; i++) {
		if (tmp[i].cls == -2)
			continue;
		if (add_ref(R, tmp[i].name, &tmp[i].s, tmp[i].tex, tmp[i].n_tex) < 0)
			rc = -1;
		R->r[R->n - 1].cls = tmp[i].cls;
		xfree(tmp[i].name);
	}
	xfree(tmp);
	return rc;
}

/* Photograph widths in mm: each photograph is a material at both. */
static const double photo_mm[2] = { 40.0, 100.0 };
#define PHOTO_FORM_MM 80.0

/*
 * Photograph corpus: every form x photograph x width once, the relief a
 * height map of the photograph's luminance (gen_heightmap).  Classes are
 * photograph-width pairs, named into *names.  Returns the class count or
 * -1.
 */
static int load_photos(struct refs *R, const char *list, int n_forms, size_t tris,
		       double spacing, size_t max_tris, char ***names)
{
	char *paths = xstrdup(list);
	int n_img = 0, rc = 0;
	struct gen_heightmap hm[16];
	char stem[16][64];
	for (char *save = NULL, *t = strtok_r(paths, ",", &save); t && !rc;
	     t = strtok_r(NULL, ",", &save)) {
		struct image im;
		struct err e;
		err_init(&e);
		image_init(&im);
		if (n_img == 16) {
			out_error("--photo-relief: at most 16 photographs");
			rc = -1;
		} else if (image_read_file(t, NULL, &im, &e) < 0 ||
			   gen_heightmap_init(&hm[n_img], &im, 1.0, &e) < 0) {
			char buf[512];
			out_error("%s", err_format(&e, buf, sizeof(buf)));
			rc = -1;
		} else {
			stem_of(t, stem[n_img], sizeof(stem[n_img]));
			n_img++;
		}
		image_release(&im);
	}
	xfree(paths);
	int n_cls = 2 * n_img;
	*names = rc ? NULL : alloc_array_zero((size_t)(n_cls ? n_cls : 1), sizeof(char *));
	for (int c = 0; c < n_cls && *names; c++) {
		char nm[96];
		snprintf(nm, sizeof(nm), "%s-%.0fmm", stem[c / 2], photo_mm[c % 2]);
		(*names)[c] = xstrdup(nm);
	}
	size_t n = (size_t)n_forms * (size_t)n_cls;
	struct ref *tmp = rc || !*names ? NULL : alloc_array_zero(n ? n : 1, sizeof(*tmp));
	if (!tmp)
		rc = -1;
	#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
	for (size_t i = 0; i < (tmp ? n : 0); i++) {
		int f = (int)(i / (size_t)n_cls), c = (int)(i % (size_t)n_cls);
		struct gen_heightmap map = hm[c / 2];
		map.width_mm = photo_mm[c % 2];
		struct gen_params p;
		struct err e;
		err_init(&e);
		gen_params_init(&p);
		p.form = (enum gen_form)f;
		p.material = GEN_MAT_NONE;
		p.size_mm = PHOTO_FORM_MM;
		p.seed = seed * 1000003u + i;
		p.heightmap = &map;
		p.triangles = tris;
		if (spacing > 0)
			p.triangles = tris_for_spacing(&p, spacing, max_tris);
		tmp[i].cls = c;
		if (!p.triangles || gen_scan(&p, &tmp[i].s, NULL, &e) < 0) {
			char buf[512];
			#pragma omp critical
			{
				out_error("photo %s on %s: %s", (*names)[c], gen_form_name(p.form),
					  err_format(&e, buf, sizeof(buf)));
				rc = -1;
			}
		}
		char name[128];
		snprintf(name, sizeof(name), "%s-%s", gen_form_name(p.form), (*names)[c]);
		tmp[i].name = xstrdup(name);
	}
	for (size_t i = 0; tmp && i < n; i++) {
		if (!rc && add_ref(R, tmp[i].name, &tmp[i].s, NULL, 0) < 0)
			rc = -1;
		if (!rc)
			R->r[R->n - 1].cls = tmp[i].cls;
		else
			scan_release(&tmp[i].s);
		xfree(tmp[i].name);
	}
	xfree(tmp);
	for (int k = 0; k < n_img; k++)
		gen_heightmap_release(&hm[k]);
	return rc ? -1 : n_cls;
}

/*
 * PSB class file:  "PSB 1" / "nclasses nmodels" / then per class
 * "name parent count" followed by count model ids.  Ids match a reference
 * by file stem, or as a 0-based index.  Returns the class count or -1.
 */
static int read_cla(const char *path, struct refs *R, bool groups, char ***names_out)
{
	FILE *fp = fopen(path, "r");
	if (!fp) {
		out_error("cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	char line[1024];
	int n_cls = 0, cls = -1, cls_cap = 0;
	char **names = NULL;
	long left = 0;
	while (fgets(line, sizeof(line), fp)) {
		char a[256], b[256], num[32];
		long cnt;
		char *end;
		line[strcspn(line, "\r\n")] = 0;
		if (!line[0] || !strncmp(line, "PSB", 3))
			continue;
		if (left == 0) {
			bool three = sscanf(line, "%255s %255s %31s", a, b, num) == 3;
			cnt = three ? strtol(num, &end, 10) : -1;
			if (three && *end == 0 && cnt >= 0 && cnt < 10000000) {
				cls = n_cls++;
				if (n_cls > cls_cap) {
					cls_cap = cls_cap ? 2 * cls_cap : 16;
					names = realloc_array(names, (size_t)cls_cap, sizeof(char *));
				}
				names[cls] = xstrdup(a);
				left = cnt;
			}
			continue;
		}
		left--;
		if (sscanf(line, "%255s", a) != 1)
			continue;
		/* every reference with that stem (a scan in several formats) */
		bool found = false;
		for (size_t i = 0; i < R->n; i++) {
			bool match = !strcmp(R->r[i].name, a);
			if (!match && !found) {
				long v = strtol(a, &end, 10);
				match = *end == 0 && v >= 0 && (size_t)v == i;
			}
			if (!match)
				continue;
			found = true;
			if (groups) {
				/* the group of a class is its first member found */
				int first = -1;
				for (size_t k = 0; k < R->n && first < 0; k++)
					if (R->r[k].cls == -100 - cls)
						first = (int)k;
				R->r[i].group = first >= 0 ? R->r[first].group : (int)i;
				R->r[i].cls = -100 - cls;
			} else {
				R->r[i].cls = cls;
			}
		}
	}
	fclose(fp);
	if (groups)
		for (size_t i = 0; i < R->n; i++)
			if (R->r[i].cls <= -100)
				R->r[i].cls = -1;
	if (names_out)
		*names_out = names;
	else {
		for (int i = 0; i < n_cls; i++)
			xfree(names[i]);
		xfree(names);
	}
	return n_cls;
}

/*
 * Copies (--copies).  Each reference is sampled at COPY_N points (area-
 * uniform on a mesh, its own points for a cloud) and put in its frame:
 * centroid at 0, RMS radius 1, principal axes along x, y, z.  Two
 * references are copies when, for one of the 8 axis sign choices (the
 * reflections included), their samples are as close as two samplings of
 * one surface: the mean distance to the nearest point of the other set,
 * both ways, at most COPY_TOL times that of a second sampling of either
 * reference put in the first sampling's frame.  A shape without distinct
 * principal axes (a cube) has no stable frame and is grouped only with
 * what lands in the same one; a sphere matches in any.  Pairs whose axis
 * ratios (within 10 %) or radius profiles differ are not compared point
 * by point: a plate 3 mm thick is not a copy of one 25 mm thick.
 */
#define COPY_N 1024
#define COPY_TOL 1.5
#define COPY_PROFILE 16

struct copy_frame {
	float p[COPY_N][3];
	double ratio[2];            /* sqrt(l2/l1), sqrt(l3/l1) */
	double profile[COPY_PROFILE]; /* quantiles of the distance to the centroid */
	double floor;               /* chamfer between two samplings of itself */
};

static int copy_sample(const struct scan *s, uint64_t sd, float (*p)[3], struct err *e)
{
	if (s->n_faces) {
		struct scan c;
		int rc = gen_sample_points(s, COPY_N, sd, &c, e);
		if (rc < 0)
			return rc;
		memcpy(p, c.positions, sizeof(float) * 3 * COPY_N);
		scan_release(&c);
		return 0;
	}
	if (!s->n_vertices)
		return err_set(e, ERR_FORMAT, "no points");
	for (size_t i = 0; i < COPY_N; i++)
		memcpy(p[i], s->positions + 3 * (mix64(sd + i) % s->n_vertices), sizeof(p[i]));
	return 0;
}

/* Centre, scale and axes of p (c, r, rows of ax), the ratios and profile. */
static void copy_frame_of(float (*p)[3], struct copy_frame *f, double c[3], double *r,
			  double ax[3][3])
{
	double cov[6] = { 0 }, var = 0;
	for (int k = 0; k < 3; k++) {
		c[k] = 0;
		for (size_t i = 0; i < COPY_N; i++)
			c[k] += p[i][k];
		c[k] /= COPY_N;
	}
	for (size_t i = 0; i < COPY_N; i++) {
		double d[3] = { p[i][0] - c[0], p[i][1] - c[1], p[i][2] - c[2] };
		desc_cov_add(cov, d);
	}
	for (int k = 0; k < 6; k++)
		cov[k] /= COPY_N;
	var = cov[0] + cov[3] + cov[5];
	*r = var > 0 ? sqrt(var) : 1;
	double val[3];
	desc_eig3(cov, val, ax); /* ascending */
	double l1 = fmax(val[2], 1e-300);
	f->ratio[0] = sqrt(fmax(val[1], 0) / l1);
	f->ratio[1] = sqrt(fmax(val[0], 0) / l1);
}

static void copy_apply(float (*p)[3], const double c[3], double r, double ax[3][3],
		       float (*out)[3])
{
	for (size_t i = 0; i < COPY_N; i++) {
		double d[3] = { p[i][0] - c[0], p[i][1] - c[1], p[i][2] - c[2] };
		for (int k = 0; k < 3; k++) /* largest axis first */
			out[i][k] = (float)((d[0] * ax[2 - k][0] + d[1] * ax[2 - k][1] +
					     d[2] * ax[2 - k][2]) / r);
	}
}

/* (cmp_double: tests/lib/gen.c, included above) */

/* Mean over a of the distance to the nearest of b (b's signs flipped by sg). */
static double copy_mean_nn(float (*a)[3], float (*b)[3], const float sg[3])
{
	double sum = 0;
	for (size_t i = 0; i < COPY_N; i++) {
		float best = INFINITY;
		for (size_t j = 0; j < COPY_N; j++) {
			float dx = a[i][0] - sg[0] * b[j][0], dy = a[i][1] - sg[1] * b[j][1];
			float dz = a[i][2] - sg[2] * b[j][2];
			float d = dx * dx + dy * dy + dz * dz;
			if (d < best)
				best = d;
		}
		sum += sqrt(best);
	}
	return sum / COPY_N;
}

static double copy_chamfer(float (*a)[3], float (*b)[3], const float sg[3])
{
	return 0.5 * (copy_mean_nn(a, b, sg) + copy_mean_nn(b, a, sg));
}

static int copy_prepare(const struct scan *s, struct copy_frame *f, struct err *e)
{
	float (*q)[3] = alloc_array(COPY_N, sizeof(*q));
	float (*q2)[3] = alloc_array(COPY_N, sizeof(*q2));
	int rc = !q || !q2 ? err_set(e, ERR_NOMEM, "out of memory") : 0;
	double c[3], r, ax[3][3];
	if (!rc)
		rc = copy_sample(s, mix64(seed ^ 0xc0b1e5ull), q, e);
	if (!rc)
		rc = copy_sample(s, mix64(seed ^ 0x5ec0d5ull), q2, e);
	if (!rc) {
		copy_frame_of(q, f, c, &r, ax);
		copy_apply(q, c, r, ax, f->p);
		/* the second sampling in the first one's frame: sampling alone */
		copy_apply(q2, c, r, ax, q);
		const float one[3] = { 1, 1, 1 };
		f->floor = copy_chamfer(f->p, q, one);
		double d[COPY_N];
		for (size_t i = 0; i < COPY_N; i++)
			d[i] = sqrt((double)f->p[i][0] * f->p[i][0] + (double)f->p[i][1] * f->p[i][1] +
				    (double)f->p[i][2] * f->p[i][2]);
		qsort(d, COPY_N, sizeof(double), cmp_double);
		for (int k = 0; k < COPY_PROFILE; k++)
			f->profile[k] = d[(size_t)((k + 0.5) * COPY_N / COPY_PROFILE)];
	}
	xfree(q);
	xfree(q2);
	return rc;
}

static bool copies_alike(const struct copy_frame *a, const struct copy_frame *b)
{
	for (int k = 0; k < 2; k++)
		if (fabs(a->ratio[k] - b->ratio[k]) >
		    0.1 * fmax(a->ratio[k], b->ratio[k]) + 0.005)
			return false;
	for (int k = 0; k < COPY_PROFILE; k++)
		if (fabs(a->profile[k] - b->profile[k]) > 0.1)
			return false;
	return true;
}

static int uf_find(int *up, int i)
{
	while (up[i] != i) {
		up[i] = up[up[i]];
		i = up[i];
	}
	return i;
}

/*
 * Merge the groups of references that are copies; print the groups found.
 * Returns the number of references in a group of copies, or -1.
 */
static int find_copies(struct refs *R, bool json, const char *task)
{
	size_t n = R->n;
	struct copy_frame *F = alloc_array(n, sizeof(*F));
	int *up = alloc_array(n, sizeof(int));
	bool *ok = alloc_array_zero(n, sizeof(bool));
	if (!F || !up || !ok) {
		xfree(F);
		xfree(up);
		xfree(ok);
		return -1;
	}
	#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
	for (size_t i = 0; i < n; i++) {
		struct err e;
		err_init(&e);
		ok[i] = copy_prepare(&R->r[i].s, &F[i], &e) == 0;
	}
	for (size_t i = 0; i < n; i++)
		up[i] = (int)i;
	/* the groups given already (--same) */
	for (size_t i = 0; i < n; i++)
		up[uf_find(up, (int)i)] = uf_find(up, R->r[i].group);
	size_t n_pairs = n * (n - 1) / 2;
	bool *copy = alloc_array_zero(n_pairs ? n_pairs : 1, sizeof(bool));
	if (!copy) {
		xfree(F);
		xfree(up);
		xfree(ok);
		return -1;
	}
	#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			if (!ok[i] || !ok[j] || !copies_alike(&F[i], &F[j]))
				continue;
			double tol = COPY_TOL * fmax(F[i].floor, F[j].floor);
			for (int sgn = 0; sgn < 8; sgn++) {
				const float sg[3] = { sgn & 1 ? -1.f : 1.f, sgn & 2 ? -1.f : 1.f,
						      sgn & 4 ? -1.f : 1.f };
				if (copy_chamfer(F[i].p, F[j].p, sg) <= tol) {
					copy[i * n - i * (i + 1) / 2 + (j - i - 1)] = true;
					break;
				}
			}
		}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (copy[i * n - i * (i + 1) / 2 + (j - i - 1)])
				up[uf_find(up, (int)i)] = uf_find(up, (int)j);
	int grouped = 0;
	json_t *arr = json ? json_array() : NULL;
	for (size_t i = 0; i < n; i++) {
		int root = uf_find(up, (int)i);
		R->r[i].group = root;
	}
	/* print each group of two or more, by its first member */
	for (size_t i = 0; i < n; i++) {
		size_t first = n, count = 0;
		for (size_t j = 0; j < n; j++)
			if (R->r[j].group == R->r[i].group) {
				if (first == n)
					first = j;
				count++;
			}
		if (first != i || count < 2)
			continue;
		grouped += (int)count;
		json_t *g = json ? json_array() : NULL;
		if (!json)
			printf("copies:");
		for (size_t j = i; j < n; j++)
			if (R->r[j].group == R->r[i].group) {
				if (json)
					json_array_append_new(g, json_string(R->r[j].name));
				else
					printf(" %s", R->r[j].name);
			}
		if (json)
			json_array_append_new(arr, g);
		else
			printf("\n");
	}
	if (json)
		out_json_line(json_pack("{s:s, s:o}", "task", task, "copies", arr));
	xfree(copy);
	xfree(F);
	xfree(up);
	xfree(ok);
	return grouped;
}

static int describe_one(const struct scan *s, const struct image *tex, size_t n_tex,
			float *out, struct desc_info *info, int threads)
{
	struct describe_opts o;
	struct err e;
	describe_opts_init(&o);
	o.threads = threads;
	o.textures = tex;
	o.n_textures = tex ? n_tex : 0;
	err_init(&e);
	int rc = describe_scan(s, &o, out, info, &e);
	if (rc < 0) {
		char buf[512];
		out_error("describe: %s", err_format(&e, buf, sizeof(buf)));
	}
	return rc;
}

/* A reference's record: its own vector, then its views' (or none). */
static int describe_ref(struct ref *r, bool views)
{
	struct describe_opts o;
	struct err e;
	describe_opts_init(&o);
	o.threads = 1;
	o.textures = r->tex;
	o.n_textures = r->tex ? r->n_tex : 0;
	err_init(&e);
	int rc = describe_scan(&r->s, &o, r->v, &r->info, &e);
	if (!rc && views)
		rc = describe_views(&r->s, &o, r->v, r->v + dim, &r->info.n_views, &e);
	if (rc < 0) {
		char buf[512];
		out_error("describe %s: %s", r->name, err_format(&e, buf, sizeof(buf)));
	}
	return rc;
}

static double diag_of(const struct scan *s)
{
	double d = 0;
	for (int k = 0; k < 3; k++) {
		double x = (double)s->bbox_max[k] - s->bbox_min[k];
		d += x * x;
	}
	return sqrt(d);
}

/* Point spacing: the square root of the area per vertex (a cloud: of the box). */
static double spacing_of(const struct scan *s)
{
	double a = gen_surface_area(s);
	if (!(a > 0)) {
		double d[3];
		for (int k = 0; k < 3; k++)
			d[k] = (double)s->bbox_max[k] - s->bbox_min[k];
		a = d[0] * d[1] + d[1] * d[2] + d[0] * d[2];
	}
	return sqrt(a / (double)(s->n_vertices ? s->n_vertices : 1));
}

static void strip_normals(struct scan *s)
{
	xfree(s->normals);
	s->normals = NULL;
}

/*
 * A perturbed copy of ref: out owns new geometry; textures stay the
 * reference's (borrowed through the returned pointer).
 */
static int perturb(const struct ref *ref, const struct run *run, uint64_t qseed,
		   struct scan *out, struct err *e)
{
	enum pert p = run->p;
	bool dflt = isnan(run->v);
	const struct scan *in = &ref->s;
	struct scan tmp;
	int rc;
	double d = diag_of(in);
	uint64_t h = mix64(qseed);
	double scale = exp(log(0.4) + u01(mix64(h + 1)) * (log(2.5) - log(0.4)));
	scan_init(&tmp);
	switch (p) {
	case P_RIGID:
		rc = gen_crop(in, 1.0, h, out, e);
		break;
	case P_NOISE:
	case P_NOISE_STRONG:
		rc = gen_crop(in, 1.0, h, out, e);
		if (!rc)
			rc = gen_noise(out, h + 3,
				       (dflt ? p == P_NOISE ? 0.0005 : 0.002 : run->v) * d, e);
		break;
	case P_DECIMATE:
		rc = gen_decimate(in, dflt ? 4.0 : run->v, out, e);
		break;
	case P_POINTS: {
		double n = dflt ? (double)in->n_vertices : ceil(run->v * (double)in->n_vertices);
		rc = gen_sample_points(in, n > 100 ? (size_t)n : 100, h + 4, out, e);
		/* half the clouds come without normals, as xyz files do */
		if (!rc && (h >> 7) & 1)
			strip_normals(out);
		break;
	}
	case P_CROP:
		rc = gen_crop(in, dflt ? 0.7 : run->v, h + 5, out, e);
		break;
	case P_VIEW: {
		double dir[3];
		gen_direction(h + 7, dir);
		rc = gen_view(in, dir, out, e);
		break;
	}
	case P_HOLES:
		rc = gen_holes(in, 5, dflt ? 0.1 : run->v, h + 8, out, e);
		break;
	case P_OUTLIERS:
		rc = gen_outliers(in, dflt ? 0.01 : run->v, h + 9, out, e);
		break;
	case P_DENSITY:
		rc = gen_graded_points(in, in->n_vertices > 100 ? in->n_vertices : 100,
				       dflt ? 10 : run->v, h + 10, out, e);
		if (!rc && (h >> 7) & 1)
			strip_normals(out);
		break;
	case P_SUBDIVIDE:
		rc = gen_subdivide(in, dflt ? 1 : (int)run->v, out, e);
		break;
	case P_SMOOTH:
		rc = gen_crop(in, 1.0, h, out, e);
		if (!rc)
			rc = gen_smooth(out, dflt ? 10 : (int)run->v, e);
		break;
	case P_NOISE_SPACING:
		/* a scanner's noise follows its resolution: sigma in point spacings */
		rc = gen_crop(in, 1.0, h, out, e);
		if (!rc)
			rc = gen_noise(out, h + 3, (dflt ? 0.3 : run->v) * spacing_of(in), e);
		break;
	case P_WINDING:
		rc = gen_crop(in, 1.0, h, out, e);
		if (!rc)
			rc = gen_flip(out, dflt ? 0.5 : run->v, h + 11, e);
		break;
	case P_COMBO:
	default:
		rc = gen_crop(in, 0.85, h + 5, &tmp, e);
		if (!rc)
			rc = gen_noise(&tmp, h + 3, 0.0005 * d, e);
		if (!rc)
			rc = gen_decimate(&tmp, 2.0, out, e);
		scan_release(&tmp);
		break;
	}
	if (rc < 0)
		return rc;
	rc = gen_rigid(out, h + 6, p == P_RIGID || p == P_COMBO ? scale : 1.0, d, NULL, NULL, e);
	/* a scaled copy is no longer in the reference's millimetres */
	if (p == P_RIGID || p == P_COMBO)
		out->units = UNITS_UNKNOWN;
	return rc;
}

/* Rank of every reference for query q (ascending distance). */
struct hit {
	float d;
	uint32_t i;
};

static int cmp_hit(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;
	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	return (x->i > y->i) - (x->i < y->i);
}

static void rank_all(const float *q, const struct refs *R, size_t off, size_t len,
		     struct hit *h)
{
	for (size_t i = 0; i < R->n; i++) {
		const float *v = R->r[i].v + off;
		double s = 0;
		for (size_t k = 0; k < len; k++) {
			double t = (double)q[off + k] - v[k];
			s += t * t;
		}
		h[i].d = (float)s;
		h[i].i = (uint32_t)i;
	}
	qsort(h, R->n, sizeof(*h), cmp_hit);
}

/*
 * Rank as `refscan query` does: rank_search() over every reference with
 * the descriptor's cues (the robust order of query/rank.h) and the
 * weights of preset, leaving out the blocks the query lacks
 * (describe_query_weights): a query without units or colour is compared
 * on what it has.
 */
/* --fine-always: no cue is fine, so no pair leaves one out */
static bool fine_always;

static void rank_preset(const float *q, const struct desc_info *qi, enum desc_preset p,
			const struct refs *R, struct hit *h)
{
	float w[DESC_N_BLOCKS], base[DESC_N_BLOCKS], def[DESC_N_BLOCKS];
	struct rank_block rb[DESC_N_BLOCKS];
	struct rank_cue rc[RANK_MAX_CUES];
	const struct desc_block *bl = describe_blocks();
	size_t n_cues;
	const struct desc_cue *cue = describe_cues(&n_cues);
	describe_preset_weights(p, base);
	describe_query_weights(qi, base, w);
	describe_default_weights(def);
	for (size_t b = 0; b < DESC_N_BLOCKS; b++) {
		rb[b].name = bl[b].name;
		rb[b].offset = bl[b].offset;
		rb[b].len = bl[b].length;
		w[b] = def[b] > 0 ? w[b] / def[b] : 0; /* multipliers of the stored weighting */
	}
	for (size_t c = 0; c < n_cues; c++) {
		rc[c].name = cue[c].name;
		rc[c].block = (size_t)cue[c].block;
		rc[c].offset = cue[c].offset;
		rc[c].len = cue[c].length;
		rc[c].fine = cue[c].fine && !fine_always;
	}
	struct rank_layout L = { .schema_id = 1, .dim = dim, .n_blocks = DESC_N_BLOCKS,
				 .blocks = rb, .n_cues = n_cues, .cues = rc,
				 .carried = DESC_CARRIED,
				 .fine_tolerance = describe_fine_tolerance };
	struct rank_hit *hits = alloc_array(R->n, sizeof(*hits));
	struct rank_result res;
	struct rank_query rq;
	struct err e;
	err_init(&e);
	if (!hits) {
		fprintf(stderr, "eval_retrieval: out of memory\n");
		exit(EXIT_SOFTWARE);
	}
	struct ref_table T = { .n = R->n, .dim = dim, .views = R->views,
				 .ids = R->ids, .vecs = R->vecs };
	rank_query_init(&rq, q, R->n);
	rq.weights = w;
	rq.flags = RANK_EXACT;
	rq.keep = describe_preset_keep(p);
	if (rank_search(&T, &L, NULL, &rq, hits, &res, &e) < 0 || res.n_hits != R->n) {
		char buf[ERR_PATH_MAX + 300];
		fprintf(stderr, "eval_retrieval: ranking failed: %s\n", err_format(&e, buf, sizeof(buf)));
		exit(EXIT_SOFTWARE);
	}
	for (size_t i = 0; i < R->n; i++) {
		h[i].d = hits[i].match;
		h[i].i = (uint32_t)hits[i].row;
	}
	xfree(hits);
}

/* Lay the described references out once for rank_search(): ids 0..n-1. */
static int refs_table(struct refs *R)
{
	size_t rec = (1 + R->views) * dim;
	R->ids = alloc_array(R->n ? R->n : 1, sizeof(*R->ids));
	R->vecs = alloc_array(R->n ? R->n : 1, rec * sizeof(float));
	if (!R->ids || !R->vecs)
		return -1;
	for (size_t i = 0; i < R->n; i++) {
		R->ids[i] = (int64_t)i;
		memcpy(R->vecs + i * rec, R->r[i].v, rec * sizeof(float));
	}
	return 0;
}

struct score {
	double top1, top5, map, n;
	double nn, ft, st, dcg; /* class metrics */
};

/* Scores of one ranking; rel(i) says whether reference i is relevant. */
/* Remove reference i from the ranking h of n; returns n - 1. */
static size_t drop_hit(struct hit *h, size_t n, size_t i)
{
	size_t k = 0;
	for (size_t j = 0; j < n; j++)
		if (h[j].i != i)
			h[k++] = h[j];
	return k;
}

static void score_ranking(const struct hit *h, size_t n, const bool *rel, size_t n_rel,
			  struct score *s, bool class_metrics)
{
	size_t found = 0, first = n;
	double ap = 0, dcg = 0, idcg = 0;
	size_t ft = 0, st = 0;
	for (size_t k = 0; k < n; k++) {
		if (!rel[h[k].i])
			continue;
		if (first == n)
			first = k;
		found++;
		ap += (double)found / (double)(k + 1);
		dcg += k == 0 ? 1.0 : 1.0 / log2((double)k + 1);
		if (k < n_rel)
			ft++;
		if (k < 2 * n_rel)
			st++;
	}
	for (size_t k = 0; k < n_rel; k++)
		idcg += k == 0 ? 1.0 : 1.0 / log2((double)k + 1);
	s->n += 1;
	s->top1 += first == 0;
	s->top5 += first < 5;
	s->map += n_rel ? ap / (double)n_rel : 0;
	if (class_metrics && n_rel) {
		s->nn += first == 0;
		s->ft += (double)ft / (double)n_rel;
		s->st += (double)st / (double)n_rel;
		s->dcg += idcg > 0 ? dcg / idcg : 0;
	}
}

static void print_row(bool json, const char *task, const char *what, const struct score *a,
		      const struct score *b, bool cls, double ms)
{
	double n = a->n > 0 ? a->n : 1;
	if (json) {
		json_t *o = json_pack("{s:s, s:s, s:i, s:f, s:f, s:f, s:f, s:f, s:f}",
				      "task", task, "case", what, "queries", (int)a->n,
				      "top1", a->top1 / n, "top5", a->top5 / n, "map", a->map / n,
				      "d2_top1", b->top1 / n, "d2_top5", b->top5 / n,
				      "d2_map", b->map / n);
		if (cls) {
			json_object_set_new(o, "nn", json_real(a->nn / n));
			json_object_set_new(o, "first_tier", json_real(a->ft / n));
			json_object_set_new(o, "second_tier", json_real(a->st / n));
			json_object_set_new(o, "dcg", json_real(a->dcg / n));
			json_object_set_new(o, "d2_nn", json_real(b->nn / n));
			json_object_set_new(o, "d2_first_tier", json_real(b->ft / n));
			json_object_set_new(o, "d2_second_tier", json_real(b->st / n));
			json_object_set_new(o, "d2_dcg", json_real(b->dcg / n));
		}
		if (ms > 0)
			json_object_set_new(o, "ms_per_query", json_real(ms));
		out_json_line(o);
		return;
	}
	if (cls)
		printf("%-14s %5d  NN %.3f FT %.3f ST %.3f DCG %.3f mAP %.3f | D2: NN %.3f FT %.3f ST %.3f DCG %.3f mAP %.3f\n",
		       what, (int)a->n, a->nn / n, a->ft / n, a->st / n, a->dcg / n, a->map / n,
		       b->nn / n, b->ft / n, b->st / n, b->dcg / n, b->map / n);
	else
		printf("%-14s %5d  top1 %.3f top5 %.3f mAP %.3f | D2: top1 %.3f top5 %.3f mAP %.3f  (%.0f ms/query, 1 thread)\n",
		       what, (int)a->n, a->top1 / n, a->top5 / n, a->map / n,
		       b->top1 / n, b->top5 / n, b->map / n, ms);
}

/*
 * Class retrieval: every reference queries the others, ranked with the
 * weights of preset (blocks the query lacks left out); per-class rows
 * when per_class.
 */
static void class_eval(const struct refs *R, int n_cls, char **cls_names, bool json,
		       const char *task, enum desc_preset preset, bool per_class)
{
	struct hit *h = alloc_array(R->n, sizeof(*h));
	bool *rel = alloc_array_zero(R->n, sizeof(bool));
	struct score all = { 0 }, alld2 = { 0 };
	struct score *per = alloc_array_zero((size_t)n_cls + 1, sizeof(*per));
	struct score *perd2 = alloc_array_zero((size_t)n_cls + 1, sizeof(*perd2));
	const struct desc_block *bl = describe_blocks();
	for (size_t q = 0; h && rel && per && perd2 && q < R->n; q++) {
		int c = R->r[q].cls;
		if (c < 0)
			continue;
		size_t n_rel = 0;
		for (size_t i = 0; i < R->n; i++) {
			rel[i] = i != q && R->r[i].cls == c;
			n_rel += rel[i];
		}
		if (!n_rel)
			continue;
		/* the query itself is left out: it sorts first, so drop rank 0 */
		for (int pass = 0; pass < 2; pass++) {
			if (pass == 0)
				rank_preset(R->r[q].v, &R->r[q].info, preset, R, h);
			else
				rank_all(R->r[q].v, R, bl[DESC_SHAPE].offset, 32, h);
			size_t k = 0;
			for (size_t i = 0; i < R->n; i++)
				if (h[i].i != q)
					h[k++] = h[i];
			score_ranking(h, R->n - 1, rel, n_rel, pass ? &alld2 : &all, true);
			score_ranking(h, R->n - 1, rel, n_rel, pass ? &perd2[c] : &per[c], true);
		}
	}
	char label[64];
	for (int c = 0; per_class && c < n_cls && per && perd2; c++) {
		if (!per[c].n)
			continue;
		snprintf(label, sizeof(label), "  %s", cls_names ? cls_names[c] : "?");
		print_row(json, task, label + (json ? 2 : 0), &per[c], &perd2[c], true, 0);
	}
	print_row(json, task, preset == DESC_PRESET_SURFACE ? "all (surface)" : "all (object)",
		  &all, &alld2, true, 0);
	xfree(h);
	xfree(rel);
	xfree(per);
	xfree(perd2);
}

/*
 * The rows of --perturb LIST into runs (at most MAX_RUNS): NAME or
 * NAME:V, V in the range of its perturbation.  False on a bad item.
 */
static bool parse_perturb(const char *s, struct run *runs, size_t *n_runs)
{
	char buf[512];
	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return false;
	*n_runs = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(t, ':');
		double v = NAN;
		if (colon) {
			char *end;
			*colon = 0;
			v = strtod(colon + 1, &end);
			if (end == colon + 1 || *end || !isfinite(v))
				return false;
		}
		int hit = -1;
		for (int p = 0; p < N_PERT; p++)
			if (!strcmp(t, pert_names[p]))
				hit = p;
		if (hit < 0 || *n_runs == MAX_RUNS)
			return false;
		if (colon) {
			bool in_range;
			switch (hit) {
			case P_NOISE:
			case P_NOISE_STRONG: in_range = v > 0 && v <= 0.1; break;
			case P_DECIMATE: in_range = v > 1 && v <= 1000; break;
			case P_POINTS: in_range = v > 0 && v <= 10; break;
			case P_CROP: in_range = v > 0 && v <= 1; break;
			case P_HOLES: in_range = v > 0 && v < 1; break;
			case P_OUTLIERS: in_range = v > 0 && v <= 1; break;
			case P_DENSITY: in_range = v >= 1 && v <= 1000; break;
			case P_SUBDIVIDE: in_range = v >= 1 && v <= 3 && v == floor(v); break;
			case P_SMOOTH: in_range = v >= 1 && v <= 1000 && v == floor(v); break;
			case P_WINDING: in_range = v > 0 && v <= 1; break;
			case P_NOISE_SPACING: in_range = v > 0 && v <= 10; break;
			default: in_range = false; break; /* no strength */
			}
			if (!in_range)
				return false;
		}
		struct run *r = &runs[(*n_runs)++];
		r->p = (enum pert)hit;
		r->v = v;
		if (colon)
			snprintf(r->label, sizeof(r->label), "%s:%g", pert_names[hit], v);
		else
			snprintf(r->label, sizeof(r->label), "%s", pert_names[hit]);
	}
	return *n_runs > 0;
}

static long parse_long(const char *s, long lo, long hi, bool *ok)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		*ok = false;
	return v;
}

int main(int argc, char **argv)
{
	bool gen = false, colour = false, verbose = false, json = false, ok = true;
	bool copies = false, views = true, surface = false;
	struct run runs[MAX_RUNS];
	size_t n_runs = 0;
	long n_forms = GEN_N_FORMS, n_mats = GEN_N_MATERIALS, tris = 60000, min_faces = 200;
	long queries = 1;
	double spacing = 0;
	const char *cla = NULL, *same = NULL, *dump = NULL, *name = NULL, *photos = NULL;
	int c;
	for (int p = 0; p < N_PERT; p++) {
		runs[n_runs].p = (enum pert)p;
		runs[n_runs].v = NAN;
		snprintf(runs[n_runs].label, sizeof(runs[n_runs].label), "%s", pert_names[p]);
		n_runs++;
	}
	n_threads = omp_get_max_threads();
	while ((c = getopt_long(argc, argv, "h", eval_options, NULL)) != -1) {
		switch (c) {
		case OPT_GEN: gen = true; break;
		case OPT_FORMS: n_forms = parse_long(optarg, 1, GEN_N_FORMS, &ok); break;
		case OPT_MATS: n_mats = parse_long(optarg, 1, GEN_N_MATERIALS, &ok); break;
		case OPT_TRIS: tris = parse_long(optarg, 100, 50000000, &ok); break;
		case OPT_COLOUR: colour = true; break;
		case OPT_SPACING: {
			char *end;
			spacing = strtod(optarg, &end);
			ok = ok && end != optarg && !*end && spacing >= 0.01 && spacing <= 100;
			break;
		}
		case OPT_MINF: min_faces = parse_long(optarg, 0, LONG_MAX, &ok); break;
		case OPT_QUERIES: queries = parse_long(optarg, 1, 1000, &ok); break;
		case OPT_PERTURB: ok = ok && parse_perturb(optarg, runs, &n_runs); break;
		case OPT_CLA: cla = optarg; break;
		case OPT_SAME: same = optarg; break;
		case OPT_COPIES: copies = true; break;
		case OPT_PHOTO: photos = optarg; break;
		case OPT_SEED: seed = (uint64_t)parse_long(optarg, 0, LONG_MAX, &ok); break;
		case OPT_THREADS: n_threads = (int)parse_long(optarg, 1, 1024, &ok); break;
		case OPT_VERBOSE: verbose = true; break;
		case OPT_JSON: json = true; break;
		case OPT_DUMP: dump = optarg; break;
		case OPT_NAME: name = optarg; break;
		case OPT_NO_VIEWS: views = false; break;
		case OPT_FINE_ALWAYS: fine_always = true; break;
		case OPT_SURFACE: surface = true; break;
		case 'h': fputs(eval_usage, stdout); return out_finish(EXIT_OK);
		default: fputs(eval_usage, stderr); return EXIT_USAGE;
		}
	}
	if (!ok || (!gen && optind >= argc) || (surface && !gen)) {
		fputs(eval_usage, stderr);
		return EXIT_USAGE;
	}
	dim = describe_dim();
	struct refs R = { 0 };
	char **files = NULL;
	size_t nf = 0, fcap = 0;
	char **cls_names = NULL;
	int n_cls = 0;
	if (gen && photos) {
		if ((n_cls = load_photos(&R, photos, (int)n_forms, spacing > 0 ? 0 : (size_t)tris,
					 spacing, (size_t)tris, &cls_names)) < 0)
			return EXIT_SOFTWARE;
	} else if (gen) {
		if (load_gen(&R, (int)n_forms, (int)n_mats, spacing > 0 ? 0 : (size_t)tris, colour,
			     spacing, (size_t)tris) < 0)
			return EXIT_SOFTWARE;
	} else {
		for (int i = optind; i < argc; i++)
			collect(argv[i], &files, &nf, &fcap);
		load_files(&R, files, nf, (size_t)min_faces);
	}
	if (!R.n) {
		out_error("no references could be read");
		return EXIT_NOINPUT;
	}
	if (cla && (n_cls = read_cla(cla, &R, false, &cls_names)) < 0)
		return EXIT_NOINPUT;
	if (same && read_cla(same, &R, true, NULL) < 0)
		return EXIT_NOINPUT;
	const char *task = name ? name : gen ? "generated" : "references";
	if (copies && find_copies(&R, json, task) < 0) {
		out_error("out of memory for %zu references", R.n);
		return EXIT_SOFTWARE;
	}
	if (gen && !photos) {
		n_cls = (int)n_mats;
		cls_names = alloc_array((size_t)n_cls, sizeof(char *));
		for (int m = 0; m < n_cls; m++)
			cls_names[m] = xstrdup(gen_material_name((enum gen_material)m));
	}

	/* describe the references: one scan per thread */
	int fail = 0;
	double t0 = now();
	for (size_t i = 0; i < R.n; i++)
		if (!(R.r[i].v = alloc_array(describe_record_dim(), sizeof(float)))) {
			out_error("out of memory for %zu references", R.n);
			return EXIT_SOFTWARE;
		}
	R.views = views ? DESC_VIEWS : 0;
	#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
	for (size_t i = 0; i < R.n; i++) {
		if (describe_ref(&R.r[i], R.views > 0) < 0) {
			#pragma omp atomic
			fail++;
		}
	}
	double t_ref = now() - t0;
	if (fail)
		return EXIT_SOFTWARE;
	if (refs_table(&R) < 0) {
		out_error("out of memory for %zu references", R.n);
		return EXIT_SOFTWARE;
	}
	const struct desc_block *bl = describe_blocks();
	if (dump) {
		FILE *fp = fopen(dump, "w");
		if (!fp) {
			out_error("cannot create '%s': %s", dump, strerror(errno));
			return EXIT_CANTCREAT;
		}
		for (size_t i = 0; i < R.n; i++) {
			fprintf(fp, "ref %s %d %d", R.r[i].name, R.r[i].cls, R.r[i].group);
			for (size_t k = 0; k < dim; k++)
				fprintf(fp, " %.7g", (double)R.r[i].v[k]);
			fputc('\n', fp);
		}
		if (fclose(fp) != 0) {
			out_error("cannot write '%s'", dump);
			return EXIT_IOERR;
		}
	}
	float *qv = dump ? alloc_array(R.n * (size_t)queries, dim * sizeof(float)) : NULL;
	if (!json)
		printf("%zu references, %s, dimension %zu, %zu views each, described in %.1f s\n",
		       R.n, DESC_SCHEMA, dim, R.views, t_ref);

	char cls_task[128];
	snprintf(cls_task, sizeof(cls_task), "%s%s%s", name ? name : "", name ? "-" : "",
		 gen ? "material" : "classes");
	if (!json)
		printf("\nperturbation   queries  descriptor                     | D2 baseline\n");
	for (size_t ri = 0; ri < n_runs; ri++) {
		const struct run *run = &runs[ri];
		int p = (int)run->p;
		size_t nq = R.n * (size_t)queries;
		struct score *sa = alloc_array_zero(nq, sizeof(*sa));
		struct score *sb = alloc_array_zero(nq, sizeof(*sb));
		int *top = alloc_array(nq, sizeof(int));
		double *qnoise = alloc_array_zero(nq, sizeof(double));
		double tq = 0;
		if (!sa || !sb || !top || !qnoise)
			return EXIT_SOFTWARE;
		#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1) reduction(+:tq)
		for (size_t qi = 0; qi < nq; qi++) {
			size_t i = qi / (size_t)queries;
			struct scan s;
			struct err e;
			struct desc_info info;
			float *v = alloc_array(dim, sizeof(float));
			struct hit *h = alloc_array(R.n, sizeof(*h));
			bool *rel = alloc_array_zero(R.n, sizeof(bool));
			err_init(&e);
			uint64_t qs = mix64(seed ^ mix64(((uint64_t)p << 40) ^ qi));
			top[qi] = -1;
			if (!v || !h || !rel || perturb(&R.r[i], run, qs, &s, &e) < 0) {
				xfree(v);
				xfree(h);
				xfree(rel);
				continue;
			}
			double t1 = now();
			/* decimation drops UVs: textures then no longer apply */
			bool tex = s.corner_uvs || s.uvs;
			int rc = describe_one(&s, tex ? R.r[i].tex : NULL, R.r[i].n_tex, v, &info, 1);
			tq += now() - t1;
			qnoise[qi] = info.noise;
			if (qv)
				memcpy(qv + qi * dim, v, dim * sizeof(float));
			if (!rc) {
				size_t n_rel = 0;
				for (size_t j = 0; j < R.n; j++) {
					/* the surface question: the material on another form */
					rel[j] = surface ? j != i && R.r[j].cls == R.r[i].cls :
							   R.r[j].group == R.r[i].group;
					n_rel += rel[j];
				}
				rank_preset(v, &info, surface ? DESC_PRESET_SURFACE : DESC_PRESET_OBJECT,
					    &R, h);
				size_t n = surface ? drop_hit(h, R.n, i) : R.n;
				top[qi] = (int)h[0].i;
				score_ranking(h, n, rel, n_rel, &sa[qi], false);
				rank_all(v, &R, bl[DESC_SHAPE].offset, 32, h);
				n = surface ? drop_hit(h, R.n, i) : R.n;
				score_ranking(h, n, rel, n_rel, &sb[qi], false);
			}
			scan_release(&s);
			xfree(v);
			xfree(h);
			xfree(rel);
		}
		struct score a = { 0 }, b = { 0 };
		for (size_t qi = 0; qi < nq; qi++) {
			a.top1 += sa[qi].top1;
			a.top5 += sa[qi].top5;
			a.map += sa[qi].map;
			a.n += sa[qi].n;
			b.top1 += sb[qi].top1;
			b.top5 += sb[qi].top5;
			b.map += sb[qi].map;
			b.n += sb[qi].n;
			size_t i = qi / (size_t)queries;
			if (verbose && !json && top[qi] >= 0 && !sa[qi].top1)
				printf("    %s: %s (noise %.3g, its scan %.3g) -> %s (%.3g)\n",
				       run->label, R.r[i].name, qnoise[qi], R.r[i].info.noise,
				       R.r[top[qi]].name, R.r[top[qi]].info.noise);
		}
		if (a.n < (double)nq)
			fprintf(stderr, "eval_retrieval: %s: %.0f of %zu queries failed\n",
				run->label, (double)nq - a.n, nq);
		print_row(json, task, run->label, &a, &b, false,
			  a.n > 0 ? tq / a.n * 1e3 : 0);
		FILE *fp = qv ? fopen(dump, "a") : NULL;
		for (size_t qi = 0; fp && qi < nq; qi++) {
			if (top[qi] < 0)
				continue;
			fprintf(fp, "query %s %zu", run->label, qi / (size_t)queries);
			for (size_t k = 0; k < dim; k++)
				fprintf(fp, " %.7g", (double)qv[qi * dim + k]);
			fputc('\n', fp);
		}
		if (fp && fclose(fp) != 0)
			out_error("cannot write '%s'", dump);
		fflush(stdout);
		xfree(sa);
		xfree(sb);
		xfree(top);
		xfree(qnoise);
	}
	if (n_cls > 0) {
		if (!json)
			printf("\nclass retrieval (%s)\n", gen ? "material across forms" : cla);
		/* materials are the surface question; object classes the object one */
		class_eval(&R, n_cls, cls_names, json, cls_task,
			   gen ? DESC_PRESET_SURFACE : DESC_PRESET_OBJECT, true);
		class_eval(&R, n_cls, cls_names, json, cls_task,
			   gen ? DESC_PRESET_OBJECT : DESC_PRESET_SURFACE, false);
	}
	xfree(qv);
	for (int i = 0; i < n_cls && cls_names; i++)
		xfree(cls_names[i]);
	xfree(cls_names);
	for (size_t i = 0; i < R.n; i++) {
		xfree(R.r[i].name);
		xfree(R.r[i].v);
		describe_textures_free(&R.r[i].tex, R.r[i].n_tex);
		scan_release(&R.r[i].s);
	}
	xfree(R.r);
	xfree(R.ids);
	xfree(R.vecs);
	for (size_t i = 0; i < nf; i++)
		xfree(files[i]);
	xfree(files);
	return out_finish(EXIT_OK);
}
