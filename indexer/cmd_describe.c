/*
 * cmd_describe.c - `refscan describe [--json] FILE...`: compute the
 * descriptor of each scan and print its blocks, flags, physical figures
 * and relief bands for inspection (docs/descriptors.md has the layout).
 *
 * A bad file prints `refscan: PATH: ...` on stderr (and an {"ok":false}
 * object with --json) and the other files are still described.
 * Exit status: 0 all described; 1 some failed; otherwise the sysexits
 * code of the failure when every file failed (65 bad data, 66 missing,
 * 74 I/O), 64 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "describe.h"
#include "../common/alloc.h"
#include "../common/commands.h"
#include "../common/err.h"
#include "../common/exitcodes.h"
#include "../common/out.h"
#include "../formats/formats.h"
#include "../formats/image.h"
#include "../formats/scan.h"

#include "../common/banned.h"

static const char describe_usage[] =
	"usage: refscan describe [--json] [--values] [--seed N] [--units U] FILE...\n"
	"\n"
	"Compute the descriptor refscan searches with (schema " DESC_SCHEMA ") and\n"
	"print its blocks: global shape, local geometry, relief relative to size\n"
	"and in millimetres, colour, size; with the relief statistics (Sa, Sq,\n"
	"Ssk, Sku, Sdr, ridge-ness, 4-fold) of every band.  This is the scan's\n"
	"own vector; the index also stores those of 8 views of it (what one\n"
	"scanner position sees), which this does not compute.\n"
	"\n"
	"  --json       one JSON object per file per line, with the vector\n"
	"  --values     also print every value of every block\n"
	"  --seed N     sampling seed (default 1; the vector depends on it)\n"
	"  --units U    coordinates are in U (mm, cm, m, in, um) when the file\n"
	"               does not say\n"
	"  -h, --help   show this help\n";

enum { OPT_JSON = 256, OPT_VALUES, OPT_SEED, OPT_UNITS };

static const struct option describe_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "values", no_argument, NULL, OPT_VALUES },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "units", required_argument, NULL, OPT_UNITS },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const struct {
	unsigned flag;
	const char *name;
} flag_names[] = {
	{ DESC_HAS_COLOUR, "colour" },
	{ DESC_HAS_UNITS, "units" },
	{ DESC_POINT_CLOUD, "point_cloud" },
	{ DESC_NORMALS_GUESSED, "normals_guessed" },
	{ DESC_TEXTURE_MISSING, "texture_missing" },
	{ DESC_COLOUR_UNIFORM, "colour_uniform" },
	{ DESC_UNDERSAMPLED, "undersampled" },
	{ DESC_PARTIAL_COLOUR, "partial_colour" },
	{ DESC_LOCAL_SPARSE, "local_sparse" },
};

static double block_norm(const float *v, const struct desc_block *b)
{
	double s = 0;
	for (size_t i = b->offset; i < b->offset + b->length; i++)
		s += (double)v[i] * v[i];
	return sqrt(s);
}

/* A block is present when it holds a non-zero value. */
static bool block_present(const float *v, const struct desc_block *b)
{
	for (size_t i = b->offset; i < b->offset + b->length; i++)
		if (v[i] != 0)
			return true;
	return false;
}

static json_t *band_json(const struct desc_band *b)
{
	json_t *o = json_pack("{s:f, s:f, s:b}", "s", b->s, "l", b->l, "resolved", b->resolved);
	if (!b->resolved)
		json_object_set_new(o, "why", json_string(b->coarse ? "coarse" : "fine"));
	if (b->resolved) {
		json_object_set_new(o, "width", json_real(b->width));
		json_object_set_new(o, "sa", json_real(b->sa));
		json_object_set_new(o, "sq", json_real(b->sq));
		json_object_set_new(o, "ssk", json_real(b->ssk));
		json_object_set_new(o, "sku", json_real(b->sku));
		json_object_set_new(o, "sdr", json_real(b->sdr));
		json_object_set_new(o, "ridge", json_real(b->aniso2));
		json_object_set_new(o, "fourfold", json_real(b->aniso4));
	}
	return o;
}

