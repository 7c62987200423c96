/* SPDX-License-Identifier: MIT */
/*
 * upper.h - the upper directory of a writable mount: its layout on the
 * host, its markers, and the rules both the daemon and `commit` read it by.
 *
 *   UPPER/tree/        the changes, shaped like the merged tree
 *   UPPER/work/        scratch on the same filesystem: copy-ups and new
 *                      entries are made here and renamed into tree/
 *   UPPER/upper.json   format version, the image it was made on, the platform
 *   UPPER/lock         flock()ed by the daemon serving it
 *
 * In tree/: a character device 0/0 is a whiteout (the image's entry of that
 * name is deleted). cairn's markers are trusted.cairn.* xattrs:
 *   opaque    "y" on a directory: nothing of the image's directory shows through
 *   redirect  32 hex digits on a directory: it was renamed, and its image
 *             part is that directory node (nodes are immutable, so no path)
 *   origin    32 hex digits on a non-directory: the image node it was copied
 *             up from
 *   metacopy  "y" next to origin: only metadata was copied; the data is
 *             still the origin node's (a sparse file of the right size).
 *             Or a decimal byte count N: the first N bytes are the origin's,
 *             the rest the file's own (an append or a truncation needed no
 *             copy of the data)
 *   device    "c 0 0" on an empty regular file: it stands for a character
 *             device 0/0 of the image, which made as itself in tree/ would
 *             read as a whiteout (its owner, mode, times and xattrs are the
 *             file's)
 * A container's own xattr trusted.cairn.NAME is stored as
 * trusted.cairn.x.NAME, so no xattr set through the mount can forge a marker.
 */
#ifndef CAIRN_FS_UPPER_H
#define CAIRN_FS_UPPER_H

#include <stdatomic.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "util.h"

#define CFS_UPPER_FORMAT 1

#define CFS_XATTR_PREFIX "trusted.cairn."
#define CFS_XATTR_OPAQUE "trusted.cairn.opaque"
#define CFS_XATTR_REDIRECT "trusted.cairn.redirect"
#define CFS_XATTR_ORIGIN "trusted.cairn.origin"
#define CFS_XATTR_METACOPY "trusted.cairn.metacopy"
#define CFS_XATTR_DEVICE "trusted.cairn.device"
#define CFS_DEVICE_CHR00 "c 0 0" /* the one value of CFS_XATTR_DEVICE */
#define CFS_XATTR_ESCAPE "trusted.cairn.x."

struct cfs_upper {
	int dir_fd;    /* UPPER itself */
	int tree_fd;   /* UPPER/tree (O_PATH) */
	int work_fd;   /* UPPER/work (O_PATH) */
	int lock_fd;   /* UPPER/lock, flock()ed while mounted; -1 when only read */
	char path[4096];
	atomic_uint seq; /* names of scratch entries in work/ */
	bool rename_whiteout; /* RENAME_WHITEOUT works on this filesystem */
	unsigned long link_max; /* links one file may have on this filesystem; 0: not known */
	bool fresh;           /* made by this open: tree/ takes the image root's attributes */
	/* from upper.json */
	struct cairn_id image; /* the image it was made on (the latest one, for a platform) */
	char platform[256];    /* empty when made on a pinned image */
};

/*
 * Opens (creating when absent) the upper directory dir for a mount and
 * locks it: -EBUSY with a message when another mount holds it. A new
 * upper records image and platform; an existing one must have been made
 * on the same platform, or on the same image when pinned (-EINVAL with a
 * message otherwise). Leftovers of an interrupted copy-up in work/ are
 * removed. Returns 0 or -errno with a message.
 */
int cfs_upper_open(const char *dir, const struct cairn_id *image, const char *platform,
		   struct cfs_upper **out);

/*
 * Opens an upper directory to read it (commit, changes). With lock, it is
 * locked as a mount locks it, until cfs_upper_close(): -EBUSY with a
 * message when a mount (or another commit) holds it, and a mount that
 * starts meanwhile is refused, so the tree cannot change while it is read.
 * Without, nothing is locked (changes reads a mounted upper too).
 * Returns 0 or -errno.
 */
int cfs_upper_open_read(const char *dir, bool lock, struct cfs_upper **out);

void cfs_upper_close(struct cfs_upper *u);

/*
 * A daemon restart hands an open upper to the new daemon: save() appends
 * its fds to fds (*nfds of them so far, room for 4 more) and returns what
 * else it is; adopt() makes it again from that and the fds received (the
 * ones it takes become -1 in fds; the lock stays held throughout, the fds
 * sharing one open file).
 */
json_object *cfs_upper_save(const struct cfs_upper *u, int *fds, unsigned *nfds);
int cfs_upper_adopt(json_object *o, int *fds, unsigned nfds, struct cfs_upper **out);

/*
 * Records the image now served under the upper (after a live switch), in
 * upper.json, synced; nothing is written when upper.json already names it.
 * 0, or -errno with a message (upper.json then still names the old image).
 */
int cfs_upper_set_image(struct cfs_upper *u, const struct cairn_id *image);

/* A fresh scratch name in work/. */
void cfs_upper_tmpname(struct cfs_upper *u, char name[32]);

/* Is st a whiteout? */
static inline bool cfs_is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

/*
 * Xattr names between the container's view and the upper: to_upper
 * escapes trusted.cairn.*; from_upper unescapes, and returns NULL for
 * cairn's own markers (which the container never sees). buf holds at
 * least XATTR_NAME_MAX + 1 + 2 bytes.
 */
const char *cfs_xattr_to_upper(const char *name, char *buf, size_t len);
const char *cfs_xattr_from_upper(const char *name, char *buf, size_t len);

/* cairn's markers of one upper object, as the daemon and commit read them. */
struct cfs_marks {
	bool opaque, metacopy, has_origin, has_redirect;
	bool dev00; /* a regular file standing for a char device 0/0 (device "c 0 0") */
	uint64_t lower_len; /* with metacopy: bytes that are the origin's (UINT64_MAX: all, "y") */
	struct cairn_id origin, redirect;
};

/*
 * Takes one xattr of an upper object (value: len bytes) into m when it is
 * one of cairn's markers. Returns true for a marker's name (a malformed
 * value leaves that marker unset), false for any other name, escaped
 * container xattrs included. Start from a zeroed m; call cfs_marks_finish()
 * after the last xattr.
 */
bool cfs_marks_parse(struct cfs_marks *m, const char *name, const void *value, size_t len);

/* A metacopy mark counts only next to a valid origin. */
void cfs_marks_finish(struct cfs_marks *m);

/*
 * Reads the markers of the upper object fd (an O_PATH fd, never followed)
 * into m; *none: it has no xattrs but markers. 0 or -errno.
 */
int cfs_upper_marks_read(int fd, struct cfs_marks *m, bool *none);

/* "/proc/self/fd/N": reaches exactly the object fd holds (an O_PATH fd too). */
static inline const char *cfs_fdpath(int fd, char buf[32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
	return buf;
}

/* Removes the entry name of dirfd and, for a directory, all below it; never follows symlinks. */
int cfs_remove_tree(int dirfd, const char *name);

#endif
