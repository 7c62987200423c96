/* SPDX-License-Identifier: MIT */
/*
 * chunk.c - the one adapter for zstd: ZSTD_isError() becomes -EIO here,
 * with zstd's own message kept for the person reading the error.
 */
#include "chunk.h"

#include <zstd.h>

void cairn_zctx_release(struct cairn_zctx *z)
{
	ZSTD_freeCCtx(z->cctx);
	ZSTD_freeDCtx(z->dctx);
	z->cctx = z->dctx = NULL;
}

int cairn_chunk_encode(struct cairn_zctx *z, int level, bool untrusted, const void *raw,
		       size_t len, struct cairn_buf *out)
{
	struct cairn_chunk_disk h = { .version = CAIRN_FORMAT_VERSION };
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
	memcpy(out->data + start, &h, sizeof(h));
	out->len = start + sizeof(h) + n;
	return 0;
}

int cairn_chunk_header(const void *val, size_t vlen, uint32_t *raw_len, uint8_t *flags)
{
	struct cairn_chunk_disk h;
	uint32_t n;

	if (vlen < sizeof(h))
		return -EUCLEAN;
	memcpy(&h, val, sizeof(h));
	n = CAIRN_GET(h.raw_len);
	if (h.version != CAIRN_FORMAT_VERSION || n == 0 || n > CAIRN_CHUNK_MAX_LIMIT)
		return -EUCLEAN;
	if (h.codec == CAIRN_CODEC_RAW && vlen - sizeof(h) != n)
		return -EUCLEAN;
	if (h.codec != CAIRN_CODEC_RAW && h.codec != CAIRN_CODEC_ZSTD)
		return -EUCLEAN;
	if (CAIRN_GET(h.dict_id) != 0)
		return -EUCLEAN; /* dictionaries are reserved, none is written yet */
	*raw_len = n;
	if (flags)
		*flags = h.flags;
	return 0;
}

long cairn_chunk_decode(struct cairn_zctx *z, const struct cairn_id *id, const void *val,
			size_t vlen, void *out, size_t cap)
{
	const uint8_t *payload = (const uint8_t *)val + sizeof(struct cairn_chunk_disk);
	size_t plen = vlen - sizeof(struct cairn_chunk_disk);
	struct cairn_id got;
	char hex[CAIRN_ID_HEX_LEN + 1] = "";
	uint32_t raw_len;
	size_t n;

	if (id)
		cairn_id_hex(id, hex);
	if (cairn_chunk_header(val, vlen, &raw_len, NULL))
		return cairn_err(-EIO, "chunk %s has a malformed header", hex);
	if (cap < raw_len)
		return -ENOBUFS;
	if (((const uint8_t *)val)[1] == CAIRN_CODEC_RAW) {
		memcpy(out, payload, raw_len);
	} else {
		if (!z->dctx) {
			z->dctx = ZSTD_createDCtx();
			if (!z->dctx)
				return -ENOMEM;
		}
		n = ZSTD_decompressDCtx(z->dctx, out, raw_len, payload, plen);
		if (ZSTD_isError(n))
			return cairn_err(-EIO, "chunk %s does not decompress: %s", hex,
					 ZSTD_getErrorName(n));
		if (n != raw_len)
			return cairn_err(-EIO, "chunk %s decompresses to %zu bytes, not %u", hex, n,
					 raw_len);
	}
	if (id) {
		cairn_hash(out, raw_len, &got);
		if (!cairn_id_eq(&got, id))
			return cairn_err(-EIO, "chunk %s does not match its id", hex);
	}
	return raw_len;
}
