/* SPDX-License-Identifier: MIT */
/*
 * test_store.c - the writer against a real LMDB store: dedup, holes,
 * collision refusal, atomic publishing, reading back.
 */
/* white-box: reads and damages the store's tables on purpose */
#define CAIRN_STORE_INTERNAL

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>

#include "chunk.h"
#include "image.h"
#include "read.h"
#include "source.h"
#include "writer.h"
#include "store-internal.h"

static char dir[] = "/tmp/cairn-test-XXXXXX";
static struct cairn_store *store;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void setup(void)
{
	strcpy(dir, "/tmp/cairn-test-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(cairn_store_open(dir, CAIRN_STORE_CREATE, NULL, &store), 0, "%s",
		     cairn_errmsg());
}

static void teardown(void)
{
	cairn_store_close(store);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(seed >> 56);
	}
}

/* Streams buf as one file; holes_as_zeros feeds zero ranges as data. */
static void put_file(struct cairn_writer *w, const uint8_t *buf, size_t len,
		     struct cairn_node_build *n)
{
	memset(n, 0, sizeof(*n));
	n->type = CAIRN_NODE_REG;
	n->mode = 0644;
	n->nlink = 1;
	cairn_writer_file_begin(w);
	cr_assert_eq(cairn_writer_file_data(w, buf, len), 0, "%s", cairn_errmsg());
	cr_assert_eq(cairn_writer_file_end(w, n), 0, "%s", cairn_errmsg());
}

TestSuite(store, .init = setup, .fini = teardown);

Test(store, reopen_keeps_params)
{
	const struct cairn_store_params *p = cairn_store_params(store);

	cr_assert_eq(p->chunk.avg, CAIRN_CHUNK_AVG_DEFAULT);
	cairn_store_close(store);
	cr_assert_eq(cairn_store_open(dir, 0, NULL, &store), 0);
	cr_assert_eq(cairn_store_params(store)->chunk.avg, CAIRN_CHUNK_AVG_DEFAULT);
}

Test(store, missing_store_is_a_clear_error)
{
	struct cairn_store *s;

	cr_assert_eq(cairn_store_open("/nonexistent/cairn", 0, NULL, &s), -ENOENT);
	cr_assert(strstr(cairn_errmsg(), "no store"), "%s", cairn_errmsg());
}

Test(store, dedup_and_read_back)
{
	size_t len = 3u << 20;
	uint8_t *buf = malloc(len), *out = malloc(len);
	struct cairn_writer *w;
	struct cairn_node_build a, b;
	const struct cairn_writer_stats *st;
	struct cairn_txn *t;
	struct cairn_reader r;
	struct cairn_content_view cv;
	struct cairn_node_view v;
	struct cairn_id id;

	fill(buf, len, 1);
	cr_assert_eq(cairn_writer_new(store, 0, &w), 0);
	put_file(w, buf, len, &a);
	st = cairn_writer_stats(w);
	cr_assert_gt(st->chunks_new, 8);
	cr_assert_eq(st->chunks_dup, 0);
	put_file(w, buf, len, &b);
	cr_assert_eq(st->chunks_dup, st->chunks_new, "the second copy stores nothing");
	cr_assert(cairn_id_eq(&a.content, &b.content));
	cr_assert_eq(a.content_kind, CAIRN_CONTENT_LIST);
	cr_assert_eq(cairn_writer_put_node(w, &a, &id), 0);
	cr_assert_eq(cairn_writer_flush(w), 0);
	cairn_writer_free(w);

	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_node_get(t, &id, CAIRN_PARSE_STRICT, &v), 0);
	cr_assert_eq(v.size, len);
	cr_assert_eq(cairn_file_content(t, &v, CAIRN_PARSE_STRICT, &cv), 0);
	cr_assert_eq(cairn_reader_init(&r, t), 0);
	/* odd-sized reads across chunk boundaries, and past the end */
	for (size_t off = 0; off < len; off += 77777) {
		ssize_t n = cairn_reader_pread(&r, &cv, out, 100000, off);

		cr_assert_eq(n, (ssize_t)(len - off < 100000 ? len - off : 100000));
		cr_assert_eq(memcmp(out, buf + off, (size_t)n), 0, "at %zu", off);
	}
	cr_assert_eq(cairn_reader_pread(&r, &cv, out, 10, len), 0);
	cairn_reader_release(&r);
	cairn_txn_abort(t);
	free(buf);
	free(out);
}

