/* SPDX-License-Identifier: MIT */
/*
 * rw.c - the handlers of a writable mount: the image below, an upper
 * directory on the host on top (upper.h describes its format). This file
 * holds what every other rw*.c file builds on (rw-internal.h lists them):
 * inode identity, requests, resolving a name in the merged view, and the
 * attributes of what it finds.
 *
 * An inode is what the merged view shows at a name: an upper object (held
 * open as an O_PATH fd), an image node, or a directory with both. Every
 * upper operation starts from such an fd and names one entry of it with
 * the *at() calls (never following a symlink in that last name) or goes
 * through /proc/self/fd/N, which reaches exactly the object the fd holds;
 * no path string the container could have bent with a symlink is ever
 * resolved. Files are created as the calling process's uid and gid.
 *
 * Identity: an inode is found again by a key, the upper object's st_ino
 * once it has one, else its image identity (as on a read-only mount); its
 * number is the key of when it was made (probed past collisions) and stays
 * while the kernel holds it, copy-up included.
 *
 * Locks: switch_lock (read, via cfs_thread_begin) then ns_lock, held by
 * every handler that reads or changes the namespace or rw state. Data
 * reads and writes on upper files use the inode's data fd without it.
 */
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include "rw-internal.h"

/* ---- key map ---- */

static size_t kbucket(const struct cfs *fs, uint64_t key)
{
	return (size_t)(key * 0x9e3779b97f4a7c15ull >> 17) & (fs->nkbuckets - 1);
}

static struct cfs_inode *key_find_locked(struct cfs *fs, uint64_t key)
{
	for (struct cfs_inode *in = fs->kbuckets[kbucket(fs, key)]; in; in = in->rw->knext)
		if (in->rw->key == key)
			return in;
	return NULL;
}

static void key_del_locked(struct cfs *fs, struct cfs_inode *in)
{
	struct cfs_inode **pp;

	if (!in->rw->key)
		return;
	for (pp = &fs->kbuckets[kbucket(fs, in->rw->key)]; *pp; pp = &(*pp)->rw->knext) {
		if (*pp == in) {
			*pp = in->rw->knext;
			break;
		}
	}
	in->rw->key = 0;
	in->rw->knext = NULL;
}

static void key_add_locked(struct cfs *fs, struct cfs_inode *in, uint64_t key)
{
	size_t k;

	key_del_locked(fs, in);
	if (!key)
		return;
	k = kbucket(fs, key);
	in->rw->key = key;
	in->rw->knext = fs->kbuckets[k];
	fs->kbuckets[k] = in;
}

void rw_rekey(struct cfs *fs, struct cfs_inode *in, uint64_t key)
{
	pthread_mutex_lock(&fs->itable_lock);
	key_add_locked(fs, in, key);
	pthread_mutex_unlock(&fs->itable_lock);
}

void rw_unkey(struct cfs *fs, struct cfs_inode *in)
{
	rw_rekey(fs, in, 0);
}

static uint64_t nonzero(uint64_t k)
{
	return k > FUSE_ROOT_ID ? k : k + 2;
}

uint64_t rw_upper_key(uint64_t st_ino)
{
	uint8_t b[9] = { 'U' };

	memcpy(b + 1, &st_ino, 8);
	return nonzero(XXH3_64bits(b, sizeof(b)));
}

/* An image entry's key, as a read-only mount numbers it. */
static uint64_t lower_key(uint64_t parent, const char *name, size_t len,
			  const struct cairn_id *node, uint8_t type, uint32_t nlink)
{
	struct cairn_node_view v = { .type = type, .nlink = nlink };

	return cfs_inode_number(parent, name, len, node, &v);
}

struct cfs_rw *cfs_rw_root(struct cfs *fs)
{
	struct cfs_rw *rw = calloc(1, sizeof(*rw));
	struct stat st;

	if (!rw)
		return NULL;
	rw->ufd = fcntl(fs->upper->tree_fd, F_DUPFD_CLOEXEC, 0);
	rw->dfd = -1;
	rw->slot = SIZE_MAX; /* the root's fd stays: outside the budget */
	rw->lower = CFS_LOWER_PATH;
	if (rw->ufd < 0 || fstat(rw->ufd, &st) < 0) {
		if (rw->ufd >= 0)
			close(rw->ufd);
		free(rw);
		return NULL;
	}
	rw->upper = true;
	rw->upper_ino = st.st_ino;
	return rw;
}

