/* SPDX-License-Identifier: MIT */
/*
 * test_content.c - what a content id promises (format.h, "Content"): the
 * same bytes with the same chunking give the same ids in any store (on any
 * machine), whichever zeros a source reported as holes and however the
 * bytes were fed; a list is named by the hash of itself (checked with no
 * chunk at hand), computed here independently of store/content.c; a hole
 * is one extent (a terabyte in no time).
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <time.h>
#include <xxhash.h>

#include "content.h"
#include "read.h"
#include "writer.h"

#define NSTORES 4

static char dir[] = "/tmp/cairn-content-XXXXXX";
static struct cairn_store *stores[NSTORES];

/*
 * Default chunking, small chunks (max below a one-chunk file), large
 * chunks, and the defaults again: another store (another machine) that
 * chunks like the first.
 */
static const struct cairn_chunker_params chunking[NSTORES] = {
	{ CAIRN_CHUNK_MIN_DEFAULT, CAIRN_CHUNK_AVG_DEFAULT, CAIRN_CHUNK_MAX_DEFAULT,
	  CAIRN_GEAR_SEED_DEFAULT },
	{ 1u << 10, 4u << 10, 8u << 10, 12345 },
	{ 256u << 10, 1u << 20, 4u << 20, CAIRN_GEAR_SEED_DEFAULT },
	{ CAIRN_CHUNK_MIN_DEFAULT, CAIRN_CHUNK_AVG_DEFAULT, CAIRN_CHUNK_MAX_DEFAULT,
	  CAIRN_GEAR_SEED_DEFAULT },
};

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void setup(void)
{
	strcpy(dir, "/tmp/cairn-content-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	for (int i = 0; i < NSTORES; i++) {
		struct cairn_store_params p;
		char sub[64];

		cairn_store_params_default(&p);
		p.chunk = chunking[i];
		snprintf(sub, sizeof(sub), "%s/%d", dir, i);
		cr_assert_eq(cairn_store_open(sub, CAIRN_STORE_CREATE, &p, &stores[i]), 0, "%s",
			     cairn_errmsg());
	}
}

static void teardown(void)
{
	for (int i = 0; i < NSTORES; i++)
		cairn_store_close(stores[i]);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(content, .init = setup, .fini = teardown);

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(seed >> 56);
	}
}

/* A file shape: its bytes (zero outside the data ranges). */
struct shape {
	const char *name;
	size_t len;
	struct { size_t off, len; } data[4];
};

static const struct shape shapes[] = {
	{ "one byte", 1, { { 0, 1 } } },
	{ "a partial zero block", 100, { { 0, 0 } } },
	{ "one zero block", 4096, { { 0, 0 } } },
	{ "zero blocks and a zero tail", 3 * 4096 + 5, { { 0, 0 } } },
	{ "one chunk at most", CAIRN_ONE_CHUNK_MAX, { { 0, CAIRN_ONE_CHUNK_MAX } } },
	{ "one byte more", CAIRN_ONE_CHUNK_MAX + 1, { { 0, CAIRN_ONE_CHUNK_MAX + 1 } } },
	{ "small with a hole", 40000, { { 0, 100 }, { 20000, 20000 } } },
	{ "hole first", 300000, { { 200000, 100000 } } },
	{ "data, hole, data, hole", 1u << 20, { { 0, 10000 }, { 600000, 5000 } } },
	{ "unaligned zeros between", 3u << 20, { { 0, 1500000 }, { 1504000, 1500000 } } },
	{ "large", 5u << 20, { { 0, 5u << 20 } } },
};

static uint8_t *shape_bytes(const struct shape *s)
{
	uint8_t *b = calloc(1, s->len ? s->len : 1);

	cr_assert_not_null(b);
	for (int i = 0; i < 4 && s->data[i].len; i++)
		fill(b + s->data[i].off, s->data[i].len, (uint64_t)i + 77);
	return b;
}

/*
 * Streams bytes into w, cut into pieces of pseudo-random lengths; with
 * holes, every zero range of at least 1000 bytes goes in as a "hole" (at
 * any offset, as a source's allocation would have it).
 */
