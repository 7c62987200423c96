/* SPDX-License-Identifier: MIT */
/*
 * remotes.c - remote and follow records (remotes.h, format.h).
 */
#include "remotes.h"

#include <stdio.h>

#include "image.h"
#include "lazy.h"
#include "platform.h"
#include "store-internal.h"

void cairn_remote_rec_release(struct cairn_remote_rec *r)
{
	free(r->name);
	free(r->url);
	free(r->endpoint);
	free(r->ca_file);
	free(r->cred_file);
	memset(r, 0, sizeof(*r));
}

int cairn_remote_name_check(const char *name)
{
	return cairn_tag_check(name);
}

static int remote_parse(const char *name, const void *v, size_t vl, struct cairn_remote_rec *r)
{
	struct cairn_remote_disk d;
	const char *p = (const char *)v + sizeof(d);
	size_t lens[4], total = sizeof(d);
	char **dst[4] = { &r->url, &r->endpoint, &r->ca_file, &r->cred_file };

	memset(r, 0, sizeof(*r));
	if (vl < sizeof(d))
		return -EUCLEAN;
	memcpy(&d, v, sizeof(d));
	if (d.version != CAIRN_FORMAT_VERSION || (d.flags & ~CAIRN_REMOTE_TRUST))
		return -EUCLEAN;
	lens[0] = CAIRN_GET(d.url_len);
	lens[1] = CAIRN_GET(d.endpoint_len);
	lens[2] = CAIRN_GET(d.ca_len);
	lens[3] = CAIRN_GET(d.cred_len);
	for (int i = 0; i < 4; i++)
		total += lens[i];
	if (total != vl)
		return -EUCLEAN;
	r->name = strdup(name);
	if (!r->name)
		return -ENOMEM;
	for (int i = 0; i < 4; i++) {
		if (memchr(p, '\0', lens[i])) {
			cairn_remote_rec_release(r);
			return -EUCLEAN;
		}
		*dst[i] = strndup(p, lens[i]);
		if (!*dst[i]) {
			cairn_remote_rec_release(r);
			return -ENOMEM;
		}
		p += lens[i];
	}
	r->timeout_ms = CAIRN_GET(d.timeout_ms);
	r->trust = d.flags & CAIRN_REMOTE_TRUST;
	memcpy(r->trust_key, d.trust_key, sizeof(r->trust_key));
	return 0;
}

int cairn_remote_get(struct cairn_txn *t, const char *name, struct cairn_remote_rec *out)
{
	const void *v;
	size_t vl;
	int ret;

	if (cairn_remote_name_check(name))
		return cairn_err(-ENOENT, "there is no remote '%s'", name);
	ret = cairn_get(t, CAIRN_DBI_REMOTES, name, strlen(name), &v, &vl);
	if (ret == -ENOENT)
		return cairn_err(ret, "there is no remote '%s'", name);
	if (ret)
		return ret;
	ret = remote_parse(name, v, vl, out);
	if (ret == -EUCLEAN)
		return cairn_err(ret, "the record of remote '%s' is damaged", name);
	return ret;
}

static int remote_encode(const struct cairn_remote_rec *r, struct cairn_buf *out)
{
	struct cairn_remote_disk d = { .version = CAIRN_FORMAT_VERSION };
	const char *strs[4] = { r->url, r->endpoint, r->ca_file ? r->ca_file : "",
				r->cred_file ? r->cred_file : "" };
	size_t lens[4];
	int ret;

	for (int i = 0; i < 4; i++) {
		lens[i] = strs[i] ? strlen(strs[i]) : 0;
		if (lens[i] > CAIRN_REMOTE_STR_MAX)
			return cairn_err(-ENAMETOOLONG, "a remote's setting is too long");
	}
	d.flags = r->trust ? CAIRN_REMOTE_TRUST : 0;
	CAIRN_SET(d.timeout_ms, r->timeout_ms);
	memcpy(d.trust_key, r->trust_key, sizeof(d.trust_key));
	CAIRN_SET(d.url_len, lens[0]);
	CAIRN_SET(d.endpoint_len, lens[1]);
	CAIRN_SET(d.ca_len, lens[2]);
	CAIRN_SET(d.cred_len, lens[3]);
	ret = cairn_buf_append(out, &d, sizeof(d));
	for (int i = 0; i < 4 && !ret; i++)
		ret = cairn_buf_append(out, strs[i] ? strs[i] : "", lens[i]);
	return ret;
}

