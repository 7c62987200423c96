/* SPDX-License-Identifier: MIT */
/*
 * chunker.h - content-defined chunking (FastCDC-style, normalized).
 *
 * A gear rolling hash over the bytes picks cut points that depend only on
 * nearby content, so inserting bytes early in a file moves only the chunks
 * around the insertion; later cut points line up again. Normalized
 * chunking uses a stricter mask below the average size and a looser one
 * above it, which narrows the size distribution around the average.
 *
 * The gear table is generated from a seed (splitmix64), which the store
 * records with the sizes in its metadata: the cut points of a store are a
 * function of (bytes, seed, min, avg, max) alone.
 */
#ifndef CAIRN_CHUNKER_H
#define CAIRN_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

struct cairn_chunker_params {
	uint32_t min;  /* no cut before min bytes (except at end of input) */
	uint32_t avg;  /* a power of two, min < avg < max */
	uint32_t max;  /* always cut at max bytes; <= CAIRN_CHUNK_MAX_LIMIT */
	uint64_t seed; /* gear table seed */
};

#define CAIRN_CHUNK_MIN_DEFAULT (16u << 10)
#define CAIRN_CHUNK_AVG_DEFAULT (64u << 10)
#define CAIRN_CHUNK_MAX_DEFAULT (256u << 10)
#define CAIRN_GEAR_SEED_DEFAULT 0x636169726e676561ull /* "cairngea" */

/* Gear table and masks for one parameter set; embedded in the caller's state. */
struct cairn_chunker {
	struct cairn_chunker_params p;
	uint64_t mask_small; /* used below avg: more one-bits, cuts rarer */
	uint64_t mask_large; /* used from avg on: fewer one-bits, cuts likelier */
	uint64_t gear[256];
};

/* Validates params and fills the table. Returns 0 or -EINVAL. */
int cairn_chunker_init(struct cairn_chunker *c, const struct cairn_chunker_params *p);

/*
 * Length of the next chunk at the start of buf[0..len). If len <= min, or
 * no cut point is found before len and !final, the answer is len when
 * final and 0 when more bytes are needed ("call again with more"). A
 * result never exceeds max. Stateless between calls: the caller keeps the
 * unconsumed bytes and calls again from the start of the next chunk.
 */
size_t cairn_chunker_next(const struct cairn_chunker *c, const uint8_t *buf, size_t len,
			  int final);

#endif
