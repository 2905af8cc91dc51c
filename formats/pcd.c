/*
 * pcd.c - Point Cloud Library PCD files, versions 0.5 to 0.7.
 *
 * Spec: https://pointclouds.org/documentation/tutorials/pcd_file_format.html
 * and PCL's io/src/pcd_io.cpp for what real files contain.
 *
 * A header of keyword lines (VERSION, FIELDS or COLUMNS, SIZE, TYPE,
 * COUNT, WIDTH, HEIGHT, VIEWPOINT, POINTS, DATA; '#' comments; LF or CRLF)
 * is followed by the points:
 *   DATA ascii              one line per point, every field's values
 *   DATA binary             array of records (fields in order), LE
 *   DATA binary_compressed  uint32 compressed size, uint32 raw size, LZF
 *                           data that expands to fields one after another
 *                           (all x, then all y, ...)
 * Fields used: x y z (any numeric type), normal_x/y/z, rgb (0x00RRGGBB,
 * packed in a float or a uint32) or rgba (0xAARRGGBB); every other field
 * is skipped by its SIZE * COUNT.  A point cloud has no faces.
 *
 * Invariants: POINTS == WIDTH * HEIGHT; every size is checked with
 * overflow-checked math against the bytes present (or, compressed, the
 * declared raw size, itself bounded by LZF's maximum expansion) before
 * anything is allocated.  NaN points are kept (organised clouds use them
 * for "no return"); scan_finalize counts them.
 */
#include "formats.h"
#include "textscan.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <stdio.h>
#include <string.h>

#include <liblzf/lzf.h>

#include "../common/banned.h"

/*
 * The longest LZF back reference is 264 bytes in 3 input bytes (lzf_d.c),
 * so no valid stream expands more than 88 times.  A raw size above that
 * is a lie, caught before allocating for it.
 */
#define LZF_MAX_EXPANSION 88u

enum pcd_data { PCD_ASCII, PCD_BINARY, PCD_COMPRESSED };

enum role { R_SKIP, R_X, R_Y, R_Z, R_NX, R_NY, R_NZ, R_RGB, R_RGBA, R_COUNT };

static const char *const role_names[R_COUNT] = {
	"", "x", "y", "z", "normal_x", "normal_y", "normal_z", "rgb", "rgba",
};

struct pcd_field {
	const char *name;   /* into the buffer, not NUL-terminated */
	int name_len;
	char label[48];     /* the name made safe for messages */
	char type;          /* 'I', 'U' or 'F' */
	uint32_t size;      /* bytes per element: 1, 2, 4 or 8 */
	uint64_t count;     /* elements per point */
	size_t offset;      /* bytes from the start of a record */
	enum role role;
};

struct pcd {
	struct pcd_field *fields;
	size_t n_fields;
	int slot[R_COUNT];     /* field index per role, -1 when absent */
	uint64_t width, height, points;
	bool has_width, has_height, has_points, has_size, has_type;
	long points_line;
	enum pcd_data data;
	size_t record;         /* bytes per point */
	size_t n_values;       /* values per ascii line */
	size_t data_off;       /* first byte after the DATA line */
	long data_line;        /* line of the first point (ascii) */
};

static const char *const keywords[] = {
	"FIELDS", "COLUMNS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT",
	"VIEWPOINT", "POINTS", "DATA",
};

/* VERSION then another header keyword, or a file opening with FIELDS. */
int pcd_probe(const unsigned char *buf, size_t len)
{
	struct tcur c;
	const char *ls, *le;
	int seen_version = 0;
	tcur_init(&c, buf, len < 4096 ? len : 4096);
	while (tcur_next_line(&c, &ls, &le)) {
		ls = ts_skip_blank(ls, le);
		if (ls == le || *ls == '#')
			continue;
		const char *ke = ts_token_end(ls, le);
		if (!seen_version && ts_eq(ls, ke, "VERSION")) {
			seen_version = 1;
			continue;
		}
		for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
			if (ts_eq(ls, ke, keywords[i]))
				return seen_version ? 100 : i < 2 ? 80 : 0;
		return 0;
	}
	return 0;
}

/*
 * Text from the file made safe to quote in a message: at most 40 bytes,
 * non-printing bytes as '?', "..." when cut.  Returns dst.
 */