/* A write transaction whose commit is fully synced. */
static int begin_synced(struct cairn_store *s, struct cairn_txn **t)
{
	int ret = cairn_store_set_batch_mode(s, false);

	return ret ? ret : cairn_txn_begin(s, true, t);
}

int cairn_remote_add(struct cairn_store *s, const struct cairn_remote_rec *r)
{
	struct cairn_buf b = { 0 };
	struct cairn_txn *t;
	int ret;

	if (cairn_remote_name_check(r->name))
		return cairn_err(-EINVAL, "'%s' is not a valid remote name", r->name);
	ret = remote_encode(r, &b);
	if (!ret)
		ret = begin_synced(s, &t);
	if (ret) {
		cairn_buf_release(&b);
		return ret;
	}
	ret = cairn_put(t, CAIRN_DBI_REMOTES, r->name, strlen(r->name), b.data, b.len,
			CAIRN_PUT_NOOVERWRITE, NULL, NULL);
	cairn_buf_release(&b);
	if (ret == -EEXIST)
		ret = cairn_err(ret, "there is a remote '%s' already", r->name);
	if (ret) {
		cairn_txn_abort(t);
		return ret;
	}
	return cairn_txn_commit(t);
}

/* The remote a follow value names, as a NUL-terminated string in out. */
static int follow_parse(const void *v, size_t vl, struct cairn_follow *f)
{
	struct cairn_follow_disk d;
	size_t n;

	if (vl < sizeof(d))
		return -EUCLEAN;
	memcpy(&d, v, sizeof(d));
	n = CAIRN_GET(d.remote_len);
	if (d.version != CAIRN_FORMAT_VERSION || vl != sizeof(d) + n || n == 0 ||
	    n >= sizeof(f->remote))
		return -EUCLEAN;
	memcpy(f->remote, (const char *)v + sizeof(d), n);
	f->remote[n] = '\0';
	if (cairn_remote_name_check(f->remote))
		return -EUCLEAN;
	f->remote_gen = CAIRN_GET(d.remote_gen);
	f->local_gen = CAIRN_GET(d.local_gen);
	return 0;
}

struct lazy_users {
	const char *name;
	struct cairn_txn *t;
	uint64_t n;
};

static int lazy_user(const struct cairn_lazy *l, bool ok, void *arg)
{
	struct lazy_users *u = arg;
	const void *v;
	size_t vl;

	if (ok && strcmp(l->remote, u->name) == 0 &&
	    cairn_get(u->t, CAIRN_DBI_CHUNKS, l->id.b, CAIRN_ID_LEN, &v, &vl) == -ENOENT)
		u->n++;
	cairn_err_clear();
	return 0;
}

/* -EBUSY while chunks of a lazy pull are still to be fetched from the remote. */
static int lazy_users(struct cairn_txn *t, const char *name)
{
	struct lazy_users u = { .name = name, .t = t };
	int ret = cairn_lazy_each(t, lazy_user, &u);

	if (ret)
		return ret;
	if (u.n)
		return cairn_err(-EBUSY, "%llu chunks of lazily pulled images are still to be "
					 "fetched from it ('cairn pull %s IMAGE' fetches an image "
					 "whole; 'cairn gc' drops what no image needs)",
				 (unsigned long long)u.n, name);
	return 0;
}

int cairn_remote_remove(struct cairn_store *s, const char *name)
{
	struct cairn_cursor *c = NULL;
	struct cairn_txn *t;
	const void *k, *v;
	size_t kl, vl;
	int ret;

	if (cairn_remote_name_check(name))
		return cairn_err(-ENOENT, "there is no remote '%s'", name);
	ret = begin_synced(s, &t);
	if (ret)
		return ret;
	ret = cairn_del(t, CAIRN_DBI_REMOTES, name, strlen(name));
	if (ret == -ENOENT)
		ret = cairn_err(ret, "there is no remote '%s'", name);
	if (!ret)
		ret = lazy_users(t, name);
	if (!ret)
		ret = cairn_cursor_open(t, CAIRN_DBI_FOLLOWS, &c);
	for (int r = ret ? ret : cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); !ret && !r;
	     r = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
		struct cairn_follow f;

		if (follow_parse(v, vl, &f) == 0 && strcmp(f.remote, name) == 0)
			ret = cairn_cursor_del(c);
	}
	cairn_cursor_close(c);
	if (ret) {
		cairn_txn_abort(t);
		return ret;
	}
	return cairn_txn_commit(t);
}

