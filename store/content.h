/* SPDX-License-Identifier: MIT */
/*
 * content.h - content ids: what names a regular file's bytes (format.h,
 * "Content id").
 *
 * A content id is a function of the file's logical bytes alone, never of
 * the store's chunking or of the source's sparse allocation, and a hole
 * costs O(1) to hash: the bytes are cut at fixed offsets into blocks of
 * CAIRN_HOLE_BLOCK, maximal runs of whole zero blocks are holes, and the id
 * covers the data runs' bytes and the holes' lengths. A file with no hole
 * is named by XXH3-128 of its bytes, so a file that is one chunk has the
 * chunk's id.
 *
 * The streaming hasher is fed the runs in file order by a caller that has
 * already classified the bytes (the writer does it block by block; fsck
 * walks a stored extent list). cairn_content_id() is the whole definition
 * in one call, over a buffer, for tests and fuzzers.
 */
#ifndef CAIRN_CONTENT_H
#define CAIRN_CONTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct cairn_content_hash {
	void *run;      /* XXH3_state_t: the current data run (the whole file until a hole) */
	void *outer;    /* XXH3_state_t: the run records, from the first hole on */
	uint64_t size;  /* bytes fed so far */
	uint64_t run_len;
	uint64_t hole_len; /* the hole being fed, not yet recorded */
	bool sparse;    /* a hole was fed */
	bool blk_zero;  /* cairn_content_hash_check(): the block being fed is zero so far */
};

/* Allocates the hash states. 0 or -ENOMEM. */
int cairn_content_hash_init(struct cairn_content_hash *h);
void cairn_content_hash_release(struct cairn_content_hash *h);

/* Starts a new file. */
void cairn_content_hash_begin(struct cairn_content_hash *h);
/*
 * Bytes of a data run: never a whole aligned zero block (the caller
 * classified them). Consecutive calls extend one run.
 */
void cairn_content_hash_data(struct cairn_content_hash *h, const void *buf, size_t len);
/*
 * The same, for bytes of a stored list being checked (fsck, a content list
 * from a remote), at file offset off: false when they complete a whole
 * aligned block of zeros, which a canonical list holds as a hole (the list
 * is then not what any writer makes of its bytes).
 */
bool cairn_content_hash_check(struct cairn_content_hash *h, const void *buf, size_t len,
			      uint64_t off);
/* A hole of len bytes (a multiple of CAIRN_HOLE_BLOCK, at an aligned offset). */
void cairn_content_hash_hole(struct cairn_content_hash *h, uint64_t len);
/* The content id of what was fed; true when it held a hole. */
bool cairn_content_hash_end(struct cairn_content_hash *h, struct cairn_id *out);

/* True when p[0..len) is all zero bytes. */
bool cairn_all_zero(const void *p, size_t len);

/*
 * The content id of a whole file held in memory (the definition in one
 * call). 0 or -ENOMEM.
 */
int cairn_content_id(const void *data, uint64_t len, struct cairn_id *out);

/*
 * The content kind a file of these properties must have (canonical, so that
 * node ids do not depend on chunking): EMPTY for no bytes, CHUNK for a file
 * of at most CAIRN_ONE_CHUNK_MAX bytes with no hole, LIST otherwise.
 */
uint8_t cairn_content_kind_for(uint64_t size, bool sparse);

#endif
