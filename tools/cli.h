/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what the command files of the cairn program share.
 *
 * Each command is a function taking its own argc/argv (argv[0] is the
 * command name) and the global options; it returns the process exit
 * status. Errors are printed once, by cli_fail(), as one line:
 *   cairn: cannot import 'x': what went wrong
 */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "image.h"
#include "store.h"

struct cli {
	const char *store_dir; /* --store, $CAIRN_STORE, or the default */
	bool tty;              /* stderr is a terminal: show progress */
	char **argv;           /* the whole command line, for cli_exec_archive() */
	bool fetch;            /* the command reads chunk bytes (cli_command.fetch) */
};

struct cli_command {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
	const char *usage;   /* arguments, after the command name */
	const char *summary; /* one line */
	const char *help;    /* longer description for --help, or NULL */
	bool archive;        /* needs libarchive: runs in cairn-archive */
	bool remote;         /* needs libcurl: runs in cairn-remote */
	/*
	 * reads chunk bytes: on a store with lazily pulled chunks it runs in
	 * cairn-remote, which fetches them (cli_open)
	 */
	bool fetch;
};

/* Is this the build that links libarchive (cairn-archive)? */
bool cli_has_archive(void);
/* Runs the same command line in cairn-archive, beside this program. Returns only on failure. */
int cli_exec_archive(struct cli *cli);
/* Is this the build that links libcurl (cairn-remote)? */
bool cli_has_remote(void);
/* Runs the same command line in cairn-remote. Returns only on failure. */
int cli_exec_remote(struct cli *cli);
/* The path of prog (cairn-remote, ...) installed beside this program: 0 or -errno. */
int cli_sibling_path(const char *prog, char *path, size_t len);
/* Is prog installed beside this program (and executable)? */
bool cli_sibling_exists(const char *prog);
/*
 * A store was just opened: cairn-remote lets it fetch lazily pulled chunks
 * (remote/fetch.h) with the caller's credentials or the remote's file; the
 * builds without libcurl do nothing (cli_open runs a fetching command in
 * cairn-remote instead). 0 or -errno.
 */
int cli_store_sources(struct cairn_store *s);

/* A usage error unless name is a valid tag; 0 when it is (or is NULL). */
int cli_check_tag(const char *cmd, const char *name);

/* Prints "cairn: " + formatted text + ": " + the library's message if any. */
int cli_fail(int ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints a usage error and the command's usage line; returns 2. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True (and prints the command's help) when argv holds --help or -h. */
bool cli_help(const char *cmd, int argc, char **argv);

/* Opens the store; writers create it when missing. Prints the error. */
int cli_open(struct cli *cli, bool write, struct cairn_store **s);

/* "IMAGE" or "IMAGE:PATH": resolves the image, splits off the path. */
int cli_resolve(struct cairn_txn *t, const char *arg, struct cairn_id *id, const char **path);

/*
 * Tells every running mount of platform name to switch to its current image
 * and prints each one's answer to out (at most 5 s in all); for a writable
 * mount, also which entries of its upper hide paths the switch changed.
 */
void cli_notify_mounts(struct cli *cli, const char *name, FILE *out);

/*
 * A byte count: decimal digits, then K, M, G or T (powers of 1024). With
 * end NULL the whole string must be the count; otherwise *end is set past
 * it. 0, or -EINVAL for anything else (an overflow included).
 */
int cli_parse_bytes(const char *s, const char **end, uint64_t *out);

/*
 * Names in --json output (cli_json.c). A name (path, symlink target, xattr
 * name) is bytes, a JSON string Unicode: cli_json_add_bytes() adds key as
 * the name when it is valid UTF-8, else as the name with each invalid byte
 * replaced by U+FFFD plus key_base64, its exact bytes in base64. The
 * README's "JSON output" section documents this for readers.
 */
struct json_object;
bool cli_utf8_valid(const void *p, size_t len);
void cli_json_add_bytes(struct json_object *obj, const char *key, const void *p, size_t len);
/* The string alone (U+FFFD for invalid bytes), and the base64 of exact bytes. */
struct json_object *cli_json_text(const void *p, size_t len);
struct json_object *cli_json_base64(const void *p, size_t len);

/* Prints a byte string, escaping what a terminal should not see (\xNN, \n, \\). */
void cli_print_escaped(FILE *f, const char *s, size_t len);
/* Formats a byte count as "12.3 MiB". */
const char *cli_bytes(char *buf, size_t len, unsigned long long n);
/* Formats nanoseconds since the epoch as an ISO 8601 UTC time. */
const char *cli_time(char *buf, size_t len, long long ns);

int cmd_commit(struct cli *cli, int argc, char **argv);
int cmd_changes(struct cli *cli, int argc, char **argv);
int cmd_import(struct cli *cli, int argc, char **argv);
int cmd_images(struct cli *cli, int argc, char **argv);
int cmd_tag(struct cli *cli, int argc, char **argv);
int cmd_rmi(struct cli *cli, int argc, char **argv);
int cmd_ls(struct cli *cli, int argc, char **argv);
int cmd_cat(struct cli *cli, int argc, char **argv);
int cmd_stat(struct cli *cli, int argc, char **argv);
int cmd_du(struct cli *cli, int argc, char **argv);
int cmd_diff(struct cli *cli, int argc, char **argv);
int cmd_export(struct cli *cli, int argc, char **argv);
int cmd_fsck(struct cli *cli, int argc, char **argv);
int cmd_mount(struct cli *cli, int argc, char **argv);
int cmd_umount(struct cli *cli, int argc, char **argv);
int cmd_mounts(struct cli *cli, int argc, char **argv);
int cmd_stats(struct cli *cli, int argc, char **argv);
int cmd_daemon(struct cli *cli, int argc, char **argv);
int cmd_upgrade(struct cli *cli, int argc, char **argv);
int cmd_rollback(struct cli *cli, int argc, char **argv);
int cmd_platforms(struct cli *cli, int argc, char **argv);
int cmd_history(struct cli *cli, int argc, char **argv);
int cmd_gc(struct cli *cli, int argc, char **argv);
int cmd_remote(struct cli *cli, int argc, char **argv);
/* gc --remote NAME: runs in cairn-remote (cmd_transfer.c). */
int cli_gc_remote(struct cli *cli, const char *remote, int64_t keep);
int cmd_push(struct cli *cli, int argc, char **argv);
int cmd_pull(struct cli *cli, int argc, char **argv);
int cmd_follow(struct cli *cli, int argc, char **argv);

/* --help texts, defined beside their commands. */
extern const char cmd_diff_help[];
extern const char cmd_du_help[];
extern const char cmd_export_help[];
extern const char cmd_fsck_help[];
extern const char cmd_remote_help[];
extern const char cmd_push_help[];
extern const char cmd_pull_help[];
extern const char cmd_follow_help[];

#endif
