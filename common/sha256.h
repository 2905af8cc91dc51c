/*
 * sha256.h - SHA-256 through OpenSSL libcrypto's EVP interface.
 *
 * The archive names every blob by the SHA-256 of its bytes (FIPS 180-4,
 * https://csrc.nist.gov/pubs/fips/180-4/upd1/final), written as 64
 * lower-case hex digits.  One struct sha256 per thread; the functions
 * keep no global state and are safe to call from OpenMP workers.
 */
#ifndef REFSCAN_SHA256_H
#define REFSCAN_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;

#define SHA256_LEN 32
#define SHA256_HEX_LEN 64 /* without the NUL */

struct sha256 {
	void *ctx; /* EVP_MD_CTX *, owned */
};

/* Start a digest.  Returns 0 or ERR_NOMEM/ERR_INTERNAL (e filled). */
int sha256_init(struct sha256 *h, struct err *e);
/* Feed n bytes.  Returns 0 or ERR_INTERNAL. */
int sha256_update(struct sha256 *h, const void *buf, size_t n, struct err *e);
/* Finish into out[SHA256_LEN] and release the context. */
int sha256_final(struct sha256 *h, unsigned char out[SHA256_LEN], struct err *e);
/* Release without finishing (safe on a finished or zeroed struct). */
void sha256_release(struct sha256 *h);

/* One-shot digest of a buffer. */
int sha256_buffer(const void *buf, size_t n, unsigned char out[SHA256_LEN],
		  struct err *e);

/*
 * Digest of a file's bytes, read with read(2) in large chunks.  *size
 * receives the byte count actually read.  Returns 0, ERR_NOTFOUND or
 * ERR_IO (e->path set, strerror kept).
 */
int sha256_file(const char *path, unsigned char out[SHA256_LEN],
		uint64_t *size, struct err *e);

/* Same on an open descriptor, from its current offset to the end. */
int sha256_fd(int fd, unsigned char out[SHA256_LEN], uint64_t *size,
	      struct err *e);

/* 64 lower-case hex digits + NUL into hex[SHA256_HEX_LEN + 1]. */
void sha256_to_hex(const unsigned char d[SHA256_LEN],
		   char hex[SHA256_HEX_LEN + 1]);

/*
 * Parse exactly 64 hex digits (either case) from s (NUL not required
 * after them when len is 64).  Returns true on success.  Safe on
 * untrusted input.
 */
bool sha256_from_hex(const char *s, size_t len, unsigned char d[SHA256_LEN]);

/* True when s is exactly 64 lower-case hex digits followed by NUL. */
bool sha256_hex_valid(const char *s);

#endif
