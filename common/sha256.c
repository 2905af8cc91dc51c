/*
 * sha256.c - SHA-256 via OpenSSL EVP (see sha256.h).
 */
#include "sha256.h"
#include "alloc.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

/* large reads keep the digest, not the syscalls, the bottleneck */
#define SHA256_CHUNK ((size_t)1 << 20)

int sha256_init(struct sha256 *h, struct err *e)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	h->ctx = NULL;
	if (!c)
		return err_set(e, ERR_NOMEM, "out of memory starting a sha-256 digest");
	if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return err_set(e, ERR_INTERNAL, "sha-256 is not available from libcrypto");
	}
	h->ctx = c;
	return 0;
}

int sha256_update(struct sha256 *h, const void *buf, size_t n, struct err *e)
{
	if (!h->ctx)
		return err_set(e, ERR_INTERNAL, "sha-256 digest used before init");
	if (n && EVP_DigestUpdate(h->ctx, buf, n) != 1)
		return err_set(e, ERR_INTERNAL, "sha-256 update failed");
	return 0;
}

int sha256_final(struct sha256 *h, unsigned char out[SHA256_LEN], struct err *e)
{
	unsigned int len = 0;
	int rc = 0;
	if (!h->ctx)
		return err_set(e, ERR_INTERNAL, "sha-256 digest used before init");
	if (EVP_DigestFinal_ex(h->ctx, out, &len) != 1 || len != SHA256_LEN)
		rc = err_set(e, ERR_INTERNAL, "sha-256 final failed");
	sha256_release(h);
	return rc;
}

void sha256_release(struct sha256 *h)
{
	if (h && h->ctx) {
		EVP_MD_CTX_free(h->ctx);
		h->ctx = NULL;
	}
}

int sha256_buffer(const void *buf, size_t n, unsigned char out[SHA256_LEN],
		  struct err *e)
{
	struct sha256 h;
	int rc = sha256_init(&h, e);
	if (rc)
		return rc;
	if ((rc = sha256_update(&h, buf, n, e)) < 0) {
		sha256_release(&h);
		return rc;
	}
	return sha256_final(&h, out, e);
}

int sha256_fd(int fd, unsigned char out[SHA256_LEN], uint64_t *size,
	      struct err *e)
{
	struct sha256 h;
	unsigned char *buf = NULL;
	uint64_t total = 0;
	int rc;

	if ((rc = sha256_init(&h, e)) < 0)
		return rc;
	buf = xmalloc(SHA256_CHUNK);
	if (!buf) {
		rc = err_set(e, ERR_NOMEM, "out of memory reading for sha-256");
		goto out;
	}
	for (;;) {
		ssize_t got = read(fd, buf, SHA256_CHUNK);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			rc = err_set_errno(e, ERR_IO, "cannot read");
			goto out;
		}
		if (got == 0)
			break;
		if ((rc = sha256_update(&h, buf, (size_t)got, e)) < 0)
			goto out;
		total += (uint64_t)got;
	}
	rc = sha256_final(&h, out, e);
	if (size)
		*size = total;
out:
	xfree(buf);
	sha256_release(&h);
	return rc;
}

int sha256_file(const char *path, unsigned char out[SHA256_LEN],
		uint64_t *size, struct err *e)
{
	err_set_path(e, path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO,
				     "cannot open");
	int rc = sha256_fd(fd, out, size, e);
	close(fd);
	return rc;
}

void sha256_to_hex(const unsigned char d[SHA256_LEN],
		   char hex[SHA256_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < SHA256_LEN; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[SHA256_HEX_LEN] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool sha256_from_hex(const char *s, size_t len, unsigned char d[SHA256_LEN])
{
	if (!s || len != SHA256_HEX_LEN)
		return false;
	for (size_t i = 0; i < SHA256_LEN; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		d[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

bool sha256_hex_valid(const char *s)
{
	if (!s)
		return false;
	for (size_t i = 0; i < SHA256_HEX_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[SHA256_HEX_LEN] == '\0';
}
