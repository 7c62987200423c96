/* SPDX-License-Identifier: MIT */
/*
 * rw-internal.h - what the files of a writable mount share (rw*.c): the
 * request, the merged view of a name, copy-up.
 *
 * The files, by concern:
 *   rw.c         identity (the key map), requests, resolving a name,
 *                attributes, lookup, the handler table
 *   rw-copyup.c  copy-up: metadata first, data on demand, hard-link groups
 *   rw-names.c   create, mknod, mkdir, symlink, link, unlink, rmdir, rename
 *   rw-attr.c    setattr, readlink, xattrs
 *   rw-data.c    open, read, write, fsync, fallocate, lseek
 *   rw-dir.c     opendir, readdir, fsyncdir
 *
 * Locks: a request holds switch_lock (read) and ns_lock from
 * rw_req_begin() to rw_req_end(); every function here that takes a
 * struct rw_req expects both held. Data reads and writes on upper files
 * use the inode's data fd without ns_lock.
 */
#ifndef CAIRN_FS_RW_INTERNAL_H
#define CAIRN_FS_RW_INTERNAL_H

#include <limits.h>

#include "fs-internal.h"

/* An xattr name as the upper stores it: the name and room for the escape. */
#define XNAME_BUF (XATTR_NAME_MAX + 1 + 16)

/* A request in progress: the mount and this thread's read state. */
struct rw_req {
	struct cfs *fs;
	struct cfs_thread *t;
};

/* Begins a request: this thread's transaction, switch_lock and ns_lock. 0 or -errno. */
int rw_req_begin(fuse_req_t req, struct rw_req *r);
/* Ends it: both locks dropped, the transaction reset (views into the map end here). */
void rw_req_end(struct rw_req *r);

/* ---- the fd budget (rw-fds.c) ---- */

/* fd's file handle (malloc'd), or NULL where the filesystem gives none. */
struct file_handle *rw_handle(int fd);
/*
 * in's upper object from now on: fd (an O_PATH fd, taken over), st_ino.
 * The _locked one with itable_lock held, and rw_take_handle() after it is
 * dropped (ns_lock still held); rw_install() does both and the stat.
 */
void rw_install_locked(struct cfs *fs, struct cfs_inode *in, int fd, ino_t st_ino);
void rw_take_handle(struct cfs *fs, struct cfs_inode *in);
void rw_install(struct cfs *fs, struct cfs_inode *in, int fd);
/* fd (O_RDWR, taken over) becomes in's data fd, unless it has one (then fd is closed). */
void rw_set_dfd(struct cfs *fs, struct cfs_inode *in, int fd);
/* rw_ufd()'s slow path: the upper object opened again by its handle. */
int rw_ufd_reopen(struct cfs *fs, struct cfs_inode *in);
/* Closes what the budget does not keep (ns_lock held; this request's fds stay). */
void rw_fds_trim(struct cfs *fs);
/* Closes in's fds and forgets its handle: the inode goes (itable_lock held). */
void rw_fds_forget_locked(struct cfs *fs, struct cfs_inode *in);
/* Counts the fds a handed-over inode arrived with (itable_lock held). */
void rw_fds_adopt_locked(struct cfs *fs, struct cfs_inode *in);

/*
 * Orphans. A file the container removed while it still holds it open
 * would be reachable only through an fd kept open for as long as it does
 * (a handle no longer opens an inode without links), and a container can
 * hold as many as its fd limit allows. So its upper object keeps a name in
 * work/ instead, "orphan.<st_ino>", while the kernel holds the inode: its
 * fds stay within the budget like any other's. The name goes when the
 * kernel forgets the inode (cfs_rw_orphan_drop()), and with everything
 * else in work/ at the next mount after a crash.
 */
void rw_orphan_name(const struct cfs_inode *in, char name[40]);
/*
 * Before a rename replaces in: links its upper object (not a directory)
 * into work/ under its orphan name, so the rename stays one atomic step
 * (an unlink moves the object there instead). true when linked (ns_lock
 * held).
 */
bool rw_orphan_link(struct rw_req *r, struct cfs_inode *in);

/*
 * The O_PATH fd of in's upper object, opened again if the budget closed it;
 * valid until the request ends (ns_lock held). -1 with errno when there is
 * none or it cannot be opened: never another negative value, so a failure
 * passed to an *at() call is EBADF, never AT_FDCWD.
 */
static inline int rw_ufd(struct cfs *fs, struct cfs_inode *in)
{
	int fd = in->rw->ufd;

	in->rw->used = fs->fds.gen;
	return fd >= 0 ? fd : rw_ufd_reopen(fs, in);
}

/* ---- identity (rw.c) ---- */

