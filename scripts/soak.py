#!/usr/bin/python3
"""Soak: migrate Debian's stock guest with stock free page hinting on, many
times, idle and after writing and freeing most of its memory.  A run fails
on any BUG, Oops, WARNING or panic in the destination's kernel log or
console, an unresponsive destination guest, or any wrong page of the
guest's data.  Stock QEMU 7.2 under TCG failed 9 of 20 such runs.

  scripts/soak.py [--runs 20] [--qemu BINARY] [--mode stock]

--qemu runs another QEMU (e.g. Debian's /usr/bin/qemu-system-x86_64, with
--mode stock-iothread, which it needs) for comparison.

--mode fph-churn soaks qemu-fph's guest with free page bitmaps under churn:
all through every migration the guest rewrites its live data (a new
generation every 0.2 s) and allocates, writes and frees memory.  The runs
take turns: one migration; a migration cancelled in the middle (after the
guest's first bitmap was applied), then a second one to a new destination;
ping-pong, back to the first host and over again (3 hops).  After each hop
the destination stops the rewriting, checks every word of the live data
and its kernel log, and starts rewriting again for the next hop.
"""

import argparse
import json
import os
import sys
import tempfile
import shutil
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestrun                                   # noqa: E402
import report                                     # noqa: E402
from guestrun import RunError, progress          # noqa: E402

# fph-churn: the qemu-fph guest, free page bitmaps, these kinds of run in turn
FPH_CHURN_MODE = 'bitmap'
FPH_CHURN_RUNS = ('churn', 'cancel', 'pingpong')
STOP = '/run/fph-stop'
REWRITER = ('rm -f %s; (while [ ! -e %s ]; do fph-guest rewrite >/dev/null '
            '|| break; usleep 200000; done) & true' % (STOP, STOP))
STOP_REWRITER = 'touch %s; wait' % STOP
# The first attempt of a cancel run: slow enough to be cancelled midway.
CANCEL_BANDWIDTH_MIB = 128


