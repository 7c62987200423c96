/* SPDX-License-Identifier: MIT */
/*
 * test_diff.c - the tree diff engine: which attribute bits two nodes differ
 * in, the order and kinds of changes over whole trees (type changes,
 * directories added and removed, with and without expansion, pruning from
 * the callback), that subtrees with equal ids are never read, and that a
 * missing node stops the diff with an error naming its path.
 *
 * Trees are written through the writer into a real store; Criterion forks
 * per test, so the store is opened in the fixture.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>

#include "diff.h"
#include "read.h"
#include "writer.h"

static char dir[] = "/tmp/cairn-diff-XXXXXX";
static struct cairn_store *store;
static struct cairn_writer *w;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void setup(void)
{
	strcpy(dir, "/tmp/cairn-diff-XXXXXX");
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

TestSuite(diff, .init = setup, .fini = teardown);

/* --- building trees ----------------------------------------------------- */

static struct cairn_node_build base(uint8_t type)
{
	struct cairn_node_build n = {
		.type = type,
		.mode = type == CAIRN_NODE_DIR ? 0755 : 0644,
		.nlink = type == CAIRN_NODE_DIR ? 0 : 1,
		.mtime_sec = 1600000000,
	};
	return n;
}

/* A regular file holding text. */
static struct cairn_node_build reg(const char *text)
{
	struct cairn_node_build n = base(CAIRN_NODE_REG);

	cairn_writer_file_begin(w);
	cr_assert_eq(cairn_writer_file_data(w, text, strlen(text)), 0, "%s", cairn_errmsg());
	cr_assert_eq(cairn_writer_file_end(w, &n), 0, "%s", cairn_errmsg());
	return n;
}

static struct cairn_node_build lnk(const char *target)
{
	struct cairn_node_build n = base(CAIRN_NODE_LNK);

	n.mode = 0777;
	n.target = target;
	n.target_len = strlen(target);
	return n;
}

static struct cairn_id put(const struct cairn_node_build *n)
{
	struct cairn_id id;

	cr_assert_eq(cairn_writer_put_node(w, n, &id), 0, "%s", cairn_errmsg());
	return id;
}

static struct cairn_dirent ent(const char *name, struct cairn_id id, uint8_t type)
{
	struct cairn_dirent e = { .name = name, .name_len = strlen(name), .id = id, .type = type };
	return e;
}

/* A directory of entries given in name order. */
static struct cairn_id put_dir(const struct cairn_dirent *e, size_t n)
{
	struct cairn_node_build d = base(CAIRN_NODE_DIR);

	d.entries = e;
	d.nentries = n;
	return put(&d);
}

/* --- running a diff ----------------------------------------------------- */

#define MAX_LINES 64

struct lines {
	size_t n;
	char l[MAX_LINES][128];
	const char *prune; /* path whose callback returns CAIRN_DIFF_PRUNE */
};

/* Records each change as the command prints it: "M /a (content, mode)". */
static int record(void *ctx, const struct cairn_diff_change *c)
{
	struct lines *L = ctx;
	char *p;
	int n;

	cr_assert_lt(L->n, MAX_LINES);
	cr_assert_eq(strlen(c->path), c->path_len);
	cr_assert_eq(c->old == NULL, c->kind == CAIRN_DIFF_ADDED);
	cr_assert_eq(c->new == NULL, c->kind == CAIRN_DIFF_REMOVED);
	cr_assert_eq(c->what == 0, c->kind != CAIRN_DIFF_MODIFIED);
	p = L->l[L->n++];
	n = snprintf(p, 128, "%c %s",
		     c->kind == CAIRN_DIFF_ADDED ? 'A' : c->kind == CAIRN_DIFF_REMOVED ? 'D' : 'M',
		     c->path);
	for (unsigned i = 0, first = 1; i < CAIRN_DIFF_WHAT_COUNT; i++) {
		if (c->what & (1u << i)) {
			n += snprintf(p + n, 128 - (size_t)n, "%s%s", first ? " (" : ", ",
				      cairn_diff_what_name(1u << i));
			first = 0;
		}
	}
	if (c->what)
		snprintf(p + n, 128 - (size_t)n, ")");
	return L->prune && strcmp(L->prune, c->path) == 0 ? CAIRN_DIFF_PRUNE : 0;
}

