/*
 * Stand-in for QEMU's qemu/osdep.h, so the pure-logic files of qemu-fph
 * build and run in the unit tests without the QEMU tree.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FAKE_QEMU_OSDEP_H
#define FAKE_QEMU_OSDEP_H

/* As QEMU's own: glibc's extensions (SEEK_DATA, memfd_create) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

/* The host's page size, as QEMU's osdep.h gives it */
#include <unistd.h>
static inline uintptr_t qemu_real_host_page_size(void)
{
    return sysconf(_SC_PAGE_SIZE);
}

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(x) (sizeof(x) / sizeof((x)[0]))
#endif

#endif
