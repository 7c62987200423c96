/* SPDX-License-Identifier: MIT */
/*
 * fetch.c - the S3 fetcher of lazy chunks (fetch.h).
 *
 * Locks: f->lock protects the list of remotes and each remote's queue, s3
 * pointer, stop flag and connection state. A remote's thread is the only
 * one that drives its client; others only queue and wake it. Lock order:
 * f->lock, then the lazy source's (cairn_lazy_done is called without
 * f->lock).
 */
#include "fetch.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>

#include "layout.h"
#include "lazy.h"
#include "remote.h"

#define RANGE_GAP (64u << 10) /* requested neighbours this close share one GET */
#define RANGE_MAX (8u << 20)  /* no GET asks for more */
#define RUN_SLICE_MS 1000

struct rremote;

/* One queued request: a chunk's record and when it was asked for. */
struct rreq {
	struct cairn_lazy rec;
	int64_t deadline_ns;
};

/* One ranged GET of neighbouring entries. */
struct rrange {
	struct rremote *r;
	struct rreq *reqs; /* owned */
	size_t n;
	uint64_t off, len;
	char key[CAIRN_RKEY_MAX];
};

struct rfetcher;

struct rremote {
	struct rremote *next;
	struct rfetcher *f;
	char name[CAIRN_LAZY_NAME_MAX + 1];
	unsigned timeout_ms;
	pthread_t thread;
	pthread_cond_t wake;
	/* protected by f->lock */
	struct rreq *queue;
	size_t nq, capq;
	struct cairn_s3 *s3; /* while connected: for cairn_s3_wakeup() */
	bool idle;           /* the thread waits on wake */
	bool stop;
};

struct rfetcher {
	struct cairn_lazy_fetcher base; /* first */
	struct cairn_store *s;
	unsigned flags;
	void (*log)(void *arg, const char *msg);
	void *log_arg;
	pthread_mutex_t lock;
	struct rremote *remotes;
};

static struct rfetcher *rf_of(struct cairn_lazy_fetcher *f)
{
	return (struct rfetcher *)f;
}

static void fail_reqs(struct rremote *r, const struct rreq *reqs, size_t n, int err,
		      const char *msg)
{
	for (size_t i = 0; i < n; i++)
		cairn_lazy_done(&r->f->base, &reqs[i].rec.id, err, msg, 0, 0, NULL, 0);
}

/* A GET came back: each entry checked against its record, then answered. */
static void range_done(void *arg, const struct cairn_s3_result *res)
{
	struct rrange *rg = arg;
	struct rremote *r = rg->r;
	char msg[CAIRN_RKEY_MAX + 1024];

	if (res->err) {
		snprintf(msg, sizeof(msg), "GET %s: %s", rg->key, res->msg);
		fail_reqs(r, rg->reqs, rg->n, res->err, msg);
	} else if (res->len != rg->len) {
		snprintf(msg, sizeof(msg), "GET %s: %zu bytes where %" PRIu64 " were asked for "
			 "(a truncated pack)", rg->key, res->len, rg->len);
		fail_reqs(r, rg->reqs, rg->n, -EIO, msg);
	} else {
		for (size_t i = 0; i < rg->n; i++) {
			const struct cairn_lazy *l = &rg->reqs[i].rec;
			const uint8_t *e = res->body + (l->offset - rg->off);
			struct cairn_rentry h;

			memcpy(&h, e, sizeof(h));
			if (h.kind != CAIRN_RKIND_CHUNK || memcmp(h.id, l->id.b, CAIRN_ID_LEN) ||
			    CAIRN_GET(h.len) != l->len - sizeof(h)) {
				cairn_lazy_done(&r->f->base, &l->id, -EIO,
						"its entry on the remote is another object's (damaged "
						"or substituted pack)", 0, 0, NULL, 0);
				continue;
			}
			cairn_lazy_done(&r->f->base, &l->id, 0, NULL, h.codec, CAIRN_GET(h.raw_len),
					e + sizeof(h), CAIRN_GET(h.len));
		}
	}
	free(rg->reqs);
	free(rg);
}

static int req_cmp(const void *a, const void *b)
{
	const struct rreq *x = a, *y = b;
	int c = memcmp(x->rec.pack.b, y->rec.pack.b, CAIRN_ID_LEN);

	if (c)
		return c;
	return x->rec.offset < y->rec.offset ? -1 : x->rec.offset > y->rec.offset;
}

