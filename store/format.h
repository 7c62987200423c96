/* SPDX-License-Identifier: MIT */
/*
 * format.h - every on-disk encoding of a cairn store, in one place.
 *
 * A store is one LMDB environment with the named databases below. Every
 * value starts with a one-byte format version; integers are fixed-width
 * little-endian. Ids are XXH3-128 digests written as 16 bytes, high 64 bits
 * first (so the hex form of an id reads the same as XXH3's canonical form).
 *
 * The one idea: everything is content-addressed. A node's id is the hash of
 * its canonical encoding, and a directory's encoding names its children by
 * id, so a directory id covers its whole subtree (a Merkle tree). Nothing
 * that depends on where or when a tree was imported (ctime, inode numbers,
 * the source's sparse allocation) goes into a node; the store's chunking
 * parameters do, through content list ids (see "Content").
 *
 * CAIRN_STORE_FORMAT 2 hashed holes as lengths and fixed when a file is
 * one chunk; format 3 names a content list by the hash of the list itself
 * (see "Content" below). A store of an older format is refused when it is
 * opened, with one message saying so.
 */
#ifndef CAIRN_FORMAT_H
#define CAIRN_FORMAT_H

#include <stdint.h>

#define CAIRN_FORMAT_VERSION 1u /* the leading byte of every value */
#define CAIRN_ID_LEN 16u

/* Named databases (mdb_dbi_open names). */
#define CAIRN_DB_META "meta"           /* "store" -> struct cairn_meta_disk */
#define CAIRN_DB_CHUNKS "chunks"       /* chunk id -> struct cairn_chunk_disk */
#define CAIRN_DB_CONTENTS "contents"   /* content id -> extent list */
#define CAIRN_DB_NODES "nodes"         /* node id -> node encoding */
#define CAIRN_DB_LAYERS "layers"       /* layer id -> layer record */
#define CAIRN_DB_IMAGES "images"       /* image id -> image record */
#define CAIRN_DB_TAGS "tags"           /* tag name -> image id */
#define CAIRN_DB_PLATFORMS "platforms" /* platform name -> platform record */
#define CAIRN_DB_HISTORY "history"     /* name \0 gen(u64 BE) -> generation */
#define CAIRN_DB_PACKS "packs"         /* pack id (u32 BE) -> struct cairn_pack_disk */
#define CAIRN_DB_REMOTES "remotes"     /* remote name -> remote record */
#define CAIRN_DB_FOLLOWS "follows"     /* platform name -> follow record */
#define CAIRN_DB_LAZY "lazy"           /* chunk id -> struct cairn_lazy_disk, remote name */
#define CAIRN_DB_COUNT 13
/*
 * Databases from this index on came after stores existed without them:
 * opening a writable store creates them when missing; a read-only store
 * without them reads them as empty.
 */
#define CAIRN_DB_FIRST_ADDED 10

#define CAIRN_META_KEY "store"
/*
 * meta "epoch" -> u64: bumped by every transaction that publishes an image
 * or points a name (tag, platform, generation) at one. A process that saw
 * the same epoch before and after some work knows nothing was named or
 * published meanwhile (gc's naming protocol, an abandoned import's
 * clean-up). Absent in a store that never published: 0.
 */
#define CAIRN_META_EPOCH_KEY "epoch"

/*
 * Store metadata: the chunking a store cuts data runs with, fixed when the
 * store is made. Content list ids cover the chunk ids (see "Content"), so
 * node, content and image ids depend on it too: two stores agree on an
 * image id when they chunk alike (the defaults do, on any machine).
 */
struct cairn_meta_disk {
	uint8_t version;     /* CAIRN_FORMAT_VERSION */
	uint8_t hash_algo;   /* CAIRN_HASH_XXH3_128 */
	uint8_t reserved[2];
	uint32_t format;     /* store layout revision, CAIRN_STORE_FORMAT */
	uint32_t chunk_min;  /* content-defined chunking, bytes */
	uint32_t chunk_avg;
	uint32_t chunk_max;
	uint32_t hole_block; /* CAIRN_HOLE_BLOCK: a format constant, recorded */
	uint64_t gear_seed;  /* seeds the gear table (splitmix64) */
	int32_t zstd_level;  /* default level for new chunks */
	uint32_t reserved2;
	int64_t created_ns;
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_meta_disk) == 48, "meta record layout");

