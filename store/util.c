/* SPDX-License-Identifier: MIT */
/*
 * util.c - ids, buffers, the per-thread error message.
 */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <xxhash.h>

void cairn_id_hex(const struct cairn_id *id, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (unsigned i = 0; i < CAIRN_ID_LEN; i++) {
		out[2 * i] = digits[id->b[i] >> 4];
		out[2 * i + 1] = digits[id->b[i] & 15];
	}
	out[CAIRN_ID_HEX_LEN] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cairn_id_parse_prefix(const char *s, struct cairn_id *id)
{
	size_t n = strlen(s);

	if (n == 0 || n > CAIRN_ID_HEX_LEN)
		return -EINVAL;
	memset(id, 0, sizeof(*id));
	for (size_t i = 0; i < n; i++) {
		int v = hexval(s[i]);

		if (v < 0)
			return -EINVAL;
		id->b[i / 2] |= (uint8_t)(i % 2 ? v : v << 4);
	}
	return (int)n;
}

void cairn_hash(const void *data, size_t len, struct cairn_id *out)
{
	XXH128_hash_t h = XXH3_128bits(data, len);
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, h);
	memcpy(out->b, c.digest, CAIRN_ID_LEN);
}

int cairn_buf_reserve(struct cairn_buf *b, size_t extra)
{
	size_t need = b->len + extra;
	size_t cap;
	uint8_t *p;

	if (need < b->len)
		return -ENOMEM;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int cairn_buf_append(struct cairn_buf *b, const void *data, size_t len)
{
	int ret = cairn_buf_reserve(b, len);

	if (ret)
		return ret;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

void cairn_buf_release(struct cairn_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static _Thread_local char errmsg[1024];

#define ELIDED "..."
#define ELIDE_KEEP 24 /* bytes of a word that always stay */

/*
 * Shortens s (len bytes) until it fits in cap bytes with its NUL: each round
 * takes the middle out of the longest run of non-blank bytes. Cuts fall on
 * UTF-8 character boundaries. Returns the new length.
 */
static size_t elide(char *s, size_t len, size_t cap)
{
	while (len >= cap) {
		size_t best = 0, best_len = 0, excess = len - (cap - 1), keep, head, tail;

		for (size_t i = 0; i < len;) {
			size_t j = i;

			while (j < len && s[j] != ' ')
				j++;
			if (j - i > best_len) {
				best = i;
				best_len = j - i;
			}
			i = j + 1;
		}
		if (best_len < ELIDE_KEEP + sizeof(ELIDED) - 1 + 1)
			break; /* nothing long enough to shorten: cut the end */
		keep = best_len > excess + sizeof(ELIDED) - 1 + ELIDE_KEEP
			       ? best_len - excess - (sizeof(ELIDED) - 1)
			       : ELIDE_KEEP;
		head = keep / 2;
		tail = keep - head;
		while (head && ((unsigned char)s[best + head] & 0xc0) == 0x80)
			head--;
		while (tail && ((unsigned char)s[best + best_len - tail] & 0xc0) == 0x80)
			tail--;
		memmove(s + best + head + sizeof(ELIDED) - 1, s + best + best_len - tail,
			len - (best + best_len - tail));
		memcpy(s + best + head, ELIDED, sizeof(ELIDED) - 1);
		len -= best_len - (head + sizeof(ELIDED) - 1 + tail);
	}
	if (len >= cap)
		len = cap - 1;
	s[len] = '\0';
	return len;
}

int cairn_err(int ret, const char *fmt, ...)
{
	char small[sizeof(errmsg)], *buf = NULL;
	va_list ap;
	int n;

	/* arguments may point into errmsg: format elsewhere first */
	va_start(ap, fmt);
	n = vasprintf(&buf, fmt, ap);
	va_end(ap);
	if (n < 0) {
		va_start(ap, fmt);
		vsnprintf(small, sizeof(small), fmt, ap);
		va_end(ap);
		memcpy(errmsg, small, sizeof(small));
		return ret;
	}
	elide(buf, (size_t)n, sizeof(errmsg));
	memcpy(errmsg, buf, strlen(buf) + 1);
	free(buf);
	return ret;
}

int cairn_err_too_deep(const char *path)
{
	if (!path)
		return cairn_err(-ELOOP, "the tree is more than %u levels deep (cairn's limit)",
				 CAIRN_DEPTH_MAX);
	return cairn_err(-ELOOP, "'%s' is more than %u levels deep (cairn's limit)", path,
			 CAIRN_DEPTH_MAX);
}

const char *cairn_errmsg(void)
{
	return errmsg;
}

void cairn_err_clear(void)
{
	errmsg[0] = '\0';
}

const char *cairn_strerror(int err, char *buf, size_t len)
{
	/* GNU strerror_r may return a static string instead of filling buf. */
	const char *s = strerror_r(err, buf, len);

	return s ? s : "unknown error";
}

int64_t cairn_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
