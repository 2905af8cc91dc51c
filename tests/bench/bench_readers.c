/*
 * bench_readers.c - read speed of refscan's scan readers against assimp's
 * importers, on the same files, in the same run.
 *
 *   bench_readers [--data DIR] [--json FILE] [--runs N] [--triangles N]
 *                 [--budget SECONDS]
 *
 * Inputs are generated once (seeded, so identical on every machine) and
 * cached in DIR (default $REFSCAN_BENCH_DATA, else build/bench-data): a
 * scanner-like surface of ~2M triangles written as binary PLY (positions,
 * normals, colours), ascii PLY (the same), OBJ (v/vt/vn + MTL) and binary
 * STL.  For each file the page cache is warmed by reading it once, then
 * each reader loads it up to N times (default 5; fewer when a reader has
 * used up the per-file time budget, at least 2):
 *
 *   refscan  scan_read_file(path): map, detect, parse, validate,
 *            triangulate, load the MTL and resolve textures
 *   assimp   aiImportFile(path, 0): its importer with no post-processing
 *            steps, the least work assimp can be asked to do
 *
 * Freeing the result is not timed for either.  Figures: MB/s (10^6 bytes
 * of file per second) and million triangles per second, best and median;
 * the ratio is refscan's median speed over assimp's.  Targets printed
 * beside them: binary PLY >= 1 GB/s and >= 4x assimp; OBJ >= 0.3 GB/s.
 * The same figures by process CPU time (all threads) are printed below
 * each row: on a shared machine, wall time also counts waiting for a CPU.
 *
 * JSON figures go to FILE (default $REFSCAN_BENCH_JSON when set).
 */
#include <assimp/cimport.h>
#include <assimp/scene.h>
#include <assimp/version.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* the generator is shared with the unit tests and scangen */
#include "../lib/gen.c"

#include "common/banned.h"

#define MAX_RUNS 50

struct input {
	const char *key;       /* "ply-binary", ... (JSON) */
	const char *label;     /* table */
	const char *suffix;    /* file name after the stem */
	enum gen_format fmt;
	double min_mb_s;       /* target for refscan's median, 0 = none */
	double min_ratio;      /* target for refscan / assimp, 0 = none */
};

static const struct input inputs[] = {
	{ "ply-binary", "PLY binary", "-bin.ply", GEN_FMT_PLY, 1000, 4 },
	{ "ply-ascii", "PLY ascii", "-ascii.ply", GEN_FMT_PLY_ASCII, 0, 0 },
	{ "obj", "OBJ v/vt/vn", ".obj", GEN_FMT_OBJ, 300, 0 },
	{ "stl-binary", "STL binary", "-bin.stl", GEN_FMT_STL, 0, 0 },
};
#define N_INPUTS (sizeof(inputs) / sizeof(inputs[0]))

