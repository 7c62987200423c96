/* SPDX-License-Identifier: MIT */
/*
 * source.h - where chunks come from: the one interface every reader of
 * chunk bytes goes through (the daemon's decode path, cat and export, the
 * writer's dedup check, fsck, gc's pack rewriting).
 *
 * A chunk source answers three questions about a chunk id: what is it
 * (stat), what are its bytes (read, decoded and checked against the id),
 * and how is it stored here (entry, the encoded pack entry, for code that
 * copies chunks without decoding them). Readers call the cairn_chunks_*()
 * verbs below with a transaction; the verbs ask the store's top source.
 *
 * Every store has two: the local packs (source.c: a chunk is an index
 * record in the chunks database and an entry in a pack file) and on top of
 * them the lazy source (lazy.h: chunks a lazy pull made known, fetched from
 * a remote on first read when a fetcher is attached).
 *
 * How to add one (a remote object store with lazy fetch, for example):
 * embed struct cairn_chunk_source first in your own struct, fill in ops,
 * and cairn_store_push_chunks() it right after cairn_store_open(), before
 * any other thread uses the store. Your source is then the top one and
 * src->below is the one it was stacked on (the local packs): ask it first,
 * and fetch only what it answers -ENOENT for. The contract:
 *
 *  - read() returns verified bytes or an error, never wrong bytes: a
 *    fetched object is checked against its id before it is returned or
 *    kept. Unless CAIRN_READ_LOCAL is set it may fetch; it must then give
 *    up after a bounded time with -EIO (and log why with cairn_err()),
 *    never block a reader for good. With CAIRN_READ_LOCAL it answers
 *    -ENODATA for a chunk it knows of but does not hold here (fsck's "not
 *    fetched yet", as opposed to -ENOENT, "no such chunk").
 *  - Every call may run on many threads at once, each with its own txn and
 *    zctx (one per thread, reused). Single-flight is the source's business
 *    if it matters across processes; within the daemon, a chunk wanted by
 *    many readers at once is decoded (so fetched) once already (fs/chunks.c).
 *  - stat() does no I/O beyond the index: the daemon calls it on the hot
 *    path. CAIRN_CHUNK_REMOTE in info->where tells a chunk known but not
 *    local.
 *  - entry() is for local bytes only: -ENODATA for a chunk that is not.
 *  - A source never writes the chunks or packs databases from a reader's
 *    transaction (readers hold read transactions); a fetched chunk is kept
 *    by the source's own writer, in batches, outside the reader's path.
 *
 * Errors are 0 or -errno (lengths: >= 0 or -errno) with a message from
 * cairn_err() for damage: -ENOENT (no such chunk), -ENODATA (known, not
 * here), -EIO (damaged or unreachable), -ENOBUFS (cap too small), -ENOMEM.
 */
#ifndef CAIRN_SOURCE_H
#define CAIRN_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunk.h"
#include "store.h"
#include "util.h"

enum cairn_chunk_where {
	CAIRN_CHUNK_LOCAL = 1,  /* in a local pack: reads cost no network */
	CAIRN_CHUNK_REMOTE = 2, /* known (its length, its flags), fetched on first read */
};

/* What a source knows of a chunk without reading it. */
struct cairn_chunk_info {
	uint32_t raw_len;   /* decoded length */
	uint8_t flags;      /* enum cairn_chunk_flags (format.h) */
	uint8_t where;      /* enum cairn_chunk_where */
	/* where == CAIRN_CHUNK_LOCAL: its pack entry */
	uint8_t codec;
	uint32_t pack;
	uint64_t offset;
	uint32_t len;       /* encoded payload bytes (the entry is a header longer) */
};

enum cairn_read_flags {
	CAIRN_READ_LOCAL = 1u << 0,      /* never fetch: -ENODATA for a chunk not held here */
	CAIRN_READ_UNVERIFIED = 1u << 1, /* no id check: the caller compares the bytes itself */
};

struct cairn_chunk_source;

struct cairn_chunk_source_ops {
	int (*stat)(struct cairn_chunk_source *src, struct cairn_txn *t, const struct cairn_id *id,
		    struct cairn_chunk_info *out);
	long (*read)(struct cairn_chunk_source *src, struct cairn_txn *t, struct cairn_zctx *z,
		     const struct cairn_id *id, unsigned flags, void *out, size_t cap);
	int (*entry)(struct cairn_chunk_source *src, struct cairn_txn *t,
		     const struct cairn_id *id, const void **entry, size_t *len);
	/*
	 * Starts fetching chunks a reader will soon want (a sequential
	 * reader's next ones), without waiting for them. NULL: the source
	 * holds everything it knows (ask the one below).
	 */
	void (*prefetch)(struct cairn_chunk_source *src, struct cairn_txn *t,
			 const struct cairn_id *ids, size_t n);
	/* Frees the source (not the one below it). NULL: nothing to free. */
	void (*free)(struct cairn_chunk_source *src);
};

struct cairn_chunk_source {
	const struct cairn_chunk_source_ops *ops;
	const char *name;                 /* for messages: "local", "remote NAME" */
	struct cairn_chunk_source *below; /* set by cairn_store_push_chunks(); NULL for the last */
};

/*
 * The store's top source (the local packs unless another was pushed);
 * valid until cairn_store_close().
 */
struct cairn_chunk_source *cairn_store_chunks(struct cairn_store *s);

/*
 * Stacks src on the store's sources: it becomes the top one, src->below
 * the previous top. The store owns it from then on (ops->free at
 * cairn_store_close(), top first). Call before any other thread uses s.
 */
void cairn_store_push_chunks(struct cairn_store *s, struct cairn_chunk_source *src);

/* The local packs, for the store's own use (made by cairn_store_open()). */
struct cairn_chunk_source *cairn_chunks_local_new(struct cairn_store *s);

/* --- the verbs readers use (the store's top source, through t's store) --- */

/* What the chunk is: 0 and *out, or -ENOENT, -EUCLEAN (a damaged index record). */
int cairn_chunks_stat(struct cairn_txn *t, const struct cairn_id *id, struct cairn_chunk_info *out);

/*
 * The chunk's bytes into out[0..cap), checked against id (unless
 * CAIRN_READ_UNVERIFIED). Returns the length or -errno (see above).
 */
long cairn_chunks_read(struct cairn_txn *t, struct cairn_zctx *z, const struct cairn_id *id,
		       unsigned flags, void *out, size_t cap);

/*
 * The chunk's encoded pack entry (header and payload, *len bytes), in
 * place: valid until the store is closed. Not checked against the id
 * beyond its header (the bytes are copied, not served). -ENOENT, -ENODATA
 * (not local), -EIO.
 */
int cairn_chunks_entry(struct cairn_txn *t, const struct cairn_id *id, const void **entry,
		       size_t *len);

/*
 * Hints that ids will be read soon, in this order: a source that fetches
 * starts fetching those it does not hold, and returns at once. Costs
 * nothing for chunks that are local.
 */
void cairn_chunks_prefetch(struct cairn_txn *t, const struct cairn_id *ids, size_t n);

#endif
