/* SPDX-License-Identifier: MIT */
/*
 * walk.h - visiting everything a tree reaches (nodes, content lists,
 * chunks), each object once, and the space figures built on that walk.
 *
 * The one idea: a tree is a Merkle DAG, so a subtree already visited is
 * known by its root's id alone. The walker keeps every object it reaches in
 * a map keyed by (kind, id); an object whose entry carries the current walk's
 * mark is not read again, and neither is anything below it. One map can
 * serve several walks (one per image, each with its own mark), so the
 * entries also say how many walks reached an object: what du needs for
 * unique and shared bytes.
 *
 * The walker reads values in place: pointers it hands to callbacks are valid
 * until the transaction ends. Missing or damaged objects do not stop a walk;
 * they are reported to the callback (fsck turns them into problems).
 */
#ifndef CAIRN_WALK_H
#define CAIRN_WALK_H

#include <stdbool.h>
#include <stdint.h>

#include "node.h"
#include "store.h"

enum cairn_obj_kind {
	CAIRN_OBJ_NODE = 1,
	CAIRN_OBJ_CONTENT = 2, /* a content record (extent list) */
	CAIRN_OBJ_CHUNK = 3,
	/* callers may key their own entries with kinds from here on */
	CAIRN_OBJ_USER = 16,
};

enum cairn_obj_state {
	CAIRN_OBJ_OK = 0,
	CAIRN_OBJ_MISSING = 1, /* no such key in its database */
	CAIRN_OBJ_DAMAGED = 2, /* the value does not parse */
	CAIRN_OBJ_REMOTE = 3,  /* a chunk a lazy pull left on its remote (lazy.h): not fetched yet */
};

/* One object in a map. Fields marked "caller" are never touched by the walker. */
struct cairn_obj {
	struct cairn_id id;
	uint8_t kind;   /* enum cairn_obj_kind; 0 marks an empty slot */
	uint8_t state;  /* enum cairn_obj_state, set on the first visit */
	uint8_t type;   /* nodes: enum cairn_node_type */
	uint8_t reserved;
	uint32_t mark;  /* the last walk that reached it */
	uint32_t walks; /* how many walks (distinct marks) reached it */
	uint32_t owner; /* the first walk that reached it */
	uint32_t aux;   /* caller */
	uint64_t vlen;  /* bytes it takes: its value; a chunk's also its pack entry */
	uint64_t len;   /* chunks: raw length; contents: file size */
};

/* A hash map of objects by (kind, id), open addressing. */
struct cairn_objmap {
	struct cairn_obj *slots;
	size_t cap; /* a power of two, or 0 */
	size_t count;
};

void cairn_objmap_init(struct cairn_objmap *m);
void cairn_objmap_release(struct cairn_objmap *m);

/*
 * Finds the entry for (kind, id), adding a zeroed one (kind and id set) if
 * absent. *added tells which. The pointer is valid until the next add.
 * Returns 0 or -ENOMEM.
 */
int cairn_objmap_add(struct cairn_objmap *m, uint8_t kind, const struct cairn_id *id,
		     struct cairn_obj **out, bool *added);
/* The entry for (kind, id) or NULL. */
struct cairn_obj *cairn_objmap_find(const struct cairn_objmap *m, uint8_t kind,
				    const struct cairn_id *id);
/* Iteration: *pos starts at 0; returns entries until NULL. */
struct cairn_obj *cairn_objmap_next(const struct cairn_objmap *m, size_t *pos);

/* How an object was reached. */
enum cairn_ref_kind {
	CAIRN_REF_ROOT = 1,    /* a root handed to cairn_walk() */
	CAIRN_REF_DIRENT = 2,  /* a directory entry: name, type */
	CAIRN_REF_CONTENT = 3, /* a regular file's content: size */
	CAIRN_REF_EXTENT = 4,  /* an extent of a content list: size, index */
};

