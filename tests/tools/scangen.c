/*
 * scangen.c - write seeded scan-like surfaces for demos, tests and
 * benchmarks (the generator itself is tests/lib/gen.c).
 *
 *   scangen [options] -o FILE          one scan
 *   scangen --library DIR --count N    a varied set with .meta.json sidecars
 *   scangen --list                     forms and materials
 *
 * Same arguments, same bytes: every output is deterministic.
 * Exit status: 0 ok, 64 usage, 65/70/74 from the failing step (sysexits).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* the generator is shared with the unit tests and the benchmarks */
#include "../lib/gen.c"

#include "common/exitcodes.h"
#include "common/out.h"

#include "common/banned.h"

static const char scangen_usage[] =
	"usage: scangen [options] -o FILE\n"
	"       scangen --library DIR --count N [--seed K] [--triangles N]\n"
	"       scangen --list\n"
	"\n"
	"Write a seeded scan-like surface: a base form displaced by a material's\n"
	"relief, evaluated in millimetres (the relief does not depend on the\n"
	"mesh resolution).\n"
	"\n"
	"  --form F            tile panel blob trunk torus box limb (default tile)\n"
	"  --material M        none skin bark fabric stone hammered wood leather knit\n"
	"                      (default stone)\n"
	"  --size-mm S         largest extent of the base form in mm (default 100)\n"
	"  --triangles N       target triangle count, within ~5% (default 20000)\n"
	"  --seed K            generator seed (default 1)\n"
	"  --amplitude-mm A    peak relief depth (default: the material's typical)\n"
	"  --heightmap IMG     relief from a photograph or height image (PNG or\n"
	"                      JPEG luminance, triplanar) instead of the material's\n"
	"  --heightmap-mm W    its width in mm on the surface (default 50)\n"
	"  --color C           none, vertex or texture (PNG + UVs; default none)\n"
	"  --format F          ply ply-ascii obj stl stl-ascii (default: from FILE)\n"
	"  --texture-px N      texture width and height (default from --triangles)\n"
	"  --uvs               per-vertex UVs even without a texture\n"
	"  --no-normals        leave out vertex normals\n"
	"  --no-jitter         regular grid instead of scanner-like irregular vertices\n"
	"  --meta              also write FILE's stem + .meta.json\n"
	"  -o, --output FILE   output path (textures and MTL go beside it)\n"
	"  --library DIR       write --count varied scans into DIR\n"
	"  --count N           number of scans for --library\n"
	"  --list              list forms and materials\n"
	"  -q, --quiet         do not print what was written\n"
	"  -h, --help          show this help\n";

enum {
	OPT_FORM = 256, OPT_MATERIAL, OPT_SIZE, OPT_TRIANGLES, OPT_SEED, OPT_AMP,
	OPT_COLOR, OPT_FORMAT, OPT_TEXPX, OPT_UVS, OPT_NONORMALS, OPT_NOJITTER,
	OPT_META, OPT_LIBRARY, OPT_COUNT, OPT_LIST, OPT_HMAP, OPT_HMAP_MM,
};

static const struct option scangen_options[] = {
	{ "form", required_argument, NULL, OPT_FORM },
	{ "material", required_argument, NULL, OPT_MATERIAL },
	{ "size-mm", required_argument, NULL, OPT_SIZE },
	{ "triangles", required_argument, NULL, OPT_TRIANGLES },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "amplitude-mm", required_argument, NULL, OPT_AMP },
	{ "color", required_argument, NULL, OPT_COLOR },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "texture-px", required_argument, NULL, OPT_TEXPX },
	{ "uvs", no_argument, NULL, OPT_UVS },
	{ "no-normals", no_argument, NULL, OPT_NONORMALS },
	{ "no-jitter", no_argument, NULL, OPT_NOJITTER },
	{ "meta", no_argument, NULL, OPT_META },
	{ "output", required_argument, NULL, 'o' },
	{ "library", required_argument, NULL, OPT_LIBRARY },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "list", no_argument, NULL, OPT_LIST },
	{ "heightmap", required_argument, NULL, OPT_HMAP },
	{ "heightmap-mm", required_argument, NULL, OPT_HMAP_MM },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "scangen: error: ");
	fprintf(stderr, fmt, arg);
	fputs("\n", stderr);
	fputs(scangen_usage, stderr);
	return EXIT_USAGE;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_mm(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || end == s || !(v >= 0 && v < 1e6))
		return -1;
	*out = v;
	return 0;
}

