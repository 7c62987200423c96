/* SPDX-License-Identifier: MIT */
/*
 * fuzz_store.c - libFuzzer harness for everything that reads a store that
 * may be damaged: the input is a list of records put into a fresh store's
 * databases (any database, any key, any value, the metadata record
 * included) and the bytes of its pack files. The store is then reopened and
 * read the ways cairn reads one: fsck, du, name resolution, platforms and
 * their history, every image's trees walked with each regular file read
 * whole; then gc runs on it.
 *
 * A damaged store must give errors, never a crash, a hang or wrong bytes.
 * One promise is checked besides: when fsck finds nothing wrong, every
 * tree walks without a missing or damaged object, every file reads whole,
 * and its bytes hash to its content id.
 *
 * Input: records, each one byte op then
 *   op % 11 < 10:  database op % 11 (enum cairn_db), u8 key length,
 *                  u16 value length (little-endian), key, value
 *   op % 11 == 10: u8 pack id, u16 length, bytes appended to pack file id
 * A record cut short ends the list. fuzz/mkseeds.py writes real stores
 * this way. Stores live under $TMPDIR (fuzz/run.sh points it at a tmpfs).
 */
/* white-box: reads and damages the store's tables on purpose */
#define CAIRN_STORE_INTERNAL

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

#include "content.h"
#include "fsck.h"
#include "gc.h"
#include "image.h"
#include "platform.h"
#include "read.h"
#include "walk.h"
#include "store-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OP_PACK 10
/* Files above this are read but not hashed whole; fsck is skipped for stores
 * that claim them (it hashes every byte of a file, holes included). */
#define FILE_HASH_MAX (1u << 20)
#define CLAIM_MAX (64ull << 20)
/* Bytes read per input, holes included: bounds the time a huge sparse file takes. */
#define READ_BUDGET (8u << 20)

#define require(cond, what)                                                         \
	do {                                                                        \
		if (!(cond)) {                                                      \
			fprintf(stderr, "fuzz_store: %s (%s:%d): %s\n", what, __FILE__, \
				__LINE__, cairn_errmsg());                          \
			abort();                                                    \
		}                                                                   \
	} while (0)

struct run {
	struct cairn_store *s;
	struct cairn_txn *t;
	struct cairn_reader *r;
	bool clean;      /* fsck found nothing wrong */
	uint64_t budget; /* bytes still to read */
	uint8_t *file;   /* FILE_HASH_MAX bytes */
};

static char store_dir[4096];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void store_remove(void)
{
	if (store_dir[0])
		nftw(store_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	store_dir[0] = '\0';
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Appends bytes to pack file id (STORE/packs/%08x.pack). */
static void pack_append(uint8_t id, const uint8_t *p, size_t len)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/packs", store_dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/packs/%08x.pack", store_dir, id);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	require(fd >= 0 && write(fd, p, len) == (ssize_t)len, "cannot write a pack");
	close(fd);
}

/*
 * Puts the input's records into the store and writes its packs; false when
 * the input ends the run. *meta: the input wrote the metadata database.
 */
static bool load(struct cairn_store *s, const uint8_t *p, size_t n, bool *meta)
{
	const uint8_t *end = p + n;
	struct cairn_txn *t;
	bool ok = true;

	require(cairn_txn_begin(s, true, &t) == 0, "cannot begin a write transaction");
	while (ok && end - p >= 4) {
		uint8_t op = p[0] % 11;
		size_t kl = p[1], vl = le16(p + 2);

		if (op == OP_PACK) {
			if ((size_t)(end - p) < 4 + vl)
				break;
			pack_append(p[1], p + 4, vl);
			p += 4 + vl;
			continue;
		}
		if ((size_t)(end - p) < 4 + kl + vl)
			break;
		/* LMDB refuses empty keys; that is not the store's doing */
		if (kl && cairn_put(t, (enum cairn_db)op, p + 4, kl, p + 4 + kl, vl, 0, NULL, NULL))
			ok = false;
		*meta |= op == CAIRN_DBI_META;
		p += 4 + kl + vl;
	}
	if (ok)
		require(cairn_txn_commit(t) == 0, "cannot commit the records");
	else
		cairn_txn_abort(t);
	return ok;
}

