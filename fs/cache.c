/* SPDX-License-Identifier: MIT */
/*
 * cache.c - shards of a chained hash table and an LRU list.
 *
 * Locks: shard->lock protects every field of its shard and, for the
 * chunks in its table, their hnext, hpprev and lru links. A chunk's refs
 * is atomic. The table's reference is dropped, and memory freed, only
 * after the shard lock is released; the hash table grows into an array
 * allocated with the lock dropped.
 */
#include "cache.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>

#define CACHE_SHARDS_DEFAULT 16u
#define CACHE_SHARDS_MAX 4096u
#define CACHE_BUCKETS_MIN 64u

struct cache_shard {
	alignas(64) pthread_mutex_t lock;
	struct cfs_chunk **buckets;  /* nbuckets chains, a power of two */
	size_t nbuckets;
	struct cfs_cache_link lru;   /* next: most recently used */
	uint64_t budget;             /* bytes this shard may keep */
	uint64_t bytes, entries;
	uint64_t hits, misses, inserts, evictions;
};

struct cfs_cache {
	struct cache_shard *shards;
	unsigned nshards;            /* a power of two */
	uint64_t max_bytes;
};

/* Two independent words of a uniformly random id. */
static uint64_t id_word(const struct cairn_id *id, unsigned i)
{
	uint64_t w;

	memcpy(&w, id->b + 8 * i, sizeof(w));
	return w;
}

static struct cache_shard *shard_of(struct cfs_cache *c, const struct cairn_id *id)
{
	return &c->shards[id_word(id, 1) & (c->nshards - 1)];
}

static struct cfs_chunk **bucket_of(struct cache_shard *s, const struct cairn_id *id)
{
	return &s->buckets[id_word(id, 0) & (s->nbuckets - 1)];
}

static struct cfs_chunk *chunk_of(struct cfs_cache_link *l)
{
	return (struct cfs_chunk *)((char *)l - offsetof(struct cfs_chunk, lru));
}

static void lru_unlink(struct cfs_cache_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
}

static void lru_push_front(struct cache_shard *s, struct cfs_cache_link *l)
{
	l->prev = &s->lru;
	l->next = s->lru.next;
	s->lru.next->prev = l;
	s->lru.next = l;
}

static void hash_add(struct cfs_chunk **head, struct cfs_chunk *ch)
{
	ch->hnext = *head;
	if (*head)
		(*head)->hpprev = &ch->hnext;
	ch->hpprev = head;
	*head = ch;
}

static void hash_del(struct cfs_chunk *ch)
{
	*ch->hpprev = ch->hnext;
	if (ch->hnext)
		ch->hnext->hpprev = ch->hpprev;
}

static struct cfs_chunk *shard_find(struct cache_shard *s, const struct cairn_id *id)
{
	for (struct cfs_chunk *ch = *bucket_of(s, id); ch; ch = ch->hnext) {
		if (cairn_id_eq(&ch->id, id))
			return ch;
	}
	return NULL;
}

/* Moves every chunk into buckets (n of them, zeroed); returns the old array. */
static struct cfs_chunk **shard_rehash(struct cache_shard *s, struct cfs_chunk **buckets,
				       size_t n)
{
	struct cfs_chunk **old = s->buckets;
	size_t oldn = s->nbuckets;

	s->buckets = buckets;
	s->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		struct cfs_chunk *ch = old[i];

		while (ch) {
			struct cfs_chunk *next = ch->hnext;

			hash_add(bucket_of(s, &ch->id), ch);
			ch = next;
		}
	}
	return old;
}

/*
 * Makes room in the hash table for one more chunk, keeping the load factor
 * at most one. Called and returns with s->lock held, but drops it around
 * the allocation: the caller must look the id up again afterwards. Returns
 * an array for the caller to free once it has dropped the lock, or NULL.
 * Failing to grow is not an error: the chains just get longer.
 */
static struct cfs_chunk **shard_grow(struct cache_shard *s)
{
	size_t n = s->nbuckets;
	struct cfs_chunk **buckets;

	pthread_mutex_unlock(&s->lock);
	buckets = calloc(2 * n, sizeof(*buckets));
	pthread_mutex_lock(&s->lock);
	if (!buckets)
		return NULL;
	if (s->nbuckets != n)
		return buckets; /* another thread grew it meanwhile */
	return shard_rehash(s, buckets, 2 * n);
}

/*
 * Takes chunks off the cold end of the LRU list while the shard is over
 * budget, and returns them chained through hnext: the caller drops the
 * table's reference to each once it has released the lock.
 */
static struct cfs_chunk *shard_evict(struct cache_shard *s)
{
	struct cfs_chunk *evicted = NULL;

	while (s->bytes > s->budget && s->lru.prev != &s->lru) {
		struct cfs_chunk *ch = chunk_of(s->lru.prev);

		lru_unlink(&ch->lru);
		hash_del(ch);
		s->bytes -= ch->len;
		s->entries--;
		s->evictions++;
		ch->hnext = evicted;
		evicted = ch;
	}
	return evicted;
}

static void chunk_ref(struct cfs_chunk *ch)
{
	/* The caller reaches ch through a reference already held (the table's). */
	atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
}

