/* SPDX-License-Identifier: MIT */
/*
 * cache.h - the daemon's cache of decoded chunks.
 *
 * Reads from many FUSE threads land on the same few chunks, and each chunk
 * costs a pack read and a zstd decode. This cache keeps decoded chunks in
 * memory under a byte budget, shared between threads by reference count.
 *
 * The one idea: the table holds a reference of its own. Eviction only
 * takes a chunk out of the table (so the budget counts what the table
 * keeps, and holds), and drops that reference; the memory goes at the last
 * cfs_chunk_unref(), whoever makes it. A reader never sees its bytes
 * vanish, and unref needs no lock.
 *
 * The cache is split into shards by id bits (ids are XXH3-128, so any bits
 * are uniform), each with its own mutex, hash table, LRU list and an equal
 * share of the byte budget. Lookups are O(1); no large buffer is allocated
 * or freed under a shard lock.
 *
 * Locks: one mutex per shard, taken only inside these functions, never two
 * at a time, and never while calling out of the cache. So there is no lock
 * order to keep among them, and a caller may hold any lock of its own
 * (an inode's, a file handle's) across every call here. A chunk's reference
 * count is atomic and needs no lock.
 *
 * All functions are thread-safe except cfs_cache_free().
 */
#ifndef CAIRN_FS_CACHE_H
#define CAIRN_FS_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct cfs_cache;

/* Private: a link in a shard's LRU list. */
struct cfs_cache_link {
	struct cfs_cache_link *prev, *next;
};

/*
 * A decoded chunk, shared and reference counted. The caller may read id,
 * len and data while it holds a reference; data is read-only once the
 * chunk is inserted.
 */
struct cfs_chunk {
	struct cairn_id id;
	uint32_t len;
	uint8_t *data;               /* len bytes, owned by the chunk */

	/* Private, the cache's own. */
	atomic_uint refs;            /* holders, the table counting as one */
	struct cfs_chunk *hnext;     /* hash chain, under the shard lock */
	struct cfs_chunk **hpprev;
	struct cfs_cache_link lru;   /* under the shard lock */
};

/*
 * A new cache of at most max_bytes of chunk data (the table's; chunks that
 * were evicted while referenced are not counted) in shards shards, a power
 * of two (0: 16). Each shard keeps max_bytes / shards. Returns 0, -EINVAL
 * for a bad shard count, or -ENOMEM.
 */
int cfs_cache_new(size_t max_bytes, unsigned shards, struct cfs_cache **out);

/*
 * Frees the cache and every chunk in it. No chunk may be referenced by
 * anyone but the cache, and no other thread may be using c.
 */
void cfs_cache_free(struct cfs_cache *c);

/*
 * The chunk with this id, referenced (release it with cfs_chunk_unref()),
 * and marked most recently used; counts a hit. NULL on a miss, which is
 * counted too: the caller is then expected to decode and insert it.
 */
struct cfs_chunk *cfs_cache_get(struct cfs_cache *c, const struct cairn_id *id);

/*
 * Inserts a decoded chunk, taking ownership of data (from malloc(), len
 * bytes; NULL is fine when len is 0), and returns it referenced. To stay
 * within its budget the shard evicts its least recently used chunks.
 *
 * If the id is already present (another thread decoded it meanwhile),
 * data is freed and the existing chunk is returned referenced instead; the
 * pointer returned is the one to use. A chunk larger than a shard's budget
 * is returned referenced but not kept (counted as an insert and an
 * eviction). NULL only when memory ran out; data is freed then too.
 */
struct cfs_chunk *cfs_cache_insert(struct cfs_cache *c, const struct cairn_id *id,
				   uint8_t *data, uint32_t len);

/*
 * Drops a reference taken by cfs_cache_get() or cfs_cache_insert(). The
 * last one frees the chunk; after the call ch must not be touched. NULL is
 * ignored. Aborts on a reference count that would go below zero.
 */
void cfs_chunk_unref(struct cfs_cache *c, struct cfs_chunk *ch);

/*
 * Whether a chunk with this id is in the table now, for read-ahead
 * decisions: counts neither a hit nor a miss and leaves the LRU order as
 * it is. The answer may be stale as soon as it is returned.
 */
bool cfs_cache_contains(struct cfs_cache *c, const struct cairn_id *id);

struct cfs_cache_stats {
	uint64_t hits, misses;   /* cfs_cache_get() calls */
	uint64_t inserts;        /* chunks taken in, duplicates not counted */
	uint64_t evictions;      /* chunks taken out to keep the budget */
	uint64_t bytes, entries; /* in the table now */
	uint64_t max_bytes;      /* as given to cfs_cache_new() */
};

/*
 * The counters, summed over the shards. Each shard's are consistent
 * (inserts - evictions == entries); the sum is not one instant's.
 */
void cfs_cache_stats(struct cfs_cache *c, struct cfs_cache_stats *out);

#endif
