/*
 * Stand-in for QEMU's qemu/main-loop.h: bottom halves. Used by the
 * libFuzzer harness of the balloon's queue handler (tests/fuzz/fuzz-
 * balloon-queue.c), which builds hw/virtio/virtio-balloon-fpb.c without
 * QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FUZZ_FAKE_MAIN_LOOP_H
#define FUZZ_FAKE_MAIN_LOOP_H

typedef struct QEMUBH QEMUBH;
typedef void QEMUBHFunc(void *opaque);
typedef struct MemReentrancyGuard {
    bool engaged_in_io;
} MemReentrancyGuard;

QEMUBH *qemu_bh_new_guarded(QEMUBHFunc *cb, void *opaque,
                            MemReentrancyGuard *guard);
void qemu_bh_schedule(QEMUBH *bh);
void qemu_bh_delete(QEMUBH *bh);

#endif
