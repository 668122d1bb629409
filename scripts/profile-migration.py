#!/usr/bin/python3
"""Where one migration's time goes: runs a scenario in a mode as the
benchmark does (scripts/guestrun.py), with QEMU's trace events of the
source on, and prints query-migrate's figures, the CPU time each thread of
the source took during the migration, and a timeline of the dirty syncs,
hint requests and answers, the pending size and bandwidth estimate, and
the completion.  --perf records the source with perf for the report.

    scripts/profile-migration.py --scenario fragmented --mode bitmap
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestrun                                   # noqa: E402

EVENTS = [
    'free_page_hint_*', 'virtio_balloon_fpb_request',
    'virtio_balloon_fpb_chunk', 'virtio_balloon_fpb_answered',
    'virtio_balloon_fpb_stale',
    'migration_bitmap_sync_start', 'migration_bitmap_sync_end',
    'migrate_pending', 'migrate_transferred', 'migration_thread_low_pending',
    'migration_completion_vm_stop', 'savevm_state_complete_precopy',
    'migration_thread_after_loop', 'ram_save_iterate_big_wait',
    'vm_state_notify', 'savevm_section_start', 'savevm_section_end',
]

LINE = re.compile(r'^(\d+)@(\d+)\.(\d+):(\w+) ?(.*)$')


def thread_times(pid):
    """{(tid, name): run time in ms} of every thread of @pid, from
    schedstat."""
    out = {}
    task_dir = '/proc/%d/task' % pid
    for t in os.listdir(task_dir):
        try:
            with open('%s/%s/comm' % (task_dir, t)) as f:
                name = f.read().strip()
            with open('%s/%s/schedstat' % (task_dir, t)) as f:
                out[(t, name)] = int(f.read().split()[0]) / 1e6
        except (OSError, ValueError, IndexError):
            pass
    return out


def timeline(log, t0, tid_names):
    """The trace log's lines as (ms since @t0, thread, event, args)."""
    rows = []
    with open(log, errors='replace') as f:
        for line in f:
            m = LINE.match(line.strip())
            if not m:
                continue
            t = int(m.group(2)) + int(m.group(3)) / 1e6
            rows.append(((t - t0) * 1000, tid_names.get(m.group(1),
                                                       m.group(1)),
                         m.group(4), m.group(5)))
    return rows


