/* SPDX-License-Identifier: MIT */
/*
 * test_fsck.c - the store check and the tree walker: a store built through
 * the writer is clean; each kind of damage (chunk bytes in a pack that no
 * longer match their id, a chunk index pointing past its pack, a missing
 * chunk, node or image, a node rewritten, a directory entry whose type
 * lies) is reported once, naming the object; du's figures add up across
 * two images that share a subtree.
 *
 * Criterion forks per test: the store is opened in the fixture, inside the
 * test's process.
 */
/* white-box: reads and damages the store's tables on purpose */
#define CAIRN_STORE_INTERNAL

#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

#include "chunk.h"
#include "fsck.h"
#include "image.h"
#include "read.h"
#include "walk.h"
#include "writer.h"
#include "store-internal.h"

static char dir[] = "/tmp/cairn-fsck-XXXXXX";
static struct cairn_store *store;

/* what setup() built */
static struct cairn_id img1, img2, root1, root2;
static struct cairn_node_build small, big, sparse;
static struct cairn_id small_id, big_id, sub_id;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(seed >> 56);
	}
}

static void file_node(struct cairn_node_build *n)
{
	memset(n, 0, sizeof(*n));
	n->type = CAIRN_NODE_REG;
	n->mode = 0644;
	n->nlink = 1;
	n->mtime_sec = 1600000000;
}

static void put_file(struct cairn_writer *w, const uint8_t *buf, size_t len, uint64_t hole,
		     struct cairn_node_build *n, struct cairn_id *id)
{
	file_node(n);
	cairn_writer_file_begin(w);
	cr_assert_eq(cairn_writer_file_data(w, buf, len), 0, "%s", cairn_errmsg());
	if (hole) {
		cr_assert_eq(cairn_writer_file_hole(w, hole), 0, "%s", cairn_errmsg());
		cr_assert_eq(cairn_writer_file_data(w, buf, len), 0, "%s", cairn_errmsg());
	}
	cr_assert_eq(cairn_writer_file_end(w, n), 0, "%s", cairn_errmsg());
	cr_assert_eq(cairn_writer_put_node(w, n, id), 0, "%s", cairn_errmsg());
}

static void dirent(struct cairn_dirent *e, const char *name, const struct cairn_id *id,
		   uint8_t type)
{
	e->name = name;
	e->name_len = strlen(name);
	e->id = *id;
	e->type = type;
}

static void put_dir(struct cairn_writer *w, const struct cairn_dirent *e, size_t n,
		    struct cairn_id *id)
{
	struct cairn_node_build d = {
		.type = CAIRN_NODE_DIR,
		.mode = 0755,
		.entries = e,
		.nentries = n,
	};

	cr_assert_eq(cairn_writer_put_node(w, &d, id), 0, "%s", cairn_errmsg());
}

static void publish(struct cairn_writer *w, const struct cairn_id *root, uint64_t logical,
		    const char *tag, struct cairn_id *image)
{
	struct cairn_publish p = {
		.source = CAIRN_LAYER_DIR,
		.layer_root = *root,
		.root = *root,
		.logical_size = logical,
		.nodes = 1,
		.tag = tag,
	};

	cr_assert_eq(cairn_writer_publish(w, &p, image), 0, "%s", cairn_errmsg());
}

/*
 * Image t1:  /small (one chunk)  /big (a content list)  /sparse (data, hole,
 *            data)  /link -> small  /sub/ { small2 (same bytes as small) }
 * Image t2:  /sub/ (the same subtree)  /other (its own chunk)
 */
