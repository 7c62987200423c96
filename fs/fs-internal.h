/* SPDX-License-Identifier: MIT */
/*
 * fs-internal.h - what the daemon's files share: the per-mount struct, the
 * inode table and the per-thread read state.
 *
 * Inode numbers are derived from identity, not handed out in order, so
 * they are stable for the life of a mount even when the kernel forgets an
 * inode and looks it up again: a directory is (parent, name); any other
 * entry is (parent, name, node id); a hard-link group is its node id
 * (which holds the group's key), so its members share one inode.
 *
 * The lock order is written once, above struct cfs_daemon.
 */
#ifndef CAIRN_FS_INTERNAL_H
#define CAIRN_FS_INTERNAL_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <linux/fuse.h> /* the INIT a handover keeps (handover.c) */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <syslog.h>

#include "cache.h"
#include "chunk.h"
#include "control.h"
#include "fs.h"
#include "node.h"
#include "read.h"
#include "store.h"
#include "upper.h"

struct cfs_inode {
	uint64_t ino;
	uint64_t nlookup;         /* kernel references; itable_lock */
	struct cfs_inode *next;   /* hash chain; itable_lock */
	/* identity, immutable (node: see below) */
	uint64_t parent;
	uint64_t name_hash;
	char *name;               /* NUL-terminated; NULL for the root */
	/*
	 * The node served. Fixed for a non-directory; a directory is re-bound
	 * to the new tree by a live switch (under switch_lock held for writing,
	 * so handlers, which hold it for reading, see one or the other).
	 */
	struct cairn_id node;
	uint8_t type;
	/* derived once from the node, immutable */
	uint32_t dir_nlink;       /* 2 + subdirectories, for directories */
	uint64_t blocks;          /* 512-byte units of data (holes excluded) */
	_Atomic uint64_t read_end; /* where the last read ended: sequential access detection */
	struct cfs_rw *rw;        /* writable mounts only (rw*.c); NULL on a read-only one */
	struct cfs_lease *lease;  /* the image its node came from, or NULL (lease.c); itable_lock */
};

/* An image the mount may still read, and how many inodes read it (lease.c). */
struct cfs_lease {
	struct cairn_id image;
	uint64_t inodes;          /* itable_lock */
	struct cfs_lease *next;   /* itable_lock */
};

/*
 * A writable mount's fd budget (rw-fds.c): the upper fds it keeps open,
 * and which inodes hold them.
 */
struct cfs_fds {
	unsigned long budget;     /* at most this many ufds and dfds stay open between requests */
	unsigned long open;       /* open now; itable_lock */
	struct cfs_inode **held;  /* inodes holding an fd; itable_lock */
	size_t nheld, cap;        /* itable_lock */
	uint64_t gen;             /* bumped by every request that takes ns_lock; ns_lock */
	bool handles;             /* the upper's filesystem gives file handles we can open */
	atomic_uint_fast64_t reopens, closes;
};

/* A mount's leases: what its record lists, so gc keeps those images. */
struct cfs_leases {
	/* the image served now; written under switch_lock (write) and itable_lock */
	struct cfs_lease *current;
	struct cfs_lease *list;   /* every leased image, current included; itable_lock */
	atomic_bool dirty;        /* the list changed since the record was written */
	void (*publish)(void *arg); /* rewrites the mount record (serve.c) */
	void *publish_arg;
};

/*
 * What a writable mount knows of an inode beyond its image node (rw.c).
 * Guarded by cfs.ns_lock, except the fds, which are set once and read
 * without it.
 */
enum cfs_lower {
	CFS_LOWER_NONE,   /* no image entry below (new, or hidden by an opaque directory) */
	CFS_LOWER_PATH,   /* node is the image entry at this path; a live switch re-binds it */
	CFS_LOWER_PINNED, /* node is fixed: a renamed directory's redirect, a file's origin */
};

