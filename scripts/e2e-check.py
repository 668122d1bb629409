#!/usr/bin/python3
"""End-to-end check for make check: migrate qemu-fph's guest with free page
bitmaps after the used-then-freed, churning and ballooned scenarios, and
once with its RAM on two NUMA nodes; and with free-page-hint-drop-cache
after the guest filled its page cache from a disk.  A case fails on any
wrong page of the guest's data, a kernel complaint on the destination, an
unresponsive guest, or when no free page was skipped; the ballooned case
also when migration did not skip every ballooned page unread (with a QEMU
whose balloon has the ballooned-page bitmap), the page cache case when
fewer pages than the cached disk's were skipped as free or the destination
read the disk wrong.  Prints TAP."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestrun                                   # noqa: E402


def main():
    guestrun.build_guests({'fph'})
    accel, _ = guestrun.pick_accel('fph')
    setup = guestrun.Setup(accel, 768, 10240, timeout=600)
    numa = guestrun.numa_mode('bitmap', setup.mem_mib)
    plan = [('e2e: %s / %s' % (mode.name, sc), sc, mode)
            for sc, mode in (('freed', guestrun.MODES['bitmap']),
                             ('churn', guestrun.MODES['bitmap']),
                             ('freed', numa),
                             ('ballooned', guestrun.MODES['bitmap']),
                             ('pagecache',
                              guestrun.MODES['bitmap-dropcache']))]
    bpb = guestrun.device_has_property(setup.qemu, 'virtio-balloon-pci',
                                       'ballooned-page-bitmap')
    print('1..%d' % len(plan), flush=True)
    failed = 0
    for i, r in enumerate(guestrun.run_loop(setup, plan), 1):
        ok = r.ok() and (r.free_pages_skipped or 0) > 0
        why = '%s, %.0f MB sent, %s free pages skipped (%s)' % (
            r.check(), r.mb_sent, r.free_pages_skipped, accel)
        if r.balloon_mib is not None:
            # 4 KiB pages the balloon holds, which migration must not read
            held = (setup.mem_mib - r.balloon_mib) * 256
            ok = ok and held > 0 and (
                not bpb or (r.balloon_skipped_pages or 0) >= held)
            why += ', %s of %d ballooned pages skipped' % (
                r.balloon_skipped_pages, held)
        disk = guestrun.disk_mib(r.scenario, setup.mem_mib)
        if disk:
            # The guest dropped the disk's cache: its pages went as free
            ok = ok and (r.free_pages_skipped or 0) >= disk * 256
            why += ', %d cached disk pages' % (disk * 256)
        failed += not ok
        print('%s %d e2e/%s/%s # %s' % ('ok' if ok else 'not ok', i,
                                        r.mode, r.scenario,
                                        why.replace('#', '')),
              flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
