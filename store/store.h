/* SPDX-License-Identifier: MIT */
/*
 * store.h - a cairn store: one LMDB environment in one directory.
 *
 * This module is the only one that talks to LMDB. It opens the
 * environment the way many processes can share it (large map, many reader
 * slots, MDB_NOTLS, stale readers cleared when a writer starts), hands out
 * transactions, and translates LMDB's error codes to -errno at this
 * boundary, logging LMDB's own message with cairn_err().
 *
 * The tables themselves are private to store/ (store-internal.h): other
 * modules read and write them through the verbs of image.h, platform.h,
 * source.h and the figures below.
 */
#ifndef CAIRN_STORE_H
#define CAIRN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunker.h"
#include "format.h"
#include "util.h"

struct cairn_store;
struct cairn_txn;

enum cairn_store_flags {
	CAIRN_STORE_CREATE = 1u << 0, /* create the directory and store if missing */
	CAIRN_STORE_RDONLY = 1u << 1, /* never write (no write transactions) */
};

#define CAIRN_MAP_SIZE (1ull << 40)  /* address space, not disk */
#define CAIRN_MAX_READERS 1024u

/* Parameters a new store is created with (ignored when it exists). */
struct cairn_store_params {
	struct cairn_chunker_params chunk;
	int zstd_level;
};

void cairn_store_params_default(struct cairn_store_params *p);

/*
 * Opens (or with CAIRN_STORE_CREATE creates) the store in dir. params may
 * be NULL for the defaults. On failure returns -errno with a message.
 */
int cairn_store_open(const char *dir, unsigned flags, const struct cairn_store_params *params,
		     struct cairn_store **out);
void cairn_store_close(struct cairn_store *s);

const char *cairn_store_dir(const struct cairn_store *s);
/* The store's recorded parameters; valid for the store's lifetime. */
const struct cairn_store_params *cairn_store_params(const struct cairn_store *s);
const struct cairn_chunker *cairn_store_chunker(const struct cairn_store *s);
/* Overrides the zstd level for chunks this process writes. */
void cairn_store_set_level(struct cairn_store *s, int level);

/*
 * Pack files hold chunk bytes (format.h). The store keeps one read-only fd
 * per pack, opened on first use and shared by every thread; the fd is
 * valid until cairn_store_close(). Returns the fd or -errno.
 */
int cairn_store_pack_fd(struct cairn_store *s, uint32_t pack);
/*
 * Bytes [off, off + len) of a pack, read in place through a read-only
 * mapping shared by every thread; valid until cairn_store_close(). NULL
 * with *err set when the pack cannot be mapped or is too short.
 */
const void *cairn_store_pack_map(struct cairn_store *s, uint32_t pack, uint64_t off, size_t len,
				 int *err);
/* Writes "STORE/packs/%08x.pack" into buf. */
void cairn_store_pack_path(const struct cairn_store *s, uint32_t pack, char *buf, size_t len);

/*
 * Waits (at most timeout_ms) until no read transaction of any process is
 * older than the last commit, so nothing can still follow an index record
 * that commit replaced. Returns 0, or -ETIMEDOUT.
 */
int cairn_store_wait_readers(struct cairn_store *s, int timeout_ms);

/*
 * Rewrites data.mdb without free pages (mdb_env_copy2 with MDB_CP_COMPACT)
 * and puts it in place. Refused (-EBUSY) while another process has the
 * store open (a reader slot in use by another pid). The store must be
 * reopened afterwards: s is closed by this call either way.
 */
int cairn_store_compact(struct cairn_store *s);

/*
 * Permissions: the store holds other people's files (an image's
 * /etc/shadow), so its directory and every directory in it are 0700 and
 * every file 0600, whatever the umask: cairn creates them so, and
 * cairn_store_open() narrows what is wider when the store belongs to the
 * caller. This checks the store directory, what it holds and what packs/
 * and run/ hold: with fix, entries the caller owns are narrowed; report
 * (may be NULL) is called for each entry left wider. Returns how many.
 */
typedef void (*cairn_perms_fn)(void *ctx, const char *path, unsigned mode);
int cairn_store_perms(struct cairn_store *s, bool fix, cairn_perms_fn report, void *ctx);

/* Flushes everything committed so far to disk (mdb_env_sync(force)). */
int cairn_store_sync(struct cairn_store *s);

/* Batches may commit without syncing the meta page; publishing commits must not. */
int cairn_store_set_batch_mode(struct cairn_store *s, bool on);

/* Space figures: bytes LMDB uses (pages in use) and the size of data.mdb. */
struct cairn_store_space {
	uint64_t used_bytes;
	uint64_t file_bytes;
	uint64_t page_size;
};
int cairn_store_space(struct cairn_store *s, struct cairn_store_space *out);

/* Entries and value bytes of one of the store's tables. */
struct cairn_table_usage {
	const char *name; /* "chunks", "contents", ...: static */
	uint64_t entries, bytes;
};

#define CAIRN_TABLES_REPORTED 9

/*
 * The usage of the tables cairn du reports, in this order: chunks,
 * contents, nodes, layers, images, tags, platforms, packs (a walk of each:
 * its cost grows with the store). out holds CAIRN_TABLES_REPORTED entries.
 */
int cairn_store_table_usage(struct cairn_txn *t, struct cairn_table_usage *out);

/*
 * Calls fn for each pack file the store indexes, with its number and its
 * committed bytes (format.h). Stops at the first non-zero return and
 * returns it; 0 at the end, or -errno.
 */
int cairn_store_pack_each(struct cairn_txn *t, int (*fn)(uint32_t pack, uint64_t bytes, void *arg),
			  void *arg);

/* Transactions. A read transaction may be reset and renewed (per-thread reuse). */
int cairn_txn_begin(struct cairn_store *s, bool write, struct cairn_txn **out);
int cairn_txn_commit(struct cairn_txn *t);
void cairn_txn_abort(struct cairn_txn *t);
void cairn_txn_reset(struct cairn_txn *t);
int cairn_txn_renew(struct cairn_txn *t);
struct cairn_store *cairn_txn_store(struct cairn_txn *t);

#endif