struct cfs_rw {
	/*
	 * The upper object, if there is one (upper), is known by its file
	 * handle (fh); its O_PATH fd (ufd) and, for a regular file, its O_RDWR
	 * data fd (dfd) are kept open only within the mount's fd budget
	 * (rw-fds.c): -1 when closed or never opened. Reach ufd through
	 * rw_ufd(). While a read, write, fsync or lseek uses dfd (opens > 0),
	 * both stay: those use dfd without ns_lock. A file open in the kernel
	 * pins nothing (a container could hold as many as it likes).
	 */
	bool upper;               /* the upper object exists; ns_lock */
	_Atomic int ufd;          /* ns_lock */
	_Atomic int dfd;          /* set under ns_lock; closed only when opens == 0 */
	struct file_handle *fh;   /* NULL: cannot be reopened, so its fds are never closed early */
	atomic_uint opens;        /* data requests using dfd */
	uint64_t used;            /* cfs.fds.gen of the request that last used its fds; ns_lock */
	size_t slot;              /* index in cfs.fds.held, or SIZE_MAX; itable_lock */
	uint8_t lower;            /* enum cfs_lower */
	atomic_bool metacopy;     /* bytes below lower_len are node's, the rest the upper file's */
	uint64_t lower_len;       /* with metacopy; ns_lock */
	bool opaque;              /* directory: nothing of the image shows through */
	bool unlinked;            /* no name leads here any more */
	bool orphan;              /* unlinked, kept by a name in work/ (rw_orphan_name()) */
	bool no_xattrs;           /* known to have no xattrs the container sees: getxattr answers at once */
	bool dev00;               /* the upper object is an image's char device 0/0, escaped (upper.h) */
	uint64_t key;             /* identity in the key map (see rw.c) */
	struct cfs_inode *knext;  /* key map chain; itable_lock */
	uint64_t upper_ino;       /* st_ino of the upper object */
	unsigned seen_gen;        /* cfs.upper_gen when its upper was last looked for */
};

/*
 * Per worker thread, shared by every mount it serves: one read transaction
 * (renewed for a request, reset after it) and zstd state. fs is the mount
 * of the request in hand.
 */
struct cfs_thread {
	struct cfs *fs;
	struct cairn_txn *txn;
	struct cairn_zctx z;
	bool fetched; /* the last cfs_chunk_get() read a chunk a remote held (lazy) */
};

/*
 * Lock order, for the two structs below (a lock may be taken while holding
 * the ones above it, never the other way):
 *
 *   cfs_daemon.mounts_lock     taken alone: refs are taken under it, then it is dropped
 *   cfs_daemon.switch_mutex    one platform switch at a time (switch.c)
 *   cfs.switch_lock (rw)       requests read, a live switch writes
 *   cfs.ns_lock                writable mounts: the upper's namespace (rw.c)
 *   cfs.itable_lock            the inode table (inode.c)
 *   cache shard locks, cfs_daemon.decoding_lock   leaves (cache.c, chunks.c)
 *   cfs.loop_lock              leaf: the worker loop's state of one mount (daemon.c)
 */

/* The daemon: one per store (or per mount with --isolated). daemon.c */
struct cfs_daemon {
	/* set by cfs_daemon_new(), immutable after */
	char *store_dir;
	size_t cache_bytes;
	bool foreground, isolated;
	unsigned nworkers;        /* threads reading every mount's session */
	unsigned budget;          /* requests one mount may have in flight */
	struct cairn_store *store; /* one LMDB environment for every mount */
	struct cfs_cache *cache;  /* one chunk cache for every mount */
	pthread_key_t thread_key; /* struct cfs_thread */
	uint8_t *zeros;           /* CFS_MAX_READ bytes of zeros, for holes */
	uint64_t ns;              /* the daemon's mount namespace */
	uid_t owner;              /* the store directory's owner: may talk to the daemon */
	char sock_path[108];      /* its control socket */
	int lsock;                /* listening on sock_path */
	int lock_fd;              /* STORE/run/daemon.lock (shared daemon), or -1 */
	int epfd;                 /* every mount's /dev/fuse fd, EPOLLONESHOT, and wake_fd */
	int wake_fd;              /* eventfd: written when the workers are to stop */
	int trim_fd;              /* timerfd: mounts over their inode budget are trimmed again */
	_Atomic int64_t trim_due; /* when trim_fd fires (monotonic ns), 0 when not set */
	pthread_t *workers;
	pthread_t control;
	bool control_running;

	/* chunks being decoded now, so a second reader waits instead of decoding too (chunks.c) */
	pthread_mutex_t decoding_lock;
	pthread_cond_t decoded;          /* a decode finished; decoding_lock */
	struct cairn_id decoding[64];    /* decoding_lock */
	unsigned ndecoding;              /* decoding_lock */
	/*
	 * decodes that failed lately (a lazy chunk whose remote is down): who
	 * waited for one fails with it instead of asking again; decoding_lock
	 */
	struct cfs_decode_failure {
		struct cairn_id id;
		uint64_t seq;            /* the release it was */
		int err;
	} failed[16];
	uint64_t releases;               /* decode_release() calls; decoding_lock */

