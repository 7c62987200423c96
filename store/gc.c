/* SPDX-License-Identifier: MIT */
/*
 * gc.c - prune, mark from what is kept, sweep in bounded transactions,
 * rewrite packs that are mostly dead.
 */
#include "gc.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "chunk.h"
#include "source.h"
#include "pack.h"
#include "image.h"
#include "platform.h"
#include "walk.h"
#include "store-internal.h"

#define SWEEP_BATCH 10000 /* deletes per transaction */
#define GC_ROUNDS_MAX 20  /* marking rounds before gc gives up on names that keep moving */

int cairn_gc_lock(struct cairn_store *s, bool exclusive)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/gc.lock", cairn_store_dir(s));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return cairn_err(-errno, "cannot open '%s': %s", path, strerror(errno));
	if (flock(fd, exclusive ? LOCK_EX | LOCK_NB : LOCK_SH) < 0) {
		int err = errno;

		close(fd);
		if (err == EWOULDBLOCK)
			return cairn_err(-EBUSY, "an import is running; run gc when it is done");
		return cairn_err(-err, "cannot lock '%s': %s", path, strerror(err));
	}
	return fd;
}

/* A growable list of keys to delete from one database. */
struct keys {
	uint8_t *v;
	size_t n, cap, klen;
};

static int keys_add(struct keys *k, const void *key, size_t len)
{
	if (len != k->klen)
		return 0;
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 1024;
		uint8_t *p = realloc(k->v, cap * k->klen);

		if (!p)
			return -ENOMEM;
		k->v = p;
		k->cap = cap;
	}
	memcpy(k->v + k->n * k->klen, key, len);
	k->n++;
	return 0;
}

static int delete_keys(struct cairn_store *s, enum cairn_db db, const struct keys *k)
{
	for (size_t i = 0; i < k->n;) {
		struct cairn_txn *t;
		size_t end = i + SWEEP_BATCH < k->n ? i + SWEEP_BATCH : k->n;
		int ret = cairn_txn_begin(s, true, &t);

		if (ret)
			return ret;
		for (; i < end; i++) {
			ret = cairn_del(t, db, k->v + i * k->klen, k->klen);
			if (ret && ret != -ENOENT) {
				cairn_txn_abort(t);
				return ret;
			}
		}
		ret = cairn_txn_commit(t);
		if (ret)
			return ret;
	}
	return 0;
}

/* 1. History beyond the newest keep generations of each platform (never the current). */
struct prune_ctx {
	uint64_t current, total, keep;
	struct keys *del;
	const char *name;
};

static int count_gen(const struct cairn_generation *g, void *arg)
{
	((struct prune_ctx *)arg)->total++;
	(void)g;
	return 0;
}

static int pick_gen(const struct cairn_generation *g, void *arg)
{
	struct prune_ctx *p = arg;
	uint8_t key[256];
	size_t n = strlen(p->name);
	uint64_t be = htobe64(g->generation);

	/* generations are walked oldest first: the first total - keep go */
	if (p->total-- <= p->keep || g->generation == p->current)
		return 0;
	memcpy(key, p->name, n);
	key[n] = '\0';
	memcpy(key + n + 1, &be, 8);
	return keys_add(p->del, key, n + 9);
}

static int prune_history(struct cairn_store *s, int64_t keep, struct cairn_gc_stats *st)
{
	struct cairn_txn *t;
	struct cairn_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	int ret;

	if (keep < 0)
		return 0;
	ret = cairn_txn_begin(s, false, &t);
	if (ret)
		return ret;
	ret = cairn_cursor_open(t, CAIRN_DBI_PLATFORMS, &c);
	if (ret) {
		cairn_txn_abort(t);
		return ret;
	}
	for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); ret == 0;
	     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
		struct keys del = { .klen = 0 };
		struct cairn_platform p;
		struct prune_ctx pc = { .keep = (uint64_t)keep, .del = &del };
		char name[130];

		if (kl >= sizeof(name))
			continue;
		memcpy(name, k, kl);
		name[kl] = '\0';
		if (cairn_platform_get(t, name, &p))
			continue;
		pc.current = p.generation;
		pc.name = name;
		del.klen = kl + 9;
		ret = cairn_history_walk(t, name, count_gen, &pc);
		if (!ret)
			ret = cairn_history_walk(t, name, pick_gen, &pc);
		if (!ret && del.n) {
			ret = delete_keys(s, CAIRN_DBI_HISTORY, &del);
			st->generations += del.n;
		}
		free(del.v);
		if (ret)
			break;
	}
	cairn_cursor_close(c);
	cairn_txn_abort(t);
	return ret == -ENOENT ? 0 : ret;
}

