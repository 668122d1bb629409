/*
 * Stand-in for QEMU's qemu/osdep.h: the C library, glib and the unit tests'
 * basics. Used by the libFuzzer harness of the balloon's queue handler
 * (tests/fuzz/fuzz-balloon-queue.c), which builds
 * hw/virtio/virtio-balloon-fpb.c without QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FUZZ_FAKE_OSDEP_H
#define FUZZ_FAKE_OSDEP_H

#include <errno.h>
#include <inttypes.h>
#include <glib.h>
#include "../../../fph-unit/fake-qemu/qemu/osdep.h"

#ifndef container_of
#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))
#endif

#endif
