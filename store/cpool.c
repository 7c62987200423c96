/* SPDX-License-Identifier: MIT */
/*
 * cpool.c - a bounded queue of chunk groups and the threads that compress
 * them.
 *
 * Lock: p->lock protects queue, done, inflight and stop. A group is owned
 * by exactly one party at a time: the producer while it fills it, the
 * queue, one worker while it compresses it, the done list, then the
 * producer again.
 */
#include "cpool.h"

#include <pthread.h>

#include "chunk.h"

#define MAX_INFLIGHT_PER_THREAD 2

struct cairn_cpool {
	pthread_mutex_t lock;
	pthread_cond_t work;     /* a group was queued, or stop */
	pthread_cond_t finished; /* a group reached the done list */
	struct cairn_cgroup *queue, *queue_tail;
	struct cairn_cgroup *done;
	unsigned inflight;       /* submitted and not yet taken */
	unsigned max_inflight;
	bool stop;

	int level;
	bool untrusted;
	unsigned nthreads;
	pthread_t *threads;
	struct cairn_zctx sync_z; /* for a pool without threads */
};

struct cairn_cgroup *cairn_cgroup_new(void)
{
	return calloc(1, sizeof(struct cairn_cgroup));
}

void cairn_cgroup_free(struct cairn_cgroup *g)
{
	if (!g)
		return;
	cairn_buf_release(&g->raw);
	cairn_buf_release(&g->out);
	free(g->items);
	free(g);
}

int cairn_cgroup_add(struct cairn_cgroup *g, const struct cairn_id *id, const void *data,
		     size_t len)
{
	int ret;

	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 64;
		struct cairn_cgroup_item *p = realloc(g->items, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		g->items = p;
		g->cap = cap;
	}
	g->items[g->n].id = *id;
	g->items[g->n].off = (uint32_t)g->raw.len;
	g->items[g->n].len = (uint32_t)len;
	ret = cairn_buf_append(&g->raw, data, len);
	if (ret)
		return ret;
	g->n++;
	return 0;
}

static void compress_group(struct cairn_cpool *p, struct cairn_zctx *z, struct cairn_cgroup *g)
{
	g->ret = cairn_buf_reserve(&g->out, g->raw.len + g->n * 64);
	for (size_t i = 0; i < g->n && !g->ret; i++)
		g->ret = cairn_chunk_encode(z, p->level, p->untrusted, &g->items[i].id,
					    g->raw.data + g->items[i].off, g->items[i].len,
					    &g->out);
	/* the raw bytes are no longer needed; give the memory back early */
	cairn_buf_release(&g->raw);
}

static void *worker(void *arg)
{
	struct cairn_cpool *p = arg;
	struct cairn_zctx z = { 0 };

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct cairn_cgroup *g;

		while (!p->stop && !p->queue)
			pthread_cond_wait(&p->work, &p->lock);
		if (!p->queue)
			break; /* stopping, and nothing left */
		g = p->queue;
		p->queue = g->next;
		if (!p->queue)
			p->queue_tail = NULL;
		pthread_mutex_unlock(&p->lock);

		compress_group(p, &z, g);

		pthread_mutex_lock(&p->lock);
		g->next = p->done;
		p->done = g;
		pthread_cond_broadcast(&p->finished);
	}
	pthread_mutex_unlock(&p->lock);
	cairn_zctx_release(&z);
	return NULL;
}

int cairn_cpool_new(unsigned threads, int level, bool untrusted, struct cairn_cpool **out)
{
	struct cairn_cpool *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->finished, NULL);
	p->level = level;
	p->untrusted = untrusted;
	p->max_inflight = threads ? threads * MAX_INFLIGHT_PER_THREAD : 1;
	if (threads) {
		p->threads = calloc(threads, sizeof(*p->threads));
		if (!p->threads) {
			cairn_cpool_free(p);
			return -ENOMEM;
		}
		for (unsigned i = 0; i < threads; i++) {
			if (pthread_create(&p->threads[i], NULL, worker, p))
				break; /* run with the threads we got */
			p->nthreads++;
		}
	}
	*out = p;
	return 0;
}

void cairn_cpool_free(struct cairn_cpool *p)
{
	struct cairn_cgroup *g, *next;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	/* unstarted work is dropped: the writer is being freed */
	for (g = p->queue; g; g = next) {
		next = g->next;
		cairn_cgroup_free(g);
	}
	p->queue = p->queue_tail = NULL;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	for (g = p->done; g; g = next) {
		next = g->next;
		cairn_cgroup_free(g);
	}
	free(p->threads);
	cairn_zctx_release(&p->sync_z);
	pthread_cond_destroy(&p->finished);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void cairn_cpool_submit(struct cairn_cpool *p, struct cairn_cgroup *g)
{
	g->next = NULL;
	if (!p->nthreads) {
		compress_group(p, &p->sync_z, g);
		pthread_mutex_lock(&p->lock);
		g->next = p->done;
		p->done = g;
		p->inflight++;
		pthread_mutex_unlock(&p->lock);
		return;
	}
	pthread_mutex_lock(&p->lock);
	/* bounded: wait until the producer has taken back enough */
	while (p->inflight >= p->max_inflight && !p->done)
		pthread_cond_wait(&p->finished, &p->lock);
	if (p->queue_tail)
		p->queue_tail->next = g;
	else
		p->queue = g;
	p->queue_tail = g;
	p->inflight++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

struct cairn_cgroup *cairn_cpool_take(struct cairn_cpool *p, bool wait)
{
	struct cairn_cgroup *list = NULL, *g, *next;
	unsigned n = 0;

	pthread_mutex_lock(&p->lock);
	if (wait) {
		/* every submitted group must reach done; count what is not there yet */
		for (;;) {
			unsigned in_done = 0;

			for (g = p->done; g; g = g->next)
				in_done++;
			if (in_done == p->inflight)
				break;
			pthread_cond_wait(&p->finished, &p->lock);
		}
	}
	for (g = p->done; g; g = next) {
		next = g->next;
		g->next = list; /* reverse: oldest first */
		list = g;
		n++;
	}
	p->done = NULL;
	p->inflight -= n;
	pthread_mutex_unlock(&p->lock);
	return list;
}

unsigned cairn_cpool_inflight(struct cairn_cpool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->inflight;
	pthread_mutex_unlock(&p->lock);
	return n;
}
