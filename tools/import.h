/* SPDX-License-Identifier: MIT */
/*
 * import.h - importers: sources that become trees in a store.
 */
#ifndef CAIRN_IMPORT_H
#define CAIRN_IMPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli.h"
#include "writer.h"

struct import_result {
	struct cairn_id root;  /* the tree's root node */
	uint64_t entries;      /* nodes in the tree, the root included */
	uint64_t logical_size; /* regular file bytes, hard-link groups once */
};

/*
 * Imports the directory src through w. store_dir is refused if it lies
 * inside src. show: progress on stderr. Returns 0 or -errno with a message.
 */
int import_dir(struct cairn_writer *w, const char *src, const char *store_dir, bool show,
	       struct import_result *res);

/*
 * Imports an upper directory's tree (UPPER/tree, see fs/upper.h) as a layer:
 * whiteouts become WHITEOUT nodes, opaque directories OPAQUE, a metacopy
 * file takes its content from its origin node (no data read), a renamed
 * directory becomes an opaque one holding its image part with the changes
 * under it stacked on; cairn's markers are dropped and escaped xattrs
 * restored. Returns 0 or -errno with a message.
 */
int import_upper(struct cairn_writer *w, struct cairn_store *s, const char *src, bool show,
		 struct import_result *res);

/* The default of --max-bytes: logical file bytes (holes included) one tar may hold. */
#define IMPORT_TAR_MAX_BYTES (64ull << 30)
/*
 * The default of --max-entries. File data streams into the store, but the
 * tree's index (a record per path and per inode, about 300 bytes each) is
 * held until the archive ends: this bounds its memory (about 300 MB).
 */
#define IMPORT_TAR_MAX_ENTRIES 1000000ull
/* Xattrs and symlink targets one archive may hold in the index, all entries together. */
#define IMPORT_TAR_MAX_META (256ull << 20)

struct import_tar_opts {
	uint64_t max_bytes;          /* file bytes (holes included) the tar may unpack to */
	uint64_t max_entries;        /* archive entries (0: IMPORT_TAR_MAX_ENTRIES) */
	bool show;                   /* progress on stderr */
	bool layer;                  /* a layer: OCI whiteouts allowed (else refused) */
	const struct cairn_id *base; /* the flattened tree the layer goes on, or NULL;
				      * implied directories take their attributes from it */
};

/*
 * Imports a tar archive (ustar, GNU or pax; plain, gzip or zstd) from the
 * file src, or from stdin when src is "-", through w, which should have
 * been made with CAIRN_WRITER_UNTRUSTED. res->root is the layer's tree:
 * with o->layer, '.wh.NAME' entries are WHITEOUT nodes and '.wh..wh..opq'
 * flags its directory OPAQUE, for cairn_stack() to apply; without it they
 * are refused. Bad input (absolute or '..' paths, entries through
 * symlinks, dangling hard links, truncated or garbled streams, more than
 * max_bytes of file data, more than max_entries entries, xattrs and link
 * targets past IMPORT_TAR_MAX_META) fails the whole import with a message
 * naming the entry. Returns 0 or -errno with a message.
 */
int import_tar(struct cairn_writer *w, const char *src, const struct import_tar_opts *o,
	       struct import_result *res);

/* A caller's stream of plain tar bytes (an OCI layer, decompressed). */
struct tar_stream {
	/* Points *buf at the next bytes; returns their count, 0 at the end, or
	 * -errno with a message. */
	ssize_t (*read)(void *ctx, const void **buf);
	void *ctx;
};

/* import_tar() from a stream. */
int import_tar_stream(struct cairn_writer *w, const struct tar_stream *in,
		      const struct import_tar_opts *o, struct import_result *res);

#endif
