/* SPDX-License-Identifier: MIT */
/*
 * fetch.h - fetching lazy chunks from S3 remotes: the fetcher a store's
 * lazy source (store/lazy.h) asks for chunks it knows only by their lazy
 * records.
 *
 * The one idea: one thread per remote owns that remote's S3 client (its
 * kept-alive connections). Readers hand it requests and wake it
 * (cairn_s3_wakeup); it coalesces requests for neighbouring entries of one
 * pack into one ranged GET, runs them all at once, and answers each chunk
 * with cairn_lazy_done() (which verifies the bytes). Every GET has a
 * deadline of the remote's --timeout from when it was asked for, so an
 * answer always comes in bounded time: a remote that is down, slow or
 * gone answers -EIO with why, and the next read asks again.
 *
 * A remote is connected on its first request, with its credentials file
 * only when CAIRN_REMOTE_NO_ENV is given (a daemon serving mounts never
 * reads the environment of whoever started it); a failed connection is
 * tried again on the next request.
 */
#ifndef CAIRN_FETCH_H
#define CAIRN_FETCH_H

#include "store.h"

/*
 * Attaches a fetcher to s (store/lazy.h: cairn_lazy_attach; the store owns
 * it). flags: CAIRN_REMOTE_NO_ENV (remote.h). log, when not NULL, is told
 * of background failures (arg passed back). 0 or -errno.
 */
int cairn_remote_fetcher_attach(struct cairn_store *s, unsigned flags,
				void (*log)(void *arg, const char *msg), void *arg);

#endif