void cfs_rw_inode_free(struct cfs *fs, struct cfs_inode *in)
{
	struct cfs_rw *rw = in->rw;

	key_del_locked(fs, in);
	rw_fds_forget_locked(fs, in);
	free(rw);
	in->rw = NULL;
}

bool cfs_rw_replaced(struct cfs *fs, uint64_t ino)
{
	struct cfs_inode *in;
	bool gone = true;

	pthread_mutex_lock(&fs->ns_lock);
	pthread_mutex_lock(&fs->itable_lock);
	in = cfs_inode_find_locked(fs, ino);
	if (in && in->rw && in->rw->upper && !in->rw->unlinked) {
		gone = false;
	} else if (in && in->rw) {
		in->rw->unlinked = true;
		key_del_locked(fs, in);
	}
	pthread_mutex_unlock(&fs->itable_lock);
	pthread_mutex_unlock(&fs->ns_lock);
	return gone;
}

/* ---- a daemon restart (handover.c) ---- */

json_object *cfs_rw_inode_save(const struct cfs_inode *in, int *fds, unsigned *nfds)
{
	const struct cfs_rw *rw = in->rw;
	json_object *o = json_object_new_object();
	int ufd = rw->ufd, dfd = rw->dfd;

	if (!o)
		return NULL;
	json_object_object_add(o, "u", json_object_new_int(ufd >= 0 ? (int)*nfds : -1));
	if (ufd >= 0)
		fds[(*nfds)++] = ufd;
	json_object_object_add(o, "d", json_object_new_int(dfd >= 0 ? (int)*nfds : -1));
	if (dfd >= 0)
		fds[(*nfds)++] = dfd;
	json_object_object_add(o, "up", json_object_new_boolean(rw->upper));
	if (rw->fh) {
		char *hex = malloc(2 * rw->fh->handle_bytes + 1);

		for (unsigned i = 0; hex && i < rw->fh->handle_bytes; i++)
			snprintf(hex + 2 * i, 3, "%02x", rw->fh->f_handle[i]);
		if (hex) {
			hex[2 * rw->fh->handle_bytes] = '\0';
			json_object_object_add(o, "fh", json_object_new_string(hex));
			json_object_object_add(o, "ft", json_object_new_int(rw->fh->handle_type));
		}
		free(hex);
	}
	json_object_object_add(o, "dv", json_object_new_boolean(rw->dev00));
	json_object_object_add(o, "l", json_object_new_int(rw->lower));
	json_object_object_add(o, "m", json_object_new_boolean(atomic_load(&rw->metacopy)));
	json_object_object_add(o, "ll", json_object_new_int64((int64_t)rw->lower_len));
	json_object_object_add(o, "o", json_object_new_boolean(rw->opaque));
	json_object_object_add(o, "x", json_object_new_boolean(rw->unlinked));
	json_object_object_add(o, "or", json_object_new_boolean(rw->orphan));
	json_object_object_add(o, "nx", json_object_new_boolean(rw->no_xattrs));
	json_object_object_add(o, "k", json_object_new_int64((int64_t)rw->key));
	json_object_object_add(o, "ui", json_object_new_int64((int64_t)rw->upper_ino));
	json_object_object_add(o, "g", json_object_new_int64(rw->seen_gen));
	return o;
}

