/*
 * manifest.c - read and write the archive's JSON documents with jansson
 * (see manifest.h; the format is specified in docs/archive-format.md).
 *
 * Parsing is strict about what refscan relies on (types, digests, safe
 * paths, sorted unique entries) and lenient about what it does not know
 * (unknown keys, newer minor versions), so an old refscan can still read
 * a newer archive of the same major format.
 */
#include "manifest.h"
#include "volume.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/banned.h"

/* ---- parsing helpers ----------------------------------------------- */

/* ctx is a short description of the object being read ("entry 3"). */

static json_t *field(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_null(v) ? NULL : v;
}

static int get_str(json_t *o, const char *key, bool required, char **out,
		   const char *ctx, struct err *e)
{
	json_t *v = field(o, key);
	*out = NULL;
	if (!v) {
		if (required)
			return err_set(e, ERR_FORMAT, "%s: missing \"%s\"", ctx, key);
		return 0;
	}
	if (!json_is_string(v))
		return err_set(e, ERR_FORMAT, "%s: \"%s\" is not a string", ctx, key);
	const char *s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return err_set(e, ERR_FORMAT, "%s: \"%s\" contains a NUL byte", ctx, key);
	*out = xstrdup(s);
	if (!*out)
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

static int get_u64(json_t *o, const char *key, bool required, uint64_t *out,
		   const char *ctx, struct err *e)
{
	json_t *v = field(o, key);
	*out = 0;
	if (!v) {
		if (required)
			return err_set(e, ERR_FORMAT, "%s: missing \"%s\"", ctx, key);
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return err_set(e, ERR_FORMAT, "%s: \"%s\" is not a non-negative integer",
			       ctx, key);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_i64(json_t *o, const char *key, bool required, int64_t *out,
		   const char *ctx, struct err *e)
{
	json_t *v = field(o, key);
	*out = 0;
	if (!v) {
		if (required)
			return err_set(e, ERR_FORMAT, "%s: missing \"%s\"", ctx, key);
		return 0;
	}
	if (!json_is_integer(v))
		return err_set(e, ERR_FORMAT, "%s: \"%s\" is not an integer", ctx, key);
	*out = (int64_t)json_integer_value(v);
	return 0;
}

static int get_digest(json_t *o, const char *key, unsigned char out[SHA256_LEN],
		      const char *ctx, struct err *e)
{
	json_t *v = field(o, key);
	if (!v)
		return err_set(e, ERR_FORMAT, "%s: missing \"%s\"", ctx, key);
	if (!json_is_string(v) || json_string_length(v) != SHA256_HEX_LEN ||
	    !sha256_hex_valid(json_string_value(v)) ||
	    !sha256_from_hex(json_string_value(v), SHA256_HEX_LEN, out))
		return err_set(e, ERR_FORMAT, "%s: \"%s\" is not 64 lower-case hex digits",
			       ctx, key);
	return 0;
}

static int get_path(json_t *o, const char *key, char **out, const char *ctx,
		    struct err *e)
{
	int rc = get_str(o, key, true, out, ctx, e);
	if (rc < 0)
		return rc;
	if (!volume_path_safe(*out)) {
		rc = err_set(e, ERR_FORMAT, "%s: unsafe path '%s' (absolute, '..' or empty component)",
			     ctx, *out);
		xfree(*out);
		*out = NULL;
	}
	return rc;
}

/*
 * Check "format" == kind and "format_version" "MAJOR.MINOR" with a major
 * this code knows; *minor (may be NULL) gets the minor version.
 */
static int check_format(json_t *root, const char *kind, unsigned long *minor_out,
			struct err *e)
{
	if (!json_is_object(root))
		return err_set(e, ERR_FORMAT, "%s: not a JSON object", kind);
	json_t *f = json_object_get(root, "format");
	if (!json_is_string(f) || strcmp(json_string_value(f), kind) != 0)
		return err_set(e, ERR_FORMAT, "not a %s document (\"format\" is not \"%s\")",
			       kind, kind);
	json_t *v = json_object_get(root, "format_version");
	if (!json_is_string(v))
		return err_set(e, ERR_FORMAT, "%s: missing \"format_version\"", kind);
	const char *s = json_string_value(v);
	char *end;
	errno = 0;
	unsigned long major = strtoul(s, &end, 10);
	if (end == s || *end != '.' || errno == ERANGE || !end[1])
		return err_set(e, ERR_FORMAT, "%s: bad \"format_version\" '%s'", kind, s);
	const char *minor = end + 1;
	unsigned long mv = strtoul(minor, &end, 10);
	if (end == minor || *end != '\0' || errno == ERANGE)
		return err_set(e, ERR_FORMAT, "%s: bad \"format_version\" '%s'", kind, s);
	if (major > MANIFEST_FORMAT_MAJOR)
		return err_set(e, ERR_VERSION,
			       "%s format %s is newer than this refscan reads (%d.x); upgrade refscan",
			       kind, s, MANIFEST_FORMAT_MAJOR);
	if (major < 1)
		return err_set(e, ERR_VERSION, "%s format %s is not supported", kind, s);
	if (minor_out)
		*minor_out = mv;
	return 0;
}

static int load_json(const char *buf, size_t len, json_t **root, struct err *e)
{
	json_error_t je;
	*root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!*root)
		return err_set_line(e, ERR_FORMAT, je.line > 0 ? je.line : 0,
				    "invalid JSON: %s", je.text);
	return 0;
}

/* ---- manifest ------------------------------------------------------ */

void manifest_init(struct manifest *m)
{
	memset(m, 0, sizeof(*m));
}

void manifest_entry_release(struct manifest_entry *en)
{
	xfree(en->path);
	xfree(en->source);
	xfree(en->format);
	for (size_t i = 0; i < en->n_files; i++)
		xfree(en->files[i].path);
	xfree(en->files);
	xfree(en->units);
	xfree(en->units_source);
	json_decref(en->meta);
	json_decref(en->stats);
	xfree(en->desc.schema);
	xfree(en->undesc.schema);
	xfree(en->undesc.reason);
	memset(en, 0, sizeof(*en));
}

void manifest_failure_release(struct manifest_failure *f)
{
	xfree(f->path);
	xfree(f->source);
	xfree(f->code);
	xfree(f->message);
	memset(f, 0, sizeof(*f));
}

void manifest_release(struct manifest *m)
{
	xfree(m->tool);
	xfree(m->default_units);
	for (size_t i = 0; i < m->n_roots; i++) {
		xfree(m->roots[i].label);
		xfree(m->roots[i].source);
	}
	xfree(m->roots);
	xfree(m->index.file);
	xfree(m->index.schema);
	for (size_t i = 0; i < m->n_entries; i++)
		manifest_entry_release(&m->entries[i]);
	xfree(m->entries);
	for (size_t i = 0; i < m->n_failed; i++)
		manifest_failure_release(&m->failed[i]);
	xfree(m->failed);
	manifest_init(m);
}

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = xstrdup(src);
	return *dst ? 0 : -1;
}

int manifest_entry_copy(struct manifest_entry *dst,
			const struct manifest_entry *src, struct err *e)
{
	*dst = *src;
	dst->path = dst->source = dst->format = dst->units = dst->units_source = NULL;
	dst->files = NULL;
	dst->n_files = 0;
	dst->desc.schema = NULL;
	dst->undesc.schema = dst->undesc.reason = NULL;
	dst->meta = src->meta ? json_incref(src->meta) : NULL;
	dst->stats = src->stats ? json_incref(src->stats) : NULL;
	if (dup_opt(&dst->path, src->path) || dup_opt(&dst->source, src->source) ||
	    dup_opt(&dst->format, src->format) || dup_opt(&dst->units, src->units) ||
	    dup_opt(&dst->units_source, src->units_source) ||
	    dup_opt(&dst->desc.schema, src->desc.schema) ||
	    dup_opt(&dst->undesc.schema, src->undesc.schema) ||
	    dup_opt(&dst->undesc.reason, src->undesc.reason))
		goto nomem;
	if (src->n_files) {
		dst->files = alloc_array_zero(src->n_files, sizeof(*dst->files));
		if (!dst->files)
			goto nomem;
		for (size_t i = 0; i < src->n_files; i++) {
			dst->files[i] = src->files[i];
			dst->files[i].path = NULL;
			dst->n_files = i + 1;
			if (dup_opt(&dst->files[i].path, src->files[i].path))
				goto nomem;
		}
	}
	return 0;
nomem:
	manifest_entry_release(dst);
	return err_set(e, ERR_NOMEM, "out of memory");
}

const char *manifest_role_name(enum manifest_role r)
{
	switch (r) {
	case MANIFEST_ROLE_MTL: return "mtl";
	case MANIFEST_ROLE_TEXTURE: return "texture";
	case MANIFEST_ROLE_SIDECAR: return "sidecar";
	}
	return "unknown";
}

static int parse_role(const char *s, enum manifest_role *r)
{
	if (!strcmp(s, "mtl"))
		*r = MANIFEST_ROLE_MTL;
	else if (!strcmp(s, "texture"))
		*r = MANIFEST_ROLE_TEXTURE;
	else if (!strcmp(s, "sidecar"))
		*r = MANIFEST_ROLE_SIDECAR;
	else
		return -1;
	return 0;
}

static int parse_file(json_t *o, struct manifest_file *f, const char *ctx,
		      struct err *e)
{
	char *role = NULL;
	uint64_t mode;
	int rc;

	if (!json_is_object(o))
		return err_set(e, ERR_FORMAT, "%s: not an object", ctx);
	if ((rc = get_path(o, "path", &f->path, ctx, e)) < 0 ||
	    (rc = get_str(o, "role", true, &role, ctx, e)) < 0)
		goto out;
	if (parse_role(role, &f->role) < 0) {
		rc = err_set(e, ERR_FORMAT, "%s: unknown role '%s'", ctx, role);
		goto out;
	}
	json_t *miss = field(o, "missing");
	if (miss && !json_is_boolean(miss)) {
		rc = err_set(e, ERR_FORMAT, "%s: \"missing\" is not a boolean", ctx);
		goto out;
	}
	f->missing = miss && json_is_true(miss);
	if (f->missing)
		goto out;
	if ((rc = get_digest(o, "blob", f->blob, ctx, e)) < 0 ||
	    (rc = get_u64(o, "size", true, &f->size, ctx, e)) < 0 ||
	    (rc = get_i64(o, "mtime_ns", false, &f->mtime_ns, ctx, e)) < 0 ||
	    (rc = get_u64(o, "inode", false, &f->inode, ctx, e)) < 0 ||
	    (rc = get_u64(o, "mode", false, &mode, ctx, e)) < 0)
		goto out;
	f->mode = (uint32_t)(mode & 07777);
out:
	xfree(role);
	return rc;
}

static int parse_entry(json_t *o, struct manifest_entry *en, size_t idx,
		       struct err *e)
{
	char ctx[64];
	uint64_t mode;
	int rc;

	snprintf(ctx, sizeof(ctx), "entry %zu", idx);
	if (!json_is_object(o))
		return err_set(e, ERR_FORMAT, "%s: not an object", ctx);
	if ((rc = get_path(o, "path", &en->path, ctx, e)) < 0 ||
	    (rc = get_str(o, "source", false, &en->source, ctx, e)) < 0 ||
	    (rc = get_str(o, "format", true, &en->format, ctx, e)) < 0 ||
	    (rc = get_digest(o, "blob", en->blob, ctx, e)) < 0 ||
	    (rc = get_u64(o, "size", true, &en->size, ctx, e)) < 0 ||
	    (rc = get_i64(o, "mtime_ns", false, &en->mtime_ns, ctx, e)) < 0 ||
	    (rc = get_u64(o, "inode", false, &en->inode, ctx, e)) < 0 ||
	    (rc = get_u64(o, "mode", false, &mode, ctx, e)) < 0 ||
	    (rc = get_u64(o, "since", false, &en->since, ctx, e)) < 0 ||
	    (rc = get_str(o, "units", false, &en->units, ctx, e)) < 0 ||
	    (rc = get_str(o, "units_source", false, &en->units_source, ctx, e)) < 0)
		return rc;
	en->mode = (uint32_t)(mode & 07777);

	json_t *meta = field(o, "meta"), *stats = field(o, "stats");
	if (meta && !json_is_object(meta))
		return err_set(e, ERR_FORMAT, "%s: \"meta\" is not an object", ctx);
	if (stats && !json_is_object(stats))
		return err_set(e, ERR_FORMAT, "%s: \"stats\" is not an object", ctx);
	en->meta = meta ? json_incref(meta) : json_object();
	en->stats = stats ? json_incref(stats) : json_object();
	if (!en->meta || !en->stats)
		return err_set(e, ERR_NOMEM, "out of memory");

	json_t *files = field(o, "files");
	if (files) {
		if (!json_is_array(files))
			return err_set(e, ERR_FORMAT, "%s: \"files\" is not an array", ctx);
		size_t n = json_array_size(files);
		en->files = alloc_array_zero(n ? n : 1, sizeof(*en->files));
		if (!en->files)
			return err_set(e, ERR_NOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			char fctx[96];
			snprintf(fctx, sizeof(fctx), "%s file %zu", ctx, i);
			en->n_files = i + 1;
			if ((rc = parse_file(json_array_get(files, i), &en->files[i], fctx, e)) < 0)
				return rc;
		}
	}

	json_t *d = field(o, "descriptors");
	if (d) {
		if (!json_is_object(d))
			return err_set(e, ERR_FORMAT, "%s: \"descriptors\" is not an object", ctx);
		if ((rc = get_str(d, "schema", true, &en->desc.schema, ctx, e)) < 0 ||
		    (rc = get_digest(d, "blob", en->desc.blob, ctx, e)) < 0 ||
		    (rc = get_u64(d, "size", true, &en->desc.size, ctx, e)) < 0)
			return rc;
	}
	json_t *u = field(o, "undescribable");
	if (u) {
		if (!json_is_object(u))
			return err_set(e, ERR_FORMAT, "%s: \"undescribable\" is not an object", ctx);
		if (d)
			return err_set(e, ERR_FORMAT, "%s: has both \"descriptors\" and \"undescribable\"",
				       ctx);
		if ((rc = get_str(u, "schema", true, &en->undesc.schema, ctx, e)) < 0 ||
		    (rc = get_str(u, "reason", true, &en->undesc.reason, ctx, e)) < 0)
			return rc;
	}
	return 0;
}

static int parse_failure(json_t *o, struct manifest_failure *f, size_t idx,
			 struct err *e)
{
	char ctx[64];
	int rc;

	snprintf(ctx, sizeof(ctx), "failed %zu", idx);
	if (!json_is_object(o))
		return err_set(e, ERR_FORMAT, "%s: not an object", ctx);
	json_t *er = field(o, "error");
	if (!json_is_object(er))
		return err_set(e, ERR_FORMAT, "%s: \"error\" is not an object", ctx);
	if ((rc = get_path(o, "path", &f->path, ctx, e)) < 0 ||
	    (rc = get_str(o, "source", false, &f->source, ctx, e)) < 0 ||
	    (rc = get_str(er, "code", true, &f->code, ctx, e)) < 0 ||
	    (rc = get_str(er, "message", true, &f->message, ctx, e)) < 0 ||
	    (rc = get_u64(o, "size", false, &f->size, ctx, e)) < 0 ||
	    (rc = get_i64(o, "mtime_ns", false, &f->mtime_ns, ctx, e)) < 0 ||
	    (rc = get_u64(o, "inode", false, &f->inode, ctx, e)) < 0)
		return rc;
	return 0;
}

static int parse_manifest_root(json_t *root, struct manifest *m, struct err *e)
{
	int rc;
	const char *ctx = "manifest";

	if ((rc = check_format(root, "refscan-manifest", NULL, e)) < 0)
		return rc;
	if ((rc = get_u64(root, "version", true, &m->version, ctx, e)) < 0 ||
	    (rc = get_u64(root, "parent", false, &m->parent, ctx, e)) < 0 ||
	    (rc = get_i64(root, "created_unix", true, &m->created, ctx, e)) < 0 ||
	    (rc = get_str(root, "tool", false, &m->tool, ctx, e)) < 0 ||
	    (rc = get_str(root, "default_units", false, &m->default_units, ctx, e)) < 0 ||
	    (rc = get_u64(root, "volume", false, &m->volume, ctx, e)) < 0 ||
	    (rc = get_u64(root, "new_blobs", false, &m->new_blobs, ctx, e)) < 0 ||
	    (rc = get_u64(root, "new_bytes", false, &m->new_bytes, ctx, e)) < 0)
		return rc;
	if (m->version == 0)
		return err_set(e, ERR_FORMAT, "manifest: \"version\" must be at least 1");
	if (m->parent >= m->version)
		return err_set(e, ERR_FORMAT, "manifest: \"parent\" %" PRIu64 " is not before version %" PRIu64,
			       m->parent, m->version);

	json_t *c = field(root, "counts");
	if (c) {
		if (!json_is_object(c))
			return err_set(e, ERR_FORMAT, "manifest: \"counts\" is not an object");
		if ((rc = get_u64(c, "added", false, &m->counts.added, "counts", e)) < 0 ||
		    (rc = get_u64(c, "changed", false, &m->counts.changed, "counts", e)) < 0 ||
		    (rc = get_u64(c, "removed", false, &m->counts.removed, "counts", e)) < 0 ||
		    (rc = get_u64(c, "unchanged", false, &m->counts.unchanged, "counts", e)) < 0 ||
		    (rc = get_u64(c, "touched", false, &m->counts.touched, "counts", e)) < 0 ||
		    (rc = get_u64(c, "failed", false, &m->counts.failed, "counts", e)) < 0)
			return rc;
	}

	json_t *roots = field(root, "roots");
	if (roots) {
		if (!json_is_array(roots))
			return err_set(e, ERR_FORMAT, "manifest: \"roots\" is not an array");
		size_t n = json_array_size(roots);
		m->roots = alloc_array_zero(n ? n : 1, sizeof(*m->roots));
		if (!m->roots)
			return err_set(e, ERR_NOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			json_t *r = json_array_get(roots, i);
			char rctx[32];
			snprintf(rctx, sizeof(rctx), "root %zu", i);
			m->n_roots = i + 1;
			if (!json_is_object(r))
				return err_set(e, ERR_FORMAT, "%s: not an object", rctx);
			if ((rc = get_path(r, "label", &m->roots[i].label, rctx, e)) < 0 ||
			    (rc = get_str(r, "source", false, &m->roots[i].source, rctx, e)) < 0)
				return rc;
		}
	}

	json_t *ix = field(root, "index");
	if (ix) {
		if (!json_is_object(ix))
			return err_set(e, ERR_FORMAT, "manifest: \"index\" is not an object");
		if ((rc = get_path(ix, "file", &m->index.file, "index", e)) < 0 ||
		    (rc = get_str(ix, "schema", true, &m->index.schema, "index", e)) < 0 ||
		    (rc = get_digest(ix, "sha256", m->index.sha256, "index", e)) < 0 ||
		    (rc = get_u64(ix, "size", true, &m->index.size, "index", e)) < 0)
			return rc;
		if (strchr(m->index.file, '/'))
			return err_set(e, ERR_FORMAT, "index: \"file\" must be a plain name");
	}

	json_t *entries = field(root, "entries");
	if (!json_is_array(entries))
		return err_set(e, ERR_FORMAT, "manifest: \"entries\" is not an array");
	size_t n = json_array_size(entries);
	m->entries = alloc_array_zero(n ? n : 1, sizeof(*m->entries));
	if (!m->entries)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		m->n_entries = i + 1;
		if ((rc = parse_entry(json_array_get(entries, i), &m->entries[i], i, e)) < 0)
			return rc;
		if (i && strcmp(m->entries[i - 1].path, m->entries[i].path) >= 0)
			return err_set(e, ERR_FORMAT, "entry %zu: '%s' is out of order or repeated",
				       i, m->entries[i].path);
	}

	json_t *failed = field(root, "failed");
	if (failed) {
		if (!json_is_array(failed))
			return err_set(e, ERR_FORMAT, "manifest: \"failed\" is not an array");
		n = json_array_size(failed);
		m->failed = alloc_array_zero(n ? n : 1, sizeof(*m->failed));
		if (!m->failed)
			return err_set(e, ERR_NOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			m->n_failed = i + 1;
			if ((rc = parse_failure(json_array_get(failed, i), &m->failed[i], i, e)) < 0)
				return rc;
		}
	}
	return 0;
}