static int fail(const struct err *e)
{
	char buf[ERR_PATH_MAX + 300];
	fprintf(stderr, "scangen: %s\n", err_format(e, buf, sizeof(buf)));
	return err_exit_status(e->code);
}

/* Sidecar metadata: what the scan is, for demos and tests. */
static int write_meta(const char *path, const struct gen_params *p,
		      enum gen_format fmt, const struct scan *s, struct err *e)
{
	json_t *o = json_object(), *tags = json_array();
	char seed[32];
	int rc = 0;
	if (!o || !tags) {
		json_decref(o);
		json_decref(tags);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	snprintf(seed, sizeof(seed), "%llu", (unsigned long long)p->seed);
	json_array_append_new(tags, json_string(gen_material_name(p->material)));
	json_array_append_new(tags, json_string(gen_material_category(p->material)));
	json_array_append_new(tags, json_string(gen_form_name(p->form)));
	if (p->color != GEN_COLOR_NONE && fmt != GEN_FMT_STL && fmt != GEN_FMT_STL_ASCII)
		json_array_append_new(tags, json_string(p->color == GEN_COLOR_VERTEX ?
							"vertex-colour" : "textured"));
	json_object_set_new(o, "material", json_string(gen_material_name(p->material)));
	json_object_set_new(o, "form", json_string(gen_form_name(p->form)));
	json_object_set_new(o, "units", json_string("mm"));
	json_object_set_new(o, "tags", tags);
	json_object_set_new(o, "size_mm", json_real(p->size_mm));
	const char *amp = scan_meta_get(s, "amplitude_mm");
	const char *edge = scan_meta_get(s, "edge_mm");
	json_object_set_new(o, "amplitude_mm", json_real(amp ? strtod(amp, NULL) : 0));
	json_object_set_new(o, "edge_mm", json_real(edge ? strtod(edge, NULL) : 0));
	json_object_set_new(o, "vertices", json_integer((json_int_t)s->n_vertices));
	json_object_set_new(o, "triangles", json_integer((json_int_t)s->n_faces));
	json_object_set_new(o, "color", json_string(gen_color_name(p->color)));
	json_object_set_new(o, "format", json_string(gen_format_name(fmt)));
	json_object_set_new(o, "seed", json_string(seed));
	json_object_set_new(o, "generator", json_string("scangen"));
	json_object_set_new(o, "generator_version", json_integer(GEN_VERSION));
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
	json_decref(o);
	if (!text)
		return err_set(e, ERR_NOMEM, "out of memory");
	struct wfile w;
	if ((rc = wfile_open(&w, path, e)) == 0) {
		if (fputs(text, w.fp) == EOF || fputc('\n', w.fp) == EOF) {
			rc = err_set_errno(e, ERR_IO, "write failed");
			wfile_abort(&w);
		} else {
			rc = wfile_commit(&w, e);
		}
	}
	free(text);
	return rc;
}

/* Generate and write one scan; prints a summary line unless quiet. */
static int make_one(const struct gen_params *p, enum gen_format fmt,
		    const char *path, int meta, int quiet)
{
	struct scan s;
	struct image tex;
	struct err e;
	int rc;
	err_init(&e);
	if ((rc = gen_scan(p, &s, &tex, &e)) < 0) {
		err_set_path(&e, path);
		return fail(&e);
	}
	rc = gen_write(path, fmt, &s, &tex, &e);
	if (!rc && meta) {
		char *mp = with_suffix(path, ".meta.json");
		rc = mp ? write_meta(mp, p, fmt, &s, &e) : err_set(&e, ERR_NOMEM, "out of memory");
		xfree(mp);
	}
	if (!rc && !quiet) {
		const char *edge = scan_meta_get(&s, "edge_mm");
		printf("%s: %zu vertices, %zu triangles, edge %s mm\n", path,
		       s.n_vertices, s.n_faces, edge ? edge : "?");
	}
	scan_release(&s);
	image_release(&tex);
	return rc < 0 ? fail(&e) : EXIT_OK;
}

static int make_library(const char *dir, size_t count, uint64_t seed,
			size_t triangles, int quiet)
{
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		fprintf(stderr, "scangen: %s: cannot create: %s\n", dir, strerror(errno));
		return EXIT_CANTCREAT;
	}
	int width = count > 1000 ? 5 : 3;
	for (size_t i = 0; i < count; i++) {
		struct gen_params p;
		enum gen_format fmt;
		char name[128], tex[160], path[PATH_MAX];
		gen_library_item(i, seed, triangles, &p, &fmt);
		snprintf(name, sizeof(name), "%0*zu-%s-%s", width, i,
			 gen_material_name(p.material), gen_form_name(p.form));
		snprintf(tex, sizeof(tex), "%s.png", name);
		p.texture_name = tex;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s.%s", dir, name,
				     gen_format_ext(fmt)) >= sizeof(path)) {
			fprintf(stderr, "scangen: %s: path too long\n", dir);
			return EXIT_CANTCREAT;
		}
		int rc = make_one(&p, fmt, path, 1, quiet);
		if (rc)
			return rc;
	}
	return EXIT_OK;
}