/* 2. The images to keep: tags, platforms and their history, leases. */
static int keep_image(struct cairn_objmap *keep, const void *id)
{
	struct cairn_obj *o;
	bool added;

	return cairn_objmap_add(keep, CAIRN_OBJ_USER, id, &o, &added);
}

static int kept_images(struct cairn_txn *t, const struct cairn_gc_opts *o,
		       struct cairn_objmap *keep)
{
	static const enum cairn_db dbs[] = { CAIRN_DBI_TAGS, CAIRN_DBI_PLATFORMS,
					     CAIRN_DBI_HISTORY };
	int ret = 0;

	for (size_t i = 0; !ret && i < o->nleases; i++)
		ret = keep_image(keep, &o->leases[i]);
	for (size_t d = 0; !ret && d < ARRAY_SIZE(dbs); d++) {
		struct cairn_cursor *c;
		const void *k, *v;
		size_t kl, vl;

		ret = cairn_cursor_open(t, dbs[d], &c);
		if (ret)
			return ret;
		for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); ret == 0;
		     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
			if (dbs[d] == CAIRN_DBI_TAGS && vl == CAIRN_ID_LEN)
				ret = keep_image(keep, v);
			else if (dbs[d] == CAIRN_DBI_PLATFORMS &&
				 vl == sizeof(struct cairn_platform_disk))
				ret = keep_image(keep, ((const struct cairn_platform_disk *)v)->image);
			else if (dbs[d] == CAIRN_DBI_HISTORY &&
				 vl == sizeof(struct cairn_history_disk))
				ret = keep_image(keep, ((const struct cairn_history_disk *)v)->image);
			if (ret)
				break;
		}
		cairn_cursor_close(c);
		ret = ret == -ENOENT ? 0 : ret;
	}
	return ret;
}

/* One image record of the store, for a marking round. */
struct image_ent {
	struct cairn_id id;
	bool kept;
};

#define K_WALKED (CAIRN_OBJ_USER + 1) /* an image whose trees a round walked */

static int list_images(struct cairn_txn *t, struct image_ent **out, size_t *n)
{
	struct cairn_cursor *c;
	const void *k;
	size_t kl, cap = 0;
	int ret = cairn_cursor_open(t, CAIRN_DBI_IMAGES, &c);

	*out = NULL;
	*n = 0;
	if (ret)
		return ret;
	for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, NULL, NULL); ret == 0;
	     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, NULL, NULL)) {
		if (kl != CAIRN_ID_LEN)
			continue;
		if (*n == cap) {
			struct image_ent *p = realloc(*out, (cap = cap ? 2 * cap : 64) * sizeof(*p));

			if (!p) {
				ret = -ENOMEM;
				break;
			}
			*out = p;
		}
		memset(&(*out)[*n], 0, sizeof(**out));
		memcpy((*out)[(*n)++].id.b, k, CAIRN_ID_LEN);
	}
	cairn_cursor_close(c);
	return ret == -ENOENT ? 0 : ret;
}

/*
 * One marking round in read transaction t: the kept set from the names t
 * sees and the leases read now, then everything kept and not marked yet
 * is walked (what earlier rounds marked stays marked: a round after the
 * first walks only what a naming verb added meanwhile).
 */