/* Submits GETs for reqs[0..n) (consumed), neighbours together. */
static void submit(struct rremote *r, struct cairn_remote_conn *c, struct rreq *reqs, size_t n)
{
	qsort(reqs, n, sizeof(*reqs), req_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		uint64_t end = reqs[i].rec.offset + reqs[i].rec.len;
		int64_t deadline = reqs[i].deadline_ns;
		char rest[CAIRN_RKEY_MAX];
		struct rrange *rg;
		int ret;

		while (j < n && cairn_id_eq(&reqs[j].rec.pack, &reqs[i].rec.pack) &&
		       reqs[j].rec.offset >= end && reqs[j].rec.offset - end <= RANGE_GAP &&
		       reqs[j].rec.offset + reqs[j].rec.len - reqs[i].rec.offset <= RANGE_MAX) {
			end = reqs[j].rec.offset + reqs[j].rec.len;
			if (reqs[j].deadline_ns < deadline)
				deadline = reqs[j].deadline_ns;
			j++;
		}
		rg = calloc(1, sizeof(*rg));
		if (rg)
			rg->reqs = malloc((j - i) * sizeof(*rg->reqs));
		if (!rg || !rg->reqs) {
			if (rg)
				free(rg);
			fail_reqs(r, reqs + i, j - i, -ENOMEM, "out of memory");
			i = j;
			continue;
		}
		memcpy(rg->reqs, reqs + i, (j - i) * sizeof(*rg->reqs));
		*rg = (struct rrange){ .r = r, .reqs = rg->reqs, .n = j - i,
				       .off = reqs[i].rec.offset, .len = end - reqs[i].rec.offset };
		cairn_rkey_pack(&reqs[i].rec.pack, false, rest);
		ret = cairn_remote_key(c, rest, rg->key, sizeof(rg->key));
		if (!ret) {
			struct cairn_s3_request q = {
				.method = CAIRN_S3_GET, .key = rg->key, .range_off = rg->off,
				.range_len = rg->len, .max_len = RANGE_MAX + (1u << 20),
				.deadline_ns = deadline, .done = range_done, .arg = rg,
			};

			ret = cairn_s3_submit(c->s3, &q);
		}
		if (ret) {
			fail_reqs(r, rg->reqs, rg->n, ret, cairn_errmsg());
			free(rg->reqs);
			free(rg);
		}
		i = j;
	}
	free(reqs);
}

