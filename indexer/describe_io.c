/*
 * describe_io.c - the I/O side of description: decoding the textures a
 * scan references and the path-based wrapper.  Everything else in the
 * descriptor code is pure and works on memory (describe.c).
 */
#include "describe.h"
#include "../common/alloc.h"
#include "../common/err.h"
#include "../formats/formats.h"
#include "../formats/image.h"
#include "../formats/scan.h"

#include <string.h>

#include "../common/banned.h"

/* True when some material of s uses texture t. */
static bool texture_used(const struct scan *s, size_t t)
{
	/* a PLY `comment TextureFile` has no material: its first texture is
	 * the one desc_face_texture() samples */
	if (!s->n_materials)
		return t == 0;
	for (size_t m = 0; m < s->n_materials; m++)
		if (s->materials[m].texture == (int32_t)t)
			return true;
	return false;
}

int describe_load_textures(struct scan *s, const struct limits *lim,
			   struct image **out, size_t *n_failed, struct err *e)
{
	*out = NULL;
	*n_failed = 0;
	if (!s->n_textures)
		return 0;
	struct image *tex = alloc_array(s->n_textures, sizeof(*tex));
	if (!tex)
		return err_set(e, ERR_NOMEM, "out of memory for %zu textures", s->n_textures);
	for (size_t t = 0; t < s->n_textures; t++)
		image_init(&tex[t]);
	for (size_t t = 0; t < s->n_textures; t++) {
		const struct scan_texture *st = &s->textures[t];
		if (!texture_used(s, t))
			continue;
		if (!st->resolved || !st->exists) {
			/* the reader has already recorded the missing file */
			(*n_failed)++;
			continue;
		}
		struct err te;
		err_init(&te);
		int rc = image_read_file(st->resolved, lim, &tex[t], &te);
		if (rc == ERR_NOMEM) {
			describe_textures_free(&tex, s->n_textures);
			return err_set(e, ERR_NOMEM, "out of memory decoding texture '%s'",
				       st->resolved);
		}
		if (rc < 0) {
			char buf[ERR_PATH_MAX + 300];
			image_release(&tex[t]);
			(*n_failed)++;
			if (scan_warn(s, "texture not used for colour: %s",
				      err_format(&te, buf, sizeof(buf))) < 0) {
				describe_textures_free(&tex, s->n_textures);
				return err_set(e, ERR_NOMEM, "out of memory");
			}
		}
	}
	*out = tex;
	return 0;
}

void describe_textures_free(struct image **texp, size_t n)
{
	if (!texp || !*texp)
		return;
	for (size_t t = 0; t < n; t++)
		image_release(&(*texp)[t]);
	xfree(*texp);
	*texp = NULL;
}

int describe_file(const char *path, const struct describe_opts *o,
		  const struct limits *lim, float *out, struct desc_info *info,
		  struct scan *s, struct err *e)
{
	struct scan local;
	struct scan *sc = s ? s : &local;
	struct image *tex = NULL;
	size_t n_failed = 0;
	struct describe_opts opts;
	int rc;

	if (o)
		opts = *o;
	else
		describe_opts_init(&opts);
	scan_init(sc);
	rc = scan_read_file(path, lim, sc, e);
	if (rc < 0)
		goto out;
	rc = describe_load_textures(sc, lim, &tex, &n_failed, e);
	if (rc < 0)
		goto out;
	opts.textures = tex;
	opts.n_textures = tex ? sc->n_textures : 0;
	rc = describe_scan(sc, &opts, out, info, e);
out:
	if (rc < 0 && e && !e->path[0])
		err_set_path(e, path);
	describe_textures_free(&tex, sc->n_textures);
	if (!s)
		scan_release(&local);
	return rc;
}
