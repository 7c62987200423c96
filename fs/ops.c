/* SPDX-License-Identifier: MIT */
/*
 * ops.c - the FUSE request handlers of a read-only image mount.
 *
 * Every handler takes this thread's read transaction (renewed for the
 * request, reset when it is done, so LMDB never holds an old snapshot
 * between requests), reads nodes in place from the map, and replies once.
 * Functions return 0 or -errno; a handler converts exactly once with
 * fuse_reply_err(req, -ret).
 *
 * The image never changes under a mount, so entries and attributes are
 * valid for a long time and the kernel's dentry, attribute, page and
 * readdir caches answer repeats without a round trip. Open and opendir
 * answer ENOSYS: the kernel then stops sending them (and flush and
 * release) and keeps its caches across opens.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/sysmacros.h>
#include <syslog.h>

#include "fs-internal.h"

/* a burst of lines a mount may log at once, then one a second (struct cfs's log_tat) */
#define CFS_LOG_BURST 20
#define CFS_LOG_EVERY_NS 1000000000LL

/* May the mount log one more line now? (a GCRA: critical lines always may) */
static bool log_may(struct cfs *fs, int prio)
{
	int64_t now = cairn_now_ns(), tat = atomic_load(&fs->log_tat), next;

	if (prio <= LOG_CRIT)
		return true;
	do {
		if (tat - now > (CFS_LOG_BURST - 1) * CFS_LOG_EVERY_NS) {
			atomic_fetch_add(&fs->log_dropped, 1);
			return false;
		}
		next = (tat > now ? tat : now) + CFS_LOG_EVERY_NS;
	} while (!atomic_compare_exchange_weak(&fs->log_tat, &tat, next));
	return true;
}

void cfs_log(struct cfs *fs, int prio, const char *fmt, ...)
{
	char msg[1024], dropped[96] = "";
	uint64_t n;
	va_list ap;

	if (!log_may(fs, prio))
		return;
	n = atomic_exchange(&fs->log_dropped, 0);
	if (n)
		snprintf(dropped, sizeof(dropped), " (%llu lines before this one not logged: too many)",
			 (unsigned long long)n);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (fs->d->foreground)
		fprintf(stderr, "cairn[%s]: %s%s\n", fs->o->mountpoint, msg, dropped);
	else
		syslog(prio, "%s %s: %s%s", fs->id, fs->o->mountpoint, msg, dropped);
}

void cfs_thread_free(void *p)
{
	struct cfs_thread *t = p;

	if (!t)
		return;
	cairn_txn_abort(t->txn);
	cairn_zctx_release(&t->z);
	free(t);
}

/*
 * The kernel's read-ahead window for a FUSE mount is the smaller of what
 * the daemon asks at INIT and its 128 KiB default; as root the daemon
 * raises the connection's bdi window itself, once INIT is done (before the
 * first lookup, so files opened later get the larger window). Large
 * sequential reads then arrive as 1 MiB requests, several in flight,
 * decoded on several threads. The connection's number comes with the
 * mount (the command that mounted read it from its mountinfo).
 */
static void raise_readahead(struct cfs *fs)
{
	char path[96];
	bool expected = false;
	int fd;

	if (!atomic_compare_exchange_strong(&fs->readahead_set, &expected, true) || !fs->o->conn)
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/0:%u/read_ahead_kb", fs->o->conn);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "4096", 4) != 4)
		cfs_log(fs, LOG_INFO, "cannot raise the read-ahead window: %s", strerror(errno));
	close(fd);
}

struct cfs_thread *cfs_thread_begin(struct cfs *fs, int *err)
{
	struct cfs_thread *t = pthread_getspecific(fs->d->thread_key);
	int ret;

	/* any request but INIT comes after INIT's reply: the kernel has its window */
	if (!atomic_load_explicit(&fs->readahead_set, memory_order_relaxed))
		raise_readahead(fs);
	pthread_rwlock_rdlock(&fs->switch_lock);
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t) {
			*err = -ENOMEM;
			return NULL;
		}
		ret = cairn_txn_begin(fs->d->store, false, &t->txn);
		if (ret) {
			pthread_rwlock_unlock(&fs->switch_lock);
			free(t);
			cfs_log(fs, LOG_ERR, "cannot begin a read transaction: %s", cairn_errmsg());
			*err = -EIO;
			return NULL;
		}
		t->fs = fs;
		pthread_setspecific(fs->d->thread_key, t);
		return t;
	}
	t->fs = fs; /* the thread serves every mount: this request's */
	ret = cairn_txn_renew(t->txn);
	if (ret) {
		pthread_rwlock_unlock(&fs->switch_lock);
		cfs_log(fs, LOG_ERR, "cannot renew a read transaction: %s", cairn_errmsg());
		*err = -EIO;
		return NULL;
	}
	return t;
}