static void setup(void)
{
	size_t blen = 700u << 10;
	uint8_t *buf = malloc(blen);
	struct cairn_writer *w;
	struct cairn_node_build lnk = { .type = CAIRN_NODE_LNK, .mode = 0777, .nlink = 1,
					.target = "small", .target_len = 5 };
	struct cairn_node_build other;
	struct cairn_id sparse_id, lnk_id, small2_id, other_id;
	struct cairn_dirent e[5];

	strcpy(dir, "/tmp/cairn-fsck-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(cairn_store_open(dir, CAIRN_STORE_CREATE, NULL, &store), 0, "%s",
		     cairn_errmsg());
	cr_assert_not_null(buf);
	fill(buf, blen, 1);
	cr_assert_eq(cairn_writer_new(store, 0, &w), 0);

	put_file(w, (const uint8_t *)"hello\n", 6, 0, &small, &small_id);
	put_file(w, buf, blen, 0, &big, &big_id);
	put_file(w, buf, 10000, 1u << 20, &sparse, &sparse_id);
	cr_assert_eq(small.content_kind, CAIRN_CONTENT_CHUNK);
	cr_assert_eq(big.content_kind, CAIRN_CONTENT_LIST);
	cr_assert_eq(sparse.content_kind, CAIRN_CONTENT_LIST);
	cr_assert_eq(cairn_writer_put_node(w, &lnk, &lnk_id), 0);
	small2_id = small_id; /* equal unlinked files share a node */
	dirent(&e[0], "small2", &small2_id, CAIRN_NODE_REG);
	put_dir(w, e, 1, &sub_id);

	dirent(&e[0], "big", &big_id, CAIRN_NODE_REG);
	dirent(&e[1], "link", &lnk_id, CAIRN_NODE_LNK);
	dirent(&e[2], "small", &small_id, CAIRN_NODE_REG);
	dirent(&e[3], "sparse", &sparse_id, CAIRN_NODE_REG);
	dirent(&e[4], "sub", &sub_id, CAIRN_NODE_DIR);
	put_dir(w, e, 5, &root1);
	publish(w, &root1, 6 + blen + sparse.size + 6, "t1", &img1);

	fill(buf, 3000, 2);
	put_file(w, buf, 3000, 0, &other, &other_id);
	dirent(&e[0], "other", &other_id, CAIRN_NODE_REG);
	dirent(&e[1], "sub", &sub_id, CAIRN_NODE_DIR);
	put_dir(w, e, 2, &root2);
	publish(w, &root2, 3000 + 6, "t2", &img2);

	cairn_writer_free(w);
	free(buf);
}

static void teardown(void)
{
	cairn_store_close(store);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(fsck, .init = setup, .fini = teardown);

/* --- helpers ------------------------------------------------------------ */

#define MAX_PROBLEMS 32

struct found {
	size_t n;
	struct {
		char kind[16];
		char name[80];
		char msg[512];
	} p[MAX_PROBLEMS];
};

static void on_problem(void *ctx, const struct cairn_fsck_problem *p)
{
	struct found *f = ctx;

	if (f->n < MAX_PROBLEMS) {
		snprintf(f->p[f->n].kind, sizeof(f->p[0].kind), "%s", p->kind);
		snprintf(f->p[f->n].name, sizeof(f->p[0].name), "%.*s", (int)p->name_len, p->name);
		snprintf(f->p[f->n].msg, sizeof(f->p[0].msg), "%s", p->msg);
	}
	f->n++;
}

static void run_fsck(struct found *f, struct cairn_fsck_stats *st)
{
	struct cairn_fsck_opts o = { .problem = on_problem, .ctx = f };

	memset(f, 0, sizeof(*f));
	cr_assert_eq(cairn_fsck(store, &o, st), 0, "%s", cairn_errmsg());
	cr_assert_eq(st->problems, f->n);
	for (size_t i = 0; i < f->n && i < MAX_PROBLEMS; i++)
		cr_log_info("problem: %s %s: %s", f->p[i].kind, f->p[i].name, f->p[i].msg);
}

static void expect_one(const struct found *f, const char *kind, const struct cairn_id *id,
		       const char *msg_part)
{
	char hex[CAIRN_ID_HEX_LEN + 1];

	cairn_id_hex(id, hex);
	cr_assert_eq(f->n, 1, "%zu problems, want 1", f->n);
	cr_expect_str_eq(f->p[0].kind, kind);
	cr_expect_str_eq(f->p[0].name, hex);
	cr_expect(strstr(f->p[0].msg, msg_part), "'%s' does not say '%s'", f->p[0].msg, msg_part);
}

/* The first data chunk of a file. */
static struct cairn_id first_chunk(const struct cairn_node_build *n)
{
	struct cairn_txn *t;
	struct cairn_node_view v = { .size = n->size, .content_kind = n->content_kind,
				     .content = n->content };
	struct cairn_content_view cv;
	struct cairn_extent e;

	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_file_content(t, &v, 0, &cv), 0);
	cairn_content_extent(&cv, 0, &e);
	cairn_txn_abort(t);
	cr_assert(!e.hole);
	return e.id;
}

