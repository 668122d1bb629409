/*
 * Stand-in for QEMU's migration/vmstate.h: the descriptions the device
 * declares. Used by the libFuzzer harness of the balloon's queue handler
 * (tests/fuzz/fuzz-balloon-queue.c), which builds
 * hw/virtio/virtio-balloon-fpb.c without QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FUZZ_FAKE_VMSTATE_H
#define FUZZ_FAKE_VMSTATE_H

typedef struct QEMUFile QEMUFile;
typedef struct JSONWriter JSONWriter;
typedef struct VMStateField VMStateField;

typedef struct VMStateInfo {
    const char *name;
    int (*get)(QEMUFile *f, void *pv, size_t size,
               const VMStateField *field);
    int (*put)(QEMUFile *f, void *pv, size_t size,
               const VMStateField *field, JSONWriter *vmdesc);
} VMStateInfo;

enum { VMS_SINGLE = 0x001 };

struct VMStateField {
    const char *name;
    size_t offset;
    size_t size;
    const VMStateInfo *info;
    int flags;
    bool (*field_exists)(void *opaque, int version_id);
};

typedef struct VMStateDescription {
    const char *name;
    int version_id;
    int minimum_version_id;
    bool (*needed)(void *opaque);
    int (*pre_save)(void *opaque);
    int (*post_load)(void *opaque, int version_id);
    const VMStateField *fields;
} VMStateDescription;

#define VMSTATE_FIELD_(_f, _s) { .name = #_f, .offset = offsetof(_s, _f) }
#define VMSTATE_UINT32(_f, _s) VMSTATE_FIELD_(_f, _s)
#define VMSTATE_UINT64(_f, _s) VMSTATE_FIELD_(_f, _s)
#define VMSTATE_BOOL(_f, _s) VMSTATE_FIELD_(_f, _s)
#define VMSTATE_END_OF_LIST() { }

#endif
