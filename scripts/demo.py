#!/usr/bin/python3
"""qemu-fph's main job: migrate a real Linux guest with hints off, with
stock hinting (Debian's own guest kernel) and with free page bitmaps
(qemu-fph's guest kernel), in several scenarios, and print one table.

Every run ends with the guest checking every page of its live data on the
destination, and with the destination's kernel log scanned for BUG, Oops,
WARNING and panic.  Results also go to build/demo/results.json and a chart
to build/demo/results.png.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestrun                                   # noqa: E402
import report                                     # noqa: E402
from guestrun import progress                     # noqa: E402

SCENARIOS = ['idle', 'freed', 'fragmented', 'churn']
MODES = ['off', 'stock', 'stock-noinit', 'bitmap']


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--mem', type=int, default=0,
                        help='guest RAM in MiB (default: 4096 with KVM, '
                        '1024 with TCG)')
    parser.add_argument('--bandwidth', type=int, default=10240,
                        help='max-bandwidth in MiB/s (default 10240)')
    parser.add_argument('--scenarios', default=','.join(SCENARIOS))
    parser.add_argument('--modes', default=','.join(MODES))
    parser.add_argument('--accel', choices=['auto', 'kvm', 'tcg'],
                        default='auto')
    parser.add_argument('--out', default=os.path.join(guestrun.BUILD, 'demo'))
    args = parser.parse_args()

    scenarios = args.scenarios.split(',')
    modes = args.modes.split(',')
    os.makedirs(args.out, exist_ok=True)
    kinds = {guestrun.MODES[m].kind for m in modes} | {'stock'}
    guestrun.build_guests(kinds)

    if args.accel == 'auto':
        accel, why = guestrun.pick_accel()
    else:
        accel, why = args.accel, 'asked for'
    mem = args.mem or (4096 if accel == 'kvm' else 1024)
    progress('accelerator: %s (%s); guest %d MiB' % (accel, why, mem))

    setup = guestrun.Setup(accel, mem, args.bandwidth)
    baselines = guestrun.idle_baselines(setup, kinds)
    plan = [('%s / %s (%s kernel)' % (sc, mode, guestrun.MODES[mode].kind),
             sc, mode) for sc in scenarios for mode in modes]
    rows = list(guestrun.run_loop(setup, plan, baselines))

    print()
    print('Guest: %d MiB, %s, 2 vCPUs; link: tcp loopback, max-bandwidth %d '
          'MiB/s; limit = idle hints-off MB of the same kernel + live data'
          % (mem, accel, args.bandwidth))
    print(report.format_table(rows))
    meta = {'accel': accel, 'guest_mib': mem, 'bandwidth_mib': args.bandwidth,
            'baselines_mb': baselines}
    report.write_json(rows, os.path.join(args.out, 'results.json'), meta)
    try:
        report.write_chart(rows, os.path.join(args.out, 'results.png'),
                           'MB sent, %d MiB guest, %s' % (mem, accel))
        print('(also in %s/results.json and results.png)' % args.out)
    except ImportError:
        print('(also in %s/results.json; no chart: python3-matplotlib is '
              'missing)' % args.out)
    bad = [r for r in rows if not r.ok()]
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