void cfs_thread_end(struct cfs_thread *t)
{
	cairn_txn_reset(t->txn);
	pthread_rwlock_unlock(&t->fs->switch_lock);
}

/* A node the image names must be there: anything else is damage, so EIO. */
int cfs_node_get(struct cfs *fs, struct cfs_thread *t, const struct cairn_id *id,
		 struct cairn_node_view *v)
{
	int ret = cairn_node_get(t->txn, id, 0, v);

	if (ret) {
		cfs_log(fs, LOG_ERR, "%s", cairn_errmsg());
		atomic_fetch_add(&fs->eio, 1);
		return -EIO;
	}
	return 0;
}

void cfs_fill_stat(const struct cfs_inode *in, const struct cairn_node_view *v, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_mode = cairn_node_st_mode(v);
	st->st_nlink = v->type == CAIRN_NODE_DIR ? in->dir_nlink : v->nlink;
	st->st_uid = v->uid;
	st->st_gid = v->gid;
	st->st_blksize = CFS_BLKSIZE;
	st->st_blocks = (blkcnt_t)in->blocks;
	switch (v->type) {
	case CAIRN_NODE_REG:
		st->st_size = (off_t)v->size;
		break;
	case CAIRN_NODE_LNK:
		st->st_size = (off_t)v->target_len;
		break;
	case CAIRN_NODE_DIR:
		st->st_size = (off_t)in->blocks * 512;
		break;
	case CAIRN_NODE_CHR:
	case CAIRN_NODE_BLK:
		st->st_rdev = makedev(v->major, v->minor);
		break;
	default:
		break;
	}
	st->st_mtim.tv_sec = v->mtime_sec;
	st->st_mtim.tv_nsec = v->mtime_nsec;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

void cfs_init(void *userdata, struct fuse_conn_info *conn)
{
	/* the kernel keeps page and readdir caches with no open round trips */
	if (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT)
		conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
	if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT)
		conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_EXPIRE_ONLY)
		conn->want |= FUSE_CAP_EXPIRE_ONLY; /* a live switch expires, never d_invalidates */
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL; /* ACLs in the image are enforced */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	conn->max_readahead = 4u << 20;
	conn->max_read = CFS_MAX_READ; /* must match the max_read mount option */
	/*
	 * Spliced requests need a pipe per thread and session, which libfuse
	 * frees only in the thread that ends the session: with one pool of
	 * threads over many sessions they would pile up (and an isolated
	 * daemon's other workers leak theirs at exit). Copy instead.
	 */
	conn->want &= ~FUSE_CAP_SPLICE_READ;
}

void cfs_reply_entry(fuse_req_t req, struct cfs *fs, struct cfs_inode *in,
		     const struct stat *attr)
{
	struct fuse_entry_param e = { 0 };

	e.ino = in->ino;
	e.attr_timeout = fs->timeout;
	e.entry_timeout = fs->timeout;
	e.attr = *attr;
	if (fuse_reply_entry(req, &e) == -ENOENT)
		cfs_inode_forget(fs, in->ino, 1); /* the request was interrupted */
}

void cfs_reply_xattr(fuse_req_t req, const void *buf, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, len);
}

/* Looks name up in directory parent; fills the child's id and node. */
static int lookup_child(struct cfs *fs, struct cfs_thread *t, struct cfs_inode *parent,
			const char *name, size_t len, struct cairn_id *id, struct cairn_node_view *v)
{
	struct cairn_node_view pv;
	struct cairn_dirent e;
	int ret;

	if (len > CAIRN_NAME_MAX)
		return -ENAMETOOLONG;
	ret = cfs_node_get(fs, t, &parent->node, &pv);
	if (ret)
		return ret;
	if (pv.type != CAIRN_NODE_DIR)
		return -ENOTDIR;
	ret = cairn_dir_lookup(&pv, name, len, &e, NULL);
	if (ret == -EUCLEAN) {
		atomic_fetch_add(&fs->eio, 1);
		return -EIO;
	}
	if (ret)
		return ret;
	*id = e.id;
	return cfs_node_get(fs, t, id, v);
}

