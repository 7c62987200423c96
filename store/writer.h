/* SPDX-License-Identifier: MIT */
/*
 * writer.h - writing trees into a store: chunks, contents, nodes, and the
 * one small commit that publishes an image.
 *
 * The writer never holds LMDB's writer lock while it reads or compresses
 * input: new records gather in memory and go to the store in bounded
 * batches (one short write transaction each, committed without syncing the
 * meta page). Batched records are invisible until something references
 * them; cairn_writer_publish() syncs the environment and then, in one small
 * fully synced transaction, writes the layer, the image and its tag. A
 * crash before that leaves only unreferenced records, which gc reclaims.
 *
 * Dedup: a record already present is not written again. A chunk hit always
 * checks the length; it compares the bytes whenever the new input or the
 * stored chunk is untrusted. Node and content hits are always byte-compared.
 * Different bytes under one id is a collision: -EEXIST with a message, and
 * nothing is stored over.
 *
 * A writer is used by one thread at a time.
 */
#ifndef CAIRN_WRITER_H
#define CAIRN_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "node.h"
#include "store.h"

struct cairn_writer;

enum cairn_writer_flags {
	CAIRN_WRITER_UNTRUSTED = 1u << 0, /* input from tar or OCI */
};

struct cairn_writer_stats {
	uint64_t bytes_in;       /* logical file bytes seen */
	uint64_t chunks_new;
	uint64_t chunks_dup;
	uint64_t chunk_bytes_new; /* raw bytes of new chunks */
	uint64_t stored_bytes_new; /* value bytes of new records */
	uint64_t nodes_new;
	uint64_t nodes_dup;
	uint64_t batches;
};

int cairn_writer_new(struct cairn_store *s, unsigned flags, struct cairn_writer **out);
/* Frees the writer; records not yet flushed are dropped. */
void cairn_writer_free(struct cairn_writer *w);
const struct cairn_writer_stats *cairn_writer_stats(const struct cairn_writer *w);
/* The store the writer writes to. */
struct cairn_store *cairn_writer_store(const struct cairn_writer *w);

/*
 * A regular file's content, streamed: begin, then data and holes in file
 * order, then end. Holes are zeros whose source knows they are zeros (a
 * sparse file's holes); they give exactly the extents and the content id
 * written zeros give, so ids do not depend on the source's allocation, and
 * whole blocks of them cost O(1) however long (format.h, "Content id").
 * File end also decides the content kind: a file of at most
 * CAIRN_ONE_CHUNK_MAX bytes with no hole is one chunk, whatever the chunker.
 */
void cairn_writer_file_begin(struct cairn_writer *w);
int cairn_writer_file_data(struct cairn_writer *w, const void *buf, size_t len);
int cairn_writer_file_hole(struct cairn_writer *w, uint64_t len);
/* Finishes the file; fills n->size, n->content_kind and n->content. */
int cairn_writer_file_end(struct cairn_writer *w, struct cairn_node_build *n);

/* Encodes and stores a node; returns its id. */
int cairn_writer_put_node(struct cairn_writer *w, const struct cairn_node_build *n,
			  struct cairn_id *id);

/* Writes what is gathered so far in one batch transaction. */
int cairn_writer_flush(struct cairn_writer *w);

struct cairn_publish {
	uint8_t source;             /* enum cairn_layer_source */
	struct cairn_id layer_root; /* the imported tree */
	const struct cairn_id *base_layers; /* layers below (from --on), or NULL */
	uint32_t nbase;
	struct cairn_id root;       /* flattened tree */
	uint64_t logical_size;
	uint64_t nodes;
	const char *msg;            /* may be NULL */
	const char *tag;            /* may be NULL */
};

/*
 * Flushes, syncs, and publishes the layer, the image and its tag in one
 * synced transaction. An image that exists already keeps its record; the
 * tag moves to it. Returns the image id. The image's layers are
 * base_layers, then layer_root; a base layer without a record gets one
 * (source: p->source), so an importer of several layers at once (OCI)
 * passes all but the top one as base_layers.
 */
int cairn_writer_publish(struct cairn_writer *w, const struct cairn_publish *p,
			 struct cairn_id *image);

/*
 * Objects that arrive encoded (a pull from a remote store), each already
 * checked against its id by the caller; batched and deduplicated like an
 * import's, invisible until something publishes a reference to them.
 *
 * put_entry stores a chunk from its pack entry (struct cairn_pack_entry
 * and payload, flags as the caller wants them: a pulled chunk is
 * CAIRN_CHUNK_UNTRUSTED). put_node_value and put_content_value store a
 * node's or a content list's value; a different value stored under the id
 * is a collision (-EEXIST with a message).
 */
int cairn_writer_put_entry(struct cairn_writer *w, const struct cairn_id *id, const void *entry,
			   size_t elen);
int cairn_writer_put_node_value(struct cairn_writer *w, const struct cairn_id *id,
				const void *val, size_t vlen);
int cairn_writer_put_content_value(struct cairn_writer *w, const struct cairn_id *id,
				   const void *val, size_t vlen);

/*
 * Records where a chunk the store does not hold is on a remote (a lazy
 * pull, lazy.h): batched like the rest, a newer record for the same chunk
 * replacing an older one.
 */
struct cairn_lazy;
int cairn_writer_put_lazy(struct cairn_writer *w, const struct cairn_lazy *l);

/*
 * Publishes an image record as it is (a pulled image keeps its time and
 * message): flushes, syncs, then in one synced transaction writes the
 * layer records (sources: one byte per layer; NULL when the layers are
 * in the store already), the image record and, when
 * tag is not NULL, the tag. The record must parse and match image. Returns
 * 0 or -errno.
 */
int cairn_writer_publish_record(struct cairn_writer *w, const struct cairn_id *image,
				const void *rec, size_t len, const uint8_t *sources,
				const char *tag);

/*
 * Gives up an import that failed before publishing (a full disk, bad
 * input): takes back the space its packs hold. Packs it wrote with nothing
 * committed are unlinked, uncommitted tails cut off. What its batches
 * committed goes too when that is safe: gc_lock (the caller's shared
 * STORE/gc.lock fd, or -1) becomes exclusive at once, so no other import
 * or commit is running that may have deduplicated against it, and the
 * store's epoch shows no image was published since the writer began; the
 * records go in one synced transaction, then the pack files. Otherwise
 * they stay for gc. Call it instead of publishing, before
 * cairn_writer_free(); the lock stays taken (close it). 0 or -errno (the
 * import's own error is what to report either way).
 */
int cairn_writer_abandon(struct cairn_writer *w, int gc_lock);

#endif