static void list(void)
{
	printf("forms:\n");
	for (int f = 0; f < GEN_N_FORMS; f++)
		printf("  %-9s %s\n", gen_form_name((enum gen_form)f),
		       gen_form_summary((enum gen_form)f));
	printf("materials (default peak depth):\n");
	for (int m = 0; m < GEN_N_MATERIALS; m++)
		printf("  %-9s %5.2f mm  %s\n", gen_material_name((enum gen_material)m),
		       gen_material_amplitude((enum gen_material)m),
		       gen_material_summary((enum gen_material)m));
	printf("colour modes: none vertex texture\n");
	printf("formats: ply ply-ascii obj stl stl-ascii\n");
}

/* Format from the output name's extension, -1 when unknown. */
static int format_from_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash + 1 : path, '.');
	if (!dot)
		return -1;
	if (!strcmp(dot, ".ply"))
		return GEN_FMT_PLY;
	if (!strcmp(dot, ".obj"))
		return GEN_FMT_OBJ;
	if (!strcmp(dot, ".stl"))
		return GEN_FMT_STL;
	return -1;
}

int main(int argc, char **argv)
{
	struct gen_params p;
	const char *out = NULL, *library = NULL, *hmap = NULL;
	double hmap_mm = 50;
	int fmt = -1, meta = 0, quiet = 0, c, v;
	uint64_t n, count = 0;
	bool have_count = false, have_triangles = false;

	gen_params_init(&p);
	while ((c = getopt_long(argc, argv, "o:qh", scangen_options, NULL)) != -1) {
		switch (c) {
		case OPT_FORM:
			if ((v = gen_form_parse(optarg)) < 0)
				return usage_error("unknown form '%s' (see --list)", optarg);
			p.form = (enum gen_form)v;
			break;
		case OPT_MATERIAL:
			if ((v = gen_material_parse(optarg)) < 0)
				return usage_error("unknown material '%s' (see --list)", optarg);
			p.material = (enum gen_material)v;
			break;
		case OPT_SIZE:
			if (parse_mm(optarg, &p.size_mm) || !(p.size_mm > 0))
				return usage_error("bad --size-mm '%s'", optarg);
			break;
		case OPT_TRIANGLES:
			if (parse_u64(optarg, 400000000u, &n) || n < 8)
				return usage_error("bad --triangles '%s' (8 to 400000000)", optarg);
			p.triangles = (size_t)n;
			have_triangles = true;
			break;
		case OPT_SEED:
			if (parse_u64(optarg, UINT64_MAX, &p.seed))
				return usage_error("bad --seed '%s'", optarg);
			break;
		case OPT_AMP:
			if (parse_mm(optarg, &p.amplitude_mm))
				return usage_error("bad --amplitude-mm '%s'", optarg);
			break;
		case OPT_COLOR:
			if ((v = gen_color_parse(optarg)) < 0)
				return usage_error("unknown colour mode '%s' (none, vertex, texture)", optarg);
			p.color = (enum gen_color)v;
			break;
		case OPT_FORMAT:
			if ((fmt = gen_format_parse(optarg)) < 0)
				return usage_error("unknown format '%s'", optarg);
			break;
		case OPT_TEXPX:
			if (parse_u64(optarg, 16384, &n) || n < 16)
				return usage_error("bad --texture-px '%s' (16 to 16384)", optarg);
			p.texture_px = (uint32_t)n;
			break;
		case OPT_UVS:
			p.uvs = true;
			break;
		case OPT_NONORMALS:
			p.normals = false;
			break;
		case OPT_NOJITTER:
			p.jitter = false;
			break;
		case OPT_META:
			meta = 1;
			break;
		case 'o':
			out = optarg;
			break;
		case OPT_LIBRARY:
			library = optarg;
			break;
		case OPT_COUNT:
			if (parse_u64(optarg, 100000, &count))
				return usage_error("bad --count '%s'", optarg);
			have_count = true;
			break;
		case OPT_HMAP:
			hmap = optarg;
			break;
		case OPT_HMAP_MM:
			if (parse_mm(optarg, &hmap_mm) || !(hmap_mm > 0))
				return usage_error("bad --heightmap-mm '%s'", optarg);
			break;
		case OPT_LIST:
			list();
			return out_finish(EXIT_OK);
		case 'q':
			quiet = 1;
			break;
		case 'h':
			fputs(scangen_usage, stdout);
			return out_finish(EXIT_OK);
		default:
			fputs(scangen_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (library) {
		if (out || !have_count)
			return usage_error("%s", "--library takes --count and no -o");
		return out_finish(make_library(library, (size_t)count, p.seed,
					       have_triangles ? p.triangles : 0, quiet));
	}
	if (!out)
		return usage_error("%s", "no output file (-o FILE)");
	if (fmt < 0 && (fmt = format_from_name(out)) < 0)
		return usage_error("cannot tell the format of '%s': use --format", out);
	char texname[256];
	if (p.color == GEN_COLOR_TEXTURE) {
		const char *base = strrchr(out, '/');
		base = base ? base + 1 : out;
		const char *dot = strrchr(base, '.');
		int len = dot ? (int)(dot - base) : (int)strlen(base);
		snprintf(texname, sizeof(texname), "%.*s.png", len, base);
		p.texture_name = texname;
	}
	struct gen_heightmap hm;
	memset(&hm, 0, sizeof(hm));
	if (hmap) {
		struct image im;
		struct err e;
		err_init(&e);
		image_init(&im);
		int rc = image_read_file(hmap, NULL, &im, &e);
		if (!rc)
			rc = gen_heightmap_init(&hm, &im, hmap_mm, &e);
		image_release(&im);
		if (rc)
			return out_finish(fail(&e));
		p.heightmap = &hm;
	}
	int rc = make_one(&p, (enum gen_format)fmt, out, meta, quiet);
	gen_heightmap_release(&hm);
	return out_finish(rc);
}
