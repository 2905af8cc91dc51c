/*
 * formats.c - reader table, format detection, and the path-based reader
 * that loads referenced MTL files and resolves textures (see formats.h).
 */
#include "formats.h"
#include "../common/alloc.h"
#include "../common/err.h"
#include "../common/mapfile.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/banned.h"

static const struct format fmt_ply = { "ply", "ply", ply_probe, ply_read };
static const struct format fmt_obj = { "obj", "obj", obj_probe, obj_read };
static const struct format fmt_stl = { "stl", "stl", stl_probe, stl_read };
static const struct format fmt_off = { "off", "off coff noff stoff 4off", off_probe, off_read };
static const struct format fmt_pcd = { "pcd", "pcd", pcd_probe, pcd_read };
static const struct format fmt_xyz = { "xyz", "xyz pts txt asc", xyz_probe, xyz_read };

static const struct format *const table[] = {
	&fmt_ply, &fmt_pcd, &fmt_off, &fmt_stl, &fmt_obj, &fmt_xyz, NULL,
};

const struct format *const *format_table(void)
{
	return table;
}

static const char *ext_of(const char *name)
{
	if (!name)
		return NULL;
	const char *slash = strrchr(name, '/');
	const char *dot = strrchr(slash ? slash : name, '.');
	return dot ? dot + 1 : NULL;
}

static int ext_matches(const struct format *f, const char *ext)
{
	size_t n;
	if (!ext || !*ext)
		return 0;
	n = strlen(ext);
	for (const char *p = f->exts; *p;) {
		const char *q = strchr(p, ' ');
		size_t len = q ? (size_t)(q - p) : strlen(p);
		if (len == n && !strncasecmp(p, ext, n))
			return 1;
		if (!q)
			break;
		p = q + 1;
	}
	return 0;
}

int format_is_scan_name(const char *path)
{
	const char *ext = ext_of(path);
	for (size_t i = 0; table[i]; i++)
		if (table[i] != &fmt_xyz && ext_matches(table[i], ext))
			return 1;
	/* .txt/.asc are too common to pick by name; .xyz/.pts are not */
	return ext && (!strcasecmp(ext, "xyz") || !strcasecmp(ext, "pts"));
}

const struct format *format_detect(const unsigned char *buf, size_t len,
				   const char *ext)
{
	const struct format *best = NULL;
	int best_score = 0;
	for (size_t i = 0; table[i]; i++) {
		int sc = table[i]->probe(buf, len);
		if (sc <= 0)
			continue;
		/* the extension breaks ties and lifts weak guesses */
		if (ext_matches(table[i], ext))
			sc += 10;
		if (sc > best_score) {
			best_score = sc;
			best = table[i];
		}
	}
	return best;
}

int scan_read_buffer(const unsigned char *buf, size_t len, const char *name,
		     const struct limits *lim, struct scan *out, struct err *e)
{
	if (!lim)
		lim = limits_default();
	scan_init(out);
	if (len == 0)
		return err_set(e, ERR_FORMAT, "empty file");
	/* UTF-16 text is a common export mistake: say so plainly */
	if (len >= 2 && ((buf[0] == 0xFF && buf[1] == 0xFE) ||
			 (buf[0] == 0xFE && buf[1] == 0xFF)))
		return err_set_offset(e, ERR_UNSUPPORTED, 0,
				      "UTF-16 text is not supported (save the file as UTF-8)");
	const struct format *f = format_detect(buf, len, ext_of(name));
	if (!f)
		return err_set_offset(e, ERR_FORMAT, 0,
				      "not a recognised scan format (PLY, OBJ, STL, OFF, PCD, XYZ)");
	int rc = f->read(buf, len, lim, out, e);
	if (rc < 0) {
		scan_release(out);
		return rc;
	}
	out->format = f->name;
	return 0;
}

char *format_resolve_ref(const char *base_path, const char *ref, size_t len)
{
	/* strip surrounding quotes and blanks */
	while (len && (*ref == ' ' || *ref == '\t' || *ref == '"')) {
		ref++;
		len--;
	}
	while (len && (ref[len - 1] == ' ' || ref[len - 1] == '\t' ||
		       ref[len - 1] == '"' || ref[len - 1] == '\r'))
		len--;
	if (!len || memchr(ref, '\0', len))
		return NULL;
	if (ref[0] == '/' || ref[0] == '\\' ||
	    (len >= 2 && ref[1] == ':'))
		return NULL;
	/* reject any '..' component, with either separator */
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && ref[j] != '/' && ref[j] != '\\')
			j++;
		if (j - i == 2 && ref[i] == '.' && ref[i + 1] == '.')
			return NULL;
		i = j + 1;
	}
	const char *slash = base_path ? strrchr(base_path, '/') : NULL;
	size_t dlen = slash ? (size_t)(slash - base_path) + 1 : 0;
	size_t total;
	if (ckd_add(&total, dlen, len) || ckd_add(&total, total, (size_t)1))
		return NULL;
	char *out = xmalloc(total);
	if (!out)
		return NULL;
	memcpy(out, base_path, dlen);
	for (size_t i = 0; i < len; i++)
		out[dlen + i] = ref[i] == '\\' ? '/' : ref[i];
	out[dlen + len] = '\0';
	return out;
}