/* Connects r (on its thread). 0 or -errno with a message. */
static int connect_remote(struct rremote *r, struct cairn_remote_conn **out)
{
	struct rfetcher *f = r->f;
	int ret = cairn_remote_open(f->s, r->name, f->flags, out);

	if (ret)
		return ret;
	pthread_mutex_lock(&f->lock);
	r->s3 = (*out)->s3;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static void *remote_main(void *arg)
{
	struct rremote *r = arg;
	struct rfetcher *f = r->f;
	struct cairn_remote_conn *c = NULL;

	for (;;) {
		struct rreq *reqs;
		size_t n;
		bool stop;

		pthread_mutex_lock(&f->lock);
		while (!r->nq && !r->stop && !(c && cairn_s3_pending(c->s3))) {
			r->idle = true;
			pthread_cond_wait(&r->wake, &f->lock);
			r->idle = false;
		}
		reqs = r->queue;
		n = r->nq;
		r->queue = NULL;
		r->nq = r->capq = 0;
		stop = r->stop;
		pthread_mutex_unlock(&f->lock);
		if (stop) {
			fail_reqs(r, reqs, n, -ECANCELED, "the daemon is stopping");
			free(reqs);
			break;
		}
		if (n && !c) {
			int ret = connect_remote(r, &c);

			if (ret) {
				char msg[1024];

				snprintf(msg, sizeof(msg), "%s", cairn_errmsg());
				fail_reqs(r, reqs, n, ret, msg);
				free(reqs);
				c = NULL;
				continue;
			}
		}
		if (n)
			submit(r, c, reqs, n);
		else
			free(reqs);
		if (c && cairn_s3_pending(c->s3))
			cairn_s3_run(c->s3, RUN_SLICE_MS); /* returns early on a wakeup */
	}
	if (c) {
		pthread_mutex_lock(&f->lock);
		r->s3 = NULL;
		pthread_mutex_unlock(&f->lock);
		cairn_remote_conn_free(c); /* answers what still runs: -ECANCELED */
	}
	return NULL;
}

/* The remote named name, its thread started on first use (f->lock held). */
static struct rremote *remote_get(struct rfetcher *f, const char *name)
{
	struct cairn_remote_rec rec;
	struct cairn_txn *t;
	struct rremote *r;

	for (r = f->remotes; r; r = r->next)
		if (strcmp(r->name, name) == 0)
			return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->f = f;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->timeout_ms = CAIRN_REMOTE_TIMEOUT_MS;
	if (cairn_txn_begin(f->s, false, &t) == 0) {
		if (cairn_remote_get(t, name, &rec) == 0) {
			if (rec.timeout_ms)
				r->timeout_ms = rec.timeout_ms;
			cairn_remote_rec_release(&rec);
		}
		cairn_txn_abort(t);
	}
	cairn_err_clear();
	{
		pthread_condattr_t a;

		pthread_condattr_init(&a);
		pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
		pthread_cond_init(&r->wake, &a);
		pthread_condattr_destroy(&a);
	}
	if (pthread_create(&r->thread, NULL, remote_main, r)) {
		pthread_cond_destroy(&r->wake);
		free(r);
		return NULL;
	}
	r->next = f->remotes;
	f->remotes = r;
	return r;
}

static void fetcher_start(struct cairn_lazy_fetcher *base, const struct cairn_lazy *recs,
			  size_t n)
{
	struct rfetcher *f = rf_of(base);
	struct rremote *r;
	int64_t now = cairn_s3_clock_ns();
	bool ok = true;

	pthread_mutex_lock(&f->lock);
	r = remote_get(f, recs[0].remote);
	if (r && r->nq + n > r->capq) {
		size_t cap = r->capq ? 2 * r->capq : 64;
		struct rreq *q;

		while (cap < r->nq + n)
			cap *= 2;
		q = realloc(r->queue, cap * sizeof(*q));
		if (q) {
			r->queue = q;
			r->capq = cap;
		} else {
			ok = false;
		}
	}
	if (r && ok) {
		for (size_t i = 0; i < n; i++)
			r->queue[r->nq++] = (struct rreq){
				.rec = recs[i],
				.deadline_ns = now + (int64_t)r->timeout_ms * 1000000,
			};
		if (r->idle)
			pthread_cond_signal(&r->wake);
		else if (r->s3)
			cairn_s3_wakeup(r->s3);
	}
	pthread_mutex_unlock(&f->lock);
	if (!r || !ok)
		for (size_t i = 0; i < n; i++)
			cairn_lazy_done(base, &recs[i].id, -ENOMEM, "out of memory", 0, 0, NULL, 0);
}

static unsigned fetcher_timeout(struct cairn_lazy_fetcher *base, const char *remote)
{
	struct rfetcher *f = rf_of(base);
	struct rremote *r;
	unsigned ms;

	pthread_mutex_lock(&f->lock);
	r = remote_get(f, remote);
	ms = r ? r->timeout_ms : CAIRN_REMOTE_TIMEOUT_MS;
	pthread_mutex_unlock(&f->lock);
	return ms;
}

static void fetcher_log(struct cairn_lazy_fetcher *base, const char *msg)
{
	struct rfetcher *f = rf_of(base);

	if (f->log)
		f->log(f->log_arg, msg);
}

static void fetcher_free(struct cairn_lazy_fetcher *base)
{
	struct rfetcher *f = rf_of(base);

	pthread_mutex_lock(&f->lock);
	for (struct rremote *r = f->remotes; r; r = r->next) {
		r->stop = true;
		pthread_cond_signal(&r->wake);
		if (r->s3)
			cairn_s3_wakeup(r->s3);
	}
	pthread_mutex_unlock(&f->lock);
	while (f->remotes) {
		struct rremote *r = f->remotes;

		pthread_join(r->thread, NULL);
		f->remotes = r->next;
		free(r->queue);
		pthread_cond_destroy(&r->wake);
		free(r);
	}
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static const struct cairn_lazy_fetcher_ops fetcher_ops = {
	.start = fetcher_start,
	.timeout_ms = fetcher_timeout,
	.log = fetcher_log,
	.free = fetcher_free,
};

int cairn_remote_fetcher_attach(struct cairn_store *s, unsigned flags,
				void (*log)(void *arg, const char *msg), void *arg)
{
	struct rfetcher *f = calloc(1, sizeof(*f));
	int ret;

	if (!f)
		return -ENOMEM;
	f->base.ops = &fetcher_ops;
	f->s = s;
	f->flags = flags;
	f->log = log;
	f->log_arg = arg;
	pthread_mutex_init(&f->lock, NULL);
	ret = cairn_lazy_attach(s, &f->base);
	if (ret) {
		pthread_mutex_destroy(&f->lock);
		free(f);
	}
	return ret;
}
