/* SPDX-License-Identifier: MIT */
/*
 * test_chunker.c - the content-defined chunker: parameter checks, size
 * bounds, streaming equals one-shot, and cut points that survive an
 * insertion. Inputs come from a seeded xorshift, so every run sees the same
 * bytes and the measured bounds below stay valid.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "chunker.h"
#include "format.h"

#define MiB (1u << 20)

static const struct cairn_chunker_params params_default = {
	.min = CAIRN_CHUNK_MIN_DEFAULT,
	.avg = CAIRN_CHUNK_AVG_DEFAULT,
	.max = CAIRN_CHUNK_MAX_DEFAULT,
	.seed = CAIRN_GEAR_SEED_DEFAULT,
};

static const struct cairn_chunker_params params_small = {
	.min = 2u << 10,
	.avg = 8u << 10,
	.max = 64u << 10,
	.seed = CAIRN_GEAR_SEED_DEFAULT,
};

static const struct cairn_chunker_params *const all_params[] = {
	&params_default,
	&params_small,
};

#define NPARAMS (sizeof(all_params) / sizeof(all_params[0]))

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static uint8_t *random_bytes(size_t len, uint64_t seed)
{
	uint8_t *buf = malloc(len);
	uint64_t s = seed;

	cr_assert_not_null(buf);
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = xorshift64(&s);

		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
	return buf;
}

/* A list of chunk lengths. */
struct cuts {
	size_t *len;
	size_t n;
	size_t cap;
};

static void cuts_push(struct cuts *c, size_t len)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->len = realloc(c->len, c->cap * sizeof(*c->len));
		cr_assert_not_null(c->len);
	}
	c->len[c->n++] = len;
}

static void cuts_release(struct cuts *c)
{
	free(c->len);
	memset(c, 0, sizeof(*c));
}

static struct cairn_chunker *chunker_new(const struct cairn_chunker_params *p)
{
	struct cairn_chunker *c = malloc(sizeof(*c));

	cr_assert_not_null(c);
	cr_assert_eq(cairn_chunker_init(c, p), 0);
	return c;
}

/* Chunks all of buf in one go. */
static struct cuts chunk_all(const struct cairn_chunker *c, const uint8_t *buf, size_t len)
{
	struct cuts cuts = { 0 };
	size_t off = 0;

	while (off < len) {
		size_t n = cairn_chunker_next(c, buf + off, len - off, 1);

		cr_assert(n > 0 && n <= len - off, "bad cut %zu at %zu", n, off);
		cuts_push(&cuts, n);
		off += n;
	}
	cr_assert_eq(cairn_chunker_next(c, buf + len, 0, 1), 0);
	return cuts;
}

/*
 * Chunks buf as a stream: pieces of random size (up to 3 * max, so calls
 * see both short and long windows) are appended to a window, whole chunks
 * are taken off its front, the rest is kept for the next call.
 */
static struct cuts chunk_stream(const struct cairn_chunker *c, const uint8_t *buf, size_t len,
				uint64_t seed)
{
	struct cuts cuts = { 0 };
	size_t cap = 4 * (size_t)c->p.max;
	uint8_t *win = malloc(cap);
	size_t have = 0, fed = 0;
	uint64_t s = seed;

	cr_assert_not_null(win);
	for (;;) {
		int final = fed == len;
		size_t off = 0, n;

		while ((n = cairn_chunker_next(c, win + off, have - off, final)) > 0) {
			cr_assert(n <= have - off);
			cuts_push(&cuts, n);
			off += n;
		}
		/* not final: a window of max bytes or more always yields a cut */
		cr_assert(final || have - off < c->p.max);
		memmove(win, win + off, have - off);
		have -= off;
		if (final)
			break;

		size_t piece = 1 + xorshift64(&s) % (3 * (size_t)c->p.max);

		if (piece > len - fed)
			piece = len - fed;
		if (piece > cap - have)
			piece = cap - have;
		memcpy(win + have, buf + fed, piece);
		have += piece;
		fed += piece;
	}
	cr_assert_eq(have, 0);
	free(win);
	return cuts;
}

