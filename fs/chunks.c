/* SPDX-License-Identifier: MIT */
/*
 * chunks.c - the daemon's one decode path: chunk bytes for every mount's
 * reads, through the store's chunk source (store/source.h), decoded once
 * into the daemon's one cache.
 *
 * The idea: a chunk wanted by many readers at once (ten containers
 * starting from one platform) is decoded, or fetched, once. The first
 * reader claims it in the daemon's table of chunks being decoded; the
 * others wait for it there and then find it in the cache.
 */
#include "fs-internal.h"
#include "source.h"

/*
 * Reads a chunk through the store's chunk source (source.h: verified
 * against its id there) into a new buffer and caches it.
 */
static struct cfs_chunk *chunk_decode(struct cfs *fs, struct cfs_thread *t,
				      const struct cairn_id *id, int *err)
{
	struct cairn_chunk_info info;
	struct cfs_chunk *ch;
	uint8_t *data;
	long n;
	int ret;

	ret = cairn_chunks_stat(t->txn, id, &info);
	if (ret) {
		char hex[CAIRN_ID_HEX_LEN + 1];

		cairn_id_hex(id, hex);
		cfs_log(fs, LOG_ERR, "chunk %s: %s", hex,
			ret == -ENOENT ? "missing from the store" : cairn_errmsg());
		*err = -EIO;
		atomic_fetch_add(&fs->eio, 1);
		return NULL;
	}
	data = malloc(info.raw_len);
	if (!data) {
		*err = -ENOMEM;
		return NULL;
	}
	n = cairn_chunks_read(t->txn, &t->z, id, 0, data, info.raw_len);
	if (n < 0) {
		cfs_log(fs, LOG_ERR, "%s", cairn_errmsg());
		free(data);
		*err = n == -ENOMEM ? -ENOMEM : -EIO;
		atomic_fetch_add(&fs->eio, 1);
		return NULL;
	}
	ch = cfs_cache_insert(fs->d->cache, id, data, (uint32_t)n);
	if (!ch)
		*err = -ENOMEM;
	return ch;
}

/* Claims id for decoding; false when another thread decodes it (after waiting for it). */
static bool decode_claim(struct cfs_daemon *d, const struct cairn_id *id)
{
	bool waited = false;

	pthread_mutex_lock(&d->decoding_lock);
	for (;;) {
		unsigned i;

		for (i = 0; i < d->ndecoding; i++)
			if (cairn_id_eq(&d->decoding[i], id))
				break;
		if (i == d->ndecoding)
			break;
		pthread_cond_wait(&d->decoded, &d->decoding_lock);
		waited = true;
	}
	if (waited || d->ndecoding == ARRAY_SIZE(d->decoding)) {
		/* it was decoded meanwhile (or the table is full): decode without a claim */
		pthread_mutex_unlock(&d->decoding_lock);
		return false;
	}
	d->decoding[d->ndecoding++] = *id;
	pthread_mutex_unlock(&d->decoding_lock);
	return true;
}

static void decode_release(struct cfs_daemon *d, const struct cairn_id *id)
{
	pthread_mutex_lock(&d->decoding_lock);
	for (unsigned i = 0; i < d->ndecoding; i++) {
		if (cairn_id_eq(&d->decoding[i], id)) {
			d->decoding[i] = d->decoding[--d->ndecoding];
			break;
		}
	}
	pthread_cond_broadcast(&d->decoded);
	pthread_mutex_unlock(&d->decoding_lock);
}

struct cfs_chunk *cfs_chunk_get(struct cfs *fs, struct cfs_thread *t, const struct cairn_id *id,
				bool ahead, int *err)
{
	struct cfs_daemon *d = fs->d;
	struct cfs_chunk *ch = ahead ? NULL : cfs_cache_get(d->cache, id);
	bool claimed;

	if (ch)
		return ch;
	claimed = decode_claim(d, id);
	if (!claimed) {
		ch = cfs_cache_get(d->cache, id);
		if (ch)
			return ch;
	}
	ch = chunk_decode(fs, t, id, err);
	if (claimed)
		decode_release(d, id);
	return ch;
}
