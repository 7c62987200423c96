/* SPDX-License-Identifier: MIT */
/*
 * switch.c - following a platform live: when its pointer moves, a mount
 * serves the new image to new lookups and opens, without a remount.
 *
 * The idea: inode numbers already say what may change. A directory is
 * (parent, name), so it keeps its number and is re-bound to the node at
 * the same path in the new tree; open directories, working directories
 * and mounts inside the tree stay where they are. Any other entry is
 * (parent, name, node), so a file whose content changed gets a new number
 * on its next lookup, while the old number keeps serving the old bytes to
 * whoever holds it (open files, mmaps, running binaries).
 *
 * The kernel is then told what changed, directory by directory: its
 * attributes and cached listing (inval_inode), and each name that was
 * added, removed or changed (expire_entry with FUSE_LL_EXPIRE_ONLY, which
 * marks the dentry for revalidation; plain invalidation would go through
 * d_invalidate and detach any mount on or below it). Negative entries
 * cached for names the new tree adds are expired the same way.
 *
 * On a writable mount, a directory with an upper part is merged again with
 * the new tree, as a fresh mount would merge it: bound to the image's
 * directory at its path where there is one, to nothing where the new tree
 * has none there (or has a file), and every name of the image's side that
 * changed is expired. A renamed (redirected) or opaque directory keeps
 * what it had: its image part never follows the platform.
 */
#include <stdio.h>

#include "fs-internal.h"
#include "image.h"
#include "platform.h"

enum {
	R_UNRESOLVED, /* not looked at yet */
	R_FOUND,      /* a directory in the new tree: new */
	R_UNKNOWN,    /* its place in the new tree cannot be told: it keeps what it serves */
	R_ABSENT,     /* its parent is in the new tree and it is not (or not as a directory) */
};

struct rebind {
	struct cfs_inode *in;
	struct cairn_id old, new;
	bool had, has; /* bound to an image directory before the switch / after it */
	int state;     /* R_* */
};

struct dirset {
	struct rebind *v;
	size_t n, cap;
	bool nomem;
};

static void collect(struct cfs_inode *in, void *arg)
{
	struct dirset *d = arg;

	/*
	 * A writable mount's directory follows the image where bound by path,
	 * and where it is the upper's alone but would merge with an image
	 * directory that appears at its path (not opaque, not renamed).
	 */
	if (in->rw && in->rw->lower != CFS_LOWER_PATH &&
	    (in->rw->lower != CFS_LOWER_NONE || in->rw->opaque || !in->rw->upper ||
	     in->rw->unlinked))
		return;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct rebind *p = realloc(d->v, cap * sizeof(*p));

		if (!p) {
			d->nomem = true;
			return;
		}
		d->v = p;
		d->cap = cap;
	}
	d->v[d->n++] = (struct rebind){ .in = in, .old = in->node,
					.had = !in->rw || in->rw->lower == CFS_LOWER_PATH };
}

static int by_ino(const void *a, const void *b)
{
	const struct rebind *x = a, *y = b;

	return x->in->ino < y->in->ino ? -1 : x->in->ino > y->in->ino;
}

static struct rebind *find(struct dirset *d, uint64_t ino)
{
	struct cfs_inode key = { .ino = ino };
	struct rebind k = { .in = &key };

	return bsearch(&k, d->v, d->n, sizeof(*d->v), by_ino);
}

/* Where directory r sits in the new tree, from its parent's place there (p: NULL for the root). */
static void resolve_one(struct cfs_thread *t, struct rebind *r, struct rebind *p,
			const struct cairn_id *root)
{
	struct cairn_node_view pv;
	struct cairn_dirent e;

	if (r->in->ino == FUSE_ROOT_ID) {
		r->new = *root;
		r->state = R_FOUND;
		return;
	}
	if (!p)
		return;
	if (p->state == R_ABSENT) {
		r->state = R_ABSENT;
		return;
	}
	if (p->state != R_FOUND || cairn_node_get(t->txn, &p->new, 0, &pv))
		return;
	if (cairn_dir_lookup(&pv, r->in->name, strlen(r->in->name), &e, NULL) ||
	    e.type != CAIRN_NODE_DIR) {
		/* gone: a read-only one keeps serving what it was (an open cwd still works) */
		r->state = R_ABSENT;
		return;
	}
	r->new = e.id;
	r->state = R_FOUND;
}