static int run(const struct cairn_id *a, const struct cairn_id *b, unsigned flags,
	       struct lines *L, struct cairn_diff_stats *st)
{
	struct cairn_txn *t;
	int ret;

	cr_assert_eq(cairn_writer_flush(w), 0, "%s", cairn_errmsg());
	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	ret = cairn_diff_trees(t, a, b, flags, record, L, st);
	cairn_txn_abort(t);
	return ret;
}

static void expect_lines(const struct lines *L, const char *const *want, size_t n)
{
	for (size_t i = 0; i < L->n; i++)
		cr_log_info("got: %s", L->l[i]);
	cr_assert_eq(L->n, n, "%zu changes, want %zu", L->n, n);
	for (size_t i = 0; i < n; i++)
		cr_expect_str_eq(L->l[i], want[i]);
}

/* What cairn_diff_nodes() says about two builds, through their encodings. */
static unsigned node_diff(const struct cairn_node_build *a, const struct cairn_node_build *b)
{
	struct cairn_buf ba = { 0 }, bb = { 0 };
	struct cairn_node_view va, vb;
	unsigned what;

	cr_assert_eq(cairn_node_encode(a, &ba), 0);
	cr_assert_eq(cairn_node_encode(b, &bb), 0);
	cr_assert_eq(cairn_node_parse(ba.data, ba.len, CAIRN_PARSE_STRICT, &va), 0);
	cr_assert_eq(cairn_node_parse(bb.data, bb.len, CAIRN_PARSE_STRICT, &vb), 0);
	what = cairn_diff_nodes(&va, &vb);
	cr_expect_eq(cairn_diff_nodes(&vb, &va), what, "not symmetric");
	cairn_buf_release(&ba);
	cairn_buf_release(&bb);
	return what;
}

/* --- tests -------------------------------------------------------------- */