def summarize(rows):
    """Figures from the timeline: the syncs' lengths, the time from
    request to answer, the completion's parts."""
    syncs, starts = [], {}
    for ms, thread, ev, args in rows:
        if ev == 'migration_bitmap_sync_start':
            starts[thread] = ms
        elif ev == 'migration_bitmap_sync_end' and thread in starts:
            syncs.append(ms - starts.pop(thread))
    stop = [ms for ms, _, ev, args in rows if ev == 'vm_state_notify' and
            args.startswith('running 0')]
    low = [ms for ms, _, ev, _ in rows if ev == 'migration_thread_low_pending']
    after = [ms for ms, _, ev, _ in rows if ev == 'migration_thread_after_loop']
    out = ['syncs: %d, %s ms each' % (len(syncs),
                                      ', '.join('%.1f' % s for s in syncs))]
    if low and stop and after:
        out.append('low pending at %.1f ms, vm stopped %.1f ms later, '
                   'loop left %.1f ms after the stop' %
                   (low[-1], stop[-1] - low[-1], after[-1] - stop[-1]))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--scenario', default='fragmented')
    parser.add_argument('--mode', default='bitmap')
    parser.add_argument('--mem', type=int, default=1024)
    parser.add_argument('--hold', type=int, default=None,
                        help='MiB of live data (default: a sixteenth of '
                        'RAM)')
    parser.add_argument('--sparse', action='store_true',
                        help='guest RAM on memory-backend-ram,reserve=off, '
                        'as the benchmark runs its big guests')
    parser.add_argument('--bandwidth', type=int, default=10240)
    parser.add_argument('--param', action='append', default=[],
                        help='NAME=VALUE, a migration parameter (int, or '
                        'true/false)')
    parser.add_argument('--perf', choices=('source', 'destination'),
                        help='perf record -g that QEMU while it migrates')
    parser.add_argument('--qemu', default=guestrun.QEMU_BIN,
                        help='the QEMU binary of both sides')
    parser.add_argument('--dst-no-thp', action='store_true',
                        help='the destination without transparent huge '
                        'pages (prctl PR_SET_THP_DISABLE), to see what its '
                        'first touch of guest RAM costs')
    parser.add_argument('--keep', help='folder for the logs (kept)')
    parser.add_argument('--quiet', action='store_true',
                        help='no timeline, only the figures')
    args = parser.parse_args()

    params = {}
    for p in args.param:
        k, v = p.split('=', 1)
        params[k] = {'true': True, 'false': False}.get(
            v, int(v) if v.lstrip('-').isdigit() else v)

    setup = guestrun.Setup('tcg', args.mem, args.bandwidth, qemu=args.qemu,
                           hold_mib=args.hold, sparse_ram=args.sparse)
    mode = guestrun.MODES[args.mode]
    rundir = args.keep or tempfile.mkdtemp(prefix='fph-prof-')
    os.makedirs(rundir, exist_ok=True)
    dst_qemu = args.qemu
    if args.dst_no_thp:
        dst_qemu = os.path.join(rundir, 'qemu-no-thp')
        with open(dst_qemu, 'w') as f:
            # PR_SET_THP_DISABLE (41) is kept across exec
            f.write('#!/usr/bin/python3\nimport ctypes, os, sys\n'
                    'ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)\n'
                    'os.execv(%r, [%r] + sys.argv[1:])\n' %
                    (args.qemu, args.qemu))
        os.chmod(dst_qemu, 0o755)
    events = os.path.join(rundir, 'events')
    log = os.path.join(rundir, 'trace.log')
    with open(events, 'w') as f:
        f.write('\n'.join(EVENTS) + '\n')
    traced = replace(mode, extra=mode.extra + (
        '-msg', 'timestamp=on', '-trace', 'events=' + events, '-D', log))

    hold, live, prep, during = guestrun.scenario_commands(args.scenario,
                                                          args.mem,
                                                          args.hold)
    disk = md5 = None
    if guestrun.disk_mib(args.scenario, args.mem):
        disk, md5 = guestrun.make_disk(rundir, guestrun.disk_mib(
            args.scenario, args.mem))
    src = guestrun.boot('source', traced, setup, rundir, disk=disk)
    dst = None
    perf = None
    try:
        dst = guestrun.GuestVM('destination', mode, setup, rundir,
                               incoming=True, qemu=dst_qemu, disk=disk)
        guestrun.run_commands(src, prep)
        pid = src.vm.get_pid()
        before = thread_times(pid)
        dpid = dst.vm.get_pid()
        dbefore = thread_times(dpid)
        if args.perf:
            perf = subprocess.Popen(['perf', 'record', '-g', '-F', '999',
                                     '-p', str(pid if args.perf == 'source'
                                               else dpid), '-o',
                                     os.path.join(rundir, 'perf.data')],
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        cpu = guestrun.ThreadCpu(pid, guestrun.MIGRATION_THREAD, 0.005)
        t0 = time.time()
        start = guestrun.start_migration(src, dst, setup, mode, params)
        for c in during:
            src.console.send(c + '\n')
        info = guestrun.wait_migration(src, start, setup.timeout)
        mig_ms = cpu.stop()
        after = thread_times(pid)
        dafter = thread_times(dpid)
        if perf:
            perf.send_signal(2)
            perf.wait()
        r = guestrun.new_result(setup, mode, args.scenario, live)
        guestrun.record_migration(r, info, time.monotonic() - start, mig_ms)
        guestrun.check_destination(dst, r, src.console.text)
        if disk:
            guestrun.check_disk(dst, r, md5)
    finally:
        if perf and perf.poll() is None:
            perf.kill()
        src.close()
        if dst:
            dst.close()
        if disk:
            os.unlink(disk)     # random data as large as a quarter of RAM

    ram = info.get('ram', {})
    print('%s %s: total %s ms, downtime %s ms, setup %s ms, expected '
          'downtime %s ms, %.1f MB, dirty syncs %s, %s' %
          (args.scenario, args.mode, info.get('total-time'),
           info.get('downtime'), info.get('setup-time'),
           info.get('expected-downtime'), ram.get('transferred', 0) / 1e6,
           ram.get('dirty-sync-count'), r.check()))
    print('hints: %s' % info.get('free-page-hints'))
    print('migration thread cpu %s ms' % mig_ms)
    for (tid, name), ms in sorted(after.items(), key=lambda x: -x[1]):
        d = ms - before.get((tid, name), 0)
        if d >= 1:
            print('  thread %-18s %7.1f ms' % (name, d))
    for (tid, name), ms in sorted(dafter.items(), key=lambda x: -x[1]):
        d = ms - dbefore.get((tid, name), 0)
        if d >= 1:
            print('  destination %-13s %7.1f ms' % (name, d))
    names = {tid: name for tid, name in after}
    names.update({tid: name for tid, name in before})
    rows = timeline(log, t0, names) if os.path.exists(log) else []
    if not args.quiet:
        for ms, thread, ev, a in rows:
            if ms > -5:
                print('%9.1f %-15s %s %s' % (ms, thread[:15], ev, a[:90]))
    for line in summarize(rows):
        print(line)
    if not args.keep:
        shutil.rmtree(rundir, ignore_errors=True)
    else:
        print('logs in ' + rundir)
    return 0 if r.ok() else 1


if __name__ == '__main__':
    sys.exit(main())
