/* SPDX-License-Identifier: MIT */
/*
 * inode.c - the inode table: identity-derived inode numbers with kernel
 * lookup counts.
 *
 * The table holds an inode while the kernel holds a reference (lookup,
 * readdirplus entry, create); forget drops it. A number collision between
 * two identities (a 64-bit hash) is resolved by probing to the next free
 * number, so the table never serves one inode for two entries.
 *
 * The inode budget. The kernel keeps an inode (and so do we) while it
 * caches the entry, however long ago it was used: a container's loop over
 * a million files would grow its mount's table, in the daemon every other
 * mount shares, until the kernel's own reclaim. A mount has a budget
 * (CFS_INODE_BUDGET, or CAIRN_INODE_BUDGET=N, at least 64); past it, the
 * kernel is asked to drop the inodes it does not use (FUSE_NOTIFY_PRUNE):
 * those go through FORGET as under memory pressure, and come back by
 * LOOKUP, with the same numbers, when next named. Inodes in use (open
 * files, cwds, mountpoints such as a container's bind of resolv.conf,
 * directories with cached entries) are skipped by the kernel itself,
 * which is why this asks rather than invalidates names (d_invalidate
 * detaches what is mounted on an entry). A kernel without the notification
 * (before 6.18) refuses it with EINVAL: the budget is then not enforced,
 * logged once and shown as such in the stats.
 */
#include <linux/fuse.h>
#include <sys/uio.h>
#include <time.h>
#include <xxhash.h>

#include "fs-internal.h"

/* an inode budget per mount, by default */
#define CFS_INODE_BUDGET 65536u
/* the notification and its header (Linux 6.18's <linux/fuse.h>; not in Debian 12's) */
#define CFS_NOTIFY_PRUNE 9
struct cfs_notify_prune_out {
	uint32_t count;
	uint32_t padding;
	uint64_t spare;
};

int cfs_itable_init(struct cfs *fs)
{
	const char *env = getenv("CAIRN_INODE_BUDGET");

	fs->inode_budget = CFS_INODE_BUDGET;
	if (env && *env) {
		char *end;
		unsigned long long e = strtoull(env, &end, 10);

		if (!*end && e > 0)
			fs->inode_budget = e < 64 ? 64 : (size_t)e;
	}
	pthread_mutex_init(&fs->itable_lock, NULL);
	fs->nbuckets = 1u << 12;
	fs->buckets = calloc(fs->nbuckets, sizeof(*fs->buckets));
	return fs->buckets ? 0 : -ENOMEM;
}

void cfs_itable_release(struct cfs *fs)
{
	for (size_t i = 0; i < fs->nbuckets; i++) {
		struct cfs_inode *in = fs->buckets ? fs->buckets[i] : NULL;

		while (in) {
			struct cfs_inode *next = in->next;

			if (in->rw)
				cfs_rw_inode_free(fs, in);
			free(in->name);
			free(in);
			in = next;
		}
	}
	free(fs->buckets);
	fs->buckets = NULL;
	pthread_mutex_destroy(&fs->itable_lock);
}

static size_t bucket_of(const struct cfs *fs, uint64_t ino)
{
	return (size_t)(ino * 0x9e3779b97f4a7c15ull >> 20) & (fs->nbuckets - 1);
}

static struct cfs_inode *find_locked(struct cfs *fs, uint64_t ino)
{
	struct cfs_inode *in;

	for (in = fs->buckets[bucket_of(fs, ino)]; in; in = in->next)
		if (in->ino == ino)
			return in;
	return NULL;
}

struct cfs_inode *cfs_inode_find(struct cfs *fs, uint64_t ino)
{
	struct cfs_inode *in;

	pthread_mutex_lock(&fs->itable_lock);
	in = find_locked(fs, ino);
	pthread_mutex_unlock(&fs->itable_lock);
	return in;
}