Test(diff, attribute_bits)
{
	static const struct cairn_xattr x1[] = { { "user.a", 6, "1", 1 } };
	static const struct cairn_xattr x2[] = { { "user.a", 6, "2", 1 } };
	static const struct cairn_xattr x3[] = { { "user.a", 6, "1", 1 }, { "user.b", 6, "", 0 } };
	struct cairn_node_build a = reg("one\n"), b;
	struct cairn_node_build d = base(CAIRN_NODE_DIR), e;
	struct cairn_node_build l = lnk("t1"), m;
	struct cairn_node_build c = base(CAIRN_NODE_CHR), c2;

	cr_expect_eq(node_diff(&a, &a), 0);
	b = a, b.mode = 04755;
	cr_expect_eq(node_diff(&a, &b), CAIRN_DIFF_MODE);
	b = a, b.uid = 1;
	cr_expect_eq(node_diff(&a, &b), CAIRN_DIFF_OWNER);
	b = a, b.gid = 1;
	cr_expect_eq(node_diff(&a, &b), CAIRN_DIFF_OWNER);
	b = a, b.mtime_nsec = 1;
	cr_expect_eq(node_diff(&a, &b), CAIRN_DIFF_MTIME);
	b = a, b.xattrs = x1, b.nxattr = 1;
	cr_expect_eq(node_diff(&a, &b), CAIRN_DIFF_XATTRS);
	a.xattrs = x1, a.nxattr = 1;
	b = a, b.xattrs = x2;
	cr_expect_eq(node_diff(&a, &b), CAIRN_DIFF_XATTRS, "a value changed");
	b = a, b.xattrs = x3, b.nxattr = 2;
	cr_expect_eq(node_diff(&a, &b), CAIRN_DIFF_XATTRS, "one added");
	b = reg("two\n"), b.xattrs = x1, b.nxattr = 1;
	cr_expect_eq(node_diff(&a, &b), CAIRN_DIFF_CONTENT);
	b = reg("one\n"), b.xattrs = x1, b.nxattr = 1, b.mode = 0600, b.mtime_sec = 1;
	cr_expect_eq(node_diff(&a, &b), CAIRN_DIFF_MODE | CAIRN_DIFF_MTIME);
	b = a, b.nlink = 2, b.link_key.b[0] = 1;
	cr_expect_eq(node_diff(&a, &b), CAIRN_DIFF_LINKS, "joined a hard-link group");
	a = b, b.nlink = 3;
	cr_expect_eq(node_diff(&a, &b), CAIRN_DIFF_LINKS, "the group grew");
	b = a, b.link_key.b[1] = 1;
	cr_expect_eq(node_diff(&a, &b), CAIRN_DIFF_LINKS, "another group");

	m = l, m.target = "t2";
	cr_expect_eq(node_diff(&l, &m), CAIRN_DIFF_TARGET);
	m = l, m.target = "t1/longer", m.target_len = 9;
	cr_expect_eq(node_diff(&l, &m), CAIRN_DIFF_TARGET);
	c.major = 1, c.minor = 3;
	c2 = c, c2.minor = 5;
	cr_expect_eq(node_diff(&c, &c2), CAIRN_DIFF_DEVICE);
	c2 = c, c2.type = CAIRN_NODE_BLK;
	cr_expect_eq(node_diff(&c, &c2), CAIRN_DIFF_TYPE, "char to block device");
	e = d, e.flags = CAIRN_NODE_OPAQUE;
	cr_expect_eq(node_diff(&d, &e), CAIRN_DIFF_OPAQUE);
	/* across types only the common attributes are compared */
	a = reg("one\n");
	cr_expect_eq(node_diff(&a, &d), CAIRN_DIFF_TYPE | CAIRN_DIFF_MODE);
	cr_expect_eq(node_diff(&a, &l), CAIRN_DIFF_TYPE | CAIRN_DIFF_MODE);

	for (unsigned i = 0; i < CAIRN_DIFF_WHAT_COUNT; i++)
		cr_expect_not_null(cairn_diff_what_name(1u << i));
	cr_expect_null(cairn_diff_what_name(1u << CAIRN_DIFF_WHAT_COUNT));
	cr_expect_null(cairn_diff_what_name(3));
}

/*
 * old: /a (file)  /b/ {x}  /c (file)  /keep/ {k}  /sub/ {f, g/ {h}}  /t (file)
 * new: /a (new bytes)  /b (now a symlink)  /d (file)  /keep/ (same)
 *      /sub/ (mode 0700) {f, g/ {h (chmod)}}  /t/ {u/ {v}}
 */
