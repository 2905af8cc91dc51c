/*
 * mapfile.c - read-only whole-file mapping (see mapfile.h).
 */
#include "mapfile.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

int mapfile_open(struct mapfile *m, const char *path, struct err *e)
{
	struct stat st;
	int fd, rc = 0;

	m->data = NULL;
	m->len = 0;
	m->mapped = 0;
	err_set_path(e, path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO,
				     "cannot open");
	if (fstat(fd, &st) < 0) {
		rc = err_set_errno(e, ERR_IO, "cannot stat");
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = err_set(e, ERR_IO, "is a directory");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = err_set(e, ERR_IO, "not a regular file");
		goto out;
	}
	if (st.st_size == 0) {
		static const unsigned char empty[1];
		m->data = empty;
		goto out;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		rc = err_set_errno(e, ERR_IO, "cannot map");
		goto out;
	}
	madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL | MADV_WILLNEED);
	m->data = p;
	m->len = (size_t)st.st_size;
	m->mapped = 1;
out:
	close(fd);
	return rc;
}

void mapfile_release(struct mapfile *m)
{
	if (m->mapped && m->data)
		munmap((void *)m->data, m->len);
	m->data = NULL;
	m->len = 0;
	m->mapped = 0;
}
