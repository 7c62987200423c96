/* SPDX-License-Identifier: MIT */
/*
 * chunk.c - chunk entries and the one adapter for zstd: ZSTD_isError()
 * becomes -EIO here, with zstd's own message kept for the person reading
 * the error.
 */
#include "chunk.h"

#include <zstd.h>

void cairn_zctx_release(struct cairn_zctx *z)
{
	ZSTD_freeCCtx(z->cctx);
	ZSTD_freeDCtx(z->dctx);
	z->cctx = z->dctx = NULL;
	cairn_buf_release(&z->io);
}

int cairn_chunk_encode(struct cairn_zctx *z, int level, bool untrusted, const struct cairn_id *id,
		       const void *raw, size_t len, struct cairn_buf *out)
{
	struct cairn_pack_entry h = { .version = CAIRN_FORMAT_VERSION };
	size_t bound = ZSTD_compressBound(len);
	size_t start = out->len;
	size_t n;
	int ret;

	if (len == 0 || len > CAIRN_CHUNK_MAX_LIMIT)
		return cairn_err(-EINVAL, "chunk of %zu bytes is out of range", len);
	ret = cairn_buf_reserve(out, sizeof(h) + (bound > len ? bound : len));
	if (ret)
		return ret;
	if (!z->cctx) {
		z->cctx = ZSTD_createCCtx();
		if (!z->cctx)
			return -ENOMEM;
		ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 0);
		ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_contentSizeFlag, 1);
	}
	ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level);
	n = ZSTD_compress2(z->cctx, out->data + start + sizeof(h), bound, raw, len);
	if (ZSTD_isError(n))
		return cairn_err(-EIO, "cannot compress a chunk: %s", ZSTD_getErrorName(n));
	if (n + len / 32 < len) {
		h.codec = CAIRN_CODEC_ZSTD;
	} else {
		h.codec = CAIRN_CODEC_RAW;
		memcpy(out->data + start + sizeof(h), raw, len);
		n = len;
	}
	h.flags = untrusted ? CAIRN_CHUNK_UNTRUSTED : 0;
	CAIRN_SET(h.raw_len, (uint32_t)len);
	CAIRN_SET(h.len, (uint32_t)n);
	memcpy(h.id, id->b, CAIRN_ID_LEN);
	memcpy(out->data + start, &h, sizeof(h));
	out->len = start + sizeof(h) + n;
	return 0;
}

void cairn_chunk_index(const void *entry, uint32_t pack, uint64_t offset,
		       struct cairn_chunk_disk *out)
{
	struct cairn_pack_entry h;

	memcpy(&h, entry, sizeof(h));
	memset(out, 0, sizeof(*out));
	out->version = CAIRN_FORMAT_VERSION;
	out->codec = h.codec;
	out->flags = h.flags;
	out->dict_id = h.dict_id;
	out->raw_len = h.raw_len;
	out->len = h.len;
	CAIRN_SET(out->pack, pack);
	CAIRN_SET(out->offset, offset);
}

static bool valid_shape(uint8_t version, uint8_t codec, uint32_t dict_id, uint32_t raw_len,
			uint32_t len)
{
	if (version != CAIRN_FORMAT_VERSION || raw_len == 0 || raw_len > CAIRN_CHUNK_MAX_LIMIT)
		return false;
	if (dict_id != 0) /* dictionaries are reserved; none is written yet */
		return false;
	if (codec == CAIRN_CODEC_RAW)
		return len == raw_len;
	return codec == CAIRN_CODEC_ZSTD && len > 0 && len <= ZSTD_compressBound(raw_len);
}

int cairn_chunk_parse(const void *val, size_t vlen, struct cairn_chunk_ref *ref)
{
	struct cairn_chunk_disk d;

	if (vlen != sizeof(d))
		return -EUCLEAN;
	memcpy(&d, val, sizeof(d));
	ref->codec = d.codec;
	ref->flags = d.flags;
	ref->raw_len = CAIRN_GET(d.raw_len);
	ref->len = CAIRN_GET(d.len);
	ref->pack = CAIRN_GET(d.pack);
	ref->offset = CAIRN_GET(d.offset);
	if (!valid_shape(d.version, d.codec, CAIRN_GET(d.dict_id), ref->raw_len, ref->len))
		return -EUCLEAN;
	return 0;
}

int cairn_chunk_header(const void *val, size_t vlen, uint32_t *raw_len, uint8_t *flags)
{
	struct cairn_chunk_ref ref;
	int ret = cairn_chunk_parse(val, vlen, &ref);

	if (ret)
		return ret;
	*raw_len = ref.raw_len;
	if (flags)
		*flags = ref.flags;
	return 0;
}

static long decode_entry(struct cairn_zctx *z, const struct cairn_id *id, bool verify,
			 const void *entry, size_t elen, void *out, size_t cap)
{
	const uint8_t *payload = (const uint8_t *)entry + sizeof(struct cairn_pack_entry);
	struct cairn_pack_entry h;
	struct cairn_id got;
	char hex[CAIRN_ID_HEX_LEN + 1] = "";
	uint32_t raw_len, len;
	size_t n;

	if (id)
		cairn_id_hex(id, hex);
	if (elen < sizeof(h))
		return cairn_err(-EIO, "chunk %s: its pack entry is truncated", hex);
	memcpy(&h, entry, sizeof(h));
	raw_len = CAIRN_GET(h.raw_len);
	len = CAIRN_GET(h.len);
	if (!valid_shape(h.version, h.codec, CAIRN_GET(h.dict_id), raw_len, len) ||
	    elen - sizeof(h) != len)
		return cairn_err(-EIO, "chunk %s: its pack entry is malformed", hex);
	if (id && memcmp(h.id, id->b, CAIRN_ID_LEN))
		return cairn_err(-EIO, "chunk %s: its pack entry belongs to another chunk", hex);
	if (cap < raw_len)
		return -ENOBUFS;
	if (h.codec == CAIRN_CODEC_RAW) {
		memcpy(out, payload, raw_len);
	} else {
		if (!z->dctx) {
			z->dctx = ZSTD_createDCtx();
			if (!z->dctx)
				return -ENOMEM;
		}
		n = ZSTD_decompressDCtx(z->dctx, out, raw_len, payload, len);
		if (ZSTD_isError(n))
			return cairn_err(-EIO, "chunk %s does not decompress: %s", hex,
					 ZSTD_getErrorName(n));
		if (n != raw_len)
			return cairn_err(-EIO, "chunk %s decompresses to %zu bytes, not %u", hex, n,
					 raw_len);
	}
	if (id && verify) {
		cairn_hash(out, raw_len, &got);
		if (!cairn_id_eq(&got, id))
			return cairn_err(-EIO, "chunk %s does not match its id", hex);
	}
	return raw_len;
}

long cairn_chunk_decode_entry(struct cairn_zctx *z, const struct cairn_id *id, bool verify,
			      const void *entry, size_t elen, void *out, size_t cap)
{
	return decode_entry(z, id, verify, entry, elen, out, cap);
}
