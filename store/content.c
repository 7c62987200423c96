/* SPDX-License-Identifier: MIT */
/*
 * content.c - content ids (see content.h and format.h).
 *
 * cairn_content_make() walks the file block by block exactly as the
 * writer streams it: a whole aligned zero block extends a hole, anything
 * else extends a data run, and a data run is cut by the chunker from its
 * start when the hole after it (or the end) closes it. The chunker keeps no
 * state between calls, so where the writer happens to cut a run while
 * streaming makes no difference to the result.
 */
#include "content.h"

#include <xxhash.h>

#include "node.h"

void cairn_content_list_id(const void *val, size_t len, struct cairn_id *out)
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits_withSeed(val, len, CAIRN_LIST_SEED));
	memcpy(out->b, c.digest, CAIRN_ID_LEN);
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

uint8_t cairn_content_kind_for(uint64_t size, bool sparse)
{
	if (size == 0)
		return CAIRN_CONTENT_EMPTY;
	return !sparse && size <= CAIRN_ONE_CHUNK_MAX ? CAIRN_CONTENT_CHUNK : CAIRN_CONTENT_LIST;
}

static int extent_add(struct cairn_buf *ext, uint64_t end, const struct cairn_id *id)
{
	struct cairn_extent_disk e;

	CAIRN_SET(e.end, end);
	memcpy(e.id, id->b, CAIRN_ID_LEN);
	return cairn_buf_append(ext, &e, sizeof(e));
}

/* Cuts the data run p[start..end) into chunks. */
static int run_cut(const struct cairn_chunker *c, const uint8_t *p, uint64_t start,
		   uint64_t end, struct cairn_buf *ext)
{
	while (start < end) {
		size_t n = cairn_chunker_next(c, p + start, (size_t)(end - start), 1);
		struct cairn_id id;
		int ret;

		cairn_hash(p + start, n, &id);
		start += n;
		ret = extent_add(ext, start, &id);
		if (ret)
			return ret;
	}
	return 0;
}

int cairn_content_make(const struct cairn_chunker *c, const void *data, uint64_t len,
		       uint8_t *kind, struct cairn_id *id, struct cairn_buf *list)
{
	static const struct cairn_id hole_id;
	const uint8_t *p = data;
	struct cairn_buf ext = { 0 }, rec = { 0 };
	uint64_t run = 0; /* where the open data run began */
	bool in_hole = false, sparse = false;
	int ret = 0;

	for (uint64_t off = 0; off < len && !ret; off += CAIRN_HOLE_BLOCK) {
		size_t n = len - off < CAIRN_HOLE_BLOCK ? (size_t)(len - off) : CAIRN_HOLE_BLOCK;
		/* a shorter last block is data even when it is zero */
		bool zero = n == CAIRN_HOLE_BLOCK && cairn_all_zero(p + off, n);

		if (zero && !in_hole) {
			ret = run_cut(c, p, run, off, &ext);
			in_hole = sparse = true;
		} else if (!zero && in_hole) {
			ret = extent_add(&ext, off, &hole_id);
			in_hole = false;
			run = off;
		}
	}
	if (!ret)
		ret = in_hole ? extent_add(&ext, len, &hole_id) : run_cut(c, p, run, len, &ext);
	*kind = cairn_content_kind_for(len, sparse);
	if (!ret && *kind != CAIRN_CONTENT_LIST) {
		cairn_hash(p, (size_t)len, id);
	} else if (!ret) {
		ret = cairn_content_encode((const struct cairn_extent_disk *)ext.data,
					   (uint32_t)(ext.len / sizeof(struct cairn_extent_disk)),
					   len, &rec);
		if (!ret)
			cairn_content_list_id(rec.data, rec.len, id);
		if (!ret && list)
			ret = cairn_buf_append(list, rec.data, rec.len);
	}
	cairn_buf_release(&ext);
	cairn_buf_release(&rec);
	return ret;
}
