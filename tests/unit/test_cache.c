/* SPDX-License-Identifier: MIT */
/*
 * test_cache.c - the daemon's chunk cache: hit and miss counting,
 * duplicate inserts, the byte budget, LRU order, chunks that outlive their
 * eviction, and many threads at once. A chunk's bytes are derived from
 * its number, so any reader can check what it got. Run it under ASan (a
 * lost or doubly freed chunk shows there) and under TSan.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cache.h"
#include "util.h"

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static struct cairn_id id_of(uint64_t k)
{
	struct cairn_id id;

	cairn_hash(&k, sizeof(k), &id);
	return id;
}

/* Chunk k's bytes: len of them from a generator seeded by k. */
static void fill(uint64_t k, uint8_t *buf, uint32_t len)
{
	uint64_t s = k * 0x9e3779b97f4a7c15u + 1;

	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(xorshift64(&s) >> 32);
}

static uint8_t *data_of(uint64_t k, uint32_t len)
{
	uint8_t *buf = malloc(len ? len : 1);

	cr_assert_not_null(buf);
	fill(k, buf, len);
	return buf;
}

static bool chunk_ok(const struct cfs_chunk *ch, uint64_t k, uint32_t len)
{
	struct cairn_id id = id_of(k);
	uint8_t *want;
	bool ok;

	if (!cairn_id_eq(&ch->id, &id) || ch->len != len)
		return false;
	want = malloc(len ? len : 1);
	if (!want)
		return false;
	fill(k, want, len);
	ok = memcmp(ch->data, want, len) == 0;
	free(want);
	return ok;
}

static struct cfs_chunk *insert(struct cfs_cache *c, uint64_t k, uint32_t len)
{
	struct cairn_id id = id_of(k);
	struct cfs_chunk *ch = cfs_cache_insert(c, &id, data_of(k, len), len);

	cr_assert_not_null(ch);
	return ch;
}

static struct cfs_chunk *get(struct cfs_cache *c, uint64_t k)
{
	struct cairn_id id = id_of(k);

	return cfs_cache_get(c, &id);
}

static bool contains(struct cfs_cache *c, uint64_t k)
{
	struct cairn_id id = id_of(k);

	return cfs_cache_contains(c, &id);
}

static struct cfs_cache_stats stats_of(struct cfs_cache *c)
{
	struct cfs_cache_stats st;

	cfs_cache_stats(c, &st);
	cr_assert_leq(st.bytes, st.max_bytes);
	cr_assert_eq(st.inserts - st.evictions, st.entries);
	return st;
}

static struct cfs_cache *cache_new(size_t max_bytes, unsigned shards)
{
	struct cfs_cache *c = NULL;

	cr_assert_eq(cfs_cache_new(max_bytes, shards, &c), 0);
	cr_assert_not_null(c);
	return c;
}

Test(cache, new_checks_shards)
{
	struct cfs_cache *c = NULL;

	cr_assert_eq(cfs_cache_new(1 << 20, 3, &c), -EINVAL);
	cr_assert_eq(cfs_cache_new(1 << 20, 1u << 20, &c), -EINVAL);
	cr_assert_eq(cfs_cache_new(1 << 20, 0, &c), 0);
	cfs_cache_free(c);
	cr_assert_eq(cfs_cache_new(1 << 20, 1, &c), 0);
	cfs_cache_free(c);
}

Test(cache, hit_and_miss)
{
	struct cfs_cache *c = cache_new(1 << 20, 0);
	struct cfs_chunk *a, *b;
	struct cfs_cache_stats st;

	cr_assert_null(get(c, 1));
	st = stats_of(c);
	cr_assert_eq(st.misses, 1);
	cr_assert_eq(st.hits, 0);

	a = insert(c, 1, 1000);
	cr_assert(chunk_ok(a, 1, 1000));
	b = get(c, 1);
	cr_assert_eq(b, a);
	cr_assert(contains(c, 1));
	cr_assert_not(contains(c, 2));

	st = stats_of(c);
	cr_assert_eq(st.hits, 1);
	cr_assert_eq(st.misses, 1, "contains() counted a miss");
	cr_assert_eq(st.inserts, 1);
	cr_assert_eq(st.entries, 1);
	cr_assert_eq(st.bytes, 1000);
	cr_assert_eq(st.evictions, 0);
	cr_assert_eq(st.max_bytes, 1 << 20);

	cfs_chunk_unref(c, a);
	cfs_chunk_unref(c, b);
	cfs_chunk_unref(c, NULL);
	/* Still cached once nobody holds it. */
	b = get(c, 1);
	cr_assert_eq(b, a);
	cr_assert(chunk_ok(b, 1, 1000));
	cfs_chunk_unref(c, b);
	cfs_cache_free(c);
}

