/* SPDX-License-Identifier: MIT */
/*
 * fsck.c - the store check (see fsck.h).
 *
 * The scans go database by database in key order, so each value is read
 * once and in the order LMDB keeps it. The content scan re-reads the chunks
 * of each content list to hash the file's bytes; the walk re-reads nothing
 * it has seen (one map of every object reached, by id). A missing object is
 * reported once, naming the first reference found to it, however many
 * references lead there.
 */
#include "fsck.h"
#include "platform.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "chunk.h"
#include "content.h"
#include "source.h"
#include "image.h"
#include "lazy.h"
#include "remotes.h"
#include "node.h"
#include "walk.h"
#include "store-internal.h"

#define PROGRESS_EVERY 1024u
#define WALK_MARK 1u

struct fsck {
	struct cairn_txn *t;
	const struct cairn_fsck_opts *o;
	struct cairn_fsck_stats *st;
	struct cairn_zctx z;
	uint8_t *buf;                  /* one decoded chunk */
	char remote_ok[CAIRN_LAZY_NAME_MAX + 1]; /* the last remote a lazy record named, found */
	struct cairn_objmap walked;    /* everything the trees reach */
	struct cairn_objmap reported;  /* missing and corrupt objects already reported */
	struct cairn_objmap bad_packs; /* pack files that cannot be opened */
	char root[128];                /* what the walk's root is, for messages */
	bool pack_known;               /* pack_size() keeps its last answer */
	uint32_t pack;
	uint64_t pack_size;            /* UINT64_MAX: not recorded */
	char msg[1024];
};

static const char *kind_name(uint8_t kind)
{
	switch (kind) {
	case CAIRN_OBJ_NODE:
		return "node";
	case CAIRN_OBJ_CONTENT:
		return "content";
	default:
		return "chunk";
	}
}

static const char *type_name(uint8_t type)
{
	static const char *const names[] = {
		[CAIRN_NODE_REG] = "regular file", [CAIRN_NODE_DIR] = "directory",
		[CAIRN_NODE_LNK] = "symlink",      [CAIRN_NODE_CHR] = "char device",
		[CAIRN_NODE_BLK] = "block device", [CAIRN_NODE_FIFO] = "fifo",
		[CAIRN_NODE_SOCK] = "socket",      [CAIRN_NODE_WHITEOUT] = "whiteout",
	};

	return type < ARRAY_SIZE(names) && names[type] ? names[type] : "node of unknown type";
}

/* Quotes a name for a message: printable ASCII as is, the rest as \xNN. */
static const char *quote(char *out, size_t cap, const char *s, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

static void __attribute__((format(printf, 5, 0)))
vproblem(struct fsck *f, const char *kind, const char *name, size_t name_len,
		     const char *fmt, va_list ap)
{
	struct cairn_fsck_problem p = { .kind = kind, .name = name, .name_len = name_len };

	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	p.msg = f->msg;
	f->st->problems++;
	if (f->o->problem)
		f->o->problem(f->o->ctx, &p);
}

static void __attribute__((format(printf, 4, 5)))
problem_name(struct fsck *f, const char *kind, const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vproblem(f, kind, name, strlen(name), fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 4, 5)))
problem_id(struct fsck *f, const char *kind, const struct cairn_id *id, const char *fmt, ...)
{
	char hex[CAIRN_ID_HEX_LEN + 1];
	va_list ap;

	cairn_id_hex(id, hex);
	va_start(ap, fmt);
	vproblem(f, kind, hex, CAIRN_ID_HEX_LEN, fmt, ap);
	va_end(ap);
}