static int mark_round(struct cairn_txn *t, const struct cairn_gc_opts *o, struct image_ent *imgs,
		      size_t n, struct cairn_objmap *live)
{
	struct cairn_id *leases = NULL;
	struct cairn_objmap keep;
	struct cairn_obj *w;
	size_t nleases = 0;
	bool added;
	int ret;

	cairn_objmap_init(&keep);
	ret = kept_images(t, o, &keep);
	/* leases read after the round's names: a mount that registers later names its image */
	if (!ret && o->leases_fn)
		ret = o->leases_fn(o->ctx, &leases, &nleases);
	for (size_t i = 0; !ret && i < nleases; i++)
		ret = keep_image(&keep, &leases[i]);
	for (size_t i = 0; !ret && i < n; i++) {
		struct cairn_image img;

		imgs[i].kept = cairn_objmap_find(&keep, CAIRN_OBJ_USER, &imgs[i].id) != NULL;
		if (!imgs[i].kept)
			continue;
		ret = cairn_objmap_add(live, K_WALKED, &imgs[i].id, &w, &added);
		if (ret || !added)
			continue;
		if (cairn_image_get(t, &imgs[i].id, &img)) {
			cairn_err_clear();
			continue; /* fsck reports it; nothing it names can be trusted to go */
		}
		ret = cairn_walk_image(t, live, 1, 0, &img.root, img.layers, img.nlayers, NULL,
				       NULL);
	}
	free(leases);
	cairn_objmap_release(&keep);
	return ret;
}

/*
 * The image sweep: deletes every unkept image record in one synced
 * transaction, but only if the epoch is still the one the round's names
 * were read at (no naming verb committed since). 1 when done, 0 when the
 * names moved (mark again), or -errno.
 */
static int drop_images(struct cairn_store *s, uint64_t epoch, const struct image_ent *imgs,
		       size_t n, struct cairn_gc_stats *st)
{
	struct cairn_txn *t;
	uint64_t now;
	int ret = cairn_txn_begin(s, true, &t);

	if (ret)
		return ret;
	ret = cairn_epoch_get(t, &now);
	if (!ret && now != epoch) {
		cairn_txn_abort(t);
		return 0;
	}
	for (size_t i = 0; !ret && i < n; i++) {
		if (imgs[i].kept)
			continue;
		ret = cairn_del(t, CAIRN_DBI_IMAGES, imgs[i].id.b, CAIRN_ID_LEN);
		if (ret == -ENOENT) {
			cairn_err_clear();
			ret = 0;
			continue;
		}
		st->images++;
	}
	if (ret) {
		cairn_txn_abort(t);
		return ret;
	}
	ret = cairn_txn_commit(t);
	return ret ? ret : 1;
}

/* 3-5. Mark from the kept images, drop the unkept ones, sweep the rest. */
static int mark_and_sweep(struct cairn_store *s, const struct cairn_gc_opts *o,
			  struct cairn_gc_stats *st, struct cairn_objmap *live)
{
	struct keys layers = { .klen = CAIRN_ID_LEN }, nodes = { .klen = CAIRN_ID_LEN };
	struct keys contents = { .klen = CAIRN_ID_LEN }, chunks = { .klen = CAIRN_ID_LEN };
	struct keys lazy = { .klen = CAIRN_ID_LEN };
	struct image_ent *imgs = NULL;
	struct cairn_cursor *c = NULL;
	struct cairn_txn *t = NULL;
	const void *k;
	size_t kl, nimgs = 0;
	int ret, round;