static void grow_locked(struct cfs *fs)
{
	size_t n = fs->nbuckets * 2;
	struct cfs_inode **b = calloc(n, sizeof(*b));
	size_t old_n = fs->nbuckets;
	struct cfs_inode **old = fs->buckets;

	if (!b)
		return; /* longer chains, still correct */
	fs->buckets = b;
	fs->nbuckets = n;
	for (size_t i = 0; i < old_n; i++) {
		struct cfs_inode *in = old[i];

		while (in) {
			struct cfs_inode *next = in->next;
			size_t k = bucket_of(fs, in->ino);

			in->next = b[k];
			b[k] = in;
			in = next;
		}
	}
	free(old);
}

/* One more inode in the table (itable_lock held). */
static void count_locked(struct cfs *fs)
{
	if (++fs->ninodes > fs->nbuckets)
		grow_locked(fs);
	if (fs->ninodes > fs->inode_budget && !atomic_load(&fs->over_budget))
		atomic_store(&fs->over_budget, true);
}

/* What an entry is, hashed to its inode number. */
static uint64_t identity_ino(uint64_t parent, uint64_t name_hash, const struct cairn_id *node,
			     const struct cairn_node_view *v)
{
	uint8_t key[1 + 8 + 8 + CAIRN_ID_LEN];
	size_t len;
	uint64_t ino;

	if (v->type != CAIRN_NODE_DIR && v->nlink > 1) {
		key[0] = 'L';
		memcpy(key + 1, node->b, CAIRN_ID_LEN);
		len = 1 + CAIRN_ID_LEN;
	} else {
		key[0] = v->type == CAIRN_NODE_DIR ? 'D' : 'F';
		memcpy(key + 1, &parent, 8);
		memcpy(key + 9, &name_hash, 8);
		len = 17;
		if (v->type != CAIRN_NODE_DIR) {
			memcpy(key + 17, node->b, CAIRN_ID_LEN);
			len += CAIRN_ID_LEN;
		}
	}
	ino = XXH3_64bits(key, len);
	return ino > FUSE_ROOT_ID ? ino : ino + 2;
}

static bool same_identity(const struct cfs_inode *in, uint64_t parent, uint64_t name_hash,
			  const struct cairn_id *node, const struct cairn_node_view *v)
{
	if (in->type != v->type)
		return false;
	if (v->type != CAIRN_NODE_DIR && v->nlink > 1)
		return cairn_id_eq(&in->node, node);
	if (in->parent != parent || in->name_hash != name_hash)
		return false;
	return v->type == CAIRN_NODE_DIR || cairn_id_eq(&in->node, node);
}

/* Directory link count and data blocks: computed once per inode. */
void cfs_inode_derive(struct cfs_thread *t, struct cfs_inode *in, const struct cairn_node_view *v)
{
	if (v->type == CAIRN_NODE_DIR) {
		struct cairn_dirent e;

		in->dir_nlink = 2;
		for (uint32_t i = 0; i < v->nentries; i++)
			if (cairn_dir_entry(v, i, &e) == 0 && e.type == CAIRN_NODE_DIR)
				in->dir_nlink++;
		in->blocks = ((uint64_t)v->nentries * 32 + 4095) / 4096 * 8;
	} else if (v->type == CAIRN_NODE_REG) {
		struct cairn_content_view cv;
		uint64_t data = 0;

		if (v->content_kind == CAIRN_CONTENT_LIST &&
		    cairn_file_content(t->txn, v, 0, &cv) == 0) {
			for (uint32_t i = 0; i < cv.count; i++) {
				struct cairn_extent e;

				cairn_content_extent(&cv, i, &e);
				if (!e.hole)
					data += e.end - e.start;
			}
		} else {
			data = v->size;
		}
		in->blocks = (data + 511) / 512;
	}
}

uint64_t cfs_name_hash(const char *name, size_t len)
{
	return XXH3_64bits(name, len);
}

uint64_t cfs_inode_number(uint64_t parent, const char *name, size_t len,
			  const struct cairn_id *node, const struct cairn_node_view *v)
{
	return identity_ino(parent, XXH3_64bits(name, len), node, v);
}

