/*
 * Stand-in for QEMU's qemu/error-report.h. Used by the libFuzzer harness of
 * the balloon's queue handler (tests/fuzz/fuzz-balloon-queue.c), which
 * builds hw/virtio/virtio-balloon-fpb.c without QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FUZZ_FAKE_ERROR_REPORT_H
#define FUZZ_FAKE_ERROR_REPORT_H

void error_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void warn_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

#endif
