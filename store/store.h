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
 * Values returned by cairn_get() and cursors point into the map: valid
 * until the transaction ends (or, for a write transaction, until the next
 * write to the same database).
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
struct cairn_cursor;

enum cairn_db {
	CAIRN_DBI_META,
	CAIRN_DBI_CHUNKS,
	CAIRN_DBI_CONTENTS,
	CAIRN_DBI_NODES,
	CAIRN_DBI_LAYERS,
	CAIRN_DBI_IMAGES,
	CAIRN_DBI_TAGS,
	CAIRN_DBI_PLATFORMS,
	CAIRN_DBI_HISTORY,
	CAIRN_DBI_PACKS,
};

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

/* Transactions. A read transaction may be reset and renewed (per-thread reuse). */
int cairn_txn_begin(struct cairn_store *s, bool write, struct cairn_txn **out);
int cairn_txn_commit(struct cairn_txn *t);
void cairn_txn_abort(struct cairn_txn *t);
void cairn_txn_reset(struct cairn_txn *t);
int cairn_txn_renew(struct cairn_txn *t);
struct cairn_store *cairn_txn_store(struct cairn_txn *t);

/* Returns 0, -ENOENT when the key is absent, or another -errno. */
int cairn_get(struct cairn_txn *t, enum cairn_db db, const void *key, size_t klen,
	      const void **val, size_t *vlen);

enum cairn_put_flags {
	CAIRN_PUT_NOOVERWRITE = 1u << 0, /* -EEXIST if present; *val is then set */
};

/* Puts a value; with CAIRN_PUT_NOOVERWRITE, an existing value is returned via old. */
int cairn_put(struct cairn_txn *t, enum cairn_db db, const void *key, size_t klen,
	      const void *val, size_t vlen, unsigned flags, const void **old, size_t *oldlen);
/* Reserves vlen bytes for the value and returns where to write them. */
int cairn_put_reserve(struct cairn_txn *t, enum cairn_db db, const void *key, size_t klen,
		      size_t vlen, void **where);
int cairn_del(struct cairn_txn *t, enum cairn_db db, const void *key, size_t klen);

/* The store's epoch (format.h, CAIRN_META_EPOCH_KEY): 0 until the first bump. */
int cairn_epoch_get(struct cairn_txn *t, uint64_t *out);
/* Bumps the epoch inside write transaction t; *out (may be NULL) gets the new value. */
int cairn_epoch_bump(struct cairn_txn *t, uint64_t *out);

/* Number of entries in a database. */
int cairn_db_count(struct cairn_txn *t, enum cairn_db db, uint64_t *count);

/* Cursors walk a database in key order. */
int cairn_cursor_open(struct cairn_txn *t, enum cairn_db db, struct cairn_cursor **out);
void cairn_cursor_close(struct cairn_cursor *c);
/*
 * Positions at the first key >= key (key NULL: the first key), or moves to
 * the next (next != 0). Returns 0, -ENOENT at the end, or -errno.
 */
int cairn_cursor_get(struct cairn_cursor *c, const void *key, size_t klen, bool next,
		     const void **k, size_t *kl, const void **v, size_t *vl);
/* Deletes the entry the cursor is on (write transactions). */
int cairn_cursor_del(struct cairn_cursor *c);

#endif
