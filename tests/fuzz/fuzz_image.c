/*
 * fuzz_image.c - libFuzzer target for PNG/JPEG decoding and the
 * header-only reader.  Pixel limits are shrunk (4 Mpixel) so a run's
 * memory goes to finding bugs, not to decoding legitimately huge images.
 * Crashers go to tests/data/image/fuzz/, which test_image replays.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "formats/image.h"
#include "formats/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct limits lim;
	struct image im;
	struct err e;
	uint32_t w, h;

	limits_init(&lim);
	lim.max_image_dim = 8192;
	lim.max_image_pixels = 1u << 22;
	err_init(&e);
	(void)image_read_header(data, size, &w, &h, &e);
	if (image_read(data, size, &lim, &im, &e) == 0) {
		volatile uint8_t sink = 0;
		size_t n = (size_t)im.width * im.height * 4;
		sink ^= im.rgba[0];
		sink ^= im.rgba[n - 1];
		(void)sink;
	}
	image_release(&im);
	return 0;
}