int manifest_parse(const char *buf, size_t len, struct manifest *m,
		   struct err *e)
{
	json_t *root;
	int rc;

	manifest_init(m);
	if ((rc = load_json(buf, len, &root, e)) < 0)
		return rc;
	rc = parse_manifest_root(root, m, e);
	json_decref(root);
	if (rc < 0)
		manifest_release(m);
	return rc;
}

const struct manifest_entry *manifest_find(const struct manifest *m,
					   const char *path)
{
	size_t lo = 0, hi = m->n_entries;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->entries[mid].path, path);
		if (c == 0)
			return &m->entries[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- writing helpers ----------------------------------------------- */

/*
 * Builders collect failures in *bad instead of checking every jansson
 * call: one allocation failure anywhere turns the whole dump into
 * ERR_NOMEM.
 */
static void put(json_t *o, const char *key, json_t *v, bool *bad)
{
	if (!v || json_object_set_new(o, key, v) < 0)
		*bad = true;
}

static void push(json_t *a, json_t *v, bool *bad)
{
	if (!v || json_array_append_new(a, v) < 0)
		*bad = true;
}

static json_t *jdigest(const unsigned char d[SHA256_LEN])
{
	char hex[SHA256_HEX_LEN + 1];
	sha256_to_hex(d, hex);
	return json_string(hex);
}

static json_t *ju64(uint64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *jstr_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static int dump_root(json_t *root, char **out, size_t *len, struct err *e)
{
	char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	if (!s)
		return err_set(e, ERR_NOMEM, "out of memory writing JSON");
	size_t n = strlen(s);
	*out = xmalloc(n + 2);
	if (!*out) {
		free(s);
		return err_set(e, ERR_NOMEM, "out of memory writing JSON");
	}
	memcpy(*out, s, n);
	(*out)[n] = '\n';
	(*out)[n + 1] = '\0';
	*len = n + 1;
	free(s);
	return 0;
}

static json_t *format_header(const char *kind, int minor, bool *bad)
{
	char v[32];
	json_t *o = json_object();
	if (!o) {
		*bad = true;
		return NULL;
	}
	snprintf(v, sizeof(v), "%d.%d", MANIFEST_FORMAT_MAJOR, minor);
	put(o, "format", json_string(kind), bad);
	put(o, "format_version", json_string(v), bad);
	return o;
}

static json_t *file_json(const struct manifest_file *f, bool *bad)
{
	json_t *o = json_object();
	if (!o) {
		*bad = true;
		return NULL;
	}
	put(o, "role", json_string(manifest_role_name(f->role)), bad);
	put(o, "path", json_string(f->path), bad);
	if (f->missing) {
		put(o, "missing", json_true(), bad);
		return o;
	}
	put(o, "blob", jdigest(f->blob), bad);
	put(o, "size", ju64(f->size), bad);
	put(o, "mtime_ns", json_integer(f->mtime_ns), bad);
	put(o, "inode", ju64(f->inode), bad);
	put(o, "mode", ju64(f->mode), bad);
	return o;
}

static json_t *entry_json(const struct manifest_entry *en, bool *bad)
{
	json_t *o = json_object(), *files = json_array();
	if (!o || !files) {
		json_decref(o);
		json_decref(files);
		*bad = true;
		return NULL;
	}
	put(o, "path", json_string(en->path), bad);
	put(o, "format", json_string(en->format ? en->format : ""), bad);
	put(o, "blob", jdigest(en->blob), bad);
	put(o, "size", ju64(en->size), bad);
	put(o, "mtime_ns", json_integer(en->mtime_ns), bad);
	put(o, "inode", ju64(en->inode), bad);
	put(o, "mode", ju64(en->mode), bad);
	put(o, "since", ju64(en->since), bad);
	put(o, "source", jstr_or_null(en->source), bad);
	put(o, "units", jstr_or_null(en->units), bad);
	put(o, "units_source", jstr_or_null(en->units_source), bad);
	for (size_t i = 0; i < en->n_files; i++)
		push(files, file_json(&en->files[i], bad), bad);
	put(o, "files", files, bad);
	put(o, "meta", en->meta ? json_incref(en->meta) : json_object(), bad);
	put(o, "stats", en->stats ? json_incref(en->stats) : json_object(), bad);
	if (en->desc.schema)
		put(o, "descriptors", json_pack("{s:s, s:o, s:I}", "schema", en->desc.schema,
						"blob", jdigest(en->desc.blob),
						"size", (json_int_t)en->desc.size), bad);
	else
		put(o, "descriptors", json_null(), bad);
	if (en->undesc.schema)
		put(o, "undescribable", json_pack("{s:s, s:s}", "schema", en->undesc.schema,
						  "reason", en->undesc.reason ? en->undesc.reason : ""),
		    bad);
	return o;
}

static json_t *failure_json(const struct manifest_failure *f, bool *bad)
{
	json_t *o = json_pack("{s:s, s:s?, s:{s:s, s:s}, s:I, s:I, s:I}",
			      "path", f->path, "source", f->source,
			      "error", "code", f->code ? f->code : "internal",
			      "message", f->message ? f->message : "",
			      "size", (json_int_t)f->size,
			      "mtime_ns", (json_int_t)f->mtime_ns,
			      "inode", (json_int_t)f->inode);
	if (!o)
		*bad = true;
	return o;
}

int manifest_dump(const struct manifest *m, char **out, size_t *len,
		  struct err *e)
{
	bool bad = false;
	char when[32];
	time_t t = (time_t)m->created;
	struct tm tm;
	int rc;

	*out = NULL;
	*len = 0;
	for (size_t i = 1; i < m->n_entries; i++)
		if (strcmp(m->entries[i - 1].path, m->entries[i].path) >= 0)
			return err_set(e, ERR_INTERNAL, "manifest entries not sorted at '%s'",
				       m->entries[i].path);
	if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(when, sizeof(when), "unknown");

	json_t *root = format_header("refscan-manifest", MANIFEST_FORMAT_MINOR, &bad);
	json_t *roots = json_array(), *entries = json_array(), *failed = json_array();
	if (!root || !roots || !entries || !failed) {
		json_decref(root);
		json_decref(roots);
		json_decref(entries);
		json_decref(failed);
		return err_set(e, ERR_NOMEM, "out of memory writing the manifest");
	}
	put(root, "version", ju64(m->version), &bad);
	put(root, "parent", m->parent ? ju64(m->parent) : json_null(), &bad);
	put(root, "created", json_string(when), &bad);
	put(root, "created_unix", json_integer(m->created), &bad);
	put(root, "tool", jstr_or_null(m->tool), &bad);
	put(root, "default_units", jstr_or_null(m->default_units), &bad);
	for (size_t i = 0; i < m->n_roots; i++)
		push(roots, json_pack("{s:s, s:s?}", "label", m->roots[i].label,
				      "source", m->roots[i].source), &bad);
	put(root, "roots", roots, &bad);
	put(root, "counts", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				      "entries", (json_int_t)m->n_entries,
				      "added", (json_int_t)m->counts.added,
				      "changed", (json_int_t)m->counts.changed,
				      "removed", (json_int_t)m->counts.removed,
				      "unchanged", (json_int_t)m->counts.unchanged,
				      "touched", (json_int_t)m->counts.touched,
				      "failed", (json_int_t)m->counts.failed), &bad);
	put(root, "volume", m->volume ? ju64(m->volume) : json_null(), &bad);
	put(root, "new_blobs", ju64(m->new_blobs), &bad);
	put(root, "new_bytes", ju64(m->new_bytes), &bad);
	if (m->index.file)
		put(root, "index", json_pack("{s:s, s:s, s:o, s:I}", "file", m->index.file,
					     "schema", m->index.schema ? m->index.schema : "",
					     "sha256", jdigest(m->index.sha256),
					     "size", (json_int_t)m->index.size), &bad);
	else
		put(root, "index", json_null(), &bad);
	for (size_t i = 0; i < m->n_entries && !bad; i++)
		push(entries, entry_json(&m->entries[i], &bad), &bad);
	put(root, "entries", entries, &bad);
	for (size_t i = 0; i < m->n_failed && !bad; i++)
		push(failed, failure_json(&m->failed[i], &bad), &bad);
	put(root, "failed", failed, &bad);
	if (bad)
		rc = err_set(e, ERR_NOMEM, "out of memory writing the manifest");
	else
		rc = dump_root(root, out, len, e);
	json_decref(root);
	return rc;
}

/* ---- failure cache ------------------------------------------------- */

void failures_free(struct manifest_failure *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		manifest_failure_release(&f[i]);
	xfree(f);
}

int failures_parse(const char *buf, size_t len, struct manifest_failure **out,
		   size_t *n_out, struct err *e)
{
	json_t *root;
	struct manifest_failure *f = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	*n_out = 0;
	if ((rc = load_json(buf, len, &root, e)) < 0)
		return rc;
	unsigned long minor = 0;
	if ((rc = check_format(root, "refscan-failures", &minor, e)) < 0)
		goto out;
	if (minor < FAILURES_FORMAT_MINOR)
		goto out; /* see manifest.h: an older cache is dropped */
	json_t *a = field(root, "failed");
	if (!json_is_array(a)) {
		rc = err_set(e, ERR_FORMAT, "failures: \"failed\" is not an array");
		goto out;
	}
	size_t k = json_array_size(a);
	f = alloc_array_zero(k ? k : 1, sizeof(*f));
	if (!f) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < k; i++) {
		n = i + 1;
		if ((rc = parse_failure(json_array_get(a, i), &f[i], i, e)) < 0)
			goto out;
		if (i && strcmp(f[i - 1].path, f[i].path) >= 0) {
			rc = err_set(e, ERR_FORMAT, "failed %zu: out of order or repeated", i);
			goto out;
		}
	}
	*out = f;
	*n_out = n;
	f = NULL;
out:
	if (f)
		failures_free(f, n);
	json_decref(root);
	return rc;
}

