/*
 * info.c - `refscan info [--json] FILE...`: read each scan and report its
 * format, counts, attributes, textures, bounding box, units and warnings.
 *
 * A bad file prints one line `refscan: PATH: ...` on stderr (and an
 * {"ok":false} object with --json) and the other files are still read.
 * Exit status: 0 all read; 1 some failed; otherwise the sysexits code of
 * the failure when every file failed (65 bad data, 66 missing, 74 I/O).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "formats.h"
#include "image.h"
#include "../common/commands.h"
#include "../common/err.h"
#include "../common/exitcodes.h"
#include "../common/mapfile.h"
#include "../common/out.h"

#include "../common/banned.h"

static const char info_usage[] =
	"usage: refscan info [--json] FILE...\n"
	"\n"
	"Read scan files (PLY, OBJ+MTL, STL, OFF, PCD, XYZ/PTS) and report\n"
	"format, counts, normals/colours/UVs, textures, bounding box and units.\n"
	"\n"
	"  --json      one JSON object per file per line on stdout\n"
	"  -h, --help  show this help\n";

static const struct option info_options[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static json_t *vec3(const float v[3])
{
	return json_pack("[f,f,f]", (double)v[0], (double)v[1], (double)v[2]);
}

/* Texture size from its image header; -1 when missing or unreadable. */
static int texture_dims(const struct scan_texture *t, uint32_t *w, uint32_t *h)
{
	struct mapfile m;
	struct err e;
	err_init(&e);
	*w = *h = 0;
	if (!t->exists || !t->resolved || mapfile_open(&m, t->resolved, &e) < 0)
		return -1;
	int rc = image_read_header(m.data, m.len, w, h, &e);
	mapfile_release(&m);
	return rc < 0 ? -1 : 0;
}

static json_t *info_json(const char *path, const struct scan *s)
{
	json_t *o = json_object();
	json_object_set_new(o, "path", json_string(path));
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "error", json_null());
	json_object_set_new(o, "format", json_string(s->format));
	json_object_set_new(o, "encoding", json_string(s->encoding));
	json_object_set_new(o, "vertices", json_integer((json_int_t)s->n_vertices));
	json_object_set_new(o, "faces", json_integer((json_int_t)s->n_faces));
	json_object_set_new(o, "polygons", json_integer((json_int_t)s->n_polygons));
	json_object_set_new(o, "normals", json_boolean(s->normals != NULL));
	json_object_set_new(o, "colors", json_boolean(s->colors || s->face_colors));
	json_object_set_new(o, "uvs", json_boolean(s->uvs || s->corner_uvs));
	json_t *tex = json_array();
	for (size_t i = 0; i < s->n_textures; i++) {
		const struct scan_texture *t = &s->textures[i];
		uint32_t w, h;
		int ok = texture_dims(t, &w, &h) == 0;
		json_array_append_new(tex, json_pack("{s:s, s:s?, s:b, s:o, s:o}",
			"declared", t->declared, "path", t->resolved,
			"exists", t->exists,
			"width", ok ? json_integer(w) : json_null(),
			"height", ok ? json_integer(h) : json_null()));
	}
	json_object_set_new(o, "textures", tex);
	json_object_set_new(o, "bbox_min", vec3(s->bbox_min));
	json_object_set_new(o, "bbox_max", vec3(s->bbox_max));
	json_object_set_new(o, "units", json_string(scan_units_name(s->units)));
	json_object_set_new(o, "nonfinite", json_integer((json_int_t)s->n_nonfinite));
	json_t *w = json_array();
	for (size_t i = 0; i < s->n_warnings; i++)
		json_array_append_new(w, json_string(s->warnings[i]));
	json_object_set_new(o, "warnings", w);
	return o;
}

static void info_text(const char *path, const struct scan *s)
{
	printf("%s: %s %s\n", path, s->format, s->encoding);
	printf("  vertices   %zu\n", s->n_vertices);
	if (s->n_faces || s->n_polygons)
		printf("  faces      %zu triangles (%zu polygons in the file)\n",
		       s->n_faces, s->n_polygons);
	else
		printf("  faces      0 (point cloud)\n");
	printf("  normals    %s\n  colours    %s\n  uvs        %s\n",
	       s->normals ? "yes" : "no",
	       s->colors ? "per vertex" : s->face_colors ? "per face" : "no",
	       s->uvs ? "per vertex" : s->corner_uvs ? "per corner" : "no");
	for (size_t i = 0; i < s->n_textures; i++) {
		const struct scan_texture *t = &s->textures[i];
		uint32_t w, h;
		printf("  texture    %s (%s)",
		       t->resolved ? t->resolved : t->declared,
		       t->exists ? "found" : t->resolved ? "missing" : "unsafe path");
		if (texture_dims(t, &w, &h) == 0)
			printf(" %ux%u\n", w, h);
		else
			fputs(t->exists ? " not a readable PNG/JPEG\n" : "\n", stdout);
	}
	const char *u = s->units ? scan_units_name(s->units) : "";
	printf("  bbox       [%g %g %g] .. [%g %g %g]\n",
	       (double)s->bbox_min[0], (double)s->bbox_min[1], (double)s->bbox_min[2],
	       (double)s->bbox_max[0], (double)s->bbox_max[1], (double)s->bbox_max[2]);
	printf("  size       %g x %g x %g %s\n",
	       (double)(s->bbox_max[0] - s->bbox_min[0]),
	       (double)(s->bbox_max[1] - s->bbox_min[1]),
	       (double)(s->bbox_max[2] - s->bbox_min[2]),
	       *u ? u : "(units unknown)");
	for (size_t i = 0; i < s->n_warnings; i++)
		printf("  warning    %s\n", s->warnings[i]);
}

int cmd_info(int argc, char **argv)
{
	int json = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", info_options, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'h':
			fputs(info_usage, stdout);
			return EXIT_OK;
		default:
			fputs(info_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(info_usage, stderr);
		return EXIT_USAGE;
	}
	size_t n_ok = 0, n_bad = 0;
	int first_fail = 0;
	for (int i = optind; i < argc; i++) {
		struct scan s;
		struct err e;
		err_init(&e);
		int rc = scan_read_file(argv[i], NULL, &s, &e);
		if (rc < 0) {
			out_err(&e);
			if (json) {
				json_t *o = json_pack("{s:s, s:b, s:o}", "path", argv[i],
						      "ok", 0, "error", out_json_error(&e));
				out_json_line(o);
			}
			if (!n_bad++)
				first_fail = rc;
			continue;
		}
		n_ok++;
		if (json)
			out_json_line(info_json(argv[i], &s));
		else
			info_text(argv[i], &s);
		scan_release(&s);
	}
	if (!n_bad)
		return EXIT_OK;
	return n_ok ? EXIT_PARTIAL : err_exit_status(first_fail);
}