/* Does any node or content list claim more bytes than fsck should hash here? */
static bool claims_huge(struct cairn_txn *t)
{
	static const enum cairn_db dbs[] = { CAIRN_DBI_NODES, CAIRN_DBI_CONTENTS };
	bool huge = false;

	for (size_t i = 0; i < ARRAY_SIZE(dbs) && !huge; i++) {
		struct cairn_cursor *c;
		const void *k, *v;
		size_t kl, vl;
		int ret;

		require(cairn_cursor_open(t, dbs[i], &c) == 0, "cannot open a cursor");
		for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); ret == 0 && !huge;
		     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
			struct cairn_node_view nv;
			struct cairn_content_view cv;

			if (dbs[i] == CAIRN_DBI_NODES)
				huge = cairn_node_parse(v, vl, 0, &nv) == 0 &&
				       nv.type == CAIRN_NODE_REG && nv.size > CLAIM_MAX;
			else
				huge = cairn_content_parse(v, vl, 0, &cv) == 0 && cv.size > CLAIM_MAX;
		}
		cairn_cursor_close(c);
	}
	return huge;
}

/* Reads a regular file whole (within the budget); checks its bytes when fsck was clean. */
static void read_file(struct run *r, const struct cairn_node_view *nv)
{
	struct cairn_content_view cv;
	struct cairn_id got;
	uint64_t off = 0;
	bool whole = nv->size <= FILE_HASH_MAX;
	int ret = cairn_file_content(r->t, nv, 0, &cv);

	require(!r->clean || ret == 0, "fsck is clean but a file's content list does not read");
	if (ret)
		return;
	while (off < cv.size && r->budget) {
		size_t want = cv.size - off < 65536 ? (size_t)(cv.size - off) : 65536;
		ssize_t n;

		if (want > r->budget)
			want = (size_t)r->budget;
		n = cairn_reader_pread(r->r, &cv, whole ? r->file + off : r->file, want, off);
		require(!r->clean || n > 0, "fsck is clean but a file does not read");
		if (n <= 0)
			return;
		require((size_t)n <= want, "pread returned more than asked");
		off += (uint64_t)n;
		r->budget -= (uint64_t)n;
	}
	if (!r->clean || !whole || off < cv.size)
		return;
	/* a list is named by itself (fsck checked it); a file of one chunk or none by its bytes */
	if (nv->content_kind == CAIRN_CONTENT_LIST)
		return;
	cairn_hash(r->file, (size_t)off, &got);
	require(cairn_id_eq(&got, &nv->content), "fsck is clean but a file's bytes are not its content");
}

static int visit(void *ctx, const struct cairn_visit *v)
{
	struct run *r = ctx;

	require(!r->clean || v->obj->state == CAIRN_OBJ_OK,
		"fsck is clean but a walk meets a missing or damaged object");
	if (v->first && v->node && v->node->type == CAIRN_NODE_REG)
		read_file(r, v->node);
	return 0;
}

static void read_images(struct run *r)
{
	struct cairn_objmap m;
	struct cairn_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	uint32_t mark = 0;
	int ret;

	cairn_objmap_init(&m);
	require(cairn_cursor_open(r->t, CAIRN_DBI_IMAGES, &c) == 0, "cannot open a cursor");
	for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); ret == 0;
	     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
		struct cairn_image img;
		struct cairn_node_view nv;
		struct cairn_id id, found;
		char hex[CAIRN_ID_HEX_LEN + 1];

		if (kl != CAIRN_ID_LEN)
			continue;
		memcpy(id.b, k, CAIRN_ID_LEN);
		ret = cairn_image_get(r->t, &id, &img);
		require(!r->clean || ret == 0, "fsck is clean but an image record does not read");
		if (ret)
			continue;
		ret = cairn_walk_image(r->t, &m, ++mark, 0, &img.root, img.layers, img.nlayers, visit,
				       r);
		require(ret == 0 || ret < 0, "cairn_walk_image: a positive return");
		cairn_path_walk(r->t, &img.root, "/a/b", &found, &nv);
		cairn_path_walk(r->t, &img.root, "", &found, &nv);
		/* a 4-digit prefix resolves to an image or says why not */
		cairn_id_hex(&id, hex);
		hex[4] = '\0';
		cairn_image_resolve(r->t, hex, &found);
	}
	cairn_cursor_close(c);
	cairn_objmap_release(&m);
}