	pthread_mutex_t mounts_lock;
	pthread_cond_t mounts_cond;      /* nmounts or nclients changed; mounts_lock */
	struct cfs *mounts;              /* every live mount; mounts_lock */
	unsigned nmounts;                /* mounts_lock */
	unsigned nclients;               /* control connections being answered; mounts_lock */
	uint64_t next_id;                /* mounts_lock */
	bool stopping;                   /* no more mounts (a signal, a handover); mounts_lock */
	bool handed_over;                /* a new daemon serves the mounts: exit; mounts_lock */

	pthread_mutex_t switch_mutex;    /* one platform switch at a time */
};

/* A bind of a read-only mount's session at another mountpoint (daemon.c). */
struct cfs_view {
	char id[32];
	char *mountpoint;
	char *source;             /* what the user named for this mount */
	uint64_t ns;
	struct cfs_view *next;
};

struct cfs {
	struct cfs_daemon *d;
	const struct cfs_options *o; /* &opts */
	struct cfs_options opts;     /* owned copies of the strings */
	char id[32];                 /* unique in the store (control.h) */
	int64_t started_ns;
	/*
	 * Held for reading by every request that reads nodes or inodes (and by
	 * forget), for writing by a live switch while it re-binds directories.
	 */
	pthread_rwlock_t switch_lock;
	struct cairn_id image;    /* the image served now; switch_lock */
	uint64_t generation;      /* of the platform followed, 0 when pinned; switch_lock */
	/*
	 * Images served now and before a switch that inodes still read (files
	 * opened then): gc must keep them (the mount record lists them).
	 */
	struct cfs_leases leases;
	struct cairn_id root;     /* the image's flattened tree; switch_lock */
	uint64_t image_nodes, image_size;
	struct fuse_session *se;
	double timeout;           /* entry and attribute validity, seconds */

	pthread_mutex_t itable_lock;
	struct cfs_inode **buckets; /* itable_lock */
	size_t nbuckets, ninodes;   /* itable_lock */
	/*
	 * The inode budget (inode.c): past it, the kernel is asked to drop
	 * the inodes it does not use (FUSE_NOTIFY_PRUNE), down to 7/8 of it.
	 */
	size_t inode_budget;        /* set with the table, immutable */
	atomic_bool over_budget;    /* ninodes passed the budget; cleared by a trim */
	atomic_bool trimming;       /* a worker trims now; it owns the two below */
	int64_t trimmed_ns;         /* when the kernel was last asked */
	int64_t trim_gap_ns;        /* the least time between two asks: grows while they free nothing */
	uint64_t freed;             /* inodes the kernel forgot, ever; itable_lock */
	uint64_t freed_at_ask;      /* freed at the last ask; itable_lock */
	bool asked;                 /* the kernel was asked since the table was last within budget */
	_Atomic int prune;          /* the kernel takes FUSE_NOTIFY_PRUNE: 1, does not: -1, not known: 0 */
	size_t trim_cursor;         /* the bucket the next trim starts at; itable_lock */
	atomic_uint_fast64_t trims, prune_asks;

	/*
	 * What a tenant can make the daemon log (a copy-up failing on each
	 * try, a budget hit in a loop) is rate-limited per mount (cfs_log()):
	 * a burst of CFS_LOG_BURST lines, then one a second; what is dropped
	 * is counted and said with the next line that passes.
	 */
	_Atomic int64_t log_tat;        /* the theoretical arrival time of the next line */
	atomic_uint_fast64_t log_dropped;

	atomic_uint_fast64_t reads, read_bytes, prefetches, eio;
	atomic_bool readahead_set;  /* the connection's read-ahead window was raised */

	/* writable mounts (rw*.c, upper.c) */
	struct cfs_upper *upper;    /* NULL on a read-only mount */
	pthread_mutex_t ns_lock;    /* every change to the upper and to rw inode state */
	struct cfs_fds fds;         /* writable mounts: the upper fds kept open */
	unsigned upper_gen;         /* bumped when directories no inode knows were copied up; ns_lock */
	struct cfs_inode **kbuckets; /* key map; itable_lock */
	size_t nkbuckets;
	struct rw_dirs *dirs;       /* open directory handles (rw-dir.c) */

