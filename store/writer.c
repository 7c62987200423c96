/* SPDX-License-Identifier: MIT */
/*
 * writer.c - batched, dedup-verified writes and the publishing commit.
 *
 * Content streaming: bytes arrive in file order. They are classified in
 * aligned blocks of CAIRN_HOLE_BLOCK: a maximal run of all-zero blocks
 * becomes a hole extent, everything else is data, cut into chunks by the
 * content-defined chunker (which restarts after each hole). A file's
 * content id (content.h) is its one chunk's id or the hash of its extent
 * list, so the bytes are hashed once (per chunk) and a hole a source
 * reports as one (SEEK_HOLE, a tar's sparse map) costs no reads and no
 * hashing, whatever its length.
 */
#include "writer.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>

#include "chunk.h"
#include "content.h"
#include "source.h"
#include "cpool.h"
#include "pack.h"
#include "image.h"
#include "lazy.h"
#include "store-internal.h"

#define BATCH_BYTES (64u << 20) /* flush when this much is gathered */
#define MAX_WORKERS 8
#define PENDING (UINT64_MAX - 1)  /* arena_off of a chunk still being compressed */

/* One record waiting in the batch arena. */
struct pending_hdr {
	uint8_t db;
	uint8_t reserved[3];
	uint32_t vlen;
	uint8_t key[CAIRN_ID_LEN];
};

/* A pack this writer made: how far it is written, and how far committed (its record). */
struct writer_pack {
	uint32_t id;
	uint64_t end, committed;
};

/*
 * Ids this writer has seen, per database (a chunk and a content list may
 * share an id: format.h): open addressing, never shrinks.
 */
struct seen_slot {
	struct cairn_id id;
	uint32_t raw_len; /* chunks: decoded length */
	uint8_t used;
	uint8_t db;       /* enum cairn_db */
	uint8_t mine;     /* this writer inserted it in the store (a flush committed it) */
	uint64_t arena_off; /* value offset in the arena, or UINT64_MAX once flushed */
};

struct cairn_writer {
	struct cairn_store *s;
	unsigned flags;
	int level;
	const struct cairn_chunker *chunker;
	struct cairn_zctx z;
	struct cairn_txn *rtxn; /* for dedup look-ups; renewed after each flush */

	struct cairn_buf arena; /* pending_hdr + value, repeated; chunks as pack entries */
	struct cairn_buf index; /* chunk index records built during a flush */

	struct cairn_cpool *pool; /* compresses new chunks */
	struct cairn_cgroup *cur; /* new chunks not yet handed to the pool */

	int pack_fd;            /* the pack this writer appends to, or -1 */
	uint32_t pack_id;
	uint64_t pack_end;
	bool pack_dirty;        /* written since its last fdatasync */
	struct writer_pack *packs; /* every pack this writer made, the current one last */
	size_t npacks, packs_cap;
	uint64_t epoch0;        /* the store's epoch when the writer began */
	struct seen_slot *seen;
	size_t seen_cap, seen_count;

	/* the file being streamed */
	bool sparse;                /* a hole block was seen */
	uint64_t file_off;          /* logical bytes consumed so far */
	struct cairn_buf seg;       /* data not yet cut into chunks */
	uint8_t blk[CAIRN_HOLE_BLOCK]; /* the current partial block */
	size_t blk_len;
	uint64_t hole_run;          /* zero bytes pending as a hole */
	uint64_t ext_end;           /* end of the last emitted extent */
	struct cairn_buf extents;   /* struct cairn_extent_disk array */
	struct cairn_buf scratch;   /* chunk encoding / decode buffer */
	struct cairn_buf enc;       /* node encoding */

	struct cairn_writer_stats st;
};

static uint64_t id_hash(enum cairn_db db, const struct cairn_id *id)
{
	uint64_t h;

	memcpy(&h, id->b + 8, sizeof(h));
	return h + (uint64_t)db * 0x9e3779b97f4a7c15ull;
}

static struct seen_slot *seen_find(struct cairn_writer *w, enum cairn_db db,
				   const struct cairn_id *id)
{
	size_t mask = w->seen_cap - 1;

	for (size_t i = id_hash(db, id) & mask;; i = (i + 1) & mask) {
		struct seen_slot *s = &w->seen[i];

		if (!s->used || (s->db == db && cairn_id_eq(&s->id, id)))
			return s;
	}
}

static int seen_add(struct cairn_writer *w, enum cairn_db db, const struct cairn_id *id,
		    uint32_t raw_len, uint64_t arena_off)
{
	struct seen_slot *s;

	if ((w->seen_count + 1) * 4 > w->seen_cap * 3) {
		size_t old_cap = w->seen_cap, cap = old_cap ? old_cap * 2 : 4096;
		struct seen_slot *old = w->seen;

		w->seen = calloc(cap, sizeof(*w->seen));
		if (!w->seen) {
			w->seen = old;
			return -ENOMEM;
		}
		w->seen_cap = cap;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].used)
				*seen_find(w, old[i].db, &old[i].id) = old[i];
		free(old);
	}
	s = seen_find(w, db, id);
	if (!s->used)
		w->seen_count++;
	s->id = *id;
	s->db = (uint8_t)db;
	s->raw_len = raw_len;
	s->used = 1;
	s->arena_off = arena_off;
	return 0;
}

