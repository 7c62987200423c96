/* SPDX-License-Identifier: MIT */
/*
 * s3check.c - drives remote/s3.h against a real radosgw, for
 * tests/integration/remote_s3.sh. Reads the endpoint, keys and CA from the
 * environment ceph-rgw.sh prints (CAIRN_S3_ENDPOINT or the first argument,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, CAIRN_S3_CA).
 *
 *   s3check ENDPOINT BUCKET suite        the client's whole contract, checked
 *   s3check ENDPOINT BUCKET expect ERRNO-NAME [timeout-ms attempts deadline-ms]
 *                                        one GET of a key that exists when the
 *                                        gateway answers; prints the result
 *   s3check ENDPOINT BUCKET throughput N SIZE INFLIGHT
 *                                        PUT then GET N objects, prints rates
 *
 * Exits 0 when every check holds; prints each failure on its own line.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"

static int failures;

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) { \
			failures++; \
			printf("FAIL %s:%d: ", __func__, __LINE__); \
			printf(__VA_ARGS__); \
			printf(" [%s]\n", cairn_errmsg()); \
		} \
	} while (0)

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t r = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < n; i++) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		p[i] = (uint8_t)r;
	}
}

static struct cairn_s3 *client(const char *endpoint, const char *bucket, unsigned timeout_ms,
			       unsigned attempts, unsigned inflight)
{
	struct cairn_s3_config c = {
		.endpoint = endpoint,
		.bucket = bucket,
		.access_key = getenv("AWS_ACCESS_KEY_ID"),
		.secret_key = getenv("AWS_SECRET_ACCESS_KEY"),
		.ca_file = getenv("CAIRN_S3_CA"),
		.timeout_ms = timeout_ms,
		.attempts = attempts,
		.max_inflight = inflight,
	};
	struct cairn_s3 *s;
	int ret = cairn_s3_new(&c, &s);

	if (ret) {
		printf("FAIL cannot make a client: %s\n", cairn_errmsg());
		exit(1);
	}
	return s;
}

struct op {
	int err;
	bool done;
	uint64_t seed;
	size_t len;
	uint64_t off;
	uint8_t *buf;
};

static void op_done(void *arg, const struct cairn_s3_result *r)
{
	struct op *o = arg;

	o->done = true;
	o->err = r->err;
	if (r->err && r->err != -EEXIST)
		printf("   request failed: %s\n", r->msg);
	if (r->err == 0 && o->buf) {
		if (r->len != o->len)
			o->err = -EMSGSIZE;
		else
			memcpy(o->buf, r->body, r->len);
	}
}

/* Many PUTs, GETs and ranged GETs in flight; bodies compared. */
static void check_parallel(struct cairn_s3 *s)
{
	enum { N = 300, SZ = 65536 };
	static struct op ops[N];
	uint8_t *bodies = malloc((size_t)N * SZ);
	char key[64];
	int bad = 0;

	for (int i = 0; i < N; i++) {
		fill(bodies + (size_t)i * SZ, SZ, (uint64_t)i);
		snprintf(key, sizeof(key), "par/%04d", i);
		ops[i] = (struct op){ 0 };
		struct cairn_s3_request r = {
			.method = CAIRN_S3_PUT, .key = key, .body = bodies + (size_t)i * SZ,
			.body_len = SZ, .done = op_done, .arg = &ops[i],
		};
		CHECK(cairn_s3_submit(s, &r) == 0, "submit put");
	}
	CHECK(cairn_s3_run(s, -1) == 0, "run");
	for (int i = 0; i < N; i++)
		bad += ops[i].err != 0;
	CHECK(bad == 0, "%d of %d PUTs failed", bad, N);
	CHECK(cairn_s3_stats(s)->connects <= 2 * 16,
	      "%" PRIu64 " connections for %d PUTs with 16 in flight: not kept alive",
	      cairn_s3_stats(s)->connects, N);

	/* whole and ranged GETs, all at once */
	uint8_t *back = malloc((size_t)N * SZ);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "par/%04d", i);
		ops[i] = (struct op){ .buf = back + (size_t)i * SZ, .len = SZ };
		struct cairn_s3_request r = {
			.method = CAIRN_S3_GET, .key = key, .done = op_done, .arg = &ops[i],
		};
		if (i % 2) { /* a range */
			ops[i].off = next_rand() % (SZ - 1);
			ops[i].len = 1 + next_rand() % (SZ - ops[i].off);
			r.range_off = ops[i].off;
			r.range_len = ops[i].len;
		}
		CHECK(cairn_s3_submit(s, &r) == 0, "submit get");
	}
	CHECK(cairn_s3_run(s, -1) == 0, "run");
	bad = 0;
	for (int i = 0; i < N; i++) {
		const uint8_t *w = bodies + (size_t)i * SZ + ops[i].off;

		if (ops[i].err || memcmp(back + (size_t)i * SZ, w, ops[i].len) != 0)
			bad++;
	}
	CHECK(bad == 0, "%d of %d GETs (half of them ranged) came back wrong", bad, N);
	free(back);
	free(bodies);
}