int failures_dump(const struct manifest_failure *f, size_t n, char **out,
		  size_t *len, struct err *e)
{
	bool bad = false;
	json_t *root = format_header("refscan-failures", FAILURES_FORMAT_MINOR, &bad);
	json_t *a = json_array();
	int rc;

	*out = NULL;
	if (!root || !a) {
		json_decref(root);
		json_decref(a);
		return err_set(e, ERR_NOMEM, "out of memory writing failures");
	}
	for (size_t i = 0; i < n && !bad; i++)
		push(a, failure_json(&f[i], &bad), &bad);
	put(root, "failed", a, &bad);
	rc = bad ? err_set(e, ERR_NOMEM, "out of memory writing failures")
		 : dump_root(root, out, len, e);
	json_decref(root);
	return rc;
}

/* ---- stat cache ----------------------------------------------------- */

/* An integer at index i of array a, or false. */
static bool arr_i64(json_t *a, size_t i, int64_t *v, bool nonneg)
{
	json_t *x = json_array_get(a, i);
	if (!json_is_integer(x) || (nonneg && json_integer_value(x) < 0))
		return false;
	*v = (int64_t)json_integer_value(x);
	return true;
}

static int sc_str(json_t *a, size_t i, char **out, bool path)
{
	json_t *x = json_array_get(a, i);
	*out = NULL;
	if (!json_is_string(x) || strlen(json_string_value(x)) != json_string_length(x))
		return -1;
	if (path && !volume_path_safe(json_string_value(x)))
		return -1;
	*out = xstrdup(json_string_value(x));
	return *out ? 0 : -2;
}

