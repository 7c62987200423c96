/* SPDX-License-Identifier: MIT */
/*
 * platform.c - platform pointers and their history.
 */
#include "platform.h"

#include <stdio.h>

#include "image.h"
#include "store-internal.h"

int cairn_platform_check(const char *name)
{
	return cairn_tag_check(name);
}

static size_t history_key(const char *name, uint64_t gen, uint8_t *key)
{
	size_t n = strlen(name);
	uint64_t be = htobe64(gen);

	memcpy(key, name, n);
	key[n] = '\0';
	memcpy(key + n + 1, &be, sizeof(be));
	return n + 1 + sizeof(be);
}

int cairn_platform_get(struct cairn_txn *t, const char *name, struct cairn_platform *p)
{
	struct cairn_platform_disk d;
	const void *v;
	size_t vl;
	int ret;

	if (cairn_platform_check(name))
		return -ENOENT;
	ret = cairn_get(t, CAIRN_DBI_PLATFORMS, name, strlen(name), &v, &vl);
	if (ret)
		return ret;
	if (vl != sizeof(d))
		return cairn_err(-EUCLEAN, "platform '%s' is damaged", name);
	memcpy(&d, v, sizeof(d));
	if (d.version != CAIRN_FORMAT_VERSION)
		return cairn_err(-EUCLEAN, "platform '%s' is damaged", name);
	p->generation = CAIRN_GET(d.generation);
	memcpy(p->image.b, d.image, CAIRN_ID_LEN);
	return 0;
}

static int generation_parse(const void *v, size_t vl, uint64_t gen, struct cairn_generation *g)
{
	struct cairn_history_disk d;

	if (vl != sizeof(d))
		return -EUCLEAN;
	memcpy(&d, v, sizeof(d));
	if (d.version != CAIRN_FORMAT_VERSION ||
	    (d.action != CAIRN_ACTION_UPGRADE && d.action != CAIRN_ACTION_ROLLBACK))
		return -EUCLEAN;
	g->generation = gen;
	g->action = d.action;
	memcpy(g->image.b, d.image, CAIRN_ID_LEN);
	g->time_ns = CAIRN_GET(d.time_ns);
	g->restored = CAIRN_GET(d.restored);
	return 0;
}

struct platform_each {
	struct cairn_txn *t;
	int (*fn)(const char *name, const struct cairn_platform *p, void *arg);
	void *arg;
};

static int platform_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct platform_each *pe = arg;
	char name[CAIRN_TAG_MAX + 1];
	struct cairn_platform p;

	if (kl > CAIRN_TAG_MAX)
		return 0; /* fsck reports it */
	memcpy(name, k, kl);
	name[kl] = '\0';
	if (cairn_platform_get(pe->t, name, &p)) {
		cairn_err_clear();
		return 0;
	}
	return pe->fn(name, &p, pe->arg);
}

int cairn_platform_each(struct cairn_txn *t,
			int (*fn)(const char *name, const struct cairn_platform *p, void *arg),
			void *arg)
{
	struct platform_each pe = { t, fn, arg };

	return cairn_table_each(t, CAIRN_DBI_PLATFORMS, platform_one, &pe);
}

int cairn_generation_get(struct cairn_txn *t, const char *name, uint64_t gen,
			 struct cairn_generation *g)
{
	uint8_t key[256];
	const void *v;
	size_t vl;
	int ret;

	if (cairn_platform_check(name))
		return -ENOENT;
	ret = cairn_get(t, CAIRN_DBI_HISTORY, key, history_key(name, gen, key), &v, &vl);
	if (ret)
		return ret;
	ret = generation_parse(v, vl, gen, g);
	return ret ? cairn_err(ret, "generation %llu of platform '%s' is damaged",
			       (unsigned long long)gen, name)
		   : 0;
}

int cairn_history_walk(struct cairn_txn *t, const char *name,
		       int (*fn)(const struct cairn_generation *g, void *arg), void *arg)
{
	struct cairn_cursor *c;
	uint8_t key[256];
	size_t n = strlen(name), kl, vl;
	const void *k, *v;
	int ret;

	if (cairn_platform_check(name))
		return -ENOENT;
	ret = cairn_cursor_open(t, CAIRN_DBI_HISTORY, &c);
	if (ret)
		return ret;
	for (ret = cairn_cursor_get(c, key, history_key(name, 0, key), false, &k, &kl, &v, &vl);
	     ret == 0; ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
		struct cairn_generation g;
		uint64_t be;

		if (kl != n + 9 || memcmp(k, name, n) || ((const uint8_t *)k)[n] != '\0')
			break; /* past this platform's keys */
		memcpy(&be, (const uint8_t *)k + n + 1, sizeof(be));
		ret = generation_parse(v, vl, be64toh(be), &g);
		if (ret) {
			ret = cairn_err(ret, "generation %llu of platform '%s' is damaged",
					(unsigned long long)be64toh(be), name);
			break;
		}
		ret = fn(&g, arg);
		if (ret)
			break;
	}
	cairn_cursor_close(c);
	return ret == -ENOENT ? 0 : ret;
}

