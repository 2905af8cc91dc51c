/*
 * test_image.c - texture images: PNG and JPEG decoding to RGBA8, the
 * header-only reader, limits checked before allocation, truncation and
 * out-of-memory sweeps, and the atomic PNG writer.
 *
 * Inputs are written here by libpng and libjpeg themselves (gray, palette,
 * 16-bit, interlaced PNGs; RGB, grayscale, CMYK JPEGs), so the decoder is
 * checked against files real encoders produce.  Real third-party textures
 * under REFSCAN_SHARED_DATA are decoded too when that folder exists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/mapfile.h"
#include "formats/image.h"
#include "formats/limits.h"

/* ------------------------------------------------------------ helpers */

struct mem {
	unsigned char *p;
	size_t len, cap;
};

static void mem_put(png_structp png, png_bytep data, size_t n)
{
	struct mem *m = png_get_io_ptr(png);
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2;
		m->p = realloc(m->p, m->cap);
		assert_non_null(m->p);
	}
	memcpy(m->p + m->len, data, n);
	m->len += n;
}

static void mem_flush(png_structp png)
{
	(void)png;
}

/*
 * Encode with libpng: rows of `bytes_per_row` packed as libpng expects for
 * (color_type, depth); 16-bit samples big-endian.  Optional palette/tRNS.
 */
struct png_spec {
	uint32_t w, h;
	int color, depth, interlace;
	const png_color *palette;
	int n_palette;
	const png_byte *trns;
	int n_trns;
	const png_color_16 *trns_color;
};

static struct mem png_encode_mem(const struct png_spec *s, const unsigned char *data,
				 size_t bytes_per_row)
{
	struct mem m = { 0 };
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png_create_info_struct(png);
	assert_non_null(info);
	if (setjmp(png_jmpbuf(png)))
		fail_msg("libpng failed while writing a test image");
	png_set_write_fn(png, &m, mem_put, mem_flush);
	png_set_IHDR(png, info, s->w, s->h, s->depth, s->color, s->interlace,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (s->palette)
		png_set_PLTE(png, info, s->palette, s->n_palette);
	if (s->trns || s->trns_color)
		png_set_tRNS(png, info, s->trns, s->n_trns, s->trns_color);
	png_write_info(png, info);
	int passes = png_set_interlace_handling(png);
	for (int p = 0; p < passes; p++)
		for (uint32_t y = 0; y < s->h; y++)
			png_write_row(png, data + y * bytes_per_row);
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	return m;
}

struct jpeg_spec {
	uint32_t w, h;
	int components;
	J_COLOR_SPACE space;
	int quality;
	int progressive;
};

static struct mem jpeg_encode_mem(const struct jpeg_spec *s, const unsigned char *data)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr jerr;
	unsigned char *out = NULL;
	unsigned long out_len = 0;
	c.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, &out, &out_len);
	c.image_width = s->w;
	c.image_height = s->h;
	c.input_components = s->components;
	c.in_color_space = s->space;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, s->quality, TRUE);
	if (s->progressive)
		jpeg_simple_progression(&c);
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = (JSAMPROW)(data + (size_t)c.next_scanline * s->w * (size_t)s->components);
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	struct mem m = { out, out_len, out_len };
	return m;
}

static unsigned char *gradient(uint32_t w, uint32_t h, int ch)
{
	unsigned char *p = malloc((size_t)w * h * (size_t)ch);
	assert_non_null(p);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
			for (int k = 0; k < ch; k++)
				p[((size_t)y * w + x) * (size_t)ch + (size_t)k] =
					(unsigned char)((x * 255 / (w - 1) * (k == 0)) +
							(y * 255 / (h - 1) * (k == 1)) +
							((x + y) * 127 / (w + h - 2) * (k == 2)) +
							((x * 7 + y * 3) % 256 * (k == 3)));
	return p;
}

static char tmpdir[512];

static int setup_tmp(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/refscan-image-XXXXXX", t ? t : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int rm_entry(const char *p, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)type;
	(void)f;
	return remove(p);
}

static int teardown_tmp(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int max_abs_diff_rgb(const uint8_t *rgba, const unsigned char *src, size_t n, int ch)
{
	int worst = 0;
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 3; k++) {
			int want = ch == 1 ? src[i] : src[i * (size_t)ch + (size_t)k];
			int d = abs((int)rgba[i * 4 + (size_t)k] - want);
			if (d > worst)
				worst = d;
		}
	return worst;
}

/* ------------------------------------------------------------ writer */