Test(store, holes_do_not_depend_on_allocation)
{
	size_t len = 1u << 20;
	uint8_t *buf = calloc(1, len);
	struct cairn_writer *w;
	struct cairn_node_build a, b;
	struct cairn_txn *t;
	struct cairn_content_view cv;
	struct cairn_node_view v = { 0 };
	struct cairn_extent e;
	int holes = 0;

	fill(buf, 10000, 2);             /* data, then zeros from 10000 on */
	fill(buf + 600000, 5000, 3);     /* data in the middle */
	cr_assert_eq(cairn_writer_new(store, 0, &w), 0);
	put_file(w, buf, len, &a);

	/* the same bytes, with the zero ranges given as holes, unaligned */
	memset(&b, 0, sizeof(b));
	b.type = CAIRN_NODE_REG;
	cairn_writer_file_begin(w);
	cr_assert_eq(cairn_writer_file_data(w, buf, 10000), 0);
	cr_assert_eq(cairn_writer_file_hole(w, 600000 - 10000), 0);
	cr_assert_eq(cairn_writer_file_data(w, buf + 600000, 5000), 0);
	cr_assert_eq(cairn_writer_file_hole(w, len - 605000), 0);
	cr_assert_eq(cairn_writer_file_end(w, &b), 0);
	cr_assert(cairn_id_eq(&a.content, &b.content));
	cr_assert_eq(a.size, len);
	cr_assert_eq(cairn_writer_flush(w), 0);
	cairn_writer_free(w);

	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	v.type = CAIRN_NODE_REG;
	v.size = a.size;
	v.content_kind = a.content_kind;
	v.content = a.content;
	cr_assert_eq(cairn_file_content(t, &v, CAIRN_PARSE_STRICT, &cv), 0);
	for (uint32_t i = 0; i < cv.count; i++) {
		cairn_content_extent(&cv, i, &e);
		if (e.hole) {
			holes++;
			cr_assert_eq(e.start % 4096, 0);
			cr_assert_eq(e.end % 4096, 0);
		}
	}
	cr_assert_eq(holes, 2);
	cairn_txn_abort(t);
	free(buf);
}

Test(store, a_file_that_is_one_chunk_has_no_content_record)
{
	struct cairn_writer *w;
	struct cairn_node_build n;
	struct cairn_id id;

	cr_assert_eq(cairn_writer_new(store, 0, &w), 0);
	put_file(w, (const uint8_t *)"hello\n", 6, &n);
	cr_assert_eq(n.content_kind, CAIRN_CONTENT_CHUNK);
	cairn_hash("hello\n", 6, &id);
	cr_assert(cairn_id_eq(&id, &n.content));
	put_file(w, (const uint8_t *)"", 0, &n);
	cr_assert_eq(n.content_kind, CAIRN_CONTENT_EMPTY);
	cairn_writer_free(w);
}

/*
 * Stores forged bytes under the id of real, as a damaged or hostile store
 * would: a pack of its own holding the forged entry, and an index record.
 */
static void forge_chunk(const uint8_t *real, size_t len, const uint8_t *forged, size_t flen,
			bool untrusted)
{
	struct cairn_pack_header h = { .magic = CAIRN_PACK_MAGIC, .version = 1 };
	struct cairn_zctx z = { 0 };
	struct cairn_buf v = { 0 };
	struct cairn_chunk_disk rec;
	struct cairn_txn *t;
	struct cairn_id id;
	const uint32_t pack = 0x7fff;
	char path[4096];
	FILE *f;

	cairn_hash(real, len, &id);
	CAIRN_SET(h.pack, pack);
	cr_assert_eq(cairn_buf_append(&v, &h, sizeof(h)), 0);
	cr_assert_eq(cairn_chunk_encode(&z, 3, untrusted, &id, forged, flen, &v), 0);
	cairn_store_pack_path(store, pack, path, sizeof(path));
	f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(v.data, 1, v.len, f), v.len);
	fclose(f);
	cairn_chunk_index(v.data + sizeof(h), pack, sizeof(h), &rec);
	cr_assert_eq(cairn_txn_begin(store, true, &t), 0);
	cr_assert_eq(cairn_put(t, CAIRN_DBI_CHUNKS, id.b, CAIRN_ID_LEN, &rec, sizeof(rec), 0, NULL,
			       NULL),
		     0);
	cr_assert_eq(cairn_txn_commit(t), 0);
	cairn_zctx_release(&z);
	cairn_buf_release(&v);
}

/*
 * A real XXH3-128 collision cannot be made in a test; forged bytes under an
 * id are what a damaged (or hostile) store holds. The writer must refuse
 * them, never count them as a dedup hit, and never store over them.
 */