/* Rewrites a value: flip the last byte. */
static void corrupt(enum cairn_db db, const struct cairn_id *id)
{
	struct cairn_txn *t;
	const void *v;
	size_t vl;
	uint8_t *copy;

	cr_assert_eq(cairn_txn_begin(store, true, &t), 0);
	cr_assert_eq(cairn_get(t, db, id->b, CAIRN_ID_LEN, &v, &vl), 0);
	copy = malloc(vl);
	memcpy(copy, v, vl);
	copy[vl - 1] ^= 0x5a;
	cr_assert_eq(cairn_put(t, db, id->b, CAIRN_ID_LEN, copy, vl, 0, NULL, NULL), 0);
	cr_assert_eq(cairn_txn_commit(t), 0);
	free(copy);
}

/* Flips the last payload byte of a chunk where it lives: its pack file. */
static void corrupt_chunk(const struct cairn_id *id)
{
	struct cairn_chunk_ref ref;
	struct cairn_txn *t;
	const void *v;
	size_t vl;
	char path[4096];
	uint8_t b;
	off_t at;
	int fd;

	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_get(t, CAIRN_DBI_CHUNKS, id->b, CAIRN_ID_LEN, &v, &vl), 0);
	cr_assert_eq(cairn_chunk_parse(v, vl, &ref), 0);
	cairn_txn_abort(t);
	cairn_store_pack_path(store, ref.pack, path, sizeof(path));
	fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0, "%s", path);
	at = (off_t)(ref.offset + sizeof(struct cairn_pack_entry) + ref.len - 1);
	cr_assert_eq(pread(fd, &b, 1, at), 1);
	b ^= 0x5a;
	cr_assert_eq(pwrite(fd, &b, 1, at), 1);
	close(fd);
}

static void delete(enum cairn_db db, const void *key, size_t klen)
{
	struct cairn_txn *t;

	cr_assert_eq(cairn_txn_begin(store, true, &t), 0);
	cr_assert_eq(cairn_del(t, db, key, klen), 0);
	cr_assert_eq(cairn_txn_commit(t), 0);
}

/* --- fsck --------------------------------------------------------------- */

Test(fsck, clean_store)
{
	struct cairn_fsck_stats st;
	struct found f;

	run_fsck(&f, &st);
	cr_assert_eq(f.n, 0);
	cr_expect_gt(st.chunks, 3);
	cr_expect_eq(st.contents, 2); /* big and sparse */
	cr_expect_eq(st.nodes, 8);    /* small, big, sparse, link, sub, root1, other, root2 */
	cr_expect_eq(st.images, 2);
	cr_expect_eq(st.layers, 2);
	cr_expect_eq(st.tags, 2);
	cr_expect_geq(st.packs, 1);
	/* every chunk, content and node is reachable */
	cr_expect_eq(st.reachable, st.chunks + st.contents + st.nodes);
}

Test(fsck, corrupt_chunk)
{
	struct cairn_fsck_stats st;
	struct found f;
	struct cairn_id c = first_chunk(&big);

	corrupt_chunk(&c);
	run_fsck(&f, &st);
	/* the content list it belongs to cannot be verified: not a second line */
	expect_one(&f, "chunk", &c, "");
	cr_expect(strstr(f.p[0].msg, "does not match its id") ||
		  strstr(f.p[0].msg, "does not decompress"), "%s", f.p[0].msg);
}

Test(fsck, corrupt_single_chunk_file)
{
	struct cairn_fsck_stats st;
	struct found f;

	corrupt_chunk(&small.content); /* stored raw: 6 bytes */
	run_fsck(&f, &st);
	expect_one(&f, "chunk", &small.content, "does not match its id");
}

Test(fsck, corrupt_chunk_index)
{
	struct cairn_fsck_stats st;
	struct found f;

	/* the last byte of an index record is the top of its pack offset */
	corrupt(CAIRN_DBI_CHUNKS, &small.content);
	run_fsck(&f, &st);
	expect_one(&f, "chunk", &small.content, "past the committed end");
}

Test(fsck, missing_chunk_of_a_list)
{
	struct cairn_fsck_stats st;
	struct found f;
	struct cairn_id c = first_chunk(&big);
	char hex[CAIRN_ID_HEX_LEN + 1];

	delete(CAIRN_DBI_CHUNKS, c.b, CAIRN_ID_LEN);
	run_fsck(&f, &st);
	/* found by the content scan and by the walk: reported once */
	expect_one(&f, "chunk", &c, "missing");
	cairn_id_hex(&big.content, hex);
	cr_expect(strstr(f.p[0].msg, hex), "'%s' does not name content %s", f.p[0].msg, hex);
}

