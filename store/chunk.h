/* SPDX-License-Identifier: MIT */
/*
 * chunk.h - chunk encoding (zstd or raw), pack entries and index records.
 *
 * A chunk is stored as a pack entry (struct cairn_pack_entry, then the
 * payload) in a pack file, and indexed by a struct cairn_chunk_disk in the
 * chunks database (format.h). A chunk is stored raw when zstd does not save
 * at least 1/32 of it. Every read checks the pack entry against the index
 * and the decoded bytes against the chunk id: a mismatch is -EIO with a
 * message, never wrong bytes handed back.
 *
 * struct cairn_zctx holds one compression context, one decompression
 * context and an I/O buffer; each thread uses its own.
 */
#ifndef CAIRN_CHUNK_H
#define CAIRN_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "util.h"

struct cairn_zctx {
	void *cctx;          /* ZSTD_CCtx, made on first use */
	void *dctx;          /* ZSTD_DCtx, made on first use */
	struct cairn_buf io; /* pack entries are read into it */
};

void cairn_zctx_release(struct cairn_zctx *z);

/* A decoded index record. */
struct cairn_chunk_ref {
	uint8_t codec, flags;
	uint32_t raw_len, len, pack;
	uint64_t offset;
};

/*
 * Appends a pack entry for raw[0..len) (whose id is id) to out. Returns 0
 * or -errno.
 */
int cairn_chunk_encode(struct cairn_zctx *z, int level, bool untrusted, const struct cairn_id *id,
		       const void *raw, size_t len, struct cairn_buf *out);

/* The index record for an entry written at offset of pack. */
void cairn_chunk_index(const void *entry, uint32_t pack, uint64_t offset,
		       struct cairn_chunk_disk *out);

/* Parses an index record; 0 or -EUCLEAN. */
int cairn_chunk_parse(const void *val, size_t vlen, struct cairn_chunk_ref *ref);
/* The same, for callers that want only the decoded length and flags. */
int cairn_chunk_header(const void *val, size_t vlen, uint32_t *raw_len, uint8_t *flags);

/*
 * Decodes a pack entry (header and payload, elen bytes) into out[0..cap).
 * With id, the entry must be id's, and with verify the decoded bytes must
 * hash to id. Returns the decoded length, -EIO with a message, or -errno.
 * Reading a stored chunk goes through source.h, which calls this.
 */
long cairn_chunk_decode_entry(struct cairn_zctx *z, const struct cairn_id *id, bool verify,
			      const void *entry, size_t elen, void *out, size_t cap);

#endif
