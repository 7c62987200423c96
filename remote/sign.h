/* SPDX-License-Identifier: MIT */
/*
 * sign.h - Ed25519 signatures on remote pointers (nettle's hogweed).
 *
 * Ids verify every object of a remote but the pointers: a tag or a
 * platform generation says "this name is at this image", which only a
 * signature can vouch for. A private key is a file holding 64 hex digits
 * (the 32-byte Ed25519 seed) and a newline, mode 0600; its public key is
 * 64 hex digits, given to 'remote add --trust'.
 */
#ifndef CAIRN_SIGN_H
#define CAIRN_SIGN_H

#include <stdint.h>

#include "layout.h"

#define CAIRN_KEY_LEN 32
#define CAIRN_SIG_LEN 64

struct cairn_signer {
	uint8_t priv[CAIRN_KEY_LEN];
	uint8_t pub[CAIRN_KEY_LEN];
};

/* Makes a new key pair, writes the private key to path (0600, refused when it exists). */
int cairn_sign_keygen(const char *path, struct cairn_signer *out);
/* Reads a private key file (which must not be readable by others). */
int cairn_sign_load(const char *path, struct cairn_signer *out);
void cairn_sign_release(struct cairn_signer *k);

/* Signs p (sets p->is_signed and p->signature). */
int cairn_sign_pointer(const struct cairn_signer *k, struct cairn_rptr *p);
/* 0 when p carries a valid signature by pub; -EPERM with a message otherwise. */
int cairn_sign_check(const uint8_t pub[CAIRN_KEY_LEN], const struct cairn_rptr *p);

/* 64 lowercase hex digits and a NUL. */
void cairn_sign_hex(const uint8_t key[CAIRN_KEY_LEN], char out[2 * CAIRN_KEY_LEN + 1]);

#endif
