/* SPDX-License-Identifier: MIT */
/*
 * lazy.h - chunks a lazy pull made known but did not fetch, and the chunk
 * source that fetches them on first read.
 *
 * Records (format.h, "Lazy"): chunk id -> where the chunk is on a remote.
 * `pull --lazy` writes one for each chunk the store lacks, in the batches
 * that carry the image's nodes and content lists, before it publishes the
 * image; gc drops a record once no kept image reaches its chunk or the
 * chunk is local. So a published image is complete in metadata, and each
 * of its chunks is either local or named by a record.
 *
 * The lazy source: every store stacks it on the local packs when it opens
 * (source.h). A chunk that is local is read there. For a chunk with only a
 * record, stat answers CAIRN_CHUNK_REMOTE (the record's length, no I/O);
 * read answers -ENODATA with CAIRN_READ_LOCAL or when nothing can fetch
 * (a store opened by a program without remote support: "not fetched yet"),
 * and otherwise fetches through the fetcher attached with
 * cairn_lazy_attach():
 *
 *  - Single flight: a chunk being fetched is fetched once, whichever thread
 *    and however many readers ask; they all wait for the one fetch.
 *  - Bounded: a reader waits at most the remote's timeout (the fetcher's
 *    timeout_ms(), plus a moment), then gets -EIO with a message; a failed
 *    fetch fails every reader waiting for it with its message, and the next
 *    read tries again (a remote back up serves again).
 *  - Verified: an entry that arrives is decoded and hashed against the
 *    chunk id before any reader sees it; a mismatch is -EIO with a message
 *    ("damaged, truncated or substituted"), never bytes.
 *  - Served from memory at once, and kept: verified entries wait in memory
 *    (bounded: CAIRN_LAZY_MEM bytes; past that they are served and not
 *    kept) for the source's keeper thread, which writes them to local packs
 *    in batches with a writer of its own (holding the gc lock shared while
 *    it writes, as an import does). No reader ever waits for the store's
 *    writer lock or for gc; a store opened read-only only serves.
 *  - Prefetch: cairn_chunks_prefetch() (source.h) starts fetches of chunks
 *    a sequential reader will want next, without waiting for them.
 */
#ifndef CAIRN_LAZY_H
#define CAIRN_LAZY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "util.h"

#define CAIRN_LAZY_MEM (64u << 20)   /* verified entries waiting to be kept, at most */
#define CAIRN_LAZY_NAME_MAX 255u

/* A lazy record, decoded. */
struct cairn_lazy {
	struct cairn_id id;     /* the chunk */
	uint32_t raw_len;       /* its decoded length */
	uint32_t len;           /* its entry on the remote, header included */
	uint64_t offset;        /* of the entry in the remote pack */
	struct cairn_id pack;   /* the remote pack */
	char remote[CAIRN_LAZY_NAME_MAX + 1];
};

/* The record of chunk id: 0, -ENOENT, or -EUCLEAN (damaged) with a message. */
int cairn_lazy_get(struct cairn_txn *t, const struct cairn_id *id, struct cairn_lazy *out);

/* Encodes a record (the value the lazy database keeps). 0 or -EINVAL. */
int cairn_lazy_encode(const struct cairn_lazy *l, struct cairn_buf *out);
/* Decodes a value of the lazy database; 0 or -EUCLEAN. */
int cairn_lazy_parse(const struct cairn_id *id, const void *val, size_t vlen,
		     struct cairn_lazy *out);

/* Records in the store (all of them, fetched or not): for a quick "are there any?". */
int cairn_lazy_count(struct cairn_txn *t, uint64_t *n);

/*
 * Calls fn for each record, in chunk id order; a record that does not parse
 * is passed with ok false (and out holding only its id). Stops at the first
 * non-zero return and returns it; 0 at the end, or -errno.
 */
int cairn_lazy_each(struct cairn_txn *t,
		    int (*fn)(const struct cairn_lazy *l, bool ok, void *arg), void *arg);

/*
 * What fetches lazy chunks: an implementation embeds this struct first
 * (remote/ has the one for S3 remotes). The store owns it once attached.
 */
struct cairn_lazy_fetcher;

struct cairn_lazy_fetcher_ops {
	/*
	 * Starts fetching n chunks, all of one remote (recs[0].remote), sorted
	 * by pack and offset; recs is valid during the call only. Answers each
	 * of them exactly once with cairn_lazy_done(), from any thread, within
	 * timeout_ms(remote) of this call; never blocks on the network.
	 */
	void (*start)(struct cairn_lazy_fetcher *f, const struct cairn_lazy *recs, size_t n);
	/* The longest a fetch from remote may take (its --timeout), in ms. */
	unsigned (*timeout_ms)(struct cairn_lazy_fetcher *f, const char *remote);
	/* Tells a person what went wrong in the background (may be NULL). */
	void (*log)(struct cairn_lazy_fetcher *f, const char *msg);
	/*
	 * Stops: every fetch still running is answered (with -ECANCELED)
	 * before it returns; then frees f.
	 */
	void (*free)(struct cairn_lazy_fetcher *f);
};

struct cairn_lazy_source;

struct cairn_lazy_fetcher {
	const struct cairn_lazy_fetcher_ops *ops;
	struct cairn_lazy_source *src; /* set by cairn_lazy_attach() */
};

/*
 * Lets the store's lazy source fetch through f (the store owns f from now
 * on; it is freed at cairn_store_close()). Call before other threads use
 * the store. -EBUSY when a fetcher is attached already.
 */
int cairn_lazy_attach(struct cairn_store *s, struct cairn_lazy_fetcher *f);

/*
 * A fetcher's answer for chunk id: err 0 and the entry as the remote keeps
 * it (codec, decoded length, payload[0..len): checked here, against the id
 * and the record), or err < 0 and a message for the log (msg may be NULL).
 * payload is copied; any thread.
 */
void cairn_lazy_done(struct cairn_lazy_fetcher *f, const struct cairn_id *id, int err,
		     const char *msg, uint8_t codec, uint32_t raw_len, const void *payload,
		     size_t len);

/* Figures of the lazy source since the store opened (tests, logs). */
struct cairn_lazy_stats {
	uint64_t fetches;       /* chunks fetched and verified */
	uint64_t fetch_bytes;   /* their entries' bytes */
	uint64_t failures;      /* fetches that failed (unreachable, timeout, mismatch) */
	uint64_t waits;         /* reads that waited for another reader's fetch */
	uint64_t prefetches;    /* chunks fetched ahead of any read */
	uint64_t kept;          /* chunks written to local packs */
	uint64_t dropped;       /* chunks served but not kept (memory bound, read-only store) */
};
void cairn_lazy_stats(struct cairn_store *s, struct cairn_lazy_stats *out);

/*
 * Waits (at most timeout_ms) until every verified entry waiting in memory
 * is kept in local packs (or dropped). 0 or -ETIMEDOUT.
 */
int cairn_lazy_sync(struct cairn_store *s, int timeout_ms);

/* The store's lazy source, made by cairn_store_open() (store.c). */
struct cairn_chunk_source *cairn_chunks_lazy_new(struct cairn_store *s);

#endif