static int64_t jint(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

/* An fd of the message by its index in o's member k (taken: -1 in fds), or -1. */
static int jfd(json_object *o, const char *k, int *fds, unsigned nfds)
{
	int64_t i = jint(o, k);
	int fd;

	if (i < 0 || (uint64_t)i >= nfds)
		return -1;
	fd = fds[i];
	fds[i] = -1;
	return fd;
}

int cfs_rw_inode_load(struct cfs *fs, struct cfs_inode *in, json_object *o, int *fds,
		      unsigned nfds)
{
	struct cfs_rw *rw = calloc(1, sizeof(*rw));

	if (!rw)
		return -ENOMEM;
	rw->ufd = jfd(o, "u", fds, nfds);
	rw->dfd = jfd(o, "d", fds, nfds);
	rw->upper = jint(o, "up") != 0;
	/* "op" (CREATE opens, from a daemon that pinned them) is ignored: no request is running */
	rw->dev00 = jint(o, "dv") != 0;
	{
		json_object *v;
		const char *hex = json_object_object_get_ex(o, "fh", &v) ? json_object_get_string(v) : NULL;
		size_t n = hex ? strlen(hex) / 2 : 0;

		if (hex && n <= MAX_HANDLE_SZ) {
			rw->fh = malloc(sizeof(*rw->fh) + n);
			if (!rw->fh) {
				free(rw);
				return -ENOMEM;
			}
			rw->fh->handle_bytes = (unsigned)n;
			rw->fh->handle_type = (int)jint(o, "ft");
			for (size_t i = 0; i < n; i++) {
				unsigned c = 0;

				sscanf(hex + 2 * i, "%2x", &c);
				rw->fh->f_handle[i] = (unsigned char)c;
			}
		}
	}
	rw->lower = (uint8_t)jint(o, "l");
	rw->metacopy = jint(o, "m") != 0;
	rw->lower_len = (uint64_t)jint(o, "ll");
	rw->opaque = jint(o, "o") != 0;
	rw->unlinked = jint(o, "x") != 0;
	rw->orphan = jint(o, "or") != 0;
	rw->no_xattrs = jint(o, "nx") != 0;
	rw->upper_ino = (uint64_t)jint(o, "ui");
	rw->seen_gen = (unsigned)jint(o, "g");
	in->rw = rw;
	key_add_locked(fs, in, (uint64_t)jint(o, "k"));
	rw_fds_adopt_locked(fs, in);
	return 0;
}

/* ---- requests ---- */

int rw_req_begin(fuse_req_t req, struct rw_req *r)
{
	int ret;

	r->fs = cfs_of(req);
	r->t = cfs_thread_begin(r->fs, &ret);
	if (!r->t)
		return ret;
	pthread_mutex_lock(&r->fs->ns_lock);
	r->fs->fds.gen++; /* the fds this request uses stay open until it ends */
	return 0;
}

void rw_req_end(struct rw_req *r)
{
	if (r->fs->upper)
		rw_fds_trim(r->fs);
	pthread_mutex_unlock(&r->fs->ns_lock);
	cfs_thread_end(r->t);
}

/* The image entry named name below directory p, if the image shows through p. */
static int lower_at(struct rw_req *r, struct cfs_inode *p, const char *name, size_t len,
		    struct cairn_dirent *e)
{
	struct cairn_node_view pv;
	int ret;

	if (p->rw->lower == CFS_LOWER_NONE || p->type != CAIRN_NODE_DIR)
		return -ENOENT;
	ret = cfs_node_get(r->fs, r->t, &p->node, &pv);
	if (ret)
		return ret;
	if (pv.type != CAIRN_NODE_DIR)
		return -ENOENT;
	ret = cairn_dir_lookup(&pv, name, len, e, NULL);
	return ret == -EUCLEAN ? -EIO : ret;
}

void rw_entry_release(struct rw_entry *e)
{
	if (e->ufd >= 0)
		close(e->ufd);
	e->ufd = -1;
}

uint8_t rw_st_type(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return CAIRN_NODE_REG;
	case S_IFDIR: return CAIRN_NODE_DIR;
	case S_IFLNK: return CAIRN_NODE_LNK;
	case S_IFCHR: return CAIRN_NODE_CHR;
	case S_IFBLK: return CAIRN_NODE_BLK;
	case S_IFIFO: return CAIRN_NODE_FIFO;
	default: return CAIRN_NODE_SOCK;
	}
}

/*
 * Resolves name in directory p. 0 with e filled (e->ufd to be released),
 * -ENOENT when nothing shows there, or another -errno.
 */
