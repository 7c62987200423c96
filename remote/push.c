/* SPDX-License-Identifier: MIT */
/*
 * push.c - uploading images, tags and platform generations (transfer.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "chunk.h"
#include "image.h"
#include "layout.h"
#include "platform.h"
#include "read.h"
#include "rgc.h"
#include "source.h"
#include "transfer.h"
#include "walk.h"

#define PACK_TARGET (32u << 20)  /* a pack is closed past this many bytes */
#define PACKS_IN_FLIGHT 4        /* packs held in memory while they upload */
#define MAX_OBJECT_LEN (64u << 20)

void cairn_xfer_init(struct cairn_xfer *x, struct cairn_store *s, struct cairn_remote_conn *c,
		     const char *verb, bool progress)
{
	memset(x, 0, sizeof(*x));
	x->s = s;
	x->c = c;
	x->verb = verb;
	x->progress = progress;
	x->st.start_ns = cairn_s3_clock_ns();
}

double cairn_xfer_seconds(const struct cairn_xfer *x)
{
	return (double)(cairn_s3_clock_ns() - x->st.start_ns) / 1e9;
}

void cairn_xfer_progress(struct cairn_xfer *x, bool final)
{
	int64_t now = cairn_s3_clock_ns();
	const struct cairn_s3_stats *st = cairn_s3_stats(x->c->s3);
	double secs = (double)(now - x->st.start_ns) / 1e9;
	uint64_t bytes = st->bytes_sent + st->bytes_received;
	uint64_t total = x->st.bytes_total > bytes ? x->st.bytes_total : bytes; /* indexes too */

	if (!x->progress || (!final && now - x->last_progress_ns < 200000000))
		return;
	x->last_progress_ns = now;
	fprintf(stderr, "\r%s: %" PRIu64 "/%" PRIu64 " objects, %.1f/%.1f MiB, %.1f MB/s   %s",
		x->verb, x->st.objects_sent + x->st.objects_received, x->st.objects_total,
		(double)bytes / 1048576.0, (double)total / 1048576.0,
		secs > 0 ? (double)bytes / secs / 1e6 : 0.0, final ? "\n" : "");
	fflush(stderr);
}

struct todo {
	uint8_t kind; /* enum cairn_rkind */
	struct cairn_id id;
};

/* A pack being filled, or uploading. */
struct outpack {
	struct pusher *p;
	struct cairn_buf data;
	struct cairn_buf idx;   /* struct cairn_ridx_rec, then sorted and headed */
	uint32_t count;
	struct cairn_id id;
	char key[CAIRN_RKEY_MAX];
};

struct pusher {
	struct cairn_xfer *x;
	struct cairn_rindex rx;
	bool *need;             /* by pack number of rx: the image uses it */
	struct cairn_id *packs; /* the image's packs, old and new */
	size_t npacks, cappacks;
	struct todo *todo;
	size_t ntodo, captodo;
	unsigned inflight;
	int err;
	struct cairn_txn *t;
};

static uint8_t rkind_of(uint8_t objkind)
{
	switch (objkind) {
	case CAIRN_OBJ_NODE:
		return CAIRN_RKIND_NODE;
	case CAIRN_OBJ_CONTENT:
		return CAIRN_RKIND_CONTENT;
	case CAIRN_OBJ_CHUNK:
		return CAIRN_RKIND_CHUNK;
	}
	return 0;
}

static const char *kind_word(uint8_t rkind)
{
	return rkind == CAIRN_RKIND_NODE ? "node" : rkind == CAIRN_RKIND_CONTENT ? "content" : "chunk";
}