static int parse_sc_entry(json_t *a, struct manifest_entry *en, size_t idx, struct err *e)
{
	int64_t v;
	char *role = NULL;
	int rc;

	if (!json_is_array(a) || json_array_size(a) != 6)
		return err_set(e, ERR_FORMAT, "statcache entry %zu: not a 6-element array", idx);
	if ((rc = sc_str(a, 0, &en->path, true)) == -2)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (rc < 0)
		return err_set(e, ERR_FORMAT, "statcache entry %zu: bad path", idx);
	if (!arr_i64(a, 1, &v, true))
		return err_set(e, ERR_FORMAT, "statcache entry %zu: bad size", idx);
	en->size = (uint64_t)v;
	if (!arr_i64(a, 2, &en->mtime_ns, false) || !arr_i64(a, 3, &v, true))
		return err_set(e, ERR_FORMAT, "statcache entry %zu: bad mtime or inode", idx);
	en->inode = (uint64_t)v;
	if (!json_is_null(json_array_get(a, 4))) {
		if ((rc = sc_str(a, 4, &en->desc.schema, false)) == -2)
			return err_set(e, ERR_NOMEM, "out of memory");
		if (rc < 0)
			return err_set(e, ERR_FORMAT, "statcache entry %zu: bad schema", idx);
	}
	json_t *files = json_array_get(a, 5);
	if (!json_is_array(files))
		return err_set(e, ERR_FORMAT, "statcache entry %zu: files not an array", idx);
	size_t n = json_array_size(files);
	en->files = alloc_array_zero(n ? n : 1, sizeof(*en->files));
	if (!en->files)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *f = json_array_get(files, i);
		struct manifest_file *mf = &en->files[i];
		size_t k = json_array_size(f);
		en->n_files = i + 1;
		if (!json_is_array(f) || (k != 2 && k != 5))
			return err_set(e, ERR_FORMAT, "statcache entry %zu file %zu: bad shape", idx, i);
		if ((rc = sc_str(f, 0, &role, false)) == -2 || (rc == 0 && (rc = sc_str(f, 1, &mf->path, true)) == -2)) {
			xfree(role);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
		if (rc < 0 || parse_role(role, &mf->role) < 0) {
			xfree(role);
			return err_set(e, ERR_FORMAT, "statcache entry %zu file %zu: bad role or path", idx, i);
		}
		xfree(role);
		role = NULL;
		mf->missing = k == 2;
		if (mf->missing)
			continue;
		if (!arr_i64(f, 2, &v, true))
			return err_set(e, ERR_FORMAT, "statcache entry %zu file %zu: bad size", idx, i);
		mf->size = (uint64_t)v;
		if (!arr_i64(f, 3, &mf->mtime_ns, false) || !arr_i64(f, 4, &v, true))
			return err_set(e, ERR_FORMAT, "statcache entry %zu file %zu: bad stat", idx, i);
		mf->inode = (uint64_t)v;
	}
	return 0;
}

