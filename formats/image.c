/*
 * image.c - texture images: PNG through libpng, JPEG through libjpeg-turbo,
 * decoded from memory into 8-bit RGBA (see image.h).
 *
 * PNG:  https://www.w3.org/TR/png/      JPEG: ITU-T T.81 and JFIF 1.02.
 *
 * Invariants:
 *  - the width and height come from the file's own header (PNG IHDR read
 *    by hand, JPEG SOF through jpeg_read_header) and are checked against
 *    struct limits before any pixel memory is allocated;
 *  - libpng and libjpeg report errors by calling a handler that must not
 *    return; each call owns its context and jmp_buf, so nothing is global
 *    and concurrent calls on different buffers are safe;
 *  - everything that must survive a longjmp lives in that context (in
 *    memory, not in registers), so the cleanup after setjmp sees it;
 *  - libpng allocates through common/alloc.h, so failure injection covers
 *    it too.  libjpeg keeps its own allocator (jmemnobs).
 */
#include "image.h"
#include "limits.h"
#include "writers.h"
#include "../common/alloc.h"
#include "../common/err.h"
#include "../common/mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

#include "../common/banned.h"

/* A valid progressive JPEG has about ten scans; thousands are an attack. */
#define JPEG_MAX_SCANS 256

static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

void image_init(struct image *im)
{
	memset(im, 0, sizeof(*im));
}

void image_release(struct image *im)
{
	xfree(im->rgba);
	image_init(im);
}