static void stream(struct cairn_writer *w, const uint8_t *b, size_t len, bool holes,
		   uint64_t seed, struct cairn_node_build *n)
{
	size_t off = 0;

	memset(n, 0, sizeof(*n));
	n->type = CAIRN_NODE_REG;
	n->mode = 0644;
	n->nlink = 1;
	cairn_writer_file_begin(w);
	while (off < len) {
		size_t z = 0, piece;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		piece = 1 + (size_t)(seed >> 40) % 70000;
		if (piece > len - off)
			piece = len - off;
		while (holes && off + z < len && b[off + z] == 0)
			z++;
		if (holes && z >= 1000) {
			cr_assert_eq(cairn_writer_file_hole(w, z), 0, "%s", cairn_errmsg());
			off += z;
			continue;
		}
		cr_assert_eq(cairn_writer_file_data(w, b + off, piece), 0, "%s", cairn_errmsg());
		off += piece;
	}
	cr_assert_eq(cairn_writer_file_end(w, n), 0, "%s", cairn_errmsg());
}

static bool has_hole_block(const uint8_t *b, size_t len)
{
	for (size_t off = 0; off + CAIRN_HOLE_BLOCK <= len; off += CAIRN_HOLE_BLOCK)
		if (cairn_all_zero(b + off, CAIRN_HOLE_BLOCK))
			return true;
	return false;
}

/*
 * In every store, whatever the feeding (pieces, zeros as holes or as data),
 * the writer gives the definition's kind and id (cairn_content_make with
 * that store's chunking); a store that chunks like another gives the same
 * content and node ids; a store that chunks otherwise gives other ids for a
 * file its chunker cuts otherwise (what a remote refuses to mix).
 */
Test(content, same_bytes_and_chunking_give_the_same_ids)
{
	for (size_t i = 0; i < ARRAY_SIZE(shapes); i++) {
		const struct shape *s = &shapes[i];
		uint8_t *b = shape_bytes(s);
		struct cairn_id want[NSTORES], node[NSTORES];

		for (int st = 0; st < NSTORES; st++) {
			uint8_t kind;

			cr_assert_eq(cairn_content_make(cairn_store_chunker(stores[st]), b, s->len,
							&kind, &want[st], NULL), 0);
			cr_assert_eq(kind, cairn_content_kind_for(s->len,
								  has_hole_block(b, s->len)));
			for (int feed = 0; feed < 4; feed++) {
				struct cairn_writer *w;
				struct cairn_node_build n;
				struct cairn_id nid;

				cr_assert_eq(cairn_writer_new(stores[st], 0, &w), 0);
				stream(w, b, s->len, feed & 1, (uint64_t)(st * 4 + feed), &n);
				cr_assert(cairn_id_eq(&n.content, &want[st]),
					  "%s: store %d, feed %d: not the definition's content id",
					  s->name, st, feed);
				cr_assert_eq(n.size, s->len);
				cr_assert_eq(n.content_kind, kind, "%s: store %d: kind %u", s->name,
					     st, n.content_kind);
				cr_assert_eq(cairn_writer_put_node(w, &n, &nid), 0);
				if (feed == 0)
					node[st] = nid;
				cr_assert(cairn_id_eq(&nid, &node[st]),
					  "%s: store %d, feed %d: another node id", s->name, st, feed);
				cr_assert_eq(cairn_writer_flush(w), 0, "%s", cairn_errmsg());
				cairn_writer_free(w);
			}
		}
		/* another store with the same chunking: the same ids */
		cr_assert(cairn_id_eq(&want[3], &want[0]), "%s", s->name);
		cr_assert(cairn_id_eq(&node[3], &node[0]), "%s", s->name);
		/* other chunking: a list whose data the chunkers cut otherwise is another list */
		if (s->len == (5u << 20)) {
			cr_assert_not(cairn_id_eq(&want[1], &want[0]), "%s", s->name);
			cr_assert_not(cairn_id_eq(&node[2], &node[0]), "%s", s->name);
		}
		/* one-chunk and empty files do not depend on chunking */
		if (cairn_content_kind_for(s->len, has_hole_block(b, s->len)) !=
		    CAIRN_CONTENT_LIST)
			for (int st = 1; st < NSTORES; st++)
				cr_assert(cairn_id_eq(&node[st], &node[0]), "%s", s->name);
		free(b);
	}
}