int statcache_parse(const char *buf, size_t len, uint64_t *version,
		    struct manifest *m, struct err *e)
{
	json_t *root;
	int rc;

	manifest_init(m);
	*version = 0;
	if ((rc = load_json(buf, len, &root, e)) < 0)
		return rc;
	if ((rc = check_format(root, "refscan-statcache", NULL, e)) < 0 ||
	    (rc = get_u64(root, "version", true, version, "statcache", e)) < 0)
		goto out;
	json_t *a = field(root, "entries");
	if (!json_is_array(a)) {
		rc = err_set(e, ERR_FORMAT, "statcache: \"entries\" is not an array");
		goto out;
	}
	size_t n = json_array_size(a);
	m->entries = alloc_array_zero(n ? n : 1, sizeof(*m->entries));
	if (!m->entries) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	m->version = *version;
	for (size_t i = 0; i < n; i++) {
		m->n_entries = i + 1;
		if ((rc = parse_sc_entry(json_array_get(a, i), &m->entries[i], i, e)) < 0)
			goto out;
		if (i && strcmp(m->entries[i - 1].path, m->entries[i].path) >= 0) {
			rc = err_set(e, ERR_FORMAT, "statcache entry %zu: out of order or repeated", i);
			goto out;
		}
	}
out:
	json_decref(root);
	if (rc < 0)
		manifest_release(m);
	return rc;
}