int cairn_writer_new(struct cairn_store *s, unsigned flags, struct cairn_writer **out)
{
	struct cairn_writer *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	w->s = s;
	w->flags = flags;
	w->pack_fd = -1;
	w->level = cairn_store_params(s)->zstd_level;
	w->chunker = cairn_store_chunker(s);
	ret = cairn_txn_begin(s, false, &w->rtxn);
	if (!ret)
		ret = cairn_epoch_get(w->rtxn, &w->epoch0);
	if (ret)
		goto err;
	{
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		unsigned threads = n > 1 ? (unsigned)(n < MAX_WORKERS ? n : MAX_WORKERS) : 0;

		ret = cairn_cpool_new(threads, w->level, flags & CAIRN_WRITER_UNTRUSTED, &w->pool);
		if (ret)
			goto err;
	}
	*out = w;
	return 0;
err:
	cairn_writer_free(w);
	return ret;
}

void cairn_writer_free(struct cairn_writer *w)
{
	if (!w)
		return;
	cairn_cpool_free(w->pool);
	cairn_cgroup_free(w->cur);
	cairn_txn_abort(w->rtxn);
	if (w->pack_fd >= 0)
		close(w->pack_fd);
	free(w->packs);
	cairn_buf_release(&w->index);
	cairn_zctx_release(&w->z);
	free(w->seen);
	cairn_buf_release(&w->arena);
	cairn_buf_release(&w->seg);
	cairn_buf_release(&w->extents);
	cairn_buf_release(&w->scratch);
	cairn_buf_release(&w->enc);
	free(w);
}

const struct cairn_writer_stats *cairn_writer_stats(const struct cairn_writer *w)
{
	return &w->st;
}

struct cairn_store *cairn_writer_store(const struct cairn_writer *w)
{
	return w->s;
}

static int collision(const char *what, const struct cairn_id *id)
{
	char hex[CAIRN_ID_HEX_LEN + 1];

	cairn_id_hex(id, hex);
	return cairn_err(-EEXIST, "hash collision: %s %s is stored with different bytes; refusing "
				  "to store over it", what, hex);
}

/*
 * Compares decoded bytes (n from a decode, or -errno) with raw: 1 when
 * equal, 0 for a true collision (different bytes that hash to the same id),
 * -EIO when the stored bytes do not even hash to their id (damage).
 */
static int compare_decoded(struct cairn_writer *w, const struct cairn_id *id, long n,
			   const void *raw, size_t len)
{
	char hex[CAIRN_ID_HEX_LEN + 1];
	struct cairn_id got;

	cairn_id_hex(id, hex);
	if (n < 0)
		return cairn_err(-EIO, "%s (run 'cairn fsck')", cairn_errmsg());
	if ((size_t)n == len && memcmp(w->scratch.data, raw, len) == 0)
		return 1;
	cairn_hash(w->scratch.data, (size_t)n, &got);
	if (!cairn_id_eq(&got, id))
		return cairn_err(-EIO, "stored chunk %s is damaged (run 'cairn fsck'): it does "
				       "not match its id", hex);
	return 0;
}

/* Compares the chunk in a pack entry still in the arena with raw. */
static int entry_same(struct cairn_writer *w, const struct cairn_id *id, const void *entry,
		      size_t elen, const void *raw, size_t len)
{
	int ret = cairn_buf_reserve(&w->scratch, len);

	if (ret)
		return ret;
	return compare_decoded(w, id,
			       cairn_chunk_decode_entry(&w->z, NULL, false, entry, elen,
							w->scratch.data, len),
			       raw, len);
}

/* Compares a stored chunk with raw. */
static int stored_same(struct cairn_writer *w, const struct cairn_id *id, const void *raw,
		       size_t len)
{
	int ret = cairn_buf_reserve(&w->scratch, len);

	if (ret)
		return ret;
	return compare_decoded(w, id,
			       cairn_chunks_read(w->rtxn, &w->z, id,
						 CAIRN_READ_LOCAL | CAIRN_READ_UNVERIFIED,
						 w->scratch.data, len),
			       raw, len);
}

static int arena_add(struct cairn_writer *w, enum cairn_db db, const struct cairn_id *key,
		     const void *val, size_t vlen, uint64_t *val_off)
{
	struct pending_hdr h = { .db = (uint8_t)db, .vlen = (uint32_t)vlen };
	int ret;

	memcpy(h.key, key->b, CAIRN_ID_LEN);
	ret = cairn_buf_reserve(&w->arena, sizeof(h) + vlen);
	if (ret)
		return ret;
	cairn_buf_append(&w->arena, &h, sizeof(h));
	*val_off = w->arena.len;
	cairn_buf_append(&w->arena, val, vlen);
	w->st.stored_bytes_new += vlen;
	return 0;
}

