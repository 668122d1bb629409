#!/usr/bin/python3
"""qemu-fph's main job: boot a guest, migrate it over TCP to a second QEMU on
this machine, and print time, downtime and bytes sent, with a check of the
guest's memory on the destination.

The guest is QEMU's own migration-test boot sector (from the base tree): it
keeps incrementing one byte in every page of 1-100 MiB, so the destination's
memory must show one consistent sweep, which is checked page by page.
"""

import argparse
import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp import QEMU, QMPError, kvm_usable    # noqa: E402

PAGE = 4096
TEST_MEM_START = 1 << 20
TEST_MEM_END = 100 << 20


def progress(msg):
    print('.. ' + msg, flush=True)


def make_boot_sector(build, path):
    """Write the migration-test boot sector of the base tree to path."""
    header = os.path.join(build, 'src', 'tests', 'migration', 'i386',
                          'a-b-bootblock.h')
    with open(header) as f:
        text = f.read()
    body = text[text.index('{') + 1:text.index('}')]
    data = bytes(int(x, 16) for x in re.findall(r'0x[0-9a-fA-F]{2}', body))
    if len(data) != 512:
        sys.exit('demo: unexpected boot sector size %d in %s' %
                 (len(data), header))
    with open(path, 'wb') as f:
        f.write(data)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def guest_args(accel, boot, mem_mb, extra):
    return ['-accel', accel, '-M', 'q35', '-m', '%dM' % mem_mb,
            '-drive', 'file=%s,format=raw,if=ide' % boot] + extra


def pick_accel(qemu, boot, workdir):
    """KVM when it really runs the guest here, TCG otherwise."""
    if not kvm_usable():
        return 'tcg', '/dev/kvm is not usable'
    vm = QEMU(qemu, guest_args('kvm', boot, 150, []), 'kvm-probe', workdir)
    try:
        if vm.wait_serial('B', 15):
            return 'kvm', 'the guest runs under KVM'
        return 'tcg', 'KVM did not run the guest within 15 s'
    finally:
        vm.close()


def check_sweep(mem):
    """Check the boot sector's sweep like migration-test does: every page's
    first byte equals the previous page's, but at one edge where it is one
    less.  Returns (pages checked, pages wrong)."""
    first = mem[0]
    last = first
    hit_edge = False
    bad = 0
    pages = len(mem) // PAGE
    for i in range(1, pages):
        b = mem[i * PAGE]
        if b != last:
            if ((b + 1) & 0xff) == last and not hit_edge:
                hit_edge = True
            else:
                bad += 1
        last = b
    return pages, bad


def migrate_once(args, accel, boot, mode_name, extra):
    workdir = os.path.join(args.build, 'demo')
    port = free_port()
    common = guest_args(accel, boot, args.mem, extra)
    src = QEMU(args.qemu, common, 'source', workdir)
    dst = QEMU(args.qemu, common + ['-incoming', 'defer'], 'destination',
               workdir)
    try:
        if not src.wait_serial('B', 30):
            raise QMPError('the source guest did not start: ' +
                           src.log_text())
        time.sleep(args.settle)
        for vm in (src, dst):
            vm.cmd('migrate-set-parameters',
                   **{'max-bandwidth': args.bandwidth << 20})
        dst.cmd('migrate-incoming', uri='tcp:127.0.0.1:%d' % port)
        progress('%s: migrating %d MiB guest (%s)' %
                 (mode_name, args.mem, accel))
        start = time.monotonic()
        src.cmd('migrate', uri='tcp:127.0.0.1:%d' % port)
        while True:
            info = src.cmd('query-migrate')
            if info.get('status') in ('completed', 'failed', 'cancelled'):
                break
            if time.monotonic() - start > args.timeout:
                src.cmd('migrate_cancel')
                raise QMPError('migration did not finish in %d s' %
                               args.timeout)
            time.sleep(0.05)
        if info['status'] != 'completed':
            raise QMPError('migration %s: %s' %
                           (info['status'], info.get('error-desc', '')))
        # The destination guest must run on after the switch-over.
        mark = len(dst.serial())
        alive = dst.wait_serial('B', 15, start=mark)
        dst.cmd('stop')
        dump = os.path.join(workdir, 'destination.mem')
        dst.cmd('pmemsave', val=TEST_MEM_START,
                size=TEST_MEM_END - TEST_MEM_START, filename=dump)
        with open(dump, 'rb') as f:
            checked, wrong = check_sweep(f.read())
        os.unlink(dump)
        ram = info['ram']
        return {
            'mode': mode_name, 'accel': accel, 'guest_mib': args.mem,
            'total_ms': info.get('total-time'),
            'downtime_ms': info.get('downtime'),
            'mb_sent': round(ram['transferred'] / 1e6, 1),
            'zero_pages': ram.get('duplicate', 0),
            'pages_checked': checked, 'pages_wrong': wrong,
            'guest_alive': alive,
        }
    finally:
        src.close()
        dst.close()


def print_table(rows):
    cols = [('mode', 'mode'), ('accel', 'accel'), ('total_ms', 'total ms'),
            ('downtime_ms', 'downtime ms'), ('mb_sent', 'MB sent'),
            ('zero_pages', 'zero pages'), ('pages_checked', 'pages checked'),
            ('pages_wrong', 'pages wrong'), ('guest_alive', 'guest alive')]
    widths = [max(len(h), *(len(str(r[k])) for r in rows)) for k, h in cols]
    print('  '.join(h.ljust(w) for (_, h), w in zip(cols, widths)))
    for r in rows:
        print('  '.join(str(r[k]).ljust(w) for (k, _), w in zip(cols, widths)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--qemu', required=True)
    parser.add_argument('--build', required=True)
    parser.add_argument('--mem', type=int, default=512,
                        help='guest RAM in MiB (default 512)')
    parser.add_argument('--bandwidth', type=int, default=1024,
                        help='max-bandwidth in MiB/s (default 1024)')
    parser.add_argument('--settle', type=float, default=1.0,
                        help='seconds the guest runs before migrating')
    parser.add_argument('--timeout', type=int, default=300)
    parser.add_argument('--accel', choices=['auto', 'kvm', 'tcg'],
                        default='auto')
    args = parser.parse_args()

    workdir = os.path.join(args.build, 'demo')
    os.makedirs(workdir, exist_ok=True)
    boot = os.path.join(workdir, 'bootsect.img')
    make_boot_sector(args.build, boot)
    if args.accel == 'auto':
        accel, why = pick_accel(args.qemu, boot, workdir)
    else:
        accel, why = args.accel, 'asked for'
    progress('accelerator: %s (%s)' % (accel, why))

    rows = [migrate_once(args, accel, boot, 'hints off', [])]
    print()
    print('Guest: migration-test boot sector, %d MiB, %s; link: tcp '
          'loopback, max-bandwidth %d MiB/s' % (args.mem, accel,
                                                 args.bandwidth))
    print_table(rows)
    with open(os.path.join(workdir, 'results.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    print('(also in %s)' % os.path.join(workdir, 'results.json'))
    failed = [r for r in rows if r['pages_wrong'] or not r['guest_alive']]
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
