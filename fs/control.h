/* SPDX-License-Identifier: MIT */
/*
 * control.h - the one protocol between the cairn command and its daemons:
 * the control socket's messages and the mount records, both in STORE/run.
 *
 * Both sides compile this module; nothing else reads or writes these
 * files or messages. (No FUSE in here: the CLI uses it without a mount.)
 *
 * STORE/run (0700) holds:
 *   daemon.sock    the store's shared daemon (SOCK_SEQPACKET, 0600)
 *   daemon.lock    flock()ed: shared by a command talking to the daemon,
 *                  exclusive to start one or to let one exit (see below)
 *   PID.sock       an --isolated daemon's own socket
 *   mount-ID.json  one record per mount, written by its daemon
 *
 * Messages: one JSON object per datagram of a SOCK_SEQPACKET socket, with
 * file descriptors attached (SCM_RIGHTS) where a request hands some over.
 * Every message carries "v": CFS_CTL_VERSION; a side that receives another
 * version answers {"error": ...} naming both versions and does nothing
 * else. A reply has "error" (one line for people) or the request's result.
 * Requests ("op"):
 *   hello                       -> {pid, version, mounts}
 *   mount  {options} + 1 fd     -> {id}: serve the FUSE connection fd
 *   switch {platform}           -> {mounts: [{id, mountpoint, outcome}], ms}
 *   stats  {id}                 -> the mount's counters and the cache's
 *   share  {options}            -> {id, mountpoint}: a read-only mount of the same source
 *                                  and options with a mountpoint in the caller's namespace
 *                                  ("" when none), for the caller to bind
 *   bind   {id, mountpoint, ns} -> {id}: the caller bound mount id's session there
 *   forget {id}                 -> {}: record id's mountpoint was unmounted
 *   restart                     -> hand every mount to the caller (daemon.c)
 *
 * Starting and stopping the shared daemon without races: a command takes
 * daemon.lock shared, connects, and keeps the lock until its answer is in;
 * when it finds no daemon it retakes the lock exclusively, looks again, and
 * starts one. A daemon whose last mount ended exits only after taking the
 * lock exclusively (without waiting) and removing daemon.sock under it. So
 * two first mounts at once start one daemon, and no request is ever sent to
 * a daemon that has decided to exit.
 */
#ifndef CAIRN_FS_CONTROL_H
#define CAIRN_FS_CONTROL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fs.h"
#include "util.h"

#define CFS_CTL_VERSION 1
#define CFS_CTL_MAX_MSG (1u << 20) /* bytes of one message */
#define CFS_CTL_MAX_FDS 250        /* fds of one message (the kernel allows 253) */
#define CFS_CTL_TIMEOUT_MS 10000   /* default bound of one request's answer */

/* STORE/run, made (0700) when missing. 0 or -errno. */
int cfs_run_dir(const char *store_dir, char *buf, size_t len);
/*
 * The shared daemon's socket: STORE/run/daemon.sock, or "@cairn-HASH" in
 * the abstract namespace when the store's path is too deep for sun_path.
 */
int cfs_ctl_daemon_socket(const char *store_dir, char *buf, size_t len);
/* An isolated daemon's socket, for pid. */
int cfs_ctl_isolated_socket(const char *store_dir, int pid, char *buf, size_t len);
/* Opens (creating, 0600) STORE/run/daemon.lock; the fd (O_CLOEXEC) or -errno. */
int cfs_ctl_lock_open(const char *store_dir);

/* Binds and listens on path (SOCK_SEQPACKET, 0600, a stale file replaced). fd or -errno. */
int cfs_ctl_listen(const char *path);
/*
 * Connects to path; the fd or -errno (-ENOENT, -ECONNREFUSED: no daemon
 * there). An abstract name, which anyone may bind, is talked to only when
 * the process listening on it is root's or this user's (-EACCES with a
 * message otherwise).
 */
int cfs_ctl_connect(const char *path);
/* Is pid a live process (not gone, not a zombie)? */
bool cfs_pid_alive(int pid);
/* The credentials of a connected socket's peer (SO_PEERCRED). 0 or -errno. */
int cfs_ctl_peer(int sock, struct ucred *cred);
/* Removes the socket file (nothing for an abstract name). */
void cfs_ctl_unlink(const char *path);

