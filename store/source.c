/* SPDX-License-Identifier: MIT */
/*
 * source.c - the chunk-source verbs and the local packs, the source every
 * store starts with.
 *
 * A local chunk is its index record (struct cairn_chunk_disk in the chunks
 * database) and a pack entry at the offset that record names. The entry is
 * read in place through the store's shared mapping of the pack; its header
 * must agree with the index before a byte is decoded, and the decoded bytes
 * must hash to the id.
 */
#include "source.h"
#include "store-internal.h"

/* --- the verbs ------------------------------------------------------------ */

int cairn_chunks_stat(struct cairn_txn *t, const struct cairn_id *id, struct cairn_chunk_info *out)
{
	struct cairn_chunk_source *src = cairn_store_chunks(cairn_txn_store(t));

	return src->ops->stat(src, t, id, out);
}

long cairn_chunks_read(struct cairn_txn *t, struct cairn_zctx *z, const struct cairn_id *id,
		       unsigned flags, void *out, size_t cap)
{
	struct cairn_chunk_source *src = cairn_store_chunks(cairn_txn_store(t));

	return src->ops->read(src, t, z, id, flags, out, cap);
}

int cairn_chunks_entry(struct cairn_txn *t, const struct cairn_id *id, const void **entry,
		       size_t *len)
{
	struct cairn_chunk_source *src = cairn_store_chunks(cairn_txn_store(t));

	return src->ops->entry(src, t, id, entry, len);
}

void cairn_chunks_prefetch(struct cairn_txn *t, const struct cairn_id *ids, size_t n)
{
	struct cairn_chunk_source *src = cairn_store_chunks(cairn_txn_store(t));

	while (src && !src->ops->prefetch)
		src = src->below;
	if (src)
		src->ops->prefetch(src, t, ids, n);
}

/* --- the local packs ------------------------------------------------------ */

static int local_stat(struct cairn_chunk_source *src, struct cairn_txn *t,
		      const struct cairn_id *id, struct cairn_chunk_info *out)
{
	struct cairn_chunk_ref ref;
	const void *val;
	size_t vlen;
	int ret = cairn_get(t, CAIRN_DBI_CHUNKS, id->b, CAIRN_ID_LEN, &val, &vlen);

	*out = (struct cairn_chunk_info){ 0 }; /* -O3 cannot tell cairn_err() never returns 0 */
	if (ret)
		return ret;
	if (cairn_chunk_parse(val, vlen, &ref)) {
		char hex[CAIRN_ID_HEX_LEN + 1];

		cairn_id_hex(id, hex);
		return cairn_err(-EUCLEAN, "chunk %s: its index record is damaged", hex);
	}
	*out = (struct cairn_chunk_info){
		.raw_len = ref.raw_len,
		.flags = ref.flags,
		.where = CAIRN_CHUNK_LOCAL,
		.codec = ref.codec,
		.pack = ref.pack,
		.offset = ref.offset,
		.len = ref.len,
	};
	return 0;
}

/* The pack entry of a chunk whose index says info; checked against the index. */
static int local_map(struct cairn_txn *t, const struct cairn_id *id,
		     const struct cairn_chunk_info *info, const void **entry, size_t *len)
{
	const struct cairn_pack_entry *h;
	char hex[CAIRN_ID_HEX_LEN + 1];
	size_t need = sizeof(struct cairn_pack_entry) + info->len;
	int ret = 0;

	cairn_id_hex(id, hex);
	h = cairn_store_pack_map(cairn_txn_store(t), info->pack, info->offset, need, &ret);
	if (!h)
		return cairn_err(-EIO, "chunk %s: %s", hex, cairn_errmsg());
	if (h->codec != info->codec || CAIRN_GET(h->raw_len) != info->raw_len)
		return cairn_err(-EIO, "chunk %s: its pack entry disagrees with its index", hex);
	*entry = h;
	*len = need;
	return 0;
}

static long local_read(struct cairn_chunk_source *src, struct cairn_txn *t, struct cairn_zctx *z,
		       const struct cairn_id *id, unsigned flags, void *out, size_t cap)
{
	struct cairn_chunk_info info;
	const void *entry = NULL;
	size_t len = 0;
	int ret = local_stat(src, t, id, &info);

	if (ret == -EUCLEAN)
		return -EIO; /* the message says which chunk */
	if (!ret)
		ret = local_map(t, id, &info, &entry, &len);
	if (ret)
		return ret;
	return cairn_chunk_decode_entry(z, id, !(flags & CAIRN_READ_UNVERIFIED), entry, len, out,
					cap);
}

static int local_entry(struct cairn_chunk_source *src, struct cairn_txn *t,
		       const struct cairn_id *id, const void **entry, size_t *len)
{
	struct cairn_chunk_info info;
	int ret = local_stat(src, t, id, &info);

	if (ret == -EUCLEAN)
		return -EIO;
	return ret ? ret : local_map(t, id, &info, entry, len);
}

static void local_free(struct cairn_chunk_source *src)
{
	free(src);
}

static const struct cairn_chunk_source_ops local_ops = {
	.stat = local_stat,
	.read = local_read,
	.entry = local_entry,
	.free = local_free,
};

struct cairn_chunk_source *cairn_chunks_local_new(struct cairn_store *s)
{
	struct cairn_chunk_source *src = calloc(1, sizeof(*src));

	if (!src)
		return NULL;
	src->ops = &local_ops;
	src->name = "local";
	return src;
}