static json_t *describe_json(const char *path, const struct scan *s, const float *v,
			     const struct desc_info *info)
{
	const struct desc_block *bl = describe_blocks();
	bool units = info->flags & DESC_HAS_UNITS;
	json_t *o = json_object();
	json_object_set_new(o, "path", json_string(path));
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "error", json_null());
	json_object_set_new(o, "schema", json_string(DESC_SCHEMA));
	json_object_set_new(o, "dim", json_integer((json_int_t)describe_dim()));
	json_t *fl = json_array();
	for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
		if (info->flags & flag_names[i].flag)
			json_array_append_new(fl, json_string(flag_names[i].name));
	json_object_set_new(o, "flags", fl);
	json_object_set_new(o, "units", json_string(units ? "mm" : scan_units_name(s->units)));
	json_object_set_new(o, "mm_per_unit", units ? json_real(info->mm_per_unit) : json_null());
	json_object_set_new(o, "points", json_integer((json_int_t)info->n_points));
	json_object_set_new(o, "faces", json_integer((json_int_t)info->n_faces));
	json_object_set_new(o, "skipped", json_integer((json_int_t)info->n_skipped));
	json_object_set_new(o, "specks", json_integer((json_int_t)info->n_specks));
	json_object_set_new(o, "extent", json_pack("[f,f,f]", info->extent[0],
						   info->extent[1], info->extent[2]));
	json_object_set_new(o, "area", json_real(info->area));
	json_object_set_new(o, "spacing", json_real(info->spacing));
	json_object_set_new(o, "noise", json_real(info->noise));
	json_object_set_new(o, "noise_spacings", json_real(info->noise_spacings));
	json_object_set_new(o, "colour_fraction", json_real(info->colour_fraction));
	json_t *blocks = json_array();
	for (int b = 0; b < DESC_N_BLOCKS; b++)
		json_array_append_new(blocks, json_pack("{s:s, s:i, s:i, s:f, s:b, s:f}",
			"name", bl[b].name, "offset", (json_int_t)bl[b].offset,
			"length", (json_int_t)bl[b].length, "weight", (double)bl[b].weight,
			"present", block_present(v, &bl[b]), "norm", block_norm(v, &bl[b])));
	json_object_set_new(o, "blocks", blocks);
	json_t *rel = json_array(), *mm = json_array();
	for (int k = 0; k < 3; k++) {
		json_array_append_new(rel, band_json(&info->relief[k]));
		if (units)
			json_array_append_new(mm, band_json(&info->relief_mm[k]));
	}
	json_object_set_new(o, "relief", rel);
	json_object_set_new(o, "relief_mm", mm);
	json_t *vec = json_array();
	for (size_t i = 0; i < describe_dim(); i++)
		json_array_append_new(vec, json_real((double)v[i]));
	json_object_set_new(o, "vector", vec);
	return o;
}

static void print_band(const char *unit, const struct desc_band *b)
{
	if (!b->resolved) {
		printf("    %8.3g-%-8.3g %-3s %s\n", b->s, b->l, unit,
		       b->coarse ? "not measured: as large as the form" :
				   "not resolved at this sampling");
		return;
	}
	printf("    %8.3g-%-8.3g %-3s Sa %-9.3g Sq %-9.3g Ssk %6.2f Sku %6.2f Sdr %-9.3g"
	       " ridge %.2f 4-fold %.2f%s\n", b->s, b->l, unit, b->sa, b->sq, b->ssk, b->sku,
	       b->sdr, b->aniso2, b->aniso4, b->width < 1 ? " (narrowed)" : "");
}

static void describe_text(const char *path, const struct scan *s, const float *v,
			  const struct desc_info *info, bool values)
{
	const struct desc_block *bl = describe_blocks();
	bool units = info->flags & DESC_HAS_UNITS;
	const char *u = units ? "mm" : "units";
	printf("%s: %s, %zu floats\n", path, DESC_SCHEMA, describe_dim());
	if (info->flags & DESC_POINT_CLOUD)
		printf("  surface    point cloud, %zu points%s\n", info->n_points,
		       info->flags & DESC_NORMALS_GUESSED ? " (normals estimated)" : "");
	else
		printf("  surface    mesh, %zu faces, %zu vertices\n", info->n_faces, info->n_points);
	if (info->n_skipped)
		printf("  skipped    %zu non-finite vertices and faces using them\n", info->n_skipped);
	if (info->n_specks)
		printf("  specks     %zu faces in small detached pieces left out\n", info->n_specks);
	if (units)
		printf("  units      mm (%g mm per file unit)\n", info->mm_per_unit);
	else
		printf("  units      unknown (%s): relief_mm and size blocks absent\n",
		       scan_units_name(s->units));
	printf("  size       %.4g x %.4g x %.4g %s, area %.4g %s^2, spacing %.3g %s\n",
	       info->extent[0], info->extent[1], info->extent[2], u, info->area, u,
	       info->spacing, u);
	printf("  noise      %.3g, the curvedness it gives the fine local fits (roughness below the resolution, %.3g spacings)\n",
	       info->noise, info->noise_spacings);
	if (info->flags & DESC_HAS_COLOUR)
		printf("  colour     on %.0f%% of the surface\n", 100 * info->colour_fraction);
	else if (info->flags & DESC_COLOUR_UNIFORM)
		printf("  colour     one flat colour: colour block absent\n");
	else
		printf("  colour     none%s: colour block absent\n",
		       info->flags & DESC_TEXTURE_MISSING ? " (texture missing)" : "");
	printf("  flags     ");
	bool any = false;
	for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
		if (info->flags & flag_names[i].flag) {
			printf(" %s", flag_names[i].name);
			any = true;
		}
	printf("%s\n", any ? "" : " none");
	printf("  block      offset length weight   norm\n");
	for (int b = 0; b < DESC_N_BLOCKS; b++) {
		printf("  %-10s %6zu %6zu %6.2f %6.3f%s\n", bl[b].name, bl[b].offset, bl[b].length,
		       (double)bl[b].weight, block_norm(v, &bl[b]),
		       block_present(v, &bl[b]) ? "" : "  absent");
		if (!values)
			continue;
		for (size_t i = 0; i < bl[b].length; i++)
			printf("%s%.4g", i % 10 ? " " : (i ? "\n    " : "    "),
			       (double)v[bl[b].offset + i]);
		printf("\n");
	}
	printf("  relief bands relative to size (S-L radius)\n");
	for (int k = 0; k < 3; k++)
		print_band(u, &info->relief[k]);
	if (units) {
		printf("  relief bands in millimetres\n");
		for (int k = 0; k < 3; k++)
			print_band("mm", &info->relief_mm[k]);
	}
}

