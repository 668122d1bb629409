/*
 * Unit tests for host-mem-holes.c: which pages of memory the host shows
 * hold no data, on memory of the test's own, as QEMU maps guest RAM.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "host-mem-holes.h"

#include <fcntl.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#define NPAGES 64

static size_t page;

static bool is_hole(const uint8_t *holes, unsigned int i)
{
    return holes[i / 8] & (1 << (i % 8));
}

/* Holes as a string, one character per page: '.' hole, 'D' data */
static void holes_str(const uint8_t *holes, char *out)
{
    unsigned int i;

    for (i = 0; i < NPAGES; i++) {
        out[i] = is_hole(holes, i) ? '.' : 'D';
    }
    out[NPAGES] = '\0';
}

static void write_pages(uint8_t *mem, unsigned int first, unsigned int n)
{
    memset(mem + first * page, 0x5a, n * page);
}

/*
 * Anonymous memory as QEMU allocates guest RAM: written pages hold data,
 * never-touched and discarded ones do not, and a page only read maps the
 * zero page, which counts as data (a cheap miss, never a wrong skip).
 */
static void test_anonymous(void **state)
{
    uint8_t holes[NPAGES / 8] = { 0 };
    char got[NPAGES + 1];
    HostMem m = { .fd = -1, .shared = false };

    m.page_size = page;
    m.host = mmap(NULL, NPAGES * page, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m.host != MAP_FAILED);
    /* No transparent huge page may fill the untouched pages in. */
    madvise(m.host, NPAGES * page, MADV_NOHUGEPAGE);

    write_pages(m.host, 0, 32);
    assert_int_equal(madvise(m.host + 8 * page, 8 * page, MADV_DONTNEED),
                     0);
    /* A guest that reads a page the balloon took */
    assert_int_equal(m.host[40 * page], 0);

    assert_true(host_mem_find_holes(&m, 0, NPAGES, holes));
    holes_str(holes, got);
    assert_string_equal(got, "DDDDDDDD........DDDDDDDDDDDDDDDD"
                             "........D.......................");

    /* An offset into the block: bit 0 is the page at the offset */
    memset(holes, 0, sizeof(holes));
    assert_true(host_mem_find_holes(&m, 6 * page, 4, holes));
    assert_int_equal(holes[0], 0xc);

    munmap(m.host, NPAGES * page);
}

/* memfd shared, as memory-backend-memfd: holes are the file's */
static void test_shared_file(void **state)
{
    uint8_t holes[NPAGES / 8] = { 0 };
    char got[NPAGES + 1];
    HostMem m = { .shared = true };

    m.page_size = page;
    m.fd = memfd_create("test-host-mem-holes", MFD_CLOEXEC);
    assert_true(m.fd >= 0);
    assert_int_equal(ftruncate(m.fd, NPAGES * page), 0);
    m.host = mmap(NULL, NPAGES * page, PROT_READ | PROT_WRITE, MAP_SHARED,
                  m.fd, 0);
    assert_true(m.host != MAP_FAILED);

    write_pages(m.host, 0, 32);
    write_pages(m.host, 63, 1);
    /* What ram_block_discard_range() does for memory with a file */
    assert_int_equal(fallocate(m.fd, FALLOC_FL_PUNCH_HOLE |
                               FALLOC_FL_KEEP_SIZE, 8 * page, 8 * page), 0);

    assert_true(host_mem_find_holes(&m, 0, NPAGES, holes));
    holes_str(holes, got);
    assert_string_equal(got, "DDDDDDDD........DDDDDDDDDDDDDDDD"
                             "...............................D");

    /* A window that starts and ends inside holes */
    memset(holes, 0, sizeof(holes));
    assert_true(host_mem_find_holes(&m, 10 * page, 4, holes));
    assert_int_equal(holes[0], 0xf);

    munmap(m.host, NPAGES * page);
    close(m.fd);
}

/* What it cannot tell, it says so, and marks nothing */
static void test_cannot_tell(void **state)
{
    uint8_t holes[NPAGES / 8] = { 0 };
    HostMem m = { .shared = false };
    char path[] = "/tmp/test-host-mem-holes-XXXXXX";

    m.page_size = page;
    m.fd = mkstemp(path);
    assert_true(m.fd >= 0);
    unlink(path);
    assert_int_equal(ftruncate(m.fd, NPAGES * page), 0);
    m.host = mmap(NULL, NPAGES * page, PROT_READ | PROT_WRITE, MAP_PRIVATE,
                  m.fd, 0);
    assert_true(m.host != MAP_FAILED);

    /* A private copy of a file: its holes may hide written pages */
    assert_false(host_mem_find_holes(&m, 0, NPAGES, holes));
    assert_int_equal(holes[0], 0);
    close(m.fd);

    /*
     * A device whose lseek ignores SEEK_DATA and answers 0 (as device DAX
     * does): not a file of tmpfs, not looked at, and no endless loop
     */
    m.fd = open("/dev/null", O_RDWR);
    assert_true(m.fd >= 0);
    m.shared = true;
    assert_false(host_mem_find_holes(&m, 0, NPAGES, holes));
    assert_int_equal(holes[0], 0);
    close(m.fd);

    /* Anonymous shared memory (memory-backend-ram,share=on) */
    m.fd = -1;
    assert_false(host_mem_find_holes(&m, 0, NPAGES, holes));

    /* More than one read of the page map at a time */
    m.shared = false;
    assert_false(host_mem_find_holes(&m, 0, HOST_MEM_HOLES_MAX + 1, holes));
    assert_int_equal(holes[0], 0);

    munmap(m.host, NPAGES * page);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anonymous),
        cmocka_unit_test(test_shared_file),
        cmocka_unit_test(test_cannot_tell),
    };

    page = qemu_real_host_page_size();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
