/*
 * mapfile.h - read-only memory map of a whole file.
 *
 * Scan readers parse straight from the map: no copies, no per-line
 * allocation.  Empty files map to a valid zero-length buffer.
 */
#ifndef REFSCAN_MAPFILE_H
#define REFSCAN_MAPFILE_H

#include <stddef.h>
#include <sys/types.h>

struct err;

struct mapfile {
	const unsigned char *data; /* file bytes, len of them; not NUL-ended */
	size_t len;                /* bytes */
	int mapped;                /* 1 if data is an mmap, 0 if malloc'd */
};

/*
 * Map path read-only.  Returns 0 or ERR_IO/ERR_NOTFOUND/ERR_NOMEM with e
 * filled (path set).  Release with mapfile_release().
 */
int mapfile_open(struct mapfile *m, const char *path, struct err *e);

/* Unmap; safe on a zeroed or already released struct. */
void mapfile_release(struct mapfile *m);

#endif