int cairn_remote_walk(struct cairn_txn *t, int (*fn)(const struct cairn_remote_rec *r, void *arg),
		      void *arg)
{
	struct cairn_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	int ret;

	ret = cairn_cursor_open(t, CAIRN_DBI_REMOTES, &c);
	if (ret)
		return ret;
	for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); !ret;
	     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
		struct cairn_remote_rec r;
		char name[130];

		if (kl == 0 || kl >= sizeof(name)) {
			ret = cairn_err(-EUCLEAN, "a remote record has a bad name");
			break;
		}
		memcpy(name, k, kl);
		name[kl] = '\0';
		ret = remote_parse(name, v, vl, &r);
		if (ret == -EUCLEAN)
			ret = cairn_err(ret, "the record of remote '%s' is damaged", name);
		if (ret)
			break;
		ret = fn(&r, arg);
		cairn_remote_rec_release(&r);
		if (ret)
			break;
	}
	cairn_cursor_close(c);
	return ret == -ENOENT ? 0 : ret;
}

int cairn_follow_get(struct cairn_txn *t, const char *platform, struct cairn_follow *f)
{
	const void *v;
	size_t vl;
	int ret;

	if (cairn_platform_check(platform))
		return -ENOENT;
	ret = cairn_get(t, CAIRN_DBI_FOLLOWS, platform, strlen(platform), &v, &vl);
	if (ret)
		return ret;
	ret = follow_parse(v, vl, f);
	return ret ? cairn_err(ret, "the follow record of platform '%s' is damaged", platform) : 0;
}

int cairn_follow_switch(struct cairn_store *s, const char *platform, const char *remote,
			uint64_t remote_gen, const struct cairn_id *image, bool resume,
			uint64_t *gen)
{
	struct cairn_follow_disk d = { .version = CAIRN_FORMAT_VERSION };
	struct cairn_platform cur;
	struct cairn_follow f;
	uint8_t val[sizeof(d) + 130];
	size_t rl = strlen(remote);
	struct cairn_txn *t;
	bool have;
	int ret;

	if (cairn_remote_name_check(remote) || rl >= 130)
		return cairn_err(-EINVAL, "'%s' is not a valid remote name", remote);
	ret = cairn_naming_begin(s, &t); /* a platform switch: a naming transaction */
	if (ret)
		return ret;
	ret = cairn_follow_get(t, platform, &f);
	have = ret == 0 && strcmp(f.remote, remote) == 0;
	if (ret == -ENOENT)
		ret = 0;
	if (!ret && have && remote_gen <= f.remote_gen)
		ret = cairn_err(-ESTALE, "generation %llu of '%s' on '%s' is not newer than "
					 "generation %llu, already applied",
				(unsigned long long)remote_gen, platform, remote,
				(unsigned long long)f.remote_gen);
	if (!ret && have && !resume) {
		ret = cairn_platform_get(t, platform, &cur);
		if (ret == 0 && cur.generation != f.local_gen)
			ret = cairn_err(-EBUSY, "platform '%s' was moved here (generation %llu, "
						"following made %llu): following is paused; "
						"'cairn follow --resume' follows again",
					platform, (unsigned long long)cur.generation,
					(unsigned long long)f.local_gen);
		if (ret == -ENOENT)
			ret = 0;
	}
	if (!ret) {
		ret = cairn_platform_upgrade_txn(t, platform, image, gen);
		if (ret == 1)
			ret = 0;
	}
	if (!ret) {
		CAIRN_SET(d.remote_gen, remote_gen);
		CAIRN_SET(d.local_gen, *gen);
		CAIRN_SET(d.remote_len, rl);
		memcpy(val, &d, sizeof(d));
		memcpy(val + sizeof(d), remote, rl);
		ret = cairn_put(t, CAIRN_DBI_FOLLOWS, platform, strlen(platform), val,
				sizeof(d) + rl, 0, NULL, NULL);
	}
	if (ret) {
		cairn_txn_abort(t);
		return ret;
	}
	return cairn_naming_commit(t);
}
