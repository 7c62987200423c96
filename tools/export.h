/* SPDX-License-Identifier: MIT */
/*
 * export.h - writing an image's tree out: as a pax tar (cmd_export.c), for
 * the exporters that wrap one (an OCI layer, export_oci.c).
 */
#ifndef CAIRN_EXPORT_H
#define CAIRN_EXPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "image.h"
#include "store.h"

/* Takes the archive's bytes in order; returns 0 or -errno with a message. */
typedef int (*export_write_fn)(void *ctx, const void *buf, size_t len);

/*
 * Writes the tree root as the pax tar 'cairn export' writes, with the
 * root's own attributes as a first "." entry (as OCI layers carry them),
 * through fn. Returns 0 or -errno with a message.
 */
int export_tar(struct cairn_txn *t, const struct cairn_id *root, export_write_fn fn, void *ctx);

/*
 * Adds the image (named spec on the command line) to the OCI layout in dir
 * (created if missing) as one layer holding its flattened tree, gzip
 * compressed unless plain, with a config and a manifest; index.json names
 * it ref (a manifest of that name before is replaced, the others kept).
 * Blobs are written under temporary names and renamed once complete and
 * synced, index.json last, so a failure leaves the layout as it was.
 * Returns 0 or -errno with a message.
 */
int export_oci(struct cairn_txn *t, const struct cairn_image *img, const char *dir,
	       const char *ref, bool plain);

#endif
