/* SPDX-License-Identifier: MIT */
/*
 * import.h - importers: sources that become trees in a store.
 */
#ifndef CAIRN_IMPORT_H
#define CAIRN_IMPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "writer.h"

struct import_result {
	struct cairn_id root;  /* the tree's root node */
	uint64_t entries;      /* nodes in the tree, the root included */
	uint64_t logical_size; /* regular file bytes, hard-link groups once */
};

/*
 * Imports the directory src through w. store_dir is refused if it lies
 * inside src. show: progress on stderr. Returns 0 or -errno with a message.
 */
int import_dir(struct cairn_writer *w, const char *src, const char *store_dir, bool show,
	       struct import_result *res);

#endif