int cfs_cache_new(size_t max_bytes, unsigned shards, struct cfs_cache **out)
{
	struct cfs_cache *c;
	unsigned i;

	if (shards == 0)
		shards = CACHE_SHARDS_DEFAULT;
	if (shards > CACHE_SHARDS_MAX || (shards & (shards - 1)) != 0)
		return -EINVAL;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->nshards = shards;
	c->max_bytes = max_bytes;
	c->shards = aligned_alloc(alignof(struct cache_shard), shards * sizeof(*c->shards));
	if (!c->shards)
		goto fail;
	memset(c->shards, 0, shards * sizeof(*c->shards));
	for (i = 0; i < shards; i++) {
		struct cache_shard *s = &c->shards[i];

		s->buckets = calloc(CACHE_BUCKETS_MIN, sizeof(*s->buckets));
		if (!s->buckets)
			goto fail_shards;
		s->nbuckets = CACHE_BUCKETS_MIN;
		s->lru.prev = s->lru.next = &s->lru;
		s->budget = max_bytes / shards;
		pthread_mutex_init(&s->lock, NULL);
	}
	*out = c;
	return 0;

fail_shards:
	while (i-- > 0) {
		pthread_mutex_destroy(&c->shards[i].lock);
		free(c->shards[i].buckets);
	}
	free(c->shards);
fail:
	free(c);
	return -ENOMEM;
}

void cfs_cache_free(struct cfs_cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->nshards; i++) {
		struct cache_shard *s = &c->shards[i];
		struct cfs_cache_link *l = s->lru.next;

		while (l != &s->lru) {
			struct cfs_chunk *ch = chunk_of(l);

			l = l->next;
			cfs_chunk_unref(c, ch);
		}
		pthread_mutex_destroy(&s->lock);
		free(s->buckets);
	}
	free(c->shards);
	free(c);
}

struct cfs_chunk *cfs_cache_get(struct cfs_cache *c, const struct cairn_id *id)
{
	struct cache_shard *s = shard_of(c, id);
	struct cfs_chunk *ch;

	pthread_mutex_lock(&s->lock);
	ch = shard_find(s, id);
	if (ch) {
		chunk_ref(ch);
		lru_unlink(&ch->lru);
		lru_push_front(s, &ch->lru);
		s->hits++;
	} else {
		s->misses++;
	}
	pthread_mutex_unlock(&s->lock);
	return ch;
}

bool cfs_cache_contains(struct cfs_cache *c, const struct cairn_id *id)
{
	struct cache_shard *s = shard_of(c, id);
	bool found;

	pthread_mutex_lock(&s->lock);
	found = shard_find(s, id) != NULL;
	pthread_mutex_unlock(&s->lock);
	return found;
}

struct cfs_chunk *cfs_cache_insert(struct cfs_cache *c, const struct cairn_id *id,
				   uint8_t *data, uint32_t len)
{
	struct cache_shard *s = shard_of(c, id);
	struct cfs_chunk **old_buckets = NULL;
	struct cfs_chunk *ch, *existing, *evicted;
	bool grown = false;

	ch = calloc(1, sizeof(*ch));
	if (!ch) {
		free(data);
		return NULL;
	}
	ch->id = *id;
	ch->len = len;
	ch->data = data;

	pthread_mutex_lock(&s->lock);
	if (len > s->budget) {
		/* Never kept: the caller's reference is the only one. */
		s->inserts++;
		s->evictions++;
		pthread_mutex_unlock(&s->lock);
		atomic_init(&ch->refs, 1);
		return ch;
	}
	for (;;) {
		existing = shard_find(s, id);
		if (existing) {
			chunk_ref(existing);
			pthread_mutex_unlock(&s->lock);
			free(old_buckets);
			free(data);
			free(ch);
			return existing;
		}
		if (grown || s->entries < s->nbuckets)
			break;
		old_buckets = shard_grow(s);
		grown = true;
	}

	/* One reference for the table, one for the caller. */
	atomic_init(&ch->refs, 2);
	hash_add(bucket_of(s, id), ch);
	lru_push_front(s, &ch->lru);
	s->bytes += len;
	s->entries++;
	s->inserts++;
	/* ch is the most recent and fits: eviction stops before reaching it. */
	evicted = shard_evict(s);
	pthread_mutex_unlock(&s->lock);

	free(old_buckets);
	while (evicted) {
		struct cfs_chunk *next = evicted->hnext;

		cfs_chunk_unref(c, evicted);
		evicted = next;
	}
	return ch;
}

void cfs_chunk_unref(struct cfs_cache *c, struct cfs_chunk *ch)
{
	unsigned old;

	(void)c;
	if (!ch)
		return;
	/*
	 * acq_rel: every holder's reads of the chunk happen before the free
	 * by whoever drops the last reference.
	 */
	old = atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel);
	if (old == 0) {
		fprintf(stderr, "cairn: chunk reference count underflow\n");
		abort();
	}
	if (old > 1)
		return;
	free(ch->data);
	free(ch);
}

void cfs_cache_stats(struct cfs_cache *c, struct cfs_cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->max_bytes = c->max_bytes;
	for (unsigned i = 0; i < c->nshards; i++) {
		struct cache_shard *s = &c->shards[i];

		pthread_mutex_lock(&s->lock);
		out->hits += s->hits;
		out->misses += s->misses;
		out->inserts += s->inserts;
		out->evictions += s->evictions;
		out->bytes += s->bytes;
		out->entries += s->entries;
		pthread_mutex_unlock(&s->lock);
	}
}