Test(cache, duplicate_insert_returns_existing)
{
	struct cfs_cache *c = cache_new(1 << 20, 0);
	struct cfs_chunk *a = insert(c, 7, 4096);
	struct cairn_id id = id_of(7);
	uint8_t *again = data_of(7, 4096);
	struct cfs_chunk *b = cfs_cache_insert(c, &id, again, 4096);
	struct cfs_cache_stats st;

	/* again is freed now: ASan reports it if it leaks or is kept. */
	cr_assert_eq(b, a);
	cr_assert_neq(b->data, again);
	cr_assert(chunk_ok(b, 7, 4096));
	st = stats_of(c);
	cr_assert_eq(st.inserts, 1);
	cr_assert_eq(st.entries, 1);
	cr_assert_eq(st.bytes, 4096);
	cfs_chunk_unref(c, a);
	cfs_chunk_unref(c, b);
	cfs_cache_free(c);
}

Test(cache, byte_budget_holds)
{
	const size_t max = 256 << 10;
	struct cfs_cache *c = cache_new(max, 16);
	uint64_t seed = 42, n = 4000;
	struct cfs_cache_stats st;

	for (uint64_t k = 0; k < n; k++) {
		uint32_t len = 1 + (uint32_t)(xorshift64(&seed) % (8 << 10));
		struct cfs_chunk *ch = insert(c, k, len);

		st = stats_of(c);
		cr_assert_leq(st.bytes, max, "%llu bytes cached, budget %zu",
			      (unsigned long long)st.bytes, max);
		cr_assert(chunk_ok(ch, k, len));
		cfs_chunk_unref(c, ch);
	}
	st = stats_of(c);
	cr_assert_eq(st.inserts, n);
	cr_assert_gt(st.evictions, 0);
	cr_assert_eq(st.evictions, n - st.entries);
	/* Evictions stop as soon as the shard fits: most of it is in use. */
	cr_assert_geq(st.bytes, max / 2);
	cfs_cache_free(c);
}

Test(cache, budget_holds_with_references_held)
{
	const size_t max = 64 << 10;
	struct cfs_cache *c = cache_new(max, 4);
	struct cfs_chunk *held[200];

	for (uint64_t k = 0; k < ARRAY_SIZE(held); k++) {
		held[k] = insert(c, k, 2000);
		cr_assert_leq(stats_of(c).bytes, max);
	}
	for (uint64_t k = 0; k < ARRAY_SIZE(held); k++) {
		cr_assert(chunk_ok(held[k], k, 2000));
		cfs_chunk_unref(c, held[k]);
	}
	cr_assert_gt(stats_of(c).evictions, 0);
	cfs_cache_free(c);
}

/* One shard of room for four 1000-byte chunks, so the order is exact. */
Test(cache, lru_order)
{
	struct cfs_cache *c = cache_new(4000, 1);

	for (uint64_t k = 0; k < 4; k++)
		cfs_chunk_unref(c, insert(c, k, 1000));
	cfs_chunk_unref(c, get(c, 0)); /* 0 is now the most recent */
	cfs_chunk_unref(c, insert(c, 4, 1000));

	cr_assert(contains(c, 0), "a recently used chunk was evicted");
	cr_assert_not(contains(c, 1), "the least recently used chunk was kept");
	cr_assert(contains(c, 2));
	cr_assert(contains(c, 3));
	cr_assert(contains(c, 4));
	cr_assert_eq(stats_of(c).evictions, 1);

	/* contains() does not count as use: 2 is the next to go. */
	cr_assert(contains(c, 2));
	cfs_chunk_unref(c, insert(c, 5, 1000));
	cr_assert_not(contains(c, 2));
	cr_assert(contains(c, 3));

	/* A large insert evicts as many as it takes, coldest first. */
	cfs_chunk_unref(c, insert(c, 6, 2500));
	cr_assert_not(contains(c, 3));
	cr_assert_not(contains(c, 0));
	cr_assert_not(contains(c, 4));
	cr_assert(contains(c, 5));
	cr_assert(contains(c, 6));
	cr_assert_eq(stats_of(c).bytes, 3500);
	cfs_cache_free(c);
}

