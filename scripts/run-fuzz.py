#!/usr/bin/python3
"""Run qemu-fph's libFuzzer targets for a while each and print their figures.

The targets (tests/fuzz/fuzz-*.c, built by `make fuzz-build` into
build/fuzz/) start from the committed seeds in tests/fuzz/corpus/<target>/
and keep what they learn in build/fuzz/corpus/<target>/, so every run goes
on from the last.  An input that breaks an invariant, crashes or leaks is
saved in build/fuzz/artifacts/<target>/ and the run fails; replay it with
`build/fuzz/fuzz-<target> <file>`.  See docs/fuzzing.rst.
"""

import argparse
import os
import re
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(TOP, 'build', 'fuzz')
SEEDS = os.path.join(TOP, 'tests', 'fuzz', 'corpus')

# target: the largest input it tries (a chunk of 64 Ki bits; a few
# hundred queue operations; 255 bulk ranges, larger messages are generated
# from a few numbers)
TARGETS = {
    'free-page-bitmap': 8192,
    'balloon-queue': 4096,
    'bulk-balloon': 4096,
}

DONE = re.compile(r'^#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)/')


def run(target, seconds):
    """Fuzz @target for @seconds; returns (ok, one line of figures)."""
    binary = os.path.join(BUILD, 'fuzz-' + target)
    corpus = os.path.join(BUILD, 'corpus', target)
    artifacts = os.path.join(BUILD, 'artifacts', target) + '/'
    log = os.path.join(BUILD, target + '.log')
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    before = set(os.listdir(artifacts))
    argv = [binary, '-max_total_time=%d' % seconds, '-print_final_stats=1',
            '-max_len=%d' % TARGETS[target], '-timeout=10',
            '-rss_limit_mb=2048', '-artifact_prefix=' + artifacts,
            corpus, os.path.join(SEEDS, target)]
    start = time.monotonic()
    with open(log, 'w') as out:
        rc = subprocess.call(argv, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - start
    with open(log, errors='replace') as f:
        text = f.read()
    found = sorted(set(os.listdir(artifacts)) - before)
    m = None
    for line in text.splitlines():
        m = DONE.match(line) or m
    if rc != 0 or found or not m:
        problems = [line for line in text.splitlines()
                    if 'invariant failed' in line or 'ERROR' in line or
                    'runtime error' in line][:5]
        return False, ('%s: FAILED after %.0f s (exit status %d)%s\n%s' %
                       (target, elapsed, rc,
                        ''.join('; input saved as ' +
                                os.path.join(artifacts, f) for f in found),
                        '\n'.join('  ' + p for p in problems) or
                        '  see ' + log))
    execs = int(m.group(1))
    return True, ('%s: clean, %.0f s, %d runs (%d/s), %s edges, %s '
                  'features, corpus %s inputs' %
                  (target, elapsed, execs, execs / max(elapsed, 1),
                   m.group(2), m.group(3), m.group(4)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=int, default=600,
                        help='how long each target runs (default 600)')
    parser.add_argument('targets', nargs='*', metavar='target',
                        help='of %s (default: all)' % ', '.join(TARGETS))
    args = parser.parse_args()
    failed = 0
    for target in args.targets or TARGETS:
        if target not in TARGETS:
            sys.exit('run-fuzz: no target %s' % target)
        print('== fuzz %s for %d s' % (target, args.seconds), flush=True)
        ok, line = run(target, args.seconds)
        print(line, flush=True)
        failed += not ok
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
