/* SPDX-License-Identifier: MIT */
/*
 * test_stack.c - cairn_stack on small trees in a real store.
 *
 * Trees are written from a list of paths (tree() below builds them the way
 * the importers do: sorted directories, hard-link groups keyed by their
 * first path), and each result is checked against the tree it should be,
 * written directly: equal root ids mean equal trees, attributes, hard-link
 * keys and all.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>

#include "read.h"
#include "stack.h"

static char dir[] = "/tmp/cairn-test-XXXXXX";
static struct cairn_store *store;
static struct cairn_writer *w;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void setup(void)
{
	strcpy(dir, "/tmp/cairn-test-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(cairn_store_open(dir, CAIRN_STORE_CREATE, NULL, &store), 0, "%s",
		     cairn_errmsg());
	cr_assert_eq(cairn_writer_new(store, 0, &w), 0);
}

static void teardown(void)
{
	cairn_writer_free(w);
	cairn_store_close(store);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(stack, .init = setup, .fini = teardown);

/*
 * One entry: path, then type: 'f' file (data), 'd' directory (mode),
 * 'o' opaque directory, 'w' whiteout, 'l' symlink (data: target). link:
 * entries with the same non-NULL link name are one hard-link group.
 */
struct spec {
	const char *path;
	char type;
	const char *data;
	uint32_t mode;
	const char *link;
};

#define END { NULL, 0, NULL, 0, NULL }

struct tn {
	char name[64];
	const struct spec *s;   /* NULL: an implied directory */
	struct tn *kids[32];
	int nkids;
};

struct tree {
	struct tn root;
	struct tn pool[128];
	int used;
	/* hard-link groups: first path, members */
	struct {
		const char *link;
		char first[256];
		uint32_t members;
		uint64_t size;
		bool counted;
	} groups[16];
	int ngroups;
	uint64_t nodes, logical;
};

static struct tn *child(struct tree *t, struct tn *d, const char *name, size_t len)
{
	struct tn *k;

	for (int i = 0; i < d->nkids; i++)
		if (strlen(d->kids[i]->name) == len && !memcmp(d->kids[i]->name, name, len))
			return d->kids[i];
	cr_assert_lt(t->used, 128);
	k = &t->pool[t->used++];
	memset(k, 0, sizeof(*k));
	memcpy(k->name, name, len);
	cr_assert_lt(d->nkids, 32);
	d->kids[d->nkids++] = k;
	t->nodes++;
	return k;
}

static int tn_cmp(const void *a, const void *b)
{
	const struct tn *x = *(struct tn *const *)a, *y = *(struct tn *const *)b;

	return cairn_name_cmp(x->name, strlen(x->name), y->name, strlen(y->name));
}

static int group_of(struct tree *t, const char *link)
{
	for (int i = 0; i < t->ngroups; i++)
		if (!strcmp(t->groups[i].link, link))
			return i;
	return -1;
}

/* Sorts, and names each group by its first path in depth-first order. */
static void scan(struct tree *t, struct tn *d, const char *path)
{
	qsort(d->kids, (size_t)d->nkids, sizeof(d->kids[0]), tn_cmp);
	for (int i = 0; i < d->nkids; i++) {
		struct tn *k = d->kids[i];
		char p[256];

		snprintf(p, sizeof(p), "%s%s%s", path, *path ? "/" : "", k->name);
		if (k->s && k->s->link) {
			int g = group_of(t, k->s->link);

			if (g < 0) {
				g = t->ngroups++;
				t->groups[g].link = k->s->link;
				snprintf(t->groups[g].first, sizeof(t->groups[g].first), "%s", p);
			}
			t->groups[g].members++;
		}
		if (!k->s || k->s->type == 'd' || k->s->type == 'o')
			scan(t, k, p);
	}
}

