/* SPDX-License-Identifier: MIT */
/*
 * rgc.c - collecting a remote's garbage (gc --remote), and the lock objects
 * that keep it apart from pushes (rgc.h).
 */
#include "rgc.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/random.h>

#include "layout.h"

#define LOCK_MAGIC "cairnlk"

/* A lock object: magic, then the time it was written (ns since the epoch, LE). */
void cairn_rlock_body(uint8_t out[16])
{
	memcpy(out, LOCK_MAGIC, 8);
	cairn_put64(out + 8, (uint64_t)cairn_now_ns());
}

/* The age of a lock object, or -1 when it is not one (treated as fresh: never ours to drop). */
static int64_t lock_age_ns(const struct cairn_buf *b)
{
	if (b->len != 16 || memcmp(b->data, LOCK_MAGIC, 8) != 0)
		return -1;
	return cairn_now_ns() - (int64_t)cairn_le64(b->data + 8);
}

static bool fresh(const struct cairn_buf *b)
{
	int64_t age = lock_age_ns(b);

	return age < 0 || age < CAIRN_RLOCK_STALE_NS;
}

int cairn_rlock_push(struct cairn_remote_conn *c, char *key, size_t cap)
{
	uint8_t body[16], rnd[8];
	char rest[64], gckey[CAIRN_RKEY_MAX];
	struct cairn_buf b = { 0 };
	int ret;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	snprintf(rest, sizeof(rest), "locks/push-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
		 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	ret = cairn_remote_key(c, rest, key, cap);
	ret = ret ?: cairn_remote_key(c, "locks/gc", gckey, sizeof(gckey));
	if (ret)
		return ret;
	cairn_rlock_body(body);
	ret = cairn_s3_put(c->s3, key, body, sizeof(body), false);
	if (ret)
		return ret;
	/* written first, checked second: a gc that locks meanwhile sees ours */
	ret = cairn_s3_get(c->s3, gckey, 4096, &b);
	if (ret == -ENOENT) {
		cairn_err_clear();
		ret = 0;
	} else if (ret == 0 && fresh(&b)) {
		ret = cairn_err(-EBUSY, "gc --remote is running on the remote; push again when it "
					"is done");
	}
	cairn_buf_release(&b);
	if (ret) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", cairn_errmsg());
		cairn_s3_delete(c->s3, key);
		cairn_err(ret, "%s", msg);
	}
	return ret;
}

void cairn_rlock_release(struct cairn_remote_conn *c, const char *key)
{
	if (key && *key) {
		cairn_s3_delete(c->s3, key);
		cairn_err_clear();
	}
}

struct names {
	char **v;
	size_t n, cap;
};

static int names_add(struct names *ns, const char *k)
{
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? 2 * ns->cap : 64;
		char **v = realloc(ns->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ns->v = v;
		ns->cap = cap;
	}
	ns->v[ns->n] = strdup(k);
	return ns->v[ns->n++] ? 0 : -ENOMEM;
}

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
}

static int on_key(void *arg, const char *key, uint64_t size)
{
	return names_add(arg, key);
}

static int list(struct cairn_remote_conn *c, const char *rest, struct names *out)
{
	char prefix[CAIRN_RKEY_MAX];
	int ret = cairn_remote_key(c, rest, prefix, sizeof(prefix));

	return ret ? ret : cairn_s3_list(c->s3, prefix, NULL, on_key, out);
}

struct idset {
	struct cairn_id *v;
	size_t n, cap;
};

static int idset_add(struct idset *s, const struct cairn_id *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (cairn_id_eq(&s->v[i], id))
			return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct cairn_id *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = *id;
	return 0;
}

static bool idset_has(const struct idset *s, const struct cairn_id *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (cairn_id_eq(&s->v[i], id))
			return true;
	return false;
}