/* What each store wrote reads back as the same bytes; its list is canonical. */
Test(content, every_store_reads_back_the_bytes)
{
	const struct shape *s = &shapes[8]; /* data, hole, data, hole */
	uint8_t *b = shape_bytes(s), *out = malloc(s->len);

	cr_assert_not_null(out);
	for (int st = 0; st < NSTORES; st++) {
		struct cairn_writer *w;
		struct cairn_node_build n;
		struct cairn_node_view v = { .type = CAIRN_NODE_REG };
		struct cairn_content_view cv;
		struct cairn_reader r;
		struct cairn_txn *t;
		int holes = 0;

		cr_assert_eq(cairn_writer_new(stores[st], 0, &w), 0);
		stream(w, b, s->len, false, 1, &n);
		cr_assert_eq(cairn_writer_flush(w), 0);
		cairn_writer_free(w);
		cr_assert_eq(cairn_txn_begin(stores[st], false, &t), 0);
		v.size = n.size;
		v.content_kind = n.content_kind;
		v.content = n.content;
		cr_assert_eq(cairn_file_content(t, &v, CAIRN_PARSE_STRICT, &cv), 0);
		for (uint32_t i = 0; i < cv.count; i++) {
			struct cairn_extent e;

			cairn_content_extent(&cv, i, &e);
			holes += e.hole;
		}
		cr_assert_eq(holes, 2);
		cr_assert_eq(cairn_reader_init(&r, t), 0);
		cr_assert_eq(cairn_reader_pread(&r, &cv, out, s->len, 0), (ssize_t)s->len);
		cr_assert_eq(memcmp(out, b, s->len), 0);
		cairn_reader_release(&r);
		cairn_txn_abort(t);
	}
	free(out);
	free(b);
}

/* The id of a list by hand: XXH3-128 seeded with CAIRN_LIST_SEED of its value. */
static void list_id_by_hand(const void *val, size_t len, struct cairn_id *out)
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits_withSeed(val, len, CAIRN_LIST_SEED));
	memcpy(out->b, c.digest, CAIRN_ID_LEN);
}

static void put_extent(uint8_t *p, uint64_t end, const struct cairn_id *id)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(end >> (8 * i));
	memcpy(p + 8, id->b, CAIRN_ID_LEN);
}

/*
 * A terabyte: one data block, then a hole. The hole is one extent, so the
 * file's id is made at once (format 1 hashed every zero: about a minute),
 * and it is the definition's, a list written out here by hand.
 */
