/* SPDX-License-Identifier: MIT */
/*
 * import_tar.c - a tar stream (plain, gzip or zstd; ustar, GNU or pax)
 * becomes a Merkle tree of nodes.
 *
 * The archive is read once, front to back, through libarchive. File bytes
 * go straight into the writer as they are read (gaps between libarchive's
 * data blocks are holes, so sparse entries stay sparse); what stays in
 * memory is an index of the tree: one record per path and one per inode,
 * metadata only. A tar is a sequence of instructions to apply in order, so
 * the index follows tar semantics: a later entry for a path replaces the
 * earlier one, a hard link shares the inode its target has at that point,
 * and directories a path implies are made with default attributes. Once
 * the archive has ended, nodes are built bottom-up exactly as import_dir.c
 * builds them, so a tree gets the same ids whichever way it arrives.
 *
 * The input is untrusted. Every path is checked before anything is done
 * with it: no absolute paths, no '..', no empty or overlong names, and no
 * entry below a path that an earlier entry made a symlink (the index is
 * never walked through a symlink, so nothing can point an entry elsewhere).
 * Hard links must name an earlier entry. File bytes are bounded by a
 * limit (a compressed archive of zeros is small). Any bad entry fails the
 * whole import with one message naming it; nothing is published.
 *
 * A layer (an OCI layer, or a tar imported with --on) may hold OCI
 * whiteouts: '.wh.NAME' becomes a WHITEOUT node NAME, '.wh..wh..opq' flags
 * its directory OPAQUE (cairn_stack applies both). As the OCI spec says, a
 * whiteout only deletes what lies below the layer, never an entry of the
 * same layer, whatever their order: '.wh.NAME' beside a directory NAME of
 * the same layer makes that directory opaque, beside any other entry it
 * changes nothing. A directory the layer only implies (no entry of its
 * own, as in layers that list just the files they change) keeps the
 * attributes the base has at that path, as extracting the layer over the
 * base would.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "import.h"
#include "read.h"

#define TAR_READ_BUF (128u * 1024)
#define SHOW_MAX 160 /* bytes of a path shown in a message */

/* The kernel's POSIX ACL xattr: u32 version 2, then {u16 tag, u16 perm, u32 id}. */
#define ACL_XATTR_VERSION 2u
#define ACL_UNDEFINED_ID 0xffffffffu
enum acl_tag {
	ACL_TAG_USER_OBJ = 0x01,
	ACL_TAG_USER = 0x02,
	ACL_TAG_GROUP_OBJ = 0x04,
	ACL_TAG_GROUP = 0x08,
	ACL_TAG_MASK = 0x10,
	ACL_TAG_OTHER = 0x20,
};

/*
 * An inode: what hard links share. Entries hold references; an inode that
 * a later entry replaced everywhere is freed.
 */
struct inode {
	uint32_t refs;
	uint8_t type; /* enum cairn_node_type */
	uint32_t mode, uid, gid;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	struct cairn_xattr *xattrs; /* sorted; names and values in the same allocation */
	size_t nxattr;
	/* REG */
	uint64_t size;
	uint8_t content_kind;
	struct cairn_id content;
	/* LNK */
	char *target;
	size_t target_len;
	/* CHR, BLK */
	uint32_t major, minor;
	bool implied;          /* a directory without an entry of its own */
	/* while building */
	uint32_t seen;         /* members met so far in depth-first order */
	struct cairn_id key;   /* hard-link group key, from the first member */
	bool built, counted;
	struct cairn_id id;
};

/* A path in the tree. Never removed once added: a replaced entry keeps its record. */
struct tnode {
	struct tnode *parent;
	struct inode *ino;
	struct tnode **kids; /* directories */
	uint32_t nkids, kids_cap;
	bool whiteout;       /* '.wh.NAME' was in the layer: a directory here is opaque */
	bool opaque;         /* '.wh..wh..opq' was in it */
	uint16_t name_len;
	char name[]; /* NUL-terminated */
};

/* Children by (parent, name): open addressing, never shrinks. */
struct tindex {
	struct tnode **slots;
	size_t cap, count;
};

/*
 * The input: a file or stdin, or a caller's stream, read through our
 * callback so errors and magic bytes are ours.
 */
struct source {
	int fd;
	const struct tar_stream *stream; /* or NULL */
	uint8_t *buf;
	uint8_t magic[8];
	size_t magic_len;
	uint64_t offset;
};

struct tar_import {
	struct cairn_writer *w;
	struct archive *a;
	struct source src;
	struct tnode *root;
	struct tindex index;
	bool layer;           /* whiteouts allowed */
	const struct cairn_id *base;
	struct cairn_txn *txn; /* reads the base while building */
	uint64_t max_bytes;
	uint64_t data_bytes;  /* logical file bytes read so far (holes too) */
	uint64_t max_entries;
	uint64_t entries;     /* archive entries read */
	uint64_t meta_bytes;  /* xattrs and symlink targets kept in the index */
	uint64_t nodes;       /* records in the tree, the root included */
	uint64_t logical_size;
	const char *entry;    /* pathname of the current entry, as in the archive */
	char *last;           /* pathname of the entry before, for errors between entries */
	bool progress;
	int64_t start_ns, last_ns;
	struct cairn_buf path; /* while building: the current path, NUL-terminated */
};

/* --- messages ----------------------------------------------------------- */