/*
 * Resolves r and its ancestors not resolved yet, top down. Iterative: the
 * chain is as deep as the directories a container nests (thousands), and
 * this runs on a control thread with a small stack. -ENOMEM leaves them
 * R_UNKNOWN (they keep what they serve).
 */
static int resolve(struct cfs_thread *t, struct dirset *d, struct rebind *r,
		   const struct cairn_id *root)
{
	struct rebind **chain = NULL;
	size_t n = 0, cap = 0;

	/* up to the first one resolved (or being resolved: no loop), or the root */
	for (struct rebind *x = r; x && !x->state; x = find(d, x->in->parent)) {
		if (n == cap) {
			size_t c = cap ? cap * 2 : 64;
			struct rebind **v = realloc(chain, c * sizeof(*v));

			if (!v) {
				free(chain);
				return -ENOMEM;
			}
			chain = v;
			cap = c;
		}
		x->state = R_UNKNOWN;
		chain[n++] = x;
		if (x->in->ino == FUSE_ROOT_ID)
			break;
	}
	while (n--)
		resolve_one(t, chain[n], chain[n]->in->ino == FUSE_ROOT_ID ? NULL :
			    find(d, chain[n]->in->parent), root);
	free(chain);
	return 0;
}

/* An inode left on the old image: the kernel is asked to drop it once unused. */
struct stale {
	uint64_t parent, ino;
	char *name;
};

/* Moving the inodes the new image serves unchanged to its lease. */
struct lease_move {
	struct cfs *fs;
	struct cfs_thread *t;
	struct dirset *d;
	struct cfs_lease *old, *new;
	struct stale *v;
	size_t n, cap;
};

/* Does the new tree show in's node at in's place (its parent re-bound)? */
static bool unchanged(struct lease_move *m, struct cfs_inode *in)
{
	struct rebind *p = find(m->d, in->parent);
	struct cairn_node_view pv;
	struct cairn_dirent e;

	if (!p || p->state != R_FOUND || !p->has || !in->name)
		return false;
	if (p->had && cairn_id_eq(&p->old, &p->new))
		return true; /* the same directory: every entry the same */
	return cairn_node_get(m->t->txn, &p->new, 0, &pv) == 0 &&
	       cairn_dir_lookup(&pv, in->name, strlen(in->name), &e, NULL) == 0 &&
	       cairn_id_eq(&e.id, &in->node);
}

static void move_lease(struct cfs_inode *in, void *arg)
{
	struct lease_move *m = arg;
	struct rebind *r;

	if (in->ino == FUSE_ROOT_ID) {
		cfs_lease_move_locked(m->fs, in, m->new);
		return;
	}
	if (in->type == CAIRN_NODE_DIR) {
		r = find(m->d, in->ino);
		if (r && r->state == R_FOUND && r->has)
			cfs_lease_move_locked(m->fs, in, m->new);
		else if (r && in->rw && !r->has)
			cfs_lease_move_locked(m->fs, in, NULL); /* the upper's alone now */
		return; /* else it keeps serving what it was */
	}
	if (!in->lease || in->lease != m->old)
		return;
	if (in->rw && (in->rw->upper || in->rw->lower != CFS_LOWER_PATH)) {
		cfs_lease_move_locked(m->fs, in, NULL); /* copied up: no longer read through the image */
		return;
	}
	if (unchanged(m, in)) {
		cfs_lease_move_locked(m->fs, in, m->new);
		return;
	}
	if (in->rw && in->rw->unlinked)
		return; /* the kernel dropped its name already: forgotten once closed */
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct stale *v = realloc(m->v, cap * sizeof(*v));

		if (!v)
			return; /* it stays leased until the kernel forgets it some other way */
		m->v = v;
		m->cap = cap;
	}
	m->v[m->n] = (struct stale){ .parent = in->parent, .ino = in->ino, .name = strdup(in->name) };
	if (m->v[m->n].name)
		m->n++;
}