/* A key that is not an id: named by its bytes in hex (at most 32 of them). */
static void bad_key(struct fsck *f, const char *kind, const void *k, size_t kl)
{
	char hex[65];
	size_t n = kl < 32 ? kl : 32;

	for (size_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", ((const uint8_t *)k)[i]);
	hex[2 * n] = '\0';
	problem_name(f, kind, n ? hex : "(empty key)", "key is %zu bytes, not a %u-byte id", kl,
		     CAIRN_ID_LEN);
}

/* Reports a missing object once, with the reference that found it. */
static int __attribute__((format(printf, 4, 5)))
missing(struct fsck *f, uint8_t kind, const struct cairn_id *id, const char *fmt, ...)
{
	char hex[CAIRN_ID_HEX_LEN + 1], ref[512];
	struct cairn_obj *o;
	bool added;
	va_list ap;
	int ret;

	ret = cairn_objmap_add(&f->reported, kind, id, &o, &added);
	if (ret || !added)
		return ret;
	va_start(ap, fmt);
	vsnprintf(ref, sizeof(ref), fmt, ap);
	va_end(ap);
	cairn_id_hex(id, hex);
	problem_name(f, kind_name(kind), hex, "missing (%s)", ref);
	return 0;
}

/*
 * Remembers an object the scans found corrupt: the walk does not follow
 * what it references (its references are not to be trusted, and what they
 * lead to would only repeat this problem).
 */
static int corrupt(struct fsck *f, uint8_t kind, const struct cairn_id *id)
{
	struct cairn_obj *o;
	bool added;

	return cairn_objmap_add(&f->reported, kind, id, &o, &added);
}

static void progress(struct fsck *f, const char *phase, uint64_t done, uint64_t total)
{
	if (f->o->progress)
		f->o->progress(f->o->ctx, phase, done, total);
}

/* --- chunks ------------------------------------------------------------- */

/* cairn_chunks_read's message names the chunk; the problem line does already. */
static const char *chunk_msg(const struct cairn_id *id)
{
	char prefix[CAIRN_ID_HEX_LEN + 8];
	const char *m = cairn_errmsg();

	memcpy(prefix, "chunk ", 6);
	cairn_id_hex(id, prefix + 6);
	if (strncmp(m, prefix, strlen(prefix)) == 0) {
		m += strlen(prefix);
		m += strspn(m, ": ");
	}
	return *m ? m : "cannot be read";
}

/* The committed size of a pack, or -ENOENT; the last one looked up is kept. */
static int pack_size(struct fsck *f, uint32_t pack, uint64_t *size)
{
	struct cairn_pack_disk d;
	uint32_t be = htobe32(pack);
	const void *v;
	size_t vl;
	int ret;

	if (f->pack_known && f->pack == pack) {
		*size = f->pack_size;
		return f->pack_size == UINT64_MAX ? -ENOENT : 0;
	}
	ret = cairn_get(f->t, CAIRN_DBI_PACKS, &be, sizeof(be), &v, &vl);
	if (ret && ret != -ENOENT)
		return ret;
	cairn_err_clear();
	f->pack_known = true;
	f->pack = pack;
	f->pack_size = UINT64_MAX;
	if (!ret && vl == sizeof(d)) {
		memcpy(&d, v, sizeof(d));
		f->pack_size = CAIRN_GET(d.size);
	}
	*size = f->pack_size;
	return f->pack_size == UINT64_MAX ? -ENOENT : 0;
}

static bool pack_is_bad(const struct fsck *f, uint32_t pack);

static int check_chunk(struct fsck *f, const void *k, size_t kl, const void *v, size_t vl)
{
	struct cairn_chunk_ref ref;
	struct cairn_id id;
	uint64_t committed;
	long n;
	int ret;

	f->st->chunks++;
	if (kl != CAIRN_ID_LEN) {
		bad_key(f, "chunk", k, kl);
		return 0;
	}
	memcpy(id.b, k, CAIRN_ID_LEN);
	if (cairn_chunk_parse(v, vl, &ref)) {
		problem_id(f, "chunk", &id, "malformed index record");
		return 0;
	}
	ret = pack_size(f, ref.pack, &committed);
	if (ret == -ENOENT) {
		problem_id(f, "chunk", &id, "in pack %08x, which the store does not record",
			   ref.pack);
		return 0;
	}
	if (ret)
		return ret;
	if (ref.offset > committed ||
	    committed - ref.offset < sizeof(struct cairn_pack_entry) + (uint64_t)ref.len) {
		problem_id(f, "chunk", &id, "lies past the committed end of pack %08x", ref.pack);
		return 0;
	}
	if (pack_is_bad(f, ref.pack)) {
		problem_id(f, "chunk", &id, "in pack %08x, whose file cannot be opened", ref.pack);
		return 0;
	}
	n = cairn_chunks_read(f->t, &f->z, &id, CAIRN_READ_LOCAL, f->buf, CAIRN_CHUNK_MAX_LIMIT);
	if (n == -ENOMEM)
		return -ENOMEM;
	if (n < 0) {
		problem_id(f, "chunk", &id, "%s", chunk_msg(&id));
		cairn_err_clear();
		return 0;
	}
	f->st->chunk_bytes += (uint64_t)n;
	return 0;
}

/* --- packs -------------------------------------------------------------- */

static struct cairn_id pack_key(uint32_t pack)
{
	struct cairn_id k = { { 0 } };

	cairn_put32(k.b, pack);
	return k;
}

/* Remembers a pack whose file cannot be opened: its chunks say so, once each. */
static int pack_bad(struct fsck *f, uint32_t pack)
{
	struct cairn_id k = pack_key(pack);
	struct cairn_obj *o;
	bool added;

	return cairn_objmap_add(&f->bad_packs, CAIRN_OBJ_USER, &k, &o, &added);
}

static bool pack_is_bad(const struct fsck *f, uint32_t pack)
{
	struct cairn_id k = pack_key(pack);

	return cairn_objmap_find(&f->bad_packs, CAIRN_OBJ_USER, &k) != NULL;
}

static int check_pack(struct fsck *f, const void *k, size_t kl, const void *v, size_t vl)
{
	struct cairn_pack_header h;
	struct cairn_pack_disk d;
	char name[16], path[4096], ebuf[128];
	struct stat st;
	uint32_t pack;
	int fd;

	f->st->packs++;
	if (kl != sizeof(pack)) {
		bad_key(f, "pack", k, kl);
		return 0;
	}
	memcpy(&pack, k, sizeof(pack));
	pack = be32toh(pack);
	snprintf(name, sizeof(name), "%08x", pack);
	if (vl != sizeof(d)) {
		problem_name(f, "pack", name, "malformed record");
		return 0;
	}
	memcpy(&d, v, sizeof(d));
	if (d.version != CAIRN_FORMAT_VERSION || CAIRN_GET(d.size) < sizeof(h)) {
		problem_name(f, "pack", name, "malformed record");
		return 0;
	}
	cairn_store_pack_path(cairn_txn_store(f->t), pack, path, sizeof(path));
	fd = cairn_store_pack_fd(cairn_txn_store(f->t), pack);
	if (fd < 0) {
		cairn_err_clear();
		if (fd == -ENOMEM)
			return fd;
		problem_name(f, "pack", name, "cannot open '%s': %s", path,
			     cairn_strerror(-fd, ebuf, sizeof(ebuf)));
		return pack_bad(f, pack);
	}
	if (fstat(fd, &st) || (uint64_t)st.st_size < CAIRN_GET(d.size)) {
		problem_name(f, "pack", name, "'%s' is shorter than its %llu committed bytes", path,
			     (unsigned long long)CAIRN_GET(d.size));
		return 0;
	}
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, CAIRN_PACK_MAGIC, sizeof(h.magic)) ||
	    h.version != CAIRN_FORMAT_VERSION || CAIRN_GET(h.pack) != pack)
		problem_name(f, "pack", name, "'%s' does not start with this pack's header", path);
	return 0;
}