/* The inode with this identity, probing past collisions; or NULL and where it would go. */
static struct cfs_inode *find_identity_locked(struct cfs *fs, uint64_t *ino, uint64_t parent,
					      uint64_t name_hash, const struct cairn_id *node,
					      const struct cairn_node_view *v)
{
	for (;;) {
		struct cfs_inode *in = find_locked(fs, *ino);

		if (!in || same_identity(in, parent, name_hash, node, v))
			return in;
		*ino = *ino + 1 > FUSE_ROOT_ID ? *ino + 1 : 2; /* a collision: probe */
	}
}

struct cfs_inode *cfs_inode_ref(struct cfs *fs, struct cfs_thread *t, uint64_t parent,
				const char *name, size_t len, const struct cairn_id *node,
				const struct cairn_node_view *v)
{
	uint64_t name_hash = XXH3_64bits(name, len);
	uint64_t ino = identity_ino(parent, name_hash, node, v);
	struct cfs_inode *in, *fresh;

	/* the common case, a repeat lookup, takes the lock once and allocates nothing */
	pthread_mutex_lock(&fs->itable_lock);
	in = find_identity_locked(fs, &ino, parent, name_hash, node, v);
	if (in) {
		in->nlookup++;
		pthread_mutex_unlock(&fs->itable_lock);
		return in;
	}
	pthread_mutex_unlock(&fs->itable_lock);

	fresh = calloc(1, sizeof(*fresh));
	if (!fresh)
		return NULL;
	fresh->parent = parent;
	fresh->name_hash = name_hash;
	fresh->name = strndup(name, len);
	if (!fresh->name) {
		free(fresh);
		return NULL;
	}
	fresh->node = *node;
	fresh->type = v->type;
	cfs_inode_derive(t, fresh, v);

	pthread_mutex_lock(&fs->itable_lock);
	ino = identity_ino(parent, name_hash, node, v);
	in = find_identity_locked(fs, &ino, parent, name_hash, node, v);
	if (in) {
		/* another thread made it meanwhile */
		in->nlookup++;
		pthread_mutex_unlock(&fs->itable_lock);
		free(fresh->name);
		free(fresh);
		return in;
	}
	fresh->ino = ino;
	fresh->nlookup = 1;
	{
		/* read from the tree its directory reads (an old one, for a deleted cwd) */
		struct cfs_inode *p = find_locked(fs, parent);

		cfs_lease_hold_locked(fs, fresh, p ? p->lease : fs->leases.current);
	}
	count_locked(fs);
	{
		size_t k = bucket_of(fs, ino);

		fresh->next = fs->buckets[k];
		fs->buckets[k] = fresh;
	}
	pthread_mutex_unlock(&fs->itable_lock);
	return fresh;
}

void cfs_inode_forget(struct cfs *fs, uint64_t ino, uint64_t n)
{
	struct cfs_inode **pp, *in;

	if (ino == FUSE_ROOT_ID)
		return; /* the root lives as long as the mount */
	pthread_mutex_lock(&fs->itable_lock);
	for (pp = &fs->buckets[bucket_of(fs, ino)]; (in = *pp); pp = &in->next)
		if (in->ino == ino)
			break;
	if (!in) {
		pthread_mutex_unlock(&fs->itable_lock);
		cfs_log(fs, LOG_ERR, "forget of unknown inode %llu", (unsigned long long)ino);
		return;
	}
	if (in->nlookup < n) {
		/* the kernel never forgets more than it looked up: a bug here */
		cfs_log(fs, LOG_CRIT, "inode %llu: forget %llu with %llu lookups",
			(unsigned long long)ino, (unsigned long long)n,
			(unsigned long long)in->nlookup);
		abort();
	}
	in->nlookup -= n;
	if (in->nlookup == 0) {
		*pp = in->next;
		fs->ninodes--;
		fs->freed++;
		cfs_lease_drop_locked(fs, in);
		if (in->rw) {
			cfs_rw_orphan_drop(fs, in);
			cfs_rw_inode_free(fs, in);
		}
		free(in->name);
		free(in);
	}
	pthread_mutex_unlock(&fs->itable_lock);
}