Test(fsck, missing_chunk_of_a_file)
{
	struct cairn_fsck_stats st;
	struct found f;
	char hex[CAIRN_ID_HEX_LEN + 1];

	delete(CAIRN_DBI_CHUNKS, small.content.b, CAIRN_ID_LEN);
	run_fsck(&f, &st);
	expect_one(&f, "chunk", &small.content, "missing");
	cairn_id_hex(&small_id, hex);
	cr_expect(strstr(f.p[0].msg, hex), "'%s' does not name file node %s", f.p[0].msg, hex);
}

Test(fsck, corrupt_and_missing_chunks_together)
{
	struct cairn_fsck_stats st;
	struct found f;
	struct cairn_id c = first_chunk(&big);
	bool saw_corrupt = false, saw_missing = false;
	char hc[CAIRN_ID_HEX_LEN + 1], hm[CAIRN_ID_HEX_LEN + 1];

	corrupt_chunk(&c);
	delete(CAIRN_DBI_CHUNKS, small.content.b, CAIRN_ID_LEN);
	run_fsck(&f, &st);
	cr_assert_eq(f.n, 2);
	cairn_id_hex(&c, hc);
	cairn_id_hex(&small.content, hm);
	for (size_t i = 0; i < f.n; i++) {
		saw_corrupt |= strcmp(f.p[i].name, hc) == 0;
		saw_missing |= strcmp(f.p[i].name, hm) == 0 && strstr(f.p[i].msg, "missing");
	}
	cr_expect(saw_corrupt && saw_missing);
}

Test(fsck, missing_node)
{
	struct cairn_fsck_stats st;
	struct found f;
	char hex[CAIRN_ID_HEX_LEN + 1];

	delete(CAIRN_DBI_NODES, sub_id.b, CAIRN_ID_LEN);
	run_fsck(&f, &st);
	/* two images reach it: one line, naming the first directory found */
	expect_one(&f, "node", &sub_id, "missing");
	cr_expect(strstr(f.p[0].msg, "entry 'sub'"), "%s", f.p[0].msg);
	cairn_id_hex(&root1, hex);
	cr_expect(strstr(f.p[0].msg, hex) || (cairn_id_hex(&root2, hex), strstr(f.p[0].msg, hex)),
		  "'%s' does not name a root directory", f.p[0].msg);
}

Test(fsck, rewritten_node)
{
	struct cairn_fsck_stats st;
	struct found f;

	corrupt(CAIRN_DBI_NODES, &small_id);
	run_fsck(&f, &st);
	cr_assert_geq(f.n, 1);
	cr_expect_str_eq(f.p[0].kind, "node");
	cr_expect(strstr(f.p[0].msg, "does not match its id"), "%s", f.p[0].msg);
}

Test(fsck, corrupt_content_list)
{
	struct cairn_fsck_stats st;
	struct found f;

	/* the last byte is in the last extent's chunk id: the list still parses */
	corrupt(CAIRN_DBI_CONTENTS, &big.content);
	run_fsck(&f, &st);
	cr_assert_geq(f.n, 2);
	/* a list is named by the hash of itself: that no longer holds */
	cr_expect_str_eq(f.p[0].kind, "content");
	cr_expect(strstr(f.p[0].msg, "does not match its id"), "%s", f.p[0].msg);
	/* and its last chunk id is now one that does not exist */
	cr_expect_str_eq(f.p[1].kind, "chunk");
	cr_expect(strstr(f.p[1].msg, "missing"), "%s", f.p[1].msg);
}

Test(fsck, entry_type_mismatch)
{
	struct cairn_writer *w;
	struct cairn_dirent e;
	struct cairn_id root, image;
	struct cairn_fsck_stats st;
	struct found f;
	char hex[CAIRN_ID_HEX_LEN + 1];

	/* a directory entry that says "directory" for a regular file */
	cr_assert_eq(cairn_writer_new(store, 0, &w), 0);
	dirent(&e, "liar", &small_id, CAIRN_NODE_DIR);
	put_dir(w, &e, 1, &root);
	publish(w, &root, 6, "t3", &image);
	cairn_writer_free(w);
	run_fsck(&f, &st);
	expect_one(&f, "node", &root, "says directory");
	cairn_id_hex(&small_id, hex);
	cr_expect(strstr(f.p[0].msg, hex), "%s", f.p[0].msg);
}

