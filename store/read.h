/* SPDX-License-Identifier: MIT */
/*
 * read.h - reading trees and file bytes back out of a store.
 *
 * Views returned here point into the map: valid until the transaction ends.
 * Chunk bytes are checked against their id on every decode, so a damaged
 * chunk reads as -EIO with a message, never as wrong bytes.
 */
#ifndef CAIRN_READ_H
#define CAIRN_READ_H

#include <sys/types.h>

#include "chunk.h"
#include "node.h"
#include "store.h"

/* Reads and parses a node (bounds-checked). -ENOENT or -EUCLEAN with a message. */
int cairn_node_get(struct cairn_txn *t, const struct cairn_id *id, unsigned flags,
		   struct cairn_node_view *v);

/*
 * Walks path ("", "/", "a/b", "/a/b/") from the directory root without
 * following symlinks. Fills id and v of the node found. -ENOENT, -ENOTDIR.
 */
int cairn_path_walk(struct cairn_txn *t, const struct cairn_id *root, const char *path,
		    struct cairn_id *id, struct cairn_node_view *v);

/* The extent list of a regular file node. */
int cairn_file_content(struct cairn_txn *t, const struct cairn_node_view *file, unsigned flags,
		       struct cairn_content_view *cv);

/* A reader keeps one decoded chunk, so sequential small reads decode once. */
struct cairn_reader {
	struct cairn_txn *t;
	struct cairn_zctx z;
	struct cairn_id cur;  /* id of the chunk in buf */
	uint32_t cur_len;
	bool have;
	uint8_t *buf;         /* CAIRN_CHUNK_MAX_LIMIT bytes */
	/* readahead of chunks a fetching source does not hold (source.h prefetch) */
	const uint8_t *ra_list; /* the extent list last read (cv->extents) */
	uint32_t ra_next;       /* its first extent not hinted yet */
};

#define CAIRN_READ_AHEAD 16u /* chunks hinted ahead of a reader */

int cairn_reader_init(struct cairn_reader *r, struct cairn_txn *t);
void cairn_reader_release(struct cairn_reader *r);

/* Decodes (or reuses) a chunk; returns its length and sets *data. */
long cairn_reader_chunk(struct cairn_reader *r, const struct cairn_id *id, const uint8_t **data);

/*
 * Reads up to len bytes at off; returns bytes read (0 at EOF) or -errno.
 * Hints the next CAIRN_READ_AHEAD chunks of the file to the store's chunk
 * source (cairn_chunks_prefetch: free for local chunks, lazy ones are
 * fetched meanwhile).
 */
ssize_t cairn_reader_pread(struct cairn_reader *r, const struct cairn_content_view *cv,
			   void *buf, size_t len, uint64_t off);

/*
 * Checks a content list's value (from an untrusted source: a remote store)
 * against its content id, the hash of the list itself (format.h), and
 * parses it strictly into cv (pointing into val). No chunk is needed.
 * 0, or -EIO with a message.
 */
int cairn_content_check(const struct cairn_id *id, const void *val, size_t len,
			struct cairn_content_view *cv);

/*
 * A node's or a content list's value as the store keeps it (its canonical
 * encoding, the bytes its id hashes for a node), in place: valid until the
 * transaction ends. -ENOENT when the store does not hold it. For code that
 * copies objects without parsing them (push).
 */
int cairn_node_value(struct cairn_txn *t, const struct cairn_id *id, const void **val,
		     size_t *len);
int cairn_content_value(struct cairn_txn *t, const struct cairn_id *id, const void **val,
			size_t *len);

#endif