static int maybe_flush(struct cairn_writer *w)
{
	return w->arena.len >= BATCH_BYTES ? cairn_writer_flush(w) : 0;
}

/* Files finished groups' pack entries into the batch. */
static int integrate(struct cairn_writer *w, struct cairn_cgroup *list)
{
	struct cairn_cgroup *g, *next;
	int ret = 0;

	for (g = list; g; g = next) {
		size_t pos = 0;

		next = g->next;
		if (!ret)
			ret = g->ret;
		for (size_t i = 0; !ret && i < g->n; i++) {
			struct cairn_pack_entry h;
			size_t elen;
			uint64_t off;

			memcpy(&h, g->out.data + pos, sizeof(h));
			elen = sizeof(h) + CAIRN_GET(h.len);
			ret = arena_add(w, CAIRN_DBI_CHUNKS, &g->items[i].id, g->out.data + pos, elen,
					&off);
			if (!ret)
				seen_find(w, CAIRN_DBI_CHUNKS, &g->items[i].id)->arena_off = off;
			pos += elen;
		}
		cairn_cgroup_free(g);
	}
	return ret;
}

static int submit_cur(struct cairn_writer *w)
{
	if (!w->cur)
		return 0;
	cairn_cpool_submit(w->pool, w->cur);
	w->cur = NULL;
	return integrate(w, cairn_cpool_take(w->pool, false));
}

/* Waits for every chunk in flight to reach the batch. */
static int drain(struct cairn_writer *w)
{
	int ret = submit_cur(w);
	int ret2 = integrate(w, cairn_cpool_take(w->pool, true));

	return ret ? ret : ret2;
}

/* Stores one chunk of file data (dedup first); returns its id. */
static int put_chunk(struct cairn_writer *w, const uint8_t *data, size_t len, struct cairn_id *id)
{
	bool untrusted = w->flags & CAIRN_WRITER_UNTRUSTED;
	struct seen_slot *s;
	const void *val;
	size_t vlen;
	uint32_t raw_len;
	uint8_t flags;
	int ret;

	cairn_hash(data, len, id);
	if (cairn_id_is_zero(id))
		return cairn_err(-EEXIST, "a chunk hashes to the reserved hole id");
	if (w->seen_cap && (s = seen_find(w, CAIRN_DBI_CHUNKS, id))->used) {
		if (s->raw_len != len)
			return collision("chunk", id);
		if (untrusted && s->arena_off == PENDING) {
			ret = drain(w);
			if (ret)
				return ret;
			s = seen_find(w, CAIRN_DBI_CHUNKS, id);
		}
		if (untrusted) {
			if (s->arena_off != UINT64_MAX) {
				struct pending_hdr h;

				memcpy(&h, w->arena.data + s->arena_off - sizeof(h), sizeof(h));
				ret = entry_same(w, id, w->arena.data + s->arena_off, h.vlen, data,
						 len);
			} else {
				ret = stored_same(w, id, data, len);
			}
			if (ret <= 0)
				return ret < 0 ? ret : collision("chunk", id);
		}
		w->st.chunks_dup++;
		return 0;
	}
	ret = cairn_get(w->rtxn, CAIRN_DBI_CHUNKS, id, CAIRN_ID_LEN, &val, &vlen);
	if (ret == 0) {
		if (cairn_chunk_header(val, vlen, &raw_len, &flags))
			return stored_same(w, id, data, len); /* reports the damage */
		if (raw_len != len)
			return collision("chunk", id);
		if (untrusted || (flags & CAIRN_CHUNK_UNTRUSTED)) {
			ret = stored_same(w, id, data, len);
			if (ret <= 0)
				return ret < 0 ? ret : collision("chunk", id);
		}
		w->st.chunks_dup++;
		return seen_add(w, CAIRN_DBI_CHUNKS, id, (uint32_t)len, UINT64_MAX);
	}
	if (ret != -ENOENT)
		return ret;

	if (!w->cur && !(w->cur = cairn_cgroup_new()))
		return -ENOMEM;
	ret = cairn_cgroup_add(w->cur, id, data, len);
	if (ret)
		return ret;
	ret = seen_add(w, CAIRN_DBI_CHUNKS, id, (uint32_t)len, PENDING);
	if (ret)
		return ret;
	w->st.chunks_new++;
	w->st.chunk_bytes_new += len;
	if (w->cur->raw.len >= CAIRN_CGROUP_BYTES) {
		ret = submit_cur(w);
		if (ret)
			return ret;
	}
	return maybe_flush(w);
}

