/*
 * Stand-in for QEMU's qemu/timer.h: the realtime clock. Used by the
 * libFuzzer harness of the balloon's queue handler (tests/fuzz/fuzz-
 * balloon-queue.c), which builds hw/virtio/virtio-balloon-fpb.c without
 * QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FUZZ_FAKE_TIMER_H
#define FUZZ_FAKE_TIMER_H

#include <glib.h>

#define QEMU_CLOCK_REALTIME 0

static inline int64_t qemu_clock_get_us(int type)
{
    return g_get_monotonic_time();
}

#endif