int cmd_describe(int argc, char **argv)
{
	bool json = false, values = false;
	struct describe_opts o;
	int c;
	describe_opts_init(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", describe_options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			json = true;
			break;
		case OPT_VALUES:
			values = true;
			break;
		case OPT_SEED: {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (errno || *end || !*optarg || optarg[0] == '-') {
				out_error("--seed: '%s' is not a non-negative integer", optarg);
				fputs(describe_usage, stderr);
				return EXIT_USAGE;
			}
			o.seed = v;
			break;
		}
		case OPT_UNITS: {
			enum scan_units u = scan_units_parse(optarg, strlen(optarg));
			if (u == UNITS_UNKNOWN) {
				out_error("--units: unknown unit '%s' (mm, cm, m, in, um)", optarg);
				fputs(describe_usage, stderr);
				return EXIT_USAGE;
			}
			o.mm_per_unit = -scan_units_mm(u); /* only when the file says nothing */
			break;
		}
		case 'h':
			fputs(describe_usage, stdout);
			return EXIT_OK;
		default:
			fputs(describe_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(describe_usage, stderr);
		return EXIT_USAGE;
	}
	float *v = alloc_array(describe_dim(), sizeof(float));
	if (!v) {
		out_error("out of memory");
		return EXIT_SOFTWARE;
	}
	size_t n_ok = 0, n_bad = 0;
	int first_fail = 0;
	double fallback_mm = -o.mm_per_unit;
	for (int i = optind; i < argc; i++) {
		struct scan s;
		struct err e;
		struct desc_info info;
		struct describe_opts fo = o;
		struct image *tex = NULL;
		size_t n_failed = 0;
		err_init(&e);
		int rc = scan_read_file(argv[i], NULL, &s, &e);
		if (!rc)
			rc = describe_load_textures(&s, NULL, &tex, &n_failed, &e);
		if (!rc) {
			/* --units applies when the file does not give its own */
			fo.mm_per_unit = s.units == UNITS_UNKNOWN && fallback_mm > 0 ? fallback_mm : 0;
			fo.textures = tex;
			fo.n_textures = tex ? s.n_textures : 0;
			rc = describe_scan(&s, &fo, v, &info, &e);
			if (rc < 0)
				err_set_path(&e, argv[i]);
		}
		describe_textures_free(&tex, s.n_textures);
		if (rc < 0) {
			out_err(&e);
			if (json)
				out_json_line(json_pack("{s:s, s:b, s:o}", "path", argv[i], "ok", 0,
							"error", out_json_error(&e)));
			if (!n_bad++)
				first_fail = rc;
			scan_release(&s);
			continue;
		}
		for (size_t w = 0; !json && w < s.n_warnings; w++)
			fprintf(stderr, "refscan: %s: %s\n", argv[i], s.warnings[w]);
		n_ok++;
		if (json)
			out_json_line(describe_json(argv[i], &s, v, &info));
		else
			describe_text(argv[i], &s, v, &info, values);
		scan_release(&s);
	}
	xfree(v);
	if (!n_bad)
		return EXIT_OK;
	return n_ok ? EXIT_PARTIAL : err_exit_status(first_fail);
}