/* Stores a node or content value under the hash of its bytes. */
static int put_value(struct cairn_writer *w, enum cairn_db db, const struct cairn_id *id,
		     const void *val, size_t vlen, bool *dup)
{
	struct seen_slot *s;
	const void *old;
	size_t oldlen;
	uint64_t off;
	int ret;

	*dup = true;
	if (w->seen_cap && (s = seen_find(w, db, id))->used) {
		if (s->arena_off != UINT64_MAX) {
			old = w->arena.data + s->arena_off;
			oldlen = s->raw_len;
		} else if ((ret = cairn_get(w->rtxn, db, id, CAIRN_ID_LEN, &old, &oldlen))) {
			return ret;
		}
		if (oldlen != vlen || memcmp(old, val, vlen))
			return collision(db == CAIRN_DBI_NODES ? "node" : "content", id);
		return 0;
	}
	ret = cairn_get(w->rtxn, db, id, CAIRN_ID_LEN, &old, &oldlen);
	if (ret == 0) {
		if (oldlen != vlen || memcmp(old, val, vlen))
			return collision(db == CAIRN_DBI_NODES ? "node" : "content", id);
		return seen_add(w, db, id, (uint32_t)vlen, UINT64_MAX);
	}
	if (ret != -ENOENT)
		return ret;
	*dup = false;
	ret = arena_add(w, db, id, val, vlen, &off);
	if (ret)
		return ret;
	ret = seen_add(w, db, id, (uint32_t)vlen, off);
	if (ret)
		return ret;
	return maybe_flush(w);
}

/* Syncs the pack's bytes written since the last sync. */
static int pack_sync(struct cairn_writer *w)
{
	char ebuf[128];

	if (!w->pack_dirty)
		return 0;
	if (fdatasync(w->pack_fd) < 0)
		return cairn_err(-errno, "cannot sync pack %08x: %s", w->pack_id,
				 cairn_strerror(errno, ebuf, sizeof(ebuf)));
	w->pack_dirty = false;
	return 0;
}

