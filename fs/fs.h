/* SPDX-License-Identifier: MIT */
/*
 * fs.h - the FUSE daemon: serving images of a store as filesystems.
 *
 * Two structs, two lifetimes. A daemon (struct cfs_daemon) is per store:
 * the LMDB environment, the chunk cache, the table of chunks being decoded,
 * the per-thread read transactions and zstd contexts, one bounded pool of
 * worker threads reading every mount's FUSE connection, and the control
 * socket. A mount (struct cfs, fs-internal.h) is per FUSE connection: its
 * session, inode table, upper directory, image or platform and leases,
 * reached from each request through fuse_req_userdata().
 *
 * cfs_daemon_mount() is the one way a mount starts, reentrant like
 * composefs's lcfs_mount_image(): the shared daemon calls it for each
 * "mount" request, an --isolated or foreground daemon once. The caller
 * mounts first, in its own mount namespace (cfs_kernel_mount()), and hands
 * over the connection's fd.
 */
#ifndef CAIRN_FS_H
#define CAIRN_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* One mount: what it serves and where. Strings are borrowed (see each user). */
struct cfs_options {
	const char *source;      /* what the user named (a tag, an id), for listings */
	const char *platform;    /* the platform followed live, or NULL for a pinned image */
	struct cairn_id image;   /* the image served */
	const char *mountpoint;  /* absolute, in mount namespace ns */
	const char *fuse_opts;   /* extra -o options, or NULL */
	const char *upper_dir;   /* writable: the upper directory (absolute), or NULL */
	bool dev;                /* honour device nodes */
	bool nosuid;             /* do not honour setuid/setgid */
	bool debug;              /* libfuse debug output (foreground only) */
	uint64_t ns;             /* mount namespace the mount was made in (control.h) */
	unsigned conn;           /* the FUSE connection's number (minor of st_dev), 0 unknown */
};

/* The daemon of a store. */
struct cfs_daemon_options {
	const char *store_dir;   /* absolute */
	size_t cache_bytes;      /* chunk cache budget, for every mount together */
	unsigned threads;        /* worker threads for every mount together (0: the default) */
	bool foreground;         /* log to stderr instead of syslog */
	bool isolated;           /* one mount, its own socket; exits when the mount ends */
	bool takeover;           /* the store's daemon runs: cfs_daemon_take_over() from it */
};

#define CFS_CACHE_DEFAULT (256ull << 20)
#define CFS_THREADS_DEFAULT 16u

struct cfs_daemon;

/*
 * Mounts a FUSE filesystem for o at o->mountpoint in the calling process's
 * mount namespace (libfuse's mount: mount(2) with fd=N as root, fusermount3
 * otherwise) and returns the connection's fd (O_CLOEXEC) in *fd and its
 * number in o->conn. Nothing serves it yet: hand the fd to
 * cfs_daemon_mount() (here or in a daemon), or close it and umount2() the
 * mountpoint. 0, or -errno with a message.
 */
int cfs_kernel_mount(struct cfs_options *o, int *fd);

/*
 * A new daemon for o->store_dir: opens the store (after any fork: an LMDB
 * environment must not cross one), makes the cache and starts the workers.
 * Signals TERM, INT, HUP and QUIT are blocked in the calling thread (and so
 * in every thread it starts): cfs_daemon_run() takes them. The options are
 * copied. 0 or -errno with a message.
 */
int cfs_daemon_new(const struct cfs_daemon_options *o, struct cfs_daemon **out);

/*
 * Starts serving one mount on the FUSE connection fd (taken over: closed on
 * failure too), after checking the image and opening its upper directory;
 * writes its record. Reentrant: any number of mounts per daemon, from any
 * thread. On success writes the mount's id into id. 0 or -errno with a
 * message.
 */
int cfs_daemon_mount(struct cfs_daemon *d, const struct cfs_options *o, int fd, char *id,
		     size_t idlen);

/*
 * Serves until the daemon's work is done: its control socket (listening
 * since cfs_daemon_new()) and its workers answer; this thread takes the
 * signals. ready_fd (or -1) gets "ok\n" first and is closed. Returns when
 * the last mount has ended (the shared daemon: once no command holds
 * daemon.lock to add one, see control.h), or after TERM, INT, HUP or QUIT,
 * once every mount is unmounted (3 s at most: busy ones end with the
 * process). 0 or -errno.
 */
int cfs_daemon_run(struct cfs_daemon *d, int ready_fd);

/*
 * Takes every mount of the store's running daemon over (a daemon made with
 * takeover): their connections, inode tables, open directories, uppers and
 * leases; the old daemon exits, nothing is unmounted (handover.c). Then
 * listens on the store's socket. *mounts gets how many. 0, or -errno with a
 * message (the old daemon then serves on).
 */
int cfs_daemon_take_over(struct cfs_daemon *d, unsigned *mounts);

/* Stops the workers, frees everything. No mount may be left. */
void cfs_daemon_free(struct cfs_daemon *d);

#endif