/* Sixteen conditional PUTs of one key at once: exactly one wins. */
static void check_conditional(struct cairn_s3 *s)
{
	enum { N = 16 };
	struct op ops[N];
	uint8_t bodies[N][32];
	struct cairn_buf got = { 0 };
	int wins = 0, lost = 0, winner = -1;

	for (int i = 0; i < N; i++) {
		memset(bodies[i], 'a' + i, sizeof(bodies[i]));
		ops[i] = (struct op){ 0 };
		struct cairn_s3_request r = {
			.method = CAIRN_S3_PUT, .key = "cond/gen-1", .body = bodies[i],
			.body_len = sizeof(bodies[i]), .if_none_match = true,
			.done = op_done, .arg = &ops[i],
		};
		CHECK(cairn_s3_submit(s, &r) == 0, "submit");
	}
	CHECK(cairn_s3_run(s, -1) == 0, "run");
	for (int i = 0; i < N; i++) {
		if (ops[i].err == 0) {
			wins++;
			winner = i;
		} else if (ops[i].err == -EEXIST) {
			lost++;
		}
	}
	CHECK(wins == 1 && lost == N - 1, "%d won and %d lost, expected 1 and %d", wins, lost,
	      N - 1);
	CHECK(cairn_s3_get(s, "cond/gen-1", 0, &got) == 0, "get the winner");
	CHECK(winner >= 0 && got.len == 32 && memcmp(got.data, bodies[winner], 32) == 0,
	      "the object is not the winner's body");
	cairn_buf_release(&got);
	CHECK(cairn_s3_put(s, "cond/gen-1", "x", 1, true) == -EEXIST, "a late conditional PUT");
}

struct listing {
	int n;
	char last[64];
	bool ordered;
};

static int on_key(void *arg, const char *key, uint64_t size)
{
	struct listing *l = arg;

	if (l->n && strcmp(key, l->last) <= 0)
		l->ordered = false;
	snprintf(l->last, sizeof(l->last), "%s", key);
	l->n++;
	return size == 3 ? 0 : -EUCLEAN;
}

/* More keys than one page (1000): every one listed, in order. */
static void check_list(struct cairn_s3 *s)
{
	enum { N = 1100 };
	static struct op ops[N];
	struct listing l = { .ordered = true };
	char key[64];
	int bad = 0;

	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "many/k=%05d", i); /* '=' is encoded in the query */
		ops[i] = (struct op){ 0 };
		struct cairn_s3_request r = {
			.method = CAIRN_S3_PUT, .key = key, .body = "abc", .body_len = 3,
			.done = op_done, .arg = &ops[i],
		};
		CHECK(cairn_s3_submit(s, &r) == 0, "submit");
	}
	CHECK(cairn_s3_run(s, -1) == 0, "run");
	for (int i = 0; i < N; i++)
		bad += ops[i].err != 0;
	CHECK(bad == 0, "%d PUTs failed", bad);
	CHECK(cairn_s3_list(s, "many/", NULL, on_key, &l) == 0, "list");
	CHECK(l.n == N && l.ordered, "listed %d keys (ordered: %d), expected %d", l.n, l.ordered,
	      N);
	l = (struct listing){ .ordered = true };
	CHECK(cairn_s3_list(s, "many/", "many/k=01049", on_key, &l) == 0, "list after");
	CHECK(l.n == 50 && strcmp(l.last, "many/k=01099") == 0,
	      "listing after a key gave %d keys up to %s", l.n, l.last);
	l = (struct listing){ .ordered = true };
	CHECK(cairn_s3_list(s, "nothing-here/", NULL, on_key, &l) == 0 && l.n == 0,
	      "an empty prefix");
}

