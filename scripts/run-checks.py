#!/usr/bin/python3
"""Run qemu-fph's checks and print one summary line.

Checks, in order: checkpatch.pl on our files and patches (lint), the cmocka
unit tests, each libFuzzer target for FUZZ_CHECK_SECONDS (scripts/run-fuzz.py),
the qtests that cover what the fork changes (QEMU's own and
ours) against the fork's qemu-system-x86_64, the end-to-end check that
migrates qemu-fph's Linux guest (scripts/e2e-check.py), and the package
install test (scripts/package-check.py: the .deb into a throwaway root and
make install's tree, each booting the guest, then removed).  Every test
case counts once; upstream cases that cannot pass on this machine for
reasons outside the project are skipped by name from tests/skip-list, and
listed.
"""

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(TOP, 'build')
QEMU_BUILD = os.path.join(BUILD, 'qemu')
SRC = os.path.join(BUILD, 'src')

# Upstream qtests that cover what qemu-fph changes, with the test paths to
# run (None: all of them).  Our own qtests are found in tests/qtest/.
UPSTREAM_QTESTS = [
    ('qos-test', ['virtio-balloon']),
    ('migration-test', ['/x86_64/migration/precopy/',
                        '/x86_64/migration/postcopy/',
                        '/x86_64/migration/multifd/',
                        '/x86_64/migration/auto_converge',
                        '/x86_64/migration/validate_uuid',
                        '/x86_64/migration/bad_dest',
                        '/x86_64/migration/fd_proto',
                        '/x86_64/migration/dirty_ring',
                        '/x86_64/migration/vcpu_dirty_limit']),
    ('device-introspect-test', None),
    ('qom-test', None),
]

TEST_TIMEOUT = 30 * 60
FUZZ_CHECK_SECONDS = 30
TAP_LINE = re.compile(r'^(not ok|ok)\b\s*\d*\s*-?\s*(.*?)\s*(#\s*(\w+)(.*))?$')


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = []
        self.skipped = []

    def add(self, name, ok, skip_reason=None):
        if skip_reason is not None:
            self.skipped.append((name, skip_reason))
        elif ok:
            self.passed += 1
        else:
            self.failed.append(name)
            print('FAIL: %s' % name, flush=True)


def our_files(*patterns):
    out = subprocess.run(['git', 'ls-files', '--cached', '--others',
                          '--exclude-standard', '--'] + list(patterns),
                         cwd=TOP, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit('run-checks: git ls-files failed: ' + out.stderr)
    return sorted(set(f for f in out.stdout.split() if
                      os.path.isfile(os.path.join(TOP, f))))


def run_lint(res):
    checkpatch = os.path.join(SRC, 'scripts', 'checkpatch.pl')
    print('== lint: checkpatch.pl on our files and patches', flush=True)
    sources = our_files('*.c', '*.h')
    patches = our_files('patches/*.patch')
    for f in sources + patches:
        args = ['perl', checkpatch, '--no-tree', '--terse']
        if not f.endswith('.patch'):
            args.append('-f')
        out = subprocess.run(args + [f], cwd=TOP, capture_output=True,
                             text=True)
        errors = [line for line in out.stdout.splitlines()
                  if 'ERROR' in line]
        if errors or out.returncode not in (0, 1):
            print('\n'.join(errors) or out.stdout + out.stderr)
        res.add('lint ' + f, not errors and out.returncode in (0, 1))


def load_skip_list():
    skips = {}
    path = os.path.join(TOP, 'tests', 'skip-list')
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            binary, test_path, reason = line.split(None, 2)
            skips.setdefault(binary, []).append((test_path, reason))
    return skips


def run_tap(res, label, argv, env=None, skips=()):
    """Run a TAP-speaking test binary and count its cases."""
    print('== %s' % label, flush=True)
    start = time.monotonic()
    seen = 0
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True,
                              timeout=TEST_TIMEOUT)
        output, rc = proc.stdout, proc.returncode
        errors = proc.stderr
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b'').decode(errors='replace')
        errors = 'timed out after %d s' % TEST_TIMEOUT
        rc = -1
    skip_reasons = dict(skips)
    for line in output.splitlines():
        m = TAP_LINE.match(line.strip())
        if not m:
            continue
        seen += 1
        name = '%s %s' % (label, m.group(2))
        directive = (m.group(4) or '').upper()
        if directive == 'SKIP':
            reason = skip_reasons.pop(m.group(2), None)
            res.add(name, True,
                    reason or (m.group(5) or '').strip() or 'skipped')
        else:
            res.add(name, m.group(1) == 'ok')
    for test_path, reason in skip_reasons.items():
        res.add('%s %s' % (label, test_path), True, reason)
    if rc != 0 or seen == 0:
        tail = (output.splitlines() + errors.splitlines())[-25:]
        print('\n'.join(tail))
        res.add('%s (exit status %s)' % (label, rc), False)
    print('   %d cases, %.0f s' % (seen, time.monotonic() - start),
          flush=True)


