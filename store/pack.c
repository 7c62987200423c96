/* SPDX-License-Identifier: MIT */
/*
 * pack.c - pack file creation and appends.
 */
#include "pack.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>

uint32_t cairn_pack_max(struct cairn_store *s)
{
	char path[4096];
	struct dirent *de;
	uint32_t max = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/packs", cairn_store_dir(s));
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		unsigned id;
		char tail;

		if (sscanf(de->d_name, "%8x.pac%c", &id, &tail) == 2 && tail == 'k' && id > max)
			max = id;
	}
	closedir(d);
	return max;
}

int cairn_pack_write(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int cairn_pack_create(struct cairn_store *s, uint32_t *out)
{
	struct cairn_pack_header h = { .version = CAIRN_FORMAT_VERSION };
	char path[4096], ebuf[128];
	uint32_t id = cairn_pack_max(s);
	int fd, dfd, ret;

	for (;;) {
		if (++id == 0 || id == UINT32_MAX)
			return cairn_err(-ENOSPC, "no pack ids left");
		cairn_store_pack_path(s, id, path, sizeof(path));
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		if (errno != EEXIST) /* a concurrent writer took it: try the next */
			return cairn_err(-errno, "cannot create pack '%s': %s", path,
					 cairn_strerror(errno, ebuf, sizeof(ebuf)));
	}
	memcpy(h.magic, CAIRN_PACK_MAGIC, sizeof(h.magic));
	CAIRN_SET(h.pack, id);
	ret = cairn_pack_write(fd, &h, sizeof(h), 0);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (ret) {
		close(fd);
		unlink(path);
		return cairn_err(ret, "cannot write pack '%s': %s", path,
				 cairn_strerror(-ret, ebuf, sizeof(ebuf)));
	}
	snprintf(path, sizeof(path), "%s/packs", cairn_store_dir(s));
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	*out = id;
	return fd;
}