/* Starts a new pack for this writer; durable before anything points into it. */
static int pack_start(struct cairn_writer *w)
{
	struct writer_pack *p;
	int fd, ret;

	if (w->pack_fd >= 0) {
		/* the index records of this batch may point into it too */
		ret = pack_sync(w);
		if (ret)
			return ret;
		close(w->pack_fd);
		w->pack_fd = -1;
	}
	if (w->npacks == w->packs_cap) {
		size_t cap = w->packs_cap ? 2 * w->packs_cap : 4;

		p = realloc(w->packs, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		w->packs = p;
		w->packs_cap = cap;
	}
	fd = cairn_pack_create(w->s, &w->pack_id);
	if (fd < 0)
		return fd;
	w->pack_fd = fd;
	w->pack_end = sizeof(struct cairn_pack_header);
	w->packs[w->npacks++] = (struct writer_pack){ .id = w->pack_id, .end = w->pack_end };
	return 0;
}

/*
 * Appends the batch's chunks to the pack and builds their index records in
 * w->index (key, then struct cairn_chunk_disk). The pack is synced before
 * the index that points into it can commit.
 */
static int flush_chunks(struct cairn_writer *w)
{
	struct cairn_chunk_disk rec;
	bool any = false;
	char ebuf[128];
	int ret;

	w->index.len = 0;
	for (size_t off = 0; off < w->arena.len;) {
		struct pending_hdr h;
		const uint8_t *val;

		memcpy(&h, w->arena.data + off, sizeof(h));
		val = w->arena.data + off + sizeof(h);
		off += sizeof(h) + h.vlen;
		if (h.db != CAIRN_DBI_CHUNKS)
			continue;
		if (w->pack_fd < 0 || w->pack_end >= CAIRN_PACK_ROTATE) {
			ret = pack_start(w);
			if (ret)
				return ret;
		}
		ret = cairn_pack_write(w->pack_fd, val, h.vlen, w->pack_end);
		if (ret)
			return cairn_err(ret, "cannot write to pack %08x: %s", w->pack_id,
					 cairn_strerror(-ret, ebuf, sizeof(ebuf)));
		cairn_chunk_index(val, w->pack_id, w->pack_end, &rec);
		w->pack_end += h.vlen;
		w->packs[w->npacks - 1].end = w->pack_end;
		w->pack_dirty = true;
		if ((ret = cairn_buf_append(&w->index, h.key, CAIRN_ID_LEN)) ||
		    (ret = cairn_buf_append(&w->index, &rec, sizeof(rec))))
			return ret;
		any = true;
	}
	return any ? pack_sync(w) : 0;
}

/*
 * Puts one record; a record another writer stored meanwhile must be the
 * same. A record this writer inserts is marked as its own (abandon).
 */
static int flush_put(struct cairn_writer *w, struct cairn_txn *t, enum cairn_db db,
		     const uint8_t *key, const void *val, size_t vlen)
{
	struct cairn_id id;
	const void *old;
	size_t oldlen;
	int ret;

	/* where a lazy chunk is: the newest pull's word is the one to keep */
	if (db == CAIRN_DBI_LAZY)
		return cairn_put(t, db, key, CAIRN_ID_LEN, val, vlen, 0, NULL, NULL);
	ret = cairn_put(t, db, key, CAIRN_ID_LEN, val, vlen, CAIRN_PUT_NOOVERWRITE, &old, &oldlen);
	memcpy(id.b, key, CAIRN_ID_LEN);
	if (ret == 0) {
		struct seen_slot *s = seen_find(w, db, &id);

		if (s->used)
			s->mine = 1;
		return 0;
	}
	if (ret != -EEXIST)
		return ret;
	if (db == CAIRN_DBI_CHUNKS) {
		uint32_t a, b;

		/* keep theirs; ours is garbage in our pack until gc */
		if (cairn_chunk_header(old, oldlen, &a, NULL) ||
		    cairn_chunk_header(val, vlen, &b, NULL) || a != b)
			return collision("chunk", &id);
		return 0;
	}
	return oldlen == vlen && memcmp(old, val, oldlen) == 0 ? 0 : collision("node", &id);
}

int cairn_writer_flush(struct cairn_writer *w)
{
	struct cairn_pack_disk pack = { .version = CAIRN_FORMAT_VERSION };
	struct cairn_txn *t;
	uint8_t pack_key[4];
	int ret, rret;

	ret = drain(w);
	if (ret)
		return ret;
	if (w->arena.len == 0)
		return 0;
	ret = flush_chunks(w);
	if (ret)
		return ret;
	ret = cairn_store_set_batch_mode(w->s, true);
	if (ret)
		return ret;
	/* our own snapshot would keep LMDB from reusing the pages it frees */
	cairn_txn_reset(w->rtxn);
	ret = cairn_txn_begin(w->s, true, &t);
	if (ret)
		goto renew;
	for (size_t off = 0; !ret && off < w->index.len;
	     off += CAIRN_ID_LEN + sizeof(struct cairn_chunk_disk))
		ret = flush_put(w, t, CAIRN_DBI_CHUNKS, w->index.data + off,
				w->index.data + off + CAIRN_ID_LEN, sizeof(struct cairn_chunk_disk));
	for (size_t off = 0; !ret && off < w->arena.len;) {
		struct pending_hdr h;

		memcpy(&h, w->arena.data + off, sizeof(h));
		if (h.db != CAIRN_DBI_CHUNKS)
			ret = flush_put(w, t, h.db, h.key, w->arena.data + off + sizeof(h), h.vlen);
		off += sizeof(h) + h.vlen;
	}
	/* every pack written in this batch (a rotation may have closed one) */
	for (size_t i = 0; !ret && i < w->npacks; i++) {
		uint32_t be = htobe32(w->packs[i].id);

		if (w->packs[i].end == w->packs[i].committed)
			continue;
		memcpy(pack_key, &be, sizeof(be));
		CAIRN_SET(pack.size, w->packs[i].end);
		ret = cairn_put(t, CAIRN_DBI_PACKS, pack_key, sizeof(pack_key), &pack, sizeof(pack),
				0, NULL, NULL);
	}
	if (ret) {
		cairn_txn_abort(t);
		goto renew;
	}
	ret = cairn_txn_commit(t);
	if (ret)
		goto renew;
	for (size_t i = 0; i < w->npacks; i++)
		w->packs[i].committed = w->packs[i].end;
	w->arena.len = 0;
	w->st.batches++;
	for (size_t i = 0; i < w->seen_cap; i++)
		w->seen[i].arena_off = UINT64_MAX;
renew:
	rret = cairn_txn_renew(w->rtxn);
	return ret ? ret : rret;
}

/* File streaming. */

void cairn_writer_file_begin(struct cairn_writer *w)
{
	w->sparse = false;
	w->file_off = 0;
	w->seg.len = 0;
	w->blk_len = 0;
	w->hole_run = 0;
	w->ext_end = 0;
	w->extents.len = 0;
}

static int add_extent(struct cairn_writer *w, uint64_t len, const struct cairn_id *id)
{
	struct cairn_extent_disk e;

	w->ext_end += len;
	CAIRN_SET(e.end, w->ext_end);
	memcpy(e.id, id->b, CAIRN_ID_LEN);
	return cairn_buf_append(&w->extents, &e, sizeof(e));
}

/* Cuts chunks off the segment; all of it when final. */
static int seg_cut(struct cairn_writer *w, bool final)
{
	size_t done = 0;
	int ret = 0;

	while (done < w->seg.len) {
		size_t n = cairn_chunker_next(w->chunker, w->seg.data + done, w->seg.len - done,
					      final);
		struct cairn_id id;

		if (n == 0)
			break;
		ret = put_chunk(w, w->seg.data + done, n, &id);
		if (ret)
			return ret;
		ret = add_extent(w, n, &id);
		if (ret)
			return ret;
		done += n;
	}
	if (done) {
		memmove(w->seg.data, w->seg.data + done, w->seg.len - done);
		w->seg.len -= done;
	}
	return 0;
}

static int flush_hole(struct cairn_writer *w)
{
	static const struct cairn_id zero;
	int ret;

	if (!w->hole_run)
		return 0;
	ret = add_extent(w, w->hole_run, &zero);
	w->hole_run = 0;
	return ret;
}

/* One whole aligned block of data. */
static int add_block(struct cairn_writer *w, const uint8_t *p, size_t len)
{
	int ret;

	if (cairn_all_zero(p, len)) {
		if (w->seg.len) {
			ret = seg_cut(w, true);
			if (ret)
				return ret;
		}
		w->hole_run += len;
		w->sparse = true;
		return 0;
	}
	ret = flush_hole(w);
	if (ret)
		return ret;
	ret = cairn_buf_append(&w->seg, p, len);
	if (ret)
		return ret;
	/* a file that may still be one chunk (content.h) is not cut */
	if (w->seg.len < w->chunker->p.max || (!w->sparse && w->file_off <= CAIRN_ONE_CHUNK_MAX))
		return 0;
	return seg_cut(w, false);
}

int cairn_writer_file_data(struct cairn_writer *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t bs = CAIRN_HOLE_BLOCK;
	int ret;

	w->file_off += len;
	w->st.bytes_in += len;
	while (len) {
		if (w->blk_len == 0 && len >= bs) {
			ret = add_block(w, p, bs);
			p += bs;
			len -= bs;
		} else {
			size_t n = bs - w->blk_len < len ? bs - w->blk_len : len;

			memcpy(w->blk + w->blk_len, p, n);
			w->blk_len += n;
			p += n;
			len -= n;
			ret = 0;
			if (w->blk_len == bs) {
				w->blk_len = 0;
				ret = add_block(w, w->blk, bs);
			}
		}
		if (ret)
			return ret;
	}
	return 0;
}

int cairn_writer_file_hole(struct cairn_writer *w, uint64_t len)
{
	static const uint8_t zeros[CAIRN_HOLE_BLOCK];
	size_t bs = CAIRN_HOLE_BLOCK;
	int ret;

	/* up to the next block boundary, zeros go through the data path */
	if (w->blk_len) {
		size_t n = bs - w->blk_len < len ? bs - w->blk_len : (size_t)len;

		ret = cairn_writer_file_data(w, zeros, n);
		if (ret)
			return ret;
		len -= n;
	}
	if (len >= bs) {
		uint64_t whole = len - len % bs;

		if (w->seg.len) {
			ret = seg_cut(w, true);
			if (ret)
				return ret;
		}
		w->hole_run += whole;
		w->file_off += whole;
		w->st.bytes_in += whole;
		len -= whole;
		w->sparse = true;
	}
	return len ? cairn_writer_file_data(w, zeros, (size_t)len) : 0;
}

int cairn_writer_file_end(struct cairn_writer *w, struct cairn_node_build *n)
{
	uint32_t count;
	bool dup;
	int ret;

	/* a partial last block is data even when it is zero */
	if (w->blk_len) {
		ret = flush_hole(w);
		if (ret)
			return ret;
		ret = cairn_buf_append(&w->seg, w->blk, w->blk_len);
		if (ret)
			return ret;
		w->blk_len = 0;
	}
	n->size = w->file_off;
	n->content_kind = cairn_content_kind_for(n->size, w->sparse);
	if (n->content_kind == CAIRN_CONTENT_EMPTY) {
		cairn_hash("", 0, &n->content);
		return 0;
	}
	if (n->content_kind == CAIRN_CONTENT_CHUNK) {
		/* nothing was cut (add_block): the whole file is in seg, its id the chunk's */
		if (w->seg.len != n->size)
			return cairn_err(-EIO, "internal error: a one-chunk file was cut");
		ret = put_chunk(w, w->seg.data, w->seg.len, &n->content);
		w->seg.len = 0;
		return ret;
	}
	ret = seg_cut(w, true);
	if (ret)
		return ret;
	ret = flush_hole(w);
	if (ret)
		return ret;
	count = (uint32_t)(w->extents.len / sizeof(struct cairn_extent_disk));
	w->enc.len = 0;
	ret = cairn_content_encode((const struct cairn_extent_disk *)w->extents.data, count,
				   n->size, &w->enc);
	if (ret)
		return ret;
	cairn_content_list_id(w->enc.data, w->enc.len, &n->content);
	return put_value(w, CAIRN_DBI_CONTENTS, &n->content, w->enc.data, w->enc.len, &dup);
}

int cairn_writer_put_node(struct cairn_writer *w, const struct cairn_node_build *n,
			  struct cairn_id *id)
{
	bool dup;
	int ret;

	w->enc.len = 0;
	ret = cairn_node_encode(n, &w->enc);
	if (ret)
		return cairn_err(ret, "internal error: a node breaks the encoding rules");
	cairn_hash(w->enc.data, w->enc.len, id);
	ret = put_value(w, CAIRN_DBI_NODES, id, w->enc.data, w->enc.len, &dup);
	if (ret)
		return ret;
	if (dup)
		w->st.nodes_dup++;
	else
		w->st.nodes_new++;
	return 0;
}

int cairn_writer_publish(struct cairn_writer *w, const struct cairn_publish *p,
			 struct cairn_id *image)
{
	struct cairn_layer_disk layer = { .version = CAIRN_FORMAT_VERSION, .source = p->source };
	struct cairn_buf rec = { 0 };
	struct cairn_id *layers;
	struct cairn_txn *t = NULL;
	uint32_t n = p->nbase + 1;
	int ret;

	layers = calloc(n, sizeof(*layers));
	if (!layers)
		return -ENOMEM;
	for (uint32_t i = 0; i < p->nbase; i++)
		layers[i] = p->base_layers[i];
	layers[p->nbase] = p->layer_root;
	cairn_image_id(layers, n, &p->root, image);

	ret = cairn_writer_flush(w);
	if (ret)
		goto out;
	ret = cairn_store_set_batch_mode(w->s, false);
	if (ret)
		goto out;
	ret = cairn_store_sync(w->s);
	if (ret)
		goto out;
	ret = cairn_image_encode(layers, n, &p->root, cairn_now_ns(), p->logical_size, p->nodes,
				 p->msg, &rec);
	if (ret)
		goto out;

	ret = cairn_naming_begin(w->s, &t);
	if (ret)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		memcpy(layer.root, layers[i].b, CAIRN_ID_LEN);
		ret = cairn_put(t, CAIRN_DBI_LAYERS, layers[i].b, CAIRN_ID_LEN, &layer,
				sizeof(layer), CAIRN_PUT_NOOVERWRITE, NULL, NULL);
		if (ret && ret != -EEXIST)
			goto out;
	}
	ret = cairn_put(t, CAIRN_DBI_IMAGES, image->b, CAIRN_ID_LEN, rec.data, rec.len,
			CAIRN_PUT_NOOVERWRITE, NULL, NULL);
	if (ret && ret != -EEXIST)
		goto out;
	if (p->tag) {
		ret = cairn_tag_put(t, p->tag, image);
		if (ret)
			goto out;
	}
	ret = cairn_naming_commit(t);
	t = NULL;
out:
	cairn_txn_abort(t);
	cairn_buf_release(&rec);
	free(layers);
	return ret;
}