/* A new request {"v": CFS_CTL_VERSION, "op": op}; NULL without memory. */
json_object *cfs_ctl_request(const char *op);
/* A new reply: {"v": ...} and, when err is not NULL, {"error": err}. */
json_object *cfs_ctl_reply(const char *err);

/* Sends msg with nfds fds attached (they stay open here). 0 or -errno. */
int cfs_ctl_send(int sock, json_object *msg, const int *fds, unsigned nfds);
/*
 * Receives one message within timeout_ms (-1: no bound). *msg is the parsed
 * object (the caller puts it); up to maxfds received fds land in fds (the
 * caller owns them; any beyond maxfds are closed) and their count in *nfds.
 * Returns 0, -ETIMEDOUT, -ECONNRESET (the peer went away), -EPROTO (not a
 * JSON object, or another protocol version: cairn_errmsg() says which).
 */
int cfs_ctl_recv(int sock, int timeout_ms, json_object **msg, int *fds, unsigned *nfds,
		 unsigned maxfds);

/*
 * Connects to path, sends req (and fds) and waits for the answer (within
 * timeout_ms). *reply is the answer (the caller puts it). Returns 0, or
 * -errno with a message (an "error" in the answer is -EPROTO, its text the
 * message). req is not consumed.
 */
int cfs_ctl_call(const char *path, json_object *req, const int *fds, unsigned nfds,
		 int timeout_ms, json_object **reply);

/* The "mount" request for o (its fd goes beside it); NULL without memory. */
json_object *cfs_ctl_mount_request(const struct cfs_options *o);
/*
 * The mount a "mount" request describes; the strings point into req (valid
 * while it is). 0 or -EPROTO with a message.
 */
int cfs_ctl_mount_options(json_object *req, struct cfs_options *o);

/* Typed reads of a message's members ("" / 0 when absent). */
const char *cfs_ctl_str(json_object *o, const char *key);
int64_t cfs_ctl_int(json_object *o, const char *key);
bool cfs_ctl_bool(json_object *o, const char *key);

/* --- mount records ------------------------------------------------------- */

/*
 * What STORE/run says about one mount: written by the daemon serving it
 * (at mount, after a switch, at a handover), removed when the mount ends.
 */
struct cfs_record {
	char id[32];              /* unique in the store: "PID-N" of the daemon that made it */
	int pid;                  /* the daemon serving it now */
	bool alive;               /* (loaded) pid is running */
	bool isolated;            /* its own daemon (mount --isolated, -f) */
	bool ro;
	char *socket;             /* the serving daemon's control socket */
	char *mountpoint;         /* absolute, in mount namespace ns */
	uint64_t ns;              /* inode of the mount namespace it was made in */
	char *source;             /* what the user named */
	char *platform;           /* the platform followed, "" for a pinned image */
	char *upper;              /* the upper directory, "" for a read-only mount */
	char *shares;             /* the id of the mount whose session this binds, or "" */
	struct cairn_id image;    /* served now */
	uint64_t generation;      /* of the platform, when it follows one */
	struct cairn_id *leases;  /* images it may still read: gc keeps them */
	size_t nleases;
	int64_t started_ns;
};

/* Writes r atomically (a new file renamed over the old). 0 or -errno. */
int cfs_record_write(const char *store_dir, const struct cfs_record *r);
/* Removes the record of mount id (gone already is fine). */
void cfs_record_remove(const char *store_dir, const char *id);
/*
 * Every record of the store, alive or not (a daemon killed leaves its
 * records behind: they say "dead" until the mount is cleaned up). Returns
 * how many (0 when none) with *out to free with cfs_records_free(), or
 * -errno.
 */
int cfs_records_load(const char *store_dir, struct cfs_record **out);
void cfs_records_free(struct cfs_record *rs, int n);
/* Frees what one record holds (not r itself). */
void cfs_record_release(struct cfs_record *r);

/* The calling process's mount namespace (its inode), or 0. */
uint64_t cfs_ctl_mount_ns(void);

#endif