const char *image_probe(const unsigned char *buf, size_t len)
{
	if (len >= 8 && !memcmp(buf, png_sig, 8))
		return "png";
	if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
		return "jpeg";
	return NULL;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int check_dims(uint32_t w, uint32_t h, const struct limits *lim,
		      struct err *e)
{
	if (!w || !h)
		return err_set(e, ERR_FORMAT, "image has zero width or height (%ux%u)",
			       w, h);
	if (w > lim->max_image_dim || h > lim->max_image_dim)
		return err_set(e, ERR_LIMIT,
			       "image %ux%u exceeds the %u pixel side limit",
			       w, h, lim->max_image_dim);
	if ((uint64_t)w * h > lim->max_image_pixels)
		return err_set(e, ERR_LIMIT,
			       "image %ux%u exceeds the %llu pixel limit", w, h,
			       (unsigned long long)lim->max_image_pixels);
	return 0;
}

/* ---------------------------------------------------------------- PNG */

/*
 * The IHDR chunk must come first (PNG 5.6), so the dimensions sit at fixed
 * offsets: signature (8), length (4) = 13, "IHDR" (4), width, height.
 * Widths and heights are at most 2^31 - 1 (PNG 11.2.2).
 */
static int png_header(const unsigned char *buf, size_t len, uint32_t *w,
		      uint32_t *h, struct err *e)
{
	if (len < 8 || memcmp(buf, png_sig, 8))
		return err_set_offset(e, ERR_FORMAT, 0, "not a PNG file");
	if (len < 33)
		return err_set_offset(e, ERR_FORMAT, (int64_t)len,
				      "png: truncated before the end of IHDR");
	if (be32(buf + 8) != 13 || memcmp(buf + 12, "IHDR", 4))
		return err_set_offset(e, ERR_FORMAT, 8,
				      "png: first chunk is not a 13-byte IHDR");
	*w = be32(buf + 16);
	*h = be32(buf + 20);
	if (!*w || !*h || *w > 0x7fffffffu || *h > 0x7fffffffu)
		return err_set_offset(e, ERR_FORMAT, 16,
				      "png: invalid size %ux%u in IHDR", *w, *h);
	return 0;
}

struct png_ctx {
	const unsigned char *buf; /* whole file */
	size_t len, pos;          /* bytes, bytes consumed */
	struct err *e;
	int code;                 /* errc set by whoever raised the error */
	int oom;                  /* an allocation failed */
	uint8_t *rgba;            /* output, owned until handed over */
	png_bytep *rows;
	FILE *fp;                 /* writer only */
};

static void png_on_error(png_structp png, png_const_charp msg)
{
	struct png_ctx *c = png_get_error_ptr(png);
	if (!c->code) {
		if (c->oom)
			c->code = err_set(c->e, ERR_NOMEM, "png: out of memory");
		else
			c->code = err_set_offset(c->e, ERR_FORMAT, (int64_t)c->pos,
						 "png: %s", msg);
	}
	png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
	/* recoverable (bad ancillary chunk CRC, unknown sRGB profile...) */
	(void)png;
	(void)msg;
}

static png_voidp png_alloc(png_structp png, png_alloc_size_t size)
{
	struct png_ctx *c = png_get_mem_ptr(png);
	void *p = xmalloc(size);
	if (!p && c)
		c->oom = 1;
	return p;
}

static void png_dealloc(png_structp png, png_voidp p)
{
	(void)png;
	xfree(p);
}

static void png_read_mem(png_structp png, png_bytep out, size_t n)
{
	struct png_ctx *c = png_get_io_ptr(png);
	if (n > c->len - c->pos) {
		c->code = err_set_offset(c->e, ERR_FORMAT, (int64_t)c->len,
					 "png: truncated (needed %zu more bytes at offset %zu)",
					 n, c->pos);
		png_error(png, "truncated");
	}
	memcpy(out, c->buf + c->pos, n);
	c->pos += n;
}

/* Chunks a texture never needs: skipped unread (no zlib, no allocation). */
static const png_byte png_skip_chunks[] =
	"tEXt\0zTXt\0iTXt\0iCCP\0sPLT\0eXIf\0tIME\0hIST\0pCAL\0sCAL\0";

static int png_decode(const unsigned char *buf, size_t len,
		      const struct limits *lim, struct image *im, struct err *e)
{
	struct png_ctx c = { .buf = buf, .len = len, .e = e };
	png_structp png = NULL;
	png_infop info = NULL;
	uint32_t w, h;
	int rc;

	if ((rc = png_header(buf, len, &w, &h, e)) < 0)
		return rc;
	if ((rc = check_dims(w, h, lim, e)) < 0)
		return rc;
	png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &c, png_on_error,
				       png_on_warning, &c, png_alloc, png_dealloc);
	if (!png)
		return err_set(e, ERR_NOMEM, "png: out of memory");
	info = png_create_info_struct(png);
	if (!info) {
		png_destroy_read_struct(&png, NULL, NULL);
		return err_set(e, ERR_NOMEM, "png: out of memory");
	}
	if (setjmp(png_jmpbuf(png))) {
		if (!c.code)
			c.code = err_set(e, ERR_FORMAT, "png: decoding failed");
		goto out;
	}
	png_set_read_fn(png, &c, png_read_mem);
	png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, png_skip_chunks,
				    (int)(sizeof(png_skip_chunks) / 5));
	png_set_user_limits(png, w, h);
	png_read_info(png, info);

	int depth = png_get_bit_depth(png, info);
	int color = png_get_color_type(png, info);
	int trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
	if (png_get_image_width(png, info) != w || png_get_image_height(png, info) != h) {
		c.code = err_set(e, ERR_INTERNAL, "png: IHDR read twice differs");
		goto out;
	}
	im->channels = color == PNG_COLOR_TYPE_PALETTE ? 3 + trns :
		       png_get_channels(png, info) + trns;
	if (color == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(png);
	if (trns)
		png_set_tRNS_to_alpha(png);
	if (depth == 16)
		png_set_scale_16(png);
	if (!(color & PNG_COLOR_MASK_COLOR))
		png_set_gray_to_rgb(png);
	if (!(color & PNG_COLOR_MASK_ALPHA) && !trns)
		png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
	png_set_interlace_handling(png);
	png_read_update_info(png, info);
	if (png_get_rowbytes(png, info) != (size_t)w * 4) {
		c.code = err_set(e, ERR_INTERNAL, "png: row is %zu bytes, expected %zu",
				 png_get_rowbytes(png, info), (size_t)w * 4);
		goto out;
	}
	c.rgba = alloc_array((size_t)w * h, 4);
	c.rows = alloc_array(h, sizeof(*c.rows));
	if (!c.rgba || !c.rows) {
		c.code = err_set(e, ERR_NOMEM, "png: out of memory for %ux%u pixels", w, h);
		goto out;
	}
	for (uint32_t y = 0; y < h; y++)
		c.rows[y] = c.rgba + (size_t)y * w * 4;
	png_read_image(png, c.rows);
	/* a file cut after its pixel data has lost IEND: still truncated */
	png_read_end(png, NULL);
	im->width = w;
	im->height = h;
	im->rgba = c.rgba;
	c.rgba = NULL;
out:
	png_destroy_read_struct(&png, &info, NULL);
	xfree(c.rows);
	xfree(c.rgba);
	if (c.code)
		im->channels = 0;
	return c.code;
}