/* Writes generation gen (and the platform pointer) in t. */
static int append(struct cairn_txn *t, const char *name, uint64_t gen, uint8_t action,
		  const struct cairn_id *image, uint64_t restored)
{
	struct cairn_platform_disk p = { .version = CAIRN_FORMAT_VERSION };
	struct cairn_history_disk h = { .version = CAIRN_FORMAT_VERSION, .action = action };
	uint8_t key[256];
	int ret;

	CAIRN_SET(p.generation, gen);
	memcpy(p.image, image->b, CAIRN_ID_LEN);
	memcpy(h.image, image->b, CAIRN_ID_LEN);
	CAIRN_SET(h.time_ns, cairn_now_ns());
	CAIRN_SET(h.restored, restored);
	ret = cairn_put(t, CAIRN_DBI_HISTORY, key, history_key(name, gen, key), &h, sizeof(h),
			CAIRN_PUT_NOOVERWRITE, NULL, NULL);
	if (ret == -EEXIST)
		return cairn_err(-EUCLEAN, "platform '%s' already has a generation %llu", name,
				 (unsigned long long)gen);
	if (ret)
		return ret;
	return cairn_put(t, CAIRN_DBI_PLATFORMS, name, strlen(name), &p, sizeof(p), 0, NULL,
			 NULL);
}

int cairn_platform_upgrade_txn(struct cairn_txn *t, const char *name,
			       const struct cairn_id *image, uint64_t *gen)
{
	struct cairn_platform cur = { 0 };
	int ret;

	if (cairn_platform_check(name))
		return cairn_err(-EINVAL, "'%s' is not a valid platform name", name);
	ret = cairn_naming_check(t, image);
	if (ret)
		return ret;
	ret = cairn_platform_get(t, name, &cur);
	if (ret == -ENOENT)
		cur.generation = 0;
	else if (ret)
		return ret;
	if (cur.generation && cairn_id_eq(&cur.image, image)) {
		*gen = cur.generation;
		return 1;
	}
	ret = append(t, name, cur.generation + 1, CAIRN_ACTION_UPGRADE, image, 0);
	if (ret)
		return ret;
	*gen = cur.generation + 1;
	return 0;
}

int cairn_platform_upgrade(struct cairn_store *s, const char *name, const struct cairn_id *image,
			   uint64_t *gen)
{
	struct cairn_txn *t;
	int ret;

	if (cairn_platform_check(name))
		return cairn_err(-EINVAL, "'%s' is not a valid platform name", name);
	ret = cairn_naming_begin(s, &t);
	if (ret)
		return ret;
	ret = cairn_platform_upgrade_txn(t, name, image, gen);
	if (ret) {
		cairn_txn_abort(t);
		return ret < 0 ? ret : 0;
	}
	return cairn_naming_commit(t);
}

int cairn_platform_rollback(struct cairn_store *s, const char *name, uint64_t to, uint64_t *gen,
			    struct cairn_id *image)
{
	struct cairn_generation g, target;
	struct cairn_platform cur;
	struct cairn_image img;
	struct cairn_txn *t;
	int ret;

	ret = cairn_naming_begin(s, &t);
	if (ret)
		return ret;
	ret = cairn_platform_get(t, name, &cur);
	if (ret == -ENOENT)
		ret = cairn_err(ret, "there is no platform '%s'", name);
	if (ret)
		goto fail;
	if (to == 0) {
		/* the generation before the one the current generation shows */
		ret = cairn_generation_get(t, name, cur.generation, &g);
		if (ret)
			goto fail;
		to = (g.action == CAIRN_ACTION_ROLLBACK ? g.restored : g.generation) - 1;
		if (to == 0) {
			ret = cairn_err(-ENOENT, "platform '%s' has no earlier generation to roll back "
						 "to", name);
			goto fail;
		}
	}
	if (to >= cur.generation && to != 0) {
		ret = cairn_err(-EINVAL, "generation %llu is not earlier than the current one (%llu)",
				(unsigned long long)to, (unsigned long long)cur.generation);
		goto fail;
	}
	ret = cairn_generation_get(t, name, to, &target);
	if (ret == -ENOENT)
		ret = cairn_err(ret, "platform '%s' has no generation %llu (pruned, or never made)",
				name, (unsigned long long)to);
	if (ret)
		goto fail;
	ret = cairn_image_get(t, &target.image, &img);
	if (ret == -ENOENT)
		ret = cairn_err(ret, "the image of generation %llu is no longer in the store",
				(unsigned long long)to);
	if (ret)
		goto fail;
	ret = append(t, name, cur.generation + 1, CAIRN_ACTION_ROLLBACK, &target.image, to);
	if (ret)
		goto fail;
	ret = cairn_naming_commit(t);
	if (!ret) {
		*gen = cur.generation + 1;
		*image = target.image;
	}
	return ret;
fail:
	cairn_txn_abort(t);
	return ret;
}

int cairn_platform_uses(struct cairn_txn *t, const struct cairn_id *id, char *who, size_t len)
{
	struct cairn_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	int ret, found = 0;

	ret = cairn_cursor_open(t, CAIRN_DBI_HISTORY, &c);
	if (ret)
		return ret;
	for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); ret == 0 && !found;
	     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
		struct cairn_history_disk d;
		uint64_t be;

		if (vl != sizeof(d) || kl < 10)
			continue;
		memcpy(&d, v, sizeof(d));
		if (memcmp(d.image, id->b, CAIRN_ID_LEN))
			continue;
		memcpy(&be, (const uint8_t *)k + kl - 8, sizeof(be));
		snprintf(who, len, "%.*s@%llu", (int)(kl - 9), (const char *)k,
			 (unsigned long long)be64toh(be));
		found = 1;
	}
	cairn_cursor_close(c);
	if (ret && ret != -ENOENT)
		return ret;
	return found;
}
