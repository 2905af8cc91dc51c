/*
 * fuzz_manifest.c - libFuzzer target for the archive's JSON documents:
 * the same input goes to the manifest, HEAD, volume index, failure cache
 * and stat cache parsers.  What parses must dump and parse again to the
 * same bytes (a parse/dump mismatch aborts).  Seeds: tests/data/manifest/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "formats/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const char *a, size_t na, const char *b, size_t nb)
{
	if (na != nb || memcmp(a, b, na) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct err e;
	char *j1 = NULL, *j2 = NULL;
	size_t n1, n2;

	err_init(&e);
	struct manifest m, m2;
	if (manifest_parse(buf, size, &m, &e) == 0) {
		if (manifest_dump(&m, &j1, &n1, &e) == 0 && manifest_parse(j1, n1, &m2, &e) == 0) {
			if (manifest_dump(&m2, &j2, &n2, &e) == 0)
				same(j1, n1, j2, n2);
			manifest_release(&m2);
		}
		manifest_release(&m);
		xfree(j1);
		xfree(j2);
		j1 = j2 = NULL;
	}

	struct head h, h2;
	if (head_parse(buf, size, &h, &e) == 0) {
		if (head_dump(&h, &j1, &n1, &e) == 0 && head_parse(j1, n1, &h2, &e) == 0) {
			if (head_dump(&h2, &j2, &n2, &e) == 0)
				same(j1, n1, j2, n2);
			head_release(&h2);
		}
		head_release(&h);
		xfree(j1);
		xfree(j2);
		j1 = j2 = NULL;
	}

	struct volidx v;
	if (volidx_parse(buf, size, &v, &e) == 0) {
		if (volidx_dump(&v, &j1, &n1, &e) == 0) {
			struct volidx v2;
			if (volidx_parse(j1, n1, &v2, &e) != 0 || v2.n_blobs != v.n_blobs)
				abort();
			volidx_release(&v2);
		}
		volidx_release(&v);
		xfree(j1);
		j1 = NULL;
	}

	struct manifest_failure *f;
	size_t nf;
	if (failures_parse(buf, size, &f, &nf, &e) == 0)
		failures_free(f, nf);

	uint64_t ver;
	if (statcache_parse(buf, size, &ver, &m, &e) == 0) {
		if (statcache_dump(&m, ver, &j1, &n1, &e) == 0) {
			struct manifest back;
			uint64_t v2;
			if (statcache_parse(j1, n1, &v2, &back, &e) != 0 || v2 != ver ||
			    back.n_entries != m.n_entries)
				abort();
			manifest_release(&back);
		}
		manifest_release(&m);
		xfree(j1);
	}
	return 0;
}