static void cfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cfs *fs = cfs_of(req);
	struct cfs_inode *p = cfs_inode_find(fs, parent), *in;
	struct cfs_thread *t;
	struct cairn_node_view v;
	struct cairn_id id;
	struct stat st;
	size_t len = strlen(name);
	int ret;

	if (!p) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	t = cfs_thread_begin(fs, &ret);
	if (!t) {
		fuse_reply_err(req, -ret);
		return;
	}
	ret = lookup_child(fs, t, p, name, len, &id, &v);
	if (ret == -ENOENT) {
		/* a negative entry the kernel may cache as long as a positive one */
		struct fuse_entry_param e = { .entry_timeout = fs->timeout };

		cfs_thread_end(t);
		fuse_reply_entry(req, &e);
		return;
	}
	if (ret) {
		cfs_thread_end(t);
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_ref(fs, t, parent, name, len, &id, &v);
	if (!in) {
		cfs_thread_end(t);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	cfs_fill_stat(in, &v, &st);
	cfs_reply_entry(req, fs, in, &st);
	cfs_thread_end(t);
}

void cfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct cfs *fs = cfs_of(req);

	/* a switch walks the table: it must not lose an inode under it */
	pthread_rwlock_rdlock(&fs->switch_lock);
	cfs_inode_forget(fs, ino, nlookup);
	pthread_rwlock_unlock(&fs->switch_lock);
	fuse_reply_none(req);
	cfs_leases_publish(fs); /* the last inode of an old image may have gone */
}

void cfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct cfs *fs = cfs_of(req);

	pthread_rwlock_rdlock(&fs->switch_lock);
	for (size_t i = 0; i < count; i++)
		cfs_inode_forget(fs, forgets[i].ino, forgets[i].nlookup);
	pthread_rwlock_unlock(&fs->switch_lock);
	fuse_reply_none(req);
	cfs_leases_publish(fs);
}

/* Begins a request on an inode: the inode, this thread, and its node. */
static int begin(fuse_req_t req, fuse_ino_t ino, struct cfs_inode **in, struct cfs_thread **t,
		 struct cairn_node_view *v)
{
	struct cfs *fs = cfs_of(req);
	int ret;

	*in = cfs_inode_find(fs, ino);
	if (!*in)
		return -ESTALE;
	*t = cfs_thread_begin(fs, &ret);
	if (!*t)
		return ret;
	ret = cfs_node_get(fs, *t, &(*in)->node, v);
	if (ret) {
		cfs_thread_end(*t);
		*t = NULL;
	}
	return ret;
}

static void cfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs *fs = cfs_of(req);
	struct cfs_inode *in;
	struct cfs_thread *t;
	struct cairn_node_view v;
	struct stat st;
	int ret = begin(req, ino, &in, &t, &v);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	cfs_fill_stat(in, &v, &st);
	cfs_thread_end(t);
	fuse_reply_attr(req, &st, fs->timeout);
}

static void cfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct cfs_inode *in;
	struct cfs_thread *t;
	struct cairn_node_view v;
	char target[CAIRN_SYMLINK_MAX + 1];
	int ret = begin(req, ino, &in, &t, &v);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (v.type != CAIRN_NODE_LNK) {
		cfs_thread_end(t);
		fuse_reply_err(req, EINVAL);
		return;
	}
	memcpy(target, v.target, v.target_len);
	target[v.target_len] = '\0';
	cfs_thread_end(t);
	fuse_reply_readlink(req, target);
}

/* ENOSYS makes the kernel stop sending opens: see the file comment. */
static void cfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fuse_reply_err(req, ENOSYS);
}

static void cfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, ENOSYS);
}