static int count_gen(const struct cairn_generation *g, void *arg)
{
	(*(uint64_t *)arg)++;
	return 0;
}

/* Every tag and platform name resolves or fails cleanly; history walks. */
static void read_names(struct run *r, enum cairn_db db)
{
	struct cairn_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	int ret;

	require(cairn_cursor_open(r->t, db, &c) == 0, "cannot open a cursor");
	for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); ret == 0;
	     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
		char name[300];
		struct cairn_platform p;
		struct cairn_generation g;
		struct cairn_id id = { { 0 } };
		uint64_t n = 0;

		if (kl >= 200 || memchr(k, '\0', kl))
			continue;
		memcpy(name, k, kl);
		name[kl] = '\0';
		ret = cairn_image_resolve(r->t, name, &id);
		require(!r->clean || ret == 0, "fsck is clean but a name does not resolve");
		if (db != CAIRN_DBI_PLATFORMS)
			continue;
		if (cairn_platform_get(r->t, name, &p) == 0) {
			cairn_generation_get(r->t, name, p.generation, &g);
			snprintf(name + kl, sizeof(name) - kl, "@%llu",
				 (unsigned long long)p.generation);
			cairn_image_resolve(r->t, name, &id);
			name[kl] = '\0';
		}
		cairn_history_walk(r->t, name, count_gen, &n);
		cairn_platform_uses(r->t, &id, name, sizeof(name));
	}
	cairn_cursor_close(c);
}

static void read_store(struct run *r)
{
	static struct cairn_reader reader;
	struct cairn_usage *u = NULL, total;
	size_t n = 0;

	require(cairn_txn_begin(r->s, false, &r->t) == 0, "cannot begin a read transaction");
	/* one reader for every run: its 4 MiB buffer costs ASan more than a run */
	if (!reader.buf)
		require(cairn_reader_init(&reader, r->t) == 0, "out of memory");
	reader.t = r->t;
	reader.have = false;
	r->r = &reader;
	read_names(r, CAIRN_DBI_TAGS);
	read_names(r, CAIRN_DBI_PLATFORMS);
	read_images(r);
	if (cairn_usage_images(r->t, NULL, &u, &n, &total) == 0)
		free(u);
	cairn_txn_abort(r->t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *file;
	const char *tmp = getenv("TMPDIR");
	struct run r = { .budget = READ_BUDGET };
	struct cairn_fsck_stats st = { 0 };
	struct cairn_gc_opts go = { .keep = 1, .repack_below = 0.5 };
	struct cairn_gc_stats gs;
	struct cairn_txn *t;
	bool huge, meta = false;
	int lock;

	if (!file)
		file = malloc(FILE_HASH_MAX);
	require(file, "out of memory");
	r.file = file;
	snprintf(store_dir, sizeof(store_dir), "%s/cairn-fuzz-store-XXXXXX", tmp ? tmp : "/tmp");
	require(mkdtemp(store_dir), "cannot make the store directory");
	require(cairn_store_open(store_dir, CAIRN_STORE_CREATE, NULL, &r.s) == 0,
		"cannot create the store");
	if (!load(r.s, data, size, &meta)) {
		cairn_store_close(r.s);
		goto out;
	}
	if (meta) {
		/* reopening reads the metadata record, which the input replaced */
		cairn_store_close(r.s);
		if (cairn_store_open(store_dir, 0, NULL, &r.s))
			goto out;
	}
	require(cairn_txn_begin(r.s, false, &t) == 0, "cannot begin a read transaction");
	huge = claims_huge(t);
	cairn_txn_abort(t);
	if (!huge) {
		require(cairn_fsck(r.s, NULL, &st) == 0, "fsck cannot read the store");
		r.clean = st.problems == 0;
	}
	read_store(&r);
	lock = cairn_gc_lock(r.s, true);
	require(lock >= 0, "cannot take the gc lock");
	cairn_gc(r.s, &go, &gs);
	close(lock);
	cairn_store_close(r.s);
out:
	store_remove();
	cairn_err_clear();
	return 0;
}
