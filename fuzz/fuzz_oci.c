/* SPDX-License-Identifier: MIT */
/*
 * fuzz_oci.c - libFuzzer harness for the OCI layout reader
 * (tools/import_oci.c): index.json, manifests, configs and their layers
 * (tar, gzip or zstd, with whiteouts) imported into a real store, as
 * `cairn import oci:DIR` does.
 *
 * Input: parts separated by the line "@@" ("\n@@\n"). Part 0 is index.json,
 * parts 1.. are the blobs, each written to blobs/sha256/ under its own
 * digest (oci-layout is always right). A fuzzer cannot forge SHA-256, so
 * before a part is written these placeholders in it are replaced, for k
 * in 1..9 (a blob refers to higher-numbered blobs only):
 *   @Dk  "sha256:" and the digest of blob k
 *   @Sk  the size of blob k in bytes
 *   @Uk  the digest of blob k decompressed (a layer's diff_id)
 * That way the checks of digests, sizes and diff_ids stay real (a wrong
 * placeholder is a wrong digest) and what lies past them is reached.
 *
 * Refusing the input is fine; crashing, leaking or hanging is not. A
 * refused import publishes nothing; an accepted one leaves a store fsck
 * finds whole. A store that was written to is made anew for the next input.
 */
/* white-box: reads and damages the store's tables on purpose */
#define CAIRN_STORE_INTERNAL

#include <archive.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

#include "fsck.h"
#include "import.h"
#include "oci.h"
#include "store-internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_BYTES (1u << 20)
#define MAX_PARTS 10
#define SEP "\n@@\n"

#define require(cond, what)                                                       \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "fuzz_oci: %s (%s:%d): %s\n", what, __FILE__, \
				__LINE__, cairn_errmsg());                        \
			abort();                                                  \
		}                                                                 \
	} while (0)

struct part {
	const uint8_t *p;
	size_t len;
	struct cairn_buf out;        /* after substitution */
	char digest[OCI_DIGEST_LEN + 1];
	char diff[OCI_DIGEST_LEN + 1];
};

static char store_dir[4096], layout_dir[4096];
static struct cairn_store *store;

/* import_tar() reports progress through the CLI's formatter; never shown here. */
const char *cli_bytes(char *buf, size_t len, unsigned long long n)
{
	snprintf(buf, len, "%llu B", n);
	return buf;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void rm_tree(char *dir)
{
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	dir[0] = '\0';
}

static void make_dir(char *dir, size_t cap, const char *what)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, cap, "%s/cairn-fuzz-oci-%s-XXXXXX", tmp ? tmp : "/tmp", what);
	require(mkdtemp(dir), "cannot make a directory");
}

static void store_fresh(void)
{
	cairn_store_close(store);
	store = NULL;
	rm_tree(store_dir);
	make_dir(store_dir, sizeof(store_dir), "store");
	require(cairn_store_open(store_dir, CAIRN_STORE_CREATE, NULL, &store) == 0,
		"cannot create the store");
}

static void cleanup(void)
{
	cairn_store_close(store);
	store = NULL;
	rm_tree(store_dir);
	rm_tree(layout_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	/* import_oci() prints each image id on stdout */
	require(null >= 0 && dup2(null, STDOUT_FILENO) == STDOUT_FILENO, "cannot silence stdout");
	close(null);
	store_fresh();
	atexit(cleanup);
	return 0;
}

/* The SHA-256 of a blob decompressed (gzip, zstd or none), as a diff_id. */
static void diff_digest(const uint8_t *p, size_t len, char *out)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	struct sha256_ctx h;
	const void *buf;
	size_t n;
	la_int64_t off;

	sha256_init(&h);
	require(a, "out of memory");
	archive_read_support_format_raw(a);
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_none(a);
	if (archive_read_open_memory(a, p, len) == ARCHIVE_OK &&
	    archive_read_next_header(a, &e) == ARCHIVE_OK)
		while (archive_read_data_block(a, &buf, &n, &off) == ARCHIVE_OK)
			sha256_update(&h, n, buf);
	archive_read_free(a);
	oci_digest_finish(&h, out);
}

