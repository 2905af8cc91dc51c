/*
 * fuzz_stl.c - libFuzzer target for the STL reader: any input must read or
 * fail with a message, never crash, hang or over-allocate; a successful
 * read must satisfy the scan invariants.  Crashers go to
 * tests/data/stl/fuzz/, which test_stl replays.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/err.h"
#include "formats/formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scan s;
	struct err e;
	err_init(&e);
	(void)stl_probe(data, size);
	int rc = stl_read(data, size, NULL, &s, &e);
	if (rc < 0) {
		/* a failed read leaves an empty scan and says why */
		if (!e.msg[0] || s.positions || s.indices || s.n_vertices)
			abort();
		return 0;
	}
	for (size_t i = 0; i < 3 * s.n_faces; i++)
		if (s.indices[i] >= s.n_vertices)
			abort();
	if (s.n_faces && !s.indices)
		abort();
	scan_release(&s);
	return 0;
}
