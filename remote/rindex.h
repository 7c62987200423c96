/* SPDX-License-Identifier: MIT */
/*
 * rindex.h - what a remote holds, and where: the union of pack indexes
 * (layout.h) read from the bucket, as one hash table keyed by (kind, id).
 *
 * Everything in it came from the remote and is untrusted: an entry only
 * says where to look. Whoever fetches an object checks it against its id.
 */
#ifndef CAIRN_RINDEX_H
#define CAIRN_RINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "remote.h"

struct cairn_robj {
	struct cairn_id id;
	uint8_t kind;      /* enum cairn_rkind; 0: an empty slot */
	uint8_t reserved[3];
	uint32_t pack;     /* index into packs[] */
	uint32_t len;      /* the entry's bytes, header included */
	uint64_t offset;   /* of the entry in its pack */
};

struct cairn_rindex {
	struct cairn_robj *slots;
	size_t cap, count;
	struct cairn_id *packs;  /* every pack read so far */
	uint64_t *pack_sizes;
	size_t npacks, cappacks;
};

void cairn_rindex_init(struct cairn_rindex *x);
void cairn_rindex_release(struct cairn_rindex *x);

/*
 * Adds the records of one pack index (the bytes of packs/ID.idx). The index
 * must name pack and be well formed (-EUCLEAN with a message). An object
 * already known keeps its first place. Returns the pack's number.
 */
int cairn_rindex_add(struct cairn_rindex *x, const struct cairn_id *pack, const void *idx,
		     size_t len);

/* The object (kind, id), or NULL. Valid until the next add. */
const struct cairn_robj *cairn_rindex_find(const struct cairn_rindex *x, uint8_t kind,
					   const struct cairn_id *id);
/* The pack number of pack, or -ENOENT. */
int cairn_rindex_pack(const struct cairn_rindex *x, const struct cairn_id *pack);

/* Reads the indexes of these packs (n of them), many at once. */
int cairn_rindex_fetch(struct cairn_rindex *x, struct cairn_remote_conn *c,
		       const struct cairn_id *packs, size_t n);
/* Reads the index of every pack the remote lists. */
int cairn_rindex_fetch_all(struct cairn_rindex *x, struct cairn_remote_conn *c);

#endif