static void check_errors(struct cairn_s3 *s)
{
	struct cairn_buf b = { 0 };
	uint64_t size = 0;

	CHECK(cairn_s3_put(s, "small", "0123456789", 10, false) == 0, "put");
	CHECK(cairn_s3_head(s, "small", &size) == 0 && size == 10, "head: size %" PRIu64, size);
	CHECK(cairn_s3_head(s, "absent", &size) == -ENOENT, "head of a missing object");
	CHECK(cairn_s3_get(s, "absent", 0, &b) == -ENOENT, "get of a missing object");
	CHECK(strstr(cairn_errmsg(), "no such object"), "message: %s", cairn_errmsg());
	CHECK(cairn_s3_get(s, "small", 4, &b) == -EFBIG, "a body over max_len");
	b.len = 0;
	CHECK(cairn_s3_put(s, "small", "abc", 3, false) == 0, "overwrite");
	CHECK(cairn_s3_get(s, "small", 0, &b) == 0 && b.len == 3 && memcmp(b.data, "abc", 3) == 0,
	      "overwritten body");
	CHECK(cairn_s3_delete(s, "small") == 0, "delete");
	CHECK(cairn_s3_delete(s, "small") == 0, "delete twice");
	CHECK(cairn_s3_head(s, "small", NULL) == -ENOENT, "deleted");
	cairn_buf_release(&b);
}

static int suite(const char *ep, const char *bucket)
{
	struct cairn_s3 *s = client(ep, bucket, 10000, 4, 16);
	char other[80];

	CHECK(cairn_s3_bucket(s, false) == -ENOENT, "a bucket not made yet");
	CHECK(strstr(cairn_errmsg(), "no such bucket"), "message: %s", cairn_errmsg());
	CHECK(cairn_s3_bucket(s, true) == 0, "create the bucket");
	CHECK(cairn_s3_bucket(s, true) == 0, "create it again");
	CHECK(cairn_s3_bucket(s, false) == 0, "it is there");
	check_errors(s);
	check_parallel(s);
	check_conditional(s);
	check_list(s);
	printf("   requests %" PRIu64 ", retries %" PRIu64 ", connections %" PRIu64
	       ", sent %" PRIu64 ", received %" PRIu64 "\n",
	       cairn_s3_stats(s)->requests, cairn_s3_stats(s)->retries,
	       cairn_s3_stats(s)->connects, cairn_s3_stats(s)->bytes_sent,
	       cairn_s3_stats(s)->bytes_received);
	cairn_s3_free(s);

	/* a PUT into a bucket that is not there */
	snprintf(other, sizeof(other), "%s-missing", bucket);
	s = client(ep, other, 10000, 4, 16);
	CHECK(cairn_s3_put(s, "x", "x", 1, false) == -ENOENT, "a PUT into a missing bucket");
	cairn_s3_free(s);
	return failures ? 1 : 0;
}

static const struct { const char *name; int err; } errnames[] = {
	{ "0", 0 }, { "ENOENT", -ENOENT }, { "EACCES", -EACCES }, { "ETIMEDOUT", -ETIMEDOUT },
	{ "ECONNREFUSED", -ECONNREFUSED }, { "EPROTO", -EPROTO }, { "EIO", -EIO },
};

