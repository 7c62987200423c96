/* SPDX-License-Identifier: MIT */
/*
 * chunk.h - encoding and decoding chunk values (zstd or raw).
 *
 * A chunk value is struct cairn_chunk_disk followed by the payload. A chunk
 * is stored raw when zstd does not save at least 1/32 of it. Decoding always
 * checks the decoded bytes against the chunk id: a mismatch is -EIO, never
 * wrong bytes handed back.
 *
 * struct cairn_zctx holds one compression and one decompression context;
 * each thread uses its own (zstd contexts are not thread-safe).
 */
#ifndef CAIRN_CHUNK_H
#define CAIRN_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct cairn_zctx {
	void *cctx; /* ZSTD_CCtx, made on first use */
	void *dctx; /* ZSTD_DCtx, made on first use */
};

void cairn_zctx_release(struct cairn_zctx *z);

/*
 * Encodes raw[0..len) as a chunk value appended to out (out->len grows by the
 * value's size). Returns 0 or -errno.
 */
int cairn_chunk_encode(struct cairn_zctx *z, int level, bool untrusted, const void *raw,
		       size_t len, struct cairn_buf *out);

/* Parses the header of a value; returns 0 or -EUCLEAN for a malformed one. */
int cairn_chunk_header(const void *val, size_t vlen, uint32_t *raw_len, uint8_t *flags);

/*
 * Decodes a chunk value into out[0..cap), cap >= raw_len, and checks the
 * bytes hash to id (id NULL: no check). Returns the decoded length or
 * -EIO (corrupt, with a message) / -errno.
 */
long cairn_chunk_decode(struct cairn_zctx *z, const struct cairn_id *id, const void *val,
			size_t vlen, void *out, size_t cap);

#endif
