/*
 * Stand-in for QEMU's qom/object.h: objects and their properties. Used by
 * the libFuzzer harness of the balloon's queue handler (tests/fuzz/fuzz-
 * balloon-queue.c), which builds hw/virtio/virtio-balloon-fpb.c without
 * QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FUZZ_FAKE_OBJECT_H
#define FUZZ_FAKE_OBJECT_H

typedef struct Object Object;

#define OBJECT(obj) ((Object *)(obj))
#define OBJ_PROP_FLAG_READ 1

void object_property_add_uint64_ptr(Object *obj, const char *name,
                                    const uint64_t *v, int flags);

#endif