	/*
	 * Where the mount is: its own mountpoint (o->mountpoint, record fs->id)
	 * unless unmounted while binds of it live on, and the binds other
	 * read-only mounts of the same source made of it (one session, one
	 * page cache). Each has a record. d->mounts_lock.
	 */
	bool primary_gone;
	struct cfs_view *views;
	pthread_mutex_t record_lock; /* one writer of the records at a time (mount.c) */
	bool unrecorded;             /* the records are gone for good; record_lock */

	/* a daemon restart (handover.c) */
	void *init;                 /* the INIT request the connection began with */
	size_t init_len;            /* set once, by the worker that read INIT */
	struct cfs_replay *replay;  /* a handed-over session's first read, until it is taken */

	/* in the daemon's loop (daemon.c) */
	struct cfs *next;           /* d->mounts; d->mounts_lock */
	atomic_uint refs;           /* d->mounts' one, each request in flight, each control user */
	int fd;                     /* the FUSE connection (the session's) */
	pthread_mutex_t loop_lock;
	unsigned inflight;          /* requests being answered; loop_lock */
	bool parked;                /* at its budget: not re-armed until one finishes; loop_lock */
	bool gone;                  /* the connection ended: never re-armed; loop_lock */
	bool frozen;                /* a handover takes it: nothing more is read; loop_lock */
	char switch_reply[256];     /* this switch request's outcome; d->switch_mutex */
	bool reading;               /* a worker is reading a request of it; loop_lock */
};

/* A handed-over session's INIT, given to it once (handover.c). */
struct cfs_replay {
	const void *init;
	size_t len;
	uint64_t unique;
	bool given, dropped;
};

/*
 * libfuse 3.14 reads up to its session's buffer size, at most
 * FUSE_MAX_MAX_PAGES (256) pages and a header page, and never more after
 * INIT: one buffer of that size per worker serves every session.
 */
#define CFS_REQ_BUF (257u * 4096u)

#define CFS_MAX_READ (1u << 20)
#define CFS_BLKSIZE 65536u

static inline struct cfs *cfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* inode.c */
int cfs_itable_init(struct cfs *fs);
void cfs_itable_release(struct cfs *fs);
/* Adds the root (FUSE_ROOT_ID) for the directory node v of fs->root. */
int cfs_inode_root(struct cfs *fs, const struct cairn_node_view *v);
/* Finds the inode (no reference taken), or NULL. */
struct cfs_inode *cfs_inode_find(struct cfs *fs, uint64_t ino);
/*
 * Finds or makes the inode for child (named name in parent) and takes one
 * kernel reference. v is the child's parsed node.
 */
struct cfs_inode *cfs_inode_ref(struct cfs *fs, struct cfs_thread *t, uint64_t parent,
				const char *name, size_t len, const struct cairn_id *node,
				const struct cairn_node_view *v);
/* The hash of a name an inode keeps (its identity with the parent). */
uint64_t cfs_name_hash(const char *name, size_t len);
/* The number cfs_inode_ref() gives such an entry (short of a hash collision). */
uint64_t cfs_inode_number(uint64_t parent, const char *name, size_t len,
			  const struct cairn_id *node, const struct cairn_node_view *v);
/* Link count and blocks of in, from its node v. */
void cfs_inode_derive(struct cfs_thread *t, struct cfs_inode *in, const struct cairn_node_view *v);
/* The table without its lock (itable_lock held). */
struct cfs_inode *cfs_inode_find_locked(struct cfs *fs, uint64_t ino);
/* Adds in under ino, or the next free number after it (itable_lock held). */
void cfs_inode_insert_locked(struct cfs *fs, struct cfs_inode *in, uint64_t ino);
/* Adds a handed-over inode under its own number (the root's too); -EEXIST if taken. */
int cfs_inode_adopt_locked(struct cfs *fs, struct cfs_inode *in);
/* Drops n kernel references; frees the inode at zero (its lease dropped). */
void cfs_inode_forget(struct cfs *fs, uint64_t ino, uint64_t n);
/*
 * Over its inode budget (fs->over_budget), the mount asks the kernel to
 * drop inodes it holds but does not use: FUSE_NOTIFY_PRUNE (Linux 6.18)
 * of up to the excess over 7/8 of the budget, at most every 20 ms (up to
 * 2 s while asks free nothing: every inode is in use); the kernel skips
 * any inode in use (open, a cwd, a mountpoint, a directory with cached
 * entries) and sends FORGET for the others. Called by a worker after
 * answering a request, and from the daemon's trim timer while the mount
 * stays over its budget (a tenant that floods and then goes quiet sends
 * no request to trim after), no lock held; one worker per mount at a time.
 */
