/* SPDX-License-Identifier: MIT */
/*
 * lazy.c - lazy records and the lazy chunk source (lazy.h).
 *
 * The one idea: a table of flights, one per chunk being fetched or
 * fetched and not yet kept, is where readers meet. The first reader (or a
 * prefetch) makes the flight and asks the fetcher; every reader of that
 * chunk waits on the flight, bounded by the remote's timeout; the
 * fetcher's answer is verified once, outside the lock, and then every
 * waiter decodes the same verified entry. Verified entries stay in the
 * table, served from memory, until the keeper thread has committed them to
 * local packs; from then on the local source below answers.
 *
 * Locks: ls->lock protects the table, the keeper's queue, the figures and
 * every flight's fields but id (fixed) and entry (written once, before the
 * flight turns DONE under the lock, read-only after). A flight lives while
 * refs > 0: one for the table, one for each reader using it, one for the
 * keeper's queue. Lock order: ls->lock, then nothing (the fetcher is
 * called without it).
 */
#include "lazy.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "chunk.h"
#include "gc.h"
#include "source.h"
#include "store-internal.h"
#include "writer.h"

#define NBUCKETS 4096u
#define KEEP_IDLE_MS 200       /* a batch ends after this long with nothing new */
#define KEEP_BATCH (32u << 20) /* or at this many bytes */
#define WAIT_SLACK_MS 1000     /* past the fetcher's own bound, before a reader gives up */
/*
 * A failed fetch answers the reads of its chunk that come this soon after
 * it with its error, without asking again: the kernel re-reads a page its
 * read-ahead could not fill, and each reader would otherwise wait the
 * whole bound once more. Later reads ask the remote again.
 */
#define FAIL_HOLD_MS 1000

/* --- records -------------------------------------------------------------- */

int cairn_lazy_encode(const struct cairn_lazy *l, struct cairn_buf *out)
{
	struct cairn_lazy_disk d = { .version = CAIRN_FORMAT_VERSION };
	size_t n = strnlen(l->remote, sizeof(l->remote));
	int ret;

	if (n == 0 || n > CAIRN_LAZY_NAME_MAX)
		return -EINVAL;
	d.name_len = (uint8_t)n;
	CAIRN_SET(d.raw_len, l->raw_len);
	CAIRN_SET(d.len, l->len);
	CAIRN_SET(d.offset, l->offset);
	memcpy(d.pack, l->pack.b, CAIRN_ID_LEN);
	ret = cairn_buf_append(out, &d, sizeof(d));
	return ret ? ret : cairn_buf_append(out, l->remote, n);
}

int cairn_lazy_parse(const struct cairn_id *id, const void *val, size_t vlen,
		     struct cairn_lazy *out)
{
	struct cairn_lazy_disk d;

	memset(out, 0, sizeof(*out));
	out->id = *id;
	if (vlen < sizeof(d))
		return -EUCLEAN;
	memcpy(&d, val, sizeof(d));
	if (d.version != CAIRN_FORMAT_VERSION || d.name_len == 0 ||
	    vlen != sizeof(d) + d.name_len)
		return -EUCLEAN;
	out->raw_len = CAIRN_GET(d.raw_len);
	out->len = CAIRN_GET(d.len);
	out->offset = CAIRN_GET(d.offset);
	memcpy(out->pack.b, d.pack, CAIRN_ID_LEN);
	memcpy(out->remote, (const uint8_t *)val + sizeof(d), d.name_len);
	out->remote[d.name_len] = '\0';
	if (out->raw_len == 0 || out->raw_len > CAIRN_CHUNK_MAX_LIMIT ||
	    out->len <= sizeof(struct cairn_pack_entry) || memchr(out->remote, '\0', d.name_len))
		return -EUCLEAN;
	return 0;
}