static int add_pack(struct pusher *p, const struct cairn_id *id)
{
	for (size_t i = 0; i < p->npacks; i++)
		if (cairn_id_eq(&p->packs[i], id))
			return 0;
	if (p->npacks == p->cappacks) {
		size_t cap = p->cappacks ? 2 * p->cappacks : 16;
		struct cairn_id *n = realloc(p->packs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->packs = n;
		p->cappacks = cap;
	}
	p->packs[p->npacks++] = *id;
	return 0;
}

static int visit(void *ctx, const struct cairn_visit *v)
{
	struct pusher *p = ctx;
	uint8_t kind = rkind_of(v->obj->kind);
	const struct cairn_robj *o;
	char hex[CAIRN_ID_HEX_LEN + 1];

	if (!v->first || !kind)
		return 0;
	if (v->obj->state != CAIRN_OBJ_OK) {
		cairn_id_hex(&v->obj->id, hex);
		return cairn_err(-EIO, "%s %s of the image is %s in the store (run 'cairn fsck')",
				 kind_word(kind), hex,
				 v->obj->state == CAIRN_OBJ_MISSING ? "missing" : "damaged");
	}
	o = cairn_rindex_find(&p->rx, kind, &v->obj->id);
	if (o) {
		p->need[o->pack] = true;
		return 0; /* still walked below: what it names may be missing */
	}
	if (p->ntodo == p->captodo) {
		size_t cap = p->captodo ? 2 * p->captodo : 4096;
		struct todo *n = realloc(p->todo, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->todo = n;
		p->captodo = cap;
	}
	p->todo[p->ntodo++] = (struct todo){ .kind = kind, .id = v->obj->id };
	return 0;
}

static int rec_cmp(const void *a, const void *b)
{
	const struct cairn_ridx_rec *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return memcmp(x->id, y->id, CAIRN_ID_LEN);
}

static void outpack_free(struct outpack *op)
{
	cairn_buf_release(&op->data);
	cairn_buf_release(&op->idx);
	free(op);
}

static void lock_refreshed(void *arg, const struct cairn_s3_result *r)
{
	/* a refresh that fails is tried again after the next pack */
	struct cairn_xfer *x = arg;

	if (r->err)
		x->lock_ns = 0;
}

/* Keeps a long push's lock fresh (an asynchronous PUT: callbacks may not wait). */
static void lock_refresh(struct cairn_xfer *x)
{
	int64_t now = cairn_now_ns();
	struct cairn_s3_request req = {
		.method = CAIRN_S3_PUT, .key = x->lock_key, .body = x->lock_body,
		.body_len = sizeof(x->lock_body), .done = lock_refreshed, .arg = x,
	};

	if (!x->lock_key || now - x->lock_ns < CAIRN_RLOCK_REFRESH_NS)
		return;
	cairn_rlock_body(x->lock_body);
	x->lock_ns = now;
	if (cairn_s3_submit(x->c->s3, &req))
		x->lock_ns = 0;
}

static void idx_done(void *arg, const struct cairn_s3_result *r)
{
	struct outpack *op = arg;
	struct pusher *p = op->p;

	if (r->err && !p->err)
		p->err = cairn_err(r->err, "PUT %s: %s", op->key, r->msg);
	p->inflight--;
	outpack_free(op);
}

static void pack_done(void *arg, const struct cairn_s3_result *r)
{
	struct outpack *op = arg;
	struct pusher *p = op->p;
	struct cairn_s3_request req = { .method = CAIRN_S3_PUT, .done = idx_done, .arg = op };
	char rest[CAIRN_RKEY_MAX];
	int ret;

	if (r->err || p->err) {
		if (!p->err)
			p->err = cairn_err(r->err, "PUT %s: %s", op->key, r->msg);
		p->inflight--;
		outpack_free(op);
		return;
	}
	p->x->st.objects_sent += op->count;
	cairn_xfer_progress(p->x, false);
	lock_refresh(p->x);
	/* the index only once its pack is whole: an index names a complete pack */
	cairn_rkey_pack(&op->id, true, rest);
	ret = cairn_remote_key(p->x->c, rest, op->key, sizeof(op->key));
	req.key = op->key;
	req.body = op->idx.data;
	req.body_len = op->idx.len;
	if (!ret)
		ret = cairn_s3_submit(p->x->c->s3, &req);
	if (ret) {
		p->err = ret;
		p->inflight--;
		outpack_free(op);
	}
}

static struct outpack *outpack_new(struct pusher *p)
{
	struct outpack *op = calloc(1, sizeof(*op));
	struct cairn_rpack_header h = { .version = CAIRN_RFORMAT_VERSION };

	if (!op)
		return NULL;
	op->p = p;
	memcpy(h.magic, CAIRN_RPACK_MAGIC, sizeof(h.magic));
	if (cairn_buf_append(&op->data, &h, sizeof(h))) {
		free(op);
		return NULL;
	}
	return op;
}

/* Closes a pack: its header, id and index; starts its upload. Takes op. */
static int outpack_send(struct pusher *p, struct outpack *op)
{
	struct cairn_ridx_header ih = { .version = CAIRN_RFORMAT_VERSION };
	struct cairn_s3_request req = { .method = CAIRN_S3_PUT, .done = pack_done, .arg = op };
	struct cairn_buf idx = { 0 };
	char rest[CAIRN_RKEY_MAX];
	int ret;

	CAIRN_SET(((struct cairn_rpack_header *)op->data.data)->count, op->count);
	cairn_hash(op->data.data, op->data.len, &op->id);
	qsort(op->idx.data, op->count, sizeof(struct cairn_ridx_rec), rec_cmp);
	memcpy(ih.magic, CAIRN_RIDX_MAGIC, sizeof(ih.magic));
	CAIRN_SET(ih.count, op->count);
	memcpy(ih.pack, op->id.b, CAIRN_ID_LEN);
	CAIRN_SET(ih.pack_size, op->data.len);
	ret = cairn_buf_append(&idx, &ih, sizeof(ih));
	ret = ret ?: cairn_buf_append(&idx, op->idx.data, op->idx.len);
	ret = ret ?: add_pack(p, &op->id);
	if (ret) {
		cairn_buf_release(&idx);
		outpack_free(op);
		return ret;
	}
	cairn_buf_release(&op->idx);
	op->idx = idx;
	cairn_rkey_pack(&op->id, false, rest);
	ret = cairn_remote_key(p->x->c, rest, op->key, sizeof(op->key));
	req.key = op->key;
	req.body = op->data.data;
	req.body_len = op->data.len;
	if (!ret)
		ret = cairn_s3_submit(p->x->c->s3, &req);
	if (ret) {
		outpack_free(op);
		return ret;
	}
	p->inflight++;
	/* bounded memory: wait while too many packs are uploading */
	while (p->inflight >= PACKS_IN_FLIGHT && !p->err) {
		ret = cairn_s3_run(p->x->c->s3, 200);
		if (ret)
			return ret;
		cairn_xfer_progress(p->x, false);
	}
	return p->err;
}

/* Appends one object to op: its entry header and payload. */
static int outpack_add(struct outpack *op, const struct todo *td, uint8_t codec,
		       uint32_t raw_len, const void *payload, size_t len)
{
	struct cairn_rentry e = { .kind = td->kind, .codec = codec };
	struct cairn_ridx_rec r = { .kind = td->kind };
	int ret;

	CAIRN_SET(e.raw_len, raw_len);
	CAIRN_SET(e.len, (uint32_t)len);
	memcpy(e.id, td->id.b, CAIRN_ID_LEN);
	CAIRN_SET(r.len, (uint32_t)(sizeof(e) + len));
	CAIRN_SET(r.offset, op->data.len);
	memcpy(r.id, td->id.b, CAIRN_ID_LEN);
	ret = cairn_buf_append(&op->data, &e, sizeof(e));
	ret = ret ?: cairn_buf_append(&op->data, payload, len);
	ret = ret ?: cairn_buf_append(&op->idx, &r, sizeof(r));
	if (!ret)
		op->count++;
	return ret;
}

/* The object's bytes as the store keeps them. */
static int read_object(struct pusher *p, const struct todo *td, uint8_t *codec, uint32_t *raw_len,
		       const void **payload, size_t *len)
{
	char hex[CAIRN_ID_HEX_LEN + 1];
	struct cairn_pack_entry pe;
	const uint8_t *entry;
	size_t vl;
	int ret;

	cairn_id_hex(&td->id, hex);
	if (td->kind != CAIRN_RKIND_CHUNK) {
		ret = td->kind == CAIRN_RKIND_NODE ? cairn_node_value(p->t, &td->id, payload, len) :
						     cairn_content_value(p->t, &td->id, payload, len);
		if (ret)
			return cairn_err(ret, "cannot read %s %s", kind_word(td->kind), hex);
		if (*len > MAX_OBJECT_LEN)
			return cairn_err(-EFBIG, "%s %s is larger than %u bytes", kind_word(td->kind),
					 hex, MAX_OBJECT_LEN);
		*codec = 0;
		*raw_len = (uint32_t)*len;
		return 0;
	}
	ret = cairn_chunks_entry(p->t, &td->id, (const void **)&entry, &vl);
	if (ret)
		return cairn_err(ret == -ENODATA ? -EIO : ret, "chunk %s is not in the store here "
				 "(%s)", hex, ret == -ENODATA ? "not fetched yet" : cairn_errmsg());
	if (vl < sizeof(pe))
		return cairn_err(-EIO, "chunk %s: its pack entry is short", hex);
	memcpy(&pe, entry, sizeof(pe));
	if (memcmp(pe.id, td->id.b, CAIRN_ID_LEN) != 0 || CAIRN_GET(pe.len) != vl - sizeof(pe))
		return cairn_err(-EIO, "chunk %s: its pack entry disagrees with its index (run "
				       "'cairn fsck')", hex);
	*codec = pe.codec;
	*raw_len = CAIRN_GET(pe.raw_len);
	*payload = entry + sizeof(pe);
	*len = vl - sizeof(pe);
	return 0;
}

/* Packs and uploads the objects of one kind group (meta, or chunks). */
static int send_objects(struct pusher *p, bool chunks)
{
	struct outpack *op = NULL;
	int ret = 0;

	for (size_t i = 0; i < p->ntodo && !ret; i++) {
		const struct todo *td = &p->todo[i];
		const void *payload = NULL;
		uint32_t raw_len = 0;
		uint8_t codec = 0;
		size_t len = 0;

		if ((td->kind == CAIRN_RKIND_CHUNK) != chunks)
			continue;
		ret = read_object(p, td, &codec, &raw_len, &payload, &len);
		if (ret)
			break;
		if (!op && !(op = outpack_new(p)))
			return -ENOMEM;
		ret = outpack_add(op, td, codec, raw_len, payload, len);
		if (!ret && op->data.len >= PACK_TARGET) {
			ret = outpack_send(p, op);
			op = NULL;
		}
	}
	if (op && !ret && op->count)
		return outpack_send(p, op);
	if (op)
		outpack_free(op);
	return ret;
}

static int image_object(struct pusher *p, const struct cairn_id *image, struct cairn_buf *out)
{
	struct cairn_rimage_header h = { .version = CAIRN_RFORMAT_VERSION };
	struct cairn_image img;
	const void *v;
	size_t vl;
	int ret;

	ret = cairn_image_record(p->t, image, &v, &vl);
	if (!ret)
		ret = cairn_image_parse(v, vl, &img);
	if (ret)
		return cairn_err(ret, "the image's record cannot be read");
	memcpy(h.magic, CAIRN_RIMAGE_MAGIC, sizeof(h.magic));
	CAIRN_SET(h.record_len, (uint32_t)vl);
	CAIRN_SET(h.nlayers, img.nlayers);
	CAIRN_SET(h.npacks, (uint32_t)p->npacks);
	ret = cairn_buf_append(out, &h, sizeof(h));
	ret = ret ?: cairn_buf_append(out, v, vl);
	for (uint32_t i = 0; !ret && i < img.nlayers; i++) {
		uint8_t source = CAIRN_LAYER_DIR;

		if (cairn_layer_source(p->t, (const struct cairn_id *)(img.layers +
								     (size_t)i * CAIRN_ID_LEN),
				       &source))
			source = CAIRN_LAYER_DIR; /* a layer record lost: the tree is what counts */
		ret = cairn_buf_append(out, &source, 1);
	}
	for (size_t i = 0; !ret && i < p->npacks; i++)
		ret = cairn_buf_append(out, p->packs[i].b, CAIRN_ID_LEN);
	return ret;
}

int cairn_push_image(struct cairn_xfer *x, const struct cairn_id *image)
{
	struct pusher p = { .x = x };
	struct cairn_objmap m;
	struct cairn_image img;
	struct cairn_buf obj = { 0 };
	char rest[CAIRN_RKEY_MAX], key[CAIRN_RKEY_MAX];
	uint64_t size;
	int ret;

	cairn_rkey_image(image, rest);
	ret = cairn_remote_key(x->c, rest, key, sizeof(key));
	if (ret)
		return ret;
	/* the image object comes last: when it is there, all it names is */
	ret = cairn_s3_head(x->c->s3, key, &size);
	if (ret != -ENOENT)
		return ret;
	cairn_err_clear();

	cairn_rindex_init(&p.rx);
	cairn_objmap_init(&m);
	ret = cairn_rindex_fetch_all(&p.rx, x->c);
	if (!ret && !(p.need = calloc(p.rx.npacks + 1, sizeof(*p.need))))
		ret = -ENOMEM;
	if (!ret)
		ret = cairn_txn_begin(x->s, false, &p.t);
	if (ret)
		goto out;
	ret = cairn_image_get(p.t, image, &img);
	if (ret == -ENOENT)
		ret = cairn_err(ret, "the image is not in the store");
	if (!ret)
		ret = cairn_walk_image(p.t, &m, 1, 0, &img.root, img.layers, img.nlayers, visit, &p);
	for (size_t i = 0; !ret && i < p.rx.npacks; i++)
		if (p.need[i])
			ret = add_pack(&p, &p.rx.packs[i]);
	if (ret)
		goto out;
	x->st.objects_total += p.ntodo;
	ret = send_objects(&p, false);
	if (!ret)
		ret = send_objects(&p, true);
	while (!ret && cairn_s3_pending(x->c->s3) && !p.err) {
		ret = cairn_s3_run(x->c->s3, 200);
		cairn_xfer_progress(x, false);
	}
	if (!ret)
		ret = p.err;
	if (!ret)
		ret = image_object(&p, image, &obj);
	if (!ret)
		ret = cairn_s3_put(x->c->s3, key, obj.data, obj.len, false);
out:
	if (ret && cairn_s3_pending(x->c->s3)) {
		/* let what is in flight end before its buffers go */
		int saved = ret;
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", cairn_errmsg());
		while (cairn_s3_pending(x->c->s3) && cairn_s3_run(x->c->s3, -1) == 0)
			;
		ret = cairn_err(saved, "%s", msg);
	}
	cairn_txn_abort(p.t);
	cairn_buf_release(&obj);
	cairn_objmap_release(&m);
	cairn_rindex_release(&p.rx);
	free(p.need);
	free(p.packs);
	free(p.todo);
	x->st.bytes_sent = cairn_s3_stats(x->c->s3)->bytes_sent;
	return ret;
}

static int put_pointer(struct cairn_xfer *x, struct cairn_rptr *ptr, const char *rest,
		       bool create_only)
{
	struct cairn_buf b = { 0 };
	char key[CAIRN_RKEY_MAX];
	int ret;

	ptr->time_ns = cairn_now_ns();
	if (x->sign)
		ret = cairn_sign_pointer(x->sign, ptr);
	else
		ret = 0;
	ret = ret ?: cairn_rptr_encode(ptr, &b);
	ret = ret ?: cairn_remote_key(x->c, rest, key, sizeof(key));
	ret = ret ?: cairn_s3_put(x->c->s3, key, b.data, b.len, create_only);
	if (ret == -EEXIST && create_only) {
		/* ours, made by a try whose answer was lost? then it is done */
		struct cairn_buf got = { 0 };

		if (cairn_s3_get(x->c->s3, key, 4096, &got) == 0 && got.len == b.len &&
		    memcmp(got.data, b.data, b.len) == 0)
			ret = 0;
		cairn_buf_release(&got);
	}
	cairn_buf_release(&b);
	x->st.bytes_sent = cairn_s3_stats(x->c->s3)->bytes_sent;
	return ret;
}

int cairn_push_tag(struct cairn_xfer *x, const char *name, const struct cairn_id *image)
{
	struct cairn_rptr ptr = { .kind = CAIRN_RPTR_TAG, .image = *image };
	char rest[CAIRN_RKEY_MAX];
	int ret;

	if (cairn_rkey_tag(name, rest))
		return cairn_err(-EINVAL, "'%s' is not a valid tag", name);
	ret = cairn_push_image(x, image);
	if (ret)
		return ret;
	snprintf(ptr.name, sizeof(ptr.name), "%s", name);
	{
		/* already there, as this push would write it: nothing to send */
		struct cairn_buf b = { 0 };
		struct cairn_rptr cur;
		char key[CAIRN_RKEY_MAX];

		if (cairn_remote_key(x->c, rest, key, sizeof(key)) == 0 &&
		    cairn_s3_get(x->c->s3, key, 4096, &b) == 0 &&
		    cairn_rptr_parse(b.data, b.len, &cur) == 0 && cur.kind == CAIRN_RPTR_TAG &&
		    cairn_id_eq(&cur.image, image) && strcmp(cur.name, name) == 0 &&
		    (!x->sign || (cur.is_signed && cairn_sign_check(x->sign->pub, &cur) == 0))) {
			cairn_buf_release(&b);
			return 0;
		}
		cairn_buf_release(&b);
		cairn_err_clear();
	}
	return put_pointer(x, &ptr, rest, false);
}

int cairn_push_platform(struct cairn_xfer *x, const char *platform, uint64_t *gen)
{
	struct cairn_platform cur;
	struct cairn_generation g;
	struct cairn_txn *t;
	int ret;

	ret = cairn_txn_begin(x->s, false, &t);
	if (ret)
		return ret;
	ret = cairn_platform_get(t, platform, &cur);
	if (ret == -ENOENT)
		ret = cairn_err(ret, "there is no platform '%s'", platform);
	if (!ret)
		ret = cairn_generation_get(t, platform, cur.generation, &g);
	cairn_txn_abort(t);
	if (ret)
		return ret;
	ret = cairn_push_image(x, &cur.image);
	/* a generation is created once: someone else's N means we try N + 1 */
	for (int tries = 0; !ret && tries < 20; tries++) {
		struct cairn_rptr head, ptr = { .kind = CAIRN_RPTR_GENERATION,
						.action = g.action, .image = cur.image };
		char rest[CAIRN_RKEY_MAX];

		ret = cairn_remote_platform_head(x, platform, &head);
		if (ret)
			return ret;
		if (head.generation && cairn_id_eq(&head.image, &cur.image)) {
			*gen = head.generation;
			return 0;
		}
		snprintf(ptr.name, sizeof(ptr.name), "%s", platform);
		ptr.generation = head.generation + 1;
		cairn_rkey_generation(platform, ptr.generation, rest);
		ret = put_pointer(x, &ptr, rest, true);
		if (ret == 0)
			*gen = ptr.generation;
		if (ret == -EEXIST) {
			cairn_err_clear();
			ret = 0;
			continue;
		}
		return ret;
	}
	return ret ? ret : cairn_err(-EBUSY, "platform '%s' keeps moving on the remote", platform);
}