/* --- content lists ------------------------------------------------------ */


/*
 * Checks one data extent: its chunk is known (local, or not fetched yet)
 * and as long as the extent. 0 or -errno.
 */
static int check_extent(struct fsck *f, const struct cairn_id *content, uint32_t i,
			const struct cairn_extent *e)
{
	char hex[CAIRN_ID_HEX_LEN + 1];
	struct cairn_chunk_info info;
	int ret;

	ret = cairn_chunks_stat(f->t, &e->id, &info);
	if (ret == -ENOENT) {
		char chex[CAIRN_ID_HEX_LEN + 1];

		cairn_err_clear();
		cairn_id_hex(content, chex);
		return missing(f, CAIRN_OBJ_CHUNK, &e->id, "referenced by content %s, extent %u",
			       chex, i);
	}
	if (ret == -EUCLEAN) {
		cairn_err_clear();
		return 0; /* the chunk (or lazy) scan reports it */
	}
	if (ret)
		return ret;
	if (info.raw_len != e->end - e->start) {
		cairn_id_hex(&e->id, hex);
		problem_id(f, "content", content,
			   "extent %u (bytes %llu..%llu) is %llu bytes but chunk %s holds %u", i,
			   (unsigned long long)e->start, (unsigned long long)e->end,
			   (unsigned long long)(e->end - e->start), hex, info.raw_len);
	}
	return 0;
}