int statcache_dump(const struct manifest *m, uint64_t version, char **out,
		   size_t *len, struct err *e)
{
	bool bad = false;
	json_t *root = format_header("refscan-statcache", OTHER_FORMAT_MINOR, &bad);
	json_t *a = json_array();
	int rc;

	*out = NULL;
	if (!root || !a) {
		json_decref(root);
		json_decref(a);
		return err_set(e, ERR_NOMEM, "out of memory writing the stat cache");
	}
	put(root, "version", ju64(version), &bad);
	for (size_t i = 0; i < m->n_entries && !bad; i++) {
		const struct manifest_entry *en = &m->entries[i];
		const char *described_with = en->desc.schema ? en->desc.schema : en->undesc.schema;
		json_t *files = json_array();
		if (!files) {
			bad = true;
			break;
		}
		for (size_t k = 0; k < en->n_files; k++) {
			const struct manifest_file *f = &en->files[k];
			if (f->missing)
				push(files, json_pack("[s,s]", manifest_role_name(f->role), f->path), &bad);
			else
				push(files, json_pack("[s,s,I,I,I]", manifest_role_name(f->role), f->path,
						      (json_int_t)f->size, (json_int_t)f->mtime_ns,
						      (json_int_t)f->inode), &bad);
		}
		push(a, json_pack("[s,I,I,I,o,o]", en->path, (json_int_t)en->size,
				  (json_int_t)en->mtime_ns, (json_int_t)en->inode,
				  described_with ? json_string(described_with) : json_null(), files), &bad);
	}
	put(root, "entries", a, &bad);
	rc = bad ? err_set(e, ERR_NOMEM, "out of memory writing the stat cache")
		 : dump_root(root, out, len, e);
	json_decref(root);
	return rc;
}