size_t cfs_readdir_fill(fuse_req_t req, struct cfs *fs, const struct cfs_inode *in, char *buf,
			size_t size, off_t off, bool plus, uint64_t count, cfs_dirent_fn *fn,
			void *arg, int *err)
{
	size_t rem = size;

	*err = 0;
	for (uint64_t pos = (uint64_t)off; pos < 2 + count; pos++) {
		struct fuse_entry_param e = { 0 };
		struct cfs_inode *child = NULL;
		char name[CAIRN_NAME_MAX + 1], *p = buf + size - rem;
		size_t n;

		if (pos < 2) {
			strcpy(name, pos == 0 ? "." : "..");
			e.attr.st_ino = pos == 0 || in->ino == FUSE_ROOT_ID ? in->ino : in->parent;
			e.attr.st_mode = S_IFDIR;
		} else {
			int ret = fn(arg, pos - 2, plus, name, &e, &child);

			if (ret > 0)
				continue;
			if (ret < 0) {
				*err = ret;
				break;
			}
		}
		if (plus)
			n = fuse_add_direntry_plus(req, p, rem, name, &e, (off_t)pos + 1);
		else
			n = fuse_add_direntry(req, p, rem, name, &e.attr, (off_t)pos + 1);
		if (n > rem) {
			if (child)
				cfs_inode_forget(fs, child->ino, 1); /* not sent: no reference */
			break;
		}
		rem -= n;
	}
	return size - rem;
}

/* An image directory being listed. */
struct ro_dir {
	struct cfs *fs;
	struct cfs_thread *t;
	const struct cfs_inode *in;
	const struct cairn_node_view *v;
};

static int ro_dirent(void *arg, uint64_t i, bool plus, char *name, struct fuse_entry_param *e,
		     struct cfs_inode **child)
{
	struct ro_dir *d = arg;
	struct cairn_node_view cv;
	struct cairn_dirent de;
	int ret;

	if (cairn_dir_entry(d->v, (uint32_t)i, &de))
		return -EIO;
	memcpy(name, de.name, de.name_len);
	name[de.name_len] = '\0';
	ret = cfs_node_get(d->fs, d->t, &de.id, &cv);
	if (ret)
		return ret;
	if (!plus) {
		/* an inode number without a reference: derived the same way */
		e->attr.st_ino = cfs_inode_number(d->in->ino, de.name, de.name_len, &de.id, &cv);
		e->attr.st_mode = cairn_type_st_mode(de.type);
		return 0;
	}
	*child = cfs_inode_ref(d->fs, d->t, d->in->ino, de.name, de.name_len, &de.id, &cv);
	if (!*child)
		return -ENOMEM;
	e->ino = (*child)->ino;
	e->attr_timeout = e->entry_timeout = d->fs->timeout;
	cfs_fill_stat(*child, &cv, &e->attr);
	return 0;
}

/*
 * readdir and readdirplus. The directory never changes, so an offset (a
 * position) stays valid forever, on directories of any size.
 */