Test(store, forged_untrusted_chunk_is_refused)
{
	uint8_t real[5000], forged[5000];
	struct cairn_writer *w;
	struct cairn_node_build n = { .type = CAIRN_NODE_REG };

	fill(real, sizeof(real), 4);
	fill(forged, sizeof(forged), 5);
	forge_chunk(real, sizeof(real), forged, sizeof(forged), true);
	cr_assert_eq(cairn_writer_new(store, 0, &w), 0);
	cairn_writer_file_begin(w);
	cr_assert_eq(cairn_writer_file_data(w, real, sizeof(real)), 0);
	cr_assert_eq(cairn_writer_file_end(w, &n), -EIO);
	cr_assert(strstr(cairn_errmsg(), "damaged"), "%s", cairn_errmsg());
	cairn_writer_free(w);
}

Test(store, untrusted_input_compares_bytes_of_a_trusted_chunk)
{
	uint8_t real[5000], forged[5000];
	struct cairn_writer *w;
	struct cairn_node_build n = { .type = CAIRN_NODE_REG };

	fill(real, sizeof(real), 6);
	fill(forged, sizeof(forged), 7);
	forge_chunk(real, sizeof(real), forged, sizeof(forged), false);
	/* trusted input against a trusted chunk checks only the length ... */
	cr_assert_eq(cairn_writer_new(store, 0, &w), 0);
	cairn_writer_file_begin(w);
	cr_assert_eq(cairn_writer_file_data(w, real, sizeof(real)), 0);
	cr_assert_eq(cairn_writer_file_end(w, &n), 0);
	cairn_writer_free(w);
	/* ... untrusted input compares the bytes */
	cr_assert_eq(cairn_writer_new(store, CAIRN_WRITER_UNTRUSTED, &w), 0);
	cairn_writer_file_begin(w);
	cr_assert_eq(cairn_writer_file_data(w, real, sizeof(real)), 0);
	cr_assert_eq(cairn_writer_file_end(w, &n), -EIO);
	cairn_writer_free(w);
}

Test(store, collision_on_length_is_refused_even_when_trusted)
{
	uint8_t real[5000], forged[4000];
	struct cairn_writer *w;
	struct cairn_node_build n = { .type = CAIRN_NODE_REG };

	fill(real, sizeof(real), 8);
	fill(forged, sizeof(forged), 9);
	forge_chunk(real, sizeof(real), forged, sizeof(forged), false);
	cr_assert_eq(cairn_writer_new(store, 0, &w), 0);
	cairn_writer_file_begin(w);
	cr_assert_eq(cairn_writer_file_data(w, real, sizeof(real)), 0);
	cr_assert_eq(cairn_writer_file_end(w, &n), -EEXIST);
	cairn_writer_free(w);
}

Test(store, nothing_is_published_before_publish)
{
	struct cairn_writer *w;
	struct cairn_node_build root = { .type = CAIRN_NODE_DIR, .mode = 0755 };
	struct cairn_publish p = { .source = CAIRN_LAYER_DIR, .tag = "v1" };
	struct cairn_txn *t;
	struct cairn_id rid, img, got;
	uint64_t count;

	cr_assert_eq(cairn_writer_new(store, 0, &w), 0);
	cr_assert_eq(cairn_writer_put_node(w, &root, &rid), 0);
	cr_assert_eq(cairn_writer_flush(w), 0);
	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_db_count(t, CAIRN_DBI_IMAGES, &count), 0);
	cr_assert_eq(count, 0);
	cr_assert_eq(cairn_image_resolve(t, "v1", &got), -ENOENT);
	cairn_txn_abort(t);

	p.layer_root = rid;
	p.root = rid;
	cr_assert_eq(cairn_writer_publish(w, &p, &img), 0);
	cairn_writer_free(w);
	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_image_resolve(t, "v1", &got), 0);
	cr_assert(cairn_id_eq(&got, &img));
	cairn_txn_abort(t);
}

