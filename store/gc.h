/* SPDX-License-Identifier: MIT */
/*
 * gc.h - garbage collection: pruning history, dropping images nothing
 * names, and reclaiming the nodes, content lists and chunks no kept image
 * reaches, pack files included. A lazy record (lazy.h) is kept while a kept
 * image reaches its chunk and the chunk is not local; then it goes too.
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
 * exclusive (cairn_gc_lock()); whatever publishes an image (import,
 * commit, a pull) holds it shared until it has.
 *
 * Naming while gc runs (tag, rmi, upgrade, rollback, a mount starting on
 * an image): gc never takes what a name points at, by the store's epoch
 * (format.h), which every naming transaction bumps and in which it checks
 * that the image it names is still in the store:
 *   1. gc reads the names (tags, platforms, history) in a read
 *      transaction and notes the epoch; then the leases (mount records:
 *      a mount writes its lease, then registers in a naming transaction);
 *   2. it marks everything those images reach (the long part);
 *   3. it deletes every image record none of them names, in one synced
 *      transaction that first checks the epoch is still the one of step 1.
 *      When a name moved meanwhile, nothing is deleted: gc marks again
 *      from the new names and leases (only what is new is walked) and
 *      retries, up to 20 rounds;
 *   4. from then on a name can only point at a kept image: a verb that
 *      names a deleted image fails its check ("not in the store"), one
 *      that names a kept image names what step 2 marked. So the sweep of
 *      nodes, content lists and chunks that follows, in many small
 *      transactions, takes nothing a name reaches.
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
	/*
	 * Reads the leases afresh (or NULL): called at each marking round,
	 * after the round's names are read. *out is malloc'ed (freed by gc);
	 * 0 or -errno. Its leases come in addition to leases above.
	 */
	int (*leases_fn)(void *ctx, struct cairn_id **out, size_t *n);
	void *ctx;
	double repack_below;            /* rewrite a pack whose live share is below this */
};

struct cairn_gc_stats {
	uint64_t generations, images, layers, nodes, contents, chunks; /* deleted */
	uint64_t lazy;   /* lazy records deleted: no kept image needs the chunk, or it is local */
	uint64_t packs_rewritten, packs_removed;
	uint64_t pack_bytes_before, pack_bytes_after;
	uint32_t rounds; /* marking rounds (more than one: names moved while gc marked) */
};

/*
 * Takes the gc lock: exclusive for gc (fails with -EBUSY while an import
 * holds it), shared for an import (waits for a running gc). Returns an fd
 * to close to release it, or -errno.
 */
int cairn_gc_lock(struct cairn_store *s, bool exclusive);

int cairn_gc(struct cairn_store *s, const struct cairn_gc_opts *o, struct cairn_gc_stats *st);

#endif
