/*
 * perturb.c - make a "sculpt" from a scan: the perturbations of
 * tests/lib/gen.h applied to a scan file, written as PLY, OBJ or STL.
 * Used by tests/cli/query.sh and scripts/demo.
 *
 *   perturb [--rigid] [--scale S] [--subdivide L] [--smooth N] [--noise MM]
 *           [--decimate F] [--points N] [--graded RATIO] [--crop KEEP]
 *           [--view] [--holes FRAC] [--outliers FRAC] [--flip SHARE]
 *           [--no-colour] [--seed K] IN OUT
 *
 * Steps run in the order rigid, subdivide, smooth, noise, decimate,
 * points, crop, view, holes, outliers, flip.  The
 * texture of IN (if any) is copied beside OUT while the UVs survive.
 * Same arguments, same bytes.  Exit status: 0, 64 usage, else sysexits
 * from the failing step.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/gen.c"

#include "common/exitcodes.h"
#include "common/out.h"
#include "indexer/describe.h"

#include "common/banned.h"

static const char perturb_usage[] =
	"usage: perturb [options] IN OUT\n"
	"\n"
	"  --rigid           random rotation and translation (seeded)\n"
	"  --scale S         uniform scale factor (default 1)\n"
	"  --subdivide L     L (1-3) levels of midpoint subdivision, 4x the\n"
	"                    triangles each, the surface unchanged\n"
	"  --smooth N        N iterations of Taubin smoothing\n"
	"  --noise MM        Gaussian noise along the normals, sigma in mm\n"
	"  --decimate F      keep about 1/F of the vertices (F > 1), by quadric\n"
	"                    edge collapse (a cloud: by clustering)\n"
	"  --points N        sample N points from the surface (a point cloud)\n"
	"  --graded RATIO    with --points: density falling RATIO-fold across the\n"
	"                    scan along a random direction (RATIO >= 1)\n"
	"  --crop KEEP       keep about KEEP (0..1] of the scan, cut by a plane\n"
	"  --view            keep what one scanner position sees (a random\n"
	"                    direction; back and hidden surfaces go)\n"
	"  --holes FRAC      cut 5 holes taking about FRAC (0..1) of the scan\n"
	"  --outliers FRAC   add FRAC (0..1] times as many stray triangles (a\n"
	"                    cloud: points) around the scan\n"
	"  --flip SHARE      turn about SHARE (0..1] of the triangles the other\n"
	"                    way round (1: the mesh inside out)\n"
	"  --no-colour       drop vertex colours and textures\n"
	"  --seed K          seed of every random step (default 1)\n"
	"  -h, --help        show this help\n";

enum { OPT_RIGID = 256, OPT_SCALE, OPT_NOISE, OPT_DECIMATE, OPT_POINTS, OPT_CROP,
       OPT_NOCOLOUR, OPT_SEED, OPT_VIEW, OPT_GRADED, OPT_HOLES, OPT_OUTLIERS,
       OPT_SUBDIVIDE, OPT_SMOOTH, OPT_FLIP };

static const struct option perturb_options[] = {
	{ "rigid", no_argument, NULL, OPT_RIGID },
	{ "scale", required_argument, NULL, OPT_SCALE },
	{ "noise", required_argument, NULL, OPT_NOISE },
	{ "decimate", required_argument, NULL, OPT_DECIMATE },
	{ "points", required_argument, NULL, OPT_POINTS },
	{ "crop", required_argument, NULL, OPT_CROP },
	{ "no-colour", no_argument, NULL, OPT_NOCOLOUR },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "view", no_argument, NULL, OPT_VIEW },
	{ "graded", required_argument, NULL, OPT_GRADED },
	{ "holes", required_argument, NULL, OPT_HOLES },
	{ "outliers", required_argument, NULL, OPT_OUTLIERS },
	{ "subdivide", required_argument, NULL, OPT_SUBDIVIDE },
	{ "smooth", required_argument, NULL, OPT_SMOOTH },
	{ "flip", required_argument, NULL, OPT_FLIP },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int number(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno == ERANGE || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

static int fail(const struct err *e)
{
	char buf[ERR_PATH_MAX + 300];
	fprintf(stderr, "perturb: %s\n", err_format(e, buf, sizeof(buf)));
	return err_exit_status(e->code);
}

/* Replace *s by the scan a step built (or keep it when the step failed). */
static void take(struct scan *s, struct scan *next)
{
	scan_release(s);
	*s = *next;
	scan_init(next);
}