/* Rewrites the index record of chunk id with the given pack and offset. */
static void move_index(const struct cairn_id *id, uint32_t pack, uint64_t offset)
{
	struct cairn_chunk_disk rec;
	struct cairn_txn *t;
	const void *v;
	size_t vl;

	cr_assert_eq(cairn_txn_begin(store, true, &t), 0);
	cr_assert_eq(cairn_get(t, CAIRN_DBI_CHUNKS, id->b, CAIRN_ID_LEN, &v, &vl), 0);
	cr_assert_eq(vl, sizeof(rec));
	memcpy(&rec, v, sizeof(rec));
	CAIRN_SET(rec.pack, pack);
	CAIRN_SET(rec.offset, offset);
	cr_assert_eq(cairn_put(t, CAIRN_DBI_CHUNKS, id->b, CAIRN_ID_LEN, &rec, sizeof(rec), 0, NULL,
			       NULL),
		     0);
	cr_assert_eq(cairn_txn_commit(t), 0);
}

/*
 * Found by fuzz/fuzz_store: an index record's pack id sized the store's
 * pack tables before the pack was known to exist (a damaged id asked for
 * gigabytes), and offset + length could wrap past the end of a mapping.
 */
Test(store, damaged_index_records_read_as_eio)
{
	uint8_t real[5000], out[5000];
	struct cairn_zctx z = { 0 };
	struct cairn_txn *t;
	struct cairn_id id;

	fill(real, sizeof(real), 6);
	cairn_hash(real, sizeof(real), &id);
	forge_chunk(real, sizeof(real), real, sizeof(real), false);
	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_chunks_read(t, &z, &id, 0, out, sizeof(out)), (long)sizeof(real), "%s",
		     cairn_errmsg());
	cairn_txn_abort(t);

	move_index(&id, 0x7ffffff0, sizeof(struct cairn_pack_header));
	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_chunks_read(t, &z, &id, 0, out, sizeof(out)), -EIO);
	cr_assert(strstr(cairn_errmsg(), "cannot open pack"), "%s", cairn_errmsg());
	cairn_txn_abort(t);

	/* the pack is mapped already (first branch), then not (second) */
	for (int mapped = 1; mapped >= 0; mapped--) {
		move_index(&id, 0x7fff, UINT64_MAX - 8);
		if (!mapped) {
			cairn_store_close(store);
			cr_assert_eq(cairn_store_open(dir, 0, NULL, &store), 0);
		}
		cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
		cr_assert_eq(cairn_chunks_read(t, &z, &id, 0, out, sizeof(out)), -EIO);
		cairn_txn_abort(t);
	}
	cairn_zctx_release(&z);
}

/*
 * The chunk-source seam (source.h): a source stacked on the local packs is
 * what every reader asks. This one holds one chunk elsewhere (in memory,
 * standing for a remote object store): the local packs do not have it,
 * readers get it through the stack, a local-only read says "not here",
 * and the local chunks still come from below.
 */
struct far_source {
	struct cairn_chunk_source src;
	struct cairn_id id;
	uint8_t bytes[3000];
	unsigned reads;
};

static int far_stat(struct cairn_chunk_source *src, struct cairn_txn *t, const struct cairn_id *id,
		    struct cairn_chunk_info *out)
{
	struct far_source *f = (struct far_source *)src;

	if (!cairn_id_eq(id, &f->id))
		return src->below->ops->stat(src->below, t, id, out);
	*out = (struct cairn_chunk_info){ .raw_len = sizeof(f->bytes),
					  .flags = CAIRN_CHUNK_UNTRUSTED,
					  .where = CAIRN_CHUNK_REMOTE };
	return 0;
}

static long far_read(struct cairn_chunk_source *src, struct cairn_txn *t, struct cairn_zctx *z,
		     const struct cairn_id *id, unsigned flags, void *out, size_t cap)
{
	struct far_source *f = (struct far_source *)src;

	if (!cairn_id_eq(id, &f->id))
		return src->below->ops->read(src->below, t, z, id, flags, out, cap);
	if (flags & CAIRN_READ_LOCAL)
		return -ENODATA;
	if (cap < sizeof(f->bytes))
		return -ENOBUFS;
	f->reads++;
	memcpy(out, f->bytes, sizeof(f->bytes));
	return sizeof(f->bytes);
}

static int far_entry(struct cairn_chunk_source *src, struct cairn_txn *t,
		     const struct cairn_id *id, const void **entry, size_t *len)
{
	struct far_source *f = (struct far_source *)src;

	if (cairn_id_eq(id, &f->id))
		return -ENODATA;
	return src->below->ops->entry(src->below, t, id, entry, len);
}

static const struct cairn_chunk_source_ops far_ops = {
	.stat = far_stat, .read = far_read, .entry = far_entry, .free = NULL
};

