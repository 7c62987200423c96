/* SPDX-License-Identifier: MIT */
/*
 * test_names.c - the verbs that name images (image.h, platform.h) on a
 * real store: what a name resolves to and which kind it is, tags set,
 * moved and removed, image removal refused while a platform names the
 * image, the listings; and the one sorted-directory merge (node.h).
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>

#include "image.h"
#include "platform.h"
#include "read.h"
#include "writer.h"

static char dir[] = "/tmp/cairn-names-XXXXXX";
static struct cairn_store *store;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void setup(void)
{
	strcpy(dir, "/tmp/cairn-names-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(cairn_store_open(dir, CAIRN_STORE_CREATE, NULL, &store), 0, "%s",
		     cairn_errmsg());
}

static void teardown(void)
{
	cairn_store_close(store);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A directory holding the named entries (symlinks whose target is the name). */
static void put_dir(struct cairn_writer *w, const char *const *names, size_t n,
		    struct cairn_id *id)
{
	struct cairn_dirent ents[8];

	cr_assert_leq(n, 8);
	for (size_t i = 0; i < n; i++) {
		struct cairn_node_build l = { .type = CAIRN_NODE_LNK, .mode = 0777, .nlink = 1 };

		l.target = names[i];
		l.target_len = strlen(names[i]);
		ents[i] = (struct cairn_dirent){ .name = names[i], .name_len = strlen(names[i]),
						 .type = CAIRN_NODE_LNK };
		cr_assert_eq(cairn_writer_put_node(w, &l, &ents[i].id), 0, "%s", cairn_errmsg());
	}
	struct cairn_node_build d = { .type = CAIRN_NODE_DIR, .mode = 0755 };

	d.entries = ents;
	d.nentries = n;
	cr_assert_eq(cairn_writer_put_node(w, &d, id), 0, "%s", cairn_errmsg());
}

/* Publishes an image of a directory with the named entries. */
static void image(const char *const *names, size_t n, const char *tag, struct cairn_id *img)
{
	struct cairn_writer *w;
	struct cairn_publish p = { .source = CAIRN_LAYER_DIR, .nodes = n + 1, .tag = tag };

	cr_assert_eq(cairn_writer_new(store, 0, &w), 0);
	put_dir(w, names, n, &p.root);
	p.layer_root = p.root;
	cr_assert_eq(cairn_writer_publish(w, &p, img), 0, "%s", cairn_errmsg());
	cairn_writer_free(w);
}

static int resolve(const char *spec, struct cairn_name *out)
{
	struct cairn_txn *t;
	int ret;

	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	ret = cairn_name_resolve(t, spec, out);
	cairn_txn_abort(t);
	return ret;
}

TestSuite(names, .init = setup, .fini = teardown);

Test(names, each_kind_of_name_says_what_it_is)
{
	static const char *const a[] = { "a" }, *const b[] = { "b" };
	struct cairn_id ia, ib;
	struct cairn_name n;
	char hex[CAIRN_ID_HEX_LEN + 1];
	uint64_t gen;

	image(a, 1, "va", &ia);
	image(b, 1, NULL, &ib);
	cr_assert_eq(cairn_platform_upgrade(store, "plat", &ia, &gen), 0);
	cr_assert_eq(cairn_platform_upgrade(store, "plat", &ib, &gen), 0);
	cr_assert_eq(gen, 2);

	cr_assert_eq(resolve("va", &n), 0);
	cr_assert_eq(n.kind, CAIRN_NAME_TAG);
	cr_assert(cairn_id_eq(&n.image, &ia));

	cr_assert_eq(resolve("plat", &n), 0);
	cr_assert_eq(n.kind, CAIRN_NAME_PLATFORM);
	cr_assert(cairn_id_eq(&n.image, &ib));
	cr_assert_str_eq(n.platform, "plat");
	cr_assert_eq(n.generation, 2);

	cr_assert_eq(resolve("plat@1", &n), 0);
	cr_assert_eq(n.kind, CAIRN_NAME_GENERATION);
	cr_assert(cairn_id_eq(&n.image, &ia));
	cr_assert_eq(n.generation, 1);
	cr_assert_eq(resolve("plat@3", &n), -ENOENT);

	cairn_id_hex(&ib, hex);
	hex[8] = '\0';
	cr_assert_eq(resolve(hex, &n), 0);
	cr_assert_eq(n.kind, CAIRN_NAME_ID);
	cr_assert(cairn_id_eq(&n.image, &ib));

	/* a name that is both a tag and a platform is the tag (mount pins it) */
	cr_assert_eq(cairn_tag_set(store, "plat", &ia), 0, "%s", cairn_errmsg());
	cr_assert_eq(resolve("plat", &n), 0);
	cr_assert_eq(n.kind, CAIRN_NAME_TAG);
	cr_assert(cairn_id_eq(&n.image, &ia));
	cr_assert_eq(resolve("nothing", &n), -ENOENT);
	cr_assert(strstr(cairn_errmsg(), "nothing"), "%s", cairn_errmsg());
}

