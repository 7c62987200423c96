/* SPDX-License-Identifier: MIT */
/*
 * util.h - small helpers shared by every module: ids, little-endian
 * access, cleanup attributes and the error-message convention.
 *
 * Errors: functions return 0 or -errno. Where a caller needs more than an
 * errno to tell a person what failed, the failing function also leaves a
 * message with cairn_err() (thread-local, like dlerror()); the front end
 * prints it once. Messages are lowercase with no full stop.
 */
#ifndef CAIRN_UTIL_H
#define CAIRN_UTIL_H

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format.h"

/* A 128-bit content id. */
struct cairn_id {
	uint8_t b[CAIRN_ID_LEN];
};

#define CAIRN_ID_HEX_LEN (2 * CAIRN_ID_LEN)

static inline bool cairn_id_eq(const struct cairn_id *a, const struct cairn_id *b)
{
	return memcmp(a->b, b->b, CAIRN_ID_LEN) == 0;
}

static inline bool cairn_id_is_zero(const struct cairn_id *a)
{
	static const uint8_t zero[CAIRN_ID_LEN];
	return memcmp(a->b, zero, CAIRN_ID_LEN) == 0;
}

/* Writes 32 hex digits and a NUL into out[CAIRN_ID_HEX_LEN + 1]. */
void cairn_id_hex(const struct cairn_id *id, char *out);

/* Parses up to 32 hex digits; returns the number of digits or -EINVAL. */
int cairn_id_parse_prefix(const char *s, struct cairn_id *id);

/* XXH3-128 of a buffer, written high half first. */
void cairn_hash(const void *data, size_t len, struct cairn_id *out);

/* Little-endian loads and stores at any alignment. */
static inline uint16_t cairn_le16(const void *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static inline uint32_t cairn_le32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t cairn_le64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static inline void cairn_put16(void *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void cairn_put32(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void cairn_put64(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

/* Field access for the packed structs of format.h. */
#define CAIRN_GET(field) _Generic((field), \
	uint8_t: (field), \
	uint16_t: le16toh(field), \
	int32_t: (int32_t)le32toh((uint32_t)(field)), \
	uint32_t: le32toh(field), \
	int64_t: (int64_t)le64toh((uint64_t)(field)), \
	uint64_t: le64toh(field))
#define CAIRN_SET(field, v) ((field) = _Generic((field), \
	uint8_t: (uint8_t)(v), \
	uint16_t: htole16((uint16_t)(v)), \
	int32_t: (int32_t)htole32((uint32_t)(v)), \
	uint32_t: htole32((uint32_t)(v)), \
	int64_t: (int64_t)htole64((uint64_t)(v)), \
	uint64_t: htole64((uint64_t)(v))))

/* A growable byte buffer. */
struct cairn_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

int cairn_buf_reserve(struct cairn_buf *b, size_t extra);
int cairn_buf_append(struct cairn_buf *b, const void *data, size_t len);
void cairn_buf_release(struct cairn_buf *b);

/*
 * Error message for people, per thread. Returns ret, for tail calls. A
 * message longer than the buffer (1 KiB) loses the middle of its longest
 * words (paths, most likely) rather than its end, so the reason that ends
 * it survives however long a path it names.
 */
int cairn_err(int ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The one error for a tree deeper than CAIRN_DEPTH_MAX at path, or NULL (format.h). -ELOOP. */
int cairn_err_too_deep(const char *path);
/* The last message of this thread, or "" if none. */
const char *cairn_errmsg(void);
void cairn_err_clear(void);

/* strerror_r that always returns a usable string. */
const char *cairn_strerror(int err, char *buf, size_t len);

/* Current wall-clock time in nanoseconds. */
int64_t cairn_now_ns(void);

/* Cleanup helpers. */
static inline void cairn_freep(void *p)
{
	free(*(void **)p);
}

static inline void cairn_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

#define cleanup_free __attribute__((cleanup(cairn_freep)))
#define cleanup_fd __attribute__((cleanup(cairn_closep)))

static inline void *cairn_steal(void *pp)
{
	void **p = pp;
	void *v = *p;
	*p = NULL;
	return v;
}

#define steal_pointer(pp) cairn_steal(pp)

static inline int cairn_steal_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