def run_unit(res):
    unit_dir = os.path.join(BUILD, 'unit')
    tests = sorted(f for f in os.listdir(unit_dir)
                   if f.startswith('test-') and
                   os.path.isfile(os.path.join(unit_dir, f)) and
                   os.access(os.path.join(unit_dir, f), os.X_OK))
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT='TAP')
    for t in tests:
        run_tap(res, 'unit/' + t, [os.path.join(unit_dir, t)], env=env)


def run_fuzz(res):
    """Each fuzzer for a short while: a regression of what it found, or a
    quick find, fails the check."""
    spec = importlib.util.spec_from_file_location(
        'run_fuzz', os.path.join(TOP, 'scripts', 'run-fuzz.py'))
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    for target in fuzz.TARGETS:
        print('== fuzz %s for %d s' % (target, FUZZ_CHECK_SECONDS),
              flush=True)
        ok, line = fuzz.run(target, FUZZ_CHECK_SECONDS)
        print('   ' + line, flush=True)
        res.add('fuzz ' + target, ok)


def qtest_paths(binary, wanted, env):
    """The test paths of a glib test binary that start with or contain one
    of the wanted strings."""
    out = subprocess.run([binary, '-l'], env=env, capture_output=True,
                         text=True, timeout=300)
    paths = [p for p in out.stdout.split() if p.startswith('/')]
    return [p for p in paths if any(w in p for w in wanted)]


def run_qtests(res, only=None):
    ours = [os.path.basename(f)[:-2] for f in our_files('tests/qtest/*-test.c')]
    qtests = UPSTREAM_QTESTS + [(t, None) for t in ours]
    if only:
        qtests = [q for q in qtests if q[0] in only]
    targets = ['tests/qtest/' + name for name, _ in qtests]
    print('== building qtests: %s' % ' '.join(n for n, _ in qtests),
          flush=True)
    build = subprocess.run(['ninja', '-C', QEMU_BUILD] + targets)
    if build.returncode != 0:
        res.add('qtest build', False)
        return
    skips = load_skip_list()
    env = dict(os.environ,
               QTEST_QEMU_BINARY=os.path.join(QEMU_BUILD,
                                              'qemu-system-x86_64'),
               G_TEST_DBUS_DAEMON='/bin/true')
    for name, wanted in qtests:
        binary = os.path.join(QEMU_BUILD, 'tests', 'qtest', name)
        argv = [binary, '--tap', '-k']
        if wanted is not None:
            paths = qtest_paths(binary, wanted, env)
            if not paths:
                res.add('%s: no test path matches %s' % (name, wanted), False)
                continue
            for p in paths:
                argv += ['-p', p]
        mine = skips.get(name, [])
        for test_path, _ in mine:
            argv += ['-s', test_path]
        run_tap(res, name, argv, env=env, skips=mine)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--only', action='append',
                        help='lint, unit, fuzz, qtest, e2e, package, or a '
                        'qtest binary')
    args = parser.parse_args()
    only = set(args.only or [])
    res = Results()
    if not only or 'lint' in only:
        run_lint(res)
    if not only or 'unit' in only:
        run_unit(res)
    if not only or 'fuzz' in only:
        run_fuzz(res)
    qtest_only = only - {'lint', 'unit', 'fuzz', 'e2e', 'package'}
    if not only or qtest_only:
        run_qtests(res, None if 'qtest' in only or not only else qtest_only)
    if not only or 'e2e' in only:
        run_tap(res, 'e2e', [sys.executable,
                             os.path.join(TOP, 'scripts', 'e2e-check.py')])
    if not only or 'package' in only:
        run_tap(res, 'package', [sys.executable, os.path.join(
            TOP, 'scripts', 'package-check.py')])

    if res.skipped:
        print('Skipped on purpose (tests/skip-list) or by the test itself:')
        for name, reason in res.skipped:
            print('  %s: %s' % (name, reason))
    if res.failed:
        print('Failed:')
        for name in res.failed:
            print('  ' + name)
    print('check: %d passed, %d failed, %d skipped' %
          (res.passed, len(res.failed), len(res.skipped)))
    return 1 if res.failed else 0


if __name__ == '__main__':
    sys.exit(main())