int rw_resolve(struct rw_req *r, struct cfs_inode *p, const char *name, struct rw_entry *e)
{
	size_t len = strlen(name);
	int ret;

	memset(e, 0, sizeof(*e));
	e->ufd = -1;
	if (len > CAIRN_NAME_MAX)
		return -ENAMETOOLONG;
	if (p->type != CAIRN_NODE_DIR)
		return -ENOTDIR;
	rw_refresh_upper(r, p, 0);
	ret = lower_at(r, p, name, len, &e->lower);
	if (ret && ret != -ENOENT)
		return ret;
	e->below = ret == 0;
	if (p->rw->upper) {
		e->ufd = openat(rw_ufd(r->fs, p), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (e->ufd < 0 && errno != ENOENT)
			return -errno;
	}
	if (e->ufd >= 0) {
		struct cfs_marks m;
		bool none;

		ret = fstat(e->ufd, &e->st) < 0 ? -errno : cfs_upper_marks_read(e->ufd, &m, &none);
		if (ret) {
			rw_entry_release(e);
			return ret;
		}
		if (cfs_is_whiteout(&e->st)) {
			e->whiteout = true;
			rw_entry_release(e);
			return -ENOENT;
		}
		e->type = rw_st_type(e->st.st_mode);
		e->no_xattrs = none;
		if (e->type == CAIRN_NODE_REG && m.dev00) {
			e->type = CAIRN_NODE_CHR; /* an image's char device 0/0, escaped */
			e->dev00 = true;
		} else if (e->type == CAIRN_NODE_DIR) {
			e->opaque = m.opaque;
			if (m.has_redirect) {
				e->kind = CFS_LOWER_PINNED;
				e->node = m.redirect;
			} else if (!m.opaque && e->below && e->lower.type == CAIRN_NODE_DIR) {
				e->kind = CFS_LOWER_PATH;
				e->node = e->lower.id;
			}
		} else if (e->type == CAIRN_NODE_REG && m.has_origin) {
			e->kind = CFS_LOWER_PINNED;
			e->node = m.origin;
			e->metacopy = m.metacopy;
			e->lower_len = m.lower_len;
		}
	} else if (e->below) {
		e->kind = CFS_LOWER_PATH;
		e->node = e->lower.id;
		e->type = e->lower.type;
	} else {
		return -ENOENT;
	}
	if (e->kind != CFS_LOWER_NONE) {
		ret = cfs_node_get(r->fs, r->t, &e->node, &e->v);
		if (ret) {
			rw_entry_release(e);
			return ret;
		}
		if (e->ufd >= 0 && e->v.type != e->type) {
			e->kind = CFS_LOWER_NONE; /* a marker that does not fit: ignore it */
			e->metacopy = false;
		}
		if (e->metacopy && e->lower_len > e->v.size)
			e->lower_len = e->v.size;
	}
	return 0;
}

/* The key e has for an inode in p named name. */
uint64_t rw_entry_key(struct cfs_inode *p, const char *name, const struct rw_entry *e)
{
	if (e->ufd >= 0)
		return rw_upper_key(e->st.st_ino);
	return lower_key(p->ino, name, strlen(name), &e->node, e->type, e->v.nlink);
}

/*
 * Finds or makes the inode for e (at name in p) and takes a kernel
 * reference. e->ufd is taken over or closed.
 */
struct cfs_inode *rw_entry_ref(struct rw_req *r, struct cfs_inode *p, const char *name,
			       struct rw_entry *e)
{
	struct cfs *fs = r->fs;
	uint64_t key = rw_entry_key(p, name, e);
	struct cfs_inode *in;

	pthread_mutex_lock(&fs->itable_lock);
	in = key_find_locked(fs, key);
	if (!in && e->ufd >= 0 && e->below && e->kind != CFS_LOWER_NONE) {
		/* made when it was only the image's and copied up since (by another name) */
		uint64_t lk = lower_key(p->ino, name, strlen(name), &e->lower.id, e->lower.type,
					e->kind == CFS_LOWER_PATH ? e->v.nlink : 1);
		struct cfs_inode *old = key_find_locked(fs, lk);

		if (old && !old->rw->upper && old->type == e->type) {
			in = old;
			rw_install_locked(fs, old, e->ufd, e->st.st_ino);
			e->ufd = -1;
			old->rw->metacopy = e->metacopy;
			old->rw->lower_len = e->lower_len;
			old->rw->no_xattrs = e->no_xattrs;
			old->rw->dev00 = e->dev00;
			key_add_locked(fs, old, key);
		}
	}
	if (in) {
		in->nlookup++;
		pthread_mutex_unlock(&fs->itable_lock);
		rw_entry_release(e);
		rw_take_handle(fs, in);
		return in;
	}
	pthread_mutex_unlock(&fs->itable_lock);

	in = calloc(1, sizeof(*in));
	if (in)
		in->rw = calloc(1, sizeof(*in->rw));
	if (!in || !in->rw || !(in->name = strdup(name))) {
		if (in)
			free(in->rw);
		free(in);
		rw_entry_release(e);
		return NULL;
	}
	in->parent = p->ino;
	in->name_hash = XXH3_64bits(name, strlen(name));
	in->type = e->type;
	in->node = e->node;
	in->rw->ufd = -1;
	in->rw->dfd = -1;
	in->rw->slot = SIZE_MAX;
	in->rw->lower = e->kind;
	in->rw->metacopy = e->metacopy;
	in->rw->lower_len = e->lower_len;
	in->rw->opaque = e->opaque;
	in->rw->no_xattrs = e->ufd >= 0 ? e->no_xattrs : e->v.nxattr == 0;
	in->rw->dev00 = e->dev00;
	if (e->kind != CFS_LOWER_NONE)
		cfs_inode_derive(r->t, in, &e->v);
	pthread_mutex_lock(&fs->itable_lock);
	if (e->ufd >= 0)
		rw_install_locked(fs, in, e->ufd, e->st.st_ino);
	e->ufd = -1;
	cfs_inode_insert_locked(fs, in, key);
	in->nlookup = 1;
	key_add_locked(fs, in, key);
	/* what the image shows at a path is read from the tree its directory reads */
	cfs_lease_hold_locked(fs, in, e->kind == CFS_LOWER_PATH ? p->lease : NULL);
	pthread_mutex_unlock(&fs->itable_lock);
	rw_take_handle(fs, in);
	return in;
}

/* ---- attributes ---- */

/* Subdirectories of a merged directory, for its link count. */
static nlink_t merged_nlink(struct rw_req *r, struct cfs_inode *in, const struct stat *ust)
{
	struct cairn_node_view v;
	nlink_t n = ust->st_nlink;

	if (in->rw->lower == CFS_LOWER_NONE || cfs_node_get(r->fs, r->t, &in->node, &v))
		return n;
	for (uint32_t i = 0; i < v.nentries; i++) {
		struct cairn_dirent d;
		char name[CAIRN_NAME_MAX + 1];
		struct stat st;

		if (cairn_dir_entry(&v, i, &d) || d.type != CAIRN_NODE_DIR)
			continue;
		memcpy(name, d.name, d.name_len);
		name[d.name_len] = '\0';
		if (fstatat(rw_ufd(r->fs, in), name, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
			n++;
	}
	return n;
}

int rw_inode_stat(struct rw_req *r, struct cfs_inode *in, struct stat *st)
{
	struct cairn_node_view v;
	int ret;

	if (in->rw->upper) {
		if (fstat(rw_ufd(r->fs, in), st) < 0)
			return -errno;
		st->st_ino = in->ino;
		st->st_dev = 0;
		if (in->type == CAIRN_NODE_DIR) {
			st->st_nlink = merged_nlink(r, in, st);
		} else if (in->rw->metacopy) {
			st->st_blocks = (blkcnt_t)in->blocks;
		} else if (in->rw->dev00) {
			st->st_mode = S_IFCHR | (st->st_mode & 07777);
			st->st_rdev = 0;
			st->st_size = 0;
			st->st_blocks = 0;
		}
		if (in->rw->unlinked)
			st->st_nlink = 0; /* its orphan name in work/ is none of the container's */
		return 0;
	}
	ret = cfs_node_get(r->fs, r->t, &in->node, &v);
	if (ret)
		return ret;
	cfs_fill_stat(in, &v, st);
	if (in->rw->unlinked)
		st->st_nlink = 0;
	return 0;
}

void rw_reply_entry(fuse_req_t req, struct rw_req *r, struct cfs_inode *in)
{
	struct stat st;
	int ret = rw_inode_stat(r, in, &st);

	if (ret) {
		cfs_inode_forget(r->fs, in->ino, 1);
		rw_req_end(r);
		fuse_reply_err(req, -ret);
		return;
	}
	rw_req_end(r);
	cfs_reply_entry(req, r->fs, in, &st);
}

static void rw_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rw_req r;
	struct cfs_inode *p, *in;
	struct rw_entry e;
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	p = cfs_inode_find(r.fs, parent);
	ret = p ? rw_resolve(&r, p, name, &e) : -ESTALE;
	if (ret == -ENOENT) {
		/*
		 * Cached like a positive entry: every name the merged view gains
		 * comes through this mount, where the kernel drops the negative
		 * entry itself (create, mkdir, link, rename), except those of a
		 * live switch, which expires each name its new image adds in the
		 * directories that merge with it (switch.c).
		 */
		struct fuse_entry_param ne = { .entry_timeout = r.fs->timeout };

		rw_req_end(&r);
		fuse_reply_entry(req, &ne);
		return;
	}
	if (ret) {
		rw_req_end(&r);
		fuse_reply_err(req, -ret);
		return;
	}
	in = rw_entry_ref(&r, p, name, &e);
	if (!in) {
		rw_req_end(&r);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rw_reply_entry(req, &r, in);
}

static void rw_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rw_req r;
	struct cfs_inode *in;
	struct stat st;
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
	ret = in ? rw_inode_stat(&r, in, &st) : -ESTALE;
	rw_req_end(&r);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, r.fs->timeout);
}


struct cfs_inode *rw_inode_at(struct rw_req *r, struct cfs_inode *p, const char *name,
			      struct rw_entry *e)
{
	uint64_t key = rw_entry_key(p, name, e);
	struct cfs_inode *in;

	pthread_mutex_lock(&r->fs->itable_lock);
	in = key_find_locked(r->fs, key);
	pthread_mutex_unlock(&r->fs->itable_lock);
	return in;
}


static void rw_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct cfs *fs = cfs_of(req);
	struct statvfs st;

	if (fstatvfs(fs->upper->dir_fd, &st) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	st.f_namemax = CAIRN_NAME_MAX;
	fuse_reply_statfs(req, &st);
}

static void rw_init(void *userdata, struct fuse_conn_info *conn)
{
	cfs_init(userdata, conn);
	/* listings change: the kernel asks, and always for everything (opens: see rw_open()) */
	conn->want &= ~(FUSE_CAP_NO_OPENDIR_SUPPORT | FUSE_CAP_READDIRPLUS_AUTO);
	/* no splicing (cfs_init() says why) */
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	if (conn->capable & FUSE_CAP_HANDLE_KILLPRIV)
		conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	conn->max_write = CFS_MAX_READ;
}

const struct fuse_lowlevel_ops cfs_rw_ops = {
	.init = rw_init,
	.lookup = rw_lookup,
	.forget = cfs_forget,
	.forget_multi = cfs_forget_multi,
	.getattr = rw_getattr,
	.setattr = rw_setattr,
	.readlink = rw_readlink,
	.mknod = rw_mknod,
	.mkdir = rw_mkdir,
	.unlink = rw_unlink,
	.rmdir = rw_rmdir,
	.symlink = rw_symlink,
	.rename = rw_rename,
	.link = rw_link,
	.open = rw_open,
	.read = rw_read,
	.write_buf = rw_write_buf,
	/*
	 * No .flush: answered ENOSYS once (by libfuse), the kernel sends no
	 * FLUSH on any later close, a round trip saved per close(). Nothing
	 * is buffered here, and POSIX locks are the kernel's.
	 */
	.release = rw_release,
	.fsync = rw_fsync,
	.opendir = rw_opendir,
	.readdir = rw_readdir,
	.readdirplus = rw_readdirplus,
	.releasedir = rw_releasedir,
	.fsyncdir = rw_fsyncdir,
	.statfs = rw_statfs,
	.setxattr = rw_setxattr,
	.getxattr = rw_getxattr,
	.listxattr = rw_listxattr,
	.removexattr = rw_removexattr,
	.create = rw_create,
	.fallocate = rw_fallocate,
	.lseek = rw_lseek,
};