static void test_png_written_rgb_reads_back_exactly(void **state)
{
	(void)state;
	char path[600];
	const uint32_t w = 37, h = 23;
	unsigned char *px = gradient(w, h, 3);
	struct err e;
	struct image im;
	err_init(&e);
	snprintf(path, sizeof(path), "%s/rgb.png", tmpdir);
	assert_int_equal(image_write_png(path, px, w, h, 3, &e), 0);
	assert_int_equal(image_read_file(path, NULL, &im, &e), 0);
	assert_int_equal(im.width, w);
	assert_int_equal(im.height, h);
	assert_int_equal(im.channels, 3);
	for (size_t i = 0; i < (size_t)w * h; i++) {
		assert_memory_equal(im.rgba + 4 * i, px + 3 * i, 3);
		assert_int_equal(im.rgba[4 * i + 3], 255);
	}
	image_release(&im);
	assert_null(im.rgba);
	free(px);
}

static void test_png_written_rgba_keeps_alpha(void **state)
{
	(void)state;
	char path[600];
	const uint32_t w = 16, h = 9;
	unsigned char *px = gradient(w, h, 4);
	struct err e;
	struct image im;
	err_init(&e);
	snprintf(path, sizeof(path), "%s/rgba.png", tmpdir);
	assert_int_equal(image_write_png(path, px, w, h, 4, &e), 0);
	assert_int_equal(image_read_file(path, NULL, &im, &e), 0);
	assert_int_equal(im.channels, 4);
	assert_memory_equal(im.rgba, px, (size_t)w * h * 4);
	image_release(&im);
	free(px);
}

