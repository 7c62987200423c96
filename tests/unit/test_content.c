/* SPDX-License-Identifier: MIT */
/*
 * test_content.c - what a content id promises (format.h, "Content id"):
 * a function of the file's bytes alone (not of the store's chunk sizes, not
 * of which zeros a source reported as holes), node ids the same in stores
 * of any chunking, a hole hashed as its length (a terabyte in no time), and
 * the exact definition, computed here independently of store/content.c.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <time.h>
#include <xxhash.h>

#include "content.h"
#include "read.h"
#include "writer.h"

#define NSTORES 3

static char dir[] = "/tmp/cairn-content-XXXXXX";
static struct cairn_store *stores[NSTORES];

/* Default chunking, small chunks (max below a one-chunk file), large chunks. */
static const struct cairn_chunker_params chunking[NSTORES] = {
	{ CAIRN_CHUNK_MIN_DEFAULT, CAIRN_CHUNK_AVG_DEFAULT, CAIRN_CHUNK_MAX_DEFAULT,
	  CAIRN_GEAR_SEED_DEFAULT },
	{ 1u << 10, 4u << 10, 8u << 10, 12345 },
	{ 256u << 10, 1u << 20, 4u << 20, CAIRN_GEAR_SEED_DEFAULT },
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

Test(content, ids_follow_the_bytes_not_the_chunking_nor_the_holes)
{
	for (size_t i = 0; i < ARRAY_SIZE(shapes); i++) {
		const struct shape *s = &shapes[i];
		uint8_t *b = shape_bytes(s);
		struct cairn_id want, node0 = { { 0 } };

		cr_assert_eq(cairn_content_id(b, s->len, &want), 0);
		for (int st = 0; st < NSTORES; st++) {
			for (int holes = 0; holes < 2; holes++) {
				struct cairn_writer *w;
				struct cairn_node_build n;
				struct cairn_id node;

				cr_assert_eq(cairn_writer_new(stores[st], 0, &w), 0);
				stream(w, b, s->len, holes, (uint64_t)(st * 2 + holes), &n);
				cr_assert(cairn_id_eq(&n.content, &want),
					  "%s: store %d, holes %d: not the content id of its bytes",
					  s->name, st, holes);
				cr_assert_eq(n.size, s->len);
				cr_assert_eq(n.content_kind,
					     cairn_content_kind_for(s->len,
								    has_hole_block(b, s->len)),
					     "%s: store %d: kind %u", s->name, st, n.content_kind);
				cr_assert_eq(cairn_writer_put_node(w, &n, &node), 0);
				if (st == 0 && holes == 0)
					node0 = node;
				cr_assert(cairn_id_eq(&node, &node0),
					  "%s: store %d, holes %d: another node id", s->name, st,
					  holes);
				cr_assert_eq(cairn_writer_flush(w), 0, "%s", cairn_errmsg());
				cairn_writer_free(w);
			}
		}
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

static void put_u64(XXH3_state_t *st, uint64_t v)
{
	uint8_t le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	XXH3_128bits_update(st, le, 8);
}

static void canonical(XXH3_state_t *st, struct cairn_id *out)
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
	memcpy(out->b, c.digest, CAIRN_ID_LEN);
}

/*
 * A terabyte: one data block, then holes. The hole is one record, so the
 * file hashes at once (the format-1 id hashed every zero: about a minute),
 * and its id is the definition's, computed here by hand.
 */
Test(content, a_terabyte_hole_is_one_record)
{
	const uint64_t tib = 1ull << 40;
	uint8_t block[CAIRN_HOLE_BLOCK] = { 'x' };
	XXH3_state_t *st = XXH3_createState();
	XXH128_canonical_t c;
	struct cairn_node_build n = { .type = CAIRN_NODE_REG };
	struct cairn_writer *w;
	struct cairn_id want;
	struct timespec t0, t1;
	double secs;

	XXH3_128bits_reset_withSeed(st, CAIRN_SPARSE_SEED);
	XXH3_128bits_update(st, CAIRN_SPARSE_MAGIC, strlen(CAIRN_SPARSE_MAGIC));
	XXH3_128bits_update(st, "d", 1);
	put_u64(st, CAIRN_HOLE_BLOCK);
	XXH128_canonicalFromHash(&c, XXH3_128bits(block, sizeof(block)));
	XXH3_128bits_update(st, c.digest, sizeof(c.digest));
	XXH3_128bits_update(st, "h", 1);
	put_u64(st, tib - CAIRN_HOLE_BLOCK);
	canonical(st, &want);
	XXH3_freeState(st);

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
	cairn_writer_free(w);
}

/* A file with no hole is named by XXH3-128 of its bytes: one chunk, its chunk id. */
Test(content, a_file_without_holes_is_the_hash_of_its_bytes)
{
	uint8_t b[CAIRN_ONE_CHUNK_MAX + 1];
	struct cairn_id id, want;

	fill(b, sizeof(b), 3);
	cr_assert_eq(cairn_content_id(b, sizeof(b), &id), 0);
	cairn_hash(b, sizeof(b), &want);
	cr_assert(cairn_id_eq(&id, &want));
	cr_assert_eq(cairn_content_id("", 0, &id), 0);
	cairn_hash("", 0, &want);
	cr_assert(cairn_id_eq(&id, &want));
}

/* A file whose bytes spell a sparse file's records does not take its id. */
Test(content, records_spelled_as_bytes_are_another_file)
{
	uint8_t *sparse = calloc(1, 3 * CAIRN_HOLE_BLOCK), rec[64];
	XXH128_canonical_t c;
	struct cairn_id a, b;
	size_t n = 0;
	uint64_t le;

	sparse[0] = 'x';
	cr_assert_eq(cairn_content_id(sparse, 3 * CAIRN_HOLE_BLOCK, &a), 0);
	memcpy(rec, CAIRN_SPARSE_MAGIC, strlen(CAIRN_SPARSE_MAGIC));
	n = strlen(CAIRN_SPARSE_MAGIC);
	rec[n++] = 'd';
	le = htole64(CAIRN_HOLE_BLOCK);
	memcpy(rec + n, &le, 8);
	n += 8;
	XXH128_canonicalFromHash(&c, XXH3_128bits(sparse, CAIRN_HOLE_BLOCK));
	memcpy(rec + n, c.digest, 16);
	n += 16;
	rec[n++] = 'h';
	le = htole64(2 * CAIRN_HOLE_BLOCK);
	memcpy(rec + n, &le, 8);
	n += 8;
	cr_assert_eq(cairn_content_id(rec, n, &b), 0);
	cr_assert_not(cairn_id_eq(&a, &b));
	free(sparse);
}