/* The key of an upper object with st_ino. */
uint64_t rw_upper_key(uint64_t st_ino);
/* Files in under key in the key map (0: takes it out); takes itable_lock. */
void rw_rekey(struct cfs *fs, struct cfs_inode *in, uint64_t key);
void rw_unkey(struct cfs *fs, struct cfs_inode *in);

/* ---- the merged view of a name (rw.c) ---- */

/* What the merged view shows at a name. */
struct rw_entry {
	int ufd;               /* O_PATH fd of the upper object, or -1 */
	struct stat st;        /* the upper object's */
	bool whiteout;         /* the upper deletes the name */
	bool below;            /* the image has an entry of this name under the parent */
	struct cairn_dirent lower; /* that entry */
	struct cairn_id node;  /* the node served below the upper (or alone) */
	uint8_t kind;          /* enum cfs_lower */
	uint8_t type;          /* CAIRN_NODE_* */
	bool metacopy, opaque, no_xattrs;
	bool dev00;            /* an escaped char device 0/0: type is CAIRN_NODE_CHR */
	uint64_t lower_len;    /* with metacopy */
	struct cairn_node_view v; /* node's view when kind != NONE; valid until rw_req_end() */
};

/* Closes e's upper fd (if it still holds one). */
void rw_entry_release(struct rw_entry *e);
/* CAIRN_NODE_* of a file mode. */
uint8_t rw_st_type(mode_t m);
/*
 * Resolves name in directory p. 0 with e filled (e->ufd to be released),
 * -ENOENT when nothing shows there (e->whiteout says whether the upper
 * deletes it), or another -errno.
 */
int rw_resolve(struct rw_req *r, struct cfs_inode *p, const char *name, struct rw_entry *e);
/* The key e has for an inode in p named name. */
uint64_t rw_entry_key(struct cfs_inode *p, const char *name, const struct rw_entry *e);
/*
 * Finds or makes the inode for e (at name in p) and takes a kernel
 * reference. e->ufd is taken over or closed. NULL when out of memory.
 */
struct cfs_inode *rw_entry_ref(struct rw_req *r, struct cfs_inode *p, const char *name,
			       struct rw_entry *e);
/* The inode the kernel holds for e at name in p, if any (no reference taken). */
struct cfs_inode *rw_inode_at(struct rw_req *r, struct cfs_inode *p, const char *name,
			      struct rw_entry *e);

/* ---- attributes (rw.c) ---- */

/* The merged attributes of in. 0 or -errno. */
int rw_inode_stat(struct rw_req *r, struct cfs_inode *in, struct stat *st);
/*
 * Ends the request r and answers req with in (whose reference the reply
 * hands to the kernel; given back when the stat or the reply fails).
 */
void rw_reply_entry(fuse_req_t req, struct rw_req *r, struct cfs_inode *in);

/* ---- copy-up (rw-copyup.c) ---- */

/* Gives in an upper object (metadata only for a file). 0 or -errno. */
int rw_copy_up(struct rw_req *r, struct cfs_inode *in);
/*
 * Gives a file its own data: copied up, then (if metacopy) the image's
 * bytes written into it, fsync'd, and only then the mark removed. With
 * truncate, the data is dropped instead of copied (an O_TRUNC open).
 */
int rw_copy_up_data(struct rw_req *r, struct cfs_inode *in, bool truncate);
/* Opens in's data for reading and writing (once); the fd lives as long as in. */
int rw_data_fd(struct cfs *fs, struct cfs_inode *in);
/* Is v a char device 0/0 (which the upper holds escaped)? */
static inline bool rw_node_dev00(const struct cairn_node_view *v)
{
	return v->type == CAIRN_NODE_CHR && v->major == 0 && v->minor == 0;
}
/* A metacopy file keeps only its first n bytes from the image from now on. */
int rw_set_lower_len(struct cfs *fs, struct cfs_inode *in, uint64_t n);
/*
 * A directory inode made when the directory was only the image's, whose
 * upper copy a group copy-up made since: found by its parent's.
 */
void rw_refresh_upper(struct rw_req *r, struct cfs_inode *p, unsigned depth);

/* ---- the handlers, by file (rw.c holds the table) ---- */

/* rw-names.c */
void rw_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void rw_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void rw_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void rw_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void rw_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void rw_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void rw_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void rw_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags);
/* rw-attr.c */
void rw_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi);
void rw_readlink(fuse_req_t req, fuse_ino_t ino);
void rw_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void rw_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void rw_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		 int flags);
void rw_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
/* rw-data.c */
void rw_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void rw_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void rw_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf, off_t off,
		  struct fuse_file_info *fi);
void rw_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void rw_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void rw_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		  struct fuse_file_info *fi);
void rw_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);
/* rw-dir.c */
void rw_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void rw_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void rw_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void rw_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void rw_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

#endif
