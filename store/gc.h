/* SPDX-License-Identifier: MIT */
/*
 * gc.h - garbage collection: pruning history, dropping images nothing
 * names, and reclaiming the nodes, content lists and chunks no kept image
 * reaches, pack files included.
 *
 * What is kept: every tagged image, every image a platform's remaining
 * history names (the current generation always), and every image a lease
 * names (the images running mounts serve or served to files still open).
 * Everything gc deletes goes in bounded transactions; a kill at any moment
 * leaves the store consistent (an object is deleted only once nothing
 * kept references it; a pack is rewritten, synced and re-indexed before
 * the old one is unlinked).
 *
 * Imports write records that nothing references until they publish, so gc
 * must not run beside one: both take STORE/gc.lock, imports shared, gc
 * exclusive (cairn_gc_lock()).
 */
#ifndef CAIRN_GC_H
#define CAIRN_GC_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

struct cairn_gc_opts {
	int64_t keep;                   /* generations kept per platform; < 0: all */
	const struct cairn_id *leases;  /* images to keep whatever names them */
	size_t nleases;
	double repack_below;            /* rewrite a pack whose live share is below this */
};

struct cairn_gc_stats {
	uint64_t generations, images, layers, nodes, contents, chunks; /* deleted */
	uint64_t packs_rewritten, packs_removed;
	uint64_t pack_bytes_before, pack_bytes_after;
};

/*
 * Takes the gc lock: exclusive for gc (fails with -EBUSY while an import
 * holds it), shared for an import (waits for a running gc). Returns an fd
 * to close to release it, or -errno.
 */
int cairn_gc_lock(struct cairn_store *s, bool exclusive);

int cairn_gc(struct cairn_store *s, const struct cairn_gc_opts *o, struct cairn_gc_stats *st);

#endif