int cairn_lazy_get(struct cairn_txn *t, const struct cairn_id *id, struct cairn_lazy *out)
{
	const void *v;
	size_t vl;
	int ret = cairn_get(t, CAIRN_DBI_LAZY, id->b, CAIRN_ID_LEN, &v, &vl);

	if (ret)
		return ret;
	if (cairn_lazy_parse(id, v, vl, out)) {
		char hex[CAIRN_ID_HEX_LEN + 1];

		cairn_id_hex(id, hex);
		return cairn_err(-EUCLEAN, "chunk %s: its lazy record is damaged", hex);
	}
	return 0;
}

int cairn_lazy_count(struct cairn_txn *t, uint64_t *n)
{
	return cairn_db_count(t, CAIRN_DBI_LAZY, n);
}

struct each_ctx {
	int (*fn)(const struct cairn_lazy *l, bool ok, void *arg);
	void *arg;
};

static int each_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct each_ctx *c = arg;
	struct cairn_lazy l;
	struct cairn_id id = { { 0 } };

	memcpy(id.b, k, kl < CAIRN_ID_LEN ? kl : CAIRN_ID_LEN);
	if (kl != CAIRN_ID_LEN) {
		memset(&l, 0, sizeof(l));
		l.id = id;
		return c->fn(&l, false, c->arg);
	}
	return c->fn(&l, cairn_lazy_parse(&id, v, vl, &l) == 0, c->arg);
}

int cairn_lazy_each(struct cairn_txn *t,
		    int (*fn)(const struct cairn_lazy *l, bool ok, void *arg), void *arg)
{
	struct each_ctx c = { .fn = fn, .arg = arg };

	return cairn_table_each(t, CAIRN_DBI_LAZY, each_one, &c);
}

/* --- the source ------------------------------------------------------------ */

enum flight_state {
	FLIGHT_FETCHING,
	FLIGHT_DONE,
	FLIGHT_FAILED,
};

struct flight {
	struct cairn_id id;
	struct flight *next;      /* hash chain */
	struct flight *keep_next; /* the keeper's queue */
	enum flight_state state;
	unsigned refs;
	bool in_table;
	bool ahead;               /* started by a prefetch, not read yet */
	uint32_t raw_len;         /* the record's */
	char remote[CAIRN_LAZY_NAME_MAX + 1];
	char *msg;                /* FAILED: why */
	int64_t failed_ns;        /* FAILED: when (CLOCK_MONOTONIC) */
	uint8_t *entry;           /* DONE: a local pack entry, verified */
	size_t elen;
};

/* A decoder for verifying answers, lent to one fetcher thread at a time. */
struct verifier {
	struct verifier *next;
	struct cairn_zctx z;
	uint8_t *buf; /* CAIRN_CHUNK_MAX_LIMIT bytes */
};

struct cairn_lazy_source {
	struct cairn_chunk_source src; /* first: the store's handle on it */
	struct cairn_store *s;
	struct cairn_lazy_fetcher *f;  /* NULL: nothing fetches (-ENODATA) */

	pthread_mutex_t lock;
	pthread_cond_t changed;        /* a flight finished, or the keeper kept a batch */
	pthread_cond_t keep_wake;      /* the keeper has work, or must stop */
	struct flight *buckets[NBUCKETS];
	size_t mem;                    /* entry bytes of DONE flights still held */
	struct flight *keep_head, **keep_tail;
	size_t keeping;                /* flights queued or in the keeper's hands */
	bool keeper_on, stopping;
	bool detaching;                /* the fetcher is being freed: the keeper no longer logs through it */
	pthread_t keeper;
	struct verifier *verifiers;
	struct cairn_lazy_stats st;
};

static struct cairn_lazy_source *lazy_of(struct cairn_chunk_source *src)
{
	return (struct cairn_lazy_source *)src;
}

static size_t bucket_of(const struct cairn_id *id)
{
	uint64_t h;

	memcpy(&h, id->b + 8, sizeof(h));
	return (size_t)(h % NBUCKETS);
}