/* One GET with the given timeout, attempts and deadline; its result must be want. */
static int expect(const char *ep, const char *bucket, const char *want, int argc, char **argv)
{
	unsigned timeout = argc > 0 ? (unsigned)atoi(argv[0]) : 10000;
	unsigned attempts = argc > 1 ? (unsigned)atoi(argv[1]) : 4;
	int64_t deadline_ms = argc > 2 ? atoll(argv[2]) : 0;
	struct cairn_s3 *s = client(ep, bucket, timeout, attempts, 4);
	struct op o = { 0 };
	struct cairn_s3_request r = {
		.method = CAIRN_S3_GET, .key = "probe", .done = op_done, .arg = &o,
		.deadline_ns = deadline_ms ? cairn_s3_clock_ns() + deadline_ms * 1000000 : 0,
	};
	int64_t t0 = cairn_s3_clock_ns();
	int wanterr = 1;

	for (size_t i = 0; i < ARRAY_SIZE(errnames); i++)
		if (strcmp(errnames[i].name, want) == 0)
			wanterr = errnames[i].err;
	if (wanterr == 1) {
		printf("FAIL unknown error name %s\n", want);
		return 1;
	}
	if (wanterr == 0 && getenv("S3CHECK_PUT_PROBE"))
		CHECK(cairn_s3_put(s, "probe", "probe", 5, false) == 0, "put the probe");
	cairn_s3_submit(s, &r);
	cairn_s3_run(s, -1);
	printf("   result %d after %.2f s, %" PRIu64 " retries\n", o.err,
	       (double)(cairn_s3_clock_ns() - t0) / 1e9, cairn_s3_stats(s)->retries);
	CHECK(o.err == wanterr, "GET gave %d, expected %s (%d)", o.err, want, wanterr);
	cairn_s3_free(s);
	return failures ? 1 : 0;
}

static int throughput(const char *ep, const char *bucket, int n, size_t size, unsigned inflight)
{
	struct cairn_s3 *s = client(ep, bucket, 30000, 4, inflight);
	struct op *ops = calloc((size_t)n, sizeof(*ops));
	uint8_t *body = malloc(size);
	char key[64];
	int64_t t0;
	double put_s, get_s;

	fill(body, size, 7);
	CHECK(cairn_s3_bucket(s, true) == 0, "bucket");
	t0 = cairn_s3_clock_ns();
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "tp/%06d", i);
		struct cairn_s3_request r = {
			.method = CAIRN_S3_PUT, .key = key, .body = body, .body_len = size,
			.done = op_done, .arg = &ops[i],
		};
		cairn_s3_submit(s, &r);
	}
	cairn_s3_run(s, -1);
	put_s = (double)(cairn_s3_clock_ns() - t0) / 1e9;
	t0 = cairn_s3_clock_ns();
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "tp/%06d", i);
		struct cairn_s3_request r = {
			.method = CAIRN_S3_GET, .key = key, .done = op_done, .arg = &ops[i],
		};
		cairn_s3_submit(s, &r);
	}
	cairn_s3_run(s, -1);
	get_s = (double)(cairn_s3_clock_ns() - t0) / 1e9;
	printf("%d x %zu B, %u in flight: PUT %.0f/s %.1f MB/s, GET %.0f/s %.1f MB/s, "
	       "%" PRIu64 " connections, %" PRIu64 " retries\n",
	       n, size, inflight, n / put_s, (double)n * (double)size / put_s / 1e6, n / get_s,
	       (double)n * (double)size / get_s / 1e6, cairn_s3_stats(s)->connects,
	       cairn_s3_stats(s)->retries);
	cairn_s3_free(s);
	free(ops);
	free(body);
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: s3check ENDPOINT BUCKET suite|expect|throughput ...\n");
		return 2;
	}
	if (strcmp(argv[3], "suite") == 0)
		return suite(argv[1], argv[2]);
	if (strcmp(argv[3], "expect") == 0 && argc >= 5)
		return expect(argv[1], argv[2], argv[4], argc - 5, argv + 5);
	if (strcmp(argv[3], "throughput") == 0 && argc == 7)
		return throughput(argv[1], argv[2], atoi(argv[4]), (size_t)atol(argv[5]),
				  (unsigned)atoi(argv[6]));
	fprintf(stderr, "s3check: bad arguments\n");
	return 2;
}
