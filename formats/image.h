/*
 * image.h - texture images (PNG through libpng, JPEG through libjpeg-turbo).
 *
 * Decoding is from memory with limits checked before allocating
 * (struct limits max_image_dim / max_image_pixels).  Output is 8-bit RGBA,
 * row-major, top row first.  Safe on untrusted input; thread-safe (no
 * shared state: libpng/libjpeg errors are caught per call).
 */
#ifndef REFSCAN_IMAGE_H
#define REFSCAN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

struct err;
struct limits;

struct image {
	uint32_t width, height; /* pixels */
	uint8_t *rgba;          /* 4 * width * height bytes; free with image_release */
	int channels;           /* channels in the source file (1..4), for info */
};

void image_init(struct image *im);
void image_release(struct image *im);

/* "png", "jpeg" or NULL from the first bytes. */
const char *image_probe(const unsigned char *buf, size_t len);

/*
 * Read only the dimensions (cheap; for `info`).  Returns 0 or
 * ERR_FORMAT/ERR_UNSUPPORTED with e filled.
 */
int image_read_header(const unsigned char *buf, size_t len,
		      uint32_t *width, uint32_t *height, struct err *e);

/* Decode PNG or JPEG from memory into im (RGBA8).  lim may be NULL. */
int image_read(const unsigned char *buf, size_t len, const struct limits *lim,
	       struct image *im, struct err *e);

/* Map and decode a file; e->path is set. */
int image_read_file(const char *path, const struct limits *lim,
		    struct image *im, struct err *e);

/*
 * Write an RGB (channels = 3) or RGBA (channels = 4) 8-bit PNG, atomically
 * (temp file + rename).  pixels are row-major, top row first.
 */
int image_write_png(const char *path, const uint8_t *pixels, uint32_t width,
		    uint32_t height, int channels, struct err *e);

#endif
