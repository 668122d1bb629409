/*
 * Which pages of guest RAM the host proves hold no data (qemu-fph).
 * See host-mem-holes.h.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "host-mem-holes.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

/* Documentation/admin-guide/mm/pagemap.rst of Linux */
#define PAGEMAP_PRESENT (1ULL << 63)
#define PAGEMAP_SWAPPED (1ULL << 62)

static void mark_holes(uint8_t *holes, uint64_t first, uint64_t n)
{
    uint64_t i;

    for (i = first; i < first + n; i++) {
        holes[i / 8] |= 1 << (i % 8);
    }
}

/* Opened once and kept: it is read on every migration. */
static int pagemap_fd = -1;

static bool anonymous_holes(const HostMem *m, uint64_t offset,
                            uint64_t npages, uint8_t *holes)
{
    uint64_t entries[HOST_MEM_HOLES_MAX];
    uintptr_t vaddr = (uintptr_t)m->host + offset;
    size_t want = npages * sizeof(entries[0]);
    uint64_t i;

    if (npages > HOST_MEM_HOLES_MAX || vaddr % m->page_size) {
        return false;
    }
    if (pagemap_fd < 0) {
        pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        if (pagemap_fd < 0) {
            return false;
        }
    }
    /* One 64-bit entry per host page of the address space */
    if (pread(pagemap_fd, entries, want,
              vaddr / m->page_size * sizeof(entries[0])) != (ssize_t)want) {
        return false;
    }
    for (i = 0; i < npages; i++) {
        if (!(entries[i] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED))) {
            mark_holes(holes, i, 1);
        }
    }
    return true;
}

static bool file_holes(const HostMem *m, uint64_t offset, uint64_t npages,
                       uint8_t *holes)
{
    off_t start = offset, end = offset + npages * m->page_size;
    off_t pos = start, data, hole;

    if (offset % m->page_size) {
        return false;
    }
    while (pos < end) {
        data = lseek(m->fd, pos, SEEK_DATA);
        if (data < 0) {
            if (errno != ENXIO) {
                return false;
            }
            data = end;             /* no data after pos */
        } else if (data < pos) {
            return false;           /* not an answer to SEEK_DATA */
        }
        data = MIN(data, end);
        /* Only whole pages: a hole ending mid-page leaves that page. */
        if (data - pos >= (off_t)m->page_size) {
            mark_holes(holes, (pos - start) / m->page_size,
                       (data - pos) / m->page_size);
        }
        if (data >= end) {
            break;
        }
        hole = lseek(m->fd, data, SEEK_HOLE);
        if (hole <= data) {
            return false;           /* an error, or no progress */
        }
        /* The next hole may start mid-page: it begins at the next page. */
        pos = (hole + m->page_size - 1) / m->page_size * m->page_size;
    }
    return true;
}

/*
 * A regular file of tmpfs (memfd is one): a hole there reads as zero
 * wherever the file is mapped, and even a page only read is allocated.  A
 * disk file system may keep a hole under a page cached for a read, and a
 * device may not answer SEEK_DATA at all.
 */
static bool file_is_tmpfs(int fd)
{
    struct statfs fs;
    struct stat st;

    return !fstat(fd, &st) && S_ISREG(st.st_mode) && !fstatfs(fd, &fs) &&
           fs.f_type == TMPFS_MAGIC;
}

bool host_mem_find_holes(const HostMem *m, uint64_t offset, uint64_t npages,
                         uint8_t *holes)
{
    if (m->fd < 0 && !m->shared) {
        return anonymous_holes(m, offset, npages, holes);
    }
    if (m->fd >= 0 && m->shared && file_is_tmpfs(m->fd)) {
        return file_holes(m, offset, npages, holes);
    }
    return false;
}