/*
 * What changed between two versions of a directory: the names whose entry
 * differs. Computed once per switch request and kept in the memo, so ten
 * mounts of a platform compare each directory once, not ten times. A side
 * the image had no directory on is the zero id (an empty directory).
 */
struct dirdiff {
	struct cairn_id old, new;
	struct dirdiff *next;     /* hash chain */
	size_t n;
	uint16_t *lens;           /* n name lengths */
	char *names;              /* the names, one after another */
};

struct cfs_switch_memo {
	pthread_mutex_t lock;         /* mounts switch on several threads at once */
	struct dirdiff *buckets[1024]; /* lock */
	unsigned computed, reused;    /* lock */
};

struct cfs_switch_memo *cfs_switch_memo_new(void)
{
	struct cfs_switch_memo *m = calloc(1, sizeof(*m));

	if (m)
		pthread_mutex_init(&m->lock, NULL);
	return m;
}

void cfs_switch_memo_free(struct cfs_switch_memo *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(m->buckets); i++) {
		while (m->buckets[i]) {
			struct dirdiff *d = m->buckets[i];

			m->buckets[i] = d->next;
			free(d->lens);
			free(d->names);
			free(d);
		}
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static size_t memo_bucket(const struct cairn_id *old, const struct cairn_id *new)
{
	uint64_t a, b;

	memcpy(&a, old->b, 8);
	memcpy(&b, new->b, 8);
	return (size_t)((a ^ (b * 0x9e3779b97f4a7c15ull)) >> 54) & 1023;
}

/* The names whose entry differs between two versions of a directory (NULL without memory). */
static struct dirdiff *dir_diff(struct cfs_thread *t, struct cfs_switch_memo *m,
				const struct cairn_id *old, const struct cairn_id *new)
{
	size_t k = memo_bucket(old, new), cap = 0, used = 0;
	struct cairn_node_view a = { .type = CAIRN_NODE_DIR }, b = { .type = CAIRN_NODE_DIR };
	struct cairn_dirent ea, eb;
	struct cairn_dir_merge mg;
	struct dirdiff *d;
	int side;

	for (d = m->buckets[k]; d; d = d->next) {
		if (cairn_id_eq(&d->old, old) && cairn_id_eq(&d->new, new)) {
			m->reused++;
			return d;
		}
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->old = *old;
	d->new = *new;
	if ((!cairn_id_is_zero(old) && cairn_node_get(t->txn, old, 0, &a)) ||
	    (!cairn_id_is_zero(new) && cairn_node_get(t->txn, new, 0, &b)))
		goto done; /* nothing to compare: no name expired */
	cairn_dir_merge_init(&mg, &a, &b);
	while ((side = cairn_dir_merge_next(&mg, &ea, &eb)) > 0) {
		/*
		 * removed, added (drops a cached negative entry) or changed; a
		 * directory that stays one keeps its dentry: it is re-bound itself
		 */
		const struct cairn_dirent *e = side == CAIRN_MERGE_B ? &eb : &ea;

		if (side == CAIRN_MERGE_BOTH &&
		    (cairn_id_eq(&ea.id, &eb.id) ||
		     (ea.type == CAIRN_NODE_DIR && eb.type == CAIRN_NODE_DIR)))
			continue;
		if (d->n % 64 == 0) {
			uint16_t *l = realloc(d->lens, (d->n + 64) * sizeof(*l));

			if (!l)
				goto nomem;
			d->lens = l;
		}
		if (used + e->name_len > cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			char *p;

			while (ncap < used + e->name_len)
				ncap *= 2;
			p = realloc(d->names, ncap);
			if (!p)
				goto nomem;
			d->names = p;
			cap = ncap;
		}
		memcpy(d->names + used, e->name, e->name_len);
		used += e->name_len;
		d->lens[d->n++] = (uint16_t)e->name_len;
	}
done:
	d->next = m->buckets[k];
	m->buckets[k] = d;
	m->computed++;
	return d;
nomem:
	free(d->lens);
	free(d->names);
	free(d);
	return NULL;
}

/*
 * Expires every name whose entry differs between two versions of a
 * directory; a NULL side is an empty directory (the image had none there).
 */
static void expire_changes(struct cfs *fs, struct cfs_thread *t, struct cfs_switch_memo *m,
			   uint64_t ino, const struct cairn_id *old, const struct cairn_id *new,
			   unsigned *expired)
{
	static const struct cairn_id none;
	struct dirdiff *d;
	size_t off = 0;

	/* the memo's entries stay until the request ends: read them without the lock after */
	pthread_mutex_lock(&m->lock);
	d = dir_diff(t, m, old ? old : &none, new ? new : &none);
	pthread_mutex_unlock(&m->lock);

	if (!d) {
		/* no memory to list the changes: the whole listing is invalid already */
		cfs_log(fs, LOG_WARNING, "out of memory expiring the entries of inode %llu",
			(unsigned long long)ino);
		return;
	}
	for (size_t i = 0; i < d->n; i++) {
		fuse_lowlevel_notify_expire_entry(fs->se, ino, d->names + off, d->lens[i],
						  FUSE_LL_EXPIRE_ONLY);
		off += d->lens[i];
		(*expired)++;
	}
}

int cfs_switch(struct cfs *fs, struct cfs_switch_memo *memo, char *reply, size_t len)
{
	struct cairn_platform p;
	struct cairn_image img;
	struct dirset d = { 0 };
	struct cfs_thread t = { .fs = fs };
	struct lease_move m = { .fs = fs, .t = &t, .d = &d };
	struct cairn_node_view v;
	uint64_t from;
	unsigned rebound = 0, expired = 0;
	int ret;

	if (!fs->o->platform) {
		snprintf(reply, len, "pinned\n");
		return 0;
	}
	ret = cairn_txn_begin(fs->d->store, false, &t.txn);
	if (ret) {
		snprintf(reply, len, "error %s\n", cairn_errmsg());
		return ret;
	}
	ret = cairn_platform_get(t.txn, fs->o->platform, &p);
	if (!ret)
		ret = cairn_image_get(t.txn, &p.image, &img);
	if (ret) {
		snprintf(reply, len, "error cannot read platform '%s': %s\n", fs->o->platform,
			 ret == -ENOENT ? "gone" : cairn_errmsg());
		cairn_txn_abort(t.txn);
		return ret;
	}

	pthread_rwlock_wrlock(&fs->switch_lock);
	from = fs->generation;
	if (p.generation == fs->generation && cairn_id_eq(&p.image, &fs->image)) {
		pthread_rwlock_unlock(&fs->switch_lock);
		cairn_txn_abort(t.txn);
		snprintf(reply, len, "unchanged %llu\n", (unsigned long long)p.generation);
		return 0;
	}
	cfs_itable_each_dir(fs, collect, &d);
	if (d.nomem) {
		pthread_rwlock_unlock(&fs->switch_lock);
		cairn_txn_abort(t.txn);
		free(d.v);
		snprintf(reply, len, "error out of memory\n");
		return -ENOMEM;
	}
	qsort(d.v, d.n, sizeof(*d.v), by_ino);
	for (size_t i = 0; i < d.n; i++)
		if (resolve(&t, &d, &d.v[i], &img.root))
			break; /* out of memory: the rest keep what they serve (R_UNKNOWN) */
	for (size_t i = 0; i < d.n; i++) {
		struct rebind *r = &d.v[i];
		/* a merged directory of a writable mount: the upper's part stays either way */
		bool merged = r->in->rw && r->in->rw->upper;

		r->has = r->had;
		if (r->state == R_ABSENT && merged && r->had) {
			r->in->rw->lower = CFS_LOWER_NONE; /* the upper's alone now */
			r->has = false;
			rebound++;
			continue;
		}
		if (r->state != R_FOUND || (r->had && cairn_id_eq(&r->old, &r->new)) ||
		    cairn_node_get(t.txn, &r->new, 0, &v))
			continue;
		cfs_inode_rebind(fs, &t, r->in, &r->new, &v);
		if (r->in->rw)
			r->in->rw->lower = CFS_LOWER_PATH;
		r->has = true;
		rebound++;
	}
	/*
	 * The image left behind stays leased while inodes still read it: what
	 * the new image serves unchanged moves to the new lease, the rest
	 * (files opened before the switch) holds the old one until forgotten.
	 */
	pthread_mutex_lock(&fs->itable_lock);
	m.new = cfs_lease_get_locked(fs, &p.image);
	pthread_mutex_unlock(&fs->itable_lock);
	if (m.new) {
		m.old = fs->leases.current;
		cfs_itable_each(fs, move_lease, &m);
		pthread_mutex_lock(&fs->itable_lock);
		cfs_lease_set_current_locked(fs, m.new);
		pthread_mutex_unlock(&fs->itable_lock);
	} else {
		cfs_log(fs, LOG_WARNING, "out of memory: the old image stays leased");
	}
	fs->image = p.image;
	fs->root = img.root;
	fs->generation = p.generation;
	fs->image_nodes = img.nodes;
	fs->image_size = img.logical_size;
	pthread_rwlock_unlock(&fs->switch_lock);
	/* the upper records the image (a synced write): requests need not wait for it */
	if (fs->upper && cfs_upper_set_image(fs->upper, &p.image))
		cfs_log(fs, LOG_WARNING, "%s", cairn_errmsg());

	/* tell the kernel, outside the lock: requests may run again meanwhile */
	for (size_t i = 0; i < d.n; i++) {
		struct rebind *r = &d.v[i];

		if (r->had == r->has && (!r->has || cairn_id_eq(&r->old, &r->new)))
			continue;
		fuse_lowlevel_notify_inval_inode(fs->se, r->in->ino, 0, 0);
		expire_changes(fs, &t, memo, r->in->ino, r->had ? &r->old : NULL, r->has ? &r->new : NULL,
			       &expired);
	}
	/*
	 * An old file's name is deleted in the kernel (its inode's link count
	 * cleared; a name with a mount on it is left alone): the inode goes,
	 * and is forgotten, when its last user closes it, releasing the lease.
	 * On a writable mount its pages are dropped first (dirty ones written
	 * back: a write made before the switch copies the old file up, and the
	 * upper's file keeps the name, as had the write reached the daemon
	 * before the switch); a file not copied up is then nameless for the
	 * daemon too (cfs_rw_replaced()): a write through a descriptor opened
	 * before the switch goes to an anonymous copy, as for a deleted file,
	 * never over the new image's file at the name.
	 */
	for (size_t i = 0; i < m.n; i++) {
		bool gone = true;

		if (fs->upper) {
			fuse_lowlevel_notify_inval_inode(fs->se, m.v[i].ino, 0, 0);
			gone = cfs_rw_replaced(fs, m.v[i].ino);
		}
		if (gone)
			fuse_lowlevel_notify_delete(fs->se, m.v[i].parent, m.v[i].ino, m.v[i].name,
						    strlen(m.v[i].name));
		free(m.v[i].name);
	}
	free(m.v);
	cairn_txn_abort(t.txn);
	free(d.v);
	cfs_log(fs, LOG_INFO, "switched %s from generation %llu to %llu: %u directories re-bound, "
			      "%u entries expired",
		fs->o->platform, (unsigned long long)from, (unsigned long long)p.generation,
		rebound, expired);
	snprintf(reply, len, "switched %llu\n", (unsigned long long)p.generation);
	return 0;
}