void cfs_itable_trim(struct cfs *fs);
/* Trims every mount over its inode budget again in delay_ns (at least 100 ms; daemon.c's trim timer). */
void cfs_daemon_trim_later(struct cfs_daemon *d, int64_t delay_ns);

/*
 * Re-binds a directory inode to node (whose parsed view is v): its link
 * count and size are derived again. Called with switch_lock held for writing.
 */
void cfs_inode_rebind(struct cfs *fs, struct cfs_thread *t, struct cfs_inode *in,
		      const struct cairn_id *node, const struct cairn_node_view *v);
/*
 * Calls fn on every directory inode. Called with switch_lock held for
 * writing (so the table cannot change).
 */
void cfs_itable_each_dir(struct cfs *fs, void (*fn)(struct cfs_inode *in, void *arg), void *arg);
/* Calls fn on every inode, with itable_lock held (switch_lock held for writing). */
void cfs_itable_each(struct cfs *fs, void (*fn)(struct cfs_inode *in, void *arg), void *arg);

/* lease.c: see its top comment. The _locked ones need itable_lock. */
int cfs_leases_init(struct cfs *fs);
void cfs_leases_release(struct cfs *fs);
/* in reads through l (NULL: through no image); l's count goes up. */
void cfs_lease_hold_locked(struct cfs *fs, struct cfs_inode *in, struct cfs_lease *l);
/* in no longer reads its lease's image; a lease nothing holds and not current goes. */
void cfs_lease_drop_locked(struct cfs *fs, struct cfs_inode *in);
/* in reads through l from now on (the old one dropped). */
void cfs_lease_move_locked(struct cfs *fs, struct cfs_inode *in, struct cfs_lease *l);
/* The lease of image: the one in the list, or a new one in it; NULL when out of memory. */
struct cfs_lease *cfs_lease_get_locked(struct cfs *fs, const struct cairn_id *image);
/* l becomes the current lease; the old one goes if nothing holds it. */
void cfs_lease_set_current_locked(struct cfs *fs, struct cfs_lease *l);
/* A copy of the leased images (free() it); their count. */
size_t cfs_leases_get(struct cfs *fs, struct cairn_id **out);
/*
 * Rewrites the mount record if the leases changed since it was written.
 * Call with no lock held (the record reads the image under switch_lock).
 */
void cfs_leases_publish(struct cfs *fs);

/* switch.c */
/*
 * What one switch request has computed for every mount it switches (the
 * names that changed in each directory), so the images are compared once.
 * Mounts may switch on several threads at once with one memo.
 */
struct cfs_switch_memo;
struct cfs_switch_memo *cfs_switch_memo_new(void);
void cfs_switch_memo_free(struct cfs_switch_memo *m);
/*
 * Follows the platform: re-reads its pointer and, if it moved, re-binds
 * every directory the kernel holds to the new tree and tells the kernel
 * what changed (the changes looked up in, or added to, memo). Writes a
 * one-line answer into reply. Returns 0 or -errno (-ENOMEM without memo).
 */
int cfs_switch(struct cfs *fs, struct cfs_switch_memo *memo, char *reply, size_t len);

/* ops.c */
extern const struct fuse_lowlevel_ops cfs_ops;
/* rw*.c (rw-internal.h): the handlers of a mount with an upper directory */
extern const struct fuse_lowlevel_ops cfs_rw_ops;
/* A new upper's tree/ takes the image root's owner, mode, xattrs and times (rw-copyup.c). */
int cfs_rw_root_attrs(struct cfs *fs, const struct cairn_node_view *v);
/* The root's writable state (rw.c). */
struct cfs_rw *cfs_rw_root(struct cfs *fs);
/*
 * The fd budget of a writable mount (rw-fds.c): set from RLIMIT_NOFILE
 * (half of it, at most 65536), after checking that file handles work on
 * the upper's filesystem.
 */
