/*
 * bench_describe.c - speed of describe_scan() on a large textured scan,
 * against peers measured in the same run.
 *
 *   bench_describe [--triangles N] [--texture-px N] [--runs N] [--json FILE]
 *
 * The input is generated in memory (seeded, identical on every machine):
 * a scanner-like stone blob of ~1M triangles with a 4096^2 texture and
 * per-vertex UVs, in millimetres.  Timed, best and median of N runs
 * (default 3):
 *
 *   describe   describe_scan() with 1 thread and with 2 threads: every
 *              block, texture sampled at the surface
 *   views      describe_views() with 2 threads: the DESC_VIEWS views the
 *              index stores beside the scan's own vector
 *   d2         the D2 shape distribution alone (Osada et al. 2002) on the
 *              same mesh: area CDF, 8192 samples, 65536 pairs; the classic
 *              cheap descriptor, the peer the cost is judged against
 *   areas      one pass summing the triangle areas: the memory-bound floor
 *              of anything that reads every triangle
 *   decode     image_read_file() of the texture written as PNG: the I/O
 *              side, kept apart from the pure describer
 *
 * Wall and CPU time are printed with the load average, because the
 * machine may be shared.  Figures: ms, ms per million triangles, and the
 * ratios describe / d2 and describe / areas.  Target printed beside them:
 * describe with 2 threads < 500 ms for 1M triangles and a 4k texture.
 * JSON figures go to FILE (default $REFSCAN_BENCH_JSON when set).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the generator is shared with the unit tests and scangen */
#include "../lib/gen.c"

#include "common/out.h"
#include "formats/image.h"
#include "indexer/describe.h"
#include "indexer/desc_int.h"

#include "common/banned.h"

#define MAX_RUNS 20