static void put(struct tree *t, struct tn *d, struct cairn_id *out)
{
	struct cairn_node_build n = { .type = CAIRN_NODE_DIR, .mode = 0755 };
	struct cairn_dirent ents[32];

	if (d->s) {
		n.mode = d->s->mode ? d->s->mode : 0755;
		n.flags = d->s->type == 'o' ? CAIRN_NODE_OPAQUE : 0;
	}
	for (int i = 0; i < d->nkids; i++) {
		struct tn *k = d->kids[i];
		const struct spec *s = k->s;
		struct cairn_node_build f = { .mode = 0644, .nlink = 1, .mtime_sec = 7 };

		ents[i].name = k->name;
		ents[i].name_len = strlen(k->name);
		if (!s || s->type == 'd' || s->type == 'o') {
			ents[i].type = CAIRN_NODE_DIR;
			put(t, k, &ents[i].id);
			continue;
		}
		if (s->mode)
			f.mode = s->mode;
		switch (s->type) {
		case 'f':
			f.type = CAIRN_NODE_REG;
			cairn_writer_file_begin(w);
			cr_assert_eq(cairn_writer_file_data(w, s->data, strlen(s->data)), 0);
			cr_assert_eq(cairn_writer_file_end(w, &f), 0);
			break;
		case 'l':
			f.type = CAIRN_NODE_LNK;
			f.target = s->data;
			f.target_len = strlen(s->data);
			break;
		case 'w':
			f.type = CAIRN_NODE_WHITEOUT;
			f.mode = 0;
			break;
		default:
			cr_assert_fail("bad spec type %c", s->type);
		}
		if (s->link) {
			int g = group_of(t, s->link);

			f.nlink = t->groups[g].members;
			if (f.nlink > 1)
				cr_assert_eq(cairn_link_key(t->groups[g].first,
							    strlen(t->groups[g].first),
							    &f.link_key), 0);
			if (!t->groups[g].counted)
				t->logical += f.size;
			t->groups[g].counted = true;
		} else {
			t->logical += f.size;
		}
		ents[i].type = f.type;
		cr_assert_eq(cairn_writer_put_node(w, &f, &ents[i].id), 0, "%s", cairn_errmsg());
	}
	n.entries = ents;
	n.nentries = (size_t)d->nkids;
	cr_assert_eq(cairn_writer_put_node(w, &n, out), 0, "%s", cairn_errmsg());
}

/* Writes the tree the specs describe; returns its root id (and counts). */
static struct cairn_id tree_counted(const struct spec *specs, uint64_t *nodes, uint64_t *logical)
{
	struct tree *t = calloc(1, sizeof(*t));
	struct cairn_id id;

	cr_assert_not_null(t);
	t->nodes = 1;
	for (const struct spec *s = specs; s->path; s++) {
		struct tn *d = &t->root;
		const char *p = s->path;

		if (!strcmp(p, ".")) {
			t->root.s = s;
			continue;
		}
		for (const char *slash; (slash = strchr(p, '/')); p = slash + 1)
			d = child(t, d, p, (size_t)(slash - p));
		child(t, d, p, strlen(p))->s = s;
	}
	scan(t, &t->root, "");
	put(t, &t->root, &id);
	cr_assert_eq(cairn_writer_flush(w), 0, "%s", cairn_errmsg());
	if (nodes)
		*nodes = t->nodes;
	if (logical)
		*logical = t->logical;
	free(t);
	return id;
}

static struct cairn_id tree(const struct spec *specs)
{
	return tree_counted(specs, NULL, NULL);
}

static struct cairn_stack_result stack(const struct cairn_id *base, const struct cairn_id *layer)
{
	struct cairn_stack_result r;

	cr_assert_eq(cairn_stack(w, base, layer, &r), 0, "%s", cairn_errmsg());
	cr_assert_eq(cairn_writer_flush(w), 0, "%s", cairn_errmsg());
	return r;
}

static void hex(const struct cairn_id *id, char *out)
{
	cairn_id_hex(id, out);
}

/* The result is the expected tree, entry counts and bytes included. */
static void expect(const struct cairn_stack_result *r, const struct spec *want)
{
	uint64_t nodes, logical;
	struct cairn_id id = tree_counted(want, &nodes, &logical);
	char a[CAIRN_ID_HEX_LEN + 1], b[CAIRN_ID_HEX_LEN + 1];

	hex(&r->root, a);
	hex(&id, b);
	cr_assert(cairn_id_eq(&r->root, &id), "result %s, expected tree %s", a, b);
	cr_assert_eq(r->nodes, nodes, "nodes %llu, expected %llu", (unsigned long long)r->nodes,
		     (unsigned long long)nodes);
	cr_assert_eq(r->logical_size, logical, "bytes %llu, expected %llu",
		     (unsigned long long)r->logical_size, (unsigned long long)logical);
}