/* The flight of id in the table, or NULL (lock held). */
static struct flight *table_find(struct cairn_lazy_source *ls, const struct cairn_id *id)
{
	for (struct flight *fl = ls->buckets[bucket_of(id)]; fl; fl = fl->next)
		if (cairn_id_eq(&fl->id, id))
			return fl;
	return NULL;
}

static void flight_free(struct flight *fl)
{
	free(fl->msg);
	free(fl->entry);
	free(fl);
}

/* Drops one reference (lock held); the last one frees the flight. */
static void flight_put(struct cairn_lazy_source *ls, struct flight *fl)
{
	if (--fl->refs)
		return;
	if (fl->entry)
		ls->mem -= fl->elen;
	flight_free(fl);
}

/* Unlinks fl from the table, keeping the table's reference for the caller (lock held). */
static bool table_unlink(struct cairn_lazy_source *ls, struct flight *fl)
{
	struct flight **pp = &ls->buckets[bucket_of(&fl->id)];

	if (!fl->in_table)
		return false;
	for (; *pp; pp = &(*pp)->next) {
		if (*pp == fl) {
			*pp = fl->next;
			break;
		}
	}
	fl->in_table = false;
	return true;
}

/* Takes fl out of the table (lock held): later readers start afresh. */
static void table_remove(struct cairn_lazy_source *ls, struct flight *fl)
{
	if (table_unlink(ls, fl))
		flight_put(ls, fl);
}

/* A new FETCHING flight in the table, with one reference for the table (lock held). */
static struct flight *table_add(struct cairn_lazy_source *ls, const struct cairn_lazy *rec)
{
	struct flight *fl = calloc(1, sizeof(*fl));
	size_t b;

	if (!fl)
		return NULL;
	fl->id = rec->id;
	fl->state = FLIGHT_FETCHING;
	fl->refs = 1;
	fl->in_table = true;
	fl->raw_len = rec->raw_len;
	snprintf(fl->remote, sizeof(fl->remote), "%s", rec->remote);
	b = bucket_of(&rec->id);
	fl->next = ls->buckets[b];
	ls->buckets[b] = fl;
	return fl;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * The flight of id a reader may use (lock held): NULL when there is none,
 * or when it failed longer than FAIL_HOLD_MS ago (then it leaves the table:
 * the next fetch starts afresh).
 */
static struct flight *table_live(struct cairn_lazy_source *ls, const struct cairn_id *id)
{
	struct flight *fl = table_find(ls, id);

	if (fl && fl->state == FLIGHT_FAILED &&
	    mono_ns() - fl->failed_ns > (int64_t)FAIL_HOLD_MS * 1000000) {
		table_remove(ls, fl);
		fl = NULL;
	}
	return fl;
}

static struct timespec deadline_at(int64_t ns)
{
	return (struct timespec){ .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
}

static long flight_decode(struct flight *fl, struct cairn_zctx *z, unsigned flags, void *out,
			  size_t cap)
{
	return cairn_chunk_decode_entry(z, &fl->id, !(flags & CAIRN_READ_UNVERIFIED), fl->entry,
					fl->elen, out, cap);
}

/* Fetches the chunk of rec and waits for it (bounded); its bytes into out. */
static long fetch_wait(struct cairn_lazy_source *ls, const struct cairn_lazy *rec,
		       struct cairn_zctx *z, unsigned flags, void *out, size_t cap)
{
	char hex[CAIRN_ID_HEX_LEN + 1];
	unsigned timeout = ls->f->ops->timeout_ms(ls->f, rec->remote);
	int64_t deadline = mono_ns() + ((int64_t)timeout + WAIT_SLACK_MS) * 1000000;
	struct timespec until = deadline_at(deadline);
	struct flight *fl;
	bool start = false;
	long n;

