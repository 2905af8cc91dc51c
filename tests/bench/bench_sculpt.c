/*
 * bench_sculpt.c - what a query spends on its sculpt before searching:
 * reading the scan, decoding its texture and describing it, per million
 * triangles.
 *
 *   bench_sculpt [--data DIR] [--triangles N] [--texture-px P] [--runs R]
 *
 * Input (generated once, seeded, cached in DIR, default
 * $REFSCAN_BENCH_DATA, else build/bench-data): a scanner-like stone tile
 * of N triangles (default 1,000,000) as OBJ + MTL with a P x P PNG
 * texture (default 4096) mapped through its UVs, so colour is described
 * from the texture.  Each run (best of R, default 3) times, as
 * `refscan query` does them:
 *
 *   parse     scan_read_file(): map, parse, validate, triangulate, MTL
 *   texture   describe_load_textures(): decode the PNG
 *   describe  describe_scan() with every OpenMP thread
 *
 * and reports each in ms and ms per million triangles.  Peer measured in
 * the same run: assimp's aiImportFile() of the same OBJ (no
 * post-processing), for the parse step.  One JSON object goes to
 * $REFSCAN_BENCH_JSON (or stdout).
 */
#include <assimp/cimport.h>
#include <assimp/scene.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* the generator is shared with the unit tests and scangen */
#include "../lib/gen.c"

#include "indexer/describe.h"