static const char *quoted(char dst[48], const char *p, const char *e)
{
	size_t n = 0;
	for (; p < e && n < 40; p++)
		dst[n++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
	if (p < e) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
	return dst;
}

/* Number of blank-separated tokens in [p, e). */
static size_t count_tokens(const char *p, const char *e)
{
	size_t n = 0;
	for (;;) {
		p = ts_skip_blank(p, e);
		if (p == e)
			return n;
		n++;
		p = ts_token_end(p, e);
	}
}

static int field_is(const struct pcd_field *f, const char *name)
{
	return ts_eq(f->name, f->name + f->name_len, name);
}

/* Parse "SIZE"/"TYPE"/"COUNT" values, one per field. */
static int parse_field_list(struct pcd *h, const char *kw, const char *p,
			    const char *le, long line, struct err *e)
{
	size_t n = count_tokens(p, le);
	if (!h->fields)
		return err_set_line(e, ERR_FORMAT, line, "%s before FIELDS", kw);
	if (n != h->n_fields)
		return err_set_line(e, ERR_FORMAT, line,
				    "%s has %zu values for %zu fields", kw, n, h->n_fields);
	for (size_t i = 0; i < n; i++) {
		struct pcd_field *f = &h->fields[i];
		p = ts_skip_blank(p, le);
		const char *te = ts_token_end(p, le);
		uint64_t v = 0;
		char q[48];
		if (kw[0] == 'T') {
			if (te - p != 1 || (*p != 'I' && *p != 'U' && *p != 'F'))
				return err_set_line(e, ERR_FORMAT, line,
						    "field '%s': type '%s' is not I, U or F",
						    f->label, quoted(q, p, te));
			f->type = *p;
		} else if (ts_parse_u64(p, te, &v) != te) {
			return err_set_line(e, ERR_FORMAT, line,
					    "field '%s': bad %s near '%s'",
					    f->label, kw, quoted(q, p, te));
		} else if (kw[0] == 'S') {
			if (v != 1 && v != 2 && v != 4 && v != 8)
				return err_set_line(e, ERR_FORMAT, line,
						    "field '%s': size %llu is not 1, 2, 4 or 8",
						    f->label, (unsigned long long)v);
			f->size = (uint32_t)v;
		} else {
			if (v == 0)
				return err_set_line(e, ERR_FORMAT, line,
						    "field '%s': count 0", f->label);
			f->count = v;
		}
		p = te;
	}
	return 0;
}

static int parse_u64_kw(const char *kw, const char *p, const char *le, long line,
			uint64_t *out, struct err *e)
{
	char q[48];
	p = ts_skip_blank(p, le);
	const char *te = ts_token_end(p, le);
	if (ts_parse_u64(p, te, out) != te || ts_skip_blank(te, le) != le)
		return err_set_line(e, ERR_FORMAT, line, "%s: bad count near '%s'",
				    kw, quoted(q, p, le));
	return 0;
}

static int parse_fields(struct pcd *h, const char *p, const char *le, long line,
			const struct limits *lim, struct err *e)
{
	size_t n = count_tokens(p, le);
	if (h->fields)
		return err_set_line(e, ERR_FORMAT, line, "FIELDS given twice");
	if (n == 0)
		return err_set_line(e, ERR_FORMAT, line, "FIELDS lists no fields");
	if (n > lim->max_properties)
		return err_set_line(e, ERR_LIMIT, line, "%zu fields (limit %zu)",
				    n, lim->max_properties);
	h->fields = alloc_array_zero(n, sizeof(*h->fields));
	if (!h->fields)
		return err_set(e, ERR_NOMEM, "out of memory for %zu fields", n);
	h->n_fields = n;
	for (size_t i = 0; i < n; i++) {
		p = ts_skip_blank(p, le);
		const char *te = ts_token_end(p, le);
		struct pcd_field *f = &h->fields[i];
		f->name = p;
		f->name_len = te - p > 200 ? 200 : (int)(te - p);
		quoted(f->label, p, te);
		f->count = 1;
		p = te;
	}
	return 0;
}

static int parse_viewpoint(struct scan *out, const char *p, const char *le,
			   long line, struct err *e)
{
	const char *start = ts_skip_blank(p, le);
	size_t n = 0;
	for (p = start;; n++) {
		double v;
		p = ts_skip_blank(p, le);
		if (p == le)
			break;
		const char *te = ts_token_end(p, le);
		char q[48];
		if (ts_parse_double(p, te, &v) != te)
			return err_set_line(e, ERR_FORMAT, line,
					    "VIEWPOINT: bad number near '%s'", quoted(q, p, te));
		p = te;
	}
	if (n != 7)
		return err_set_line(e, ERR_FORMAT, line,
				    "VIEWPOINT has %zu numbers, expected 7 (tx ty tz qw qx qy qz)", n);
	if (scan_meta_add(out, "viewpoint", 9, start, (size_t)(le - start)))
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

/* Read the header up to and including the DATA line. */
static int parse_header(const unsigned char *buf, size_t len,
			const struct limits *lim, struct pcd *h,
			struct scan *out, struct err *e)
{
	struct tcur c;
	const char *ls, *le;
	int rc;

	tcur_init(&c, buf, len);
	for (;;) {
		long line = c.line;
		if ((size_t)(c.p - (const char *)buf) > lim->max_header_bytes)
			return err_set_line(e, ERR_LIMIT, line,
					    "header longer than %zu bytes without a DATA line",
					    lim->max_header_bytes);
		if (!tcur_next_line(&c, &ls, &le))
			return err_set_line(e, ERR_FORMAT, line, "no DATA line: header ends early");
		if ((size_t)(le - ls) > lim->max_line_length)
			return err_set_line(e, ERR_LIMIT, line, "line longer than %zu bytes",
					    lim->max_line_length);
		ls = ts_skip_blank(ls, le);
		if (ls == le || *ls == '#')
			continue;
		const char *ke = ts_token_end(ls, le), *p = ke;
		if (ts_eq(ls, ke, "VERSION")) {
			p = ts_skip_blank(p, le);
			const char *ve = ts_token_end(p, le);
			double v;
			char q[48];
			if (ts_parse_double(p, ve, &v) != ve)
				return err_set_line(e, ERR_FORMAT, line,
						    "VERSION: bad number near '%s'", quoted(q, p, ve));
			if (!(v < 1.0))
				return err_set_line(e, ERR_VERSION, line,
						    "PCD version %s is newer than 0.7", quoted(q, p, ve));
			if (scan_meta_add(out, "pcd_version", 11, p, (size_t)(ve - p)))
				return err_set(e, ERR_NOMEM, "out of memory");
		} else if (ts_eq(ls, ke, "FIELDS") || ts_eq(ls, ke, "COLUMNS")) {
			if ((rc = parse_fields(h, p, le, line, lim, e)) < 0)
				return rc;
		} else if (ts_eq(ls, ke, "SIZE")) {
			if ((rc = parse_field_list(h, "SIZE", p, le, line, e)) < 0)
				return rc;
			h->has_size = true;
		} else if (ts_eq(ls, ke, "TYPE")) {
			if ((rc = parse_field_list(h, "TYPE", p, le, line, e)) < 0)
				return rc;
			h->has_type = true;
		} else if (ts_eq(ls, ke, "COUNT")) {
			if ((rc = parse_field_list(h, "COUNT", p, le, line, e)) < 0)
				return rc;
		} else if (ts_eq(ls, ke, "WIDTH")) {
			if ((rc = parse_u64_kw("WIDTH", p, le, line, &h->width, e)) < 0)
				return rc;
			h->has_width = true;
		} else if (ts_eq(ls, ke, "HEIGHT")) {
			if ((rc = parse_u64_kw("HEIGHT", p, le, line, &h->height, e)) < 0)
				return rc;
			h->has_height = true;
		} else if (ts_eq(ls, ke, "POINTS")) {
			if ((rc = parse_u64_kw("POINTS", p, le, line, &h->points, e)) < 0)
				return rc;
			h->has_points = true;
			h->points_line = line;
		} else if (ts_eq(ls, ke, "VIEWPOINT")) {
			if ((rc = parse_viewpoint(out, p, le, line, e)) < 0)
				return rc;
		} else if (ts_eq(ls, ke, "DATA")) {
			p = ts_skip_blank(p, le);
			const char *de = ts_token_end(p, le);
			char q[48];
			if (ts_ieq(p, de, "ascii"))
				h->data = PCD_ASCII;
			else if (ts_ieq(p, de, "binary"))
				h->data = PCD_BINARY;
			else if (ts_ieq(p, de, "binary_compressed"))
				h->data = PCD_COMPRESSED;
			else
				return err_set_line(e, ERR_UNSUPPORTED, line,
						    "DATA '%s' is not ascii, binary or binary_compressed",
						    quoted(q, p, de));
			h->data_off = (size_t)(c.p - (const char *)buf);
			h->data_line = c.line;
			return 0;
		} else {
			char q[48];
			if (scan_warn(out, "line %ld: unknown header keyword '%s' ignored",
				      line, quoted(q, ls, ke)))
				return err_set(e, ERR_NOMEM, "out of memory");
		}
	}
}

/* Check the header as a whole, assign roles, compute record sizes. */
static int validate_header(struct pcd *h, const struct limits *lim,
			   struct scan *out, struct err *e)
{
	long dl = h->data_line - 1;

	if (!h->fields)
		return err_set_line(e, ERR_FORMAT, dl, "no FIELDS line");
	if (!h->has_size)
		return err_set_line(e, ERR_FORMAT, dl, "no SIZE line");
	if (!h->has_width) {
		if (!h->has_points)
			return err_set_line(e, ERR_FORMAT, dl, "neither WIDTH nor POINTS given");
		h->width = h->points;
		h->height = 1;
		h->has_height = true;
	}
	if (!h->has_height)
		h->height = 1;
	uint64_t wh;
	if (ckd_mul(&wh, h->width, h->height))
		return err_set_line(e, ERR_LIMIT, dl, "WIDTH %llu * HEIGHT %llu overflows",
				    (unsigned long long)h->width, (unsigned long long)h->height);
	if (!h->has_points)
		h->points = wh;
	else if (h->points != wh)
		return err_set_line(e, ERR_FORMAT, h->points_line,
				    "POINTS %llu differs from WIDTH * HEIGHT = %llu * %llu = %llu",
				    (unsigned long long)h->points, (unsigned long long)h->width,
				    (unsigned long long)h->height, (unsigned long long)wh);
	if (h->points > lim->max_vertices)
		return err_set_line(e, ERR_LIMIT, h->points_line ? h->points_line : dl,
				    "%llu points (limit %llu)", (unsigned long long)h->points,
				    (unsigned long long)lim->max_vertices);
	for (int r = 0; r < R_COUNT; r++)
		h->slot[r] = -1;
	size_t record = 0, values = 0;
	for (size_t i = 0; i < h->n_fields; i++) {
		struct pcd_field *f = &h->fields[i];
		size_t bytes;
		if (!h->has_type)
			f->type = 'F'; /* v0.5 files without TYPE store floats */
		if (f->type == 'F' && f->size != 4 && f->size != 8)
			return err_set_line(e, ERR_FORMAT, dl,
					    "field '%s': float of size %u (want 4 or 8)",
					    f->label, f->size);
		f->offset = record;
		if (ckd_mul(&bytes, (size_t)f->count, (size_t)f->size) ||
		    ckd_add(&record, record, bytes) ||
		    ckd_add(&values, values, (size_t)f->count))
			return err_set_line(e, ERR_LIMIT, dl, "field '%s': count too large",
					    f->label);
		f->role = R_SKIP;
		for (int r = 1; r < R_COUNT; r++) {
			if (!field_is(f, role_names[r]))
				continue;
			if (h->slot[r] >= 0)
				return err_set_line(e, ERR_FORMAT, dl, "field '%s' given twice",
						    role_names[r]);
			if (f->count != 1)
				return err_set_line(e, ERR_FORMAT, dl,
						    "field '%s': count %llu, expected 1", role_names[r],
						    (unsigned long long)f->count);
			if ((r == R_RGB || r == R_RGBA) && f->size != 4)
				return err_set_line(e, ERR_FORMAT, dl,
						    "field '%s': size %u, packed colour needs 4",
						    role_names[r], f->size);
			f->role = (enum role)r;
			h->slot[r] = (int)i;
		}
	}
	h->record = record;
	h->n_values = values;
	for (int r = R_X; r <= R_Z; r++)
		if (h->slot[r] < 0)
			return err_set_line(e, ERR_UNSUPPORTED, dl,
					    "no '%s' field: not a point cloud", role_names[r]);
	int nn = (h->slot[R_NX] >= 0) + (h->slot[R_NY] >= 0) + (h->slot[R_NZ] >= 0);
	if (nn && nn < 3) {
		if (scan_warn(out, "only %d of normal_x/normal_y/normal_z present: normals ignored", nn))
			return err_set(e, ERR_NOMEM, "out of memory");
		for (int r = R_NX; r <= R_NZ; r++) {
			if (h->slot[r] >= 0)
				h->fields[h->slot[r]].role = R_SKIP;
			h->slot[r] = -1;
		}
	}
	if (h->slot[R_RGB] >= 0 && h->slot[R_RGBA] >= 0) {
		h->fields[h->slot[R_RGBA]].role = R_SKIP;
		h->slot[R_RGBA] = -1;
	}
	return 0;
}

static uint64_t load_le(const unsigned char *p, uint32_t size)
{
	uint64_t u = 0;
	for (uint32_t i = 0; i < size; i++)
		u |= (uint64_t)p[i] << (8 * i);
	return u;
}

static double load_num(const unsigned char *p, char type, uint32_t size)
{
	uint64_t u = load_le(p, size);
	if (type == 'F') {
		if (size == 4) {
			uint32_t b = (uint32_t)u;
			float f;
			memcpy(&f, &b, 4);
			return f;
		}
		double d;
		memcpy(&d, &u, 8);
		return d;
	}
	if (type == 'U')
		return (double)u;
	if (size < 8 && (u >> (8 * size - 1) & 1))
		u |= ~(uint64_t)0 << (8 * size);
	return (double)(int64_t)u;
}

static void store_color(uint8_t *rgba, uint32_t v, bool alpha)
{
	rgba[0] = (uint8_t)(v >> 16);
	rgba[1] = (uint8_t)(v >> 8);
	rgba[2] = (uint8_t)v;
	rgba[3] = alpha ? (uint8_t)(v >> 24) : 255;
}

/* Store field f's value for point i from its little-endian bytes at p. */
static void store_field(struct scan *s, const struct pcd_field *f, size_t i,
			const unsigned char *p)
{
	switch (f->role) {
	case R_X: case R_Y: case R_Z:
		s->positions[3 * i + (f->role - R_X)] = (float)load_num(p, f->type, f->size);
		break;
	case R_NX: case R_NY: case R_NZ:
		s->normals[3 * i + (f->role - R_NX)] = (float)load_num(p, f->type, f->size);
		break;
	case R_RGB: case R_RGBA:
		store_color(s->colors + 4 * i, (uint32_t)load_le(p, 4), f->role == R_RGBA);
		break;
	default:
		break;
	}
}

/*
 * Check that the points the header declares fit in the bytes present (or,
 * compressed, in the declared raw size, itself bounded by the compressed
 * bytes present) before anything is allocated for them.
 */
static int check_data_size(const unsigned char *buf, size_t len,
			   const struct pcd *h, struct err *e)
{
	size_t off = h->data_off, left = len - off, need;

	switch (h->data) {
	case PCD_ASCII:
		/* each value takes at least a character and a separator */
		if (ckd_mul(&need, (size_t)h->points, h->n_values) ||
		    ckd_mul(&need, need, (size_t)2) || need > left + 1)
			return err_set_line(e, ERR_FORMAT, h->data_line,
					    "%llu points of %zu values cannot fit in the %zu bytes left",
					    (unsigned long long)h->points, h->n_values, left);
		return 0;
	case PCD_BINARY:
		if (ckd_mul(&need, (size_t)h->points, h->record) || need > left) {
			size_t whole = left / h->record;
			return err_set_offset(e, ERR_FORMAT, (int64_t)(off + whole * h->record),
					      "point %zu: truncated: %llu points of %zu bytes, only %zu bytes left",
					      whole, (unsigned long long)h->points, h->record, left);
		}
		return 0;
	case PCD_COMPRESSED:
		break;
	}
	if (left < 8)
		return err_set_offset(e, ERR_FORMAT, (int64_t)len,
				      "truncated before the compressed sizes (%zu of 8 bytes)", left);
	uint32_t csize = (uint32_t)load_le(buf + off, 4);
	uint32_t usize = (uint32_t)load_le(buf + off + 4, 4);
	if (csize > left - 8)
		return err_set_offset(e, ERR_FORMAT, (int64_t)off,
				      "truncated: compressed size %u but only %zu bytes follow",
				      csize, left - 8);
	if (ckd_mul(&need, (size_t)h->points, h->record) || need != usize)
		return err_set_offset(e, ERR_FORMAT, (int64_t)off + 4,
				      "uncompressed size %u differs from POINTS * record size = %llu * %zu",
				      usize, (unsigned long long)h->points, h->record);
	if (usize / LZF_MAX_EXPANSION > csize)
		return err_set_offset(e, ERR_FORMAT, (int64_t)off + 4,
				      "uncompressed size %u is more than LZF can expand %u bytes to",
				      usize, csize);
	return 0;
}

/*
 * Bytes after the points.  PCL pads binary files with zeros to a page
 * boundary (it writes through mmap), so zeros are expected; anything else
 * is reported.  Returns 0 or ERR_NOMEM.
 */
static int warn_trailing(struct scan *s, const unsigned char *p, size_t n,
			 const char *after)
{
	size_t i = 0;
	while (i < n && p[i] == 0)
		i++;
	if (i == n)
		return 0;
	return scan_warn(s, "%zu bytes after %s ignored", n, after) ? ERR_NOMEM : 0;
}

/* Array of records; sizes checked by check_data_size. */
static int read_binary(const unsigned char *buf, size_t len, const struct pcd *h,
		       struct scan *s, struct err *e)
{
	size_t left = len - h->data_off, need = (size_t)h->points * h->record;
	const unsigned char *d = buf + h->data_off;
	for (size_t i = 0; i < h->points; i++, d += h->record)
		for (size_t k = 0; k < h->n_fields; k++)
			if (h->fields[k].role != R_SKIP)
				store_field(s, &h->fields[k], i, d + h->fields[k].offset);
	if (warn_trailing(s, d, left - need, "the last point"))
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

/* LZF block of fields one after another; sizes checked by check_data_size. */
static int read_compressed(const unsigned char *buf, size_t len, const struct pcd *h,
			   struct scan *s, struct err *e)
{
	size_t off = h->data_off, left = len - off - 8;
	uint32_t csize = (uint32_t)load_le(buf + off, 4);
	uint32_t usize = (uint32_t)load_le(buf + off + 4, 4);
	unsigned char *raw = NULL;
	int rc = 0;

	if (usize == 0)
		goto trailing;
	raw = xmalloc(usize);
	if (!raw)
		return err_set(e, ERR_NOMEM, "out of memory for %u bytes of points", usize);
	unsigned got = lzf_decompress(buf + off + 8, csize, raw, usize);
	if (got == 0) {
		rc = err_set_offset(e, ERR_FORMAT, (int64_t)off + 8,
				    "corrupt LZF data (or it expands to more than %u bytes)", usize);
		goto out;
	}
	if (got != usize) {
		rc = err_set_offset(e, ERR_FORMAT, (int64_t)off + 8,
				    "compressed data expands to %u bytes, header says %u",
				    got, usize);
		goto out;
	}
	/* field k of point i sits at points * offset(k) + i * size(k) */
	for (size_t k = 0; k < h->n_fields; k++) {
		const struct pcd_field *f = &h->fields[k];
		if (f->role == R_SKIP)
			continue;
		const unsigned char *col = raw + (size_t)h->points * f->offset;
		for (size_t i = 0; i < h->points; i++)
			store_field(s, f, i, col + i * f->size);
	}
trailing:
	if (warn_trailing(s, buf + off + 8 + csize, left - csize, "the compressed data"))
		rc = err_set(e, ERR_NOMEM, "out of memory");
out:
	xfree(raw);
	return rc;
}

/* One ascii value of field f into point i; [p, te) is the token. */
static int ascii_value(struct scan *s, const struct pcd_field *f, size_t i,
		       const char *p, const char *te, long line, struct err *e)
{
	double v;
	char q[48];
	if (f->role == R_RGB || f->role == R_RGBA) {
		uint64_t u;
		int64_t si;
		uint32_t bits;
		/*
		 * PCL writes a float rgb as its uint32 bits in decimal since 1.8
		 * (fully opaque colours are NaN as floats); older files print
		 * the float itself, which is never a plain integer except 0.
		 */
		if (ts_parse_u64(p, te, &u) == te && u <= UINT32_MAX) {
			bits = (uint32_t)u;
		} else if (f->type != 'F' && ts_parse_i64(p, te, &si) == te &&
			   si >= INT32_MIN) {
			bits = (uint32_t)(int32_t)si;
		} else if (f->type == 'F' && ts_parse_double(p, te, &v) == te) {
			float fl = (float)v;
			memcpy(&bits, &fl, 4);
		} else {
			return err_set_line(e, ERR_FORMAT, line,
					    "point %zu: field '%s': bad colour near '%s'", i,
					    role_names[f->role], quoted(q, p, te));
		}
		store_color(s->colors + 4 * i, bits, f->role == R_RGBA);
		return 0;
	}
	if (ts_parse_double(p, te, &v) != te)
		return err_set_line(e, ERR_FORMAT, line,
				    "point %zu: field '%s': bad number near '%s'", i,
				    f->label, quoted(q, p, te));
	if (f->role >= R_X && f->role <= R_Z)
		s->positions[3 * i + (f->role - R_X)] = (float)v;
	else if (f->role >= R_NX && f->role <= R_NZ)
		s->normals[3 * i + (f->role - R_NX)] = (float)v;
	return 0;
}

static int read_ascii(const unsigned char *buf, size_t len, const struct pcd *h,
		      const struct limits *lim, struct scan *s, struct err *e)
{
	struct tcur c;
	const char *ls, *le;
	size_t i = 0;
	int rc;

	tcur_init(&c, buf + h->data_off, len - h->data_off);
	c.line = h->data_line;
	while (i < h->points) {
		long line = c.line;
		if (!tcur_next_line(&c, &ls, &le))
			return err_set_line(e, ERR_FORMAT, line,
					    "point %zu missing: file ends after %zu of %llu points",
					    i, i, (unsigned long long)h->points);
		if ((size_t)(le - ls) > lim->max_line_length)
			return err_set_line(e, ERR_LIMIT, line, "line longer than %zu bytes",
					    lim->max_line_length);
		const char *p = ts_skip_blank(ls, le);
		if (p == le)
			continue;
		size_t got = 0;
		for (size_t k = 0; k < h->n_fields; k++) {
			const struct pcd_field *f = &h->fields[k];
			for (uint64_t j = 0; j < f->count; j++, got++) {
				p = ts_skip_blank(p, le);
				if (p == le)
					return err_set_line(e, ERR_FORMAT, line,
							    "point %zu: %zu values, expected %zu",
							    i, got, h->n_values);
				const char *te = ts_token_end(p, le);
				if ((rc = ascii_value(s, f, i, p, te, line, e)) < 0)
					return rc;
				p = te;
			}
		}
		if (ts_skip_blank(p, le) != le)
			return err_set_line(e, ERR_FORMAT, line,
					    "point %zu: more than %zu values", i, h->n_values);
		i++;
	}
	size_t extra = 0;
	while (tcur_next_line(&c, &ls, &le))
		extra += ts_skip_blank(ls, le) != le;
	if (extra && scan_warn(s, "%zu lines after the last of %llu points ignored",
			       extra, (unsigned long long)h->points))
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

int pcd_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e)
{
	struct pcd h;
	int rc;

	if (!lim)
		lim = limits_default();
	scan_init(out);
	memset(&h, 0, sizeof(h));
	if ((rc = parse_header(buf, len, lim, &h, out, e)) < 0)
		goto out;
	if ((rc = validate_header(&h, lim, out, e)) < 0)
		goto out;
	if ((rc = check_data_size(buf, len, &h, e)) < 0)
		goto out;
	unsigned flags = 0;
	if (h.slot[R_NX] >= 0)
		flags |= SCAN_ALLOC_NORMALS;
	if (h.slot[R_RGB] >= 0 || h.slot[R_RGBA] >= 0)
		flags |= SCAN_ALLOC_COLORS;
	if ((rc = scan_alloc(out, (size_t)h.points, 0, flags, e)) < 0)
		goto out;
	out->n_vertices = (size_t)h.points;
	out->format = "pcd";
	snprintf(out->encoding, sizeof(out->encoding), "%s",
		 h.data == PCD_ASCII ? "ascii" : h.data == PCD_BINARY ? "binary" :
		 "binary_compressed");
	if (h.height > 1) {
		char wh[64];
		int n = snprintf(wh, sizeof(wh), "%llux%llu", (unsigned long long)h.width,
				 (unsigned long long)h.height);
		if (scan_meta_add(out, "organized", 9, wh, (size_t)n)) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	if (h.data == PCD_ASCII)
		rc = read_ascii(buf, len, &h, lim, out, e);
	else if (h.data == PCD_BINARY)
		rc = read_binary(buf, len, &h, out, e);
	else
		rc = read_compressed(buf, len, &h, out, e);
	if (rc < 0)
		goto out;
	rc = scan_finalize(out, e);
out:
	xfree(h.fields);
	if (rc < 0)
		scan_release(out);
	return rc;
}