int main(int argc, char **argv)
{
	double scale = 1, noise = 0, decimate = 0, points = 0, crop = 0, seedd = 1;
	double graded = 1, holes = 0, outliers = 0, subdivide = 0, smooth = 0, flip = 0;
	bool rigid = false, nocolour = false, view = false;
	struct scan s, t;
	struct image *tex = NULL;
	struct err e;
	size_t n_failed = 0;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "h", perturb_options, NULL)) != -1) {
		double *dst = NULL, lo = 0, hi = 0;
		switch (c) {
		case OPT_RIGID: rigid = true; continue;
		case OPT_NOCOLOUR: nocolour = true; continue;
		case OPT_VIEW: view = true; continue;
		case OPT_SCALE: dst = &scale; lo = 1e-6; hi = 1e6; break;
		case OPT_NOISE: dst = &noise; lo = 0; hi = 1e6; break;
		case OPT_DECIMATE: dst = &decimate; lo = 1.0001; hi = 1e6; break;
		case OPT_POINTS: dst = &points; lo = 16; hi = 1e8; break;
		case OPT_CROP: dst = &crop; lo = 1e-3; hi = 1; break;
		case OPT_SEED: dst = &seedd; lo = 0; hi = 9e15; break;
		case OPT_GRADED: dst = &graded; lo = 1; hi = 1e6; break;
		case OPT_HOLES: dst = &holes; lo = 1e-3; hi = 0.999; break;
		case OPT_OUTLIERS: dst = &outliers; lo = 1e-6; hi = 1; break;
		case OPT_SUBDIVIDE: dst = &subdivide; lo = 1; hi = 3; break;
		case OPT_SMOOTH: dst = &smooth; lo = 1; hi = 1000; break;
		case OPT_FLIP: dst = &flip; lo = 1e-6; hi = 1; break;
		case 'h':
			fputs(perturb_usage, stdout);
			return out_finish(EXIT_OK);
		default:
			fputs(perturb_usage, stderr);
			return EXIT_USAGE;
		}
		if (number(optarg, lo, hi, dst) < 0 ||
		    ((c == OPT_SUBDIVIDE || c == OPT_SMOOTH) && *dst != floor(*dst))) {
			fprintf(stderr, "perturb: bad value '%s' for --%s\n", optarg,
				perturb_options[c - OPT_RIGID].name);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fputs(perturb_usage, stderr);
		return EXIT_USAGE;
	}
	if (graded != 1 && !(points > 0)) {
		fprintf(stderr, "perturb: --graded needs --points\n");
		return EXIT_USAGE;
	}
	const char *in = argv[optind], *out = argv[optind + 1];
	const char *dot = strrchr(out, '.');
	int fmt = !dot ? -1 : !strcmp(dot, ".ply") ? GEN_FMT_PLY : !strcmp(dot, ".obj") ? GEN_FMT_OBJ
		: !strcmp(dot, ".stl") ? GEN_FMT_STL : -1;
	if (fmt < 0) {
		fprintf(stderr, "perturb: %s: write .ply, .obj or .stl\n", out);
		return EXIT_USAGE;
	}
	uint64_t seed = (uint64_t)seedd;

	err_init(&e);
	scan_init(&s);
	scan_init(&t);
	if ((rc = scan_read_file(in, NULL, &s, &e)) < 0 ||
	    (rc = describe_load_textures(&s, NULL, &tex, &n_failed, &e)) < 0)
		goto out;
	if (rigid) {
		if ((rc = gen_rigid(&s, seed, scale, 50, NULL, NULL, &e)) < 0)
			goto out;
	} else if (scale != 1) {
		for (size_t i = 0; i < 3 * s.n_vertices; i++)
			s.positions[i] = (float)(s.positions[i] * scale);
		for (int k = 0; k < 3; k++) {
			s.bbox_min[k] = (float)(s.bbox_min[k] * scale);
			s.bbox_max[k] = (float)(s.bbox_max[k] * scale);
		}
	}
	if (subdivide > 0) {
		if ((rc = gen_subdivide(&s, (int)subdivide, &t, &e)) < 0)
			goto out;
		take(&s, &t);
	}
	if (smooth > 0 && (rc = gen_smooth(&s, (int)smooth, &e)) < 0)
		goto out;
	if (noise > 0 && (rc = gen_noise(&s, seed + 1, noise, &e)) < 0)
		goto out;
	if (decimate > 0) {
		if ((rc = gen_decimate(&s, decimate, &t, &e)) < 0)
			goto out;
		take(&s, &t);
	}
	if (points > 0) {
		if ((rc = graded > 1 ? gen_graded_points(&s, (size_t)points, graded, seed + 2, &t, &e)
				     : gen_sample_points(&s, (size_t)points, seed + 2, &t, &e)) < 0)
			goto out;
		take(&s, &t);
	}
	if (crop > 0) {
		if ((rc = gen_crop(&s, crop, seed + 3, &t, &e)) < 0)
			goto out;
		take(&s, &t);
	}
	if (view) {
		double dir[3];
		gen_direction(seed + 4, dir);
		if ((rc = gen_view(&s, dir, &t, &e)) < 0)
			goto out;
		take(&s, &t);
	}
	if (holes > 0) {
		if ((rc = gen_holes(&s, 5, holes, seed + 5, &t, &e)) < 0)
			goto out;
		take(&s, &t);
	}
	if (outliers > 0) {
		if ((rc = gen_outliers(&s, outliers, seed + 6, &t, &e)) < 0)
			goto out;
		take(&s, &t);
	}
	if (flip > 0 && (rc = gen_flip(&s, flip, seed + 7, &e)) < 0)
		goto out;
	if (nocolour) {
		xfree(s.colors);
		s.colors = NULL;
		xfree(s.face_colors);
		s.face_colors = NULL;
		describe_textures_free(&tex, s.n_textures);
		for (size_t i = 0; i < s.n_materials; i++)
			s.materials[i].texture = -1;
	}
	const struct image *t0 = tex && s.n_textures && tex[0].rgba && (s.uvs || s.corner_uvs) ? &tex[0] : NULL;
	rc = gen_write(out, (enum gen_format)fmt, &s, t0, &e);
out:
	describe_textures_free(&tex, s.n_textures);
	scan_release(&s);
	scan_release(&t);
	return out_finish(rc < 0 ? fail(&e) : EXIT_OK);
}