static int entry_err(struct tar_import *t, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A path for a message: escaped, and cut short when long. */
static void show_path(char *out, size_t cap, const char *p)
{
	size_t o = 0, len = strlen(p);

	for (size_t i = 0; i < len && o + 8 < cap; i++) {
		unsigned char c = (unsigned char)p[i];

		if (i == SHOW_MAX) {
			o += (size_t)snprintf(out + o, cap - o, "...(%zu bytes)", len);
			break;
		}
		if (c == '\\')
			o += (size_t)snprintf(out + o, cap - o, "\\\\");
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o < cap ? o : cap - 1] = '\0';
}

/* "entry 'PATH': MESSAGE" for the current entry. */
static int __attribute__((format(printf, 3, 4)))
entry_err(struct tar_import *t, int ret, const char *fmt, ...)
{
	char p[SHOW_MAX * 4 + 32], msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	show_path(p, sizeof(p), t->entry ? t->entry : "");
	return cairn_err(ret, "entry '%s': %s", p, msg);
}

static const char *magic_name(const struct source *s)
{
	static const struct {
		const char *magic;
		size_t len;
		const char *name;
	} known[] = {
		{ "\xfd" "7zXZ\0", 6, "xz" },   { "BZh", 3, "bzip2" },
		{ "\x04\x22\x4d\x18", 4, "lz4" }, { "LZIP", 4, "lzip" },
		{ "\x1f\x9d", 2, "compress (.Z)" }, { "\x89LZO", 4, "lzop" },
		{ "\x5d\0\0", 3, "lzma" },       { "PK\x03\x04", 4, "zip" },
		{ "7z\xbc\xaf\x27\x1c", 6, "7-zip" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (s->magic_len >= known[i].len && !memcmp(s->magic, known[i].magic, known[i].len))
			return known[i].name;
	return NULL;
}

/* libarchive's message, starting lowercase as ours do ("Truncated tar archive"). */
static const char *archive_msg(struct archive *a, char *buf, size_t len)
{
	const char *m = archive_error_string(a);

	if (!m || !*m)
		return "libarchive failed";
	snprintf(buf, len, "%s", m);
	if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

/* libarchive's error for the current entry, or for the stream when there is none. */
static int archive_fail(struct tar_import *t, const char *what)
{
	char mb[256];
	const char *m = archive_msg(t->a, mb, sizeof(mb));
	int e = archive_errno(t->a);
	int ret = e > 0 ? -e : -EIO;

	if (t->entry)
		return entry_err(t, ret, "%s: %s", what, m);
	if (t->entries == 0) {
		const char *z = magic_name(&t->src);

		if (z)
			return cairn_err(-ENOTSUP, "%s compression is not supported (a tar archive "
						   "plain, gzip or zstd compressed is)", z);
		if (t->src.offset == 0)
			return cairn_err(-EINVAL, "empty input, not a tar archive");
		return cairn_err(ret, "not a tar archive, or a damaged one: %s", m);
	}
	return cairn_err(ret, "%s: %s", what, m);
}

static void progress(struct tar_import *t, bool final)
{
	int64_t now = cairn_now_ns();
	double secs;
	char a[32], b[32], c[32];

	if (!t->progress || (!final && now - t->last_ns < 200000000))
		return;
	t->last_ns = now;
	secs = (double)(now - t->start_ns) / 1e9;
	fprintf(stderr, "\rimporting: %llu entries, %s (%s read), %s/s   ",
		(unsigned long long)t->entries, cli_bytes(a, sizeof(a), t->data_bytes),
		cli_bytes(b, sizeof(b), t->src.offset),
		cli_bytes(c, sizeof(c), secs > 0 ? (unsigned long long)(t->data_bytes / secs) : 0));
	if (final)
		fputc('\n', stderr);
}

/* --- the input ---------------------------------------------------------- */

static la_ssize_t source_read(struct archive *a, void *ctx, const void **out)
{
	struct source *s = ctx;
	const void *p = s->buf;
	ssize_t n;

	if (s->stream) {
		n = s->stream->read(s->stream->ctx, &p);
		if (n < 0) {
			archive_set_error(a, (int)-n, "%s", cairn_errmsg());
			return -1;
		}
	} else {
		do
			n = read(s->fd, s->buf, TAR_READ_BUF);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			archive_set_error(a, errno, "read error at offset %llu: %s",
					  (unsigned long long)s->offset, strerror(errno));
			return -1;
		}
	}
	if (s->magic_len < sizeof(s->magic)) {
		size_t k = sizeof(s->magic) - s->magic_len;

		if (k > (size_t)n)
			k = (size_t)n;
		memcpy(s->magic + s->magic_len, p, k);
		s->magic_len += k;
	}
	s->offset += (uint64_t)n;
	*out = p;
	return n;
}

/* --- the index ---------------------------------------------------------- */

static uint64_t tindex_hash(const struct tnode *parent, const char *name, size_t len)
{
	return XXH3_64bits_withSeed(name, len, (uint64_t)(uintptr_t)parent);
}

static struct tnode *tindex_find(struct tindex *ix, const struct tnode *parent, const char *name,
				 size_t len)
{
	size_t mask, i;

	if (!ix->cap)
		return NULL;
	mask = ix->cap - 1;
	for (i = tindex_hash(parent, name, len) & mask; ix->slots[i]; i = (i + 1) & mask) {
		struct tnode *n = ix->slots[i];

		if (n->parent == parent && n->name_len == len && !memcmp(n->name, name, len))
			return n;
	}
	return NULL;
}

static int tindex_add(struct tindex *ix, struct tnode *n)
{
	size_t mask, i;

	if (2 * (ix->count + 1) > ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : 1024;
		struct tnode **slots = calloc(cap, sizeof(*slots));

		if (!slots)
			return -ENOMEM;
		for (size_t j = 0; j < ix->cap; j++) {
			struct tnode *m = ix->slots[j];

			if (!m)
				continue;
			for (i = tindex_hash(m->parent, m->name, m->name_len) & (cap - 1); slots[i];
			     i = (i + 1) & (cap - 1))
				;
			slots[i] = m;
		}
		free(ix->slots);
		ix->slots = slots;
		ix->cap = cap;
	}
	mask = ix->cap - 1;
	for (i = tindex_hash(n->parent, n->name, n->name_len) & mask; ix->slots[i];
	     i = (i + 1) & mask)
		;
	ix->slots[i] = n;
	ix->count++;
	return 0;
}

static void inode_unref(struct inode *ino)
{
	if (!ino || --ino->refs)
		return;
	free(ino->xattrs);
	free(ino->target);
	free(ino);
}

static struct inode *inode_new(uint8_t type)
{
	struct inode *ino = calloc(1, sizeof(*ino));

	if (!ino)
		return NULL;
	ino->refs = 1;
	ino->type = type;
	return ino;
}

/* A directory a path implies before (or without) its own entry. */
static struct inode *implied_dir(void)
{
	struct inode *ino = inode_new(CAIRN_NODE_DIR);

	if (ino) {
		ino->mode = 0755;
		ino->implied = true;
	}
	return ino;
}

static void tree_free(struct tnode *n)
{
	if (!n)
		return;
	for (uint32_t i = 0; i < n->nkids; i++)
		tree_free(n->kids[i]);
	free(n->kids);
	inode_unref(n->ino);
	free(n);
}

/* Adds a child record, its inode still unset. */
static int tnode_add(struct tar_import *t, struct tnode *parent, const char *name, size_t len,
		     struct tnode **out)
{
	struct tnode *n;
	int ret;

	if (parent->nkids == parent->kids_cap) {
		uint32_t cap = parent->kids_cap ? parent->kids_cap * 2 : 8;
		struct tnode **k;

		if (cap < parent->kids_cap)
			return -ENOMEM;
		k = realloc(parent->kids, cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		parent->kids = k;
		parent->kids_cap = cap;
	}
	n = calloc(1, sizeof(*n) + len + 1);
	if (!n)
		return -ENOMEM;
	n->parent = parent;
	n->name_len = (uint16_t)len;
	memcpy(n->name, name, len);
	ret = tindex_add(&t->index, n);
	if (ret) {
		free(n);
		return ret;
	}
	parent->kids[parent->nkids++] = n;
	t->nodes++;
	*out = n;
	return 0;
}

/* --- paths -------------------------------------------------------------- */

struct comp {
	const char *s;
	size_t len;
};

/*
 * Splits an archive path into its components: "./" prefixes and "."
 * components dropped, trailing slashes allowed. Zero components is the
 * root. link: the path is a hard link's target (messages say so). Returns
 * 0 or -errno with a message; *comps is malloc'ed.
 */
static int split_path(struct tar_import *t, const char *path, bool link, struct comp **comps,
		      size_t *ncomp)
{
	size_t len = strlen(path), n = 0;
	const char *p = path, *end = path + len;
	struct comp *c;
	char shown[SHOW_MAX * 4 + 32];

	*comps = NULL;
	*ncomp = 0;
	if (link)
		show_path(shown, sizeof(shown), path);
	if (len == 0)
		return link ? entry_err(t, -EINVAL, "hard link with an empty target")
			    : entry_err(t, -EINVAL, "an empty path");
	if (path[0] == '/')
		return link ? entry_err(t, -EINVAL, "hard link target '%s' is outside the archive "
						    "(absolute paths are not allowed)", shown)
			    : entry_err(t, -EINVAL, "absolute paths are not allowed");
	if (len >= PATH_MAX)
		return link ? entry_err(t, -ENAMETOOLONG, "hard link target is longer than %d "
							  "bytes", PATH_MAX - 1)
			    : entry_err(t, -ENAMETOOLONG, "path is longer than %d bytes",
					PATH_MAX - 1);
	c = malloc((len / 2 + 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	while (end > path + 1 && end[-1] == '/')
		end--; /* "dir/" */
	while (p < end) {
		const char *s = p;
		size_t l;

		while (p < end && *p != '/')
			p++;
		l = (size_t)(p - s);
		if (p < end)
			p++; /* the slash */
		if (l == 1 && s[0] == '.')
			continue;
		if (l == 0) {
			free(c);
			return link ? entry_err(t, -EINVAL, "hard link target '%s' has an empty "
							    "name in it", shown)
				    : entry_err(t, -EINVAL, "empty name in the path ('//')");
		}
		if (l == 2 && s[0] == '.' && s[1] == '.') {
			free(c);
			return link ? entry_err(t, -EINVAL, "hard link target '%s' is outside the "
							    "archive ('..' is not allowed)", shown)
				    : entry_err(t, -EINVAL, "'..' is not allowed");
		}
		if (l > CAIRN_NAME_MAX) {
			free(c);
			return link ? entry_err(t, -ENAMETOOLONG, "hard link target has a name "
								  "longer than %u bytes",
						CAIRN_NAME_MAX)
				    : entry_err(t, -ENAMETOOLONG, "a name longer than %u bytes",
						CAIRN_NAME_MAX);
		}
		c[n].s = s;
		c[n].len = l;
		n++;
	}
	if (n > CAIRN_DEPTH_MAX) {
		free(c);
		return link ? entry_err(t, -ELOOP, "hard link target is more than %u levels deep "
						   "(cairn's limit)", CAIRN_DEPTH_MAX)
			    : entry_err(t, -ELOOP, "more than %u levels deep (cairn's limit)",
					CAIRN_DEPTH_MAX);
	}
	*comps = c;
	*ncomp = n;
	return 0;
}

/* The path of the first n components, for messages. */
static void show_comps(char *out, size_t cap, const struct comp *c, size_t n)
{
	struct cairn_buf b = { 0 };

	for (size_t i = 0; i < n; i++)
		if ((i && cairn_buf_append(&b, "/", 1)) || cairn_buf_append(&b, c[i].s, c[i].len))
			break;
	if (cairn_buf_append(&b, "", 1) == 0)
		show_path(out, cap, (const char *)b.data);
	else
		snprintf(out, cap, "?");
	cairn_buf_release(&b);
}

/*
 * The directory that holds the last component: walks the parents, making
 * the missing ones, never through a symlink or a non-directory.
 */
static int walk_parents(struct tar_import *t, const struct comp *c, size_t n,
			struct tnode **out)
{
	struct tnode *d = t->root;
	char shown[SHOW_MAX * 4 + 32];
	int ret;

	for (size_t i = 0; i + 1 < n; i++) {
		struct tnode *k = tindex_find(&t->index, d, c[i].s, c[i].len);

		if (!k || k->ino->type == CAIRN_NODE_WHITEOUT) {
			/* under a whiteout of this layer: a new directory (opaque) */
			if (!k && (ret = tnode_add(t, d, c[i].s, c[i].len, &k)))
				return ret;
			inode_unref(k->ino);
			k->ino = implied_dir();
			if (!k->ino)
				return -ENOMEM;
		} else if (k->ino->type == CAIRN_NODE_LNK) {
			show_comps(shown, sizeof(shown), c, i + 1);
			return entry_err(t, -ELOOP, "'%s' is a symlink planted earlier in the "
						    "archive; nothing is written through one",
					 shown);
		} else if (k->ino->type != CAIRN_NODE_DIR) {
			show_comps(shown, sizeof(shown), c, i + 1);
			return entry_err(t, -ENOTDIR, "'%s' is not a directory in the archive",
					 shown);
		}
		d = k;
	}
	*out = d;
	return 0;
}

/* The record of an earlier entry named by a hard link, or an error. */
static int link_target(struct tar_import *t, const char *target, struct tnode **out)
{
	cleanup_free struct comp *c = NULL;
	char shown[SHOW_MAX * 4 + 32];
	struct tnode *d = t->root;
	bool through = false;
	size_t n;
	int ret;

	ret = split_path(t, target, true, &c, &n);
	if (ret)
		return ret;
	show_path(shown, sizeof(shown), target);
	for (size_t i = 0; i < n && d; i++) {
		if (d->ino->type != CAIRN_NODE_DIR) {
			through = true; /* d is a parent of the target */
			break;
		}
		d = tindex_find(&t->index, d, c[i].s, c[i].len);
	}
	if (through && d->ino->type != CAIRN_NODE_LNK)
		d = NULL;
	if (d && d->ino && d->ino->type == CAIRN_NODE_LNK && through)
		return entry_err(t, -ELOOP, "hard link target '%s' lies through a symlink of the "
					    "archive", shown);
	if (!d || !d->ino)
		return entry_err(t, -ENOENT, "hard link target '%s' is not an earlier entry of the "
					     "archive", shown);
	if (d->ino->type == CAIRN_NODE_DIR)
		return entry_err(t, -EPERM, "hard link target '%s' is a directory", shown);
	if (d->ino->type == CAIRN_NODE_WHITEOUT)
		return entry_err(t, -ENOENT, "hard link target '%s' is a whiteout", shown);
	*out = d;
	return 0;
}

/* --- attributes --------------------------------------------------------- */

struct xattr_list {
	struct cairn_xattr *x;
	size_t n, cap;
	struct cairn_buf blob; /* names (NUL-terminated) and values */
};

static int xl_add(struct xattr_list *l, const char *name, const void *value, size_t len)
{
	size_t nl = strlen(name);
	int ret;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct cairn_xattr *p = realloc(l->x, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->x = p;
		l->cap = cap;
	}
	/* offsets for now: the blob may still move */
	l->x[l->n].name = (const char *)(uintptr_t)l->blob.len;
	l->x[l->n].name_len = nl;
	ret = cairn_buf_append(&l->blob, name, nl + 1);
	if (ret)
		return ret;
	l->x[l->n].value = (const void *)(uintptr_t)l->blob.len;
	l->x[l->n].value_len = len;
	ret = len ? cairn_buf_append(&l->blob, value, len) : 0;
	if (ret)
		return ret;
	l->n++;
	return 0;
}

static void xl_release(struct xattr_list *l)
{
	free(l->x);
	cairn_buf_release(&l->blob);
}

static int xattr_cmp(const void *a, const void *b)
{
	const struct cairn_xattr *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* The kernel's binary form of one ACL; entries sorted by tag, then id. */
struct acl_ent {
	uint16_t tag, perm;
	uint32_t id;
};

static int acl_ent_cmp(const void *a, const void *b)
{
	const struct acl_ent *x = a, *y = b;

	if (x->tag != y->tag)
		return x->tag < y->tag ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Checks what the kernel's posix_acl_valid() checks: one of each *_OBJ, a mask with named entries. */
static bool acl_valid(const struct acl_ent *e, size_t n)
{
	unsigned users = 0, groups = 0, uobj = 0, gobj = 0, mask = 0, other = 0;

	for (size_t i = 0; i < n; i++) {
		if (e[i].perm & ~7u)
			return false;
		if (i && e[i].tag == e[i - 1].tag && e[i].id == e[i - 1].id)
			return false;
		switch (e[i].tag) {
		case ACL_TAG_USER_OBJ:
			uobj++;
			break;
		case ACL_TAG_GROUP_OBJ:
			gobj++;
			break;
		case ACL_TAG_MASK:
			mask++;
			break;
		case ACL_TAG_OTHER:
			other++;
			break;
		case ACL_TAG_USER:
			users++;
			break;
		case ACL_TAG_GROUP:
			groups++;
			break;
		default:
			return false;
		}
		if (e[i].tag != ACL_TAG_USER && e[i].tag != ACL_TAG_GROUP &&
		    e[i].id != ACL_UNDEFINED_ID)
			return false;
	}
	return uobj == 1 && gobj == 1 && other == 1 && mask <= 1 &&
	       (mask == 1 || users + groups == 0);
}

/* An ACL xattr value from an archive's xattr records: parsed and checked. */
static bool acl_xattr_valid(const uint8_t *p, size_t len)
{
	cleanup_free struct acl_ent *e = NULL;
	size_t n;

	if (len < 4 || (len - 4) % 8 || cairn_le32(p) != ACL_XATTR_VERSION)
		return false;
	n = (len - 4) / 8;
	e = calloc(n ? n : 1, sizeof(*e));
	if (!e)
		return false;
	for (size_t i = 0; i < n; i++) {
		e[i].tag = cairn_le16(p + 4 + 8 * i);
		e[i].perm = cairn_le16(p + 4 + 8 * i + 2);
		e[i].id = cairn_le32(p + 4 + 8 * i + 4);
		if (i && acl_ent_cmp(&e[i - 1], &e[i]) >= 0)
			return false; /* the kernel keeps them sorted */
	}
	return acl_valid(e, n);
}

/*
 * One POSIX.1e ACL of the entry as the kernel's xattr value. For an access
 * ACL libarchive keeps the owner, owning group and other entries in the
 * mode and hands them back first; *mask gets the mask's bits (or -1).
 */
static int acl_to_xattr(struct tar_import *t, struct archive_entry *e, int type,
			struct xattr_list *xl, int *mask)
{
	const char *name = type == ARCHIVE_ENTRY_ACL_TYPE_ACCESS ? "system.posix_acl_access"
								 : "system.posix_acl_default";
	cleanup_free struct acl_ent *ents = NULL;
	cleanup_free uint8_t *val = NULL;
	int count, etype, permset, tag, qual;
	const char *qname;
	size_t n = 0;

	count = archive_entry_acl_reset(e, type);
	if (count <= 0)
		return 0;
	ents = calloc((size_t)count, sizeof(*ents));
	if (!ents)
		return -ENOMEM;
	while (archive_entry_acl_next(e, type, &etype, &permset, &tag, &qual, &qname) ==
	       ARCHIVE_OK) {
		struct acl_ent *a;

		if ((int)n == count)
			return entry_err(t, -EINVAL, "an ACL libarchive cannot count");
		a = &ents[n++];
		if (permset & ~(ARCHIVE_ENTRY_ACL_READ | ARCHIVE_ENTRY_ACL_WRITE |
				ARCHIVE_ENTRY_ACL_EXECUTE))
			return entry_err(t, -EINVAL, "an ACL entry with permissions that are not "
						     "r, w or x");
		a->perm = (uint16_t)permset; /* libarchive's r/w/x bits are the kernel's */
		a->id = ACL_UNDEFINED_ID;
		switch (tag) {
		case ARCHIVE_ENTRY_ACL_USER_OBJ:
			a->tag = ACL_TAG_USER_OBJ;
			break;
		case ARCHIVE_ENTRY_ACL_USER:
			a->tag = ACL_TAG_USER;
			a->id = (uint32_t)qual;
			break;
		case ARCHIVE_ENTRY_ACL_GROUP_OBJ:
			a->tag = ACL_TAG_GROUP_OBJ;
			break;
		case ARCHIVE_ENTRY_ACL_GROUP:
			a->tag = ACL_TAG_GROUP;
			a->id = (uint32_t)qual;
			break;
		case ARCHIVE_ENTRY_ACL_MASK:
			a->tag = ACL_TAG_MASK;
			if (type == ARCHIVE_ENTRY_ACL_TYPE_ACCESS)
				*mask = permset;
			break;
		case ARCHIVE_ENTRY_ACL_OTHER:
			a->tag = ACL_TAG_OTHER;
			break;
		default:
			return entry_err(t, -EINVAL, "an ACL entry of unknown kind %d", tag);
		}
		if ((a->tag == ACL_TAG_USER || a->tag == ACL_TAG_GROUP) && qual < 0)
			return entry_err(t, -EINVAL, "a named ACL entry without a numeric id");
	}
	qsort(ents, n, sizeof(*ents), acl_ent_cmp);
	if (!acl_valid(ents, n))
		return entry_err(t, -EINVAL, "invalid %s ACL (it needs exactly one owner, group "
					     "and other entry, a mask with named entries, no "
					     "duplicates)",
				 type == ARCHIVE_ENTRY_ACL_TYPE_ACCESS ? "access" : "default");
	val = malloc(4 + 8 * n);
	if (!val)
		return -ENOMEM;
	cairn_put32(val, ACL_XATTR_VERSION);
	for (size_t i = 0; i < n; i++) {
		cairn_put16(val + 4 + 8 * i, ents[i].tag);
		cairn_put16(val + 4 + 8 * i + 2, ents[i].perm);
		cairn_put32(val + 4 + 8 * i + 4, ents[i].id);
	}
	return xl_add(xl, name, val, 4 + 8 * n);
}

static bool xattr_name_ok(const char *name)
{
	return !strncmp(name, "user.", 5) || !strncmp(name, "trusted.", 8) ||
	       !strncmp(name, "security.", 9) || !strcmp(name, "system.posix_acl_access") ||
	       !strcmp(name, "system.posix_acl_default");
}

/*
 * The entry's xattrs and ACLs, sorted, moved into ino (one allocation).
 * *mode: the permission bits; an access ACL's mask replaces the group bits,
 * as the kernel keeps them.
 */
static int entry_xattrs(struct tar_import *t, struct archive_entry *e, struct inode *ino,
			uint32_t *mode)
{
	struct xattr_list xl = { 0 };
	const char *name;
	const void *value;
	size_t len, n = 0;
	int types = archive_entry_acl_types(e), mask = -1, ret = 0;
	char shown[SHOW_MAX * 4 + 32];

	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &len) == ARCHIVE_OK) {
		show_path(shown, sizeof(shown), name ? name : "");
		if (!name || !*name || strlen(name) > CAIRN_XATTR_NAME_MAX) {
			ret = entry_err(t, -EINVAL, "an xattr with an empty or overlong name");
			goto out;
		}
		if (!xattr_name_ok(name)) {
			ret = entry_err(t, -EINVAL, "xattr '%s' is not in the user, trusted or "
						    "security namespace nor a POSIX ACL",
					shown);
			goto out;
		}
		if (len > CAIRN_XATTR_VALUE_MAX) {
			ret = entry_err(t, -E2BIG, "xattr '%s' is larger than %u bytes", shown,
					CAIRN_XATTR_VALUE_MAX);
			goto out;
		}
		if (!strncmp(name, "system.", 7) && !acl_xattr_valid(value, len)) {
			ret = entry_err(t, -EINVAL, "xattr '%s' is not a valid POSIX ACL", shown);
			goto out;
		}
		ret = xl_add(&xl, name, value, len);
		if (ret)
			goto out;
	}
	if (types & ARCHIVE_ENTRY_ACL_TYPE_NFS4) {
		ret = entry_err(t, -ENOTSUP, "NFSv4 ACLs are not supported");
		goto out;
	}
	ret = acl_to_xattr(t, e, ARCHIVE_ENTRY_ACL_TYPE_ACCESS, &xl, &mask);
	if (!ret)
		ret = acl_to_xattr(t, e, ARCHIVE_ENTRY_ACL_TYPE_DEFAULT, &xl, &mask);
	if (ret)
		goto out;
	if (mask >= 0)
		*mode = (*mode & ~070u) | ((uint32_t)mask << 3);

	for (size_t i = 0; i < xl.n; i++) {
		xl.x[i].name = (const char *)xl.blob.data + (uintptr_t)xl.x[i].name;
		xl.x[i].value = xl.blob.data + (uintptr_t)xl.x[i].value;
	}
	if (xl.n)
		qsort(xl.x, xl.n, sizeof(*xl.x), xattr_cmp);
	/* the same xattr twice (pax has two spellings; an ACL may come as both) */
	for (size_t i = 0; i < xl.n; i++) {
		if (n && !strcmp(xl.x[n - 1].name, xl.x[i].name)) {
			if (xl.x[n - 1].value_len != xl.x[i].value_len ||
			    memcmp(xl.x[n - 1].value, xl.x[i].value, xl.x[i].value_len)) {
				show_path(shown, sizeof(shown), xl.x[i].name);
				ret = entry_err(t, -EINVAL, "xattr '%s' is given twice with "
							    "different values", shown);
				goto out;
			}
			continue;
		}
		if (!strcmp(xl.x[i].name, "system.posix_acl_default") &&
		    ino->type != CAIRN_NODE_DIR) {
			ret = entry_err(t, -EINVAL, "a default ACL on a non-directory");
			goto out;
		}
		xl.x[n++] = xl.x[i];
	}
	{
		/* listxattr(2) returns at most XATTR_LIST_MAX bytes of names on any Linux filesystem */
		size_t names = 0;

		for (size_t i = 0; i < n; i++)
			names += strlen(xl.x[i].name) + 1;
		if (names > XATTR_LIST_MAX) {
			ret = entry_err(t, -E2BIG, "%zu xattrs whose names take %zu bytes: Linux lists at "
						   "most %u bytes of xattr names on a file",
					n, names, (unsigned)XATTR_LIST_MAX);
			goto out;
		}
	}
	if (n && xl.blob.len > IMPORT_TAR_MAX_META - t->meta_bytes) {
		ret = entry_err(t, -EFBIG, "the archive's xattrs and symlink targets pass %llu MiB "
					   "(cairn's limit for one archive)",
				(unsigned long long)(IMPORT_TAR_MAX_META >> 20));
		goto out;
	}
	if (n) {
		/* one allocation: the array, then the blob */
		size_t head = n * sizeof(struct cairn_xattr);

		t->meta_bytes += xl.blob.len;
		uint8_t *mem = malloc(head + xl.blob.len);

		if (!mem) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(mem + head, xl.blob.data, xl.blob.len);
		ino->xattrs = (struct cairn_xattr *)mem;
		for (size_t i = 0; i < n; i++) {
			ino->xattrs[i] = xl.x[i];
			ino->xattrs[i].name = (const char *)mem + head +
					      ((const uint8_t *)xl.x[i].name - xl.blob.data);
			ino->xattrs[i].value = mem + head +
					       ((const uint8_t *)xl.x[i].value - xl.blob.data);
		}
		ino->nxattr = n;
	}
out:
	xl_release(&xl);
	return ret;
}

static void entry_times(struct archive_entry *e, struct inode *ino)
{
	int64_t sec = 0;
	long nsec = 0;

	if (archive_entry_mtime_is_set(e)) {
		sec = (int64_t)archive_entry_mtime(e);
		nsec = archive_entry_mtime_nsec(e);
	}
	/* seconds rounded down, nanoseconds in [0, 1e9) */
	while (nsec < 0) {
		nsec += 1000000000L;
		sec--;
	}
	while (nsec >= 1000000000L) {
		nsec -= 1000000000L;
		sec++;
	}
	ino->mtime_sec = sec;
	ino->mtime_nsec = (uint32_t)nsec;
}

/* --- entries ------------------------------------------------------------ */

/* Streams a regular file's blocks into the writer; gaps are holes. */
static int read_data(struct tar_import *t, struct archive_entry *e, struct inode *ino)
{
	struct cairn_node_build n = { 0 };
	uint64_t size = (uint64_t)archive_entry_size(e), pos = 0;
	const void *buf;
	size_t len;
	la_int64_t off;
	int r, ret;

	if (archive_entry_size(e) < 0)
		return entry_err(t, -EINVAL, "negative size");
	if (size > t->max_bytes - t->data_bytes)
		return entry_err(t, -EFBIG, "%llu bytes would pass the limit of %llu bytes of "
					    "file data (--max-bytes)",
				 (unsigned long long)size, (unsigned long long)t->max_bytes);
	cairn_writer_file_begin(t->w);
	for (;;) {
		r = archive_read_data_block(t->a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK)
			return archive_fail(t, "cannot read its data");
		if (off < 0 || (uint64_t)off < pos)
			return entry_err(t, -EINVAL, "data blocks out of order (a damaged sparse "
						     "map)");
		if ((uint64_t)off > size || len > size - (uint64_t)off)
			return entry_err(t, -EINVAL, "data past the entry's size of %llu bytes",
					 (unsigned long long)size);
		if ((uint64_t)off > pos) {
			ret = cairn_writer_file_hole(t->w, (uint64_t)off - pos);
			if (ret)
				return ret;
			t->data_bytes += (uint64_t)off - pos;
			pos = (uint64_t)off;
		}
		if (len) {
			ret = cairn_writer_file_data(t->w, buf, len);
			if (ret)
				return ret;
			t->data_bytes += len;
			pos += len;
		}
		progress(t, false);
	}
	if (pos < size) {
		ret = cairn_writer_file_hole(t->w, size - pos);
		if (ret)
			return ret;
		t->data_bytes += size - pos;
	}
	ret = cairn_writer_file_end(t->w, &n);
	if (ret)
		return ret;
	ino->size = n.size;
	ino->content_kind = n.content_kind;
	ino->content = n.content;
	return 0;
}

/* A new inode for an entry that is not a hard link. */
static int entry_inode(struct tar_import *t, struct archive_entry *e, struct inode **out)
{
	struct inode *ino;
	uint32_t mode = archive_entry_mode(e) & 07777;
	const char *target;
	int ret;

	*out = NULL;
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		ino = inode_new(CAIRN_NODE_REG);
		break;
	case AE_IFDIR:
		ino = inode_new(CAIRN_NODE_DIR);
		break;
	case AE_IFLNK:
		ino = inode_new(CAIRN_NODE_LNK);
		break;
	case AE_IFCHR:
		ino = inode_new(CAIRN_NODE_CHR);
		break;
	case AE_IFBLK:
		ino = inode_new(CAIRN_NODE_BLK);
		break;
	case AE_IFIFO:
		ino = inode_new(CAIRN_NODE_FIFO);
		break;
	case AE_IFSOCK:
		ino = inode_new(CAIRN_NODE_SOCK);
		break;
	default:
		return entry_err(t, -EINVAL, "unsupported entry type (mode %o)",
				 (unsigned)archive_entry_filetype(e));
	}
	if (!ino)
		return -ENOMEM;
	if (archive_entry_uid(e) < 0 || archive_entry_uid(e) > UINT32_MAX ||
	    archive_entry_gid(e) < 0 || archive_entry_gid(e) > UINT32_MAX) {
		ret = entry_err(t, -EINVAL, "uid or gid out of range");
		goto fail;
	}
	ino->uid = (uint32_t)archive_entry_uid(e);
	ino->gid = (uint32_t)archive_entry_gid(e);
	entry_times(e, ino);
	ret = entry_xattrs(t, e, ino, &mode);
	if (ret)
		goto fail;
	ino->mode = mode;
	if (ino->type == CAIRN_NODE_LNK) {
		target = archive_entry_symlink(e);
		ino->target_len = target ? strlen(target) : 0;
		if (ino->target_len == 0) {
			ret = entry_err(t, -EINVAL, "a symlink with an empty target");
			goto fail;
		}
		if (ino->target_len > CAIRN_SYMLINK_MAX) {
			ret = entry_err(t, -ENAMETOOLONG, "symlink target longer than %u bytes",
					CAIRN_SYMLINK_MAX);
			goto fail;
		}
		if (ino->target_len > IMPORT_TAR_MAX_META - t->meta_bytes) {
			ret = entry_err(t, -EFBIG, "the archive's xattrs and symlink targets pass "
						   "%llu MiB (cairn's limit for one archive)",
					(unsigned long long)(IMPORT_TAR_MAX_META >> 20));
			goto fail;
		}
		t->meta_bytes += ino->target_len;
		ino->target = strdup(target);
		if (!ino->target) {
			ret = -ENOMEM;
			goto fail;
		}
	} else if (ino->type == CAIRN_NODE_CHR || ino->type == CAIRN_NODE_BLK) {
		ino->major = (uint32_t)archive_entry_rdevmajor(e);
		ino->minor = (uint32_t)archive_entry_rdevminor(e);
	}
	*out = ino;
	return 0;
fail:
	inode_unref(ino);
	return ret;
}

/* Puts ino at the record, following tar's rules for a path that exists. */
static int place(struct tar_import *t, struct tnode *k, struct inode *ino)
{
	struct inode *old = k->ino;

	if (old && old->type == CAIRN_NODE_DIR && k->nkids && ino->type != CAIRN_NODE_DIR)
		return entry_err(t, -EEXIST, "would replace a directory that has entries with a "
					     "non-directory");
	k->ino = ino;
	inode_unref(old);
	return 0;
}

static bool is_whiteout(const struct comp *c)
{
	return c->len >= 4 && !memcmp(c->s, ".wh.", 4);
}

/* '.wh.NAME' (the last of n components) or the opaque marker '.wh..wh..opq'. */
static int import_whiteout(struct tar_import *t, struct archive_entry *e, const struct comp *c,
			   size_t n)
{
	static const char opaque[] = ".wh..opq";
	const char *name = c[n - 1].s + 4;
	size_t len = c[n - 1].len - 4;
	char shown[SHOW_MAX * 4 + 32], nm[CAIRN_NAME_MAX + 1];
	struct tnode *dir, *k;
	int ret;

	if (archive_entry_hardlink(e))
		return entry_err(t, -EINVAL, "a whiteout that is a hard link");
	if (archive_entry_filetype(e) != AE_IFREG)
		return entry_err(t, -EINVAL, "a whiteout that is not a regular file");
	ret = walk_parents(t, c, n, &dir);
	if (ret)
		return ret;
	if (len == sizeof(opaque) - 1 && !memcmp(name, opaque, len)) {
		dir->opaque = true;
		return 0;
	}
	memcpy(nm, name, len);
	nm[len] = '\0';
	show_path(shown, sizeof(shown), nm);
	if (len >= 4 && !memcmp(name, ".wh.", 4))
		return entry_err(t, -EINVAL, "'.wh..wh.%s' is a reserved whiteout name (only "
					     "'.wh..wh..opq' has a meaning)", shown + 4);
	if (len == 0)
		return entry_err(t, -EINVAL, "a whiteout that names nothing ('.wh.')");
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return entry_err(t, -EINVAL, "a whiteout of '%s'", shown);
	k = tindex_find(&t->index, dir, name, len);
	if (!k) {
		ret = tnode_add(t, dir, name, len, &k);
		if (ret)
			return ret;
		k->ino = inode_new(CAIRN_NODE_WHITEOUT);
		if (!k->ino)
			return -ENOMEM;
	}
	/* an entry of this layer stays; a directory becomes opaque */
	k->whiteout = true;
	return 0;
}

static int import_entry(struct tar_import *t, struct archive_entry *e)
{
	cleanup_free struct comp *c = NULL;
	struct tnode *dir = NULL, *k, *link = NULL;
	struct inode *ino = NULL;
	const char *hardlink = archive_entry_hardlink(e);
	size_t n;
	int ret;

	t->entry = archive_entry_pathname(e);
	if (!t->entry)
		return cairn_err(-EINVAL, "entry %llu has no path",
				 (unsigned long long)t->entries);
	ret = split_path(t, t->entry, false, &c, &n);
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		if (!is_whiteout(&c[i]))
			continue;
		if (!t->layer)
			return entry_err(t, -ENOTSUP, "an OCI whiteout: this tar is a layer, import "
						      "it with --on IMAGE");
		if (i + 1 < n)
			return entry_err(t, -EINVAL, "a whiteout name ('.wh.') as a directory");
	}
	if (n && is_whiteout(&c[n - 1]))
		return import_whiteout(t, e, c, n);

	if (hardlink) {
		if (n == 0)
			return entry_err(t, -EINVAL, "the root cannot be a hard link");
		ret = link_target(t, hardlink, &link);
		if (ret)
			return ret;
		if (archive_entry_size(e) > 0) {
			const void *buf;
			size_t len;
			la_int64_t off;
			int r = archive_read_data_block(t->a, &buf, &len, &off);

			if (r == ARCHIVE_OK && len)
				return entry_err(t, -ENOTSUP, "a hard link that carries data");
			if (r != ARCHIVE_OK && r != ARCHIVE_EOF)
				return archive_fail(t, "cannot read its data");
		}
	}
	if (n == 0) { /* "." : the root's own attributes */
		if (archive_entry_filetype(e) != AE_IFDIR)
			return entry_err(t, -EINVAL, "the root of the archive is not a directory");
		ret = entry_inode(t, e, &ino);
		if (ret)
			return ret;
		inode_unref(t->root->ino);
		t->root->ino = ino;
		return 0;
	}
	ret = walk_parents(t, c, n, &dir);
	if (ret)
		return ret;
	k = tindex_find(&t->index, dir, c[n - 1].s, c[n - 1].len);
	if (!k) {
		ret = tnode_add(t, dir, c[n - 1].s, c[n - 1].len, &k);
		if (ret)
			return ret;
	}
	if (link) {
		if (link == k)
			return 0;
		ino = link->ino;
		ino->refs++;
		ret = place(t, k, ino);
		if (ret)
			inode_unref(ino);
		return ret;
	}
	ret = entry_inode(t, e, &ino);
	if (ret)
		return ret;
	/* a directory entry over a directory sets its attributes; its entries stay */
	ret = place(t, k, ino);
	if (ret) {
		inode_unref(ino);
		return ret;
	}
	if (ino->type == CAIRN_NODE_REG)
		return read_data(t, e, ino);
	return 0;
}

/* --- building ----------------------------------------------------------- */

static int tnode_cmp(const void *a, const void *b)
{
	const struct tnode *x = *(struct tnode *const *)a, *y = *(struct tnode *const *)b;
	int c = memcmp(x->name, y->name, x->name_len < y->name_len ? x->name_len : y->name_len);

	if (c)
		return c;
	return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

static int path_push(struct tar_import *t, const struct tnode *k, size_t *old)
{
	int ret;

	*old = t->path.len;
	if (t->path.len && (ret = cairn_buf_append(&t->path, "/", 1)))
		return ret;
	ret = cairn_buf_append(&t->path, k->name, k->name_len);
	return ret;
}

/*
 * Pass 1, depth first in name order (as import_dir walks a directory):
 * sorts every directory and names each hard-link group by its first path.
 */
static int scan(struct tar_import *t, struct tnode *d)
{
	static const char prefix[] = "cairn-link";
	int ret;

	if (d->nkids > 1)
		qsort(d->kids, d->nkids, sizeof(*d->kids), tnode_cmp);
	for (uint32_t i = 0; i < d->nkids; i++) {
		struct tnode *k = d->kids[i];
		size_t old;

		ret = path_push(t, k, &old);
		if (ret)
			return ret;
		if (k->ino->type == CAIRN_NODE_DIR) {
			ret = scan(t, k);
			if (ret)
				return ret;
		} else if (k->ino->refs > 1 && k->ino->seen++ == 0) {
			XXH3_state_t *hs = XXH3_createState();
			XXH128_canonical_t c;

			if (!hs)
				return -ENOMEM;
			XXH3_128bits_reset(hs);
			XXH3_128bits_update(hs, prefix, sizeof(prefix) - 1);
			XXH3_128bits_update(hs, t->path.data, t->path.len);
			XXH128_canonicalFromHash(&c, XXH3_128bits_digest(hs));
			XXH3_freeState(hs);
			memcpy(k->ino->key.b, c.digest, CAIRN_ID_LEN);
		}
		t->path.len = old;
	}
	return 0;
}

static void fill_node(const struct inode *ino, struct cairn_node_build *n)
{
	memset(n, 0, sizeof(*n));
	n->type = ino->type;
	n->mode = ino->mode;
	n->uid = ino->uid;
	n->gid = ino->gid;
	n->mtime_sec = ino->mtime_sec;
	n->mtime_nsec = ino->mtime_nsec;
	n->xattrs = ino->xattrs;
	n->nxattr = ino->nxattr;
	n->nlink = ino->type == CAIRN_NODE_DIR ? 0 : 1;
	if (ino->type != CAIRN_NODE_DIR && ino->refs > 1) {
		n->nlink = ino->refs;
		n->link_key = ino->key;
	}
	n->size = ino->size;
	n->content_kind = ino->content_kind;
	n->content = ino->content;
	n->target = ino->target;
	n->target_len = ino->target_len;
	n->major = ino->major;
	n->minor = ino->minor;
}

/*
 * An implied directory of a layer takes the attributes the base has at its
 * path (t->path), when the base has a directory there.
 */
static int inherit(struct tar_import *t, struct inode *ino)
{
	struct cairn_node_view v;
	struct cairn_xattr x;
	struct cairn_id id;
	size_t off = 0, bytes = 0, i = 0;
	uint8_t *mem;
	int ret;

	if ((ret = cairn_buf_append(&t->path, "", 1)))
		return ret;
	t->path.len--;
	ret = cairn_path_walk(t->txn, t->base, (const char *)t->path.data, &id, &v);
	if (ret == -ENOENT || ret == -ENOTDIR) {
		cairn_err_clear();
		return 0;
	}
	if (ret)
		return ret;
	if (v.type != CAIRN_NODE_DIR)
		return 0;
	ino->mode = v.mode;
	ino->uid = v.uid;
	ino->gid = v.gid;
	ino->mtime_sec = v.mtime_sec;
	ino->mtime_nsec = v.mtime_nsec;
	if (!v.nxattr)
		return 0;
	while ((ret = cairn_xattr_next(&v, &off, &x)) == 0)
		bytes += x.name_len + x.value_len;
	if (ret != -ENOENT)
		return cairn_err(-EUCLEAN, "the base image has damaged xattrs (run 'cairn fsck')");
	/* one allocation, as entry_xattrs() makes: the array, then the bytes */
	mem = malloc(v.nxattr * sizeof(struct cairn_xattr) + bytes);
	if (!mem)
		return -ENOMEM;
	ino->xattrs = (struct cairn_xattr *)mem;
	mem += v.nxattr * sizeof(struct cairn_xattr);
	for (off = 0; i < v.nxattr && cairn_xattr_next(&v, &off, &x) == 0; i++) {
		memcpy(mem, x.name, x.name_len);
		ino->xattrs[i].name = (const char *)mem;
		ino->xattrs[i].name_len = x.name_len;
		mem += x.name_len;
		memcpy(mem, x.value, x.value_len);
		ino->xattrs[i].value = mem;
		ino->xattrs[i].value_len = x.value_len;
		mem += x.value_len;
	}
	ino->nxattr = i;
	return 0;
}

/* Pass 2: nodes bottom-up; a directory after all its entries. t->path is d's path. */
static int build(struct tar_import *t, struct tnode *d, struct cairn_id *out)
{
	struct cairn_node_build n;
	cleanup_free struct cairn_dirent *ents = NULL;
	int ret;

	if (t->base && d->ino->implied && !d->whiteout && (ret = inherit(t, d->ino)))
		return ret;
	ents = calloc(d->nkids ? d->nkids : 1, sizeof(*ents));
	if (!ents)
		return -ENOMEM;
	for (uint32_t i = 0; i < d->nkids; i++) {
		struct tnode *k = d->kids[i];
		struct inode *ino = k->ino;

		ents[i].name = k->name;
		ents[i].name_len = k->name_len;
		ents[i].type = ino->type;
		if (ino->type == CAIRN_NODE_DIR) {
			size_t old;

			ret = path_push(t, k, &old);
			if (!ret)
				ret = build(t, k, &ents[i].id);
			t->path.len = old;
			if (ret)
				return ret;
			continue;
		}
		if (!ino->built) {
			fill_node(ino, &n);
			ret = cairn_writer_put_node(t->w, &n, &ino->id);
			if (ret)
				return ret;
			ino->built = true;
		}
		if (ino->type == CAIRN_NODE_REG && !ino->counted) {
			t->logical_size += ino->size; /* a hard-link group once */
			ino->counted = true;
		}
		ents[i].id = ino->id;
	}
	fill_node(d->ino, &n);
	if (d->whiteout || d->opaque)
		n.flags = CAIRN_NODE_OPAQUE;
	n.entries = ents;
	n.nentries = d->nkids;
	return cairn_writer_put_node(t->w, &n, out);
}

/* --- the import --------------------------------------------------------- */

/* A header that cannot be read: the stream is damaged after the last good entry. */
static int header_fail(struct tar_import *t)
{
	char p[SHOW_MAX * 4 + 32], mb[256];
	const char *m = archive_msg(t->a, mb, sizeof(mb));
	int e = archive_errno(t->a);

	if (!t->entries)
		return archive_fail(t, "damaged header");
	show_path(p, sizeof(p), t->last ? t->last : "");
	return cairn_err(e > 0 ? -e : -EIO, "after entry '%s': %s", p, m);
}

static int open_source(const char *src, struct source *s)
{
	char eb[128];

	if (strcmp(src, "-") == 0) {
		if (isatty(STDIN_FILENO))
			return cairn_err(-EINVAL, "refusing to read a tar archive from a terminal; "
						  "pipe one in");
		s->fd = STDIN_FILENO;
		return 0;
	}
	s->fd = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (s->fd < 0)
		return cairn_err(-errno, "%s", cairn_strerror(errno, eb, sizeof(eb)));
	posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
}

/* Reads the archive t->src holds into a tree; t->a is set up. */
static int import_archive(struct tar_import *t, struct import_result *res)
{
	struct archive_entry *e;
	int r, ret;

	if (archive_read_open(t->a, &t->src, NULL, source_read, NULL) != ARCHIVE_OK)
		return archive_fail(t, "cannot open");
	for (;;) {
		t->entry = NULL;
		r = archive_read_next_header(t->a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r == ARCHIVE_WARN) {
			/*
			 * The one warning that is not damage: a name that is not
			 * text in the locale. libarchive keeps its bytes, and
			 * names are bytes here.
			 */
			const char *m = archive_error_string(t->a);

			if (!m || !strstr(m, "can't be converted")) {
				t->entry = archive_entry_pathname(e);
				return t->entry ? archive_fail(t, "damaged header") : header_fail(t);
			}
		} else if (r != ARCHIVE_OK) {
			return header_fail(t);
		}
		if (++t->entries > t->max_entries) {
			t->entry = archive_entry_pathname(e);
			return entry_err(t, -EFBIG, "the archive has more than %llu entries "
						    "(--max-entries)",
					 (unsigned long long)t->max_entries);
		}
		ret = import_entry(t, e);
		if (ret)
			return ret;
		free(t->last);
		t->last = strdup(t->entry);
		if (!t->last)
			return -ENOMEM;
		progress(t, false);
	}
	if (t->entries == 0 && t->src.offset == 0)
		return cairn_err(-EINVAL, "empty input, not a tar archive");
	if (t->base) {
		ret = cairn_txn_begin(cairn_writer_store(t->w), false, &t->txn);
		if (ret)
			return ret;
	}
	ret = scan(t, t->root);
	if (!ret)
		ret = build(t, t->root, &res->root);
	if (ret)
		return ret;
	progress(t, true);
	res->entries = t->nodes;
	res->logical_size = t->logical_size;
	return 0;
}

/*
 * Imports from src (a path or "-") or from stream; filters: which
 * decompressions libarchive may apply.
 */
static int import_any(struct cairn_writer *w, const char *src, const struct tar_stream *stream,
		      const struct import_tar_opts *o, struct import_result *res)
{
	struct tar_import t = { .w = w, .max_bytes = o->max_bytes,
				.max_entries = o->max_entries ? o->max_entries : IMPORT_TAR_MAX_ENTRIES,
				.progress = o->show,
				.layer = o->layer, .base = o->base };
	int ret;

	t.src.fd = -1;
	t.src.stream = stream;
	if (!stream) {
		ret = open_source(src, &t.src);
		if (ret)
			return ret;
	}
	t.src.buf = malloc(TAR_READ_BUF);
	t.root = calloc(1, sizeof(*t.root) + 1);
	t.a = archive_read_new();
	ret = -ENOMEM;
	if (!t.src.buf || !t.root || !t.a || !(t.root->ino = implied_dir()))
		goto out;
	t.nodes = 1;
	t.start_ns = cairn_now_ns();
	/* tar in all its dialects (ustar, GNU, pax); plain, gzip or zstd (a stream: plain) */
	if (archive_read_support_format_tar(t.a) != ARCHIVE_OK ||
	    (!stream && (archive_read_support_filter_gzip(t.a) != ARCHIVE_OK ||
			 archive_read_support_filter_zstd(t.a) != ARCHIVE_OK)) ||
	    archive_read_support_filter_none(t.a) != ARCHIVE_OK) {
		ret = cairn_err(-ENOTSUP, "libarchive lacks tar, gzip or zstd support: %s",
				archive_error_string(t.a));
		goto out;
	}
	ret = import_archive(&t, res);
out:
	if (ret && t.progress)
		fputc('\n', stderr);
	if (t.a)
		archive_read_free(t.a);
	cairn_txn_abort(t.txn);
	tree_free(t.root);
	free(t.index.slots);
	free(t.last);
	cairn_buf_release(&t.path);
	free(t.src.buf);
	if (t.src.fd > STDIN_FILENO)
		close(t.src.fd);
	return ret;
}

int import_tar(struct cairn_writer *w, const char *src, const struct import_tar_opts *o,
	       struct import_result *res)
{
	return import_any(w, src, NULL, o, res);
}

int import_tar_stream(struct cairn_writer *w, const struct tar_stream *in,
		      const struct import_tar_opts *o, struct import_result *res)
{
	return import_any(w, NULL, in, o, res);
}