/* --------------------------------------------------------------- JPEG */

struct jpeg_ctx {
	struct jpeg_error_mgr pub;     /* first: libjpeg hands back this */
	struct jpeg_progress_mgr progress;
	jmp_buf jb;
	size_t len;                    /* input bytes, for error offsets */
	struct err *e;
	int code;
	uint8_t *rgba;                 /* output, owned until handed over */
	uint8_t *row;                  /* CMYK scanline */
};

static int64_t jpeg_offset(j_common_ptr cinfo, size_t len)
{
	if (!cinfo->is_decompressor)
		return -1;
	struct jpeg_source_mgr *src = ((j_decompress_ptr)cinfo)->src;
	return src ? (int64_t)(len - src->bytes_in_buffer) : 0;
}

static void jpeg_on_error(j_common_ptr cinfo)
{
	struct jpeg_ctx *c = (struct jpeg_ctx *)cinfo->err;
	char msg[JMSG_LENGTH_MAX];
	if (!c->code) {
		cinfo->err->format_message(cinfo, msg);
		c->code = err_set_offset(c->e,
					 cinfo->err->msg_code == JERR_OUT_OF_MEMORY ?
					 ERR_NOMEM : ERR_FORMAT,
					 jpeg_offset(cinfo, c->len), "jpeg: %s", msg);
	}
	longjmp(c->jb, 1);
}

/*
 * libjpeg reports damaged entropy data as warnings and goes on with grey
 * blocks; a truncated file would "decode".  Those are errors here.  The
 * benign ones (stray bytes before a marker, odd JFIF versions, bad ICC
 * markers) stay warnings and are not printed.
 */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
	if (level >= 0)
		return;
	switch (cinfo->err->msg_code) {
	case JWRN_JPEG_EOF:
	case JWRN_HIT_MARKER:
	case JWRN_HUFF_BAD_CODE:
	case JWRN_ARITH_BAD_CODE:
	case JWRN_MUST_RESYNC:
	case JWRN_NOT_SEQUENTIAL:
	case JWRN_BOGUS_PROGRESSION:
		jpeg_on_error(cinfo);
		break;
	default:
		cinfo->err->num_warnings++;
		break;
	}
}

static void jpeg_on_output(j_common_ptr cinfo)
{
	(void)cinfo;
}

static void jpeg_on_progress(j_common_ptr cinfo)
{
	struct jpeg_ctx *c = (struct jpeg_ctx *)cinfo->err;
	if (!cinfo->is_decompressor)
		return;
	int scans = ((j_decompress_ptr)cinfo)->input_scan_number;
	if (scans > JPEG_MAX_SCANS) {
		c->code = err_set_offset(c->e, ERR_LIMIT, jpeg_offset(cinfo, c->len),
					 "jpeg: more than %d progressive scans",
					 JPEG_MAX_SCANS);
		longjmp(c->jb, 1);
	}
}

static void jpeg_ctx_init(struct jpeg_ctx *c, struct jpeg_decompress_struct *cinfo,
			  size_t len, struct err *e)
{
	memset(c, 0, sizeof(*c));
	c->len = len;
	c->e = e;
	cinfo->err = jpeg_std_error(&c->pub);
	c->pub.error_exit = jpeg_on_error;
	c->pub.emit_message = jpeg_on_message;
	c->pub.output_message = jpeg_on_output;
	c->progress.progress_monitor = jpeg_on_progress;
}