Test(content, a_terabyte_hole_is_one_extent)
{
	const uint64_t tib = 1ull << 40;
	uint8_t block[CAIRN_HOLE_BLOCK] = { 'x' };
	uint8_t val[16 + 2 * 24] = { CAIRN_FORMAT_VERSION };
	struct cairn_node_build n = { .type = CAIRN_NODE_REG };
	struct cairn_id chunk, hole = { { 0 } }, want;
	struct cairn_writer *w;
	struct timespec t0, t1;
	double secs;

	/* header: version, 3 reserved, u32 count, u64 size; then (u64 end, id) each */
	val[4] = 2;
	for (int i = 0; i < 8; i++)
		val[8 + i] = (uint8_t)(tib >> (8 * i));
	cairn_hash(block, sizeof(block), &chunk);
	put_extent(val + 16, CAIRN_HOLE_BLOCK, &chunk);
	put_extent(val + 40, tib, &hole);
	list_id_by_hand(val, sizeof(val), &want);

	cr_assert_eq(cairn_writer_new(stores[0], 0, &w), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cairn_writer_file_begin(w);
	cr_assert_eq(cairn_writer_file_data(w, "x", 1), 0);
	cr_assert_eq(cairn_writer_file_hole(w, tib - 1), 0);
	cr_assert_eq(cairn_writer_file_end(w, &n), 0, "%s", cairn_errmsg());
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_lt(secs, 1.0, "a 1 TiB sparse file took %.2f s to stream", secs);
	cr_assert_eq(n.size, tib);
	cr_assert_eq(n.content_kind, CAIRN_CONTENT_LIST);
	cr_assert(cairn_id_eq(&n.content, &want), "not the definition's id");
	cr_assert_eq(cairn_writer_flush(w), 0, "%s", cairn_errmsg());
	cairn_writer_free(w);
}

/*
 * A stored list hashes (seeded) to its id, checked with no chunk at hand;
 * a list with one extent changed (another chunk, a moved end) is refused.
 * One-chunk and empty files are named by the hash of their bytes.
 */
Test(content, a_list_is_named_by_the_hash_of_itself)
{
	const struct shape *s = &shapes[9]; /* unaligned zeros between: several chunks */
	uint8_t *b = shape_bytes(s), small[1000], *copy;
	struct cairn_node_build n;
	struct cairn_content_view cv;
	struct cairn_writer *w;
	struct cairn_txn *t;
	struct cairn_id want;
	const void *val;
	size_t len;

	cr_assert_eq(cairn_writer_new(stores[0], 0, &w), 0);
	stream(w, b, s->len, false, 5, &n);
	cr_assert_eq(cairn_writer_flush(w), 0);
	cairn_writer_free(w);
	cr_assert_eq(cairn_txn_begin(stores[0], false, &t), 0);
	cr_assert_eq(cairn_content_value(t, &n.content, &val, &len), 0);
	list_id_by_hand(val, len, &want);
	cr_assert(cairn_id_eq(&want, &n.content));
	cr_assert_eq(cairn_content_check(&n.content, val, len, &cv), 0, "%s", cairn_errmsg());
	cr_assert_gt(cv.count, 2);
	copy = malloc(len);
	cr_assert_not_null(copy);
	memcpy(copy, val, len);
	copy[16 + 24 + 8] ^= 1; /* the second extent's chunk id */
	cr_assert_eq(cairn_content_check(&n.content, copy, len, &cv), -EIO);
	memcpy(copy, val, len);
	copy[16] ^= 1;          /* the first extent's end */
	cr_assert_eq(cairn_content_check(&n.content, copy, len, &cv), -EIO);
	free(copy);
	cairn_txn_abort(t);

	fill(small, sizeof(small), 9);
	cr_assert_eq(cairn_writer_new(stores[1], 0, &w), 0);
	stream(w, small, sizeof(small), false, 1, &n);
	cairn_hash(small, sizeof(small), &want);
	cr_assert_eq(n.content_kind, CAIRN_CONTENT_CHUNK);
	cr_assert(cairn_id_eq(&n.content, &want));
	stream(w, small, 0, false, 1, &n);
	cairn_hash("", 0, &want);
	cr_assert_eq(n.content_kind, CAIRN_CONTENT_EMPTY);
	cr_assert(cairn_id_eq(&n.content, &want));
	cairn_writer_free(w);
	free(b);
}

/* A one-chunk file whose bytes spell a list does not take the list's id. */
Test(content, bytes_that_spell_a_list_are_another_file)
{
	const struct shape *s = &shapes[6]; /* small with a hole */
	uint8_t *b = shape_bytes(s);
	struct cairn_buf list = { 0 };
	struct cairn_id a, bid;
	uint8_t kind;

	cr_assert_eq(cairn_content_make(cairn_store_chunker(stores[0]), b, s->len, &kind, &a,
					&list), 0);
	cr_assert_eq(kind, CAIRN_CONTENT_LIST);
	cr_assert_lt(list.len, CAIRN_ONE_CHUNK_MAX);
	cr_assert_eq(cairn_content_make(cairn_store_chunker(stores[0]), list.data, list.len,
					&kind, &bid, NULL), 0);
	cr_assert_eq(kind, CAIRN_CONTENT_CHUNK);
	cr_assert_not(cairn_id_eq(&a, &bid));
	cairn_buf_release(&list);
	free(b);
}
