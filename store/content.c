/* SPDX-License-Identifier: MIT */
/*
 * content.c - content ids (see content.h and format.h).
 *
 * Until the first hole, one XXH3-128 state sees the bytes, so a file with
 * no hole gets XXH3-128 of its bytes with no second pass. At the first
 * hole a second, seeded state starts taking run records: that state is
 * where a hole costs one record, whatever its length.
 */
#include "content.h"

#include <xxhash.h>

static void digest(XXH3_state_t *st, uint8_t out[CAIRN_ID_LEN])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
	memcpy(out, c.digest, CAIRN_ID_LEN);
}

static void record(struct cairn_content_hash *h, uint8_t type, uint64_t len,
		   const uint8_t *run_id)
{
	uint8_t rec[1 + 8 + CAIRN_ID_LEN];
	uint64_t le = htole64(len);
	size_t n = 1 + 8;

	rec[0] = type;
	memcpy(rec + 1, &le, 8);
	if (run_id) {
		memcpy(rec + n, run_id, CAIRN_ID_LEN);
		n += CAIRN_ID_LEN;
	}
	XXH3_128bits_update(h->outer, rec, n);
}

/* Records the data run fed so far, if any, and starts a new one. */
static void close_run(struct cairn_content_hash *h)
{
	uint8_t id[CAIRN_ID_LEN];

	if (!h->run_len)
		return;
	digest(h->run, id);
	record(h, CAIRN_SPARSE_DATA, h->run_len, id);
	h->run_len = 0;
	XXH3_128bits_reset(h->run);
}

static void close_hole(struct cairn_content_hash *h)
{
	if (!h->hole_len)
		return;
	record(h, CAIRN_SPARSE_HOLE, h->hole_len, NULL);
	h->hole_len = 0;
}

int cairn_content_hash_init(struct cairn_content_hash *h)
{
	memset(h, 0, sizeof(*h));
	h->run = XXH3_createState();
	h->outer = XXH3_createState();
	if (!h->run || !h->outer) {
		cairn_content_hash_release(h);
		return -ENOMEM;
	}
	cairn_content_hash_begin(h);
	return 0;
}

void cairn_content_hash_release(struct cairn_content_hash *h)
{
	XXH3_freeState(h->run);
	XXH3_freeState(h->outer);
	h->run = h->outer = NULL;
}

void cairn_content_hash_begin(struct cairn_content_hash *h)
{
	XXH3_128bits_reset(h->run);
	h->size = h->run_len = h->hole_len = 0;
	h->sparse = false;
}

void cairn_content_hash_data(struct cairn_content_hash *h, const void *buf, size_t len)
{
	if (!len)
		return;
	if (h->hole_len)
		close_hole(h);
	XXH3_128bits_update(h->run, buf, len);
	h->run_len += len;
	h->size += len;
}

bool cairn_content_hash_check(struct cairn_content_hash *h, const void *buf, size_t len,
			      uint64_t off)
{
	const uint8_t *p = buf;
	bool canonical = true;

	cairn_content_hash_data(h, buf, len);
	while (len) {
		size_t in = (size_t)(off % CAIRN_HOLE_BLOCK);
		size_t n = CAIRN_HOLE_BLOCK - in < len ? CAIRN_HOLE_BLOCK - in : len;

		if (in == 0)
			h->blk_zero = true;
		h->blk_zero = h->blk_zero && cairn_all_zero(p, n);
		if (in + n == CAIRN_HOLE_BLOCK && h->blk_zero)
			canonical = false;
		p += n;
		off += n;
		len -= n;
	}
	return canonical;
}

void cairn_content_hash_hole(struct cairn_content_hash *h, uint64_t len)
{
	static const char magic[] = CAIRN_SPARSE_MAGIC;

	if (!len)
		return;
	if (!h->sparse) {
		h->sparse = true;
		XXH3_128bits_reset_withSeed(h->outer, CAIRN_SPARSE_SEED);
		XXH3_128bits_update(h->outer, magic, sizeof(magic) - 1);
	}
	close_run(h);
	h->hole_len += len;
	h->size += len;
}

bool cairn_content_hash_end(struct cairn_content_hash *h, struct cairn_id *out)
{
	if (!h->sparse) {
		digest(h->run, out->b);
		return false;
	}
	close_run(h);
	close_hole(h);
	digest(h->outer, out->b);
	return true;
}

bool cairn_all_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t acc = 0;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t v;

		memcpy(&v, p + i, 8);
		acc |= v;
		if ((i & 511) == 504 && acc)
			return false;
	}
	for (; i < len; i++)
		acc |= p[i];
	return acc == 0;
}

int cairn_content_id(const void *data, uint64_t len, struct cairn_id *out)
{
	const uint8_t *p = data;
	struct cairn_content_hash h;
	int ret = cairn_content_hash_init(&h);

	if (ret)
		return ret;
	for (uint64_t off = 0; off < len; off += CAIRN_HOLE_BLOCK) {
		size_t n = len - off < CAIRN_HOLE_BLOCK ? (size_t)(len - off) : CAIRN_HOLE_BLOCK;

		/* a shorter last block is data even when it is zero */
		if (n == CAIRN_HOLE_BLOCK && cairn_all_zero(p + off, n))
			cairn_content_hash_hole(&h, n);
		else
			cairn_content_hash_data(&h, p + off, n);
	}
	cairn_content_hash_end(&h, out);
	cairn_content_hash_release(&h);
	return 0;
}

uint8_t cairn_content_kind_for(uint64_t size, bool sparse)
{
	if (size == 0)
		return CAIRN_CONTENT_EMPTY;
	return !sparse && size <= CAIRN_ONE_CHUNK_MAX ? CAIRN_CONTENT_CHUNK : CAIRN_CONTENT_LIST;
}
