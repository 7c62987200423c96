/* SPDX-License-Identifier: MIT */
/*
 * rw-fds.c - a writable mount's fd budget.
 *
 * The kernel may keep an inode for a day, and a container can make as
 * many as it likes: a daemon holding an fd per upper object runs out of
 * fds, and then every request fails. So an upper object is known by its
 * file handle (name_to_handle_at(), taken once, when the daemon first
 * holds the object); its O_PATH fd and data fd are a cache. After a request,
 * when more than the budget are open, the least recently used are closed
 * (down to 7/8 of the budget); the next request that needs one opens it
 * again with open_by_handle_at(), which reaches the same object wherever
 * the container moved it, never a path it could bend.
 *
 * What is never closed early: the fds of a request in progress (each fd
 * use stamps the inode with the request's generation, and only one request
 * holds ns_lock at a time), the data fd while a read or write uses it
 * without ns_lock (cfs_rw.opens, changed and looked at under itable_lock),
 * the root, unlinked files (a handle no longer opens them) unless they are
 * kept as orphans in work/ (rw-internal.h), and anything on
 * a filesystem without handles (then the mount holds an fd per upper
 * object, as it did before). A file open in the kernel pins nothing: its
 * fds are reopened by handle like any other's.
 */
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "rw-internal.h"

#define RW_FDS_MAX 65536ul /* the budget's ceiling, whatever the limit allows */

void cfs_rw_fds_init(struct cfs *fs)
{
	struct rlimit rl;
	struct file_handle *fh;
	int fd;

	const char *env = getenv("CAIRN_FD_BUDGET");

	fs->fds.budget = 512;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		fs->fds.budget = rl.rlim_cur / 2; /* the rest: the store, packs, FUSE, scratch */
	if (fs->fds.budget > RW_FDS_MAX)
		fs->fds.budget = RW_FDS_MAX;
	if (env && *env) {
		/* a smaller budget (tests, or a host that runs many mounts), never a larger one */
		char *end;
		unsigned long n = strtoul(env, &end, 10);

		if (!*end && n < fs->fds.budget)
			fs->fds.budget = n;
	}
	if (fs->fds.budget < 16)
		fs->fds.budget = 16;
	/* handles work here only if the filesystem gives them and we may open them */
	fh = rw_handle(fs->upper->tree_fd);
	fd = fh ? open_by_handle_at(fs->upper->dir_fd, fh, O_PATH | O_CLOEXEC) : -1;
	fs->fds.handles = fd >= 0;
	if (fd >= 0)
		close(fd);
	else
		cfs_log(fs, LOG_WARNING, "the upper's filesystem gives no file handles this daemon can "
			"open: an fd stays open for each upper object the kernel holds");
	free(fh);
}

void cfs_rw_fds_release(struct cfs *fs)
{
	free(fs->fds.held);
	fs->fds.held = NULL;
}

struct file_handle *rw_handle(int fd)
{
	struct {
		struct file_handle fh;
		unsigned char b[MAX_HANDLE_SZ];
	} h;
	struct file_handle *out;
	int mount_id;

	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) < 0)
		return NULL;
	out = malloc(sizeof(*out) + h.fh.handle_bytes);
	if (out)
		memcpy(out, &h.fh, sizeof(*out) + h.fh.handle_bytes);
	return out;
}

/* One more fd held by in (itable_lock held). */
static void fd_opened_locked(struct cfs *fs, struct cfs_inode *in)
{
	fs->fds.open++;
	if (in->rw->slot != SIZE_MAX)
		return;
	if (fs->fds.nheld == fs->fds.cap) {
		size_t cap = fs->fds.cap ? fs->fds.cap * 2 : 256;
		struct cfs_inode **v = realloc(fs->fds.held, cap * sizeof(*v));

		if (!v)
			return; /* not tracked: its fds stay until the inode goes */
		fs->fds.held = v;
		fs->fds.cap = cap;
	}
	in->rw->slot = fs->fds.nheld;
	fs->fds.held[fs->fds.nheld++] = in;
}

/* in holds no fd any more (itable_lock held). */
static void untrack_locked(struct cfs *fs, struct cfs_inode *in)
{
	size_t i = in->rw->slot;

	if (i == SIZE_MAX)
		return;
	fs->fds.held[i] = fs->fds.held[--fs->fds.nheld];
	fs->fds.held[i]->rw->slot = i;
	in->rw->slot = SIZE_MAX;
}

void rw_fds_adopt_locked(struct cfs *fs, struct cfs_inode *in)
{
	in->rw->slot = SIZE_MAX;
	if (in->ino == FUSE_ROOT_ID)
		return; /* the root's fd is the mount's own, outside the budget */
	if (in->rw->ufd >= 0)
		fd_opened_locked(fs, in);
	if (in->rw->dfd >= 0)
		fd_opened_locked(fs, in);
}

void rw_install_locked(struct cfs *fs, struct cfs_inode *in, int fd, ino_t st_ino)
{
	in->rw->ufd = fd;
	in->rw->upper = true;
	in->rw->upper_ino = st_ino;
	in->rw->used = fs->fds.gen;
	fd_opened_locked(fs, in);
}

void rw_take_handle(struct cfs *fs, struct cfs_inode *in)
{
	if (fs->fds.handles && !in->rw->fh && in->rw->ufd >= 0)
		in->rw->fh = rw_handle(in->rw->ufd);
}

