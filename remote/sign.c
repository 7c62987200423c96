/* SPDX-License-Identifier: MIT */
/*
 * sign.c - Ed25519 keys and pointer signatures (sign.h).
 */
#include "sign.h"

#include <fcntl.h>
#include <nettle/eddsa.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

void cairn_sign_hex(const uint8_t key[CAIRN_KEY_LEN], char out[2 * CAIRN_KEY_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";

	for (unsigned i = 0; i < CAIRN_KEY_LEN; i++) {
		out[2 * i] = hex[key[i] >> 4];
		out[2 * i + 1] = hex[key[i] & 15];
	}
	out[2 * CAIRN_KEY_LEN] = '\0';
}

void cairn_sign_release(struct cairn_signer *k)
{
	explicit_bzero(k, sizeof(*k));
}

int cairn_sign_keygen(const char *path, struct cairn_signer *out)
{
	char hex[2 * CAIRN_KEY_LEN + 2], ebuf[128];
	cleanup_fd int fd = -1;

	if (getrandom(out->priv, sizeof(out->priv), 0) != (ssize_t)sizeof(out->priv))
		return cairn_err(-EIO, "no random bytes for a key");
	ed25519_sha512_public_key(out->pub, out->priv);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return cairn_err(-errno, "cannot create key '%s': %s", path,
				 cairn_strerror(errno, ebuf, sizeof(ebuf)));
	cairn_sign_hex(out->priv, hex);
	hex[2 * CAIRN_KEY_LEN] = '\n';
	if (write(fd, hex, sizeof(hex) - 1) != (ssize_t)sizeof(hex) - 1 || fsync(fd) < 0) {
		int err = errno ? errno : EIO;

		explicit_bzero(hex, sizeof(hex));
		unlink(path);
		return cairn_err(-err, "cannot write key '%s'", path);
	}
	explicit_bzero(hex, sizeof(hex));
	return 0;
}

int cairn_sign_load(const char *path, struct cairn_signer *out)
{
	cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char buf[128], ebuf[128];
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return cairn_err(-errno, "cannot read key '%s': %s", path,
				 cairn_strerror(errno, ebuf, sizeof(ebuf)));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return cairn_err(-EINVAL, "key '%s' is not a regular file", path);
	if (st.st_mode & 077)
		return cairn_err(-EPERM, "key '%s' is readable by others (mode %04o): chmod 600 it",
				 path, (unsigned)(st.st_mode & 07777));
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 2 * CAIRN_KEY_LEN)
		return cairn_err(-EINVAL, "key '%s' does not hold 64 hex digits", path);
	for (unsigned i = 0; i < CAIRN_KEY_LEN; i++) {
		unsigned v;

		if (sscanf(buf + 2 * i, "%2x", &v) != 1) {
			explicit_bzero(buf, sizeof(buf));
			return cairn_err(-EINVAL, "key '%s' does not hold 64 hex digits", path);
		}
		out->priv[i] = (uint8_t)v;
	}
	explicit_bzero(buf, sizeof(buf));
	ed25519_sha512_public_key(out->pub, out->priv);
	return 0;
}

int cairn_sign_pointer(const struct cairn_signer *k, struct cairn_rptr *p)
{
	struct cairn_buf m = { 0 };
	int ret = cairn_rptr_message(p, &m);

	if (ret)
		return ret;
	ed25519_sha512_sign(k->pub, k->priv, m.len, m.data, p->signature);
	p->is_signed = true;
	cairn_buf_release(&m);
	return 0;
}

int cairn_sign_check(const uint8_t pub[CAIRN_KEY_LEN], const struct cairn_rptr *p)
{
	struct cairn_buf m = { 0 };
	int ret, ok;

	if (!p->is_signed)
		return cairn_err(-EPERM, "'%s' is not signed, and the remote is trusted only with "
					 "a signature", p->name);
	ret = cairn_rptr_message(p, &m);
	if (ret)
		return ret;
	ok = ed25519_sha512_verify(pub, m.len, m.data, p->signature);
	cairn_buf_release(&m);
	return ok ? 0 : cairn_err(-EPERM, "'%s' is not signed by the trusted key", p->name);
}
