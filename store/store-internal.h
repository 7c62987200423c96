/* SPDX-License-Identifier: MIT */
/*
 * store-internal.h - the store's tables, private to store/.
 *
 * The LMDB databases and the raw get/put/cursor calls on them are the
 * store's schema: only store/ (and the white-box tests and fuzzers that
 * corrupt records on purpose) include this header. Everything else goes
 * through the verbs of the public headers (image.h names images, platform.h
 * moves platforms, source.h reads chunks, store.h reports table sizes), so
 * the schema has one owner and a change to it (a shared daemon, a remote
 * store, gc coordination) touches one place.
 *
 * Values returned by cairn_get() and cursors point into the map: valid
 * until the transaction ends (or, for a write transaction, until the next
 * write to the same database).
 */
#ifndef CAIRN_STORE_INTERNAL_H
#define CAIRN_STORE_INTERNAL_H

#ifndef CAIRN_STORE_INTERNAL
#error "store-internal.h is private to store/: use the verbs of image.h, platform.h, source.h"
#endif

#include "store.h"

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
	CAIRN_DBI_REMOTES,
	CAIRN_DBI_FOLLOWS,
	CAIRN_DBI_LAZY,
};

/* The store's lazy source (lazy.c), made when the store opens. */
struct cairn_lazy_source *cairn_store_lazy(struct cairn_store *s);
/* Was the store opened read-only (nothing may be written)? */
bool cairn_store_rdonly(const struct cairn_store *s);

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

/*
 * Calls fn for each entry of db in key order (k, v valid during the call).
 * Stops at the first non-zero return of fn and returns it; 0 at the end,
 * or -errno.
 */
int cairn_table_each(struct cairn_txn *t, enum cairn_db db,
		     int (*fn)(const void *k, size_t kl, const void *v, size_t vl, void *arg),
		     void *arg);

/*
 * The naming transaction: every verb that makes a name point at an image
 * or takes one away (tags, image removal, platform switches, the publish
 * of an import or commit) writes in one of these, begun and committed only
 * through these two calls. A publishing commit is fully synced. This pair
 * is the one place where naming coordinates with gc (gc.h): the commit
 * bumps the store's epoch, which gc checks before it drops images.
 */
int cairn_naming_begin(struct cairn_store *s, struct cairn_txn **t);
int cairn_naming_commit(struct cairn_txn *t);

/*
 * Inside a naming transaction: 0 when image is in the store, -ENOENT with a
 * message otherwise. Every verb that makes a name point at an image checks
 * it here, in the transaction that writes the name.
 */
int cairn_naming_check(struct cairn_txn *t, const struct cairn_id *image);

/*
 * Points platform name at image inside a naming transaction: 0 when it
 * appended generation *gen, 1 when the platform already shows image (*gen
 * is its generation), or -errno. (platform.c; remotes.c records a follow in
 * the same transaction.)
 */
int cairn_platform_upgrade_txn(struct cairn_txn *t, const char *name,
			       const struct cairn_id *image, uint64_t *gen);

/* Points tag name at image inside a naming transaction (no checks). */
int cairn_tag_put(struct cairn_txn *t, const char *name, const struct cairn_id *image);

#endif
