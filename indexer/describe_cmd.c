/*
 * describe_cmd.c - `refscan describe`: the descriptor of scan files,
 * block by block, as the indexer computes it (docs/descriptors.md).
 */
#include "describe.h"
#include "descstore.h"
#include "../common/alloc.h"
#include "../common/commands.h"
#include "../common/err.h"
#include "../common/exitcodes.h"
#include "../common/out.h"
#include "../formats/formats.h"
#include "../formats/image.h"
#include "../formats/scan.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/banned.h"

static const char describe_usage[] =
	"usage: refscan describe [--json] [--vector] [--units U] FILE...\n"
	"\n"
	"Describe each scan as `refscan index` does (schema " DESC_SCHEMA "):\n"
	"what was found (colour, units, point cloud...), its size, and each\n"
	"block of the descriptor with its length, default weight and norm.\n"
	"\n"
	"      --json          one JSON object per file per line\n"
	"      --vector        also print the descriptor's floats\n"
	"      --units U       units of files that do not say (default:\n"
	"                      $REFSCAN_DEFAULT_UNITS, else mm)\n"
	"  -h, --help          show this help\n"
	"\n"
	"exit status: 0 all described; 1 some files failed; 65 bad data; 66 a\n"
	"file is missing or unreadable (when every file failed).\n";

enum { OPT_JSON = 256, OPT_VECTOR, OPT_UNITS };

static const struct option describe_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "vector", no_argument, NULL, OPT_VECTOR },
	{ "units", required_argument, NULL, OPT_UNITS },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Read and describe one file in its own units, else mm_per_unit. */
static int describe_one(const char *path, double mm_per_unit, float *v,
			struct desc_info *info, struct err *e)
{
	struct scan s;
	struct image *tex = NULL;
	struct describe_opts o;
	size_t n_failed = 0;
	int rc;

	scan_init(&s);
	if ((rc = scan_read_file(path, NULL, &s, e)) < 0 ||
	    (rc = describe_load_textures(&s, NULL, &tex, &n_failed, e)) < 0)
		goto out;
	describe_opts_init(&o);
	o.mm_per_unit = s.units != UNITS_UNKNOWN ? 0 : mm_per_unit;
	o.textures = tex;
	o.n_textures = tex ? s.n_textures : 0;
	rc = describe_scan(&s, &o, v, info, e);
	for (size_t i = 0; i < s.n_warnings; i++)
		fprintf(stderr, "refscan: %s: warning: %s\n", path, s.warnings[i]);
out:
	if (rc < 0 && !e->path[0])
		err_set_path(e, path);
	describe_textures_free(&tex, s.n_textures);
	scan_release(&s);
	return rc;
}

/* L2 norm of a block without its weight: 0 absent, about 1 present. */
static double block_norm(const float *v, const struct desc_block *b)
{
	double s = 0;
	for (size_t i = 0; i < b->length; i++)
		s += (double)v[b->offset + i] * v[b->offset + i];
	return b->weight > 0 ? sqrt(s / b->weight) : 0;
}

