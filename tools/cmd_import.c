/* SPDX-License-Identifier: MIT */
/*
 * cmd_import.c - cairn import: a source (a directory, a tar archive in a
 * file or on stdin, or an OCI image layout) becomes an image, published in
 * one synced commit or not at all. With --on IMAGE the source is a layer:
 * stacked over IMAGE's tree (whiteouts applied), the new image's layers are
 * IMAGE's and this one.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gc.h"
#include "import.h"
#include "oci.h"
#include "stack.h"

/* The base image of --on: its tree and layers (malloc'ed). */
struct base {
	struct cairn_id root;
	struct cairn_id *layers;
	uint32_t nlayers;
};

static int base_get(struct cairn_store *s, const char *spec, struct base *b)
{
	struct cairn_txn *t;
	struct cairn_image img;
	struct cairn_id id;
	const char *path;
	int ret = cairn_txn_begin(s, false, &t);

	if (ret)
		return ret;
	ret = cli_resolve(t, spec, &id, &path);
	if (!ret && *path)
		ret = cairn_err(-EINVAL, "--on takes an image, not a path inside one");
	if (!ret)
		ret = cairn_image_get(t, &id, &img);
	if (!ret) {
		b->root = img.root;
		b->nlayers = img.nlayers;
		b->layers = malloc((size_t)img.nlayers * sizeof(*b->layers));
		if (!b->layers)
			ret = -ENOMEM;
		else
			memcpy(b->layers, img.layers, (size_t)img.nlayers * CAIRN_ID_LEN);
	}
	cairn_txn_abort(t);
	return ret;
}