/* One visit: an object reached through one reference. */
struct cairn_visit {
	struct cairn_obj *obj;   /* its map entry; valid during the callback */
	bool first;              /* the first time this walk reaches it */

	/* the reference */
	enum cairn_ref_kind ref;
	const struct cairn_id *from; /* the referring node or content record (NULL for a root) */
	const char *name;            /* DIRENT: the entry name (not NUL-terminated) */
	size_t name_len;
	uint8_t want_type;           /* ROOT, DIRENT: the node type the reference expects */
	uint64_t want_len;           /* CONTENT, EXTENT: the length the reference expects */
	uint32_t index;              /* EXTENT: index in the content list */

	/* the object's value, on a first visit of an object in state OK */
	const void *val;
	size_t vlen;
	const struct cairn_node_view *node;       /* nodes */
	const struct cairn_content_view *content; /* contents */
};

/*
 * Called for every reference the walk follows, including references to
 * objects already visited (first == false) and to missing or damaged ones
 * (obj->state). Return 0 to go on (on a first visit of a node or content:
 * into what it references), CAIRN_WALK_PRUNE to not go below this object,
 * or -errno to stop the walk with that error.
 */
#define CAIRN_WALK_PRUNE 1
typedef int (*cairn_walk_fn)(void *ctx, const struct cairn_visit *v);

enum cairn_walk_flags {
	CAIRN_WALK_STRICT = 1u << 0, /* parse nodes and contents with CAIRN_PARSE_STRICT */
};

/*
 * Walks everything reachable from the node root, expected to be of type
 * want_type (0: any), marking what it reaches with mark (non-zero; use a new
 * mark for each walk whose objects are counted apart, the same mark to skip
 * what an earlier walk already saw). Objects reached before with the same
 * mark are reported (first == false) but not read again. fn may be NULL.
 *
 * Returns 0, or -errno when the store cannot be read (or fn stopped it);
 * missing and damaged objects are not errors of the walk.
 */
int cairn_walk(struct cairn_txn *t, struct cairn_objmap *m, uint32_t mark, unsigned flags,
	       const struct cairn_id *root, uint8_t want_type, cairn_walk_fn fn, void *ctx);

/*
 * Every root an image keeps alive: its flattened tree and each layer's
 * tree (a layer's root is its id). Walks them all with one mark. Layers whose
 * record is missing or damaged are walked by their id all the same.
 */
int cairn_walk_image(struct cairn_txn *t, struct cairn_objmap *m, uint32_t mark, unsigned flags,
		     const struct cairn_id *image_root, const uint8_t *layers, uint32_t nlayers,
		     cairn_walk_fn fn, void *ctx);

/* Space figures of one image (du). */
struct cairn_usage {
	struct cairn_id image;
	uint64_t logical_bytes; /* the image record's logical_size */
	uint64_t stored_bytes;  /* bytes of every node, content and chunk it reaches, once */
	uint64_t unique_bytes;  /* of those, what no other image reaches */
	uint64_t chunks, contents, nodes; /* distinct objects reached */
	uint64_t chunk_bytes;   /* of stored_bytes, the chunks' */
	uint64_t missing;       /* objects it references that are missing or damaged */
	uint64_t remote;        /* chunks it reaches that are not fetched yet (lazy) */
	uint64_t remote_bytes;  /* their bytes on the remote (entries) */
};

/*
 * Figures for every image of the store (only, when not NULL: for that one,
 * still walking the others to tell unique from shared bytes). Fills *out
 * with a malloc'ed array of *n entries in image id order, and total with the
 * figures of the union (logical: the sum of the images'; unique: what exactly
 * one image reaches). Cost: one walk per image, each proportional to the
 * image's distinct objects. Returns 0 or -errno with a message.
 */
int cairn_usage_images(struct cairn_txn *t, const struct cairn_id *only,
		       struct cairn_usage **out, size_t *n, struct cairn_usage *total);

#endif