/* The generation number at the end of a key under platforms/NAME/, or 0. */
static uint64_t gen_of(const char *key)
{
	size_t n = strlen(key);
	uint64_t v = 0;

	if (n < 21 || key[n - 21] != '/')
		return 0;
	for (size_t i = n - 20; i < n; i++) {
		if (key[i] < '0' || key[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(key[i] - '0');
	}
	return v;
}

/* Keys of one platform (same folder) in [from, to) of a sorted listing. */
static int prune_platform(struct cairn_remote_conn *c, struct names *ks, size_t from, size_t to,
			  int64_t keep, struct idset *images, struct cairn_rgc_stats *st)
{
	size_t kept = 0;
	int ret = 0;

	/* newest first: the listing is in key order, generations zero-padded */
	for (size_t i = to; i-- > from && !ret;) {
		struct cairn_buf b = { 0 };
		struct cairn_rptr p;

		if (!gen_of(ks->v[i]))
			continue;
		if (keep >= 0 && (int64_t)kept >= keep) {
			ret = cairn_s3_delete(c->s3, ks->v[i]);
			st->generations++;
			continue;
		}
		ret = cairn_s3_get(c->s3, ks->v[i], 4096, &b);
		if (!ret && cairn_rptr_parse(b.data, b.len, &p) == 0)
			ret = idset_add(images, &p.image);
		else if (ret == 0)
			cairn_err_clear(); /* a damaged pointer keeps nothing alive */
		cairn_buf_release(&b);
		kept++;
	}
	return ret;
}

int cairn_remote_gc(struct cairn_remote_conn *c, int64_t keep, struct cairn_rgc_stats *st)
{
	struct names locks = { 0 }, tags = { 0 }, gens = { 0 }, imgs = { 0 }, packs = { 0 };
	struct idset keep_images = { 0 }, live_packs = { 0 };
	char gckey[CAIRN_RKEY_MAX], plen_key[CAIRN_RKEY_MAX];
	uint8_t body[16];
	size_t plen;
	int ret;

	memset(st, 0, sizeof(*st));
	ret = cairn_remote_key(c, "locks/gc", gckey, sizeof(gckey));
	if (ret)
		return ret;
	cairn_rlock_body(body);
	ret = cairn_s3_put(c->s3, gckey, body, sizeof(body), true);
	if (ret == -EEXIST) {
		struct cairn_buf b = { 0 };

		cairn_err_clear();
		ret = cairn_s3_get(c->s3, gckey, 4096, &b);
		if (ret == 0 && fresh(&b))
			ret = cairn_err(-EBUSY, "another gc --remote is running on the remote");
		else if (ret == 0) /* a gc that died: its lock is stale */
			ret = cairn_s3_put(c->s3, gckey, body, sizeof(body), false);
		cairn_buf_release(&b);
	}
	if (ret)
		return ret;
	/* locked first, checked second: a push that starts meanwhile sees our lock */
	ret = list(c, "locks/push-", &locks);
	for (size_t i = 0; !ret && i < locks.n; i++) {
		struct cairn_buf b = { 0 };
		bool busy = cairn_s3_get(c->s3, locks.v[i], 4096, &b) == 0 && fresh(&b);

		cairn_buf_release(&b);
		cairn_err_clear(); /* a lock gone meanwhile is a push that ended */
		if (busy)
			ret = cairn_err(-EBUSY, "a push is running on the remote ('%s'); try again "
						"when it is done", locks.v[i]);
	}

	/* what is kept: every tag's image, each platform's newest keep generations */
	ret = ret ?: list(c, "tags/", &tags);
	for (size_t i = 0; !ret && i < tags.n; i++) {
		struct cairn_buf b = { 0 };
		struct cairn_rptr p;

		ret = cairn_s3_get(c->s3, tags.v[i], 4096, &b);
		if (!ret && cairn_rptr_parse(b.data, b.len, &p) == 0)
			ret = idset_add(&keep_images, &p.image);
		else if (ret == -ENOENT || ret == 0)
			ret = 0;
		cairn_err_clear();
		cairn_buf_release(&b);
	}
	ret = ret ?: list(c, "platforms/", &gens);
	for (size_t i = 0; !ret && i < gens.n;) {
		const char *slash = strrchr(gens.v[i], '/');
		size_t dl = slash ? (size_t)(slash - gens.v[i]) : 0, j = i + 1;

		while (j < gens.n && strncmp(gens.v[j], gens.v[i], dl + 1) == 0 &&
		       strchr(gens.v[j] + dl + 1, '/') == NULL)
			j++;
		ret = prune_platform(c, &gens, i, j, keep, &keep_images, st);
		i = j;
	}

	/* images nothing keeps go; the packs kept images name stay */
	ret = ret ?: cairn_remote_key(c, "images/", plen_key, sizeof(plen_key));
	plen = strlen(plen_key);
	ret = ret ?: list(c, "images/", &imgs);
	for (size_t i = 0; !ret && i < imgs.n; i++) {
		struct cairn_rimage_header h;
		struct cairn_buf b = { 0 };
		struct cairn_id id;

		if (cairn_rkey_parse_id(imgs.v[i] + plen, "", &id))
			continue;
		if (!idset_has(&keep_images, &id)) {
			ret = cairn_s3_delete(c->s3, imgs.v[i]);
			st->images++;
			continue;
		}
		ret = cairn_s3_get(c->s3, imgs.v[i], 64u << 20, &b);
		if (!ret && b.len >= sizeof(h)) {
			uint64_t rl, nl, np;

			memcpy(&h, b.data, sizeof(h));
			rl = CAIRN_GET(h.record_len);
			nl = CAIRN_GET(h.nlayers);
			np = CAIRN_GET(h.npacks);
			if (b.len == sizeof(h) + rl + nl + np * CAIRN_ID_LEN)
				for (uint64_t k = 0; !ret && k < np; k++)
					ret = idset_add(&live_packs,
							(const struct cairn_id *)(b.data + sizeof(h) +
										  rl + nl) + k);
		}
		cairn_buf_release(&b);
	}
	ret = ret ?: cairn_remote_key(c, "packs/", plen_key, sizeof(plen_key));
	plen = strlen(plen_key);
	ret = ret ?: list(c, "packs/", &packs);
	for (size_t i = 0; !ret && i < packs.n; i++) {
		struct cairn_id id;
		bool is_pack = cairn_rkey_parse_id(packs.v[i] + plen, ".pack", &id) == 0;

		if (!is_pack && cairn_rkey_parse_id(packs.v[i] + plen, ".idx", &id))
			continue;
		if (idset_has(&live_packs, &id))
			continue;
		ret = cairn_s3_delete(c->s3, packs.v[i]);
		if (is_pack)
			st->packs++;
	}
	{
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", cairn_errmsg());
		cairn_s3_delete(c->s3, gckey);
		if (ret)
			cairn_err(ret, "%s", msg);
		else
			cairn_err_clear();
	}
	st->images_kept = keep_images.n;
	st->packs_kept = live_packs.n;
	names_free(&locks);
	names_free(&tags);
	names_free(&gens);
	names_free(&imgs);
	names_free(&packs);
	free(keep_images.v);
	free(live_packs.v);
	return ret;
}