#include "common/banned.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_count(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (end == s || *end || errno == ERANGE || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Generate the input unless a previous run left it. */
static int make_input(const char *dir, size_t tris, uint32_t px, char *path, size_t n)
{
	struct gen_params p;
	struct scan s;
	struct image tex;
	struct err e;
	char name[96];
	struct stat st;

	snprintf(name, sizeof(name), "sculpt-%zu-%u", tris, px);
	snprintf(path, n, "%s/%s.obj", dir, name);
	if (stat(path, &st) == 0)
		return 0;
	gen_params_init(&p);
	p.form = GEN_FORM_TILE;
	p.material = GEN_MAT_STONE;
	p.triangles = tris;
	p.color = GEN_COLOR_TEXTURE;
	p.texture_px = px;
	char texname[128];
	snprintf(texname, sizeof(texname), "%s.png", name);
	p.texture_name = texname;
	err_init(&e);
	image_init(&tex);
	fprintf(stderr, "bench_sculpt: generating %s (once)\n", path);
	int rc = gen_scan(&p, &s, &tex, &e);
	if (!rc)
		rc = gen_write(path, GEN_FMT_OBJ, &s, &tex, &e);
	scan_release(&s);
	image_release(&tex);
	if (rc) {
		char buf[ERR_PATH_MAX + 300];
		fprintf(stderr, "bench_sculpt: %s\n", err_format(&e, buf, sizeof(buf)));
	}
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'D' },
		{ "triangles", required_argument, NULL, 't' },
		{ "texture-px", required_argument, NULL, 'p' },
		{ "runs", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = getenv("REFSCAN_BENCH_DATA");
	unsigned long tris = 1000000, px = 4096, runs = 3;
	char path[4096];
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dir = optarg; break;
		case 't':
			if (parse_count(optarg, 100, 100000000, &tris) < 0)
				goto usage;
			break;
		case 'p':
			if (parse_count(optarg, 16, 16384, &px) < 0)
				goto usage;
			break;
		case 'r':
			if (parse_count(optarg, 1, 100, &runs) < 0)
				goto usage;
			break;
		case 'h':
			printf("usage: bench_sculpt [--data DIR] [--triangles N] [--texture-px P] [--runs R]\n");
			return 0;
		default:
			goto usage;
		}
	}
	if (!dir || !*dir)
		dir = "build/bench-data";
	mkdir(dir, 0777);
	if (make_input(dir, tris, (uint32_t)px, path, sizeof(path)) < 0)
		return 1;

	double best_parse = 1e30, best_tex = 1e30, best_desc = 1e30, best_assimp = 1e30;
	size_t n_faces = 0, dim = describe_dim();
	unsigned flags = 0;
	float *v = malloc(dim * sizeof(float));
	if (!v)
		return 1;
	for (unsigned long r = 0; r < runs; r++) {
		struct scan s;
		struct image *tex = NULL;
		struct describe_opts o;
		struct desc_info info;
		struct err e;
		size_t n_failed = 0;
		err_init(&e);
		double t0 = now_s();
		if (scan_read_file(path, NULL, &s, &e) < 0)
			goto fail;
		double t1 = now_s();
		if (describe_load_textures(&s, NULL, &tex, &n_failed, &e) < 0)
			goto fail;
		double t2 = now_s();
		describe_opts_init(&o);
		o.textures = tex;
		o.n_textures = tex ? s.n_textures : 0;
		if (describe_scan(&s, &o, v, &info, &e) < 0)
			goto fail;
		double t3 = now_s();
		n_faces = s.n_faces;
		flags = info.flags;
		describe_textures_free(&tex, s.n_textures);
		scan_release(&s);
		best_parse = t1 - t0 < best_parse ? t1 - t0 : best_parse;
		best_tex = t2 - t1 < best_tex ? t2 - t1 : best_tex;
		best_desc = t3 - t2 < best_desc ? t3 - t2 : best_desc;

		double a0 = now_s();
		const struct aiScene *sc = aiImportFile(path, 0);
		double a1 = now_s();
		if (sc) {
			best_assimp = a1 - a0 < best_assimp ? a1 - a0 : best_assimp;
			aiReleaseImport(sc);
		}
		continue;
fail:
		{
			char buf[ERR_PATH_MAX + 300];
			fprintf(stderr, "bench_sculpt: %s\n", err_format(&e, buf, sizeof(buf)));
			free(v);
			return 1;
		}
	}
	free(v);
	double mtri = (double)n_faces / 1e6, total = best_parse + best_tex + best_desc;
	printf("sculpt: %s, %zu triangles, %lux%lu texture, %d threads, best of %lu\n", path, n_faces,
	       px, px, omp_get_max_threads(), runs);
	printf("  %-10s %9s %12s\n", "step", "ms", "ms/Mtri");
	printf("  %-10s %9.1f %12.1f\n", "parse", best_parse * 1e3, best_parse * 1e3 / mtri);
	printf("  %-10s %9.1f %12.1f\n", "texture", best_tex * 1e3, best_tex * 1e3 / mtri);
	printf("  %-10s %9.1f %12.1f\n", "describe", best_desc * 1e3, best_desc * 1e3 / mtri);
	printf("  %-10s %9.1f %12.1f\n", "total", total * 1e3, total * 1e3 / mtri);
	if (best_assimp < 1e30)
		printf("  peer: assimp aiImportFile %.1f ms (%.1f ms/Mtri); refscan parse is %.2fx its speed\n",
		       best_assimp * 1e3, best_assimp * 1e3 / mtri, best_assimp / best_parse);
	printf("  colour from the texture: %s\n", flags & DESC_HAS_COLOUR ? "yes" : "no");

	json_t *o = json_pack("{s:I, s:I, s:i, s:f, s:f, s:f, s:f, s:f, s:o, s:b}",
			      "triangles", (json_int_t)n_faces, "texture_px", (json_int_t)px,
			      "threads", omp_get_max_threads(),
			      "parse_ms_per_mtri", best_parse * 1e3 / mtri,
			      "texture_ms_per_mtri", best_tex * 1e3 / mtri,
			      "describe_ms_per_mtri", best_desc * 1e3 / mtri,
			      "total_ms_per_mtri", total * 1e3 / mtri,
			      "total_ms", total * 1e3,
			      "assimp_parse_ms_per_mtri",
			      best_assimp < 1e30 ? json_real(best_assimp * 1e3 / mtri) : json_null(),
			      "colour", (flags & DESC_HAS_COLOUR) != 0);
	const char *jp = getenv("REFSCAN_BENCH_JSON");
	FILE *jf = jp && *jp ? fopen(jp, "w") : stdout;
	if (o && jf) {
		json_dumpf(o, jf, JSON_COMPACT);
		fputc('\n', jf);
		if (jf != stdout)
			fclose(jf);
	}
	json_decref(o);
	return 0;
usage:
	fprintf(stderr, "usage: bench_sculpt [--data DIR] [--triangles N] [--texture-px P] [--runs R]\n");
	return 64;
}