static void two_trees(struct cairn_id *old, struct cairn_id *new)
{
	struct cairn_node_build fa = reg("a\n"), fa2 = reg("a, changed\n"), fx = reg("x\n");
	struct cairn_node_build h = reg("h\n"), h2 = h, sub2 = base(CAIRN_NODE_DIR);
	struct cairn_id ida = put(&fa), idx = put(&fx), idh = put(&h), idb, idkeep, idg, idsub;
	struct cairn_id idl, idg2, idv, idu, idt;
	struct cairn_dirent e[6];
	struct cairn_node_build link = lnk("x");

	e[0] = ent("x", idx, CAIRN_NODE_REG);
	idb = put_dir(e, 1);
	e[0] = ent("k", idx, CAIRN_NODE_REG);
	idkeep = put_dir(e, 1);
	e[0] = ent("h", idh, CAIRN_NODE_REG);
	idg = put_dir(e, 1);
	e[0] = ent("f", idx, CAIRN_NODE_REG);
	e[1] = ent("g", idg, CAIRN_NODE_DIR);
	idsub = put_dir(e, 2);
	e[0] = ent("a", ida, CAIRN_NODE_REG);
	e[1] = ent("b", idb, CAIRN_NODE_DIR);
	e[2] = ent("c", idx, CAIRN_NODE_REG);
	e[3] = ent("keep", idkeep, CAIRN_NODE_DIR);
	e[4] = ent("sub", idsub, CAIRN_NODE_DIR);
	e[5] = ent("t", idx, CAIRN_NODE_REG);
	*old = put_dir(e, 6);

	h2.mode = 0600;
	e[0] = ent("h", put(&h2), CAIRN_NODE_REG);
	idg2 = put_dir(e, 1);
	e[0] = ent("f", idx, CAIRN_NODE_REG);
	e[1] = ent("g", idg2, CAIRN_NODE_DIR);
	sub2.mode = 0700;
	sub2.entries = e;
	sub2.nentries = 2;
	idsub = put(&sub2);
	e[0] = ent("v", idx, CAIRN_NODE_REG);
	idv = put_dir(e, 1);
	e[0] = ent("u", idv, CAIRN_NODE_DIR);
	idu = put_dir(e, 1);
	idt = idu;
	idl = put(&link);
	e[0] = ent("a", put(&fa2), CAIRN_NODE_REG);
	e[1] = ent("b", idl, CAIRN_NODE_LNK);
	e[2] = ent("d", idx, CAIRN_NODE_REG);
	e[3] = ent("keep", idkeep, CAIRN_NODE_DIR);
	e[4] = ent("sub", idsub, CAIRN_NODE_DIR);
	e[5] = ent("t", idt, CAIRN_NODE_DIR);
	*new = put_dir(e, 6);
}

Test(diff, tree_order_and_kinds)
{
	static const char *const want[] = {
		"M /a (content)",
		"M /b (type, mode)",
		"D /c",
		"A /d",
		"M /sub (mode)",
		"M /sub/g/h (mode)",
		"M /t (type, mode)",
	};
	static const char *const back[] = {
		"M /a (content)",
		"M /b (type, mode)",
		"A /c",
		"D /d",
		"M /sub (mode)",
		"M /sub/g/h (mode)",
		"M /t (type, mode)",
	};
	struct lines L = { 0 };
	struct cairn_diff_stats st;
	struct cairn_id old, new;

	two_trees(&old, &new);
	cr_assert_eq(run(&old, &new, 0, &L, &st), 0, "%s", cairn_errmsg());
	expect_lines(&L, want, ARRAY_SIZE(want));
	cr_expect_eq(st.changes, ARRAY_SIZE(want));
	memset(&L, 0, sizeof(L));
	cr_assert_eq(run(&new, &old, 0, &L, NULL), 0, "%s", cairn_errmsg());
	expect_lines(&L, back, ARRAY_SIZE(back));

	memset(&L, 0, sizeof(L));
	cr_assert_eq(run(&old, &old, 0, &L, &st), 0);
	cr_expect_eq(L.n, 0);
	cr_expect_eq(st.nodes_read, 0, "an image against itself reads nothing");
}

Test(diff, expand_and_prune)
{
	static const char *const want[] = {
		"M /a (content)",
		"M /b (type, mode)",
		"D /b/x",
		"D /c",
		"A /d",
		"M /sub (mode)",
		"M /sub/g/h (mode)",
		"M /t (type, mode)",
		"A /t/u",
		"A /t/u/v",
	};
	static const char *const pruned[] = {
		"M /a (content)",
		"M /b (type, mode)",
		"D /b/x",
		"D /c",
		"A /d",
		"M /sub (mode)",
		"M /t (type, mode)",
		"A /t/u",
		"A /t/u/v",
	};
	static const char *const pruned_u[] = {
		"M /a (content)",
		"M /b (type, mode)",
		"D /b/x",
		"D /c",
		"A /d",
		"M /sub (mode)",
		"M /sub/g/h (mode)",
		"M /t (type, mode)",
		"A /t/u",
	};
	struct lines L = { 0 };
	struct cairn_id old, new;

	two_trees(&old, &new);
	cr_assert_eq(run(&old, &new, CAIRN_DIFF_EXPAND, &L, NULL), 0, "%s", cairn_errmsg());
	expect_lines(&L, want, ARRAY_SIZE(want));

	memset(&L, 0, sizeof(L));
	L.prune = "/sub";
	cr_assert_eq(run(&old, &new, CAIRN_DIFF_EXPAND, &L, NULL), 0, "%s", cairn_errmsg());
	expect_lines(&L, pruned, ARRAY_SIZE(pruned));

	memset(&L, 0, sizeof(L));
	L.prune = "/t/u";
	cr_assert_eq(run(&old, &new, CAIRN_DIFF_EXPAND, &L, NULL), 0, "%s", cairn_errmsg());
	expect_lines(&L, pruned_u, ARRAY_SIZE(pruned_u));
}