def fph_churn_prep(mem_mib):
    """The guest's workload: held data (checked), half of RAM written and
    freed, a churner that allocates and frees, and the rewriter.  Returns
    the commands and the MiB of live data."""
    hold = max(16, mem_mib // 16)
    churn = max(8, mem_mib // 16)
    return ['fph-guest hold %d' % hold,
            'fph-guest fill %d' % (mem_mib // 2),
            'fph-guest churn %d 3600' % churn,
            REWRITER], hold + churn // 8


def hop(setup, mode, src, rundir, name, r, params=None):
    """Migrate @src to a new destination; check it there and start the
    rewriter again.  Adds to @r; returns the destination."""
    dst = guestrun.GuestVM(name, mode, setup, rundir, incoming=True)
    try:
        info, elapsed, cpu_ms = guestrun.migrate(src, dst, setup, mode,
                                                 params=params)
    except RunError:
        dst.close()
        raise
    one = guestrun.RunResult(mode.kind, mode.name, r.scenario, setup.accel,
                             setup.mem_mib, setup.bandwidth_mib)
    guestrun.record_migration(one, info, elapsed, cpu_ms)
    guestrun.check_destination(dst, one, src.console.text,
                               before=[STOP_REWRITER])
    r.hops = (r.hops or 0) + 1
    r.total_ms = (r.total_ms or 0) + (one.total_ms or 0)
    r.downtime_ms = max(r.downtime_ms or 0, one.downtime_ms or 0)
    r.mb_sent = round(r.mb_sent + one.mb_sent, 1)
    if one.migration_cpu_ms is not None:
        r.migration_cpu_ms = ((r.migration_cpu_ms or 0) +
                              one.migration_cpu_ms)
    r.pages_scanned = (r.pages_scanned or 0) + (one.pages_scanned or 0)
    r.free_pages_skipped = ((r.free_pages_skipped or 0) +
                            (one.free_pages_skipped or 0))
    r.pages_checked = (r.pages_checked or 0) + (one.pages_checked or 0)
    r.pages_wrong = ((r.pages_wrong or 0) +
                     (one.pages_wrong if one.pages_wrong is not None else 1))
    r.guest_alive = one.guest_alive and (r.guest_alive or r.hops == 1)
    r.kernel_complaints = sorted(set(r.kernel_complaints +
                                     one.kernel_complaints))[:10]
    r.guest_bitmap_report = one.guest_bitmap_report
    if one.guest_alive:
        guestrun.run_commands(dst, [REWRITER])
    return dst


def cancel_first(setup, mode, src, rundir, r):
    """A migration cancelled in the middle: once the guest's first bitmap
    has been applied and half as much as the guest's live data has been
    sent.  The source must keep running."""
    dst = guestrun.GuestVM('cancelled', mode, setup, rundir, incoming=True)
    try:
        start = guestrun.start_migration(
            src, dst, setup, mode,
            {'max-bandwidth': CANCEL_BANDWIDTH_MIB << 20})
        while True:
            info = src.cmd('query-migrate')
            sent = info.get('ram', {}).get('transferred', 0)
            answered = info.get('free-page-hints', {}).get('answered', 0)
            if info['status'] not in ('setup', 'active') or (
                    answered and sent > (r.live_mib << 20) // 2):
                break
            if time.monotonic() - start > setup.timeout:
                break
            time.sleep(0.05)
        if info['status'] != 'active':
            raise RunError('the migration to cancel ended first: %s' %
                           info['status'])
        src.cmd('migrate_cancel')
        while src.cmd('query-migrate')['status'] not in ('cancelled',
                                                          'failed'):
            time.sleep(0.05)
        status = src.cmd('query-status')['status']
        if status != 'running':
            raise RunError('source %s after migrate_cancel' % status)
        rc, out = src.console.run('echo alive', timeout=60)
        if rc or 'alive' not in out:
            raise RunError('source guest silent after migrate_cancel')
        r.note = 'cancelled after %.0f MB, %d bitmap(s) applied' % (
            sent / 1e6, answered)
    finally:
        dst.close()


def fph_churn_run(setup, mode, kind, rundir):
    """One fph-churn run of @kind (churn, cancel or pingpong)."""
    prep, live = fph_churn_prep(setup.mem_mib)
    r = guestrun.new_result(setup, mode, kind, live)
    src = guestrun.boot('host1', mode, setup, rundir)
    vms = [src]
    try:
        guestrun.run_commands(src, prep)
        time.sleep(1)
        if kind == 'cancel':
            cancel_first(setup, mode, src, rundir, r)
        # Ping-pong: host1 -> host2 -> host1 -> host2, a new QEMU each time
        names = ['host2', 'host1-again', 'host2-again']
        for name in names[:3 if kind == 'pingpong' else 1]:
            vms.append(hop(setup, mode, vms[-1], rundir, name, r))
            vms[-2].close()
            if not r.ok():
                break
    finally:
        for g in vms:
            g.close()
    return r


def fph_churn_loop(setup, runs):
    mode = guestrun.MODES[FPH_CHURN_MODE]
    for i in range(1, runs + 1):
        kind = FPH_CHURN_RUNS[(i - 1) % len(FPH_CHURN_RUNS)]
        progress('run %d of %d: %s' % (i, runs, kind))
        start = time.monotonic()
        rundir = tempfile.mkdtemp(prefix='fph-soak-')
        try:
            r = fph_churn_run(setup, mode, kind, rundir)
        except guestrun.RUN_ERRORS as e:
            r = guestrun.new_result(setup, mode, kind)
            r.error = str(e)[:300]
        r.wall_s = round(time.monotonic() - start, 1)
        if r.ok():
            shutil.rmtree(rundir, ignore_errors=True)
        else:
            progress('   run failed; its QEMU logs are in ' + rundir)
        progress('   %s hop(s), %.0f MB sent, %s (%.0f s)' %
                 (r.hops, r.mb_sent, r.check(), r.wall_s))
        for line in r.kernel_complaints:
            print('      ' + line, flush=True)
        yield r


def print_table(rows):
    head = ('run', 'kind', 'hops', 'MB sent', 'total ms', 'max downtime ms',
            'free skipped', 'pages checked', 'pages wrong', 'complaints',
            'check', 'note')
    # A run of the shared run loop is one migration, if it got that far.
    body = [(r.run, r.scenario,
             r.hops if r.hops is not None else int(r.total_ms is not None),
             r.mb_sent, r.total_ms, r.downtime_ms,
             '-' if r.free_pages_skipped is None else r.free_pages_skipped,
             r.pages_checked,
             r.pages_wrong, len(r.kernel_complaints), r.check(),
             r.note or '') for r in rows]
    print(report.text_table(head, body), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--mem', type=int, default=4096)
    parser.add_argument('--qemu', default=guestrun.QEMU_BIN)
    parser.add_argument('--mode', default='stock',
                        choices=['stock', 'stock-iothread', 'bitmap',
                                 'fph-churn'])
    parser.add_argument('--scenarios', default='idle,freed')
    parser.add_argument('--bandwidth', type=int, default=10240)
    parser.add_argument('--out', default=os.path.join(guestrun.BUILD, 'soak'))
    args = parser.parse_args()

    fph_churn = args.mode == 'fph-churn'
    kind = guestrun.MODES[FPH_CHURN_MODE if fph_churn else args.mode].kind
    os.makedirs(args.out, exist_ok=True)
    guestrun.build_guests({kind})
    accel, why = guestrun.pick_accel(kind, args.qemu)
    progress('soak: %d runs, %s, %s kernel, %d MiB, %s (%s), %s' %
             (args.runs, args.mode, kind, args.mem, accel, why, args.qemu))
    setup = guestrun.Setup(accel, args.mem, args.bandwidth, args.qemu)
    scenarios = args.scenarios.split(',')
    runs = [scenarios[i % len(scenarios)] for i in range(args.runs)]
    plan = [('run %d of %d: %s' % (i, args.runs, sc), sc, args.mode)
            for i, sc in enumerate(runs, 1)]
    rows = []
    loop = (fph_churn_loop(setup, args.runs) if fph_churn
            else guestrun.run_loop(setup, plan))
    for i, r in enumerate(loop, 1):
        r.run = i
        rows.append(r)
    print_table(rows)
    failed = sum(not r.ok() for r in rows)
    with open(os.path.join(args.out, 'soak-%s.json' % args.mode), 'w') as f:
        json.dump({'qemu': args.qemu, 'mode': args.mode, 'accel': accel,
                   'guest_mib': args.mem,
                   'runs': [r.to_dict() for r in rows]}, f, indent=2)
    print('soak: %d passed, %d failed' % (args.runs - failed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
