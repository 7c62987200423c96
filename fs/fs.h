/* SPDX-License-Identifier: MIT */
/*
 * fs.h - the FUSE daemon: serving one image of a store as a read-only
 * filesystem.
 *
 * cfs_serve() opens the store, mounts, tells its caller the mount is up
 * (or why it is not) through a file descriptor, and serves until unmounted
 * or signalled. All state of a mount lives in one struct cfs reached from
 * each request through fuse_req_userdata(): nothing is global, so one
 * process can later serve several mounts with one chunk cache.
 */
#ifndef CAIRN_FS_H
#define CAIRN_FS_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct cfs_options {
	const char *store_dir;
	const char *source;      /* what the user named (a tag, an id), for listings */
	const char *platform;    /* the platform followed live, or NULL for a pinned image */
	struct cairn_id image;   /* the image served */
	const char *mountpoint;  /* absolute path */
	const char *fuse_opts;   /* extra -o options, or NULL */
	const char *upper_dir;   /* writable: the upper directory (absolute), or NULL */
	size_t cache_bytes;      /* chunk cache budget */
	bool foreground;         /* log to stderr instead of syslog */
	bool dev;                /* honour device nodes */
	bool nosuid;             /* do not honour setuid/setgid */
	bool debug;              /* libfuse debug output (foreground only) */
};

#define CFS_CACHE_DEFAULT (256ull << 20)

/*
 * Mounts and serves; returns when the filesystem is unmounted. ready_fd
 * (or -1) receives "ok\n" once the mount is usable, or one error line; it
 * is closed either way. Returns 0 or -errno.
 */
int cfs_serve(const struct cfs_options *o, int ready_fd);

/* The per-store directory holding mount records and control sockets. */
int cfs_run_dir(const char *store_dir, char *buf, size_t len);

#endif
