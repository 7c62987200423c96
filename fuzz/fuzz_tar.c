/* SPDX-License-Identifier: MIT */
/*
 * fuzz_tar.c - libFuzzer harness for the tar importer (tools/import_tar.c):
 * the input is a tar stream (plain, gzip or zstd), imported through an
 * untrusted writer into a real LMDB store, as `cairn import` does.
 *
 * Refusing the input is fine; crashing, leaking or hanging is not. Besides
 * that it checks the importer's contract:
 * - a refused import returns -errno and leaves nothing in the store;
 * - an accepted one publishes, and fsck then finds the store whole.
 * A store that took a publish is made anew, so every input meets an empty
 * store and a run is reproducible. The store lives under $TMPDIR (fuzz/run.sh
 * points it at a tmpfs); the input reaches import_tar() through a memfd.
 */
/* white-box: reads and damages the store's tables on purpose */
#define CAIRN_STORE_INTERNAL

#include <ftw.h>
#include <stdio.h>
#include <sys/mman.h>

#include "fsck.h"
#include "import.h"
#include "store-internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* File bytes one input may hold: small, so a gzip bomb is refused quickly. */
#define FUZZ_MAX_BYTES (1u << 20)

#define require(cond, what)                                                       \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "fuzz_tar: %s (%s:%d): %s\n", what, __FILE__, \
				__LINE__, cairn_errmsg());                        \
			abort();                                                  \
		}                                                                 \
	} while (0)

static char store_dir[4096];
static struct cairn_store *store;
static int input_fd = -1;
static char input_path[64];

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

static void store_remove(void)
{
	cairn_store_close(store);
	store = NULL;
	if (store_dir[0])
		nftw(store_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void store_fresh(void)
{
	const char *tmp = getenv("TMPDIR");

	store_remove();
	snprintf(store_dir, sizeof(store_dir), "%s/cairn-fuzz-tar-XXXXXX", tmp ? tmp : "/tmp");
	require(mkdtemp(store_dir), "cannot make the store directory");
	require(cairn_store_open(store_dir, CAIRN_STORE_CREATE, NULL, &store) == 0,
		"cannot create the store");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	input_fd = memfd_create("fuzz-tar", MFD_CLOEXEC);
	require(input_fd >= 0, "memfd_create failed");
	snprintf(input_path, sizeof(input_path), "/proc/self/fd/%d", input_fd);
	store_fresh();
	atexit(store_remove);
	return 0;
}

static void set_input(const uint8_t *data, size_t size)
{
	size_t done = 0;

	require(ftruncate(input_fd, 0) == 0, "ftruncate failed");
	while (done < size) {
		ssize_t n = pwrite(input_fd, data + done, size - done, (off_t)done);

		require(n > 0, "pwrite failed");
		done += (size_t)n;
	}
}

static uint64_t count(enum cairn_db db)
{
	struct cairn_txn *t;
	uint64_t n = 0;

	require(cairn_txn_begin(store, false, &t) == 0, "cannot begin a read transaction");
	require(cairn_db_count(t, db, &n) == 0, "cannot count a database");
	cairn_txn_abort(t);
	return n;
}

static void check_published(const struct import_result *res)
{
	struct cairn_fsck_stats st = { 0 };

	require(cairn_fsck(store, NULL, &st) == 0, "fsck could not read the store");
	require(st.problems == 0, "fsck finds problems in an imported tar");
	require(st.images == 1 && st.tags == 1, "the import did not publish one image");
	require(res->entries >= 1, "an import without its root");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct import_result res = { 0 };
	struct cairn_publish pub = { .source = CAIRN_LAYER_TAR, .tag = "fuzz" };
	/* as `cairn import FILE.tar` (fuzz_oci covers layers, whiteouts and --on) */
	const struct import_tar_opts opts = { .max_bytes = FUZZ_MAX_BYTES };
	struct cairn_writer *w = NULL;
	struct cairn_id image;
	int ret;

	set_input(data, size);
	require(cairn_writer_new(store, CAIRN_WRITER_UNTRUSTED, &w) == 0, "no writer");
	ret = import_tar(w, input_path, &opts, &res);
	require(ret <= 0, "import_tar: a positive return");
	if (ret < 0 && getenv("CAIRN_FUZZ_VERBOSE"))
		fprintf(stderr, "%s refused the input: %s\n", "import_tar", cairn_errmsg());
	if (ret < 0) {
		cairn_writer_free(w);
		require(count(CAIRN_DBI_NODES) == 0 && count(CAIRN_DBI_CHUNKS) == 0,
			"a refused import left records in the store");
		cairn_err_clear();
		return 0;
	}
	pub.layer_root = res.root;
	pub.root = res.root;
	pub.logical_size = res.logical_size;
	pub.nodes = res.entries;
	require(cairn_writer_publish(w, &pub, &image) == 0, "an accepted import does not publish");
	cairn_writer_free(w);
	check_published(&res);
	store_fresh();
	cairn_err_clear();
	return 0;
}