/* Copies part i into its out buffer with the placeholders of blobs j > i replaced. */
static void substitute(struct part *parts, size_t nparts, size_t i)
{
	struct part *x = &parts[i];
	char num[24];

	for (size_t o = 0; o < x->len; o++) {
		const uint8_t *c = x->p + o;
		size_t k;

		if (*c == '@' && o + 2 < x->len && (c[1] == 'D' || c[1] == 'S' || c[1] == 'U') &&
		    c[2] >= '1' && c[2] <= '9' && (k = (size_t)(c[2] - '0')) > i && k < nparts) {
			const char *r = num;

			snprintf(num, sizeof(num), "%zu", parts[k].out.len);
			if (c[1] == 'D')
				r = parts[k].digest;
			else if (c[1] == 'U')
				r = parts[k].diff;
			require(cairn_buf_append(&x->out, r, strlen(r)) == 0, "out of memory");
			o += 2;
			continue;
		}
		require(cairn_buf_append(&x->out, c, 1) == 0, "out of memory");
	}
}

static void write_file(const char *path, const struct cairn_buf *b)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	require(fd >= 0 && write(fd, b->data, b->len) == (ssize_t)b->len, "cannot write a file");
	close(fd);
}

/* Writes the layout the input describes into layout_dir. */
static void write_layout(const uint8_t *data, size_t size)
{
	static const char layout[] = "{\"imageLayoutVersion\": \"1.0.0\"}";
	struct part parts[MAX_PARTS] = { 0 };
	struct cairn_buf lb = { .data = (uint8_t *)layout, .len = sizeof(layout) - 1 };
	char path[8192];
	size_t n = 0;
	const uint8_t *p = data, *end = data + size;

	while (n < MAX_PARTS) {
		const uint8_t *s = memmem(p, (size_t)(end - p), SEP, strlen(SEP));

		parts[n].p = p;
		parts[n].len = (size_t)((s ? s : end) - p);
		n++;
		if (!s)
			break;
		p = s + strlen(SEP);
	}
	make_dir(layout_dir, sizeof(layout_dir), "layout");
	snprintf(path, sizeof(path), "%s/blobs", layout_dir);
	require(mkdir(path, 0755) == 0, "cannot make blobs/");
	snprintf(path, sizeof(path), "%s/blobs/sha256", layout_dir);
	require(mkdir(path, 0755) == 0, "cannot make blobs/sha256/");
	for (size_t i = n; i-- > 0;) {
		struct sha256_ctx h;

		substitute(parts, n, i);
		sha256_init(&h);
		sha256_update(&h, parts[i].out.len, parts[i].out.data);
		oci_digest_finish(&h, parts[i].digest);
		diff_digest(parts[i].out.data, parts[i].out.len, parts[i].diff);
		if (i == 0)
			snprintf(path, sizeof(path), "%s/index.json", layout_dir);
		else
			snprintf(path, sizeof(path), "%s/blobs/sha256/%s", layout_dir,
				 parts[i].digest + 7);
		write_file(path, &parts[i].out);
	}
	snprintf(path, sizeof(path), "%s/oci-layout", layout_dir);
	write_file(path, &lb);
	for (size_t i = 0; i < n; i++)
		cairn_buf_release(&parts[i].out);
}

static uint64_t count(enum cairn_db db)
{
	struct cairn_txn *t;
	uint64_t c = 0;

	require(cairn_txn_begin(store, false, &t) == 0, "cannot begin a read transaction");
	require(cairn_db_count(t, db, &c) == 0, "cannot count a database");
	cairn_txn_abort(t);
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct oci_import_opts o = { .max_bytes = FUZZ_MAX_BYTES };
	struct cairn_fsck_stats st = { 0 };
	struct cairn_writer *w = NULL;
	int ret;

	write_layout(data, size);
	require(cairn_writer_new(store, CAIRN_WRITER_UNTRUSTED, &w) == 0, "no writer");
	ret = import_oci(w, layout_dir, NULL, &o);
	cairn_writer_free(w);
	rm_tree(layout_dir);
	require(ret <= 0, "import_oci: a positive return");
	if (ret < 0 && getenv("CAIRN_FUZZ_VERBOSE"))
		fprintf(stderr, "%s refused the input: %s\n", "import_oci", cairn_errmsg());
	if (ret < 0) {
		/* layers may have been flushed; nothing may have been published */
		require(count(CAIRN_DBI_IMAGES) == 0 && count(CAIRN_DBI_TAGS) == 0,
			"a refused import published an image");
		if (count(CAIRN_DBI_NODES))
			store_fresh();
		cairn_err_clear();
		return 0;
	}
	require(cairn_fsck(store, NULL, &st) == 0, "fsck could not read the store");
	require(st.problems == 0, "fsck finds problems in an imported layout");
	require(st.images >= 1, "an accepted import published no image");
	store_fresh();
	cairn_err_clear();
	return 0;
}
