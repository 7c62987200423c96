/* SPDX-License-Identifier: MIT */
/*
 * chunker.c - content-defined chunking, FastCDC with normalized masks.
 *
 * The gear hash h = (h << 1) + gear[byte] forgets a byte after 64 steps,
 * so its value at any position is a function of the 64 bytes ending there
 * and nothing else. We start hashing 64 bytes before the first possible
 * cut (min >= 64 makes that always inside the chunk), so every cut test
 * sees a full window: whether a position is a cut point depends only on
 * the bytes around it, never on where the chunk began. That is what lets
 * cut points line up again after an insertion, and what makes the result
 * independent of how the caller's input was split into calls.
 *
 * Mask bits sit in the high part of the word, where every bit depends on
 * many bytes of the window; the low bits of a gear hash see only the last
 * few bytes.
 */
#include <errno.h>

#include "chunker.h"
#include "format.h"

/* Bytes hashed before the first cut test; the full width of the hash. */
#define CHUNKER_WINDOW 64u
/* The mask bits are spread over bits [64 - CHUNKER_MASK_SPAN, 64). */
#define CHUNKER_MASK_SPAN 48u

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* nbits one-bits spread evenly over the high CHUNKER_MASK_SPAN bits, top bit set. */
static uint64_t chunker_mask(unsigned int nbits)
{
	uint64_t mask = 0;

	for (unsigned int k = 0; k < nbits; k++)
		mask |= 1ull << (63 - k * CHUNKER_MASK_SPAN / nbits);
	return mask;
}

int cairn_chunker_init(struct cairn_chunker *c, const struct cairn_chunker_params *p)
{
	unsigned int bits;
	uint64_t state;

	if (!c || !p)
		return -EINVAL;
	if (p->min < CHUNKER_WINDOW || p->avg <= p->min || p->max <= p->avg ||
	    p->max > CAIRN_CHUNK_MAX_LIMIT || (p->avg & (p->avg - 1)) != 0)
		return -EINVAL;

	/* avg > min >= 64 and avg < max <= 4 MiB: bits is in [7, 21] */
	bits = (unsigned int)__builtin_ctz(p->avg);
	c->p = *p;
	c->mask_small = chunker_mask(bits + 2);
	c->mask_large = chunker_mask(bits - 2);
	state = p->seed;
	for (unsigned int i = 0; i < 256; i++)
		c->gear[i] = splitmix64(&state);
	return 0;
}

/*
 * First i in [from, to) whose hash, after adding buf[i], has no bit of mask
 * set; to if there is none. *h carries the hash across calls.
 */
static inline size_t chunker_scan(const uint64_t *gear, uint64_t mask, const uint8_t *buf,
				  size_t from, size_t to, uint64_t *h)
{
	uint64_t v = *h;
	size_t i = from;

	/* four bytes a round: one loop test per four mask tests */
	for (; i + 4 <= to; i += 4) {
		v = (v << 1) + gear[buf[i]];
		if (!(v & mask))
			goto out;
		v = (v << 1) + gear[buf[i + 1]];
		if (!(v & mask)) {
			i += 1;
			goto out;
		}
		v = (v << 1) + gear[buf[i + 2]];
		if (!(v & mask)) {
			i += 2;
			goto out;
		}
		v = (v << 1) + gear[buf[i + 3]];
		if (!(v & mask)) {
			i += 3;
			goto out;
		}
	}
	for (; i < to; i++) {
		v = (v << 1) + gear[buf[i]];
		if (!(v & mask))
			goto out;
	}
out:
	*h = v;
	return i;
}

size_t cairn_chunker_next(const struct cairn_chunker *c, const uint8_t *buf, size_t len,
			  int final)
{
	size_t min = c->p.min, avg = c->p.avg, max = c->p.max;
	size_t end, small_end, i;
	uint64_t h = 0;

	if (len <= min)
		return final ? len : 0;

	/*
	 * A cut after buf[i] gives a chunk of i + 1 bytes; candidates are
	 * lengths min..end. Warm the window on the 63 bytes before buf[min - 1].
	 */
	end = len < max ? len : max;
	small_end = end < avg ? end : avg - 1;
	for (i = min - CHUNKER_WINDOW; i < min - 1; i++)
		h = (h << 1) + c->gear[buf[i]];

	/* the stricter mask for lengths below avg, the looser one from avg on */
	i = chunker_scan(c->gear, c->mask_small, buf, min - 1, small_end, &h);
	if (i < small_end)
		return i + 1;
	i = chunker_scan(c->gear, c->mask_large, buf, small_end, end, &h);
	if (i < end)
		return i + 1;

	if (end == max)
		return max;
	return final ? len : 0;
}