#define CAIRN_HASH_XXH3_128 1u
#define CAIRN_STORE_FORMAT 3u

/*
 * Chunk: a piece of file content, id = XXH3-128(raw bytes).
 *
 * A chunk's bytes live in an append-only pack file, STORE/packs/%08x.pack;
 * the chunks database indexes them. (Kept in LMDB itself, each value would
 * round up to whole overflow pages and bloat the leaves: measured at 19%
 * of a Debian store, see README.) A pack entry repeats the chunk's id and
 * lengths, so an index record that points at the wrong place is caught
 * before any bytes are decoded, and a pack can be re-indexed on its own.
 *
 * Pack file: struct cairn_pack_header, then entries: struct
 * cairn_pack_entry followed by len payload bytes (raw or compressed).
 * Bytes past the size recorded in the packs database were written by an
 * import that did not commit them: garbage that gc reclaims.
 */
enum cairn_codec {
	CAIRN_CODEC_RAW = 0,
	CAIRN_CODEC_ZSTD = 1,
};

enum cairn_chunk_flags {
	/* came from untrusted input (tar, OCI): dedup hits are byte-compared */
	CAIRN_CHUNK_UNTRUSTED = 1u << 0,
};

struct cairn_chunk_disk {
	uint8_t version;
	uint8_t codec;    /* enum cairn_codec */
	uint8_t flags;    /* enum cairn_chunk_flags */
	uint8_t reserved;
	uint32_t dict_id; /* zstd dictionary id, 0 = none (reserved for later) */
	uint32_t raw_len; /* decoded length, 1..CAIRN_CHUNK_MAX_LIMIT */
	uint32_t len;     /* stored payload length */
	uint32_t pack;    /* pack file id */
	uint64_t offset;  /* of the entry (its header) in the pack */
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_chunk_disk) == 28, "chunk index layout");

#define CAIRN_PACK_MAGIC "cairnpk"   /* 7 bytes and a NUL */

struct cairn_pack_header {
	char magic[8];
	uint8_t version;
	uint8_t reserved[3];
	uint32_t pack;    /* its own id */
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_pack_header) == 16, "pack header layout");

struct cairn_pack_entry {
	uint8_t version;
	uint8_t codec;
	uint8_t flags;
	uint8_t reserved;
	uint32_t dict_id;
	uint32_t raw_len;
	uint32_t len;
	uint8_t id[CAIRN_ID_LEN];
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_pack_entry) == 32, "pack entry layout");

/* Packs database value: how much of a pack file is committed. */
struct cairn_pack_disk {
	uint8_t version;
	uint8_t reserved[3];
	uint64_t size;
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_pack_disk) == 12, "pack record layout");

#define CAIRN_PACK_ROTATE (1ull << 30) /* a writer starts a new pack past this */

#define CAIRN_CHUNK_MAX_LIMIT (4u << 20) /* no chunk is ever larger */