static void assert_cuts_eq(const struct cuts *a, const struct cuts *b)
{
	cr_assert_eq(a->n, b->n, "cut counts differ: %zu vs %zu", a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		cr_assert_eq(a->len[i], b->len[i], "chunk %zu: %zu vs %zu", i, a->len[i],
			     b->len[i]);
}

Test(chunker, init_rejects_bad_params)
{
	static const struct cairn_chunker_params bad[] = {
		{ .min = 32, .avg = 128, .max = 1024 }, /* min < 64 */
		{ .min = 63, .avg = 128, .max = 1024 }, /* min < 64 */
		{ .min = 2048, .avg = 6000, .max = 65536 }, /* avg not a power of two */
		{ .min = 2048, .avg = 0, .max = 65536 }, /* avg zero */
		{ .min = 8192, .avg = 8192, .max = 65536 }, /* min == avg */
		{ .min = 16384, .avg = 8192, .max = 65536 }, /* min > avg */
		{ .min = 2048, .avg = 8192, .max = 8192 }, /* avg == max */
		{ .min = 2048, .avg = 8192, .max = 4096 }, /* max < avg */
		{ .min = 2048, .avg = 1u << 20, .max = CAIRN_CHUNK_MAX_LIMIT + 1 },
		{ .min = 2048, .avg = 1u << 31, .max = UINT32_MAX },
	};
	struct cairn_chunker *c = malloc(sizeof(*c));

	cr_assert_not_null(c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(cairn_chunker_init(c, &bad[i]), -EINVAL, "bad params %zu accepted", i);

	/* the edges that are allowed */
	struct cairn_chunker_params ok = { .min = 64, .avg = 128, .max = 129 };

	cr_expect_eq(cairn_chunker_init(c, &ok), 0);
	ok = (struct cairn_chunker_params){ .min = 64, .avg = 2u << 20,
					    .max = CAIRN_CHUNK_MAX_LIMIT };
	cr_expect_eq(cairn_chunker_init(c, &ok), 0);
	free(c);
}

Test(chunker, init_is_deterministic)
{
	for (size_t k = 0; k < NPARAMS; k++) {
		struct cairn_chunker *a = chunker_new(all_params[k]);
		struct cairn_chunker *b = chunker_new(all_params[k]);

		cr_assert(memcmp(a, b, sizeof(*a)) == 0);
		cr_assert_neq(a->mask_small, 0);
		cr_assert_neq(a->mask_large, 0);
		/* normalized level 2: log2(avg) +- 2 one-bits */
		cr_assert_eq(__builtin_popcountll(a->mask_small), __builtin_ctz(a->p.avg) + 2);
		cr_assert_eq(__builtin_popcountll(a->mask_small),
			     __builtin_popcountll(a->mask_large) + 4);
		free(a);
		free(b);
	}

	/* another seed, another table */
	struct cairn_chunker_params p = params_default;
	struct cairn_chunker *a = chunker_new(&p);

	p.seed++;
	struct cairn_chunker *b = chunker_new(&p);

	cr_assert(memcmp(a->gear, b->gear, sizeof(a->gear)) != 0);
	free(a);
	free(b);
}

Test(chunker, same_input_same_cuts)
{
	size_t len = 4 * MiB;
	uint8_t *buf = random_bytes(len, 1);

	for (size_t k = 0; k < NPARAMS; k++) {
		struct cairn_chunker *c = chunker_new(all_params[k]);
		struct cuts a = chunk_all(c, buf, len);
		struct cuts b = chunk_all(c, buf, len);

		cr_assert_gt(a.n, 1);
		assert_cuts_eq(&a, &b);
		cuts_release(&a);
		cuts_release(&b);
		free(c);
	}
	free(buf);
}

Test(chunker, short_and_empty_input)
{
	uint8_t *buf = random_bytes(CAIRN_CHUNK_MAX_DEFAULT, 2);

	for (size_t k = 0; k < NPARAMS; k++) {
		struct cairn_chunker *c = chunker_new(all_params[k]);
		size_t min = c->p.min;

		cr_assert_eq(cairn_chunker_next(c, buf, 0, 0), 0);
		cr_assert_eq(cairn_chunker_next(c, buf, 0, 1), 0);
		cr_assert_eq(cairn_chunker_next(c, buf, 1, 0), 0);
		cr_assert_eq(cairn_chunker_next(c, buf, 1, 1), 1);
		cr_assert_eq(cairn_chunker_next(c, buf, min, 0), 0);
		cr_assert_eq(cairn_chunker_next(c, buf, min, 1), min);
		free(c);
	}
	free(buf);
}

Test(chunker, sizes_within_bounds)
{
	size_t len = 8 * MiB;
	uint8_t *buf = random_bytes(len, 3);

	for (size_t k = 0; k < NPARAMS; k++) {
		struct cairn_chunker *c = chunker_new(all_params[k]);
		struct cuts cuts = chunk_all(c, buf, len);
		size_t total = 0;

		for (size_t i = 0; i < cuts.n; i++) {
			cr_assert_leq(cuts.len[i], c->p.max, "chunk %zu: %zu > max", i, cuts.len[i]);
			if (i + 1 < cuts.n)
				cr_assert_geq(cuts.len[i], c->p.min, "chunk %zu: %zu < min", i,
					      cuts.len[i]);
			total += cuts.len[i];
		}
		cr_assert_eq(total, len);
		cuts_release(&cuts);
		free(c);
	}
	free(buf);
}

Test(chunker, zeros_cut_at_max)
{
	size_t len = 4 * MiB + 12345;
	uint8_t *buf = calloc(1, len);

	cr_assert_not_null(buf);
	for (size_t k = 0; k < NPARAMS; k++) {
		struct cairn_chunker *c = chunker_new(all_params[k]);
		struct cuts cuts = chunk_all(c, buf, len);

		cr_assert_eq(cuts.n, (len + c->p.max - 1) / c->p.max);
		for (size_t i = 0; i + 1 < cuts.n; i++)
			cr_assert_eq(cuts.len[i], c->p.max, "chunk %zu: %zu", i, cuts.len[i]);
		cr_assert_eq(cuts.len[cuts.n - 1], len % c->p.max);
		/* a full max-sized window cuts at max even when more may follow */
		cr_assert_eq(cairn_chunker_next(c, buf, len, 0), c->p.max);
		cuts_release(&cuts);
		free(c);
	}
	free(buf);
}

Test(chunker, streaming_equals_one_shot)
{
	size_t len = 8 * MiB + 777;
	uint8_t *buf = random_bytes(len, 4);

	/* a run of zeros in the middle puts some max-sized cuts in the stream */
	memset(buf + 3 * MiB, 0, MiB);
	for (size_t k = 0; k < NPARAMS; k++) {
		struct cairn_chunker *c = chunker_new(all_params[k]);
		struct cuts all = chunk_all(c, buf, len);

		for (uint64_t seed = 1; seed <= 4; seed++) {
			struct cuts stream = chunk_stream(c, buf, len, seed * 0x9e3779b97f4a7c15ull);

			assert_cuts_eq(&all, &stream);
			cuts_release(&stream);
		}
		cuts_release(&all);
		free(c);
	}
	free(buf);
}

/* Checks next() on the first len bytes of win, copied to a buffer of exactly len bytes. */
static void check_prefix(const struct cairn_chunker *c, const uint8_t *win, size_t len,
			 size_t cut)
{
	uint8_t *copy = malloc(len ? len : 1);

	cr_assert_not_null(copy);
	memcpy(copy, win, len);
	cr_assert_eq(cairn_chunker_next(c, copy, len, 0), cut <= len ? cut : 0,
		     "len %zu, cut %zu", len, cut);
	cr_assert_eq(cairn_chunker_next(c, copy, len, 1), cut <= len ? cut : len,
		     "len %zu, cut %zu, final", len, cut);
	free(copy);
}

/* Checks prefixes of win[0..2 * max) around the sizes where behaviour changes. */
static size_t check_window(const struct cairn_chunker *c, const uint8_t *win, uint64_t *s)
{
	size_t min = c->p.min, avg = c->p.avg, max = c->p.max;
	size_t cut = cairn_chunker_next(c, win, 2 * max, 0);
	const size_t lens[] = {
		0, 1, min - 1, min, min + 1, avg - 2, avg - 1, avg, avg + 1,
		cut - 1, cut, cut + 1, max - 1, max, max + 1, 2 * max,
		xorshift64(s) % (2 * max), xorshift64(s) % (2 * max),
	};

	cr_assert(cut >= min && cut <= max, "cut %zu", cut);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		check_prefix(c, win, lens[i], cut);
	return cut;
}

/*
 * Whatever part of a chunk's bytes the caller has, next() gives the cut of
 * the whole stream or asks for more, and reads nothing past len (the copies
 * are exactly len bytes, for the sanitizers).
 */
Test(chunker, prefixes_agree_with_whole)
{
	size_t len = 4 * MiB;
	uint8_t *buf = random_bytes(len, 8);
	uint8_t *zeros = calloc(1, 2 * CAIRN_CHUNK_MAX_DEFAULT);
	uint64_t s = 99;

	cr_assert_not_null(zeros);
	for (size_t k = 0; k < NPARAMS; k++) {
		struct cairn_chunker *c = chunker_new(all_params[k]);
		size_t max = c->p.max, off = 0;

		/* every few hundred KiB, to keep this quick */
		while (off + 2 * max <= len)
			off += check_window(c, buf + off, &s) + 3 * max;
		cr_assert_eq(check_window(c, zeros, &s), max);
		free(c);
	}
	free(zeros);
	free(buf);
}

/* XXH3-64 of a cut list, each length as a little-endian u64. */
static uint64_t cuts_digest(const struct cuts *cuts)
{
	XXH3_state_t *st = XXH3_createState();
	uint64_t d;

	cr_assert_not_null(st);
	XXH3_64bits_reset(st);
	for (size_t i = 0; i < cuts->n; i++) {
		uint8_t le[8];

		for (unsigned int b = 0; b < 8; b++)
			le[b] = (uint8_t)((uint64_t)cuts->len[i] >> (8 * b));
		XXH3_64bits_update(st, le, sizeof(le));
	}
	d = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return d;
}

/*
 * Cut points are part of the store format: chunk ids depend on them, so the
 * same (bytes, seed, min, avg, max) must cut the same way in every version.
 * If this fails, the chunker changed, and existing stores stop deduplicating
 * against new imports.
 */
Test(chunker, cut_points_are_stable)
{
	static const struct {
		size_t n;
		uint64_t digest;
	} golden[NPARAMS] = {
		{ 114, 0x9a6f53b1ea06a116ull },
		{ 905, 0x384f28f16e60637bull },
	};
	size_t len = 8 * MiB;
	uint8_t *buf = random_bytes(len, 9);

	for (size_t k = 0; k < NPARAMS; k++) {
		struct cairn_chunker *c = chunker_new(all_params[k]);
		struct cuts cuts = chunk_all(c, buf, len);
		uint64_t d = cuts_digest(&cuts);

		cr_log_info("params %zu: %zu chunks, digest 0x%016llx", k, cuts.n,
			    (unsigned long long)d);
		cr_expect_eq(cuts.n, golden[k].n, "params %zu: %zu chunks", k, cuts.n);
		cr_expect_eq(d, golden[k].digest, "params %zu: digest 0x%016llx", k,
			     (unsigned long long)d);
		cuts_release(&cuts);
		free(c);
	}
	free(buf);
}

static int id_cmp(const void *a, const void *b)
{
	const XXH128_hash_t *x = a, *y = b;

	if (x->high64 != y->high64)
		return x->high64 < y->high64 ? -1 : 1;
	if (x->low64 != y->low64)
		return x->low64 < y->low64 ? -1 : 1;
	return 0;
}

/* Sorted hashes of the chunks of buf. */
static XXH128_hash_t *chunk_ids(const struct cairn_chunker *c, const uint8_t *buf, size_t len,
				size_t *n)
{
	struct cuts cuts = chunk_all(c, buf, len);
	XXH128_hash_t *ids = calloc(cuts.n, sizeof(*ids));
	size_t off = 0;

	cr_assert_not_null(ids);
	for (size_t i = 0; i < cuts.n; i++) {
		ids[i] = XXH3_128bits(buf + off, cuts.len[i]);
		off += cuts.len[i];
	}
	qsort(ids, cuts.n, sizeof(*ids), id_cmp);
	*n = cuts.n;
	cuts_release(&cuts);
	return ids;
}

/* Percentage of the chunks of a that are also chunks of b. */
static double shared_percent(const struct cairn_chunker *c, const uint8_t *a, size_t alen,
			     const uint8_t *b, size_t blen)
{
	size_t na, nb, shared = 0;
	XXH128_hash_t *ia = chunk_ids(c, a, alen, &na);
	XXH128_hash_t *ib = chunk_ids(c, b, blen, &nb);

	for (size_t i = 0; i < na; i++)
		shared += bsearch(&ia[i], ib, nb, sizeof(*ib), id_cmp) != NULL;
	cr_log_info("%zu of %zu chunks shared", shared, na);
	free(ia);
	free(ib);
	return 100.0 * (double)shared / (double)na;
}

/*
 * 8 MiB of random bytes, then the same with 100 bytes inserted at offset
 * 1000. Measured: 99.08% of the original chunks are still present with
 * the default sizes (108 of 109), 99.89% with 2K/8K/64K (906 of 907): only
 * the chunk holding the insertion changes. The bounds sit a little below.
 */
Test(chunker, insertion_moves_few_cuts)
{
	static const double min_shared[NPARAMS] = { 98.0, 99.5 };
	size_t len = 8 * MiB, at = 1000, ins = 100;
	uint8_t *a = random_bytes(len, 5);
	uint8_t *extra = random_bytes(ins, 6);
	uint8_t *b = malloc(len + ins);

	cr_assert_not_null(b);
	memcpy(b, a, at);
	memcpy(b + at, extra, ins);
	memcpy(b + at + ins, a + at, len - at);

	for (size_t k = 0; k < NPARAMS; k++) {
		struct cairn_chunker *c = chunker_new(all_params[k]);
		double pct = shared_percent(c, a, len, b, len + ins);

		cr_log_info("params %zu: %.2f%% of chunks shared after insertion", k, pct);
		cr_expect_geq(pct, min_shared[k], "params %zu: only %.2f%% shared", k, pct);
		free(c);
	}
	free(a);
	free(b);
	free(extra);
}

/*
 * Mean chunk size on 32 MiB of random bytes. Measured: 73908 bytes for the
 * default 16K/64K/256K, 9262 for 2K/8K/64K, both 1.13 x avg.
 */
Test(chunker, mean_size_near_avg)
{
	size_t len = 32 * MiB;
	uint8_t *buf = random_bytes(len, 7);

	for (size_t k = 0; k < NPARAMS; k++) {
		struct cairn_chunker *c = chunker_new(all_params[k]);
		struct cuts cuts = chunk_all(c, buf, len);
		double mean = (double)len / (double)cuts.n, avg = c->p.avg;

		cr_log_info("params %zu: mean chunk %.0f bytes (%.2f x avg)", k, mean, mean / avg);
		cr_expect(mean >= avg / 2 && mean <= 2 * avg, "params %zu: mean %.0f", k, mean);
		cr_expect(mean >= 1.05 * avg && mean <= 1.3 * avg, "params %zu: mean %.0f", k, mean);
		cuts_release(&cuts);
		free(c);
	}
	free(buf);
}
