/*
 * image.c - NEEDSWORK: placeholder until the PNG/JPEG reader lands.
 */
#include "image.h"
#include "../common/err.h"

#include <string.h>

void image_init(struct image *im)
{
	memset(im, 0, sizeof(*im));
}

void image_release(struct image *im)
{
	image_init(im);
}

const char *image_probe(const unsigned char *buf, size_t len)
{
	(void)buf;
	(void)len;
	return NULL;
}

int image_read_header(const unsigned char *buf, size_t len,
		      uint32_t *width, uint32_t *height, struct err *e)
{
	(void)buf;
	(void)len;
	(void)width;
	(void)height;
	return err_set(e, ERR_UNSUPPORTED, "image reader not built yet");
}

int image_read(const unsigned char *buf, size_t len, const struct limits *lim,
	       struct image *im, struct err *e)
{
	(void)buf;
	(void)len;
	(void)lim;
	(void)im;
	return err_set(e, ERR_UNSUPPORTED, "image reader not built yet");
}

int image_read_file(const char *path, const struct limits *lim,
		    struct image *im, struct err *e)
{
	(void)path;
	(void)lim;
	(void)im;
	return err_set(e, ERR_UNSUPPORTED, "image reader not built yet");
}

int image_write_png(const char *path, const uint8_t *pixels, uint32_t width,
		    uint32_t height, int channels, struct err *e)
{
	(void)path;
	(void)pixels;
	(void)width;
	(void)height;
	(void)channels;
	return err_set(e, ERR_UNSUPPORTED, "image writer not built yet");
}
