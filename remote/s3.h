/* SPDX-License-Identifier: MIT */
/*
 * s3.h - an S3 client (path-style, SigV4) on libcurl's multi interface.
 *
 * The one idea: every request is a small record in a queue that one loop
 * drives. cairn_s3_run() starts queued requests while fewer than
 * max_inflight are running, lets libcurl move them all at once over
 * kept-alive connections (the multi handle's connection cache), and finishes
 * each by calling its done callback once, on the loop's thread, after any
 * retries. A request that fails in a way a retry can cure (HTTP 5xx or 429,
 * a reset or refused connection, no progress for timeout_ms) is tried again
 * after an exponential backoff with jitter, at most attempts times and
 * never past its deadline.
 *
 * This module is the only one that talks to libcurl. Its codes are
 * translated here, once: HTTP 404 -> -ENOENT, 401/403 -> -EACCES, 412 (a
 * conditional PUT lost) and 409 -> -EEXIST, 400 -> -EINVAL, 416 -> -ERANGE,
 * 5xx/429 after the last try -> -EIO, a refused connection -> -ECONNREFUSED,
 * no progress or a deadline passed -> -ETIMEDOUT, a certificate that does
 * not verify or another TLS failure -> -EPROTO, a body over max_len ->
 * -EFBIG, an unknown host -> -EHOSTUNREACH, anything else -> -EIO. Each
 * result also carries a message for people (the S3 error code, or
 * libcurl's own words).
 *
 * Requests are signed with libcurl's CURLOPT_AWS_SIGV4; the payload hash
 * header (x-amz-content-sha256) is the SHA-256 of a PUT's body (nettle),
 * so the gateway checks what arrived, and the hash of nothing otherwise.
 *
 * Threads: a client belongs to the thread that calls cairn_s3_run();
 * only cairn_s3_wakeup() may be called from other threads.
 */
#ifndef CAIRN_S3_H
#define CAIRN_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct cairn_s3;

struct cairn_s3_config {
	const char *endpoint;   /* "http[s]://host[:port]" */
	const char *bucket;     /* 3..63 of [a-z0-9.-] */
	const char *region;     /* NULL: "us-east-1" */
	const char *access_key;
	const char *secret_key;
	const char *ca_file;    /* PEM; NULL: the system's CA store */
	unsigned timeout_ms;    /* an attempt with no progress this long fails; 0: 30 s */
	unsigned max_inflight;  /* requests running at once; 0: 16 */
	unsigned attempts;      /* tries of one request; 0: 4 */
};

enum cairn_s3_method {
	CAIRN_S3_GET = 1,
	CAIRN_S3_PUT,
	CAIRN_S3_HEAD,
	CAIRN_S3_DELETE,
};

/* What a request came to; passed to its done callback. */
struct cairn_s3_result {
	int err;             /* 0 or -errno, as in the table above */
	long status;         /* HTTP status of the last attempt, 0 if none answered */
	const char *msg;     /* for people: "" on success */
	const uint8_t *body; /* GET: the body (err == 0); valid during the callback */
	size_t len;
	uint64_t size;       /* HEAD: the object's size; GET: the whole object's size */
	unsigned attempts;   /* tries it took */
};

typedef void (*cairn_s3_done_fn)(void *arg, const struct cairn_s3_result *r);

struct cairn_s3_request {
	enum cairn_s3_method method;
	const char *key;       /* object key ("" or NULL: the bucket itself); copied */
	const char *query;     /* canonical query string (sorted, encoded) or NULL; copied */
	const void *body;      /* PUT: borrowed until done is called */
	size_t body_len;
	bool if_none_match;    /* PUT: only create (an existing object: -EEXIST) */
	uint64_t range_off;    /* GET: bytes [off, off + len); len 0: the whole object */
	uint64_t range_len;
	size_t max_len;        /* GET: a longer body is -EFBIG; 0: 64 MiB */
	int64_t deadline_ns;   /* CLOCK_MONOTONIC; 0: none. No try starts or runs past it */
	cairn_s3_done_fn done; /* may submit further requests */
	void *arg;
};

struct cairn_s3_stats {
	uint64_t requests;       /* finished requests */
	uint64_t retries;        /* tries after the first */
	uint64_t bytes_sent;     /* PUT bodies of successful requests */
	uint64_t bytes_received; /* GET bodies of successful requests */
	uint64_t connects;       /* new connections made (the rest were kept alive) */
};

/*
 * Makes a client. Strings of c are copied. Returns 0 or -errno with a
 * message (-EINVAL for an endpoint that is not http:// or https://).
 */
int cairn_s3_new(const struct cairn_s3_config *c, struct cairn_s3 **out);
/* Frees the client; requests still pending finish with -ECANCELED first. */
void cairn_s3_free(struct cairn_s3 *s);

/* Queues a request. 0 or -ENOMEM (then done is never called). */
int cairn_s3_submit(struct cairn_s3 *s, const struct cairn_s3_request *r);
/*
 * Drives transfers until no request is pending, or for at most timeout_ms
 * (< 0: no limit), or until cairn_s3_wakeup(). Returns 0, or -errno when
 * libcurl itself fails (the requests then finish with that error).
 */
int cairn_s3_run(struct cairn_s3 *s, int timeout_ms);
/* Requests queued or running. */
size_t cairn_s3_pending(const struct cairn_s3 *s);
/* Any thread: makes a cairn_s3_run() that waits return soon. */
void cairn_s3_wakeup(struct cairn_s3 *s);
const struct cairn_s3_stats *cairn_s3_stats(const struct cairn_s3 *s);
/* "s3://bucket at endpoint", for messages; valid for the client's lifetime. */
const char *cairn_s3_name(const struct cairn_s3 *s);

/*
 * One request at a time, for callers with little to do: each submits one
 * request and runs the loop until it is done (other queued requests move
 * too). They return 0 or -errno, with a message (cairn_err()).
 */
/* GET a whole object (at most max_len bytes, 0: 64 MiB) into out (appended). */
int cairn_s3_get(struct cairn_s3 *s, const char *key, size_t max_len, struct cairn_buf *out);
int cairn_s3_put(struct cairn_s3 *s, const char *key, const void *body, size_t len,
		 bool if_none_match);
/* The object's size; -ENOENT when there is none. */
int cairn_s3_head(struct cairn_s3 *s, const char *key, uint64_t *size);
/* Deleting an object that is not there is not an error (as in S3). */
int cairn_s3_delete(struct cairn_s3 *s, const char *key);

/*
 * The bucket: is it there and ours to use (0, -ENOENT when it does not
 * exist, -EACCES with wrong keys)? With create, a missing bucket is made.
 */
int cairn_s3_bucket(struct cairn_s3 *s, bool create);

/*
 * Lists the keys under prefix in key order, all pages (ListObjectsV2),
 * starting after start_after (NULL: from the first). fn is called for each
 * key with its size; a non-zero return stops the listing and is returned.
 * Keys are checked (printable ASCII, at most 1024 bytes); the listing is
 * untrusted like every answer of the remote.
 */
typedef int (*cairn_s3_list_fn)(void *arg, const char *key, uint64_t size);
int cairn_s3_list(struct cairn_s3 *s, const char *prefix, const char *start_after,
		  cairn_s3_list_fn fn, void *arg);

/* CLOCK_MONOTONIC now, in nanoseconds (for deadlines). */
int64_t cairn_s3_clock_ns(void);

#endif
