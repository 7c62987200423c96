/* SPDX-License-Identifier: MIT */
/*
 * layout.c - encodings and keys of a remote store (layout.h).
 */
#include "layout.h"

#include "store.h"

#include <inttypes.h>
#include <stdio.h>

#include "image.h"

void cairn_rmarker_init(struct cairn_rmarker_disk *m, const struct cairn_store_params *p)
{
	memset(m, 0, sizeof(*m));
	memcpy(m->magic, CAIRN_RMARKER_MAGIC, sizeof(m->magic));
	m->version = CAIRN_RFORMAT_VERSION;
	m->hash_algo = CAIRN_HASH_XXH3_128;
	CAIRN_SET(m->id_format, CAIRN_STORE_FORMAT);
	CAIRN_SET(m->chunk_min, p->chunk.min);
	CAIRN_SET(m->chunk_avg, p->chunk.avg);
	CAIRN_SET(m->chunk_max, p->chunk.max);
	CAIRN_SET(m->hole_block, CAIRN_HOLE_BLOCK);
	CAIRN_SET(m->gear_seed, p->chunk.seed);
}

int cairn_rmarker_check(const void *data, size_t len, const struct cairn_store_params *p)
{
	struct cairn_rmarker_disk m = { 0 };

	memcpy(&m, data, len < sizeof(m) ? len : sizeof(m));
	if (len < 16 || memcmp(m.magic, CAIRN_RMARKER_MAGIC, sizeof(m.magic)) != 0)
		return cairn_err(-EPROTO, "the remote's marker object is not cairn's");
	if (m.version != CAIRN_RFORMAT_VERSION || m.hash_algo != CAIRN_HASH_XXH3_128)
		return cairn_err(-EPROTO, "the remote has layout version %u (this cairn reads %u)",
				 m.version, CAIRN_RFORMAT_VERSION);
	if (len != sizeof(m))
		return cairn_err(-EPROTO, "the remote's marker object is not cairn's");
	if (CAIRN_GET(m.id_format) != CAIRN_STORE_FORMAT)
		return cairn_err(-EPROTO, "the remote names objects by the ids of store format %u; "
					  "this cairn's stores are format %u",
				 (unsigned)CAIRN_GET(m.id_format), CAIRN_STORE_FORMAT);
	if (CAIRN_GET(m.chunk_min) != p->chunk.min || CAIRN_GET(m.chunk_avg) != p->chunk.avg ||
	    CAIRN_GET(m.chunk_max) != p->chunk.max || CAIRN_GET(m.gear_seed) != p->chunk.seed ||
	    CAIRN_GET(m.hole_block) != CAIRN_HOLE_BLOCK)
		return cairn_err(-EPROTO, "the remote holds images chunked %u:%u:%u (gear seed "
					  "%016llx); this store chunks %u:%u:%u (gear seed %016llx), "
					  "so its ids would differ: use a store made with the "
					  "remote's chunking (CAIRN_CHUNK_SIZES) or another remote",
				 (unsigned)CAIRN_GET(m.chunk_min), (unsigned)CAIRN_GET(m.chunk_avg),
				 (unsigned)CAIRN_GET(m.chunk_max),
				 (unsigned long long)CAIRN_GET(m.gear_seed), p->chunk.min,
				 p->chunk.avg, p->chunk.max, (unsigned long long)p->chunk.seed);
	return 0;
}

int cairn_rptr_encode(const struct cairn_rptr *p, struct cairn_buf *out)
{
	struct cairn_rptr_disk d = { .version = CAIRN_RFORMAT_VERSION };
	size_t n = strlen(p->name);
	int ret;

	if (n == 0 || n > 128)
		return -EINVAL;
	memcpy(d.magic, CAIRN_RPTR_MAGIC, sizeof(d.magic));
	d.kind = p->kind;
	d.flags = p->is_signed ? CAIRN_RPTR_SIGNED : 0;
	d.action = p->action;
	CAIRN_SET(d.name_len, n);
	CAIRN_SET(d.generation, p->generation);
	memcpy(d.image, p->image.b, CAIRN_ID_LEN);
	CAIRN_SET(d.time_ns, p->time_ns);
	if (p->is_signed)
		memcpy(d.signature, p->signature, sizeof(d.signature));
	ret = cairn_buf_append(out, &d, sizeof(d));
	return ret ? ret : cairn_buf_append(out, p->name, n);
}