/*
 * Content (format 3). A regular file's bytes are cut, at fixed offsets,
 * into blocks of CAIRN_HOLE_BLOCK bytes. A whole block of zero bytes is a
 * hole block (a shorter last block never is). A maximal run of hole blocks
 * is a hole; a maximal run of the other bytes is a data run.
 *
 * Content kind (in the node): EMPTY for no bytes; CHUNK for
 * 1..CAIRN_ONE_CHUNK_MAX bytes with no hole, stored as one chunk whatever
 * the store's chunk sizes, with no content record; LIST for the rest.
 *
 * Content record (LIST): the file as a list of extents with cumulative end
 * offsets, so a read at any offset finds its extent by binary search. Each
 * data run is cut into chunks by the store's chunker (restarted at every
 * run); each hole is one extent with an all-zero id, its length the
 * difference of two end offsets. Value: header, then count entries.
 *
 * Content id, what the node names:
 *
 *   EMPTY:  XXH3-128 of no bytes
 *   CHUNK:  the chunk's id (XXH3-128 of the bytes)
 *   LIST:   XXH3-128, seeded with CAIRN_LIST_SEED, of the content record's
 *           value exactly as the contents database keeps it (the size, and
 *           each extent's end offset and chunk id; holes as lengths)
 *
 * So the id covers the list itself, down to the chunk ids, and an image id
 * covers its whole tree down to every chunk id: each object a remote sends
 * verifies on its own, before any other is fetched (a lazy pull checks a
 * content list at once; its chunks when they are read). Making the id
 * costs one hash of the list, never a second pass over the file's bytes,
 * and a hole costs one extent whatever its length (a 1 TiB sparse file
 * makes its id in microseconds).
 *
 * The price: a LIST's id depends on where the store's chunker cuts, so
 * node, content and image ids depend on the store's chunking parameters
 * (chunk_min/avg/max and gear_seed in the store's metadata, fixed when the
 * store is made). The same bytes with the same chunking give the same ids
 * on any machine (the defaults are the common case); a remote records the
 * chunking of the stores that push to it and refuses a store with other
 * parameters (remote/layout.h, the marker). The seed keeps content ids
 * apart from node and chunk ids of the same bytes.
 *
 * Format 2 hashed the file's bytes instead (chunking played no part): a
 * lazily pulled list could then not be checked until all its chunks were
 * local. A store of format 1 or 2 is refused when it is opened, with one
 * message saying so.
 */
#define CAIRN_HOLE_BLOCK 4096u
#define CAIRN_ONE_CHUNK_MAX (64u << 10)
#define CAIRN_LIST_SEED 0x636169726e6c7374ull /* "cairnlst" */
_Static_assert(CAIRN_ONE_CHUNK_MAX <= CAIRN_CHUNK_MAX_LIMIT, "a one-chunk file fits a chunk");
_Static_assert(CAIRN_ONE_CHUNK_MAX % CAIRN_HOLE_BLOCK == 0, "whole blocks");

struct cairn_content_disk {
	uint8_t version;
	uint8_t reserved[3];
	uint32_t count;    /* number of extents */
	uint64_t size;     /* == end of the last extent */
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_content_disk) == 16, "content header layout");

struct cairn_extent_disk {
	uint64_t end;                 /* cumulative end offset of this extent */
	uint8_t id[CAIRN_ID_LEN];     /* chunk id, or all zero for a hole */
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_extent_disk) == 24, "extent layout");

/*
 * Node: one filesystem object.
 *
 *   struct cairn_node_disk
 *   if nlink > 1:   u8 link_key[16]   hard-link group (see below)
 *   xattrs:         nxattr x { u16 name_len, u32 value_len, name, value }
 *                   sorted by name bytes, names unique, no NUL in names
 *   per type:
 *     REG:     struct cairn_node_reg
 *     LNK:     u32 len, target bytes (1..4095, no NUL)
 *     CHR/BLK: u32 major, u32 minor
 *     DIR:     struct cairn_dir_disk, count x struct cairn_dirent_disk
 *              sorted by name bytes, then the name blob
 *     FIFO/SOCK/WHITEOUT: nothing
 *
 * A hard-link group (nlink > 1, never a directory) is named by
 * XXH3-128("cairn-link" || path) of its first member in depth-first
 * name order; nlink counts members inside the tree. All members of a
 * group have the same encoding, so the same node id: that is how a
 * reader knows they share an inode. An unlinked file has nlink 1 and no
 * key, so two identical unlinked files share a node id but are distinct
 * entries (a reader gives each entry its own inode). Only subtrees that
 * hold a member of the group depend on its key.
 */
enum cairn_node_type {
	CAIRN_NODE_REG = 1,
	CAIRN_NODE_DIR = 2,
	CAIRN_NODE_LNK = 3,
	CAIRN_NODE_CHR = 4,
	CAIRN_NODE_BLK = 5,
	CAIRN_NODE_FIFO = 6,
	CAIRN_NODE_SOCK = 7,
	CAIRN_NODE_WHITEOUT = 8, /* a layer's deletion marker; never in a flattened tree */
};

enum cairn_node_flags {
	CAIRN_NODE_OPAQUE = 1u << 0, /* directory hides the lower layers' contents */
};