static void test_png_write_replaces_atomically_without_temp_files(void **state)
{
	(void)state;
	char dir[600], path[700];
	unsigned char red[3 * 4] = { 255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0 };
	unsigned char blue[3 * 4] = { 0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0, 255 };
	struct err e;
	struct image im;
	struct stat st;
	err_init(&e);
	snprintf(dir, sizeof(dir), "%s/atomic", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/tex.png", dir);
	assert_int_equal(image_write_png(path, red, 2, 2, 3, &e), 0);
	assert_int_equal(image_write_png(path, blue, 2, 2, 3, &e), 0);
	assert_int_equal(image_read_file(path, NULL, &im, &e), 0);
	assert_int_equal(im.rgba[0], 0);
	assert_int_equal(im.rgba[2], 255);
	image_release(&im);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	for (struct dirent *de; (de = readdir(d));)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	assert_int_equal(n, 1);
}

static void test_png_write_into_missing_folder_is_io_error(void **state)
{
	(void)state;
	char path[600];
	unsigned char px[3] = { 1, 2, 3 };
	struct err e;
	err_init(&e);
	snprintf(path, sizeof(path), "%s/no/such/dir/t.png", tmpdir);
	assert_int_equal(image_write_png(path, px, 1, 1, 3, &e), ERR_IO);
	assert_non_null(strstr(e.msg, "No such file or directory"));
	assert_string_equal(e.path, path);
}

static void test_png_write_failing_midway_is_io_error_without_leftovers(void **state)
{
	(void)state;
	/*
	 * The temp file sits beside the target, so /dev/full cannot be the
	 * target; a file size limit makes the write itself fail (EFBIG).
	 */
	char dir[600], path[700];
	unsigned char *px = gradient(256, 256, 3);
	struct rlimit old, small;
	struct err e;
	err_init(&e);
	snprintf(dir, sizeof(dir), "%s/efbig", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/t.png", dir);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = 1024;
	void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	int rc = image_write_png(path, px, 256, 256, 3, &e);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, was);
	assert_int_equal(rc, ERR_IO);
	assert_non_null(strstr(e.msg, "cannot write"));
	assert_non_null(strstr(e.msg, "File too large"));
	DIR *d = opendir(dir);
	assert_non_null(d);
	for (struct dirent *de; (de = readdir(d));)
		if (de->d_name[0] != '.')
			fail_msg("left behind: %s", de->d_name);
	closedir(d);
	free(px);
}

static void test_png_write_rejects_bad_arguments(void **state)
{
	(void)state;
	char path[600];
	unsigned char px[8] = { 0 };
	struct err e;
	err_init(&e);
	snprintf(path, sizeof(path), "%s/bad.png", tmpdir);
	assert_int_equal(image_write_png(path, px, 1, 1, 2, &e), ERR_INTERNAL);
	assert_int_equal(image_write_png(path, px, 0, 1, 3, &e), ERR_INTERNAL);
	assert_int_equal(image_write_png(path, NULL, 1, 1, 3, &e), ERR_INTERNAL);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_png_write_survives_every_allocation_failure(void **state)
{
	(void)state;
	char path[600];
	unsigned char *px = gradient(8, 8, 3);
	struct err e;
	int ok = 0;
	snprintf(path, sizeof(path), "%s/oom.png", tmpdir);
	for (long n = 0; n < 200 && !ok; n++) {
		err_init(&e);
		unlink(path);
		alloc_fail_after(n);
		int rc = image_write_png(path, px, 8, 8, 3, &e);
		alloc_fail_after(-1);
		if (rc == 0) {
			ok = 1;
			break;
		}
		assert_int_equal(rc, ERR_NOMEM);
		assert_int_equal(access(path, F_OK), -1);
	}
	assert_true(ok);
	struct image im;
	assert_int_equal(image_read_file(path, NULL, &im, &e), 0);
	assert_memory_equal(im.rgba, px, 3);
	image_release(&im);
	free(px);
}

/* ---------------------------------------------------------- PNG read */

static void test_png_gray_8bit_expands_to_rgb(void **state)
{
	(void)state;
	unsigned char g[4 * 3] = { 0, 10, 20, 30, 100, 110, 120, 130, 200, 210, 220, 255 };
	struct png_spec s = { 4, 3, PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, 0, 0, 0, 0, 0 };
	struct mem m = png_encode_mem(&s, g, 4);
	struct image im;
	struct err e;
	err_init(&e);
	assert_int_equal(image_read(m.p, m.len, NULL, &im, &e), 0);
	assert_int_equal(im.channels, 1);
	for (int i = 0; i < 12; i++) {
		assert_int_equal(im.rgba[4 * i], g[i]);
		assert_int_equal(im.rgba[4 * i + 1], g[i]);
		assert_int_equal(im.rgba[4 * i + 2], g[i]);
		assert_int_equal(im.rgba[4 * i + 3], 255);
	}
	image_release(&im);
	free(m.p);
}

static void test_png_gray_1bit_expands_to_black_and_white(void **state)
{
	(void)state;
	/* 10 pixels: 1011001110 packed MSB first */
	unsigned char row[2] = { 0xB3, 0x80 };
	const int bits[10] = { 1, 0, 1, 1, 0, 0, 1, 1, 1, 0 };
	struct png_spec s = { 10, 1, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, 0, 0, 0, 0, 0 };
	struct mem m = png_encode_mem(&s, row, 2);
	struct image im;
	struct err e;
	err_init(&e);
	assert_int_equal(image_read(m.p, m.len, NULL, &im, &e), 0);
	assert_int_equal(im.width, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(im.rgba[4 * i + 1], bits[i] ? 255 : 0);
	image_release(&im);
	free(m.p);
}

static void test_png_gray_alpha_keeps_alpha(void **state)
{
	(void)state;
	unsigned char ga[3 * 2] = { 50, 0, 150, 128, 250, 255 };
	struct png_spec s = { 3, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, 0, 0, 0, 0, 0 };
	struct mem m = png_encode_mem(&s, ga, 6);
	struct image im;
	struct err e;
	err_init(&e);
	assert_int_equal(image_read(m.p, m.len, NULL, &im, &e), 0);
	assert_int_equal(im.channels, 2);
	const uint8_t want[12] = { 50, 50, 50, 0, 150, 150, 150, 128, 250, 250, 250, 255 };
	assert_memory_equal(im.rgba, want, 12);
	image_release(&im);
	free(m.p);
}

static void test_png_palette_with_transparency_expands(void **state)
{
	(void)state;
	const png_color pal[3] = { { 255, 0, 0 }, { 0, 255, 0 }, { 10, 20, 30 } };
	const png_byte trns[2] = { 255, 40 };
	unsigned char idx[2 * 2] = { 0, 1, 2, 1 };
	struct png_spec s = { 2, 2, PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_NONE,
			      pal, 3, trns, 2, NULL };
	struct mem m = png_encode_mem(&s, idx, 2);
	struct image im;
	struct err e;
	err_init(&e);
	assert_int_equal(image_read(m.p, m.len, NULL, &im, &e), 0);
	assert_int_equal(im.channels, 4);
	const uint8_t want[16] = { 255, 0, 0, 255, 0, 255, 0, 40,
				   10, 20, 30, 255, 0, 255, 0, 40 };
	assert_memory_equal(im.rgba, want, 16);
	image_release(&im);
	free(m.p);
}

static void test_png_palette_4bit_without_transparency_is_opaque(void **state)
{
	(void)state;
	const png_color pal[2] = { { 1, 2, 3 }, { 200, 100, 50 } };
	unsigned char row[2] = { 0x01, 0x10 }; /* indices 0 1 1 0 */
	struct png_spec s = { 4, 1, PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE,
			      pal, 2, NULL, 0, NULL };
	struct mem m = png_encode_mem(&s, row, 2);
	struct image im;
	struct err e;
	err_init(&e);
	assert_int_equal(image_read(m.p, m.len, NULL, &im, &e), 0);
	assert_int_equal(im.channels, 3);
	const uint8_t want[16] = { 1, 2, 3, 255, 200, 100, 50, 255,
				   200, 100, 50, 255, 1, 2, 3, 255 };
	assert_memory_equal(im.rgba, want, 16);
	image_release(&im);
	free(m.p);
}

static void test_png_16bit_rgb_reduces_to_8bit(void **state)
{
	(void)state;
	/* k * 257 reduces to exactly k; 0x8000 rounds to 128 */
	const uint16_t v[2][3] = { { 0, 65535, 100 * 257 }, { 0x8000, 7 * 257, 254 * 257 } };
	unsigned char row[12];
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 3; k++) {
			row[(i * 3 + k) * 2] = (unsigned char)(v[i][k] >> 8);
			row[(i * 3 + k) * 2 + 1] = (unsigned char)(v[i][k] & 0xff);
		}
	struct png_spec s = { 2, 1, PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE, 0, 0, 0, 0, 0 };
	struct mem m = png_encode_mem(&s, row, 12);
	struct image im;
	struct err e;
	err_init(&e);
	assert_int_equal(image_read(m.p, m.len, NULL, &im, &e), 0);
	const uint8_t want[8] = { 0, 255, 100, 255, 128, 7, 254, 255 };
	assert_memory_equal(im.rgba, want, 8);
	image_release(&im);
	free(m.p);
}

static void test_png_interlaced_decodes_like_plain(void **state)
{
	(void)state;
	const uint32_t w = 19, h = 13;
	unsigned char *px = gradient(w, h, 3);
	struct png_spec s = { w, h, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, 0, 0, 0, 0, 0 };
	struct mem m = png_encode_mem(&s, px, (size_t)w * 3);
	struct image im;
	struct err e;
	err_init(&e);
	assert_int_equal(image_read(m.p, m.len, NULL, &im, &e), 0);
	assert_int_equal(max_abs_diff_rgb(im.rgba, px, (size_t)w * h, 3), 0);
	image_release(&im);
	free(m.p);
	free(px);
}

static struct mem small_png(void)
{
	unsigned char *px = gradient(24, 16, 3);
	struct png_spec s = { 24, 16, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, 0, 0, 0, 0, 0 };
	struct mem m = png_encode_mem(&s, px, 24 * 3);
	free(px);
	return m;
}

static void test_png_every_truncation_fails_cleanly(void **state)
{
	(void)state;
	struct mem m = small_png();
	for (size_t n = 0; n < m.len; n++) {
		unsigned char *cut = malloc(n ? n : 1);
		assert_non_null(cut);
		memcpy(cut, m.p, n);
		struct image im;
		struct err e;
		err_init(&e);
		int rc = image_read(cut, n, NULL, &im, &e);
		if (rc != ERR_FORMAT && rc != ERR_UNSUPPORTED)
			fail_msg("prefix of %zu/%zu bytes: rc %d (%s)", n, m.len, rc, e.msg);
		assert_null(im.rgba);
		assert_true(e.msg[0] != '\0');
		free(cut);
	}
	struct image im;
	struct err e;
	err_init(&e);
	assert_int_equal(image_read(m.p, m.len, NULL, &im, &e), 0);
	image_release(&im);
	free(m.p);
}

static void test_png_bad_crc_in_pixel_data_is_format_error(void **state)
{
	(void)state;
	struct mem m = small_png();
	unsigned char *idat = memmem(m.p, m.len, "IDAT", 4);
	assert_non_null(idat);
	idat[6] ^= 0x55; /* a byte inside the compressed stream */
	struct image im;
	struct err e;
	err_init(&e);
	assert_int_equal(image_read(m.p, m.len, NULL, &im, &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "png: "));
	assert_true(e.offset > 0);
	free(m.p);
}

static void test_png_oversized_header_is_limit_before_allocation(void **state)
{
	(void)state;
	struct mem m = small_png();
	/* IHDR width at offset 16: 100000 x 16 */
	m.p[16] = 0;
	m.p[17] = 0x01;
	m.p[18] = 0x86;
	m.p[19] = 0xA0;
	struct image im;
	struct err e;
	err_init(&e);
	/* every allocation would fail: the limit must be seen first */
	alloc_fail_after(0);
	int rc = image_read(m.p, m.len, NULL, &im, &e);
	alloc_fail_after(-1);
	assert_int_equal(rc, ERR_LIMIT);
	assert_non_null(strstr(e.msg, "100000x16"));
	uint32_t w, h;
	assert_int_equal(image_read_header(m.p, m.len, &w, &h, &e), 0);
	assert_int_equal(w, 100000);
	assert_int_equal(h, 16);
	free(m.p);
}

static void test_png_limits_apply_to_side_and_pixels(void **state)
{
	(void)state;
	struct mem m = small_png(); /* 24 x 16 */
	struct limits lim;
	struct image im;
	struct err e;
	limits_init(&lim);
	lim.max_image_dim = 20;
	err_init(&e);
	assert_int_equal(image_read(m.p, m.len, &lim, &im, &e), ERR_LIMIT);
	lim.max_image_dim = 24;
	lim.max_image_pixels = 24 * 16 - 1;
	assert_int_equal(image_read(m.p, m.len, &lim, &im, &e), ERR_LIMIT);
	lim.max_image_pixels = 24 * 16;
	assert_int_equal(image_read(m.p, m.len, &lim, &im, &e), 0);
	image_release(&im);
	free(m.p);
}

static void test_png_decode_survives_every_allocation_failure(void **state)
{
	(void)state;
	const png_color pal[2] = { { 9, 8, 7 }, { 1, 2, 3 } };
	unsigned char idx[6 * 4];
	for (int i = 0; i < 24; i++)
		idx[i] = (unsigned char)(i % 2);
	struct png_spec s = { 6, 4, PNG_COLOR_TYPE_PALETTE, 8, PNG_INTERLACE_ADAM7,
			      pal, 2, NULL, 0, NULL };
	struct mem m = png_encode_mem(&s, idx, 6);
	int ok = 0;
	long n;
	for (n = 0; n < 500; n++) {
		struct image im;
		struct err e;
		err_init(&e);
		alloc_fail_after(n);
		int rc = image_read(m.p, m.len, NULL, &im, &e);
		alloc_fail_after(-1);
		if (rc == 0) {
			assert_int_equal(im.rgba[4], 1);
			image_release(&im);
			ok = 1;
			break;
		}
		if (rc != ERR_NOMEM)
			fail_msg("allocation %ld failed: rc %d (%s)", n, rc, e.msg);
		assert_null(im.rgba);
	}
	assert_true(ok);
	assert_true(n > 2);
	free(m.p);
}

/* --------------------------------------------------------- JPEG read */

static void test_jpeg_rgb_decodes_close_to_source(void **state)
{
	(void)state;
	const uint32_t w = 64, h = 48;
	unsigned char *px = gradient(w, h, 3);
	struct jpeg_spec s = { w, h, 3, JCS_RGB, 95, 0 };
	struct mem m = jpeg_encode_mem(&s, px);
	struct image im;
	struct err e;
	err_init(&e);
	assert_int_equal(image_read(m.p, m.len, NULL, &im, &e), 0);
	assert_int_equal(im.width, w);
	assert_int_equal(im.height, h);
	assert_int_equal(im.channels, 3);
	assert_true(max_abs_diff_rgb(im.rgba, px, (size_t)w * h, 3) <= 12);
	for (size_t i = 0; i < (size_t)w * h; i++)
		assert_int_equal(im.rgba[4 * i + 3], 255);
	image_release(&im);
	free(m.p);
	free(px);
}

static void test_jpeg_progressive_decodes_like_baseline(void **state)
{
	(void)state;
	const uint32_t w = 40, h = 24;
	unsigned char *px = gradient(w, h, 3);
	struct jpeg_spec s = { w, h, 3, JCS_RGB, 95, 1 };
	struct mem m = jpeg_encode_mem(&s, px);
	struct image im;
	struct err e;
	err_init(&e);
	assert_int_equal(image_read(m.p, m.len, NULL, &im, &e), 0);
	assert_true(max_abs_diff_rgb(im.rgba, px, (size_t)w * h, 3) <= 12);
	image_release(&im);
	free(m.p);
	free(px);
}

static void test_jpeg_grayscale_expands_to_rgb(void **state)
{
	(void)state;
	const uint32_t w = 32, h = 16;
	unsigned char *px = gradient(w, h, 1);
	struct jpeg_spec s = { w, h, 1, JCS_GRAYSCALE, 95, 0 };
	struct mem m = jpeg_encode_mem(&s, px);
	struct image im;
	struct err e;
	err_init(&e);
	assert_int_equal(image_read(m.p, m.len, NULL, &im, &e), 0);
	assert_int_equal(im.channels, 1);
	for (size_t i = 0; i < (size_t)w * h; i++) {
		assert_int_equal(im.rgba[4 * i], im.rgba[4 * i + 1]);
		assert_int_equal(im.rgba[4 * i], im.rgba[4 * i + 2]);
	}
	assert_true(max_abs_diff_rgb(im.rgba, px, (size_t)w * h, 1) <= 6);
	image_release(&im);
	free(m.p);
	free(px);
}

static void test_jpeg_adobe_cmyk_converts_to_rgb(void **state)
{
	(void)state;
	/* libjpeg writes CMYK with an Adobe marker: stored values are
	 * inverted ink, so (255, 128, 0, 255) is R=255, G~128, B=0 */
	const uint32_t w = 16, h = 16;
	unsigned char px[16 * 16 * 4];
	for (size_t i = 0; i < sizeof(px); i += 4) {
		px[i] = 255;
		px[i + 1] = 128;
		px[i + 2] = 0;
		px[i + 3] = 255;
	}
	struct jpeg_spec s = { w, h, 4, JCS_CMYK, 100, 0 };
	struct mem m = jpeg_encode_mem(&s, px);
	struct image im;
	struct err e;
	err_init(&e);
	assert_int_equal(image_read(m.p, m.len, NULL, &im, &e), 0);
	assert_int_equal(im.channels, 4);
	assert_true(abs(im.rgba[0] - 255) <= 3);
	assert_true(abs(im.rgba[1] - 128) <= 3);
	assert_true(im.rgba[2] <= 3);
	assert_int_equal(im.rgba[3], 255);
	image_release(&im);
	free(m.p);
}

static struct mem small_jpeg(int progressive)
{
	unsigned char *px = gradient(24, 16, 3);
	struct jpeg_spec s = { 24, 16, 3, JCS_RGB, 90, progressive };
	struct mem m = jpeg_encode_mem(&s, px);
	free(px);
	return m;
}

static void test_jpeg_every_truncation_fails_cleanly(void **state)
{
	(void)state;
	for (int prog = 0; prog < 2; prog++) {
		struct mem m = small_jpeg(prog);
		for (size_t n = 0; n < m.len; n++) {
			unsigned char *cut = malloc(n ? n : 1);
			assert_non_null(cut);
			memcpy(cut, m.p, n);
			struct image im;
			struct err e;
			err_init(&e);
			int rc = image_read(cut, n, NULL, &im, &e);
			if (rc != ERR_FORMAT && rc != ERR_UNSUPPORTED)
				fail_msg("%s prefix %zu/%zu: rc %d (%s)",
					 prog ? "progressive" : "baseline", n, m.len, rc, e.msg);
			assert_null(im.rgba);
			free(cut);
		}
		struct image im;
		struct err e;
		err_init(&e);
		assert_int_equal(image_read(m.p, m.len, NULL, &im, &e), 0);
		image_release(&im);
		free(m.p);
	}
}

/* Offset of the SOF0/SOF2 height field in a JPEG written by libjpeg. */
static size_t sof_offset(const struct mem *m)
{
	for (size_t i = 2; i + 9 < m->len; i++)
		if (m->p[i] == 0xFF && (m->p[i + 1] == 0xC0 || m->p[i + 1] == 0xC2))
			return i + 5;
	fail_msg("no SOF marker");
	return 0;
}

static void test_jpeg_oversized_header_is_limit_before_allocation(void **state)
{
	(void)state;
	struct mem m = small_jpeg(1);
	size_t o = sof_offset(&m);
	m.p[o] = 0xEA; /* height 60000 */
	m.p[o + 1] = 0x60;
	m.p[o + 2] = 0xEA; /* width 60000 */
	m.p[o + 3] = 0x60;
	struct image im;
	struct err e;
	err_init(&e);
	alloc_fail_after(0);
	int rc = image_read(m.p, m.len, NULL, &im, &e);
	alloc_fail_after(-1);
	assert_int_equal(rc, ERR_LIMIT);
	assert_non_null(strstr(e.msg, "60000x60000"));
	uint32_t w, h;
	assert_int_equal(image_read_header(m.p, m.len, &w, &h, &e), 0);
	assert_int_equal(w, 60000);
	assert_int_equal(h, 60000);
	free(m.p);
}

static void test_jpeg_garbage_after_marker_is_format_error(void **state)
{
	(void)state;
	struct mem m = small_jpeg(0);
	/* damage the entropy-coded data after the SOS header */
	unsigned char *sos = memmem(m.p, m.len, "\xFF\xDA", 2);
	assert_non_null(sos);
	size_t at = (size_t)(sos - m.p) + 14;
	for (size_t i = at; i < m.len - 2; i++)
		m.p[i] = 0xFF;
	struct image im;
	struct err e;
	err_init(&e);
	int rc = image_read(m.p, m.len, NULL, &im, &e);
	assert_int_equal(rc, ERR_FORMAT);
	assert_non_null(strstr(e.msg, "jpeg: "));
	free(m.p);
}

/* --------------------------------------------------- probe and header */

static void test_image_header_reads_dimensions_only(void **state)
{
	(void)state;
	struct mem p = small_png(), j = small_jpeg(0);
	uint32_t w, h;
	struct err e;
	err_init(&e);
	assert_string_equal(image_probe(p.p, p.len), "png");
	assert_string_equal(image_probe(j.p, j.len), "jpeg");
	assert_int_equal(image_read_header(p.p, p.len, &w, &h, &e), 0);
	assert_true(w == 24 && h == 16);
	assert_int_equal(image_read_header(j.p, j.len, &w, &h, &e), 0);
	assert_true(w == 24 && h == 16);
	/* only the first bytes are needed */
	assert_int_equal(image_read_header(p.p, 33, &w, &h, &e), 0);
	assert_int_equal(image_read_header(p.p, 32, &w, &h, &e), ERR_FORMAT);
	assert_int_equal(image_read_header((const unsigned char *)"GIF89a", 6, &w, &h, &e),
			 ERR_UNSUPPORTED);
	assert_null(image_probe((const unsigned char *)"GIF89a", 6));
	struct image im;
	assert_int_equal(image_read((const unsigned char *)"", 0, NULL, &im, &e), ERR_UNSUPPORTED);
	assert_int_equal(image_read_file("/nonexistent/x.png", NULL, &im, &e), ERR_NOTFOUND);
	assert_string_equal(e.path, "/nonexistent/x.png");
	free(p.p);
	free(j.p);
}

struct thread_arg {
	struct mem good, bad;
	int failures;
};

static void *decode_loop(void *p)
{
	struct thread_arg *a = p;
	for (int i = 0; i < 50; i++) {
		struct image im;
		struct err e;
		err_init(&e);
		if (image_read(a->good.p, a->good.len, NULL, &im, &e) != 0 || im.width != 24)
			a->failures++;
		image_release(&im);
		err_init(&e);
		if (image_read(a->bad.p, a->bad.len, NULL, &im, &e) != ERR_FORMAT ||
		    !strstr(e.msg, "truncated"))
			a->failures++;
	}
	return NULL;
}

static void test_image_decoders_are_thread_safe(void **state)
{
	(void)state;
	struct mem png = small_png(), jpg = small_jpeg(1);
	struct thread_arg args[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		args[i].good = i % 2 ? jpg : png;
		args[i].bad = png;
		args[i].bad.len = png.len / 2;
		args[i].failures = 0;
		assert_int_equal(pthread_create(&th[i], NULL, decode_loop, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	free(png.p);
	free(jpg.p);
}

/* ---------------------------------------------- fixtures and real data */

static int replay_dir(const char *dir, int *n)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	for (struct dirent *de; (de = readdir(d));) {
		char path[4096 + 260];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		struct mapfile m;
		struct err e;
		struct image im;
		uint32_t w, h;
		err_init(&e);
		if (mapfile_open(&m, path, &e) < 0)
			continue;
		struct limits lim;
		limits_init(&lim);
		lim.max_image_pixels = 1 << 22;
		int rc = image_read(m.data, m.len, &lim, &im, &e);
		int want_ok = !strncmp(de->d_name, "ok", 2);
		if (want_ok != (rc == 0) || (rc < 0 && (!e.msg[0] || rc < ERR_INTERNAL)))
			fail_msg("%s: rc %d '%s'", path, rc, e.msg);
		for (const char *c = e.msg; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
				fail_msg("%s: unprintable byte in '%s'", path, e.msg);
		if (rc == 0 && (!im.width || !im.height || !im.rgba))
			fail_msg("%s: decoded to an empty image", path);
		image_release(&im);
		(void)image_read_header(m.data, m.len, &w, &h, &e);
		mapfile_release(&m);
		(*n)++;
	}
	closedir(d);
	return 0;
}

/*
 * Fuzzer inputs kept as fixtures, one per distinct outcome, named after
 * it: names starting "ok" must decode, every other one must fail with a
 * clear, printable message.
 */
static void test_image_fuzz_fixtures_replay_with_named_outcome(void **state)
{
	(void)state;
	const char *top = getenv("REFSCAN_TOP");
	char dir[4096];
	int n = 0;
	snprintf(dir, sizeof(dir), "%s/tests/data/image/fuzz", top ? top : ".");
	if (replay_dir(dir, &n) < 0) {
		printf("image: skipped: no fixture folder %s\n", dir);
		skip();
	}
	printf("image: %d fuzz fixtures replayed\n", n);
	assert_true(n > 0);
}

static int n_real, n_real_ok;

static int visit_texture(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)f;
	const char *dot = strrchr(path, '.');
	if (type != FTW_F || !dot || (strcasecmp(dot, ".png") && strcasecmp(dot, ".jpg") &&
				       strcasecmp(dot, ".jpeg")))
		return 0;
	struct mapfile m;
	struct err e;
	struct image im;
	uint32_t w = 0, h = 0;
	err_init(&e);
	if (mapfile_open(&m, path, &e) < 0)
		return 0;
	int hrc = image_read_header(m.data, m.len, &w, &h, &e);
	int rc = image_read(m.data, m.len, NULL, &im, &e);
	mapfile_release(&m);
	int ok = rc == 0 && hrc == 0 && im.width == w && im.height == h &&
		 w >= 1 && h >= 1 && w <= 32768 && h <= 32768 && im.rgba;
	/* a decoded texture is not one flat colour */
	if (ok) {
		size_t same = 0, n = (size_t)w * h;
		for (size_t i = 1; i < n; i++)
			same += !memcmp(im.rgba, im.rgba + 4 * i, 3);
		ok = same + 1 < n;
	}
	n_real++;
	n_real_ok += ok;
	printf("%-4s %5ux%-5u ch %d  %s%s%s\n", ok ? "pass" : "FAIL", w, h, im.channels,
	       path, rc ? "  " : "", rc ? e.msg : "");
	image_release(&im);
	return 0;
}

static void test_image_shared_textures_decode(void **state)
{
	(void)state;
	const char *data = getenv("REFSCAN_SHARED_DATA");
	char root[4096];
	snprintf(root, sizeof(root), "%s", data ? data : "../shared/data");
	if (access(root, R_OK) != 0) {
		printf("image: skipped shared textures: %s is not present\n", root);
		skip();
	}
	n_real = n_real_ok = 0;
	assert_int_equal(nftw(root, visit_texture, 16, FTW_PHYS), 0);
	printf("image: %d/%d shared images decode\n", n_real_ok, n_real);
	assert_true(n_real > 0);
	assert_int_equal(n_real_ok, n_real);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_png_written_rgb_reads_back_exactly),
		cmocka_unit_test(test_png_written_rgba_keeps_alpha),
		cmocka_unit_test(test_png_write_replaces_atomically_without_temp_files),
		cmocka_unit_test(test_png_write_into_missing_folder_is_io_error),
		cmocka_unit_test(test_png_write_failing_midway_is_io_error_without_leftovers),
		cmocka_unit_test(test_png_write_rejects_bad_arguments),
		cmocka_unit_test(test_png_write_survives_every_allocation_failure),
		cmocka_unit_test(test_png_gray_8bit_expands_to_rgb),
		cmocka_unit_test(test_png_gray_1bit_expands_to_black_and_white),
		cmocka_unit_test(test_png_gray_alpha_keeps_alpha),
		cmocka_unit_test(test_png_palette_with_transparency_expands),
		cmocka_unit_test(test_png_palette_4bit_without_transparency_is_opaque),
		cmocka_unit_test(test_png_16bit_rgb_reduces_to_8bit),
		cmocka_unit_test(test_png_interlaced_decodes_like_plain),
		cmocka_unit_test(test_png_every_truncation_fails_cleanly),
		cmocka_unit_test(test_png_bad_crc_in_pixel_data_is_format_error),
		cmocka_unit_test(test_png_oversized_header_is_limit_before_allocation),
		cmocka_unit_test(test_png_limits_apply_to_side_and_pixels),
		cmocka_unit_test(test_png_decode_survives_every_allocation_failure),
		cmocka_unit_test(test_jpeg_rgb_decodes_close_to_source),
		cmocka_unit_test(test_jpeg_progressive_decodes_like_baseline),
		cmocka_unit_test(test_jpeg_grayscale_expands_to_rgb),
		cmocka_unit_test(test_jpeg_adobe_cmyk_converts_to_rgb),
		cmocka_unit_test(test_jpeg_every_truncation_fails_cleanly),
		cmocka_unit_test(test_jpeg_oversized_header_is_limit_before_allocation),
		cmocka_unit_test(test_jpeg_garbage_after_marker_is_format_error),
		cmocka_unit_test(test_image_header_reads_dimensions_only),
		cmocka_unit_test(test_image_decoders_are_thread_safe),
		cmocka_unit_test(test_image_fuzz_fixtures_replay_with_named_outcome),
		cmocka_unit_test(test_image_shared_textures_decode),
	};
	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
