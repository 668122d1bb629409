/*
 * Stand-in for QEMU's sysemu/runstate.h: VM state change handlers. Used by
 * the libFuzzer harness of the balloon's queue handler (tests/fuzz/fuzz-
 * balloon-queue.c), which builds hw/virtio/virtio-balloon-fpb.c without
 * QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FUZZ_FAKE_RUNSTATE_H
#define FUZZ_FAKE_RUNSTATE_H

typedef int RunState;
typedef struct VMChangeStateEntry VMChangeStateEntry;
typedef void VMChangeStateHandler(void *opaque, bool running,
                                  RunState state);

VMChangeStateEntry *qemu_add_vm_change_state_handler(VMChangeStateHandler *cb,
                                                     void *opaque);
void qemu_del_vm_change_state_handler(VMChangeStateEntry *e);

#endif