struct timing {
	int ok;
	char error[300];
	size_t triangles;      /* as the reader reports them */
	int runs;
	double t[MAX_RUNS];    /* wall seconds */
	double cpu[MAX_RUNS];  /* process CPU seconds, all threads */
	double best, median;
	double cpu_median;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median_of(const double *v, int n, double *best)
{
	double s[MAX_RUNS];
	memcpy(s, v, (size_t)n * sizeof(double));
	qsort(s, (size_t)n, sizeof(double), cmp_dbl);
	if (best)
		*best = s[0];
	return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static void summarise(struct timing *t)
{
	t->median = median_of(t->t, t->runs, &t->best);
	t->cpu_median = median_of(t->cpu, t->runs, NULL);
}

/* Read the whole file once so both readers start from the page cache. */
static int warm(const char *path, off_t *size)
{
	static char buf[1 << 20];
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	close(fd);
	*size = st.st_size;
	return n < 0 ? -1 : 0;
}

static void time_refscan(const char *path, int runs, double budget, struct timing *t)
{
	double spent = 0;
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < runs && (i < 2 || spent < budget); i++) {
		struct scan s;
		struct err e;
		char buf[ERR_PATH_MAX + 300];
		err_init(&e);
		double c0 = cpu_now(), t0 = now();
		int rc = scan_read_file(path, NULL, &s, &e);
		double dt = now() - t0, dc = cpu_now() - c0;
		if (rc) {
			snprintf(t->error, sizeof(t->error), "%s", err_format(&e, buf, sizeof(buf)));
			scan_release(&s);
			t->ok = 0;
			return;
		}
		t->triangles = s.n_faces;
		scan_release(&s);
		t->cpu[t->runs] = dc;
		t->t[t->runs++] = dt;
		spent += dt;
	}
	t->ok = 1;
	summarise(t);
}

static void time_assimp(const char *path, int runs, double budget, struct timing *t)
{
	double spent = 0;
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < runs && (i < 2 || spent < budget); i++) {
		double c0 = cpu_now(), t0 = now();
		const struct aiScene *sc = aiImportFile(path, 0);
		double dt = now() - t0, dc = cpu_now() - c0;
		if (!sc) {
			snprintf(t->error, sizeof(t->error), "%s", aiGetErrorString());
			t->ok = 0;
			return;
		}
		size_t faces = 0;
		for (unsigned m = 0; m < sc->mNumMeshes; m++)
			faces += sc->mMeshes[m]->mNumFaces;
		aiReleaseImport(sc);
		t->triangles = faces;
		t->cpu[t->runs] = dc;
		t->t[t->runs++] = dt;
		spent += dt;
	}
	t->ok = 1;
	summarise(t);
}

/* Generate the inputs that are not cached yet. */
static int make_inputs(const char *dir, const char *stem, size_t triangles)
{
	char path[4096];
	int missing = 0;
	for (size_t i = 0; i < N_INPUTS; i++) {
		snprintf(path, sizeof(path), "%s/%s%s", dir, stem, inputs[i].suffix);
		missing |= access(path, F_OK) != 0;
	}
	if (!missing)
		return 0;
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		fprintf(stderr, "bench_readers: cannot create %s: %s\n", dir, strerror(errno));
		return -1;
	}
	struct gen_params p;
	struct scan s;
	struct err e;
	char buf[ERR_PATH_MAX + 300];
	gen_params_init(&p);
	p.form = GEN_FORM_BLOB;
	p.material = GEN_MAT_STONE;
	p.size_mm = 120;
	p.triangles = triangles;
	p.seed = 2024;
	p.color = GEN_COLOR_VERTEX;
	p.uvs = true;
	err_init(&e);
	fprintf(stderr, "bench_readers: generating %zu-triangle inputs in %s\n", triangles, dir);
	double t0 = now();
	if (gen_scan(&p, &s, NULL, &e)) {
		fprintf(stderr, "bench_readers: %s\n", err_format(&e, buf, sizeof(buf)));
		return -1;
	}
	int rc = 0;
	for (size_t i = 0; i < N_INPUTS && !rc; i++) {
		snprintf(path, sizeof(path), "%s/%s%s", dir, stem, inputs[i].suffix);
		if (access(path, F_OK) == 0)
			continue;
		/*
		 * Typical content per format: PLY from a scanner carries
		 * normals and colours; OBJ carries UVs and normals.  Views
		 * share the arrays and are never released.
		 */
		struct scan v = s;
		if (inputs[i].fmt == GEN_FMT_OBJ)
			v.colors = NULL;
		else
			v.uvs = NULL;
		rc = gen_write(path, inputs[i].fmt, &v, NULL, &e);
		if (rc)
			fprintf(stderr, "bench_readers: %s\n", err_format(&e, buf, sizeof(buf)));
	}
	scan_release(&s);
	fprintf(stderr, "bench_readers: generated in %.1f s\n", now() - t0);
	return rc ? -1 : 0;
}