static void readdir_image(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct cfs *fs = cfs_of(req);
	struct cfs_inode *in;
	struct cfs_thread *t;
	struct cairn_node_view v;
	struct ro_dir d;
	char *buf;
	size_t len;
	int ret = begin(req, ino, &in, &t, &v);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (v.type != CAIRN_NODE_DIR) {
		cfs_thread_end(t);
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (size > CFS_MAX_READ)
		size = CFS_MAX_READ;
	buf = malloc(size);
	if (!buf) {
		cfs_thread_end(t);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d = (struct ro_dir){ .fs = fs, .t = t, .in = in, .v = &v };
	len = cfs_readdir_fill(req, fs, in, buf, size, off, plus, v.nentries, ro_dirent, &d, &ret);
	cfs_thread_end(t);
	if (ret && len == 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

static void cfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	readdir_image(req, ino, size, off, false);
}

static void cfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			    struct fuse_file_info *fi)
{
	readdir_image(req, ino, size, off, true);
}

void cfs_read_image(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct cfs *fs = cfs_of(req);
	struct cfs_chunk **held = NULL;
	struct iovec *iov = NULL;
	int niov = 0;
	struct cairn_content_view cv;
	struct cfs_inode *in;
	struct cfs_thread *t;
	struct cairn_node_view v;
	struct cairn_id next_id;
	bool prefetch = false, sequential;
	int64_t hint_at = -1; /* the last extent of this read that a remote held */
	unsigned nheld = 0;
	uint64_t pos, end;
	uint32_t i, first, pieces;
	int ret = begin(req, ino, &in, &t, &v);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (v.type != CAIRN_NODE_REG) {
		cfs_thread_end(t);
		fuse_reply_err(req, v.type == CAIRN_NODE_DIR ? EISDIR : EINVAL);
		return;
	}
	if (size > CFS_MAX_READ)
		size = CFS_MAX_READ;
	pos = (uint64_t)off;
	end = pos + size < v.size ? pos + size : v.size;
	/* decode ahead only for sequential readers: random ones would waste it */
	sequential = pos == 0 || atomic_exchange(&in->read_end, end) == pos;
	if (pos == 0)
		atomic_store(&in->read_end, end);
	if (pos >= end) {
		cfs_thread_end(t);
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	ret = cairn_file_content(t->txn, &v, 0, &cv);
	if (ret) {
		cfs_log(fs, LOG_ERR, "%s", cairn_errmsg());
		cfs_thread_end(t);
		fuse_reply_err(req, EIO);
		return;
	}
	first = cairn_content_find(&cv, pos);
	pieces = cairn_content_find(&cv, end - 1) - first + 1;
	iov = calloc(pieces, sizeof(*iov));
	held = calloc(pieces, sizeof(*held));
	if (!iov || !held) {
		free(iov);
		free(held);
		cfs_thread_end(t);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (i = first; pos < end && i < cv.count; i++) {
		struct iovec *b = &iov[niov];
		struct cairn_extent e;
		uint64_t n;

		cairn_content_extent(&cv, i, &e);
		if (e.end <= pos)
			continue;
		n = (e.end < end ? e.end : end) - pos;
		if (e.hole) {
			b->iov_base = fs->d->zeros;
		} else {
			struct cfs_chunk *ch = cfs_chunk_get(fs, t, &e.id, false, &ret);

			if (!ch)
				break;
			if ((uint64_t)ch->len != e.end - e.start) {
				cfs_log(fs, LOG_ERR, "a chunk's length disagrees with its extent list");
				cfs_chunk_unref(fs->d->cache, ch);
				ret = -EIO;
				break;
			}
			held[nheld++] = ch;
			b->iov_base = ch->data + (pos - e.start);
			if (t->fetched) {
				/* a lazy chunk: this read's next ones are fetched meanwhile */
				if (hint_at < 0)
					cfs_chunks_hint(t, &cv, i);
				hint_at = i;
			}
			/* reading into the last part of a chunk: the next one is likely next */
			if (sequential && pos + n == e.end && e.end < v.size && i + 1 < cv.count) {
				struct cairn_extent ne;

				cairn_content_extent(&cv, i + 1, &ne);
				if (!ne.hole && !cfs_cache_contains(fs->d->cache, &ne.id)) {
					next_id = ne.id;
					prefetch = true;
				}
			}
		}
		b->iov_len = (size_t)n;
		niov++;
		pos += n;
	}
	if (ret || niov == 0) {
		/*
		 * Never a short read on an error: the kernel would take it for the
		 * end of the file and shrink the file's size.
		 */
		fuse_reply_err(req, ret ? -ret : EIO);
	} else {
		/* one writev of the cached buffers: no copy on our side */
		fuse_reply_iov(req, iov, niov);
		atomic_fetch_add(&fs->reads, 1);
	}
	for (unsigned k = 0; k < nheld; k++)
		cfs_chunk_unref(fs->d->cache, held[k]);
	/* a sequential reader of lazy chunks: what it reads next, from its new end */
	if (sequential && hint_at >= 0 && niov)
		cfs_chunks_hint(t, &cv, (uint32_t)hint_at);
	/* decode ahead after replying: the reader is already on its way */
	if (prefetch && niov) {
		struct cfs_chunk *ch = cfs_chunk_get(fs, t, &next_id, true, &ret);

		if (ch) {
			cfs_chunk_unref(fs->d->cache, ch);
			atomic_fetch_add(&fs->prefetches, 1);
		}
	}
	free(iov);
	free(held);
	cfs_thread_end(t);
}

void cfs_lseek_image(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct cairn_content_view cv;
	struct cfs_inode *in;
	struct cfs_thread *t;
	struct cairn_node_view v;
	uint64_t pos = (uint64_t)off;
	off_t result = -1;
	int ret = begin(req, ino, &in, &t, &v);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		cfs_thread_end(t);
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (v.type != CAIRN_NODE_REG || off < 0 || pos >= v.size) {
		cfs_thread_end(t);
		fuse_reply_err(req, ENXIO);
		return;
	}
	ret = cairn_file_content(t->txn, &v, 0, &cv);
	if (ret) {
		cfs_thread_end(t);
		fuse_reply_err(req, EIO);
		return;
	}
	for (uint32_t i = cairn_content_find(&cv, pos); i < cv.count; i++) {
		struct cairn_extent e;

		cairn_content_extent(&cv, i, &e);
		if (e.end <= pos)
			continue;
		if (whence == SEEK_DATA && !e.hole) {
			result = (off_t)(e.start > pos ? e.start : pos);
			break;
		}
		if (whence == SEEK_HOLE && e.hole) {
			result = (off_t)(e.start > pos ? e.start : pos);
			break;
		}
	}
	if (result < 0 && whence == SEEK_HOLE)
		result = (off_t)v.size; /* the implicit hole at the end */
	cfs_thread_end(t);
	if (result < 0)
		fuse_reply_err(req, ENXIO);
	else
		fuse_reply_lseek(req, result);
}

static void cfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct cfs_inode *in;
	struct cfs_thread *t;
	struct cairn_node_view v;
	struct cairn_xattr x;
	int ret = begin(req, ino, &in, &t, &v);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	ret = cairn_xattr_get(&v, name, &x);
	if (ret) {
		cfs_thread_end(t);
		fuse_reply_err(req, ret == -ENODATA ? ENODATA : EIO);
		return;
	}
	/* the value points into the map: reply before the transaction ends */
	cfs_reply_xattr(req, x.value, x.value_len, size);
	cfs_thread_end(t);
}

bool cfs_caller_sys_admin(fuse_req_t req)
{
	char path[64], line[256];
	bool admin = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)fuse_req_ctx(req)->pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long caps;

		if (sscanf(line, "CapEff: %llx", &caps) == 1) {
			admin = caps & (1ull << 21); /* CAP_SYS_ADMIN */
			break;
		}
	}
	fclose(f);
	return admin;
}

/* Takes trusted.* names out of a listing: a caller without CAP_SYS_ADMIN does not see them. */
size_t cfs_list_hide_trusted(fuse_req_t req, char *list, size_t len)
{
	size_t out = 0;
	int admin = -1;

	for (size_t off = 0; off < len;) {
		size_t n = strnlen(list + off, len - off) + 1;

		if (strncmp(list + off, "trusted.", 8) == 0) {
			if (admin < 0)
				admin = cfs_caller_sys_admin(req);
			if (!admin) {
				off += n;
				continue;
			}
		}
		memmove(list + out, list + off, n);
		out += n;
		off += n;
	}
	return out;
}

static void cfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct cfs_inode *in;
	struct cfs_thread *t;
	struct cairn_node_view v;
	struct cairn_xattr x;
	struct cairn_buf list = { 0 };
	size_t off = 0;
	int ret = begin(req, ino, &in, &t, &v);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	while ((ret = cairn_xattr_next(&v, &off, &x)) == 0) {
		if (cairn_buf_append(&list, x.name, x.name_len) || cairn_buf_append(&list, "", 1)) {
			ret = -ENOMEM;
			break;
		}
	}
	cfs_thread_end(t);
	if (ret == -ENOENT)
		list.len = cfs_list_hide_trusted(req, (char *)list.data, list.len);
	if (ret != -ENOENT)
		fuse_reply_err(req, ret == -ENOMEM ? ENOMEM : EIO);
	else
		cfs_reply_xattr(req, list.data, list.len, size);
	cairn_buf_release(&list);
}

static void cfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct cfs *fs = cfs_of(req);
	struct statvfs st = { 0 };

	st.f_bsize = 4096;
	st.f_frsize = 4096;
	st.f_blocks = (fs->image_size + 4095) / 4096;
	st.f_files = fs->image_nodes;
	st.f_namemax = CAIRN_NAME_MAX;
	fuse_reply_statfs(req, &st);
}

static void cfs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	/* default_permissions: the kernel checks modes; a read-only mount refuses writes */
	fuse_reply_err(req, mask & W_OK ? EROFS : 0);
}

const struct fuse_lowlevel_ops cfs_ops = {
	.init = cfs_init,
	.lookup = cfs_lookup,
	.forget = cfs_forget,
	.forget_multi = cfs_forget_multi,
	.getattr = cfs_getattr,
	.readlink = cfs_readlink,
	.open = cfs_open,
	.read = cfs_read_image,
	.opendir = cfs_opendir,
	.readdir = cfs_readdir,
	.readdirplus = cfs_readdirplus,
	.statfs = cfs_statfs,
	.getxattr = cfs_getxattr,
	.listxattr = cfs_listxattr,
	.access = cfs_access,
	.lseek = cfs_lseek_image,
};