/* Asks the kernel to drop the n inodes ids names if unused: 0 or -errno. */
static int notify_prune(struct cfs *fs, uint64_t *ids, uint32_t n)
{
	struct {
		struct fuse_out_header h;
		struct cfs_notify_prune_out a;
	} head = {
		.h = { .error = CFS_NOTIFY_PRUNE },
		.a = { .count = n },
	};
	struct iovec iov[2] = {
		{ &head, sizeof(head) },
		{ ids, n * sizeof(*ids) },
	};
	ssize_t w;

	head.h.len = (uint32_t)(sizeof(head) + n * sizeof(*ids));
	do
		w = writev(fs->fd, iov, 2);
	while (w < 0 && errno == EINTR);
	return w < 0 ? -errno : 0;
}

void cfs_itable_trim(struct cfs *fs)
{
	enum { BATCH = 256, MOST = 8192 };
	const int64_t TRIM_GAP = 20000000, TRIM_GAP_MOST = 2000000000;
	uint64_t *ids = NULL;
	size_t n = 0, want;
	struct timespec ts;
	int64_t now;

	if (atomic_exchange(&fs->trimming, true))
		return; /* another worker does it */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (fs->prune < 0)
		goto out; /* not enforceable here */
	if (now - fs->trimmed_ns < (fs->trim_gap_ns ? fs->trim_gap_ns : TRIM_GAP))
		goto again; /* asked a moment ago: the FORGETs are coming */
	fs->trimmed_ns = now;
	pthread_mutex_lock(&fs->itable_lock);
	if (fs->ninodes <= fs->inode_budget) {
		atomic_store(&fs->over_budget, false);
		fs->trim_gap_ns = TRIM_GAP;
		fs->asked = false;
		pthread_mutex_unlock(&fs->itable_lock);
		goto out;
	}
	/* the last ask freed nothing (what is left is in use): ask less often, up to TRIM_GAP_MOST */
	if (fs->asked && fs->freed == fs->freed_at_ask)
		fs->trim_gap_ns = fs->trim_gap_ns * 2 < TRIM_GAP_MOST ? fs->trim_gap_ns * 2
								: TRIM_GAP_MOST;
	else
		fs->trim_gap_ns = TRIM_GAP;
	fs->freed_at_ask = fs->freed;
	fs->asked = true;
	want = fs->ninodes - (fs->inode_budget - fs->inode_budget / 8);
	if (want > MOST)
		want = MOST;
	ids = malloc(want * sizeof(*ids));
	/*
	 * Any inode but the root may be named: the kernel skips those in use
	 * (a file open now, or closed with its RELEASE still on the way, is
	 * still named here: under load RELEASEs come late, and skipping them
	 * left the table over its budget). The walk goes on where the last one
	 * ended, so every inode comes in turn (a clock, without keeping an
	 * order of use).
	 */
	for (size_t i = 0; ids && i < fs->nbuckets && n < want; i++) {
		size_t k = (fs->trim_cursor + i) & (fs->nbuckets - 1);

		for (struct cfs_inode *in = fs->buckets[k]; in && n < want; in = in->next)
			if (in->ino != FUSE_ROOT_ID)
				ids[n++] = in->ino;
		fs->trim_cursor = k + 1;
	}
	pthread_mutex_unlock(&fs->itable_lock);
	for (size_t i = 0; i < n; i += BATCH) {
		uint32_t k = (uint32_t)(n - i < BATCH ? n - i : BATCH);
		int ret = notify_prune(fs, ids + i, k);

		if (ret == -EINVAL && fs->prune == 0) {
			fs->prune = -1;
			cfs_log(fs, LOG_WARNING,
				"%zu inodes, over the budget of %zu, and this kernel cannot be asked "
				"to drop unused ones (FUSE_NOTIFY_PRUNE, Linux 6.18): the budget is "
				"not enforced",
				fs->ninodes, fs->inode_budget);
			break;
		}
		if (ret < 0) {
			if (ret != -ENOENT && ret != -ENODEV)
				cfs_log(fs, LOG_ERR, "asking the kernel to drop inodes: %s",
					strerror(-ret));
			break;
		}
		fs->prune = 1;
		atomic_fetch_add(&fs->prune_asks, k);
	}
	atomic_fetch_add(&fs->trims, 1);
	free(ids);
again:
	/* no request may come to trim after this one: the daemon's timer does, when the gap is over */
	if (fs->prune >= 0 && atomic_load(&fs->over_budget))
		cfs_daemon_trim_later(fs->d, fs->trimmed_ns +
						     (fs->trim_gap_ns ? fs->trim_gap_ns : TRIM_GAP) - now);
out:
	atomic_store(&fs->trimming, false);
}