static double wall(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

struct timing {
	double best, median, cpu_median; /* ms */
};

static void summarise(double *w, double *c, int n, struct timing *t)
{
	qsort(w, (size_t)n, sizeof(double), cmp_double);
	qsort(c, (size_t)n, sizeof(double), cmp_double);
	t->best = w[0] * 1e3;
	t->median = w[n / 2] * 1e3;
	t->cpu_median = c[n / 2] * 1e3;
}

/* D2 alone: prepare (areas, CDF), 8192 stratified samples, the histogram. */
static int d2_only(const struct scan *s, float *h, struct err *e)
{
	struct describe_opts o;
	struct desc_info info;
	struct desc_src src;
	struct desc_pts C;
	describe_opts_init(&o);
	o.threads = 1;
	memset(&info, 0, sizeof(info));
	memset(&C, 0, sizeof(C));
	int rc = desc_src_init(&src, s, &o, &info, e);
	if (!rc)
		rc = desc_sample(&src, DESC_N_CENTRES, DS_CENTRES, false, &C, e);
	if (!rc)
		desc_d2_hist(&C, 1, h);
	desc_pts_release(&C);
	desc_src_release(&src);
	return rc;
}

int main(int argc, char **argv)
{
	long tris = 1000000, tex_px = 4096, runs = 3;
	const char *json_path = getenv("REFSCAN_BENCH_JSON");
	static const struct option opts[] = {
		{ "triangles", required_argument, NULL, 't' },
		{ "texture-px", required_argument, NULL, 'x' },
		{ "runs", required_argument, NULL, 'r' },
		{ "json", required_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;
		long v = 0;
		if (c == 'j') {
			json_path = optarg;
			continue;
		}
		if (c == '?')
			return 64;
		errno = 0;
		v = strtol(optarg, &end, 10);
		if (errno || *end || v < 1) {
			fprintf(stderr, "bench_describe: bad value '%s'\n", optarg);
			return 64;
		}
		if (c == 't')
			tris = v;
		else if (c == 'x')
			tex_px = v;
		else
			runs = v > MAX_RUNS ? MAX_RUNS : v;
	}

	struct gen_params p;
	struct scan s;
	struct image tex, dec;
	struct err e;
	err_init(&e);
	image_init(&tex);
	image_init(&dec);
	gen_params_init(&p);
	p.form = GEN_FORM_BLOB;
	p.material = GEN_MAT_STONE;
	p.triangles = (size_t)tris;
	p.color = GEN_COLOR_TEXTURE;
	p.texture_px = (uint32_t)tex_px;
	p.seed = 1;
	double t0 = wall();
	if (gen_scan(&p, &s, &tex, &e) < 0) {
		fprintf(stderr, "bench_describe: generating: %s\n", e.msg);
		return 70;
	}
	printf("describe benchmark: %zu triangles, %ux%u texture, generated in %.1f s\n",
	       s.n_faces, tex.width, tex.height, wall() - t0);

	/* the texture's decode, apart: write it once as PNG, read it back */
	char png[4096];
	const char *data = getenv("REFSCAN_BENCH_DATA");
	snprintf(png, sizeof(png), "%s/bench-describe-%ld.png", data ? data : "build", tex_px);
	double w[MAX_RUNS], cp[MAX_RUNS];
	struct timing t_dec = { 0, 0, 0 };
	if (image_write_png(png, tex.rgba, tex.width, tex.height, 4, &e) == 0) {
		for (int i = 0; i < runs; i++) {
			image_release(&dec);
			double a = wall(), b = cpu();
			if (image_read_file(png, NULL, &dec, &e) < 0)
				break;
			w[i] = wall() - a;
			cp[i] = cpu() - b;
		}
		summarise(w, cp, (int)runs, &t_dec);
	}

	float *v = alloc_array(describe_dim(), sizeof(float));
	float *v2 = alloc_array(describe_dim(), sizeof(float));
	float h[DESC_D2_BINS];
	struct timing t_desc[2], t_d2, t_area, t_views;
	struct describe_opts o;
	describe_opts_init(&o);
	o.textures = &tex;
	o.n_textures = s.n_textures;
	int threads[2] = { 1, 2 };
	bool same = true;
	for (int k = 0; k < 2; k++) {
		o.threads = threads[k];
		for (int i = 0; i < runs; i++) {
			double a = wall(), b = cpu();
			if (describe_scan(&s, &o, k ? v2 : v, NULL, &e) < 0) {
				fprintf(stderr, "bench_describe: %s\n", e.msg);
				return 70;
			}
			w[i] = wall() - a;
			cp[i] = cpu() - b;
		}
		summarise(w, cp, (int)runs, &t_desc[k]);
	}
	same = memcmp(v, v2, describe_dim() * sizeof(float)) == 0;
	float *vw = alloc_array(DESC_VIEWS, describe_dim() * sizeof(float));
	size_t n_views = 0;
	if (!vw)
		return 70;
	o.threads = 2;
	for (int i = 0; i < runs; i++) {
		double a = wall(), b = cpu();
		if (describe_views(&s, &o, v2, vw, &n_views, &e) < 0) {
			fprintf(stderr, "bench_describe: views: %s\n", e.msg);
			return 70;
		}
		w[i] = wall() - a;
		cp[i] = cpu() - b;
	}
	summarise(w, cp, (int)runs, &t_views);
	xfree(vw);
	for (int i = 0; i < runs; i++) {
		double a = wall(), b = cpu();
		d2_only(&s, h, &e);
		w[i] = wall() - a;
		cp[i] = cpu() - b;
	}
	summarise(w, cp, (int)runs, &t_d2);
	double sink = 0;
	for (int i = 0; i < runs; i++) {
		double a = wall(), b = cpu();
		sink += gen_surface_area(&s); /* reads every index and position once */
		w[i] = wall() - a;
		cp[i] = cpu() - b;
	}
	summarise(w, cp, (int)runs, &t_area);

	double mtri = (double)s.n_faces / 1e6, load[3] = { 0, 0, 0 };
	if (getloadavg(load, 3) < 0)
		load[0] = -1;
	printf("load average %.2f, %d CPUs, %ld runs (best / median wall ms, median CPU ms)\n",
	       load[0], omp_get_num_procs(), runs);
	printf("  %-22s %9.1f %9.1f %9.1f   %7.1f ms per M triangles\n", "describe, 1 thread",
	       t_desc[0].best, t_desc[0].median, t_desc[0].cpu_median, t_desc[0].median / mtri);
	printf("  %-22s %9.1f %9.1f %9.1f   %7.1f ms per M triangles  [target < 500 ms: %s]\n",
	       "describe, 2 threads", t_desc[1].best, t_desc[1].median, t_desc[1].cpu_median,
	       t_desc[1].median / mtri, t_desc[1].median < 500 ? "met" : "missed");
	printf("  %-22s %9.1f %9.1f %9.1f   %7.1f ms per M triangles  (%zu of %d views; index only)\n",
	       "views, 2 threads", t_views.best, t_views.median, t_views.cpu_median,
	       t_views.median / mtri, n_views, DESC_VIEWS);
	printf("  %-22s %9.1f %9.1f %9.1f\n", "d2 only (peer)", t_d2.best, t_d2.median,
	       t_d2.cpu_median);
	printf("  %-22s %9.1f %9.1f %9.1f\n", "area pass (floor)", t_area.best, t_area.median,
	       t_area.cpu_median);
	printf("  %-22s %9.1f %9.1f %9.1f   (I/O side, not in describe)\n", "texture decode",
	       t_dec.best, t_dec.median, t_dec.cpu_median);
	printf("  ratios: describe(2t) / d2 %.1fx, / area pass %.1fx; views / describe (2t) %.1fx; "
	       "1 -> 2 threads %.2fx; vectors identical: %s\n", t_desc[1].median / t_d2.median,
	       t_desc[1].median / t_area.median, t_views.median / t_desc[1].median,
	       t_desc[0].median / t_desc[1].median,
	       same ? "yes" : "NO");
	json_t *j = json_pack("{s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:b, s:b}",
			      "triangles", (json_int_t)s.n_faces, "texture_px", (json_int_t)tex_px,
			      "describe_1t_ms", t_desc[0].median, "describe_2t_ms", t_desc[1].median,
			      "describe_2t_cpu_ms", t_desc[1].cpu_median, "views_2t_ms", t_views.median,
			      "ms_per_mtri_2t", t_desc[1].median / mtri, "d2_ms", t_d2.median,
			      "area_pass_ms", t_area.median, "decode_ms", t_dec.median,
			      "load", load[0], "target_met", t_desc[1].median < 500,
			      "identical", same);
	if (json_path) {
		FILE *fp = fopen(json_path, "w");
		if (fp) {
			json_dumpf(j, fp, JSON_COMPACT);
			fputc('\n', fp);
			fclose(fp);
		}
	}
	json_decref(j);
	if (sink < 0)
		printf("%g\n", sink);
	xfree(v);
	xfree(v2);
	image_release(&tex);
	image_release(&dec);
	scan_release(&s);
	return same ? 0 : 1;
}