/* The node id at path in the tree root. */
static struct cairn_id at(const struct cairn_id *root, const char *path)
{
	struct cairn_txn *t;
	struct cairn_node_view v;
	struct cairn_id id;

	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_path_walk(t, root, path, &id, &v), 0, "%s: %s", path, cairn_errmsg());
	cairn_txn_abort(t);
	return id;
}

static const struct spec base_specs[] = {
	{ "bin/sh", 'f', "shell" },
	{ "bin/ls", 'f', "ls" },
	{ "etc", 'd', NULL, 0755 },
	{ "etc/passwd", 'f', "root" },
	{ "etc/motd", 'f', "hello" },
	{ "usr/share/doc/a", 'f', "doc a" },
	{ "usr/share/doc/b", 'f', "doc b" },
	{ "var/log", 'd', NULL, 0750 },
	END,
};

Test(stack, no_base_clean_layer_is_the_layer)
{
	struct cairn_id l = tree(base_specs);
	struct cairn_stack_result r = stack(NULL, &l);

	cr_assert(cairn_id_eq(&r.root, &l));
	expect(&r, base_specs);
}

Test(stack, no_base_drops_whiteouts_and_opaque_flags)
{
	static const struct spec layer[] = {
		{ "a", 'f', "a" }, { "gone", 'w' }, { "d", 'o', NULL, 0700 },
		{ "d/x", 'f', "x" }, { "d/y", 'w' }, { "clean/z", 'f', "z" }, END,
	};
	static const struct spec want[] = {
		{ "a", 'f', "a" }, { "d", 'd', NULL, 0700 }, { "d/x", 'f', "x" },
		{ "clean/z", 'f', "z" }, END,
	};
	struct cairn_id l = tree(layer);
	struct cairn_stack_result r = stack(NULL, &l);

	expect(&r, want);
}

Test(stack, whiteouts_delete_and_missing_names_are_harmless)
{
	static const struct spec layer[] = {
		{ "bin/ls", 'w' }, { "usr/share", 'w' }, { "nothing-here", 'w' },
		{ "etc/nope", 'w' }, END,
	};
	static const struct spec want[] = {
		{ "bin/sh", 'f', "shell" }, { "etc", 'd', NULL, 0755 },
		{ "etc/passwd", 'f', "root" }, { "etc/motd", 'f', "hello" }, { "usr", 'd' },
		{ "var/log", 'd', NULL, 0750 }, END,
	};
	struct cairn_id b = tree(base_specs), l = tree(layer);
	struct cairn_stack_result r = stack(&b, &l);

	expect(&r, want);
}

Test(stack, untouched_subtrees_are_shared_by_id)
{
	static const struct spec layer[] = { { "etc/motd", 'f', "bye" }, END };
	struct cairn_id b = tree(base_specs), l = tree(layer);
	struct cairn_stack_result r = stack(&b, &l);
	struct cairn_id x = at(&b, "usr"), y = at(&r.root, "usr");

	cr_assert(cairn_id_eq(&x, &y));
	x = at(&b, "etc/passwd");
	y = at(&r.root, "etc/passwd");
	cr_assert(cairn_id_eq(&x, &y));
	x = at(&b, "etc");
	y = at(&r.root, "etc");
	cr_assert(!cairn_id_eq(&x, &y));
}