struct cfs_inode *cfs_inode_find_locked(struct cfs *fs, uint64_t ino)
{
	return find_locked(fs, ino);
}

/* Adds in under in->ino, which must be free (itable_lock held). */
static void insert_locked(struct cfs *fs, struct cfs_inode *in)
{
	size_t k;

	count_locked(fs);
	k = bucket_of(fs, in->ino);
	in->next = fs->buckets[k];
	fs->buckets[k] = in;
}

void cfs_inode_insert_locked(struct cfs *fs, struct cfs_inode *in, uint64_t ino)
{
	if (ino <= FUSE_ROOT_ID)
		ino += 2;
	while (find_locked(fs, ino))
		ino = ino + 1 > FUSE_ROOT_ID ? ino + 1 : 2; /* taken: probe */
	in->ino = ino;
	insert_locked(fs, in);
}

int cfs_inode_adopt_locked(struct cfs *fs, struct cfs_inode *in)
{
	if (in->ino == 0 || find_locked(fs, in->ino))
		return -EEXIST;
	insert_locked(fs, in);
	return 0;
}

int cfs_inode_root(struct cfs *fs, const struct cairn_node_view *v)
{
	struct cfs_inode *root = calloc(1, sizeof(*root));

	if (!root)
		return -ENOMEM;
	root->ino = FUSE_ROOT_ID;
	root->nlookup = 1; /* never forgotten */
	root->parent = FUSE_ROOT_ID;
	root->node = fs->root;
	root->type = CAIRN_NODE_DIR;
	root->rw = fs->upper ? cfs_rw_root(fs) : NULL;
	if (fs->upper && !root->rw) {
		free(root);
		return -ENOMEM;
	}
	cfs_inode_derive(NULL, root, v);
	pthread_mutex_lock(&fs->itable_lock);
	cfs_lease_hold_locked(fs, root, fs->leases.current);
	root->next = fs->buckets[bucket_of(fs, FUSE_ROOT_ID)];
	fs->buckets[bucket_of(fs, FUSE_ROOT_ID)] = root;
	fs->ninodes++;
	pthread_mutex_unlock(&fs->itable_lock);
	return 0;
}

void cfs_inode_rebind(struct cfs *fs, struct cfs_thread *t, struct cfs_inode *in,
		      const struct cairn_id *node, const struct cairn_node_view *v)
{
	in->node = *node;
	cfs_inode_derive(t, in, v);
}

void cfs_itable_each(struct cfs *fs, void (*fn)(struct cfs_inode *in, void *arg), void *arg)
{
	pthread_mutex_lock(&fs->itable_lock);
	for (size_t i = 0; i < fs->nbuckets; i++)
		for (struct cfs_inode *in = fs->buckets[i]; in; in = in->next)
			fn(in, arg);
	pthread_mutex_unlock(&fs->itable_lock);
}

void cfs_itable_each_dir(struct cfs *fs, void (*fn)(struct cfs_inode *in, void *arg), void *arg)
{
	pthread_mutex_lock(&fs->itable_lock);
	for (size_t i = 0; i < fs->nbuckets; i++)
		for (struct cfs_inode *in = fs->buckets[i]; in; in = in->next)
			if (in->type == CAIRN_NODE_DIR)
				fn(in, arg);
	pthread_mutex_unlock(&fs->itable_lock);
}