	cairn_id_hex(&rec->id, hex);
	pthread_mutex_lock(&ls->lock);
	fl = table_live(ls, &rec->id);
	if (!fl) {
		fl = table_add(ls, rec);
		if (!fl) {
			pthread_mutex_unlock(&ls->lock);
			return -ENOMEM;
		}
		start = true;
	} else if (fl->state == FLIGHT_FETCHING) {
		ls->st.waits++;
	}
	fl->refs++;
	fl->ahead = false;
	pthread_mutex_unlock(&ls->lock);
	if (start)
		ls->f->ops->start(ls->f, rec, 1);
	pthread_mutex_lock(&ls->lock);
	while (fl->state == FLIGHT_FETCHING) {
		if (pthread_cond_timedwait(&ls->changed, &ls->lock, &until) == ETIMEDOUT &&
		    fl->state == FLIGHT_FETCHING)
			break;
	}
	if (fl->state == FLIGHT_FETCHING) {
		flight_put(ls, fl);
		pthread_mutex_unlock(&ls->lock);
		return cairn_err(-EIO, "chunk %s: remote '%s' did not answer within %u ms", hex,
				 rec->remote, timeout);
	}
	if (fl->state == FLIGHT_FAILED) {
		n = cairn_err(-EIO, "chunk %s: %s", hex, fl->msg ? fl->msg : "cannot be fetched");
		flight_put(ls, fl);
		pthread_mutex_unlock(&ls->lock);
		return n;
	}
	pthread_mutex_unlock(&ls->lock);
	/* DONE: entry is fixed from now on and ours while we hold a reference */
	n = flight_decode(fl, z, flags, out, cap);
	pthread_mutex_lock(&ls->lock);
	flight_put(ls, fl);
	pthread_mutex_unlock(&ls->lock);
	return n;
}

/* A DONE flight of id, with a reference taken, or NULL. */
static struct flight *held_get(struct cairn_lazy_source *ls, const struct cairn_id *id)
{
	struct flight *fl;