static int is_regular_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       access(path, R_OK) == 0;
}

/* Resolve textures [from, n_textures) against base; warn on problems. */
static int resolve_textures(struct scan *s, size_t from, const char *base)
{
	for (size_t i = from; i < s->n_textures; i++) {
		struct scan_texture *t = &s->textures[i];
		if (t->resolved)
			continue;
		t->resolved = format_resolve_ref(base, t->declared,
						 strlen(t->declared));
		if (!t->resolved) {
			if (scan_warn(s, "texture '%s' is outside the scan's folder or empty; not used",
				      t->declared))
				return ERR_NOMEM;
			continue;
		}
		t->exists = is_regular_file(t->resolved);
		if (!t->exists && scan_warn(s, "texture '%s' not found", t->declared))
			return ERR_NOMEM;
	}
	return 0;
}

static int load_libraries(struct scan *s, const char *path,
			  const struct limits *lim, struct err *e)
{
	if (s->n_libraries > lim->max_referenced_files)
		return err_set(e, ERR_LIMIT, "%zu material libraries (limit %zu)",
			       s->n_libraries, lim->max_referenced_files);
	for (size_t i = 0; i < s->n_libraries; i++) {
		const char *decl = s->libraries[i];
		char *mp = format_resolve_ref(path, decl, strlen(decl));
		if (!mp) {
			if (scan_warn(s, "material library '%s' is outside the scan's folder; not used", decl))
				return err_set(e, ERR_NOMEM, "out of memory");
			continue;
		}
		struct mapfile m;
		struct err me;
		err_init(&me);
		if (mapfile_open(&m, mp, &me) < 0) {
			int rc = scan_warn(s, "material library '%s' not found", decl);
			xfree(mp);
			if (rc)
				return err_set(e, ERR_NOMEM, "out of memory");
			continue;
		}
		size_t before = s->n_textures;
		int rc = mtl_read(m.data, m.len, lim, s, &me);
		mapfile_release(&m);
		if (rc == ERR_NOMEM) {
			xfree(mp);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
		if (rc < 0) {
			char buf[ERR_PATH_MAX + 300];
			err_set_path(&me, decl);
			int wr = scan_warn(s, "material library %s", err_format(&me, buf, sizeof(buf)));
			xfree(mp);
			if (wr)
				return err_set(e, ERR_NOMEM, "out of memory");
			continue;
		}
		/* map_Kd paths are relative to the MTL file */
		rc = resolve_textures(s, before, mp);
		xfree(mp);
		if (rc)
			return err_set(e, ERR_NOMEM, "out of memory");
		if (s->n_textures > lim->max_referenced_files)
			return err_set(e, ERR_LIMIT, "%zu textures (limit %zu)",
				       s->n_textures, lim->max_referenced_files);
	}
	for (size_t i = 0; i < s->n_materials; i++)
		if (!s->materials[i].defined && s->n_libraries &&
		    scan_warn(s, "material '%s' is not defined in any material library",
			      s->materials[i].name))
			return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

int scan_read_file(const char *path, const struct limits *lim,
		   struct scan *out, struct err *e)
{
	struct mapfile m;
	int rc;

	if (!lim)
		lim = limits_default();
	scan_init(out);
	err_set_path(e, path);
	if ((rc = mapfile_open(&m, path, e)) < 0)
		return rc;
	rc = scan_read_buffer(m.data, m.len, path, lim, out, e);
	mapfile_release(&m);
	if (rc < 0)
		goto out;
	if ((rc = load_libraries(out, path, lim, e)) < 0)
		goto out;
	/* textures declared by the scan itself (PLY comments); OBJ textures
	 * were resolved against their MTL file above */
	if (!out->n_libraries && resolve_textures(out, 0, path))
		rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	if (rc < 0) {
		scan_release(out);
		err_set_path(e, path);
	}
	return rc;
}