Test(cache, referenced_chunk_outlives_eviction)
{
	struct cfs_cache *c = cache_new(1000, 1);
	struct cfs_chunk *a = insert(c, 1, 1000);
	struct cfs_chunk *b, *a2;
	struct cfs_cache_stats st;

	b = insert(c, 2, 1000);
	cr_assert_not(contains(c, 1));
	st = stats_of(c);
	cr_assert_eq(st.evictions, 1);
	cr_assert_eq(st.bytes, 1000, "an evicted chunk still counted");
	cr_assert(chunk_ok(a, 1, 1000), "evicted chunk changed while referenced");
	cr_assert_null(get(c, 1));

	/* Decoded again while the old copy is still held: two live copies. */
	a2 = insert(c, 1, 1000);
	cr_assert_neq(a2, a);
	cr_assert(chunk_ok(a, 1, 1000));
	cr_assert(chunk_ok(a2, 1, 1000));
	cr_assert(chunk_ok(b, 2, 1000));

	cfs_chunk_unref(c, a);
	cfs_chunk_unref(c, b);
	cfs_chunk_unref(c, a2);
	cfs_cache_free(c);
}

Test(cache, oversize_chunk_returned_not_kept)
{
	struct cfs_cache *c = cache_new(4000, 4); /* 1000 bytes a shard */
	struct cfs_chunk *small = insert(c, 1, 500);
	struct cfs_chunk *big = insert(c, 2, 1001);
	struct cfs_cache_stats st;

	cr_assert(chunk_ok(big, 2, 1001));
	cr_assert_not(contains(c, 2));
	cr_assert(contains(c, 1), "an oversize chunk evicted others");
	st = stats_of(c);
	cr_assert_eq(st.bytes, 500);
	cr_assert_eq(st.entries, 1);
	cr_assert_eq(st.inserts, 2);
	cr_assert_eq(st.evictions, 1);
	cfs_chunk_unref(c, big);
	cfs_chunk_unref(c, small);
	cfs_cache_free(c);
}

Test(cache, empty_chunk)
{
	struct cfs_cache *c = cache_new(1000, 1);
	struct cairn_id id = id_of(9);
	struct cfs_chunk *ch = cfs_cache_insert(c, &id, NULL, 0);

	cr_assert_not_null(ch);
	cr_assert(contains(c, 9));
	cfs_chunk_unref(c, ch);
	cfs_cache_free(c);
}

/* Many small chunks in one shard: the table grows several times over. */
Test(cache, table_grows)
{
	const uint64_t n = 5000;
	struct cfs_cache *c = cache_new(1 << 20, 1);
	struct cfs_cache_stats st;

	for (uint64_t k = 0; k < n; k++)
		cfs_chunk_unref(c, insert(c, k, 16));
	for (uint64_t k = 0; k < n; k++) {
		struct cfs_chunk *ch = get(c, k);

		cr_assert_not_null(ch, "chunk %llu lost", (unsigned long long)k);
		cr_assert(chunk_ok(ch, k, 16));
		cfs_chunk_unref(c, ch);
	}
	st = stats_of(c);
	cr_assert_eq(st.entries, n);
	cr_assert_eq(st.hits, n);
	cr_assert_eq(st.evictions, 0);
	cfs_cache_free(c);
}

/*
 * Eight threads get, insert, hold and release chunks over a small id space
 * and a budget far smaller than it, so chunks are evicted while held and
 * ids are decoded twice at once. Threads only count failures: Criterion's
 * asserts belong to the main thread.
 */
#define STRESS_THREADS 8
#define STRESS_IDS 64
#define STRESS_ITERS 20000
#define STRESS_HELD 4