/*
 * Objects that arrive already encoded (pulled from a remote store). The
 * caller has checked each against its id; these store them with the same
 * batching and dedup as an import.
 */

int cairn_writer_put_entry(struct cairn_writer *w, const struct cairn_id *id, const void *entry,
			   size_t elen)
{
	struct cairn_pack_entry h;
	struct seen_slot *s;
	const void *val;
	size_t vlen;
	uint64_t off;
	int ret;

	if (elen < sizeof(h))
		return -EINVAL;
	memcpy(&h, entry, sizeof(h));
	if (w->seen_cap && (s = seen_find(w, CAIRN_DBI_CHUNKS, id))->used) {
		w->st.chunks_dup++;
		return 0;
	}
	ret = cairn_get(w->rtxn, CAIRN_DBI_CHUNKS, id, CAIRN_ID_LEN, &val, &vlen);
	if (ret == 0) {
		w->st.chunks_dup++;
		return seen_add(w, CAIRN_DBI_CHUNKS, id, CAIRN_GET(h.raw_len), UINT64_MAX);
	}
	if (ret != -ENOENT)
		return ret;
	ret = arena_add(w, CAIRN_DBI_CHUNKS, id, entry, elen, &off);
	if (ret)
		return ret;
	ret = seen_add(w, CAIRN_DBI_CHUNKS, id, CAIRN_GET(h.raw_len), off);
	if (ret)
		return ret;
	w->st.chunks_new++;
	w->st.chunk_bytes_new += CAIRN_GET(h.raw_len);
	return maybe_flush(w);
}

