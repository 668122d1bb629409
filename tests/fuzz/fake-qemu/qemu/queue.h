/*
 * Stand-in for QEMU's qemu/queue.h: the list entry free-page-hint.h embeds.
 * Used by the libFuzzer harness of the balloon's queue handler
 * (tests/fuzz/fuzz-balloon-queue.c), which builds
 * hw/virtio/virtio-balloon-fpb.c without QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FUZZ_FAKE_QUEUE_H
#define FUZZ_FAKE_QUEUE_H

#define QLIST_ENTRY(type)                                                 \
struct {                                                                  \
    struct type *le_next;                                                 \
    struct type **le_prev;                                                \
}

#endif
