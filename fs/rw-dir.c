/* SPDX-License-Identifier: MIT */
/*
 * rw-dir.c - directories on a writable mount: opendir, readdir(plus),
 * fsyncdir.
 *
 * opendir takes a snapshot of the merged listing (the upper's names, then
 * the image's it does not cover); readdir walks it by position, resolving
 * each name again, so an offset stays valid while the directory changes
 * and a name removed since is left out.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rw-internal.h"

struct dirsnap {
	size_t n;
	struct dirsnap_ent {
		char *name;
		uint8_t type;
	} *v;
};

static void snap_free(struct dirsnap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].name);
	free(s->v);
	free(s);
}

static int snap_add(struct dirsnap *s, size_t *cap, const char *name, size_t len, uint8_t type)
{
	if (s->n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct dirsnap_ent *v = realloc(s->v, c * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		*cap = c;
	}
	s->v[s->n].name = strndup(name, len);
	if (!s->v[s->n].name)
		return -ENOMEM;
	s->v[s->n++].type = type;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The merged listing of in: the upper's names, then the image's it does not cover. */
static int snapshot(struct rw_req *r, struct cfs_inode *in, struct dirsnap **out)
{
	struct dirsnap *s = calloc(1, sizeof(*s));
	char **upper = NULL;
	size_t nupper = 0, capu = 0, cap = 0;
	int ret = 0;

	if (!s)
		return -ENOMEM;
	if (in->rw->upper) {
		int fd = openat(rw_ufd(r->fs, in), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

		if (!d) {
			ret = fd < 0 ? -errno : -ENOMEM;
			if (fd >= 0)
				close(fd);
		}
		for (struct dirent *de; !ret && d && (de = readdir(d));) {
			struct stat st;
			bool wh = false;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (de->d_type == DT_CHR || de->d_type == DT_UNKNOWN)
				wh = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				     cfs_is_whiteout(&st);
			if (nupper == capu) {
				size_t c = capu ? capu * 2 : 64;
				char **v = realloc(upper, c * sizeof(*v));

				if (!v) {
					ret = -ENOMEM;
					break;
				}
				upper = v;
				capu = c;
			}
			upper[nupper] = strdup(de->d_name);
			if (!upper[nupper]) {
				ret = -ENOMEM;
				break;
			}
			nupper++;
			if (!wh)
				ret = snap_add(s, &cap, de->d_name, strlen(de->d_name),
					       de->d_type == DT_DIR ? CAIRN_NODE_DIR :
					       de->d_type == DT_REG ? CAIRN_NODE_REG :
					       de->d_type == DT_LNK ? CAIRN_NODE_LNK :
					       de->d_type == DT_CHR ? CAIRN_NODE_CHR :
					       de->d_type == DT_BLK ? CAIRN_NODE_BLK :
					       de->d_type == DT_FIFO ? CAIRN_NODE_FIFO :
					       CAIRN_NODE_SOCK);
		}
		if (d)
			closedir(d);
		if (nupper)
			qsort(upper, nupper, sizeof(*upper), by_name);
	}
	if (!ret && in->rw->lower != CFS_LOWER_NONE) {
		struct cairn_node_view v;

		ret = cfs_node_get(r->fs, r->t, &in->node, &v);
		for (uint32_t i = 0; !ret && i < v.nentries; i++) {
			struct cairn_dirent de;
			char name[CAIRN_NAME_MAX + 1], *key = name;

			if (cairn_dir_entry(&v, i, &de)) {
				ret = -EIO;
				break;
			}
			memcpy(name, de.name, de.name_len);
			name[de.name_len] = '\0';
			if (nupper && bsearch(&key, upper, nupper, sizeof(*upper), by_name))
				continue;
			ret = snap_add(s, &cap, de.name, de.name_len, de.type);
		}
	}
	for (size_t i = 0; i < nupper; i++)
		free(upper[i]);
	free(upper);
	if (ret) {
		snap_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

void rw_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rw_req r;
	struct cfs_inode *in;
	struct dirsnap *s = NULL;
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
	ret = in ? snapshot(&r, in, &s) : -ESTALE;
	rw_req_end(&r);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)s;
	if (fuse_reply_open(req, fi) == -ENOENT)
		snap_free(s);
}

void rw_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	snap_free((struct dirsnap *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* A merged directory being listed from its snapshot. */
struct rw_dir {
	struct rw_req *r;
	struct cfs_inode *in;
	const struct dirsnap *s;
};

static int rw_dirent(void *arg, uint64_t i, bool plus, char *name, struct fuse_entry_param *e,
		     struct cfs_inode **child)
{
	struct rw_dir *d = arg;
	const char *sname = d->s->v[i].name;
	struct rw_entry ent;

	if (rw_resolve(d->r, d->in, sname, &ent))
		return 1; /* gone since the directory was opened */
	strcpy(name, sname); /* resolved: no longer than CAIRN_NAME_MAX */
	if (plus) {
		*child = rw_entry_ref(d->r, d->in, name, &ent);
		if (!*child || rw_inode_stat(d->r, *child, &e->attr)) {
			if (*child)
				cfs_inode_forget(d->r->fs, (*child)->ino, 1);
			*child = NULL;
			return 1;
		}
		e->ino = (*child)->ino;
		e->attr_timeout = e->entry_timeout = d->r->fs->timeout;
	} else {
		struct cfs_inode *known = rw_inode_at(d->r, d->in, name, &ent);

		e->attr.st_ino = known ? known->ino : rw_entry_key(d->in, name, &ent);
		e->attr.st_mode = cairn_type_st_mode(ent.type);
		rw_entry_release(&ent);
	}
	return 0;
}

static void readdir_merged(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi, bool plus)
{
	struct dirsnap *s = (struct dirsnap *)(uintptr_t)fi->fh;
	struct rw_req r;
	struct rw_dir d;
	struct cfs_inode *in;
	char *buf;
	size_t len;
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
	if (size > CFS_MAX_READ)
		size = CFS_MAX_READ;
	buf = malloc(size);
	if (!in || !buf) {
		rw_req_end(&r);
		free(buf);
		fuse_reply_err(req, in ? ENOMEM : ESTALE);
		return;
	}
	d = (struct rw_dir){ .r = &r, .in = in, .s = s };
	len = cfs_readdir_fill(req, r.fs, in, buf, size, off, plus, s->n, rw_dirent, &d, &ret);
	rw_req_end(&r);
	fuse_reply_buf(req, buf, len);
	free(buf);
}

void rw_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	readdir_merged(req, ino, size, off, fi, false);
}

void rw_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	readdir_merged(req, ino, size, off, fi, true);
}

void rw_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct rw_req r;
	struct cfs_inode *in;
	int ret = rw_req_begin(req, &r), fd = -1;

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
	if (in && in->rw->upper) {
		fd = openat(rw_ufd(r.fs, in), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			ret = -errno;
	}
	rw_req_end(&r);
	/* the sync itself without the lock: it may take a while */
	if (fd >= 0 && fsync(fd) < 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	fuse_reply_err(req, in ? -ret : ESTALE);
}