/* A list is named by the hash of itself (format.h): no chunk is read to check it. */
static int check_content(struct fsck *f, const void *k, size_t kl, const void *v, size_t vl)
{
	struct cairn_content_view cv;
	struct cairn_id id, got;

	f->st->contents++;
	if (kl != CAIRN_ID_LEN) {
		bad_key(f, "content", k, kl);
		return 0;
	}
	memcpy(id.b, k, CAIRN_ID_LEN);
	if (cairn_content_parse(v, vl, CAIRN_PARSE_STRICT, &cv)) {
		problem_id(f, "content", &id, "malformed extent list");
		return 0;
	}
	cairn_content_list_id(v, vl, &got);
	if (!cairn_id_eq(&got, &id)) {
		problem_id(f, "content", &id, "does not match its id (the list hashes "
					      "differently)");
		return 0;
	}
	for (uint32_t i = 0; i < cv.count; i++) {
		struct cairn_extent e;
		int ret;

		cairn_content_extent(&cv, i, &e);
		if (e.hole)
			continue;
		ret = check_extent(f, &id, i, &e);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* --- lazy records ------------------------------------------------------- */

/* A lazy record parses and names a remote the store has; fetched or not. */
static int check_lazy(struct fsck *f, const void *k, size_t kl, const void *v, size_t vl)
{
	struct cairn_remote_rec rec;
	struct cairn_lazy l;
	struct cairn_id id;
	int ret;

	f->st->lazy++;
	if (kl != CAIRN_ID_LEN) {
		bad_key(f, "lazy chunk", k, kl);
		return 0;
	}
	memcpy(id.b, k, CAIRN_ID_LEN);
	if (cairn_lazy_parse(&id, v, vl, &l)) {
		problem_id(f, "lazy chunk", &id, "malformed record");
		return 0;
	}
	ret = cairn_get(f->t, CAIRN_DBI_CHUNKS, id.b, CAIRN_ID_LEN, &v, &vl);
	if (ret == 0)
		return 0; /* fetched since: gc drops the record */
	if (ret != -ENOENT)
		return ret;
	cairn_err_clear();
	if (strcmp(l.remote, f->remote_ok) == 0)
		return 0;
	ret = cairn_remote_get(f->t, l.remote, &rec);
	if (ret == -ENOENT) {
		cairn_err_clear();
		problem_id(f, "lazy chunk", &id, "is to be fetched from remote '%s', which the store "
			   "does not have", l.remote);
		return 0;
	}
	if (ret)
		return ret;
	cairn_remote_rec_release(&rec);
	snprintf(f->remote_ok, sizeof(f->remote_ok), "%s", l.remote);
	return 0;
}

/* --- nodes -------------------------------------------------------------- */

static int check_node(struct fsck *f, const void *k, size_t kl, const void *v, size_t vl)
{
	struct cairn_node_view nv;
	struct cairn_id id, got;

	f->st->nodes++;
	if (kl != CAIRN_ID_LEN) {
		bad_key(f, "node", k, kl);
		return 0;
	}
	memcpy(id.b, k, CAIRN_ID_LEN);
	cairn_hash(v, vl, &got);
	if (!cairn_id_eq(&got, &id)) {
		problem_id(f, "node", &id, "does not match its id");
		return corrupt(f, CAIRN_OBJ_NODE, &id);
	}
	if (cairn_node_parse(v, vl, CAIRN_PARSE_STRICT, &nv)) {
		problem_id(f, "node", &id, "malformed (breaks the canonical encoding)");
		return corrupt(f, CAIRN_OBJ_NODE, &id);
	}
	if (nv.type == CAIRN_NODE_REG && nv.content_kind == CAIRN_CONTENT_EMPTY) {
		cairn_hash("", 0, &got);
		if (!cairn_id_eq(&got, &nv.content))
			problem_id(f, "node", &id, "empty file whose content id is not the id "
						   "of no bytes");
	}
	return 0;
}

/* --- the walk ----------------------------------------------------------- */

static int walk_visit(void *ctx, const struct cairn_visit *v)
{
	struct fsck *f = ctx;
	const struct cairn_obj *o = v->obj;
	char from[CAIRN_ID_HEX_LEN + 1], q[4 * CAIRN_NAME_MAX + 8];

	if (v->from)
		cairn_id_hex(v->from, from);
	if (o->state == CAIRN_OBJ_REMOTE && v->first)
		f->st->not_fetched++; /* a lazy pull's: not damage; its record says its length */
	if (o->state == CAIRN_OBJ_MISSING) {
		if (!v->first)
			return 0;
		switch (v->ref) {
		case CAIRN_REF_ROOT:
			return missing(f, o->kind, &o->id, "%s", f->root);
		case CAIRN_REF_DIRENT:
			return missing(f, o->kind, &o->id, "referenced by directory %s entry '%s'",
				       from, quote(q, sizeof(q), v->name, v->name_len));
		case CAIRN_REF_CONTENT:
			return missing(f, o->kind, &o->id, "content of file node %s", from);
		default:
			return missing(f, o->kind, &o->id, "referenced by content %s, extent %u",
				       from, v->index);
		}
	}
	if (o->state != CAIRN_OBJ_OK && o->state != CAIRN_OBJ_REMOTE)
		return 0; /* damaged: the scans report it */
	if (v->first)
		f->st->reachable++;

	switch (v->ref) {
	case CAIRN_REF_ROOT:
		if (v->want_type && o->type != v->want_type)
			problem_id(f, "node", &o->id, "%s is a %s, not a %s", f->root,
				   type_name(o->type), type_name(v->want_type));
		break;
	case CAIRN_REF_DIRENT:
		if (o->type != v->want_type) {
			char hex[CAIRN_ID_HEX_LEN + 1];

			cairn_id_hex(&o->id, hex);
			problem_id(f, "node", v->from,
				   "directory entry '%s' says %s but node %s is a %s",
				   quote(q, sizeof(q), v->name, v->name_len),
				   type_name(v->want_type), hex, type_name(o->type));
		}
		break;
	case CAIRN_REF_CONTENT:
		if (o->len != v->want_len) {
			char hex[CAIRN_ID_HEX_LEN + 1];

			cairn_id_hex(&o->id, hex);
			problem_id(f, "node", v->from, "file of %llu bytes but its %s %s holds %llu",
				   (unsigned long long)v->want_len,
				   o->kind == CAIRN_OBJ_CHUNK ? "chunk" : "content", hex,
				   (unsigned long long)o->len);
		}
		break;
	default:
		break; /* extents: the content scan checks them */
	}
	if (v->first && o->kind == CAIRN_OBJ_NODE &&
	    cairn_objmap_find(&f->reported, CAIRN_OBJ_NODE, &o->id))
		return CAIRN_WALK_PRUNE;
	return 0;
}

static int walk_root(struct fsck *f, const struct cairn_id *root)
{
	return cairn_walk(f->t, &f->walked, WALK_MARK, CAIRN_WALK_STRICT, root, CAIRN_NODE_DIR,
			  walk_visit, f);
}

/* --- layers, images, tags, platforms ------------------------------------ */

static int check_layer(struct fsck *f, const void *k, size_t kl, const void *v, size_t vl)
{
	struct cairn_layer_disk l;
	struct cairn_id id;
	char hex[CAIRN_ID_HEX_LEN + 1];

	f->st->layers++;
	if (kl != CAIRN_ID_LEN) {
		bad_key(f, "layer", k, kl);
		return 0;
	}
	memcpy(id.b, k, CAIRN_ID_LEN);
	if (vl != sizeof(l)) {
		problem_id(f, "layer", &id, "malformed record");
		return 0;
	}
	memcpy(&l, v, sizeof(l));
	if (l.version != CAIRN_FORMAT_VERSION || l.source < CAIRN_LAYER_DIR ||
	    l.source > CAIRN_LAYER_COMMIT) {
		problem_id(f, "layer", &id, "malformed record");
		return 0;
	}
	if (memcmp(l.root, id.b, CAIRN_ID_LEN) != 0)
		problem_id(f, "layer", &id, "its record names another root node");
	cairn_id_hex(&id, hex);
	snprintf(f->root, sizeof(f->root), "root of layer %s", hex);
	return walk_root(f, &id);
}

static int check_image(struct fsck *f, const void *k, size_t kl, const void *v, size_t vl)
{
	struct cairn_image img;
	struct cairn_id id, want;
	char hex[CAIRN_ID_HEX_LEN + 1];
	int ret;

	f->st->images++;
	if (kl != CAIRN_ID_LEN) {
		bad_key(f, "image", k, kl);
		return 0;
	}
	memcpy(id.b, k, CAIRN_ID_LEN);
	if (cairn_image_parse(v, vl, &img)) {
		problem_id(f, "image", &id, "malformed record");
		return 0;
	}
	cairn_image_id((const struct cairn_id *)img.layers, img.nlayers, &img.root, &want);
	if (!cairn_id_eq(&want, &id))
		problem_id(f, "image", &id, "does not match its id");
	cairn_id_hex(&id, hex);
	for (uint32_t i = 0; i < img.nlayers; i++) {
		struct cairn_id layer;
		const void *lv;
		size_t ll;

		memcpy(layer.b, img.layers + (size_t)i * CAIRN_ID_LEN, CAIRN_ID_LEN);
		ret = cairn_get(f->t, CAIRN_DBI_LAYERS, layer.b, CAIRN_ID_LEN, &lv, &ll);
		if (ret == -ENOENT) {
			cairn_err_clear();
			problem_id(f, "layer", &layer, "missing (layer %u of image %s)", i, hex);
			/* its tree is still the image's: check what is there */
			snprintf(f->root, sizeof(f->root), "root of layer %u of image %s", i, hex);
			ret = walk_root(f, &layer);
		}
		if (ret)
			return ret;
	}
	snprintf(f->root, sizeof(f->root), "root of image %s", hex);
	return walk_root(f, &img.root);
}

static int image_exists(struct fsck *f, const uint8_t *id, bool *exists)
{
	const void *v;
	size_t vl;
	int ret = cairn_get(f->t, CAIRN_DBI_IMAGES, id, CAIRN_ID_LEN, &v, &vl);

	*exists = ret == 0;
	if (ret == -ENOENT) {
		cairn_err_clear();
		return 0;
	}
	return ret;
}

static int check_tag(struct fsck *f, const void *k, size_t kl, const void *v, size_t vl)
{
	char name[130], hex[CAIRN_ID_HEX_LEN + 1];
	struct cairn_id id;
	bool ok;
	int ret;

	f->st->tags++;
	ok = kl < sizeof(name) && !memchr(k, '\0', kl);
	if (ok) {
		memcpy(name, k, kl);
		name[kl] = '\0';
		ok = cairn_tag_check(name) == 0;
	}
	if (!ok) {
		char q[4 * sizeof(name) + 8];

		quote(q, sizeof(q), k, kl < sizeof(name) ? kl : sizeof(name));
		problem_name(f, "tag", q, "not a valid tag name");
		return 0;
	}
	if (vl != CAIRN_ID_LEN) {
		problem_name(f, "tag", name, "malformed (not an image id)");
		return 0;
	}
	ret = image_exists(f, v, &ok);
	if (ret)
		return ret;
	memcpy(id.b, v, CAIRN_ID_LEN);
	cairn_id_hex(&id, hex);
	if (!ok)
		problem_name(f, "tag", name, "names image %s, which is missing", hex);
	return 0;
}

static int check_platform(struct fsck *f, const void *k, size_t kl, const void *v, size_t vl)
{
	struct cairn_platform_disk p;
	char q[4 * 256 + 8], hex[CAIRN_ID_HEX_LEN + 1];
	struct cairn_id id;
	bool ok;
	int ret;

	f->st->platforms++;
	quote(q, sizeof(q), k, kl < 256 ? kl : 256);
	if (vl != sizeof(p)) {
		problem_name(f, "platform", q, "malformed record");
		return 0;
	}
	memcpy(&p, v, sizeof(p));
	if (p.version != CAIRN_FORMAT_VERSION) {
		problem_name(f, "platform", q, "malformed record");
		return 0;
	}
	ret = image_exists(f, p.image, &ok);
	if (ret)
		return ret;
	memcpy(id.b, p.image, CAIRN_ID_LEN);
	cairn_id_hex(&id, hex);
	if (!ok)
		problem_name(f, "platform", q, "its current image %s is missing", hex);
	{
		/* the current generation must be in the history, with the same image */
		struct cairn_generation g;
		char name[257];

		memcpy(name, k, kl < 256 ? kl : 256);
		name[kl < 256 ? kl : 256] = '\0';
		ret = cairn_generation_get(f->t, name, CAIRN_GET(p.generation), &g);
		if (ret == -ENOENT || (!ret && !cairn_id_eq(&g.image, &id)))
			problem_name(f, "platform", q, "its current generation %llu is not in its "
				     "history with its image", (unsigned long long)CAIRN_GET(p.generation));
		else if (ret && ret != -EUCLEAN)
			return ret;
		cairn_err_clear();
	}
	return 0;
}

static int check_history(struct fsck *f, const void *k, size_t kl, const void *v, size_t vl)
{
	struct cairn_history_disk h;
	char q[4 * 256 + 8], hex[CAIRN_ID_HEX_LEN + 1];
	struct cairn_id id;
	bool ok;
	int ret;

	quote(q, sizeof(q), k, kl > 9 && kl - 9 < 256 ? kl - 9 : 0);
	if (kl < 10 || vl != sizeof(h)) {
		problem_name(f, "history of platform", q, "malformed record");
		return 0;
	}
	memcpy(&h, v, sizeof(h));
	if (h.version != CAIRN_FORMAT_VERSION ||
	    (h.action != CAIRN_ACTION_UPGRADE && h.action != CAIRN_ACTION_ROLLBACK)) {
		problem_name(f, "history of platform", q, "malformed record");
		return 0;
	}
	ret = image_exists(f, h.image, &ok);
	if (ret)
		return ret;
	memcpy(id.b, h.image, CAIRN_ID_LEN);
	cairn_id_hex(&id, hex);
	if (!ok)
		problem_name(f, "history of platform", q, "a generation's image %s is missing", hex);
	return 0;
}

/* --- driver ------------------------------------------------------------- */

typedef int (*check_fn)(struct fsck *f, const void *k, size_t kl, const void *v, size_t vl);

static int scan(struct fsck *f, enum cairn_db db, const char *phase, check_fn check)
{
	struct cairn_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	uint64_t total = 0, done = 0;
	int ret;

	ret = cairn_db_count(f->t, db, &total);
	if (ret)
		return ret;
	ret = cairn_cursor_open(f->t, db, &c);
	if (ret)
		return ret;
	progress(f, phase, 0, total);
	for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); ret == 0;
	     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
		ret = check(f, k, kl, v, vl);
		if (ret)
			break;
		if (++done % PROGRESS_EVERY == 0)
			progress(f, phase, done, total);
	}
	cairn_cursor_close(c);
	if (ret != -ENOENT)
		return ret;
	cairn_err_clear();
	progress(f, phase, done, total);
	return 0;
}