void cfs_rw_fds_init(struct cfs *fs);
void cfs_rw_fds_release(struct cfs *fs);
/* Frees what a writable mount keeps for an inode (itable_lock held). */
void cfs_rw_inode_free(struct cfs *fs, struct cfs_inode *in);
/* The kernel forgot in: its orphan in work/, if any, goes (itable_lock held). */
void cfs_rw_orphan_drop(struct cfs *fs, struct cfs_inode *in);
/*
 * A file a live switch replaced (switch.c), after the kernel wrote its
 * dirty pages back: true when it is nameless from now on (unlinked, out
 * of the key map: its later writes go to an anonymous copy, as for a
 * deleted file), false when a write copied it up meanwhile (its name
 * leads to the upper's file, which hides the new image's). Takes ns_lock.
 */
bool cfs_rw_replaced(struct cfs *fs, uint64_t ino);
/*
 * A daemon restart (handover.c): what a writable mount keeps for an inode,
 * saved with its fds appended to fds (at most 2 more), and made again (the
 * fds it takes become -1; itable_lock held, in already in the table).
 */
json_object *cfs_rw_inode_save(const struct cfs_inode *in, int *fds, unsigned *nfds);
int cfs_rw_inode_load(struct cfs *fs, struct cfs_inode *in, json_object *o, int *fds,
		      unsigned nfds);
/*
 * Open directory handles of a writable mount (rw-dir.c): the kernel holds
 * their ids (fi->fh), never our pointers, so a new daemon can take them
 * over. save() gives every handle's listing as an array of parts (an id
 * and at most 1000 of its names each); load() adds one part.
 */