/*
 * Adobe CMYK JPEGs store inverted ink (255 = no ink); plain CMYK stores
 * ink.  Either way RGB is (1 - C)(1 - K) with C, K as ink fractions.
 */
static void cmyk_to_rgba(const uint8_t *in, uint8_t *out, uint32_t w, int adobe)
{
	for (uint32_t x = 0; x < w; x++, in += 4, out += 4) {
		unsigned cy = in[0], m = in[1], y = in[2], k = in[3];
		if (!adobe) {
			cy = 255 - cy;
			m = 255 - m;
			y = 255 - y;
			k = 255 - k;
		}
		out[0] = (uint8_t)((cy * k + 127) / 255);
		out[1] = (uint8_t)((m * k + 127) / 255);
		out[2] = (uint8_t)((y * k + 127) / 255);
		out[3] = 255;
	}
}

static int jpeg_decode(const unsigned char *buf, size_t len,
		       const struct limits *lim, struct image *im,
		       uint32_t *hw, uint32_t *hh, struct err *e)
{
	struct jpeg_decompress_struct cinfo;
	struct jpeg_ctx c;

	jpeg_ctx_init(&c, &cinfo, len, e);
	if (setjmp(c.jb)) {
		if (!c.code)
			c.code = err_set(e, ERR_FORMAT, "jpeg: decoding failed");
		goto out;
	}
	jpeg_create_decompress(&cinfo);
	cinfo.progress = &c.progress;
	jpeg_mem_src(&cinfo, buf, (unsigned long)len);
	jpeg_read_header(&cinfo, TRUE);
	uint32_t w = cinfo.image_width, h = cinfo.image_height;
	if (hw) {
		*hw = w;
		*hh = h;
		goto out;
	}
	if ((c.code = check_dims(w, h, lim, e)) < 0)
		goto out;
	int cmyk = 0;
	switch (cinfo.jpeg_color_space) {
	case JCS_GRAYSCALE:
	case JCS_YCbCr:
	case JCS_RGB:
		cinfo.out_color_space = JCS_EXT_RGBA;
		break;
	case JCS_CMYK:
	case JCS_YCCK:
		cinfo.out_color_space = JCS_CMYK;
		cmyk = 1;
		break;
	default:
		c.code = err_set(e, ERR_UNSUPPORTED,
				 "jpeg: %d-component colour space %d not supported",
				 cinfo.num_components, (int)cinfo.jpeg_color_space);
		goto out;
	}
	im->channels = cinfo.num_components;
	jpeg_start_decompress(&cinfo);
	if (cinfo.output_width != w || cinfo.output_height != h ||
	    cinfo.output_components != 4) {
		c.code = err_set(e, ERR_INTERNAL, "jpeg: unexpected output %ux%ux%d",
				 cinfo.output_width, cinfo.output_height,
				 cinfo.output_components);
		goto out;
	}
	c.rgba = alloc_array((size_t)w * h, 4);
	if (cmyk)
		c.row = alloc_array(w, 4);
	if (!c.rgba || (cmyk && !c.row)) {
		c.code = err_set(e, ERR_NOMEM, "jpeg: out of memory for %ux%u pixels", w, h);
		goto out;
	}
	while (cinfo.output_scanline < h) {
		JDIMENSION y = cinfo.output_scanline;
		uint8_t *dst = c.rgba + (size_t)y * w * 4;
		JSAMPROW row = cmyk ? c.row : dst;
		if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
			c.code = err_set_offset(e, ERR_FORMAT, jpeg_offset((j_common_ptr)&cinfo, len),
						"jpeg: no data for row %u", y);
			goto out;
		}
		if (cmyk)
			cmyk_to_rgba(c.row, dst, w, cinfo.saw_Adobe_marker);
	}
	jpeg_finish_decompress(&cinfo);
	im->width = w;
	im->height = h;
	im->rgba = c.rgba;
	c.rgba = NULL;