/*
 * A tree of width x width files, and a copy with one file changed: the diff
 * reads the two roots, the two directories on the way and the two files,
 * whatever the width.
 */
static void one_file_changed(unsigned width)
{
	struct cairn_dirent *top = calloc(width, sizeof(*top));
	struct cairn_dirent *files = calloc(width, sizeof(*files));
	char (*names)[16] = calloc(width, sizeof(*names));
	struct cairn_node_build changed = reg("the new bytes\n");
	struct cairn_id old, new, changed_id = put(&changed), sub_new;
	struct cairn_diff_stats st;
	struct lines L = { 0 };
	char want[64];

	cr_assert(top && files && names);
	for (unsigned i = 0; i < width; i++)
		snprintf(names[i], sizeof(names[i]), "n%05u", i);
	for (unsigned d = 0; d < width; d++) {
		for (unsigned f = 0; f < width; f++) {
			char text[32];
			struct cairn_node_build n;

			snprintf(text, sizeof(text), "file %u/%u\n", d, f);
			n = reg(text);
			files[f] = ent(names[f], put(&n), CAIRN_NODE_REG);
		}
		top[d] = ent(names[d], put_dir(files, width), CAIRN_NODE_DIR);
		if (d == width / 2) {
			files[width / 3].id = changed_id;
			sub_new = put_dir(files, width);
		}
	}
	old = put_dir(top, width);
	top[width / 2].id = sub_new;
	new = put_dir(top, width);

	cr_assert_eq(run(&old, &new, 0, &L, &st), 0, "%s", cairn_errmsg());
	snprintf(want, sizeof(want), "M /%s/%s (content)", names[width / 2], names[width / 3]);
	cr_assert_eq(L.n, 1);
	cr_expect_str_eq(L.l[0], want);
	cr_expect_eq(st.nodes_read, 6, "read %llu nodes", (unsigned long long)st.nodes_read);
	cr_expect_eq(st.entries_visited, 2 * width, "visited %llu entries",
		     (unsigned long long)st.entries_visited);
	free(top);
	free(files);
	free(names);
}

Test(diff, skips_equal_subtrees_small)
{
	one_file_changed(8);
}

Test(diff, skips_equal_subtrees_large)
{
	one_file_changed(120);
}

Test(diff, missing_node_names_its_path)
{
	struct cairn_dirent e[2];
	struct cairn_id ghost = { .b = { 0xde, 0xad } }, empty, with, idx;
	struct cairn_node_build x = reg("x\n");
	struct lines L = { 0 };

	empty = put_dir(NULL, 0);
	idx = put(&x);
	e[0] = ent("ghost", ghost, CAIRN_NODE_REG);
	e[1] = ent("x", idx, CAIRN_NODE_REG);
	with = put_dir(e, 2);
	cr_assert_eq(run(&empty, &with, 0, &L, NULL), -EUCLEAN);
	cr_expect(strstr(cairn_errmsg(), "'/ghost'"), "message: %s", cairn_errmsg());
	cr_expect(strstr(cairn_errmsg(), "dead"), "message names the node: %s", cairn_errmsg());
	cr_expect_eq(L.n, 0, "stopped at the damage");
}