int cfs_rw_dirs_init(struct cfs *fs);
void cfs_rw_dirs_release(struct cfs *fs);
json_object *cfs_rw_dirs_save(struct cfs *fs);
int cfs_rw_dirs_load(struct cfs *fs, json_object *part);
/* Read-side handlers a writable mount uses for what lies in the image. */
void cfs_read_image(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void cfs_lseek_image(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi);
void cfs_init(void *userdata, struct fuse_conn_info *conn);
/* Forgets take only the switch lock: shared by both kinds of mount. */
void cfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void cfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
/* This thread's state with its transaction renewed; NULL (and *err) on failure. */
struct cfs_thread *cfs_thread_begin(struct cfs *fs, int *err);
void cfs_thread_end(struct cfs_thread *t);
void cfs_thread_free(void *p);
void cfs_fill_stat(const struct cfs_inode *in, const struct cairn_node_view *v, struct stat *st);
/*
 * The node id names, parsed into v (valid until the thread's transaction
 * ends). A node the image names must be there: anything else is damage,
 * logged and counted, and -EIO.
 */
int cfs_node_get(struct cfs *fs, struct cfs_thread *t, const struct cairn_id *id,
		 struct cairn_node_view *v);
/*
 * Answers a lookup-like request with in (holding the kernel reference the
 * reply hands over) and its attributes; a reply the kernel never gets (an
 * interrupted request) gives the reference back.
 */
void cfs_reply_entry(fuse_req_t req, struct cfs *fs, struct cfs_inode *in,
		     const struct stat *attr);
/* Answers getxattr/listxattr with len bytes of buf: the length when size is 0, ERANGE when short. */
void cfs_reply_xattr(fuse_req_t req, const void *buf, size_t len, size_t size);
/*
 * Entry i of a directory being listed, for cfs_readdir_fill(): its name
 * into name (CAIRN_NAME_MAX + 1 bytes) and its attributes into e (inode
 * number and type; with plus, all of them and a kernel reference on the
 * child, returned in *child). Returns 0, 1 to leave the entry out, or
 * -errno to end the listing there.
 */
typedef int cfs_dirent_fn(void *arg, uint64_t i, bool plus, char *name, struct fuse_entry_param *e,
			  struct cfs_inode **child);
/*
 * Fills buf (size bytes) with a readdir(plus) reply for directory in from
 * position off: "." at 0, ".." at 1, entry i of count at 2 + i (offsets
 * are positions). An entry that does not fit is not sent, and its child's
 * reference is given back. Returns the bytes filled; *err is the error
 * that ended the listing early, or 0.
 */
size_t cfs_readdir_fill(fuse_req_t req, struct cfs *fs, const struct cfs_inode *in, char *buf,
			size_t size, off_t off, bool plus, uint64_t count, cfs_dirent_fn *fn,
			void *arg, int *err);
/* Does the calling process hold CAP_SYS_ADMIN (which trusted.* xattrs need)? */
bool cfs_caller_sys_admin(fuse_req_t req);
/* Drops trusted.* names from a NUL-separated listing unless the caller may see them; new length. */
size_t cfs_list_hide_trusted(fuse_req_t req, char *list, size_t len);
void cfs_log(struct cfs *fs, int prio, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* chunks.c: the daemon's one decode path, over the store's chunk source (source.h) */
/*
 * A decoded, verified chunk from the cache, decoding it on a miss; a chunk
 * another thread decodes right now (for any mount) is waited for, not
 * decoded twice (and when that decode fails, it fails for the waiters
 * too). ahead: a read-ahead the caller knows is not cached (it counts no
 * miss); a chunk not fetched yet from a remote is then left to the fetch
 * cfs_chunks_hint() started (NULL, *err 0): no worker waits on a network
 * for a read nobody made. t->fetched tells whether the chunk came from a
 * remote (its neighbours are worth a hint). A reference: cfs_chunk_unref()
 * it. NULL and *err.
 */
struct cfs_chunk *cfs_chunk_get(struct cfs *fs, struct cfs_thread *t, const struct cairn_id *id,
				bool ahead, int *err);
/*
 * A sequential reader of cv reached extent i with a chunk from a remote:
 * the next chunks' fetches start now, without waiting (store/source.h
 * cairn_chunks_prefetch; nothing for chunks that are local).
 */
void cfs_chunks_hint(struct cfs_thread *t, const struct cairn_content_view *cv, uint32_t i);

/* mount.c: one mount's life inside a daemon */
/*
 * A new mount of o served on FUSE connection fd (not taken over here):
 * checks the image, opens the upper, makes the inode table and the
 * session. The caller adds it to the daemon's loop. 0 or -errno with a
 * message.
 */
int cfs_mount_new(struct cfs_daemon *d, const struct cfs_options *o, int fd, const char *id,
		  struct cfs **out);
/* Frees a mount no request and no control user holds any more. */
void cfs_mount_free(struct cfs *fs);
/*
 * Writes the mount's records (control.h) from its state now: its own and
 * one per bind of it. 0 or -errno.
 */
int cfs_mount_record(struct cfs *fs);
/*
 * Writes only the record of the bind view_id (just made: the others say
 * the same as before), so adding the Nth bind of a session writes one
 * file, not N. 0 or -errno.
 */
int cfs_mount_record_view(struct cfs *fs, const char *view_id);
/* Removes every record of the mount (its own and its binds'). */
void cfs_mount_unrecord(struct cfs *fs);
/* The mount's counters and the daemon's cache's, as JSON (the caller puts it). */
json_object *cfs_mount_stats(struct cfs *fs);

/*
 * Makes a handed-over mount (handover.c) of o with record id, its upper
 * from upper (NULL: read-only) and fds: no session I/O yet, no inode but
 * what the caller adds. 0 or -errno with a message.
 */
int cfs_mount_adopt(struct cfs_daemon *d, const struct cfs_options *o, const char *id,
		    json_object *upper, int *fds, unsigned nfds, struct cfs **out);
/* The old daemon lets go of a handed-over mount: no unmount, no record removed. */
void cfs_mount_let_go(struct cfs *fs);

/* daemon.c */
void cfs_mount_ref(struct cfs *fs);
void cfs_mount_unref(struct cfs *fs);
/* Every live mount, referenced (cfs_mounts_unref() them); *n is how many. NULL without memory. */
struct cfs **cfs_mounts_ref(struct cfs_daemon *d, size_t *n);
void cfs_mounts_unref(struct cfs **v, size_t n);
/* Adds a mount the daemon has set up to its list and its workers. */
void cfs_daemon_serve_mount(struct cfs_daemon *d, struct cfs *fs);
/* Every mount of a platform reads its pointer again (a switch it may have missed). */
void cfs_daemon_follow_platforms(struct cfs_daemon *d);
void cfs_daemon_log(struct cfs_daemon *d, int prio, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* handover.c */
/* The running daemon gives its mounts to the new one at the other end of sock. */
int cfs_handover_give(struct cfs_daemon *d, int sock, unsigned *given);
/* A new daemon takes every mount of the one running (d->sock_path). */
int cfs_handover_take(struct cfs_daemon *d, unsigned *taken);

#endif