struct cairn_node_disk {
	uint8_t version;
	uint8_t type;       /* enum cairn_node_type */
	uint8_t flags;      /* enum cairn_node_flags */
	uint8_t reserved;
	uint32_t mode;      /* permission bits only: mode & 07777 */
	uint32_t uid;
	uint32_t gid;
	int64_t mtime_sec;
	uint32_t mtime_nsec; /* < 1e9 */
	uint32_t nlink;      /* 1, or hard-link group size; 0 for directories */
	uint32_t nxattr;
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_node_disk) == 36, "node header layout");

enum cairn_content_kind {
	CAIRN_CONTENT_EMPTY = 0, /* size 0; content id is XXH3-128 of "" */
	CAIRN_CONTENT_CHUNK = 1, /* <= CAIRN_ONE_CHUNK_MAX, no hole: one chunk, its id */
	CAIRN_CONTENT_LIST = 2,  /* content id keys the contents database */
};

struct cairn_node_reg {
	uint64_t size;
	uint8_t kind;            /* enum cairn_content_kind */
	uint8_t content[CAIRN_ID_LEN];
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_node_reg) == 25, "regular file layout");

struct cairn_dir_disk {
	uint32_t count;
	uint32_t names_len; /* bytes of the name blob after the entries: the names in
			       entry order, packed */
} __attribute__((packed));

/* Fixed-size so a directory is binary-searched in place in the map. */
struct cairn_dirent_disk {
	uint8_t id[CAIRN_ID_LEN];
	uint32_t name_off;  /* into the name blob */
	uint16_t name_len;  /* 1..255, no '/' or NUL, not "." or ".." */
	uint8_t type;       /* enum cairn_node_type of the child */
	uint8_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_dirent_disk) == 24, "dirent layout");

/*
 * Depth: no path of a tree has more than CAIRN_DEPTH_MAX names (a file at
 * a/b/c has three). Every importer (a directory, a tar, an OCI layer, a
 * commit of an upper directory) refuses a deeper tree with one line before
 * anything is published; every walker of a stored tree that recurses (diff,
 * stacking, export, ls -R, the daemon's re-binding and hard-link search)
 * stops there with the same error, so a damaged or hostile store cannot
 * overflow a stack either. The iterative walker (store/walk.h: fsck, gc,
 * du) takes any depth. 1024 levels of the deepest recursion take about
 * 1 MiB of stack (a few MiB under AddressSanitizer), well inside the 8 MiB
 * a process or thread gets; a tar cannot hold more than 2048 levels anyway
 * (PATH_MAX), and real root filesystems stay under 50.
 */
#define CAIRN_DEPTH_MAX 1024u

#define CAIRN_NAME_MAX 255u
#define CAIRN_SYMLINK_MAX 4095u
#define CAIRN_XATTR_NAME_MAX 255u
#define CAIRN_XATTR_VALUE_MAX 65536u

/*
 * Layer: a tree as imported (it may hold whiteouts and opaque directories).
 * Key: the layer id, which is the root node id of its tree.
 *   u8 version, u8 source (enum cairn_layer_source), u16 reserved,
 *   u8 root[16]
 */
enum cairn_layer_source {
	CAIRN_LAYER_DIR = 1,
	CAIRN_LAYER_TAR = 2,
	CAIRN_LAYER_OCI = 3,
	CAIRN_LAYER_COMMIT = 4,
};

struct cairn_layer_disk {
	uint8_t version;
	uint8_t source;
	uint16_t reserved;
	uint8_t root[CAIRN_ID_LEN];
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_layer_disk) == 20, "layer layout");

/*
 * Image: an ordered stack of layers (bottom first) and the flattened tree
 * they produce. Image id = XXH3-128("cairn-image" || nlayers(u32) ||
 * layer ids || root id): the same layers give the same image on any
 * machine; when and why it was made are kept but not hashed.
 *
 *   struct cairn_image_disk, nlayers x u8[16] layer ids, msg bytes
 */
struct cairn_image_disk {
	uint8_t version;
	uint8_t reserved[3];
	uint32_t nlayers;
	uint8_t root[CAIRN_ID_LEN];  /* flattened tree */
	int64_t created_ns;
	uint64_t logical_size;       /* sum of regular file sizes, hard links once */
	uint64_t nodes;              /* entries in the flattened tree */
	uint32_t msg_len;
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_image_disk) == 52, "image layout");