	/*
	 * The naming protocol (gc.h): mark from the names of one snapshot,
	 * then drop the unkept images in a transaction that checks no name
	 * moved since; when one did, mark again from the new names.
	 */
	for (round = 0;; round++) {
		uint64_t epoch;

		if (round == GC_ROUNDS_MAX) {
			ret = cairn_err(-EAGAIN, "names kept moving while gc marked (%d rounds): "
						 "run gc again", GC_ROUNDS_MAX);
			goto out;
		}
		cairn_txn_abort(t);
		ret = cairn_txn_begin(s, false, &t);
		if (!ret)
			ret = cairn_epoch_get(t, &epoch);
		free(imgs);
		imgs = NULL;
		if (!ret)
			ret = list_images(t, &imgs, &nimgs);
		if (!ret)
			ret = mark_round(t, o, imgs, nimgs, live);
		if (!ret)
			ret = drop_images(s, epoch, imgs, nimgs, st);
		if (ret < 0)
			goto out;
		if (ret == 1)
			break;
	}
	/*
	 * From here on every name points at a kept image (a verb naming a
	 * dropped one fails its check), so what t's snapshot holds unmarked
	 * goes: layers are nodes (a layer's id is its root).
	 */
	{
		static const struct {
			enum cairn_db db;
			uint8_t kind;
		} sweeps[] = {
			{ CAIRN_DBI_LAYERS, CAIRN_OBJ_NODE },
			{ CAIRN_DBI_NODES, CAIRN_OBJ_NODE },
			{ CAIRN_DBI_CONTENTS, CAIRN_OBJ_CONTENT },
			{ CAIRN_DBI_CHUNKS, CAIRN_OBJ_CHUNK },
			{ CAIRN_DBI_LAZY, CAIRN_OBJ_CHUNK },
		};
		struct keys *lists[] = { &layers, &nodes, &contents, &chunks, &lazy };

		ret = 0;
		for (size_t i = 0; !ret && i < ARRAY_SIZE(sweeps); i++) {
			ret = cairn_cursor_open(t, sweeps[i].db, &c);
			if (ret)
				break;
			for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, NULL, NULL); ret == 0;
			     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, NULL, NULL)) {
				const struct cairn_obj *ob =
					kl == CAIRN_ID_LEN ? cairn_objmap_find(live, sweeps[i].kind, k)
							   : NULL;

				/*
				 * a damaged object a kept image reaches stays: fsck
				 * reports it. A lazy record goes with the last kept
				 * image that needs its chunk, or once the chunk is
				 * local (the walk found it in the chunks database).
				 */
				if (!ob || (sweeps[i].db == CAIRN_DBI_LAZY &&
					    ob->state == CAIRN_OBJ_OK)) {
					ret = keys_add(lists[i], k, kl);
					if (ret)
						break;
				}
			}
			cairn_cursor_close(c);
			c = NULL;
			ret = ret == -ENOENT ? 0 : ret;
		}
	}
	cairn_txn_abort(t);
	t = NULL;
	if (!ret && !(ret = delete_keys(s, CAIRN_DBI_LAYERS, &layers)) &&
	    !(ret = delete_keys(s, CAIRN_DBI_NODES, &nodes)) &&
	    !(ret = delete_keys(s, CAIRN_DBI_CONTENTS, &contents)) &&
	    !(ret = delete_keys(s, CAIRN_DBI_CHUNKS, &chunks)))
		ret = delete_keys(s, CAIRN_DBI_LAZY, &lazy);
	st->layers += layers.n;
	st->nodes += nodes.n;
	st->contents += contents.n;
	st->chunks += chunks.n;
	st->lazy += lazy.n;
	st->rounds = (uint32_t)round + 1;
out:
	cairn_cursor_close(c);
	cairn_txn_abort(t);
	free(imgs);
	free(layers.v);
	free(nodes.v);
	free(contents.v);
	free(chunks.v);
	free(lazy.v);
	return ret;
}

/* 6. Packs: unlink dead ones, rewrite mostly dead ones, drop files nothing records. */
struct pack_live {
	uint32_t pack;
	uint64_t size, live;
};

static int pack_cmp(const void *a, const void *b)
{
	const struct pack_live *x = a, *y = b;

	return x->pack < y->pack ? -1 : x->pack > y->pack;
}

static struct pack_live *pack_find(struct pack_live *p, size_t n, uint32_t pack)
{
	struct pack_live key = { .pack = pack };

	return n ? bsearch(&key, p, n, sizeof(*p), pack_cmp) : NULL; /* p is NULL when n is 0 */
}