Test(store, a_stacked_chunk_source_serves_every_reader)
{
	static struct far_source far = { .src = { .ops = &far_ops, .name = "far" } };
	uint8_t local[5000], out[5000];
	struct cairn_zctx z = { 0 };
	struct cairn_chunk_info info;
	struct cairn_node_build n;
	struct cairn_writer *w;
	struct cairn_id lid;
	struct cairn_txn *t;
	const void *entry;
	size_t elen;

	fill(local, sizeof(local), 11);
	cr_assert_eq(cairn_writer_new(store, 0, &w), 0);
	put_file(w, local, sizeof(local), &n);
	cr_assert_eq(cairn_writer_flush(w), 0);
	cairn_writer_free(w);
	cairn_hash(local, sizeof(local), &lid);
	fill(far.bytes, sizeof(far.bytes), 12);
	cairn_hash(far.bytes, sizeof(far.bytes), &far.id);

	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_chunks_stat(t, &far.id, &info), -ENOENT); /* not stacked yet */
	cairn_txn_abort(t);

	cairn_store_push_chunks(store, &far.src);
	cr_assert_eq(cairn_store_chunks(store), &far.src);
	cr_assert_str_eq(far.src.below->name, "lazy");
	cr_assert_str_eq(far.src.below->below->name, "local");
	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_chunks_stat(t, &far.id, &info), 0);
	cr_assert_eq(info.where, CAIRN_CHUNK_REMOTE);
	cr_assert_eq(cairn_chunks_read(t, &z, &far.id, 0, out, sizeof(out)), (long)sizeof(far.bytes));
	cr_assert_eq(memcmp(out, far.bytes, sizeof(far.bytes)), 0);
	cr_assert_eq(cairn_chunks_read(t, &z, &far.id, CAIRN_READ_LOCAL, out, sizeof(out)), -ENODATA);
	cr_assert_eq(cairn_chunks_entry(t, &far.id, &entry, &elen), -ENODATA);
	/* what is local still comes from the packs, through the stack */
	cr_assert_eq(cairn_chunks_stat(t, &lid, &info), 0);
	cr_assert_eq(info.where, CAIRN_CHUNK_LOCAL);
	cr_assert_eq(info.raw_len, sizeof(local));
	cr_assert_eq(cairn_chunks_read(t, &z, &lid, CAIRN_READ_LOCAL, out, sizeof(out)),
		     (long)sizeof(local));
	cr_assert_eq(memcmp(out, local, sizeof(local)), 0);
	cr_assert_eq(cairn_chunks_entry(t, &lid, &entry, &elen), 0);
	cr_assert_eq(elen, sizeof(struct cairn_pack_entry) + info.len);
	/* the readers cat and export use */
	{
		struct cairn_reader r;
		const uint8_t *data;

		cr_assert_eq(cairn_reader_init(&r, t), 0);
		cr_assert_eq(cairn_reader_chunk(&r, &far.id, &data), (long)sizeof(far.bytes));
		cr_assert_eq(memcmp(data, far.bytes, sizeof(far.bytes)), 0);
		cairn_reader_release(&r);
	}
	cr_assert_eq(far.reads, 2);
	cairn_txn_abort(t);
	cairn_zctx_release(&z);
}

/*
 * A message naming a long path keeps its reason: the path loses its middle
 * (issue 11: a deep path used to push the reason past the 1 KiB buffer).
 */
Test(util, a_long_message_keeps_its_reason)
{
	char path[6000];
	const char *m;

	for (size_t i = 0; i + 2 < sizeof(path); i += 2)
		memcpy(path + i, "a/", 2);
	path[sizeof(path) - 2] = 'z';
	path[sizeof(path) - 1] = '\0';
	cr_assert_eq(cairn_err(-ENOSPC, "cannot import '%s': %s", path, "no space left on device"),
		     -ENOSPC);
	m = cairn_errmsg();
	cr_assert_lt(strlen(m), 1024);
	cr_assert(strstr(m, "cannot import 'a/a/a/"), "%s", m);
	cr_assert(strstr(m, "..."), "%s", m);
	cr_assert(strstr(m, "/a/z': no space left on device"), "%s", m);
	/* wrapped again, as callers do: still the reason at the end */
	cairn_err(-ENOSPC, "%s (while importing '%s')", cairn_errmsg(), path);
	m = cairn_errmsg();
	cr_assert_lt(strlen(m), 1024);
	cr_assert(strstr(m, "no space left on device (while importing 'a/a"), "%s", m);
	/* short messages are left alone */
	cairn_err(-EIO, "short '%s'", "x");
	cr_assert_str_eq(cairn_errmsg(), "short 'x'");
	cairn_err_clear();
}