static int count_tag(const char *name, size_t len, const struct cairn_id *image, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int count_image(const struct cairn_image *img, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int count_platform(const char *name, const struct cairn_platform *p, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

Test(names, tags_move_and_go_images_go_with_their_tags)
{
	static const char *const a[] = { "a" }, *const b[] = { "b" };
	struct cairn_id ia, ib, got;
	struct cairn_txn *t;
	uint64_t gen;
	int tags = 0, images = 0, platforms = 0;

	image(a, 1, "va", &ia);
	image(b, 1, "vb", &ib);
	cr_assert_eq(cairn_tag_set(store, "also-a", &ia), 0);
	cr_assert_eq(cairn_tag_set(store, "bad/name", &ia), -EINVAL);
	cr_assert_eq(cairn_tag_set(store, "moves", &ia), 0);
	cr_assert_eq(cairn_tag_set(store, "moves", &ib), 0);

	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_tag_get(t, "moves", &got), 0);
	cr_assert(cairn_id_eq(&got, &ib));
	cr_assert_eq(cairn_tag_each(t, count_tag, &tags), 0);
	cr_assert_eq(cairn_image_each(t, count_image, &images), 0);
	cairn_txn_abort(t);
	cr_assert_eq(tags, 4);
	cr_assert_eq(images, 2);

	cr_assert_eq(cairn_tag_remove(store, "moves"), 0);
	cr_assert_eq(cairn_tag_remove(store, "moves"), -ENOENT);

	/* a platform's history names b: it stays, and so do its tags */
	cr_assert_eq(cairn_platform_upgrade(store, "p", &ib, &gen), 0);
	cr_assert_eq(cairn_image_remove(store, &ib), -EBUSY);
	cr_assert(strstr(cairn_errmsg(), "p@1"), "%s", cairn_errmsg());

	/* a goes with both its tags */
	cr_assert_eq(cairn_image_remove(store, &ia), 0, "%s", cairn_errmsg());
	cr_assert_eq(cairn_image_remove(store, &ia), -ENOENT);
	cr_assert_eq(cairn_tag_set(store, "late", &ia), -ENOENT, "no tag names a missing image");
	cr_assert_eq(cairn_platform_upgrade(store, "p", &ia, &gen), -ENOENT);

	tags = images = 0;
	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_tag_get(t, "va", &got), -ENOENT);
	cr_assert_eq(cairn_tag_get(t, "also-a", &got), -ENOENT);
	cr_assert_eq(cairn_tag_each(t, count_tag, &tags), 0);
	cr_assert_eq(cairn_image_each(t, count_image, &images), 0);
	cr_assert_eq(cairn_platform_each(t, count_platform, &platforms), 0);
	cairn_txn_abort(t);
	cr_assert_eq(tags, 1, "only vb is left");
	cr_assert_eq(images, 1);
	cr_assert_eq(platforms, 1);
}

/* The merge of two directories, name by name, as diff, stack and switch see it. */
Test(names, one_merge_of_sorted_entries)
{
	static const char *const a[] = { "a", "ab", "c", "d" };
	static const char *const b[] = { "", "ab", "b", "d", "e" };
	static const char *const want[] = { "a", "ab", "b", "c", "d", "e" };
	static const int sides[] = { CAIRN_MERGE_A, CAIRN_MERGE_BOTH, CAIRN_MERGE_B,
				     CAIRN_MERGE_A, CAIRN_MERGE_BOTH, CAIRN_MERGE_B };
	struct cairn_writer *w;
	struct cairn_id da, db;
	struct cairn_txn *t;
	struct cairn_node_view va, vb;
	struct cairn_dir_merge m;
	struct cairn_dirent ea, eb;
	size_t k = 0;
	int side;

	cr_assert_eq(cairn_writer_new(store, 0, &w), 0);
	put_dir(w, a, 4, &da);
	put_dir(w, b + 1, 4, &db);
	cr_assert_eq(cairn_writer_flush(w), 0);
	cairn_writer_free(w);
	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_node_get(t, &da, 0, &va), 0);
	cr_assert_eq(cairn_node_get(t, &db, 0, &vb), 0);
	cairn_dir_merge_init(&m, &va, &vb);
	while ((side = cairn_dir_merge_next(&m, &ea, &eb)) > 0) {
		const struct cairn_dirent *e = side == CAIRN_MERGE_B ? &eb : &ea;

		cr_assert_lt(k, 6);
		cr_assert_eq(side, sides[k], "%s", want[k]);
		cr_assert_eq(e->name_len, strlen(want[k]));
		cr_assert_eq(memcmp(e->name, want[k], e->name_len), 0);
		if (side == CAIRN_MERGE_BOTH)
			cr_assert_eq(ea.name_len, eb.name_len);
		k++;
	}
	cr_assert_eq(side, 0);
	cr_assert_eq(k, 6);

	/* one side empty (NULL): everything is the other's */
	cairn_dir_merge_init(&m, NULL, &vb);
	for (k = 0; (side = cairn_dir_merge_next(&m, &ea, &eb)) > 0; k++)
		cr_assert_eq(side, CAIRN_MERGE_B);
	cr_assert_eq(k, 4);
	cairn_txn_abort(t);
}