Test(fsck, dangling_tag_and_missing_image)
{
	struct cairn_txn *t;
	struct cairn_fsck_stats st;
	struct found f;

	delete(CAIRN_DBI_IMAGES, img2.b, CAIRN_ID_LEN);
	run_fsck(&f, &st);
	cr_assert_eq(f.n, 1);
	cr_expect_str_eq(f.p[0].kind, "tag");
	cr_expect_str_eq(f.p[0].name, "t2");
	cr_expect(strstr(f.p[0].msg, "missing"), "%s", f.p[0].msg);

	/* a layer record gone: the image names it */
	cr_assert_eq(cairn_txn_begin(store, true, &t), 0);
	cr_assert_eq(cairn_del(t, CAIRN_DBI_LAYERS, root1.b, CAIRN_ID_LEN), 0);
	cr_assert_eq(cairn_txn_commit(t), 0);
	run_fsck(&f, &st);
	cr_assert_eq(f.n, 2);
}

/* --- du ----------------------------------------------------------------- */

static const struct cairn_usage *find_usage(const struct cairn_usage *u, size_t n,
					    const struct cairn_id *id)
{
	for (size_t i = 0; i < n; i++)
		if (cairn_id_eq(&u[i].image, id))
			return &u[i];
	cr_assert_fail("image not in the usage list");
	return NULL;
}

/* What an object takes: its value, and for a chunk also its pack entry. */
static uint64_t value_size(struct cairn_txn *t, enum cairn_db db, const struct cairn_id *id)
{
	struct cairn_chunk_ref ref;
	const void *v;
	size_t vl;

	cr_assert_eq(cairn_get(t, db, id->b, CAIRN_ID_LEN, &v, &vl), 0);
	if (db != CAIRN_DBI_CHUNKS)
		return vl;
	cr_assert_eq(cairn_chunk_parse(v, vl, &ref), 0);
	return vl + sizeof(struct cairn_pack_entry) + ref.len;
}

Test(fsck, usage_shared_and_unique)
{
	struct cairn_txn *t;
	struct cairn_usage *u, total, *one;
	const struct cairn_usage *a, *b;
	uint64_t shared;
	size_t n;

	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_usage_images(t, NULL, &u, &n, &total), 0, "%s", cairn_errmsg());
	cr_assert_eq(n, 2);
	a = find_usage(u, n, &img1);
	b = find_usage(u, n, &img2);
	/* what both reach: the sub directory, the small file's node and its chunk */
	shared = value_size(t, CAIRN_DBI_NODES, &sub_id) + value_size(t, CAIRN_DBI_NODES, &small_id) +
		 value_size(t, CAIRN_DBI_CHUNKS, &small.content);
	cr_expect_eq(a->stored_bytes - a->unique_bytes, shared);
	cr_expect_eq(b->stored_bytes - b->unique_bytes, shared);
	cr_expect_eq(total.stored_bytes, a->stored_bytes + b->stored_bytes - shared);
	cr_expect_eq(total.unique_bytes, a->unique_bytes + b->unique_bytes);
	cr_expect_eq(b->nodes, 4);   /* root2, other, sub, small */
	cr_expect_eq(b->chunks, 2);  /* other's and small's */
	cr_expect_eq(a->contents, 2);
	cr_expect_eq(a->logical_bytes, 6 + (700u << 10) + sparse.size + 6);
	cr_expect_eq(a->missing, 0);
	free(u);

	/* one image: the same figures */
	cr_assert_eq(cairn_usage_images(t, &img2, &one, &n, &total), 0);
	cr_assert_eq(n, 1);
	cr_expect(cairn_id_eq(&one->image, &img2));
	cr_expect_eq(one->stored_bytes - one->unique_bytes, shared);
	free(one);
	cairn_txn_abort(t);
}

Test(fsck, walk_visits_each_object_once)
{
	struct cairn_txn *t;
	struct cairn_objmap m;
	struct cairn_obj *o;
	size_t pos = 0, nodes = 0;

	cairn_objmap_init(&m);
	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_walk(t, &m, 1, CAIRN_WALK_STRICT, &root1, CAIRN_NODE_DIR, NULL, NULL),
		     0);
	/* walking again with the same mark reads nothing new */
	cr_assert_eq(cairn_walk(t, &m, 1, 0, &root2, CAIRN_NODE_DIR, NULL, NULL), 0);
	while ((o = cairn_objmap_next(&m, &pos))) {
		cr_expect_eq(o->state, CAIRN_OBJ_OK);
		cr_expect_eq(o->walks, 1);
		nodes += o->kind == CAIRN_OBJ_NODE;
	}
	cr_expect_eq(nodes, 8);
	cairn_txn_abort(t);
	cairn_objmap_release(&m);
}