int cairn_rptr_parse(const void *data, size_t len, struct cairn_rptr *p)
{
	struct cairn_rptr_disk d;
	size_t n;

	memset(p, 0, sizeof(*p));
	if (len < sizeof(d))
		goto bad;
	memcpy(&d, data, sizeof(d));
	n = CAIRN_GET(d.name_len);
	if (memcmp(d.magic, CAIRN_RPTR_MAGIC, sizeof(d.magic)) != 0 ||
	    d.version != CAIRN_RFORMAT_VERSION || len != sizeof(d) + n || n == 0 || n > 128 ||
	    (d.kind != CAIRN_RPTR_TAG && d.kind != CAIRN_RPTR_GENERATION) ||
	    (d.flags & ~CAIRN_RPTR_SIGNED))
		goto bad;
	memcpy(p->name, (const char *)data + sizeof(d), n);
	p->name[n] = '\0';
	if (cairn_tag_check(p->name))
		goto bad;
	p->kind = d.kind;
	p->action = d.action;
	p->is_signed = d.flags & CAIRN_RPTR_SIGNED;
	p->generation = CAIRN_GET(d.generation);
	memcpy(p->image.b, d.image, CAIRN_ID_LEN);
	p->time_ns = CAIRN_GET(d.time_ns);
	memcpy(p->signature, d.signature, sizeof(p->signature));
	if (p->kind == CAIRN_RPTR_GENERATION &&
	    (p->generation == 0 ||
	     (p->action != CAIRN_ACTION_UPGRADE && p->action != CAIRN_ACTION_ROLLBACK)))
		goto bad;
	return 0;
bad:
	return cairn_err(-EUCLEAN, "a pointer object is damaged or not cairn's");
}

int cairn_rptr_message(const struct cairn_rptr *p, struct cairn_buf *out)
{
	static const char ctx[] = "cairn-pointer-v1";
	uint8_t fixed[2 + 8 + CAIRN_ID_LEN + 8];
	size_t n = strlen(p->name);
	int ret;

	fixed[0] = p->kind;
	fixed[1] = p->action;
	cairn_put64(fixed + 2, p->generation);
	memcpy(fixed + 10, p->image.b, CAIRN_ID_LEN);
	cairn_put64(fixed + 10 + CAIRN_ID_LEN, (uint64_t)p->time_ns);
	ret = cairn_buf_append(out, ctx, sizeof(ctx)); /* with its NUL */
	ret = ret ?: cairn_buf_append(out, fixed, sizeof(fixed));
	ret = ret ?: cairn_buf_append(out, p->name, n);
	return ret;
}

void cairn_rkey_pack(const struct cairn_id *pack, bool idx, char *out)
{
	char hex[CAIRN_ID_HEX_LEN + 1];

	cairn_id_hex(pack, hex);
	snprintf(out, CAIRN_RKEY_MAX, "packs/%s.%s", hex, idx ? "idx" : "pack");
}

void cairn_rkey_image(const struct cairn_id *image, char *out)
{
	char hex[CAIRN_ID_HEX_LEN + 1];

	cairn_id_hex(image, hex);
	snprintf(out, CAIRN_RKEY_MAX, "images/%s", hex);
}

int cairn_rkey_tag(const char *name, char *out)
{
	if (cairn_tag_check(name))
		return -EINVAL;
	snprintf(out, CAIRN_RKEY_MAX, "tags/%s", name);
	return 0;
}

int cairn_rkey_generation(const char *platform, uint64_t gen, char *out)
{
	if (cairn_tag_check(platform))
		return -EINVAL;
	snprintf(out, CAIRN_RKEY_MAX, "platforms/%s/%020" PRIu64, platform, gen);
	return 0;
}

int cairn_rkey_platform(const char *platform, char *out)
{
	if (cairn_tag_check(platform))
		return -EINVAL;
	snprintf(out, CAIRN_RKEY_MAX, "platforms/%s/", platform);
	return 0;
}

int cairn_rkey_parse_id(const char *rest, const char *suffix, struct cairn_id *id)
{
	size_t sl = strlen(suffix);
	char hex[CAIRN_ID_HEX_LEN + 1];

	if (strlen(rest) != CAIRN_ID_HEX_LEN + sl || strcmp(rest + CAIRN_ID_HEX_LEN, suffix) != 0)
		return -EINVAL;
	memcpy(hex, rest, CAIRN_ID_HEX_LEN);
	hex[CAIRN_ID_HEX_LEN] = '\0';
	for (unsigned i = 0; i < CAIRN_ID_HEX_LEN; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return -EINVAL;
	return cairn_id_parse_prefix(hex, id) == CAIRN_ID_HEX_LEN ? 0 : -EINVAL;
}