/*
 * Platform: name -> struct cairn_platform_disk (current generation and
 * image). History: key name || '\0' || generation (u64 big-endian, so a
 * cursor walks a platform's generations in order) -> struct
 * cairn_history_disk. Generations start at 1 and only grow; every upgrade
 * or rollback appends one. A rollback records the generation it restored,
 * so repeated rollbacks walk further back.
 */
struct cairn_platform_disk {
	uint8_t version;
	uint8_t reserved[3];
	uint64_t generation;
	uint8_t image[CAIRN_ID_LEN];
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_platform_disk) == 28, "platform layout");

enum cairn_action {
	CAIRN_ACTION_UPGRADE = 1,
	CAIRN_ACTION_ROLLBACK = 2,
};

struct cairn_history_disk {
	uint8_t version;
	uint8_t action;     /* enum cairn_action */
	uint16_t reserved;
	uint8_t image[CAIRN_ID_LEN];
	int64_t time_ns;
	uint64_t restored;  /* for a rollback: the generation whose image it restored */
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_history_disk) == 36, "history layout");

/*
 * Remote: name (the tag rules) -> struct cairn_remote_disk, then the four
 * strings it counts, without NULs: the URL ("s3://BUCKET[/PREFIX]"), the
 * endpoint ("http[s]://HOST[:PORT]"), the CA file and the credentials file
 * (absolute paths, or empty). Credentials are never stored: only where to
 * read them. trust_key is an Ed25519 public key when CAIRN_REMOTE_TRUST is
 * set: pointers (tags, generations) from this remote must be signed by it.
 */
enum cairn_remote_flags {
	CAIRN_REMOTE_TRUST = 1u << 0,
};

struct cairn_remote_disk {
	uint8_t version;
	uint8_t flags;        /* enum cairn_remote_flags */
	uint16_t reserved;
	uint32_t timeout_ms;  /* for reads */
	uint8_t trust_key[32];
	uint16_t url_len;
	uint16_t endpoint_len;
	uint16_t ca_len;
	uint16_t cred_len;
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_remote_disk) == 48, "remote layout");

/*
 * Follow: platform name -> struct cairn_follow_disk, then the remote's name
 * (remote_len bytes). remote_gen is the highest generation of the remote's
 * platform this platform was switched to (a follower never moves to a lower
 * or equal one), local_gen the local generation that switch made. It is
 * written in the same transaction as that switch. A platform whose current
 * generation is no longer local_gen was moved by hand (a local rollback):
 * following is paused until a follow --resume.
 */
struct cairn_follow_disk {
	uint8_t version;
	uint8_t reserved[3];
	uint64_t remote_gen;
	uint64_t local_gen;
	uint16_t remote_len;
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_follow_disk) == 22, "follow layout");

/*
 * Lazy: a chunk a lazy pull (pull --lazy) made known but did not fetch,
 * and where it is: chunk id -> struct cairn_lazy_disk, then the remote's
 * name (name_len bytes, no NUL). raw_len is the length the chunk's content
 * list gives it (so a reader knows it without asking the remote); the
 * rest says where its entry is on the remote (remote/layout.h: the pack
 * named by its id, the entry's offset and length, header included). All of
 * it is untrusted as far as the bytes go: a fetched entry is checked
 * against the chunk id before it is served or kept. A chunk that is local
 * (the chunks database) is read from there whatever this says; gc drops a
 * record once no kept image reaches its chunk, or the chunk is local.
 */
struct cairn_lazy_disk {
	uint8_t version;
	uint8_t reserved;
	uint8_t reserved2;
	uint8_t name_len;     /* the remote's name, 1..255 bytes after this record */
	uint32_t raw_len;     /* decoded length */
	uint32_t len;         /* the entry on the remote, its header included */
	uint32_t reserved3;
	uint64_t offset;      /* of the entry in the remote pack */
	uint8_t pack[CAIRN_ID_LEN]; /* the remote pack's id */
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_lazy_disk) == 40, "lazy record layout");

#endif