/* Copies the live chunks of one pack into a new pack and re-indexes them in one txn. */
static int rewrite_pack(struct cairn_store *s, struct pack_live *pl, uint64_t *new_size,
			uint32_t *new_id)
{
	struct cairn_pack_disk rec = { .version = CAIRN_FORMAT_VERSION };
	struct keys moved = { .klen = CAIRN_ID_LEN + sizeof(struct cairn_chunk_disk) };
	struct cairn_cursor *c = NULL;
	struct cairn_txn *t = NULL;
	char path[4096];
	uint64_t end = sizeof(struct cairn_pack_header);
	uint32_t id = 0;
	uint8_t key[4];
	const void *k, *v;
	size_t kl, vl;
	int fd = -1, ret;

	fd = cairn_pack_create(s, &id);
	if (fd < 0)
		return fd;
	ret = cairn_txn_begin(s, false, &t);
	if (!ret)
		ret = cairn_cursor_open(t, CAIRN_DBI_CHUNKS, &c);
	for (ret = ret ? ret : cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); ret == 0;
	     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
		struct cairn_chunk_ref ref;
		struct cairn_chunk_disk nrec;
		struct cairn_id cid;
		size_t elen;
		const void *entry;
		uint8_t buf[CAIRN_ID_LEN + sizeof(nrec)];

		if (kl != CAIRN_ID_LEN || cairn_chunk_parse(v, vl, &ref) || ref.pack != pl->pack)
			continue;
		memcpy(cid.b, k, CAIRN_ID_LEN);
		ret = cairn_chunks_entry(t, &cid, &entry, &elen);
		if (ret)
			break;
		ret = cairn_pack_write(fd, entry, elen, end);
		if (ret)
			break;
		cairn_chunk_index(entry, id, end, &nrec);
		end += elen;
		memcpy(buf, k, CAIRN_ID_LEN);
		memcpy(buf + CAIRN_ID_LEN, &nrec, sizeof(nrec));
		ret = keys_add(&moved, buf, sizeof(buf));
		if (ret)
			break;
	}
	cairn_cursor_close(c);
	cairn_txn_abort(t);
	t = NULL;
	if (ret != -ENOENT)
		goto fail;
	if (fdatasync(fd) < 0) {
		ret = -errno;
		goto fail;
	}
	close(fd);
	fd = -1;
	/* one transaction: the new pack's record and index, the old record gone */
	ret = cairn_txn_begin(s, true, &t);
	if (ret)
		goto fail;
	for (size_t i = 0; !ret && i < moved.n; i++) {
		const uint8_t *m = moved.v + i * moved.klen;

		ret = cairn_put(t, CAIRN_DBI_CHUNKS, m, CAIRN_ID_LEN, m + CAIRN_ID_LEN,
				sizeof(struct cairn_chunk_disk), 0, NULL, NULL);
	}
	if (!ret) {
		uint32_t be = htobe32(id);

		memcpy(key, &be, 4);
		CAIRN_SET(rec.size, end);
		ret = cairn_put(t, CAIRN_DBI_PACKS, key, 4, &rec, sizeof(rec), 0, NULL, NULL);
	}
	if (!ret) {
		uint32_t be = htobe32(pl->pack);

		memcpy(key, &be, 4);
		ret = cairn_del(t, CAIRN_DBI_PACKS, key, 4);
	}
	if (ret) {
		cairn_txn_abort(t);
		goto fail;
	}
	ret = cairn_txn_commit(t);
	if (ret)
		goto fail;
	free(moved.v);
	*new_size = end;
	*new_id = id;
	/*
	 * A reader whose transaction began before that commit may still follow
	 * an old index record into the old pack: let those finish first (they
	 * are one request long). Readers that mapped it keep their mapping.
	 */
	cairn_store_wait_readers(s, 5000);
	cairn_store_pack_path(s, pl->pack, path, sizeof(path));
	unlink(path);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	cairn_store_pack_path(s, id, path, sizeof(path));
	unlink(path);
	free(moved.v);
	return ret;
}