Test(stack, replace_and_merge)
{
	static const struct spec layer[] = {
		{ "bin", 'd', NULL, 0711 },            /* merges, its mode wins */
		{ "bin/sh", 'l', "busybox" },          /* a file becomes a symlink */
		{ "bin/busybox", 'f', "bb" },
		{ "etc/motd", 'd' },                   /* a file becomes a directory */
		{ "etc/motd/part", 'f', "p" },
		{ "usr", 'f', "was a tree" },          /* a tree becomes a file */
		END,
	};
	static const struct spec want[] = {
		{ "bin", 'd', NULL, 0711 }, { "bin/sh", 'l', "busybox" },
		{ "bin/busybox", 'f', "bb" }, { "bin/ls", 'f', "ls" },
		{ "etc", 'd', NULL, 0755 }, { "etc/passwd", 'f', "root" },
		{ "etc/motd/part", 'f', "p" }, { "usr", 'f', "was a tree" },
		{ "var/log", 'd', NULL, 0750 }, END,
	};
	struct cairn_id b = tree(base_specs), l = tree(layer);
	struct cairn_stack_result r = stack(&b, &l);

	expect(&r, want);
}

Test(stack, opaque_hides_the_base_directory)
{
	static const struct spec layer[] = {
		{ "usr", 'o', NULL, 0700 }, { "usr/new", 'f', "new" },
		{ "usr/sub", 'o' }, /* opaque with nothing below it in the base */
		{ "usr/sub/x", 'w' }, END,
	};
	static const struct spec want[] = {
		{ "bin/sh", 'f', "shell" }, { "bin/ls", 'f', "ls" }, { "etc", 'd', NULL, 0755 },
		{ "etc/passwd", 'f', "root" }, { "etc/motd", 'f', "hello" },
		{ "usr", 'd', NULL, 0700 }, { "usr/new", 'f', "new" }, { "usr/sub", 'd' },
		{ "var/log", 'd', NULL, 0750 }, END,
	};
	struct cairn_id b = tree(base_specs), l = tree(layer);
	struct cairn_stack_result r = stack(&b, &l);

	expect(&r, want);
}

Test(stack, opaque_root_keeps_only_the_layer)
{
	static const struct spec layer[] = { { ".", 'o', NULL, 0750 }, { "only", 'f', "1" }, END };
	static const struct spec want[] = { { ".", 'd', NULL, 0750 }, { "only", 'f', "1" }, END };
	struct cairn_id b = tree(base_specs), l = tree(layer);
	struct cairn_stack_result r = stack(&b, &l);

	expect(&r, want);
}

/* Base hard-link groups: {a, b, c/d} and {x, y}. */
static const struct spec linked_base[] = {
	{ "a", 'f', "linked", 0, "g" }, { "b", 'f', "linked", 0, "g" },
	{ "c/d", 'f', "linked", 0, "g" }, { "c/e", 'f', "plain" },
	{ "x", 'f', "other", 0, "h" }, { "y", 'f', "other", 0, "h" }, END,
};

Test(stack, a_deleted_first_member_renames_the_group)
{
	static const struct spec layer[] = { { "a", 'w' }, END };
	static const struct spec want[] = {
		{ "b", 'f', "linked", 0, "g" }, { "c/d", 'f', "linked", 0, "g" },
		{ "c/e", 'f', "plain" }, { "x", 'f', "other", 0, "h" },
		{ "y", 'f', "other", 0, "h" }, END,
	};
	struct cairn_id b = tree(linked_base), l = tree(layer);
	struct cairn_stack_result r = stack(&b, &l);
	struct cairn_id x = at(&b, "x"), y = at(&r.root, "x");

	expect(&r, want);
	cr_assert(cairn_id_eq(&x, &y), "an untouched group keeps its node");
}

Test(stack, a_replaced_member_leaves_the_others_linked)
{
	static const struct spec layer[] = { { "c/d", 'f', "new bytes" }, { "y", 'l', "x" }, END };
	static const struct spec want[] = {
		{ "a", 'f', "linked", 0, "g" }, { "b", 'f', "linked", 0, "g" },
		{ "c/d", 'f', "new bytes" }, { "c/e", 'f', "plain" },
		{ "x", 'f', "other" }, /* the last of its group: an ordinary file */
		{ "y", 'l', "x" }, END,
	};
	struct cairn_id b = tree(linked_base), l = tree(layer);
	struct cairn_stack_result r = stack(&b, &l);

	expect(&r, want);
}

