/* SPDX-License-Identifier: MIT */
/*
 * oci.h - OCI image layouts: reading them into the store (import_oci.c),
 * writing images out as them (export_oci.c), and what both share (oci.c):
 * digests, descriptors, bounded JSON.
 *
 * A layout is a directory: oci-layout, index.json (descriptors of
 * manifests, each named by the org.opencontainers.image.ref.name
 * annotation), and blobs/sha256/HEX, every blob named by the SHA-256 of its
 * bytes. A manifest names a config (whose rootfs.diff_ids are the SHA-256
 * of each layer's uncompressed tar) and its layers, bottom first.
 *
 * SHA-256 is nettle's (libnettle, which libarchive already loads into
 * cairn-archive: no new library in the process, and its x86 SHA-NI and
 * ARMv8 code paths are picked at run time).
 */
#ifndef CAIRN_OCI_H
#define CAIRN_OCI_H

#include <json-c/json.h>
#include <nettle/sha2.h>
#include <stdbool.h>
#include <stdint.h>

#include "writer.h"

#define OCI_REF_ANNOTATION "org.opencontainers.image.ref.name"
#define OCI_LAYOUT_VERSION "1.0.0"

#define OCI_MT_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_MT_LAYER "application/vnd.oci.image.layer.v1.tar"
#define OCI_MT_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_MT_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
/* what skopeo keeps when it copies a Docker image into a layout */
#define DOCKER_MT_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define DOCKER_MT_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define DOCKER_MT_CONFIG "application/vnd.docker.container.image.v1+json"
#define DOCKER_MT_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* JSON documents (index, manifest, config) larger than this are refused. */
#define OCI_JSON_MAX (4u << 20)

/* "sha256:" and 64 lowercase hex digits, and a NUL. */
#define OCI_DIGEST_LEN (7 + 2 * SHA256_DIGEST_SIZE)

/* Writes "sha256:HEX" of what h has hashed (h is reset) into out[OCI_DIGEST_LEN + 1]. */
void oci_digest_finish(struct sha256_ctx *h, char *out);
/* Is d "sha256:" and 64 lowercase hex digits? */
bool oci_digest_valid(const char *d);
/* "blobs/sha256/HEX" for a valid digest, into out[OCI_DIGEST_LEN + 16]. */
void oci_blob_path(const char *digest, char *out, size_t len);

/*
 * Is ref a name the OCI spec allows for org.opencontainers.image.ref.name:
 * components of [A-Za-z0-9] runs joined by one of -._:@+ (or "--"),
 * separated by '/'?
 */
bool oci_ref_valid(const char *ref);

/*
 * Parses a JSON document of len bytes (strict, UTF-8 checked, bounded
 * depth). what names it in messages. Returns the object (json_object_put
 * it) or NULL with a message.
 */
struct json_object *oci_json_parse(const char *buf, size_t len, const char *what);

/* A descriptor: what a manifest or index says about a blob. */
struct oci_desc {
	const char *media_type; /* in the JSON object it came from */
	char digest[OCI_DIGEST_LEN + 1];
	int64_t size;
	const char *ref;        /* the ref.name annotation, or NULL */
};

/* Parses a descriptor object; what names it in messages. 0 or -EINVAL with a message. */
int oci_desc_parse(struct json_object *o, const char *what, struct oci_desc *d);

struct oci_import_opts {
	const char *tag;    /* --tag: the name instead of the ref annotation */
	const char *msg;    /* -m */
	uint64_t max_bytes; /* per layer, as for a tar */
	uint64_t max_entries; /* per layer, as for a tar (0: the default) */
	bool show;          /* progress on stderr */
};

/*
 * Imports the OCI layout in dir: the manifest ref names (index.json's
 * ref.name annotation), or, with ref NULL, every manifest of index.json.
 * Each becomes one image: its layers applied in order (whiteouts too),
 * each its own layer record, tagged by its annotation or o->tag. Every
 * blob's size and SHA-256 digest, and each layer's diff_id, is checked
 * against what names it. Nothing is published until every image has
 * been read. Prints each image id on stdout. Returns 0 or -errno with a
 * message.
 */
int import_oci(struct cairn_writer *w, const char *dir, const char *ref,
	       const struct oci_import_opts *o);

#endif