static int repack(struct cairn_store *s, double below, struct cairn_gc_stats *st)
{
	struct pack_live *p = NULL;
	uint32_t *made = NULL;
	size_t n = 0, cap = 0, nmade = 0;
	struct cairn_cursor *c = NULL;
	struct cairn_txn *t;
	const void *k, *v;
	size_t kl, vl;
	char path[4096];
	struct dirent *de;
	DIR *d;
	int ret = cairn_txn_begin(s, false, &t);

	if (ret)
		return ret;
	ret = cairn_cursor_open(t, CAIRN_DBI_PACKS, &c);
	for (ret = ret ? ret : cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); ret == 0;
	     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
		struct cairn_pack_disk rec;
		uint32_t be;

		if (kl != 4 || vl != sizeof(rec))
			continue;
		if (n == cap) {
			struct pack_live *q = realloc(p, (cap = cap ? 2 * cap : 16) * sizeof(*q));

			if (!q) {
				ret = -ENOMEM;
				break;
			}
			p = q;
		}
		memcpy(&be, k, 4);
		memcpy(&rec, v, sizeof(rec));
		p[n++] = (struct pack_live){ .pack = be32toh(be), .size = CAIRN_GET(rec.size) };
	}
	cairn_cursor_close(c);
	c = NULL;
	if (ret == -ENOENT) {
		if (n)
			qsort(p, n, sizeof(*p), pack_cmp);
		ret = cairn_cursor_open(t, CAIRN_DBI_CHUNKS, &c);
		for (ret = ret ? ret : cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl);
		     ret == 0; ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
			struct cairn_chunk_ref ref;
			struct pack_live *pl;

			if (!cairn_chunk_parse(v, vl, &ref) && (pl = pack_find(p, n, ref.pack)))
				pl->live += sizeof(struct cairn_pack_entry) + ref.len;
		}
		cairn_cursor_close(c);
	}
	cairn_txn_abort(t);
	if (ret != -ENOENT) {
		free(p);
		return ret;
	}
	ret = 0;
	made = calloc(n ? n : 1, sizeof(*made));
	if (!made) {
		free(p);
		return -ENOMEM;
	}
	for (size_t i = 0; !ret && i < n; i++) {
		uint64_t header = sizeof(struct cairn_pack_header), new_size = 0;

		st->pack_bytes_before += p[i].size;
		if (p[i].live == 0) {
			struct cairn_txn *w;
			uint32_t be = htobe32(p[i].pack);

			ret = cairn_txn_begin(s, true, &w);
			if (!ret) {
				ret = cairn_del(w, CAIRN_DBI_PACKS, &be, 4);
				ret = ret ? (cairn_txn_abort(w), ret) : cairn_txn_commit(w);
			}
			if (!ret) {
				cairn_store_wait_readers(s, 5000);
				cairn_store_pack_path(s, p[i].pack, path, sizeof(path));
				unlink(path);
				st->packs_removed++;
			}
		} else if ((double)p[i].live < below * (double)(p[i].size - header)) {
			ret = rewrite_pack(s, &p[i], &new_size, &made[nmade]);
			if (!ret) {
				nmade++;
				st->packs_rewritten++;
				st->pack_bytes_after += new_size;
			}
		} else {
			st->pack_bytes_after += p[i].size;
		}
	}
	/* pack files no record names: what killed imports (or rewrites) left */
	snprintf(path, sizeof(path), "%s/packs", cairn_store_dir(s));
	d = ret ? NULL : opendir(path);
	while (d && (de = readdir(d))) {
		unsigned id;
		char tail, full[4096 + 300];

		if (sscanf(de->d_name, "%8x.pac%c", &id, &tail) != 2 || tail != 'k')
			continue;
		if (pack_find(p, n, id))
			continue; /* recorded (a rewritten one's file is gone already) */
		{
			bool fresh = false;

			for (size_t j = 0; j < nmade; j++)
				fresh |= made[j] == id;
			if (fresh)
				continue; /* just written by this gc */
		}
		snprintf(full, sizeof(full), "%s/%s", path, de->d_name);
		unlink(full);
		st->packs_removed++;
	}
	if (d)
		closedir(d);
	free(made);
	free(p);
	return ret;
}

int cairn_gc(struct cairn_store *s, const struct cairn_gc_opts *o, struct cairn_gc_stats *st)
{
	struct cairn_objmap live;
	int ret;

	memset(st, 0, sizeof(*st));
	cairn_objmap_init(&live);
	ret = cairn_store_set_batch_mode(s, false);
	if (!ret)
		ret = prune_history(s, o->keep, st);
	if (!ret)
		ret = mark_and_sweep(s, o, st, &live);
	cairn_objmap_release(&live);
	if (!ret)
		ret = repack(s, o->repack_below, st);
	if (!ret)
		ret = cairn_store_sync(s);
	return ret;
}