static json_t *timing_json(const struct timing *t, double bytes, int with_error)
{
	json_t *o = json_object();
	json_object_set_new(o, "ok", json_boolean(t->ok));
	json_object_set_new(o, "error", t->ok || !with_error ? json_null() : json_string(t->error));
	if (!t->ok)
		return o;
	json_object_set_new(o, "triangles", json_integer((json_int_t)t->triangles));
	json_object_set_new(o, "runs", json_integer(t->runs));
	json_object_set_new(o, "best_s", json_real(t->best));
	json_object_set_new(o, "median_s", json_real(t->median));
	json_object_set_new(o, "best_mb_s", json_real(bytes / 1e6 / t->best));
	json_object_set_new(o, "median_mb_s", json_real(bytes / 1e6 / t->median));
	json_object_set_new(o, "best_mtri_s", json_real((double)t->triangles / 1e6 / t->best));
	json_object_set_new(o, "median_mtri_s", json_real((double)t->triangles / 1e6 / t->median));
	json_object_set_new(o, "median_cpu_s", json_real(t->cpu_median));
	json_object_set_new(o, "median_cpu_mb_s", json_real(bytes / 1e6 / t->cpu_median));
	return o;
}

static const char bench_usage[] =
	"usage: bench_readers [--data DIR] [--json FILE] [--runs N] [--triangles N] [--budget S]\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "json", required_argument, NULL, 'j' },
		{ "runs", required_argument, NULL, 'r' },
		{ "triangles", required_argument, NULL, 't' },
		{ "budget", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = getenv("REFSCAN_BENCH_DATA");
	const char *json_path = getenv("REFSCAN_BENCH_JSON");
	long runs = 5, triangles = 2000000;
	double budget = 10.0;
	int c;
	char *end;
	if (!dir || !*dir)
		dir = "build/bench-data";
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'j': json_path = optarg; break;
		case 'r':
			runs = strtol(optarg, &end, 10);
			if (*end || runs < 1 || runs > MAX_RUNS)
				goto usage;
			break;
		case 't':
			triangles = strtol(optarg, &end, 10);
			if (*end || triangles < 1000 || triangles > 100000000)
				goto usage;
			break;
		case 'b':
			budget = strtod(optarg, &end);
			if (*end || !(budget > 0))
				goto usage;
			break;
		case 'h':
			fputs(bench_usage, stdout);
			return 0;
		default:
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;

	char stem[64];
	snprintf(stem, sizeof(stem), "gen%d-blob-stone-%ld", GEN_VERSION, triangles);
	if (make_inputs(dir, stem, (size_t)triangles))
		return 1;

	json_t *root = json_object(), *files = json_array();
	char ver[32];
	snprintf(ver, sizeof(ver), "%u.%u.%u", aiGetVersionMajor(), aiGetVersionMinor(),
		 aiGetVersionPatch());
	json_object_set_new(root, "bench", json_string("bench_readers"));
	json_object_set_new(root, "assimp_version", json_string(ver));
	json_object_set_new(root, "assimp_flags", json_integer(0));
	json_object_set_new(root, "runs", json_integer(runs));

	double load[3] = { 0, 0, 0 };
	if (getloadavg(load, 3) < 1)
		load[0] = -1;
	printf("scan readers: refscan scan_read_file vs assimp %s aiImportFile(path, 0), "
	       "page cache warm, up to %ld runs each, load average %.2f on %ld CPUs\n",
	       ver, runs, load[0], sysconf(_SC_NPROCESSORS_ONLN));
	json_object_set_new(root, "load_average", json_real(load[0]));
	json_object_set_new(root, "cpus", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
	printf("%-12s %8s %9s | %-21s %-15s | %-21s %-15s | %6s | %s\n", "format", "MB",
	       "triangles", "refscan MB/s best/med", "Mtri/s best/med",
	       "assimp MB/s best/med", "Mtri/s best/med", "ratio", "target");
	int status = 0;
	for (size_t i = 0; i < N_INPUTS; i++) {
		const struct input *in = &inputs[i];
		char path[4096];
		off_t size = 0;
		snprintf(path, sizeof(path), "%s/%s%s", dir, stem, in->suffix);
		if (warm(path, &size)) {
			fprintf(stderr, "bench_readers: cannot read %s: %s\n", path, strerror(errno));
			status = 1;
			continue;
		}
		double bytes = (double)size;
		struct timing r, a;
		time_refscan(path, (int)runs, budget, &r);
		time_assimp(path, (int)runs, budget, &a);
		double ratio = r.ok && a.ok ? a.median / r.median : 0;
		char rs[64] = "failed", rt[64] = "", as[64] = "failed", at[64] = "", rat[16] = "-";
		if (r.ok) {
			snprintf(rs, sizeof(rs), "%9.0f / %-9.0f", bytes / 1e6 / r.best, bytes / 1e6 / r.median);
			snprintf(rt, sizeof(rt), "%6.2f / %-6.2f", (double)r.triangles / 1e6 / r.best,
				 (double)r.triangles / 1e6 / r.median);
		}
		if (a.ok) {
			snprintf(as, sizeof(as), "%9.0f / %-9.0f", bytes / 1e6 / a.best, bytes / 1e6 / a.median);
			snprintf(at, sizeof(at), "%6.2f / %-6.2f", (double)a.triangles / 1e6 / a.best,
				 (double)a.triangles / 1e6 / a.median);
		}
		if (ratio > 0)
			snprintf(rat, sizeof(rat), "%5.2fx", ratio);

		/* targets, judged on refscan's median */
		char target[160] = "-";
		json_t *targets = json_array();
		size_t tn = 0;
		if (in->min_mb_s > 0) {
			double v = r.ok ? bytes / 1e6 / r.median : 0;
			int met = v >= in->min_mb_s;
			tn += (size_t)snprintf(target + tn, sizeof(target) - tn, "%s>= %.1f GB/s %s",
					       tn ? ", " : "", in->min_mb_s / 1000, met ? "met" : "MISSED");
			json_array_append_new(targets, json_pack("{s:s, s:f, s:f, s:b}", "what",
				"refscan median MB/s", "min", in->min_mb_s, "value", v, "met", met));
		}
		if (in->min_ratio > 0) {
			int met = ratio >= in->min_ratio;
			tn += (size_t)snprintf(target + tn, sizeof(target) - tn, "%s>= %.0fx assimp %s",
					       tn ? ", " : "", in->min_ratio, met ? "met" : "MISSED");
			json_array_append_new(targets, json_pack("{s:s, s:f, s:f, s:b}", "what",
				"refscan/assimp median speed", "min", in->min_ratio, "value", ratio, "met", met));
		}
		printf("%-12s %8.1f %9zu | %-21s %-15s | %-21s %-15s | %6s | %s\n", in->label,
		       bytes / 1e6, r.ok ? r.triangles : a.triangles, rs, rt, as, at, rat, target);
		if (!r.ok)
			printf("  refscan: %s\n", r.error);
		if (!a.ok)
			printf("  assimp: %s\n", a.error);
		/* on a busy machine wall time includes waiting for a CPU */
		if (r.ok && a.ok)
			printf("  %-10s by CPU time (median): refscan %.0f MB/s, assimp %.0f MB/s, %.2fx\n",
			       "", bytes / 1e6 / r.cpu_median, bytes / 1e6 / a.cpu_median,
			       a.cpu_median / r.cpu_median);
		if (r.ok && a.ok && r.triangles != a.triangles)
			printf("  note: refscan read %zu triangles, assimp %zu\n", r.triangles, a.triangles);
		fflush(stdout);

		json_t *f = json_object();
		json_object_set_new(f, "format", json_string(in->key));
		json_object_set_new(f, "path", json_string(path));
		json_object_set_new(f, "bytes", json_integer((json_int_t)size));
		json_object_set_new(f, "refscan", timing_json(&r, bytes, 1));
		json_object_set_new(f, "assimp", timing_json(&a, bytes, 1));
		json_object_set_new(f, "ratio_median", ratio > 0 ? json_real(ratio) : json_null());
		json_object_set_new(f, "targets", targets);
		json_array_append_new(files, f);
	}
	json_object_set_new(root, "files", files);
	if (json_path && *json_path) {
		if (json_dump_file(root, json_path, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) != 0) {
			fprintf(stderr, "bench_readers: cannot write %s\n", json_path);
			status = 1;
		}
	}
	json_decref(root);
	if (fflush(stdout) != 0 || ferror(stdout))
		status = 1;
	return status;
usage:
	fputs(bench_usage, stderr);
	return 64;
}