out:
	jpeg_destroy_decompress(&cinfo);
	xfree(c.row);
	xfree(c.rgba);
	if (c.code)
		im->channels = 0;
	return c.code;
}

/* ---------------------------------------------------------------- API */

int image_read_header(const unsigned char *buf, size_t len,
		      uint32_t *width, uint32_t *height, struct err *e)
{
	const char *kind = image_probe(buf, len);
	*width = *height = 0;
	if (!kind)
		return err_set_offset(e, ERR_UNSUPPORTED, 0, "not a PNG or JPEG image");
	if (kind[0] == 'p')
		return png_header(buf, len, width, height, e);
	struct image dummy;
	image_init(&dummy);
	int rc = jpeg_decode(buf, len, NULL, &dummy, width, height, e);
	if (rc < 0)
		*width = *height = 0;
	return rc;
}

int image_read(const unsigned char *buf, size_t len, const struct limits *lim,
	       struct image *im, struct err *e)
{
	const char *kind = image_probe(buf, len);
	if (!lim)
		lim = limits_default();
	image_init(im);
	if (!kind)
		return err_set_offset(e, ERR_UNSUPPORTED, 0, "not a PNG or JPEG image");
	if (kind[0] == 'p')
		return png_decode(buf, len, lim, im, e);
	return jpeg_decode(buf, len, lim, im, NULL, NULL, e);
}

int image_read_file(const char *path, const struct limits *lim,
		    struct image *im, struct err *e)
{
	struct mapfile m;
	int rc;

	image_init(im);
	if ((rc = mapfile_open(&m, path, e)) < 0)
		return rc;
	rc = image_read(m.data, m.len, lim, im, e);
	mapfile_release(&m);
	err_set_path(e, path);
	return rc;
}

static int png_encode(struct png_ctx *c, const uint8_t *pixels, uint32_t w,
		      uint32_t h, int channels)
{
	png_structp png;
	png_infop info;

	png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, c, png_on_error,
					png_on_warning, c, png_alloc, png_dealloc);
	if (!png)
		return err_set(c->e, ERR_NOMEM, "png: out of memory");
	info = png_create_info_struct(png);
	if (!info) {
		png_destroy_write_struct(&png, NULL);
		return err_set(c->e, ERR_NOMEM, "png: out of memory");
	}
	if (setjmp(png_jmpbuf(png))) {
		if (!c->code)
			c->code = err_set(c->e, ERR_IO, "png: encoding failed");
		goto out;
	}
	png_init_io(png, c->fp);
	png_set_IHDR(png, info, w, h, 8,
		     channels == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
		     PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (uint32_t y = 0; y < h; y++)
		png_write_row(png, pixels + (size_t)y * w * (size_t)channels);
	png_write_end(png, NULL);
out:
	png_destroy_write_struct(&png, &info);
	return c->code;
}

int image_write_png(const char *path, const uint8_t *pixels, uint32_t width,
		    uint32_t height, int channels, struct err *e)
{
	struct png_ctx c = { .e = e };
	struct wfile w;
	int rc;

	err_set_path(e, path);
	if (channels != 3 && channels != 4)
		return err_set(e, ERR_INTERNAL, "png: %d channels (want 3 or 4)", channels);
	if (!pixels || !width || !height || width > 0x7fffffffu || height > 0x7fffffffu)
		return err_set(e, ERR_INTERNAL, "png: invalid image %ux%u", width, height);
	if ((rc = wfile_open(&w, path, e)))
		return rc;
	c.fp = w.fp;
	errno = 0;
	if ((rc = png_encode(&c, pixels, width, height, channels)) < 0) {
		if (rc == ERR_FORMAT || rc == ERR_IO)
			rc = err_set_errno(e, ERR_IO, "cannot write '%s'", w.tmp);
		wfile_abort(&w);
		err_set_path(e, path);
		return rc;
	}
	return wfile_commit(&w, e);
}