Test(stack, a_deleted_directory_takes_its_members)
{
	static const struct spec layer[] = { { "c", 'w' }, { "b", 'w' }, END };
	static const struct spec want[] = {
		{ "a", 'f', "linked" }, { "x", 'f', "other", 0, "h" },
		{ "y", 'f', "other", 0, "h" }, END,
	};
	struct cairn_id b = tree(linked_base), l = tree(layer);
	struct cairn_stack_result r = stack(&b, &l);

	expect(&r, want);
}

Test(stack, a_layer_group_never_shares_a_node_with_a_base_group)
{
	/* the layer's group {a, z} has the encoding the base's {a, b, c/d} would
	 * have with two members: same first path, bytes and attributes */
	static const struct spec base2[] = {
		{ "a", 'f', "linked", 0, "g" }, { "b", 'f', "linked", 0, "g" }, END,
	};
	static const struct spec layer[] = {
		{ "a", 'f', "linked", 0, "n" }, { "z", 'f', "linked", 0, "n" }, END,
	};
	static const struct spec want[] = {
		{ "a", 'f', "linked", 0, "n" }, { "b", 'f', "linked" },
		{ "z", 'f', "linked", 0, "n" }, END,
	};
	struct cairn_id b = tree(base2), l = tree(layer);
	struct cairn_stack_result r = stack(&b, &l);
	struct cairn_id x = at(&r.root, "a"), y = at(&r.root, "b");

	expect(&r, want);
	cr_assert(!cairn_id_eq(&x, &y));
}

Test(stack, members_under_shared_subtrees_are_found)
{
	/* the survivor lies in a directory the layer does not touch */
	static const struct spec base2[] = {
		{ "a/deep/er/f", 'f', "L", 0, "g" }, { "m", 'f', "L", 0, "g" },
		{ "z/f", 'f', "L", 0, "g" }, { "q/r", 'f', "untouched" }, END,
	};
	static const struct spec layer[] = { { "m", 'w' }, END };
	static const struct spec want[] = {
		{ "a/deep/er/f", 'f', "L", 0, "g" }, { "z/f", 'f', "L", 0, "g" },
		{ "q/r", 'f', "untouched" }, END,
	};
	struct cairn_id b = tree(base2), l = tree(layer);
	struct cairn_stack_result r = stack(&b, &l);
	struct cairn_id x = at(&b, "q"), y = at(&r.root, "q");

	expect(&r, want);
	cr_assert(cairn_id_eq(&x, &y));
}

Test(stack, stacking_twice_is_layer_by_layer)
{
	static const struct spec l1[] = { { "etc/motd", 'f', "v2" }, { "bin/ls", 'w' }, END };
	static const struct spec l2[] = { { "bin/ls", 'f', "back" }, { "etc", 'o' },
					  { "etc/only", 'f', "o" }, END };
	static const struct spec want[] = {
		{ "bin/sh", 'f', "shell" }, { "bin/ls", 'f', "back" }, { "etc/only", 'f', "o" },
		{ "usr/share/doc/a", 'f', "doc a" }, { "usr/share/doc/b", 'f', "doc b" },
		{ "var/log", 'd', NULL, 0750 }, END,
	};
	struct cairn_id b = tree(base_specs), a = tree(l1), c = tree(l2);
	struct cairn_stack_result r1 = stack(&b, &a);
	struct cairn_stack_result r2 = stack(&r1.root, &c);

	expect(&r2, want);
}

Test(stack, a_base_with_whiteouts_is_refused)
{
	static const struct spec bad[] = { { "a", 'f', "a" }, { "w", 'w' }, END };
	static const struct spec layer[] = { { "b", 'f', "b" }, END };
	struct cairn_id b = tree(bad), l = tree(layer);
	struct cairn_stack_result r;

	cr_assert_eq(cairn_stack(w, &b, &l, &r), -EUCLEAN);
	cr_assert(strstr(cairn_errmsg(), "whiteout"), "%s", cairn_errmsg());
}

Test(stack, a_missing_layer_is_an_error)
{
	struct cairn_id b = tree(base_specs), none;
	struct cairn_stack_result r;

	memset(&none, 0x5a, sizeof(none));
	cr_assert_eq(cairn_stack(w, &b, &none, &r), -EUCLEAN);
	cr_assert(strstr(cairn_errmsg(), "missing"), "%s", cairn_errmsg());
}
