/* SPDX-License-Identifier: MIT */
/*
 * cmd_commit.c - cairn commit: an upper directory becomes a layer, and the
 * image of that layer on top of another.
 *
 * The upper's tree is imported as a layer (whiteouts, opaque and renamed
 * directories, metacopy files taking their origin's content: see
 * import_upper), stacked on the base image's flattened tree, and published
 * with the base's layers plus the new one, in one synced commit. Chunks
 * already in the store are not stored again, so a commit after changing
 * one file stores about one file. An upper that a mount is writing is
 * refused: its tree would change under the import.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "image.h"
#include "import.h"
#include "stack.h"
#include "upper.h"

int cmd_commit(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "on", required_argument, NULL, 'o' },
		{ "tag", required_argument, NULL, 't' },
		{ "message", required_argument, NULL, 'm' },
		{ 0 },
	};
	const char *on = NULL, *tag = NULL, *msg = NULL, *dir;
	struct cfs_upper *u = NULL;
	struct cairn_store *s = NULL;
	struct cairn_writer *w = NULL;
	struct cairn_txn *t = NULL;
	struct cairn_image img;
	struct import_result res = { 0 };
	struct cairn_stack_result sr;
	struct cairn_publish pub = { 0 };
	struct cairn_id base, image, *layers = NULL, root;
	char hex[CAIRN_ID_HEX_LEN + 1], tree[4200];
	uint32_t nlayers = 0;
	int opt, ret, lock = -1;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "t:m:", opts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			on = optarg;
			break;
		case 't':
			tag = optarg;
			break;
		case 'm':
			msg = optarg;
			break;
		default:
			return cli_usage("commit", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage("commit", "commit takes one upper directory");
	dir = argv[optind];
	if (cli_check_tag("commit", tag))
		return 2;
	ret = cfs_upper_open_read(dir, true, &u);
	if (ret)
		return cli_fail(ret, "cannot commit '%s'", dir);
	if (cli_open(cli, true, &s)) {
		cfs_upper_close(u);
		return 1;
	}
	lock = cairn_gc_lock(s, false);
	if (lock < 0) {
		ret = lock;
		goto fail;
	}
	ret = cairn_txn_begin(s, false, &t);
	if (ret)
		goto fail;
	if (on) {
		ret = cairn_image_resolve(t, on, &base);
	} else {
		base = u->image; /* the image the upper was made on */
	}
	if (!ret)
		ret = cairn_image_get(t, &base, &img);
	if (!ret) {
		root = img.root;
		nlayers = img.nlayers;
		layers = calloc(nlayers ? nlayers : 1, sizeof(*layers));
		if (!layers)
			ret = -ENOMEM;
		else
			memcpy(layers, img.layers, (size_t)nlayers * CAIRN_ID_LEN);
	}
	cairn_txn_abort(t);
	if (ret) {
		cairn_id_hex(&base, hex);
		if (!on && ret == -ENOENT)
			ret = cairn_err(ret, "the upper's image %.12s is not in the store (give --on)",
					hex);
		goto fail;
	}
	/* what a container wrote is untrusted: dedup hits are byte-compared */
	ret = cairn_writer_new(s, CAIRN_WRITER_UNTRUSTED, &w);
	if (ret)
		goto fail;
	snprintf(tree, sizeof(tree), "%s/tree", dir);
	ret = import_upper(w, s, tree, cli->tty, &res);
	if (!ret)
		ret = cairn_writer_flush(w);
	if (!ret)
		ret = cairn_stack(w, &root, &res.root, &sr);
	if (ret)
		goto fail;
	pub.source = CAIRN_LAYER_COMMIT;
	pub.layer_root = res.root;
	pub.base_layers = layers;
	pub.nbase = nlayers;
	pub.root = sr.root;
	pub.logical_size = sr.logical_size;
	pub.nodes = sr.nodes;
	pub.msg = msg;
	pub.tag = tag;
	ret = cairn_writer_publish(w, &pub, &image);
	if (ret)
		goto fail;
	cairn_id_hex(&image, hex);
	printf("%s\n", hex);
	if (cli->tty) {
		const struct cairn_writer_stats *st = cairn_writer_stats(w);
		char a[32], b[32];

		fprintf(stderr, "%llu new chunks (%s raw, %s stored), %llu reused; %llu new nodes\n",
			(unsigned long long)st->chunks_new, cli_bytes(a, sizeof(a), st->chunk_bytes_new),
			cli_bytes(b, sizeof(b), st->stored_bytes_new),
			(unsigned long long)st->chunks_dup, (unsigned long long)st->nodes_new);
	}
	cairn_writer_free(w);
	free(layers);
	close(lock);
	cairn_store_close(s);
	cfs_upper_close(u);
	return fflush(stdout) == 0 ? 0 : 1;
fail:
	cli_fail(ret, "cannot commit '%s'", dir);
	if (w)
		cairn_writer_abandon(w, lock); /* its space back now, when that is safe */
	cairn_writer_free(w);
	free(layers);
	if (lock >= 0)
		close(lock);
	cairn_store_close(s);
	cfs_upper_close(u);
	return 1;
}