int cmd_import(struct cli *cli, int argc, char **argv)
{
	int lock = -1;
	static const struct option opts[] = {
		{ "tag", required_argument, NULL, 't' },
		{ "message", required_argument, NULL, 'm' },
		{ "level", required_argument, NULL, 'l' },
		{ "max-bytes", required_argument, NULL, 'b' },
		{ "max-entries", required_argument, NULL, 'e' },
		{ "on", required_argument, NULL, 'o' },
		{ 0 },
	};
	const char *tag = NULL, *msg = NULL, *src, *on = NULL;
	struct base base = { 0 };
	cleanup_free char *oci_dir = NULL;
	const char *oci_ref = NULL;
	struct cairn_store *s = NULL;
	struct cairn_writer *w = NULL;
	struct import_result res = { 0 };
	struct cairn_publish pub = { 0 };
	struct cairn_id image;
	char hex[CAIRN_ID_HEX_LEN + 1];
	struct stat st;
	int opt, ret, level = 0;
	bool have_level = false, tar, have_max = false, oci;
	uint64_t max_bytes = IMPORT_TAR_MAX_BYTES, max_entries = IMPORT_TAR_MAX_ENTRIES;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "t:m:", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			tag = optarg;
			break;
		case 'm':
			msg = optarg;
			break;
		case 'l': {
			char *end;

			level = (int)strtol(optarg, &end, 10);
			if (*end || level < 1 || level > 19)
				return cli_usage("import", "--level must be 1..19, not '%s'", optarg);
			have_level = true;
			break;
		}
		case 'b':
			if (cli_parse_bytes(optarg, NULL, &max_bytes))
				return cli_usage("import", "--max-bytes takes a byte count (with K, "
							   "M, G or T), not '%s'", optarg);
			have_max = true;
			break;
		case 'e': {
			char *end;

			errno = 0;
			max_entries = strtoull(optarg, &end, 10);
			if (errno || *end || optarg[0] < '1' || optarg[0] > '9')
				return cli_usage("import", "--max-entries takes a count of entries, "
							   "not '%s'", optarg);
			have_max = true;
			break;
		}
		case 'o':
			on = optarg;
			break;
		default:
			return cli_usage("import", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage("import", "import takes one source");
	src = argv[optind];
	if (cli_check_tag("import", tag))
		return 2;
	oci = strncmp(src, "oci:", 4) == 0;
	tar = !oci && strcmp(src, "-") == 0;
	if (oci) {
		const char *colon = strchr(src + 4, ':');

		oci_dir = strndup(src + 4, colon ? (size_t)(colon - src - 4) : strlen(src + 4));
		if (!oci_dir)
			return cli_fail(-ENOMEM, "cannot import '%s'", src);
		oci_ref = colon ? colon + 1 : NULL;
		if (!*oci_dir || (oci_ref && !*oci_ref))
			return cli_usage("import", "an OCI layout is oci:DIR or oci:DIR:REF, not '%s'",
					 src);
		if (on)
			return cli_usage("import", "--on is for tar layers and directories: an OCI "
						   "image brings its own base layers");
	} else if (!tar) {
		if (stat(src, &st) < 0)
			return cli_fail(-errno, "cannot import '%s'", src);
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
			return cli_fail(0, "cannot import '%s': not a directory or a tar archive",
					src);
		tar = !S_ISDIR(st.st_mode);
	}
	if (have_max && !tar && !oci)
		return cli_usage("import", "--max-bytes and --max-entries are for tar archives, "
					   "not directories");

	if (cli_open(cli, true, &s))
		return 1;
	/* held until the image is published: gc must not sweep what we dedup against */
	lock = cairn_gc_lock(s, false);
	if (lock < 0) {
		ret = lock;
		goto fail;
	}
	if (have_level)
		cairn_store_set_level(s, level);
	if (on && (ret = base_get(s, on, &base)))
		goto fail;
	/* tar and OCI input is untrusted: dedup hits on its chunks are byte-compared */
	ret = cairn_writer_new(s, tar || oci ? CAIRN_WRITER_UNTRUSTED : 0, &w);
	if (ret)
		goto fail;
	if (oci) {
		struct oci_import_opts oo = { .tag = tag, .msg = msg, .max_bytes = max_bytes,
					      .max_entries = max_entries, .show = cli->tty };

		ret = import_oci(w, oci_dir, oci_ref, &oo);
		if (ret)
			goto fail;
		goto done;
	}
	if (tar) {
		struct import_tar_opts to = { .max_bytes = max_bytes, .max_entries = max_entries,
					      .show = cli->tty,
					      .layer = on != NULL,
					      .base = on ? &base.root : NULL };

		ret = import_tar(w, src, &to, &res);
	} else {
		ret = import_dir(w, src, cairn_store_dir(s), cli->tty, &res);
	}
	if (ret)
		goto fail;
	pub.source = tar ? CAIRN_LAYER_TAR : CAIRN_LAYER_DIR;
	pub.layer_root = res.root;
	pub.root = res.root;
	pub.logical_size = res.logical_size;
	pub.nodes = res.entries;
	if (on) {
		struct cairn_stack_result sr;

		ret = cairn_writer_flush(w);
		if (!ret)
			ret = cairn_stack(w, &base.root, &res.root, &sr);
		if (ret)
			goto fail;
		pub.root = sr.root;
		pub.logical_size = sr.logical_size;
		pub.nodes = sr.nodes;
		pub.base_layers = base.layers;
		pub.nbase = base.nlayers;
	}
	pub.msg = msg;
	pub.tag = tag;
	ret = cairn_writer_publish(w, &pub, &image);
	if (ret)
		goto fail;
	cairn_id_hex(&image, hex);
	printf("%s\n", hex);
done:
	if (cli->tty) {
		const struct cairn_writer_stats *st2 = cairn_writer_stats(w);
		char a[32], b[32];

		fprintf(stderr, "%llu new chunks (%s raw, %s stored), %llu reused; %llu new nodes\n",
			(unsigned long long)st2->chunks_new,
			cli_bytes(a, sizeof(a), st2->chunk_bytes_new),
			cli_bytes(b, sizeof(b), st2->stored_bytes_new),
			(unsigned long long)st2->chunks_dup, (unsigned long long)st2->nodes_new);
	}
	cairn_writer_free(w);
	free(base.layers);
	close(lock);
	cairn_store_close(s);
	return fflush(stdout) == 0 ? 0 : 1;
fail:
	cli_fail(ret, "cannot import '%s'", src);
	if (w)
		cairn_writer_abandon(w, lock); /* its space back now, when that is safe */
	free(base.layers);
	cairn_writer_free(w);
	if (lock >= 0)
		close(lock);
	cairn_store_close(s);
	return 1;
}