int cmd_describe(int argc, char **argv)
{
	bool json = false, vector = false;
	const char *units = NULL;
	int c, first_bad = 0;
	size_t n_bad = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", describe_options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			json = true;
			break;
		case OPT_VECTOR:
			vector = true;
			break;
		case OPT_UNITS:
			units = optarg;
			break;
		case 'h':
			fputs(describe_usage, stdout);
			return EXIT_OK;
		default:
			fputs(describe_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		out_error("no file given");
		fputs(describe_usage, stderr);
		return EXIT_USAGE;
	}
	if (!units || !*units)
		units = getenv("REFSCAN_DEFAULT_UNITS");
	enum scan_units u = units && *units ? scan_units_parse(units, strlen(units)) : UNITS_MM;
	if (u == UNITS_UNKNOWN) {
		out_error("unknown unit '%s' (mm, cm, m, in, um)", units);
		return EXIT_USAGE;
	}
	size_t dim = describe_dim();
	const struct desc_block *bl = describe_blocks();
	float *v = alloc_array(dim, sizeof(*v));
	if (!v) {
		out_error("out of memory");
		return EXIT_SOFTWARE;
	}
	for (int i = optind; i < argc; i++) {
		struct desc_info info;
		struct err e;
		err_init(&e);
		int rc = describe_one(argv[i], scan_units_mm(u), v, &info, &e);
		if (rc < 0) {
			out_err(&e);
			if (json)
				out_json_line(json_pack("{s:s, s:o}", "path", argv[i], "error", out_json_error(&e)));
			if (!n_bad++)
				first_bad = rc;
			continue;
		}
		if (json) {
			json_t *o = descstore_info_json(&info);
			json_t *blocks = json_array();
			for (size_t b = 0; o && blocks && b < DESC_N_BLOCKS; b++)
				json_array_append_new(blocks, json_pack("{s:s, s:I, s:I, s:f, s:f}",
									"name", bl[b].name,
									"offset", (json_int_t)bl[b].offset,
									"length", (json_int_t)bl[b].length,
									"weight", (double)bl[b].weight,
									"norm", block_norm(v, &bl[b])));
			if (o) {
				json_object_set_new(o, "path", json_string(argv[i]));
				json_object_set_new(o, "dim", json_integer((json_int_t)dim));
				json_object_set_new(o, "blocks", blocks ? blocks : json_array());
				if (vector) {
					json_t *a = json_array();
					for (size_t k = 0; a && k < dim; k++)
						json_array_append_new(a, json_real((double)v[k]));
					json_object_set_new(o, "vector", a ? a : json_null());
				}
			}
			out_json_line(o);
			continue;
		}
		printf("%s: %s, %zu floats\n", argv[i], DESC_SCHEMA, dim);
		printf("  points     %zu%s, %zu faces used, %zu skipped\n", info.n_points,
		       info.flags & DESC_POINT_CLOUD ? " (point cloud)" : "", info.n_faces, info.n_skipped);
		if (info.flags & DESC_HAS_UNITS)
			printf("  size       %.4g x %.4g x %.4g mm (principal extents), area %.4g mm^2\n",
			       info.extent[0], info.extent[1], info.extent[2], info.area);
		printf("  colour     %s", info.flags & DESC_HAS_COLOUR ? "yes" : "no");
		if (info.flags & DESC_HAS_COLOUR)
			printf(", on %.0f%% of the surface", 100 * info.colour_fraction);
		if (info.flags & DESC_COLOUR_UNIFORM)
			printf(" (uniform: not used)");
		if (info.flags & DESC_TEXTURE_MISSING)
			printf(" (a texture could not be used)");
		putchar('\n');
		if (info.flags & (DESC_NORMALS_GUESSED | DESC_UNDERSAMPLED))
			printf("  notes     %s%s\n", info.flags & DESC_NORMALS_GUESSED ? " normals guessed" : "",
			       info.flags & DESC_UNDERSAMPLED ? " some scales undersampled" : "");
		printf("  %-10s %6s %6s %6s  %s\n", "block", "floats", "weight", "norm", "what");
		for (size_t b = 0; b < DESC_N_BLOCKS; b++)
			printf("  %-10s %6zu %6.2f %6.3f  %s\n", bl[b].name, bl[b].length, (double)bl[b].weight,
			       block_norm(v, &bl[b]), bl[b].summary);
		if (vector) {
			for (size_t k = 0; k < dim; k++)
				printf("%s%.9g", k % 8 ? " " : "\n  ", (double)v[k]);
			putchar('\n');
		}
	}
	xfree(v);
	if (!n_bad)
		return EXIT_OK;
	if (n_bad < (size_t)(argc - optind))
		return EXIT_PARTIAL;
	return first_bad == ERR_NOTFOUND || first_bad == ERR_IO ? EXIT_NOINPUT : err_exit_status(first_bad);
}
