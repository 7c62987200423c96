/* SPDX-License-Identifier: MIT */
/*
 * remote.h - reaching a remote store: its address checked, its credentials
 * read, an S3 client made, and the remote's marker object checked.
 *
 * A remote is "s3://BUCKET[/PREFIX]" at an endpoint; every object cairn
 * keeps there has a key under PREFIX/ (layout.h). Credentials come from
 * the remote's credentials file (0600, the caller's or root's) when it has
 * one, else from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; they are
 * never written to the store. A process that serves mounts passes
 * CAIRN_REMOTE_NO_ENV: it reads the file only, never the environment of
 * whoever started it.
 */
#ifndef CAIRN_REMOTE_H
#define CAIRN_REMOTE_H

#include <stdbool.h>

#include "remotes.h"
#include "s3.h"

#define CAIRN_REMOTE_TIMEOUT_MS 30000u /* default for --timeout */

/* A remote, connected (nothing is sent until a request is). */
struct cairn_remote_conn {
	struct cairn_remote_rec rec; /* owned */
	char *bucket;
	char *prefix;                /* "" or "PREFIX/" */
	struct cairn_s3 *s3;
};

enum cairn_remote_flags_open {
	CAIRN_REMOTE_NO_ENV = 1u << 0, /* credentials from the file only */
};

/*
 * Checks "s3://BUCKET[/PREFIX]": BUCKET 3..63 of [a-z0-9.-], starting and
 * ending with a letter or digit; PREFIX of [A-Za-z0-9._-] segments joined
 * by '/', none of them "." or "..", at most 512 bytes. Sets *bucket and
 * *prefix ("" or "PREFIX/"), malloc'ed. -EINVAL with a message.
 */
int cairn_remote_url_parse(const char *url, char **bucket, char **prefix);

/* Checks an endpoint: "http://" or "https://" and a host. -EINVAL with a message. */
int cairn_remote_endpoint_check(const char *endpoint);

/*
 * Reads the access key and secret: from file (when non-empty: it must be
 * a regular file of mode 0600 or stricter, owned by the caller or root;
 * lines "aws_access_key_id = X" and "aws_secret_access_key = Y", as in
 * ~/.aws/credentials, or "AWS_ACCESS_KEY_ID=X" and "AWS_SECRET_ACCESS_KEY=Y")
 * or, without a file and unless CAIRN_REMOTE_NO_ENV, from the environment.
 * Both malloc'ed; the caller wipes and frees them. -errno with a message.
 */
int cairn_remote_credentials(const char *file, unsigned flags, char **access, char **secret);

/*
 * Connects to a remote: takes ownership of rec (released on failure too),
 * reads its credentials and makes the client. -errno with a message.
 */
int cairn_remote_connect(struct cairn_remote_rec *rec, unsigned flags,
			 struct cairn_remote_conn **out);
/* Looks name up in the store and connects. */
int cairn_remote_open(struct cairn_store *s, const char *name, unsigned flags,
		      struct cairn_remote_conn **out);
void cairn_remote_conn_free(struct cairn_remote_conn *c);

/* PREFIX/rest into out (at most cap bytes with the NUL). -ENAMETOOLONG. */
int cairn_remote_key(const struct cairn_remote_conn *c, const char *rest, char *out, size_t cap);

/*
 * Makes sure the remote holds cairn's marker object (layout.h) of this
 * build's format and of a store made with p (its chunking), creating it
 * when absent (with create) and refusing a remote written by an
 * incompatible format or chunking. -errno with a message.
 */
int cairn_remote_check_marker(struct cairn_remote_conn *c, const struct cairn_store_params *p,
			      bool create);

#endif