struct stress {
	struct cfs_cache *c;
	uint32_t len[STRESS_IDS];
};

struct stress_thread {
	pthread_t tid;
	struct stress *st;
	uint64_t seed;
	uint64_t gets, bad, failed_inserts;
};

static uint32_t stress_len(uint64_t k)
{
	if (k % 16 == 15)
		return 9000; /* larger than a shard's budget */
	return 256 + (uint32_t)(k * 797 % 4096);
}

static void *stress_run(void *arg)
{
	struct stress_thread *t = arg;
	struct stress *st = t->st;
	struct cfs_chunk *held[STRESS_HELD] = { 0 };
	uint64_t held_k[STRESS_HELD] = { 0 };
	uint64_t s = t->seed;

	for (unsigned i = 0; i < STRESS_ITERS; i++) {
		uint64_t r = xorshift64(&s);
		uint64_t k = r % STRESS_IDS;
		struct cairn_id id = id_of(k);
		struct cfs_chunk *ch;
		unsigned slot;

		switch ((r >> 16) % 16) {
		case 0:
			(void)cfs_cache_contains(st->c, &id);
			continue;
		case 1: {
			struct cfs_cache_stats cs;

			cfs_cache_stats(st->c, &cs);
			if (cs.bytes > cs.max_bytes || cs.inserts - cs.evictions != cs.entries)
				t->bad++;
			continue;
		}
		default:
			break;
		}

		t->gets++;
		ch = cfs_cache_get(st->c, &id);
		if (!ch) {
			uint8_t *data = malloc(st->len[k]);

			if (!data) {
				t->failed_inserts++;
				continue;
			}
			fill(k, data, st->len[k]);
			ch = cfs_cache_insert(st->c, &id, data, st->len[k]);
			if (!ch) {
				t->failed_inserts++;
				continue;
			}
		}
		if (!chunk_ok(ch, k, st->len[k]))
			t->bad++;
		/* Recheck a held chunk on release: it may be evicted by now. */
		slot = (unsigned)((r >> 32) % STRESS_HELD);
		if (held[slot] && !chunk_ok(held[slot], held_k[slot], st->len[held_k[slot]]))
			t->bad++;
		cfs_chunk_unref(st->c, held[slot]);
		held[slot] = ch;
		held_k[slot] = k;
	}
	for (unsigned j = 0; j < STRESS_HELD; j++) {
		if (held[j] && !chunk_ok(held[j], held_k[j], st->len[held_k[j]]))
			t->bad++;
		cfs_chunk_unref(st->c, held[j]);
	}
	return NULL;
}

Test(cache, threads, .timeout = 120)
{
	struct stress st = { .c = cache_new(32 << 10, 4) }; /* 8 KiB a shard */
	struct stress_thread t[STRESS_THREADS];
	struct cfs_cache_stats cs;
	uint64_t gets = 0;
	unsigned started;
	int ret = 0;

	for (uint64_t k = 0; k < STRESS_IDS; k++)
		st.len[k] = stress_len(k);
	for (started = 0; started < STRESS_THREADS; started++) {
		t[started] = (struct stress_thread){ .st = &st, .seed = 0x1234567 + 7919 * started };
		ret = pthread_create(&t[started].tid, NULL, stress_run, &t[started]);
		if (ret != 0)
			break;
	}
	/* Join them all before any assert can end the test under their feet. */
	for (unsigned i = 0; i < started; i++)
		pthread_join(t[i].tid, NULL);
	cr_assert_eq(ret, 0, "pthread_create returned %d", ret);
	for (unsigned i = 0; i < STRESS_THREADS; i++) {
		cr_assert_eq(t[i].bad, 0, "thread %u saw %llu bad chunks or stats", i,
			     (unsigned long long)t[i].bad);
		cr_assert_eq(t[i].failed_inserts, 0);
		gets += t[i].gets;
	}
	cs = stats_of(st.c);
	cr_assert_eq(cs.hits + cs.misses, gets);
	cr_assert_gt(cs.hits, 0);
	cr_assert_gt(cs.evictions, 0);
	cr_assert_leq(cs.bytes, 32 << 10);
	cfs_cache_free(st.c);
}
