/* SPDX-License-Identifier: MIT */
/*
 * lease.c - which images a mount may still read, so gc keeps them.
 *
 * A lease is an image and the count of inodes whose node came from that
 * image's tree. An inode takes the lease of its parent directory when it
 * is made (the root takes the current image's); a live switch moves every
 * inode that the new image serves unchanged to the new lease and leaves
 * the others (files opened before the switch, a working directory the new
 * image deleted) on the old one. When the kernel forgets the last inode of
 * an old image, its lease goes, and the mount record stops listing it: a
 * mount that lives through a year of upgrades leases only the images its
 * users still read, however many that is (no fixed cap).
 *
 * Read-only mounts never see a close (the kernel's no-open mode): the
 * switch makes the kernel drop an old inode once its last user closes it
 * (switch.c, notify_delete), and the forget that follows releases it.
 */
#include "fs-internal.h"

int cfs_leases_init(struct cfs *fs)
{
	struct cfs_lease *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->image = fs->image;
	fs->leases.current = fs->leases.list = l;
	return 0;
}

void cfs_leases_release(struct cfs *fs)
{
	while (fs->leases.list) {
		struct cfs_lease *next = fs->leases.list->next;

		free(fs->leases.list);
		fs->leases.list = next;
	}
	fs->leases.current = NULL;
}

void cfs_lease_hold_locked(struct cfs *fs, struct cfs_inode *in, struct cfs_lease *l)
{
	(void)fs;
	in->lease = l;
	if (l)
		l->inodes++;
}

/* Takes l out of the list and frees it when nothing holds it and it is not current. */
static void lease_put_locked(struct cfs *fs, struct cfs_lease *l)
{
	struct cfs_lease **pp;

	if (l->inodes || l == fs->leases.current)
		return;
	for (pp = &fs->leases.list; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	free(l);
	atomic_store(&fs->leases.dirty, true);
}

void cfs_lease_drop_locked(struct cfs *fs, struct cfs_inode *in)
{
	struct cfs_lease *l = in->lease;

	in->lease = NULL;
	if (!l)
		return;
	if (l->inodes == 0) {
		cfs_log(fs, LOG_CRIT, "inode %llu: lease count underflow", (unsigned long long)in->ino);
		abort();
	}
	l->inodes--;
	lease_put_locked(fs, l);
}

void cfs_lease_move_locked(struct cfs *fs, struct cfs_inode *in, struct cfs_lease *l)
{
	if (in->lease == l)
		return;
	if (l)
		l->inodes++;
	cfs_lease_drop_locked(fs, in);
	in->lease = l;
}

struct cfs_lease *cfs_lease_get_locked(struct cfs *fs, const struct cairn_id *image)
{
	struct cfs_lease *l;

	for (l = fs->leases.list; l; l = l->next)
		if (cairn_id_eq(&l->image, image))
			return l; /* back to an image still leased (a rollback) */
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->image = *image;
	l->next = fs->leases.list;
	fs->leases.list = l;
	return l;
}

void cfs_lease_set_current_locked(struct cfs *fs, struct cfs_lease *l)
{
	struct cfs_lease *old = fs->leases.current;

	fs->leases.current = l;
	if (old && old != l) {
		lease_put_locked(fs, old);
		atomic_store(&fs->leases.dirty, true);
	}
}

size_t cfs_leases_get(struct cfs *fs, struct cairn_id **out)
{
	struct cairn_id *v = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&fs->itable_lock);
	for (struct cfs_lease *l = fs->leases.list; l; l = l->next)
		cap++;
	v = calloc(cap ? cap : 1, sizeof(*v));
	for (struct cfs_lease *l = fs->leases.list; v && l; l = l->next)
		v[n++] = l->image;
	pthread_mutex_unlock(&fs->itable_lock);
	*out = v;
	return n;
}

void cfs_leases_publish(struct cfs *fs)
{
	if (!atomic_exchange(&fs->leases.dirty, false))
		return;
	if (fs->leases.publish)
		fs->leases.publish(fs->leases.publish_arg);
}