int cairn_fsck_txn(struct cairn_txn *t, const struct cairn_fsck_opts *opts,
		   struct cairn_fsck_stats *stats)
{
	static const struct cairn_fsck_opts none;
	static const struct {
		enum cairn_db db;
		const char *phase;
		check_fn check;
	} scans[] = {
		{ CAIRN_DBI_PACKS, "packs", check_pack },
		{ CAIRN_DBI_CHUNKS, "chunks", check_chunk },
		{ CAIRN_DBI_CONTENTS, "contents", check_content },
		{ CAIRN_DBI_LAZY, "lazy", check_lazy },
		{ CAIRN_DBI_NODES, "nodes", check_node },
		{ CAIRN_DBI_LAYERS, "layers", check_layer },
		{ CAIRN_DBI_IMAGES, "images", check_image },
		{ CAIRN_DBI_TAGS, "tags", check_tag },
		{ CAIRN_DBI_PLATFORMS, "platforms", check_platform },
		{ CAIRN_DBI_HISTORY, "history", check_history },
	};
	struct fsck f = { .t = t, .o = opts ? opts : &none, .st = stats };
	int ret = 0;

	memset(stats, 0, sizeof(*stats));
	cairn_objmap_init(&f.walked);
	cairn_objmap_init(&f.reported);
	cairn_objmap_init(&f.bad_packs);
	f.buf = malloc(CAIRN_CHUNK_MAX_LIMIT);
	if (!f.buf)
		ret = -ENOMEM;
	for (size_t i = 0; !ret && i < ARRAY_SIZE(scans); i++)
		ret = scan(&f, scans[i].db, scans[i].phase, scans[i].check);
	free(f.buf);
	cairn_zctx_release(&f.z);
	cairn_objmap_release(&f.walked);
	cairn_objmap_release(&f.reported);
	cairn_objmap_release(&f.bad_packs);
	return ret;
}

struct perms_ctx {
	const struct cairn_fsck_opts *o;
	struct cairn_fsck_stats *st;
};

static void perms_problem(void *ctx, const char *path, unsigned mode)
{
	struct perms_ctx *p = ctx;
	char msg[128];
	struct cairn_fsck_problem pr = { .kind = "store", .name = path, .name_len = strlen(path),
					 .msg = msg };

	snprintf(msg, sizeof(msg), "mode %04o lets other users in (a store is 0700, its files "
		 "0600: its owner's next cairn command narrows them)", mode);
	p->st->problems++;
	if (p->o && p->o->problem)
		p->o->problem(p->o->ctx, &pr);
}

int cairn_fsck(struct cairn_store *s, const struct cairn_fsck_opts *opts,
	       struct cairn_fsck_stats *stats)
{
	struct perms_ctx pc = { .o = opts, .st = stats };
	struct cairn_txn *t;
	int ret = cairn_txn_begin(s, false, &t);

	if (ret)
		return ret;
	ret = cairn_fsck_txn(t, opts, stats);
	cairn_txn_abort(t);
	/* after the scans (they zero the figures): what other users could read */
	if (!ret)
		cairn_store_perms(s, false, perms_problem, &pc);
	return ret;
}