/* ---- HEAD ---------------------------------------------------------- */

void head_init(struct head *h)
{
	memset(h, 0, sizeof(*h));
	h->next_volume = 1;
}

void head_release(struct head *h)
{
	xfree(h->versions);
	xfree(h->volumes);
	head_init(h);
}

static bool in_sorted(const uint64_t *a, size_t n, uint64_t v)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a[mid] == v)
			return true;
		if (a[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

bool head_has_version(const struct head *h, uint64_t v)
{
	return in_sorted(h->versions, h->n_versions, v);
}

bool head_has_volume(const struct head *h, uint64_t id)
{
	return in_sorted(h->volumes, h->n_volumes, id);
}

int head_copy(struct head *dst, const struct head *src, struct err *e)
{
	head_init(dst);
	dst->version = src->version;
	dst->next_volume = src->next_volume;
	dst->versions = alloc_array(src->n_versions ? src->n_versions : 1, sizeof(uint64_t));
	dst->volumes = alloc_array(src->n_volumes ? src->n_volumes : 1, sizeof(uint64_t));
	if (!dst->versions || !dst->volumes) {
		head_release(dst);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	if (src->n_versions)
		memcpy(dst->versions, src->versions, src->n_versions * sizeof(uint64_t));
	if (src->n_volumes)
		memcpy(dst->volumes, src->volumes, src->n_volumes * sizeof(uint64_t));
	dst->n_versions = src->n_versions;
	dst->n_volumes = src->n_volumes;
	return 0;
}

static int insert_id(uint64_t **a, size_t *n, uint64_t v, struct err *e)
{
	if (in_sorted(*a, *n, v))
		return 0;
	uint64_t *na = realloc_array(*a, *n + 1, sizeof(**a));
	if (!na)
		return err_set(e, ERR_NOMEM, "out of memory");
	size_t i = *n;
	while (i && na[i - 1] > v) {
		na[i] = na[i - 1];
		i--;
	}
	na[i] = v;
	*a = na;
	(*n)++;
	return 0;
}

int head_add_version(struct head *h, uint64_t v, struct err *e)
{
	return insert_id(&h->versions, &h->n_versions, v, e);
}

int head_add_volume(struct head *h, uint64_t id, struct err *e)
{
	return insert_id(&h->volumes, &h->n_volumes, id, e);
}

/* A strictly ascending array of positive integers. */
static int get_ids(json_t *root, const char *key, uint64_t **out, size_t *n,
		   struct err *e)
{
	json_t *a = field(root, key);
	*out = NULL;
	*n = 0;
	if (!json_is_array(a))
		return err_set(e, ERR_FORMAT, "HEAD: \"%s\" is not an array", key);
	size_t k = json_array_size(a);
	*out = alloc_array(k ? k : 1, sizeof(**out));
	if (!*out)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < k; i++) {
		json_t *v = json_array_get(a, i);
		if (!json_is_integer(v) || json_integer_value(v) < 1)
			return err_set(e, ERR_FORMAT, "HEAD: \"%s\"[%zu] is not a positive integer",
				       key, i);
		(*out)[i] = (uint64_t)json_integer_value(v);
		if (i && (*out)[i] <= (*out)[i - 1])
			return err_set(e, ERR_FORMAT, "HEAD: \"%s\" is not strictly ascending at %zu",
				       key, i);
		*n = i + 1;
	}
	return 0;
}

int head_parse(const char *buf, size_t len, struct head *h, struct err *e)
{
	json_t *root;
	int rc;

	head_init(h);
	if ((rc = load_json(buf, len, &root, e)) < 0)
		return rc;
	if ((rc = check_format(root, "refscan-head", NULL, e)) < 0 ||
	    (rc = get_u64(root, "version", true, &h->version, "HEAD", e)) < 0 ||
	    (rc = get_u64(root, "next_volume", true, &h->next_volume, "HEAD", e)) < 0 ||
	    (rc = get_ids(root, "versions", &h->versions, &h->n_versions, e)) < 0 ||
	    (rc = get_ids(root, "volumes", &h->volumes, &h->n_volumes, e)) < 0)
		goto out;
	if (h->version && (!h->n_versions || h->versions[h->n_versions - 1] != h->version))
		rc = err_set(e, ERR_FORMAT, "HEAD: \"version\" %" PRIu64 " is not the last of \"versions\"",
			     h->version);
	else if (!h->version && h->n_versions)
		rc = err_set(e, ERR_FORMAT, "HEAD: versions listed without a current version");
	else if (h->n_volumes && h->volumes[h->n_volumes - 1] >= h->next_volume)
		rc = err_set(e, ERR_FORMAT, "HEAD: \"next_volume\" is not above every volume");
out:
	json_decref(root);
	if (rc < 0)
		head_release(h);
	return rc;
}

int head_dump(const struct head *h, char **out, size_t *len, struct err *e)
{
	bool bad = false;
	json_t *root = format_header("refscan-head", OTHER_FORMAT_MINOR, &bad);
	json_t *vs = json_array(), *vols = json_array();
	int rc;

	*out = NULL;
	if (!root || !vs || !vols) {
		json_decref(root);
		json_decref(vs);
		json_decref(vols);
		return err_set(e, ERR_NOMEM, "out of memory writing HEAD");
	}
	put(root, "version", ju64(h->version), &bad);
	for (size_t i = 0; i < h->n_versions; i++)
		push(vs, ju64(h->versions[i]), &bad);
	put(root, "versions", vs, &bad);
	for (size_t i = 0; i < h->n_volumes; i++)
		push(vols, ju64(h->volumes[i]), &bad);
	put(root, "volumes", vols, &bad);
	put(root, "next_volume", ju64(h->next_volume), &bad);
	rc = bad ? err_set(e, ERR_NOMEM, "out of memory writing HEAD")
		 : dump_root(root, out, len, e);
	json_decref(root);
	return rc;
}

/* ---- volume index -------------------------------------------------- */

void volidx_init(struct volidx *v)
{
	memset(v, 0, sizeof(*v));
}

void volidx_release(struct volidx *v)
{
	xfree(v->blobs);
	volidx_init(v);
}

int volidx_parse(const char *buf, size_t len, struct volidx *v, struct err *e)
{
	json_t *root;
	int rc;

	volidx_init(v);
	if ((rc = load_json(buf, len, &root, e)) < 0)
		return rc;
	const char *ctx = "volume index";
	if ((rc = check_format(root, "refscan-volume-index", NULL, e)) < 0 ||
	    (rc = get_u64(root, "volume", true, &v->volume, ctx, e)) < 0 ||
	    (rc = get_u64(root, "size", true, &v->size, ctx, e)) < 0 ||
	    (rc = get_digest(root, "sha256", v->sha256, ctx, e)) < 0 ||
	    (rc = get_u64(root, "unlisted", false, &v->n_unlisted, ctx, e)) < 0)
		goto out;
	json_t *blobs = field(root, "blobs");
	if (!json_is_array(blobs)) {
		rc = err_set(e, ERR_FORMAT, "volume index: \"blobs\" is not an array");
		goto out;
	}
	size_t n = json_array_size(blobs);
	v->blobs = alloc_array(n ? n : 1, sizeof(*v->blobs));
	if (!v->blobs) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *b = json_array_get(blobs, i);
		json_t *d = json_array_get(b, 0), *s = json_array_get(b, 1);
		if (!json_is_array(b) || json_array_size(b) != 2 || !json_is_string(d) ||
		    json_string_length(d) != SHA256_HEX_LEN || !sha256_hex_valid(json_string_value(d)) ||
		    !json_is_integer(s) || json_integer_value(s) < 0) {
			rc = err_set(e, ERR_FORMAT, "volume index: blob %zu is not [\"<64 hex>\", size]", i);
			goto out;
		}
		sha256_from_hex(json_string_value(d), SHA256_HEX_LEN, v->blobs[i].digest);
		v->blobs[i].size = (uint64_t)json_integer_value(s);
		if (i && memcmp(v->blobs[i - 1].digest, v->blobs[i].digest, SHA256_LEN) >= 0) {
			rc = err_set(e, ERR_FORMAT, "volume index: blob %zu is out of order or repeated", i);
			goto out;
		}
		v->n_blobs = i + 1;
	}
out:
	json_decref(root);
	if (rc < 0)
		volidx_release(v);
	return rc;
}

int volidx_dump(const struct volidx *v, char **out, size_t *len, struct err *e)
{
	bool bad = false;
	json_t *root = format_header("refscan-volume-index", OTHER_FORMAT_MINOR, &bad);
	json_t *blobs = json_array();
	int rc;

	*out = NULL;
	if (!root || !blobs) {
		json_decref(root);
		json_decref(blobs);
		return err_set(e, ERR_NOMEM, "out of memory writing a volume index");
	}
	put(root, "volume", ju64(v->volume), &bad);
	put(root, "size", ju64(v->size), &bad);
	put(root, "sha256", jdigest(v->sha256), &bad);
	put(root, "unlisted", ju64(v->n_unlisted), &bad);
	for (size_t i = 0; i < v->n_blobs && !bad; i++)
		push(blobs, json_pack("[o, I]", jdigest(v->blobs[i].digest),
				      (json_int_t)v->blobs[i].size), &bad);
	put(root, "blobs", blobs, &bad);
	rc = bad ? err_set(e, ERR_NOMEM, "out of memory writing a volume index")
		 : dump_root(root, out, len, e);
	json_decref(root);
	return rc;
}