int cairn_writer_put_node_value(struct cairn_writer *w, const struct cairn_id *id,
				const void *val, size_t vlen)
{
	bool dup;
	int ret = put_value(w, CAIRN_DBI_NODES, id, val, vlen, &dup);

	if (!ret && dup)
		w->st.nodes_dup++;
	else if (!ret)
		w->st.nodes_new++;
	return ret;
}

int cairn_writer_put_content_value(struct cairn_writer *w, const struct cairn_id *id,
				   const void *val, size_t vlen)
{
	bool dup;

	return put_value(w, CAIRN_DBI_CONTENTS, id, val, vlen, &dup);
}

int cairn_writer_put_lazy(struct cairn_writer *w, const struct cairn_lazy *l)
{
	uint64_t off;
	int ret;

	w->scratch.len = 0;
	ret = cairn_lazy_encode(l, &w->scratch);
	if (ret)
		return cairn_err(ret, "internal error: a lazy record breaks the encoding rules");
	ret = arena_add(w, CAIRN_DBI_LAZY, &l->id, w->scratch.data, w->scratch.len, &off);
	return ret ? ret : maybe_flush(w);
}

int cairn_writer_publish_record(struct cairn_writer *w, const struct cairn_id *image,
				const void *rec, size_t len, const uint8_t *sources,
				const char *tag)
{
	struct cairn_layer_disk layer = { .version = CAIRN_FORMAT_VERSION };
	struct cairn_image img;
	struct cairn_id want;
	struct cairn_txn *t = NULL;
	int ret;

	ret = cairn_image_parse(rec, len, &img);
	if (ret)
		return cairn_err(-EUCLEAN, "the image record does not parse");
	cairn_image_id((const struct cairn_id *)img.layers, img.nlayers, &img.root, &want);
	if (!cairn_id_eq(&want, image))
		return cairn_err(-EUCLEAN, "the image record does not match its id");
	ret = cairn_writer_flush(w);
	if (!ret)
		ret = cairn_store_set_batch_mode(w->s, false);
	if (!ret)
		ret = cairn_store_sync(w->s);
	/* a naming transaction: it moves the epoch gc's protocol watches (gc.h) */
	if (!ret)
		ret = cairn_naming_begin(w->s, &t);
	for (uint32_t i = 0; !ret && sources && i < img.nlayers; i++) {
		layer.source = sources[i];
		memcpy(layer.root, img.layers + (size_t)i * CAIRN_ID_LEN, CAIRN_ID_LEN);
		ret = cairn_put(t, CAIRN_DBI_LAYERS, layer.root, CAIRN_ID_LEN, &layer,
				sizeof(layer), CAIRN_PUT_NOOVERWRITE, NULL, NULL);
		if (ret == -EEXIST)
			ret = 0;
	}
	if (!ret) {
		ret = cairn_put(t, CAIRN_DBI_IMAGES, image->b, CAIRN_ID_LEN, rec, len,
				CAIRN_PUT_NOOVERWRITE, NULL, NULL);
		if (ret == -EEXIST)
			ret = 0;
	}
	if (!ret && tag)
		ret = cairn_tag_put(t, tag, image);
	if (!ret) {
		ret = cairn_naming_commit(t);
		t = NULL;
	}
	if (t)
		cairn_txn_abort(t);
	return ret;
}