	pthread_mutex_lock(&ls->lock);
	fl = table_find(ls, id);
	if (fl && fl->state == FLIGHT_DONE) {
		fl->refs++;
		fl->ahead = false;
	} else {
		fl = NULL;
	}
	pthread_mutex_unlock(&ls->lock);
	return fl;
}

static void held_put(struct cairn_lazy_source *ls, struct flight *fl)
{
	pthread_mutex_lock(&ls->lock);
	flight_put(ls, fl);
	pthread_mutex_unlock(&ls->lock);
}

static int lazy_stat(struct cairn_chunk_source *src, struct cairn_txn *t,
		     const struct cairn_id *id, struct cairn_chunk_info *out)
{
	struct cairn_lazy rec;
	int ret = src->below->ops->stat(src->below, t, id, out);

	if (ret != -ENOENT)
		return ret;
	ret = cairn_lazy_get(t, id, &rec);
	if (ret)
		return ret; /* -ENOENT: no such chunk, as below */
	*out = (struct cairn_chunk_info){
		.raw_len = rec.raw_len,
		.flags = CAIRN_CHUNK_UNTRUSTED,
		.where = CAIRN_CHUNK_REMOTE,
	};
	return 0;
}

static long lazy_read(struct cairn_chunk_source *src, struct cairn_txn *t, struct cairn_zctx *z,
		      const struct cairn_id *id, unsigned flags, void *out, size_t cap)
{
	struct cairn_lazy_source *ls = lazy_of(src);
	char hex[CAIRN_ID_HEX_LEN + 1];
	struct cairn_lazy rec;
	struct flight *fl;
	long n = src->below->ops->read(src->below, t, z, id, flags, out, cap);
	int ret;

	if (n != -ENOENT)
		return n;
	if (!(flags & CAIRN_READ_LOCAL) && (fl = held_get(ls, id))) {
		n = flight_decode(fl, z, flags, out, cap);
		held_put(ls, fl);
		return n;
	}
	ret = cairn_lazy_get(t, id, &rec);
	if (ret == -ENOENT)
		return ret; /* no such chunk */
	if (ret)
		return -EIO; /* the message says which record */
	cairn_id_hex(id, hex);
	if (flags & CAIRN_READ_LOCAL)
		return cairn_err(-ENODATA, "chunk %s is not fetched yet (lazy, from remote '%s')",
				 hex, rec.remote);
	if (!ls->f)
		return cairn_err(-ENODATA, "chunk %s is not fetched yet (a lazy pull from remote "
					   "'%s'): 'cairn pull %s IMAGE' fetches the rest", hex,
				 rec.remote, rec.remote);
	if (rec.raw_len > cap)
		return -ENOBUFS;
	return fetch_wait(ls, &rec, z, flags, out, cap);
}

static int lazy_entry(struct cairn_chunk_source *src, struct cairn_txn *t,
		      const struct cairn_id *id, const void **entry, size_t *len)
{
	struct cairn_lazy rec;
	int ret = src->below->ops->entry(src->below, t, id, entry, len);

	if (ret != -ENOENT)
		return ret;
	ret = cairn_lazy_get(t, id, &rec);
	if (ret == -ENOENT)
		return ret;
	if (ret)
		return -EIO;
	{
		char hex[CAIRN_ID_HEX_LEN + 1];

		cairn_id_hex(id, hex);
		return cairn_err(-ENODATA, "chunk %s is not fetched yet (lazy, from remote '%s')",
				 hex, rec.remote);
	}
}

static int rec_cmp(const void *a, const void *b)
{
	const struct cairn_lazy *x = a, *y = b;
	int c = strcmp(x->remote, y->remote);

	if (c)
		return c;
	c = memcmp(x->pack.b, y->pack.b, CAIRN_ID_LEN);
	if (c)
		return c;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static void lazy_prefetch(struct cairn_chunk_source *src, struct cairn_txn *t,
			  const struct cairn_id *ids, size_t n)
{
	struct cairn_lazy_source *ls = lazy_of(src);
	struct cairn_lazy *recs;
	size_t nrec = 0;

	if (!ls->f || n == 0)
		return;
	recs = calloc(n, sizeof(*recs));
	if (!recs)
		return;
	for (size_t i = 0; i < n; i++) {
		struct cairn_chunk_info info;
		bool known;

		if (src->below->ops->stat(src->below, t, &ids[i], &info) == 0)
			continue; /* local */
		pthread_mutex_lock(&ls->lock);
		known = table_live(ls, &ids[i]) != NULL || ls->mem > CAIRN_LAZY_MEM / 2;
		pthread_mutex_unlock(&ls->lock);
		if (known || cairn_lazy_get(t, &ids[i], &recs[nrec]))
			continue;
		pthread_mutex_lock(&ls->lock);
		if (!table_live(ls, &ids[i])) {
			struct flight *fl = table_add(ls, &recs[nrec]);

			if (fl) {
				fl->ahead = true;
				nrec++;
			}
		}
		pthread_mutex_unlock(&ls->lock);
	}
	cairn_err_clear();
	if (nrec > 1)
		qsort(recs, nrec, sizeof(*recs), rec_cmp);
	for (size_t i = 0; i < nrec;) {
		size_t j = i + 1;

		while (j < nrec && strcmp(recs[j].remote, recs[i].remote) == 0)
			j++;
		ls->f->ops->start(ls->f, recs + i, j - i);
		i = j;
	}
	free(recs);
}

/* --- answers ---------------------------------------------------------------- */

static struct verifier *verifier_take(struct cairn_lazy_source *ls)
{
	struct verifier *v;

	pthread_mutex_lock(&ls->lock);
	v = ls->verifiers;
	if (v)
		ls->verifiers = v->next;
	pthread_mutex_unlock(&ls->lock);
	if (v)
		return v;
	v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->buf = malloc(CAIRN_CHUNK_MAX_LIMIT);
	if (!v->buf) {
		free(v);
		return NULL;
	}
	return v;
}

static void verifier_give(struct cairn_lazy_source *ls, struct verifier *v)
{
	pthread_mutex_lock(&ls->lock);
	v->next = ls->verifiers;
	ls->verifiers = v;
	pthread_mutex_unlock(&ls->lock);
}

/* The answer as a local pack entry, decoded and hashed against id: 0, or -EIO/-ENOMEM. */
static int answer_entry(struct cairn_lazy_source *ls, const struct cairn_id *id, uint8_t codec,
			uint32_t raw_len, uint32_t want_len, const void *payload, size_t len,
			uint8_t **entry, size_t *elen)
{
	struct cairn_pack_entry pe = { .version = CAIRN_FORMAT_VERSION, .codec = codec,
				       .flags = CAIRN_CHUNK_UNTRUSTED };
	struct verifier *v;
	uint8_t *e;
	long n;

	if ((codec != CAIRN_CODEC_RAW && codec != CAIRN_CODEC_ZSTD) || raw_len != want_len ||
	    raw_len == 0 || raw_len > CAIRN_CHUNK_MAX_LIMIT || len > UINT32_MAX - sizeof(pe))
		return -EIO;
	e = malloc(sizeof(pe) + len);
	v = verifier_take(ls);
	if (!e || !v) {
		free(e);
		if (v)
			verifier_give(ls, v);
		return -ENOMEM;
	}
	CAIRN_SET(pe.raw_len, raw_len);
	CAIRN_SET(pe.len, len);
	memcpy(pe.id, id->b, CAIRN_ID_LEN);
	memcpy(e, &pe, sizeof(pe));
	memcpy(e + sizeof(pe), payload, len);
	n = cairn_chunk_decode_entry(&v->z, id, true, e, sizeof(pe) + len, v->buf,
				     CAIRN_CHUNK_MAX_LIMIT);
	verifier_give(ls, v);
	if (n < 0 || (uint32_t)n != raw_len) {
		cairn_err_clear();
		free(e);
		return n == -ENOMEM ? -ENOMEM : -EIO;
	}
	*entry = e;
	*elen = sizeof(pe) + len;
	return 0;
}

void cairn_lazy_done(struct cairn_lazy_fetcher *f, const struct cairn_id *id, int err,
		     const char *msg, uint8_t codec, uint32_t raw_len, const void *payload,
		     size_t len)
{
	struct cairn_lazy_source *ls = f->src;
	char why[512] = "";
	uint8_t *entry = NULL;
	size_t elen = 0;
	uint32_t want = 0;
	struct flight *fl;

	pthread_mutex_lock(&ls->lock);
	fl = table_find(ls, id);
	if (fl && fl->state == FLIGHT_FETCHING)
		want = fl->raw_len;
	pthread_mutex_unlock(&ls->lock);
	if (!want)
		return; /* nobody asked (or a second answer) */
	if (!err) {
		err = answer_entry(ls, id, codec, raw_len, want, payload, len, &entry, &elen);
		if (err == -EIO)
			msg = "it does not match its id (damaged, truncated or substituted)";
	}
	if (err)
		snprintf(why, sizeof(why), "%s", msg && *msg ? msg : "cannot be fetched");

	pthread_mutex_lock(&ls->lock);
	fl = table_find(ls, id);
	if (!fl || fl->state != FLIGHT_FETCHING) {
		pthread_mutex_unlock(&ls->lock);
		free(entry);
		return;
	}
	if (err) {
		fl->state = FLIGHT_FAILED;
		fl->failed_ns = mono_ns();
		if (asprintf(&fl->msg, "from remote '%s': %s", fl->remote, why) < 0)
			fl->msg = NULL;
		ls->st.failures++;
		/* stays FAIL_HOLD_MS for the reads right behind; then the next read tries again */
	} else {
		fl->entry = entry;
		fl->elen = elen;
		fl->state = FLIGHT_DONE;
		ls->mem += elen;
		ls->st.fetches++;
		ls->st.fetch_bytes += len;
		if (fl->ahead)
			ls->st.prefetches++;
		if (ls->keeper_on && ls->mem <= CAIRN_LAZY_MEM) {
			fl->refs++; /* the keeper's */
			fl->keep_next = NULL;
			*ls->keep_tail = fl;
			ls->keep_tail = &fl->keep_next;
			ls->keeping++;
			pthread_cond_signal(&ls->keep_wake);
		} else {
			ls->st.dropped++;
			table_remove(ls, fl); /* served to whoever waits, then gone */
		}
	}
	pthread_cond_broadcast(&ls->changed);
	pthread_mutex_unlock(&ls->lock);
}

/* --- the keeper ------------------------------------------------------------- */

/* Takes the queue (lock held). */
static struct flight *keep_take(struct cairn_lazy_source *ls)
{
	struct flight *list = ls->keep_head;

	ls->keep_head = NULL;
	ls->keep_tail = &ls->keep_head;
	return list;
}

/* The flights of a committed (or failed) batch leave the table (lock held). */
static void keep_release(struct cairn_lazy_source *ls, struct flight *list, bool kept)
{
	while (list) {
		struct flight *next = list->keep_next;

		if (kept)
			ls->st.kept++;
		else
			ls->st.dropped++;
		ls->keeping--;
		if (table_unlink(ls, list))
			list->refs--; /* the table's; the keeper's goes below */
		flight_put(ls, list);
		list = next;
	}
}

/* One batch: from the first queued entry until the queue stays empty a moment. */
static void keep_batch(struct cairn_lazy_source *ls)
{
	struct cairn_writer *w = NULL;
	struct flight *done = NULL, **done_tail = &done;
	size_t bytes = 0;
	int lock, ret;

	lock = cairn_gc_lock(ls->s, false); /* waits while gc runs: only this thread */
	ret = lock < 0 ? lock : cairn_writer_new(ls->s, CAIRN_WRITER_UNTRUSTED, &w);
	pthread_mutex_lock(&ls->lock);
	for (;;) {
		struct flight *list = keep_take(ls);

		if (!list) {
			struct timespec until = deadline_at(mono_ns() + KEEP_IDLE_MS * 1000000ll);

			if (ls->stopping || bytes >= KEEP_BATCH)
				break;
			pthread_cond_timedwait(&ls->keep_wake, &ls->lock, &until);
			if (!ls->keep_head)
				break;
			continue;
		}
		pthread_mutex_unlock(&ls->lock);
		for (struct flight *fl = list; fl; fl = fl->keep_next) {
			if (!ret)
				ret = cairn_writer_put_entry(w, &fl->id, fl->entry, fl->elen);
			bytes += fl->elen;
		}
		*done_tail = list;
		while (*done_tail)
			done_tail = &(*done_tail)->keep_next;
		pthread_mutex_lock(&ls->lock);
	}
	pthread_mutex_unlock(&ls->lock);
	if (!ret)
		ret = cairn_writer_flush(w);
	cairn_writer_free(w);
	if (lock >= 0)
		close(lock);
	pthread_mutex_lock(&ls->lock);
	/* under the lock: lazy_free() may be freeing the fetcher (detaching) */
	if (ret && ls->f && !ls->detaching && ls->f->ops->log) {
		char msg[1024];

		/* served all the same; fetched and kept again on a later read */
		snprintf(msg, sizeof(msg), "cannot keep fetched chunks in the store: %s",
			 cairn_errmsg());
		ls->f->ops->log(ls->f, msg);
	}
	keep_release(ls, done, ret == 0);
	pthread_cond_broadcast(&ls->changed);
	pthread_mutex_unlock(&ls->lock);
}

static void *keeper_main(void *arg)
{
	struct cairn_lazy_source *ls = arg;

	pthread_mutex_lock(&ls->lock);
	for (;;) {
		while (!ls->keep_head && !ls->stopping)
			pthread_cond_wait(&ls->keep_wake, &ls->lock);
		if (!ls->keep_head)
			break;
		pthread_mutex_unlock(&ls->lock);
		keep_batch(ls);
		pthread_mutex_lock(&ls->lock);
	}
	pthread_mutex_unlock(&ls->lock);
	return NULL;
}

int cairn_lazy_sync(struct cairn_store *s, int timeout_ms)
{
	struct cairn_lazy_source *ls = cairn_store_lazy(s);
	struct timespec until = deadline_at(mono_ns() + (int64_t)timeout_ms * 1000000);
	int ret = 0;

	pthread_mutex_lock(&ls->lock);
	while (ls->keeping && ret == 0) {
		pthread_cond_signal(&ls->keep_wake);
		if (pthread_cond_timedwait(&ls->changed, &ls->lock, &until) == ETIMEDOUT &&
		    ls->keeping)
			ret = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&ls->lock);
	return ret;
}

void cairn_lazy_stats(struct cairn_store *s, struct cairn_lazy_stats *out)
{
	struct cairn_lazy_source *ls = cairn_store_lazy(s);

	pthread_mutex_lock(&ls->lock);
	*out = ls->st;
	pthread_mutex_unlock(&ls->lock);
}

int cairn_lazy_attach(struct cairn_store *s, struct cairn_lazy_fetcher *f)
{
	struct cairn_lazy_source *ls = cairn_store_lazy(s);

	if (ls->f)
		return -EBUSY;
	f->src = ls;
	ls->f = f;
	if (!cairn_store_rdonly(s)) {
		if (pthread_create(&ls->keeper, NULL, keeper_main, ls) == 0)
			ls->keeper_on = true;
	}
	return 0;
}

static void lazy_free(struct cairn_chunk_source *src)
{
	struct cairn_lazy_source *ls = lazy_of(src);

	/* the fetcher answers everything still running before it returns */
	pthread_mutex_lock(&ls->lock);
	ls->detaching = true;
	pthread_mutex_unlock(&ls->lock);
	if (ls->f)
		ls->f->ops->free(ls->f);
	pthread_mutex_lock(&ls->lock);
	ls->f = NULL;
	pthread_mutex_unlock(&ls->lock);
	pthread_mutex_lock(&ls->lock);
	ls->stopping = true;
	pthread_cond_broadcast(&ls->keep_wake);
	pthread_mutex_unlock(&ls->lock);
	if (ls->keeper_on)
		pthread_join(ls->keeper, NULL);
	for (size_t b = 0; b < NBUCKETS; b++) {
		while (ls->buckets[b]) {
			struct flight *fl = ls->buckets[b];

			ls->buckets[b] = fl->next;
			flight_free(fl);
		}
	}
	while (ls->verifiers) {
		struct verifier *v = ls->verifiers;

		ls->verifiers = v->next;
		cairn_zctx_release(&v->z);
		free(v->buf);
		free(v);
	}
	pthread_cond_destroy(&ls->changed);
	pthread_cond_destroy(&ls->keep_wake);
	pthread_mutex_destroy(&ls->lock);
	free(ls);
}

static const struct cairn_chunk_source_ops lazy_ops = {
	.stat = lazy_stat,
	.read = lazy_read,
	.entry = lazy_entry,
	.prefetch = lazy_prefetch,
	.free = lazy_free,
};

struct cairn_chunk_source *cairn_chunks_lazy_new(struct cairn_store *s)
{
	struct cairn_lazy_source *ls = calloc(1, sizeof(*ls));

	if (!ls)
		return NULL;
	ls->src.ops = &lazy_ops;
	ls->src.name = "lazy";
	ls->s = s;
	pthread_mutex_init(&ls->lock, NULL);
	{
		pthread_condattr_t a;

		/* deadlines are CLOCK_MONOTONIC: a clock step never stretches a wait */
		pthread_condattr_init(&a);
		pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
		pthread_cond_init(&ls->changed, &a);
		pthread_cond_init(&ls->keep_wake, &a);
		pthread_condattr_destroy(&a);
	}
	ls->keep_tail = &ls->keep_head;
	return &ls->src;
}