void rw_install(struct cfs *fs, struct cfs_inode *in, int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		st.st_ino = 0;
	pthread_mutex_lock(&fs->itable_lock);
	rw_install_locked(fs, in, fd, st.st_ino);
	pthread_mutex_unlock(&fs->itable_lock);
	rw_take_handle(fs, in);
}

void rw_set_dfd(struct cfs *fs, struct cfs_inode *in, int fd)
{
	if (in->rw->dfd >= 0) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&fs->itable_lock);
	in->rw->dfd = fd;
	in->rw->used = fs->fds.gen;
	fd_opened_locked(fs, in);
	pthread_mutex_unlock(&fs->itable_lock);
}

int rw_ufd_reopen(struct cfs *fs, struct cfs_inode *in)
{
	int fd;

	if (!in->rw->upper || !in->rw->fh) {
		errno = in->rw->upper ? EBADF : ENOENT;
		return -1;
	}
	rw_fds_trim(fs); /* room first: fds of this request are not touched */
	fd = open_by_handle_at(fs->upper->dir_fd, in->rw->fh, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -1;
	atomic_fetch_add(&fs->fds.reopens, 1);
	pthread_mutex_lock(&fs->itable_lock);
	in->rw->ufd = fd;
	fd_opened_locked(fs, in);
	pthread_mutex_unlock(&fs->itable_lock);
	return fd;
}

void rw_fds_forget_locked(struct cfs *fs, struct cfs_inode *in)
{
	struct cfs_rw *rw = in->rw;

	if (in->ino == FUSE_ROOT_ID) {
		/* the root's fd is the mount's own, outside the budget */
		if (rw->ufd >= 0)
			close(rw->ufd);
		rw->ufd = -1;
		return;
	}
	if (rw->ufd >= 0) {
		close(rw->ufd);
		rw->ufd = -1;
		fs->fds.open--;
	}
	if (rw->dfd >= 0) {
		close(rw->dfd);
		rw->dfd = -1;
		fs->fds.open--;
	}
	untrack_locked(fs, in);
	free(rw->fh);
	rw->fh = NULL;
}

static int by_use(const void *a, const void *b)
{
	const struct cfs_inode *x = *(struct cfs_inode *const *)a, *y = *(struct cfs_inode *const *)b;

	return x->rw->used < y->rw->used ? -1 : x->rw->used > y->rw->used;
}

/* May in's fds be closed now? */
static bool closable(struct cfs *fs, const struct cfs_inode *in)
{
	return in->rw->used != fs->fds.gen && atomic_load(&in->rw->opens) == 0 &&
	       in->ino != FUSE_ROOT_ID;
}

void rw_fds_trim(struct cfs *fs)
{
	unsigned long target = fs->fds.budget - fs->fds.budget / 8;
	struct cfs_inode **c;
	size_t n = 0;

	pthread_mutex_lock(&fs->itable_lock);
	if (fs->fds.open <= fs->fds.budget || !fs->fds.nheld) {
		pthread_mutex_unlock(&fs->itable_lock);
		return;
	}
	c = malloc(fs->fds.nheld * sizeof(*c));
	for (size_t i = 0; c && i < fs->fds.nheld; i++)
		if (closable(fs, fs->fds.held[i]))
			c[n++] = fs->fds.held[i];
	if (n)
		qsort(c, n, sizeof(*c), by_use);
	for (size_t i = 0; i < n && fs->fds.open > target; i++) {
		struct cfs_rw *rw = c[i]->rw;

		if (rw->dfd >= 0) {
			close(rw->dfd);
			rw->dfd = -1;
			fs->fds.open--;
			atomic_fetch_add(&fs->fds.closes, 1);
		}
		/* without a handle (or unlinked: a handle no longer opens it) it could not come back */
		if (rw->ufd >= 0 && rw->fh && (!rw->unlinked || rw->orphan)) {
			close(rw->ufd);
			rw->ufd = -1;
			fs->fds.open--;
			atomic_fetch_add(&fs->fds.closes, 1);
		}
		if (rw->ufd < 0 && rw->dfd < 0)
			untrack_locked(fs, c[i]);
	}
	pthread_mutex_unlock(&fs->itable_lock);
	free(c);
}

void rw_orphan_name(const struct cfs_inode *in, char name[40])
{
	snprintf(name, 40, "orphan.%llu", (unsigned long long)in->rw->upper_ino);
}

bool rw_orphan_link(struct rw_req *r, struct cfs_inode *in)
{
	int wfd = r->fs->upper->work_fd, ufd;
	char name[40];

	if (!in->rw->upper || in->type == CAIRN_NODE_DIR || !in->rw->upper_ino || !r->fs->fds.handles)
		return false;
	ufd = rw_ufd(r->fs, in);
	if (ufd < 0)
		return false;
	rw_orphan_name(in, name);
	if (linkat(ufd, "", wfd, name, AT_EMPTY_PATH) == 0)
		return true;
	/* one a crash or a daemon without orphans left: the inode number is ours now */
	return errno == EEXIST && unlinkat(wfd, name, 0) == 0 &&
	       linkat(ufd, "", wfd, name, AT_EMPTY_PATH) == 0;
}

void cfs_rw_orphan_drop(struct cfs *fs, struct cfs_inode *in)
{
	char name[40];

	if (!in->rw->orphan)
		return;
	rw_orphan_name(in, name);
	unlinkat(fs->upper->work_fd, name, in->type == CAIRN_NODE_DIR ? AT_REMOVEDIR : 0);
	in->rw->orphan = false;
}