/* Unlinks a pack file of this writer (it holds nothing anyone else can reference). */
static void pack_unlink(struct cairn_writer *w, uint32_t id)
{
	char path[4096];

	cairn_store_pack_path(w->s, id, path, sizeof(path));
	unlink(path);
}

/*
 * Deletes every record this writer inserted, and its packs' records, in one
 * synced transaction; 1 when done, 0 when something may reference them.
 */
static int drop_mine(struct cairn_writer *w)
{
	struct cairn_txn *t;
	uint64_t epoch;
	int ret;

	cairn_txn_reset(w->rtxn); /* no snapshot of ours pins the pages we free */
	ret = cairn_store_set_batch_mode(w->s, false);
	if (!ret)
		ret = cairn_txn_begin(w->s, true, &t);
	if (ret)
		return ret;
	ret = cairn_epoch_get(t, &epoch);
	if (!ret && epoch != w->epoch0) {
		cairn_txn_abort(t); /* an image was published meanwhile: gc decides */
		return 0;
	}
	for (size_t i = 0; !ret && i < w->seen_cap; i++) {
		const struct seen_slot *sl = &w->seen[i];

		if (!sl->used || !sl->mine)
			continue;
		ret = cairn_del(t, sl->db, sl->id.b, CAIRN_ID_LEN);
		if (ret == -ENOENT) {
			cairn_err_clear();
			ret = 0;
		}
	}
	for (size_t i = 0; !ret && i < w->npacks; i++) {
		uint32_t be = htobe32(w->packs[i].id);

		ret = cairn_del(t, CAIRN_DBI_PACKS, &be, sizeof(be));
		if (ret == -ENOENT) {
			cairn_err_clear();
			ret = 0;
		}
	}
	if (ret) {
		cairn_txn_abort(t);
		return ret;
	}
	ret = cairn_txn_commit(t);
	return ret ? ret : 1;
}

int cairn_writer_abandon(struct cairn_writer *w, int gc_lock)
{
	bool committed = false;
	int ret;

	if (w->pack_fd >= 0) {
		close(w->pack_fd);
		w->pack_fd = -1;
	}
	/* what no record points at: packs with nothing committed, uncommitted tails */
	for (size_t i = 0; i < w->npacks; i++) {
		struct writer_pack *p = &w->packs[i];
		char path[4096];

		if (!p->committed) {
			pack_unlink(w, p->id);
			continue;
		}
		committed = true;
		if (p->end > p->committed) {
			cairn_store_pack_path(w->s, p->id, path, sizeof(path));
			if (truncate(path, (off_t)p->committed) == 0)
				p->end = p->committed;
		}
	}
	/*
	 * Records a flush committed: ours to delete only while no other import
	 * runs (they hold gc.lock shared and may have deduplicated against
	 * them) and when no image was published since this writer began (it
	 * could reference them).
	 */
	if (!committed || gc_lock < 0 || flock(gc_lock, LOCK_EX | LOCK_NB) < 0)
		return 0;
	ret = drop_mine(w);
	if (ret <= 0)
		return ret;
	/* a reader (fsck) that still follows an old index record reads on */
	if (cairn_store_wait_readers(w->s, 2000))
		return 0; /* the files go with the next gc (no record names them) */
	for (size_t i = 0; i < w->npacks; i++)
		pack_unlink(w, w->packs[i].id);
	w->npacks = 0;
	return 0;
}
