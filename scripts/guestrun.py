"""Real Linux guests for qemu-fph's main job, benchmark, soak and end-to-end
check: boot a guest, prepare a scenario, migrate it over TCP to a second
QEMU, check every live page of the guest's data on the destination, and
scan the destination's kernel log for BUG, Oops, WARNING and panic.

Guest kinds (built by guest/*.sh into build/guest):
  stock  Debian 12's own kernel, which speaks stock hinting (bit 3)
  fph    linux-source-6.1 with qemu-fph's driver patches (bitmap, bit 16)
"""

import dataclasses
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Optional

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(TOP, 'build')
GUEST_OUT = os.path.join(BUILD, 'guest')
QEMU_BIN = os.path.join(BUILD, 'qemu', 'qemu-system-x86_64')

# QEMU processes, QMP and the console socket come from the base tree's
# python/qemu (build/src/python, prepared by ./configure).
sys.path.insert(0, os.path.join(BUILD, 'src', 'python'))
try:
    from qemu.machine import QEMUMachine
    from qemu.machine.machine import (AbnormalShutdown, QEMUMachineError,
                                      VMLaunchFailure)
    from qemu.qmp import ExecuteError, QMPError
except ImportError as e:
    sys.exit('%s: %s; run ./configure first' % (os.path.basename(
        sys.argv[0]), e))


class RunError(Exception):
    """A guest or a migration that did not do what the run needs."""


# What breaks one run (and makes it a failed row) but not the harness.
RUN_ERRORS = (RunError, QMPError, QEMUMachineError, OSError, EOFError,
              TimeoutError)

BAD_LOG = re.compile(r'(BUG[: ]|Oops|WARNING:|Kernel panic|list_add corruption|'
                     r'list_del corruption|general protection fault)')


@dataclass(frozen=True)
class Mode:
    """What a mode runs."""
    name: str
    kind: str                   # guest kind: stock or fph
    device: str                 # virtio-balloon-pci options
    cmdline: str = ''           # guest kernel options
    extra: tuple = ()           # more QEMU options
    params: dict = field(default_factory=dict)  # migrate-set-parameters
    machine: str = 'q35'        # -M


# Modes that stand for stock QEMU's migration read every page, as it does
STOCK_READS = {'skip-unbacked-pages': False}

MODES = {m.name: m for m in [
    Mode('off', 'stock', 'free-page-hint=off', params=STOCK_READS),
    Mode('stock', 'stock', 'free-page-hint=on', params=STOCK_READS),
    Mode('stock-noinit', 'stock', 'free-page-hint=on', 'init_on_alloc=0',
         params=STOCK_READS),
    # Hints off, but pages the host shows empty are skipped unread: what
    # qemu-fph does for a guest with no balloon driver of its own.
    Mode('unbacked', 'stock', 'free-page-hint=off'),
    # The first pass may wait up to 1 s for the guest's first bitmap; a
    # guest answers in milliseconds, the wait only covers a busy host.
    Mode('bitmap', 'fph', 'free-page-hint=on',
         params={'free-page-hint-wait': 1000}),
    Mode('bitmap-nowait', 'fph', 'free-page-hint=on'),
    # The guest drops its clean page cache before it reports.
    Mode('bitmap-dropcache', 'fph', 'free-page-hint=on',
         params={'free-page-hint-wait': 1000,
                 'free-page-hint-drop-cache': True}),
    Mode('fph-off', 'fph', 'free-page-hint=off', params=STOCK_READS),
    # Stock hinting as stock QEMU 7.2 needs it, with an explicit iothread.
    Mode('stock-iothread', 'stock', 'free-page-hint=on,iothread=io1',
         extra=('-object', 'iothread,id=io1'), params=STOCK_READS),
    # Hints off, and migration reads the balloon's pages as stock QEMU
    # does: the ballooned scenario's comparison row.
    Mode('off-nobpb', 'stock', 'free-page-hint=off,ballooned-page-bitmap=off',
         params=STOCK_READS),
]}

# The ballooned scenario's modes: hints off with either guest kernel, stock
# hinting, free page bitmaps, and one row without the ballooned-page bitmap.
BALLOONED_MODES = ['off', 'fph-off', 'stock', 'bitmap', 'off-nobpb']
# Scenarios with the balloon taken down to a quarter of guest RAM.
BALLOONED = ('ballooned',)

# Scenarios whose guest reads a disk into its page cache, and their modes:
# hints off (every page read, or the unbacked skipped), stock hinting, and
# free page bitmaps with the cache kept and with it dropped.
PAGECACHE = ('pagecache',)
PAGECACHE_MODES = ['off', 'unbacked', 'stock', 'bitmap', 'bitmap-dropcache']


def unballooned_mode(name):
    """The mode whose never-ballooned run a ballooned run compares with:
    the same guest and hints (without ballooned pages, the ballooned-page
    bitmap changes nothing)."""
    return name[:-len('-nobpb')] if name.endswith('-nobpb') else name


def device_has_property(qemu, driver, prop):
    """Whether @qemu's @driver has the property @prop (e.g. one this tree
    does not have yet)."""
    out = subprocess.run([qemu, '-device', driver + ',help'],
                         capture_output=True, text=True)
    return re.search(r'^\s*%s=' % re.escape(prop), out.stdout,
                     re.M) is not None


def usable_modes(names, qemu=QEMU_BIN):
    """@names less the modes @qemu cannot run, each said once."""
    out = []
    for n in names:
        if ('ballooned-page-bitmap=' in MODES[n].device and
                not device_has_property(qemu, 'virtio-balloon-pci',
                                        'ballooned-page-bitmap')):
            progress('mode %s left out: this QEMU has no ballooned-page-bitmap'
                     % n)
            continue
        out.append(n)
    return out


def numa_mode(base, mem_mib, nodes=2):
    """@base's mode with guest RAM split over @nodes NUMA nodes on memory
    backends, as libvirt writes any NUMA guest."""
    extra = list(MODES[base].extra)
    for n in range(nodes):
        extra += ['-object', 'memory-backend-ram,id=node%d,size=%dM' %
                  (n, mem_mib // nodes),
                  '-numa', 'node,nodeid=%d,memdev=node%d' % (n, n)]
    return replace(MODES[base], name='%s-numa%d' % (base, nodes),
                   extra=tuple(extra))


@dataclass(frozen=True)
class Setup:
    """What every run of a harness shares."""
    accel: str                  # kvm or tcg
    mem_mib: int                # guest RAM
    bandwidth_mib: float = 10240    # max-bandwidth, MiB/s
    qemu: str = QEMU_BIN
    timeout: int = 900          # seconds a migration may take
    # Live data the guest holds; None: a sixteenth of its RAM
    hold_mib: Optional[int] = None
    # Guest RAM on memory-backend-ram with reserve=off: a guest bigger than
    # the host's overcommit heuristic allows, mostly never touched
    sparse_ram: bool = False


@dataclass
class RunResult:
    """One migration: what QEMU measured and what the guest found.  The
    fields are the keys of the JSON results (docs/benchmark.json)."""
    kind: str
    mode: str
    scenario: str
    accel: str
    guest_mib: int
    bandwidth_mib: float
    total_ms: Optional[int] = None
    downtime_ms: Optional[int] = None
    mb_sent: float = 0
    zero_pages: int = 0
    free_pages_skipped: Optional[int] = None
    hint_latency_us: Optional[int] = None
    # The longest turn of QEMU's main loop spent on hints (BQL held)
    hint_turn_us: Optional[int] = None
    # CPU time (utime + stime) of the source's migration thread, ms
    migration_cpu_ms: Optional[int] = None
    # Pages the migration thread read: ram normal + duplicate
    pages_scanned: Optional[int] = None
    # query-migrate's balloon-skipped-pages: in the balloon, never read
    balloon_skipped_pages: Optional[int] = None
    # query-migrate's unbacked-skipped-pages: the host showed them empty
    unbacked_skipped_pages: Optional[int] = None
    # The source QEMU's resident memory before migrating, and its peak
    # while migrating, MiB
    src_rss_mib: Optional[int] = None
    src_peak_rss_mib: Optional[int] = None
    live_mib: int = 0
    pages_checked: Optional[int] = None
    pages_wrong: Optional[int] = None
    guest_alive: bool = False
    kernel_complaints: list = field(default_factory=list)
    guest_bitmap_report: Optional[str] = None
    # Left out of the JSON when None:
    wall_s: Optional[float] = None      # a run that finished
    limit_mb: Optional[float] = None    # demo and benchmark
    error: Optional[str] = None         # a run that broke
    run: Optional[int] = None           # soak: the run's number
    repetitions: Optional[int] = None   # medians: of how many runs
    hops: Optional[int] = None          # soak: migrations that completed
    note: Optional[str] = None          # soak: what else the run did
    balloon_mib: Optional[int] = None   # ballooned: guest RAM left to it
    sparse_ram: Optional[bool] = None   # on a reserve=off backend

    OPTIONAL = ('wall_s', 'limit_mb', 'error', 'run', 'repetitions', 'hops',
                'note', 'balloon_mib', 'sparse_ram')

    def ok(self):
        """Every page checked right, the guest lives, its log is clean,
        nothing else went wrong (e.g. the destination's disk read)."""
        return bool(self.guest_alive and self.pages_wrong == 0 and
                    self.pages_checked and not self.kernel_complaints and
                    not self.error)

    def check(self):
        """The data check, in words."""
        if self.error:
            return 'FAIL: ' + self.error.splitlines()[0][:60]
        if not self.guest_alive:
            return 'FAIL: guest unresponsive'
        if self.kernel_complaints:
            return 'FAIL: ' + self.kernel_complaints[0][:40]
        if self.pages_wrong is None:
            return 'FAIL: no verify result'
        if self.pages_wrong:
            return 'FAIL: %d of %d pages wrong' % (self.pages_wrong,
                                                    self.pages_checked)
        return 'ok, %d pages' % self.pages_checked

    def to_dict(self):
        return {k: v for k, v in dataclasses.asdict(self).items()
                if v is not None or k not in self.OPTIONAL}

    @classmethod
    def from_dict(cls, d):
        """A result read back from JSON; fields older files lack keep
        their defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def progress(msg):
    print('.. ' + msg, flush=True)


def build_guests(kinds):
    """Build what is missing (the scripts are incremental)."""
    os.makedirs(GUEST_OUT, exist_ok=True)
    if 'stock' in kinds:
        progress('guest: Debian kernel (stock)')
        subprocess.run([os.path.join(TOP, 'guest', 'stock-kernel.sh'),
                        GUEST_OUT], check=True)
        subprocess.run([os.path.join(TOP, 'guest', 'initramfs.sh'),
                        GUEST_OUT, 'stock',
                        os.path.join(GUEST_OUT, 'stock', 'modules')],
                       check=True)
    if 'fph' in kinds:
        progress('guest: qemu-fph kernel (this takes minutes the first time)')
        subprocess.run([os.path.join(TOP, 'guest', 'fph-kernel.sh'),
                        GUEST_OUT], check=True)
        subprocess.run([os.path.join(TOP, 'guest', 'initramfs.sh'),
                        GUEST_OUT, 'fph'], check=True)


def guest_files(kind):
    if kind == 'stock':
        kernel = os.path.join(GUEST_OUT, 'stock', 'vmlinuz')
    else:
        kernel = os.path.join(GUEST_OUT, 'bzImage-fph')
    return kernel, os.path.join(GUEST_OUT, kind, 'initramfs.cpio.gz')


class Console:
    """The guest's serial line through its machine's console socket (the
    base's ConsoleSocket): a reader thread keeps all the guest printed, and
    shell commands run with a marker that tells their end and status."""

    def __init__(self, sock):
        self.sock = sock
        self.text = ''
        self.lock = threading.Lock()
        self.closed = False
        self.seq = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b''
            if not data:
                self.closed = True
                return
            with self.lock:
                self.text += data.decode(errors='replace')

    def send(self, line):
        self.sock.sendall(line.encode())

    def wait_for(self, pattern, timeout, start=0):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            with self.lock:
                m = rx.search(self.text, start)
            if m:
                return m
            if self.closed:
                break
            time.sleep(0.02)
        return None

    def run(self, command, timeout=300):
        """Run a shell command in the guest; returns (status, output)."""
        self.seq += 1
        tag = 'FPH%d' % self.seq
        with self.lock:
            start = len(self.text)
        # The marker is split so the echoed command line cannot match it.
        self.send('%s; echo "@@%s" "$?" "@@"\n' % (command, tag))
        m = self.wait_for(r'@@%s (\d+) @@' % tag, timeout, start)
        if not m:
            raise TimeoutError('guest did not finish %r in %d s' %
                               (command, timeout))
        with self.lock:
            out = self.text[start:m.start()]
        # Drop the echoed command line.
        out = out.split('\n', 1)[1] if '\n' in out else ''
        return int(m.group(1)), out.strip()


class GuestVM:
    """A guest kind in a QEMU (the base's QEMUMachine: QMP over a socket
    pair, the console on a UNIX socket chardev as the first serial port),
    its sockets and log in the run's own folder."""

    def __init__(self, name, mode, setup, rundir, incoming=False, smp=2,
                 qemu=None, disk=None):
        kernel, initrd = guest_files(mode.kind)
        args = ['-nodefaults', '-name', name + ',debug-threads=on',
                '-accel', setup.accel]
        if setup.accel == 'tcg':
            args += ['-cpu', 'max']
        if setup.sparse_ram:
            args += ['-object', 'memory-backend-ram,id=ram0,size=%dM,'
                     'reserve=off' % setup.mem_mib,
                     '-machine', 'memory-backend=ram0']
        args += ['-M', mode.machine, '-m', '%dM' % setup.mem_mib, '-smp', str(smp),
                 '-kernel', kernel, '-initrd', initrd,
                 '-append', 'console=ttyS0 quiet panic=-1 ' + mode.cmdline,
                 '-device', ','.join(filter(None, ['virtio-balloon-pci',
                                                   'id=balloon',
                                                   mode.device]))]
        args += list(mode.extra)
        if disk:
            # Read-only, so that source and destination share the image
            # (shared read locks) with nothing to flush between them.
            args += ['-drive', 'file=%s,format=raw,if=none,id=disk,'
                     'readonly=on' % disk,
                     '-device', 'virtio-blk-pci,drive=disk']
        if incoming:
            args += ['-incoming', 'defer']
        self.name = name
        self.vm = QEMUMachine(qemu or setup.qemu, args, name=name, sock_dir=rundir,
                              log_dir=rundir, qmp_timer=30)
        self.vm.set_console()
        try:
            self.vm.launch()
        except VMLaunchFailure as e:
            # QEMU's own message first: a failed row keeps 300 characters.
            raise RunError('%s: QEMU did not start (exit status %s): %s' %
                           (name, e.exitcode,
                            (e.output or '').strip() or e.__cause__)) from e
        try:
            self.console = Console(self.vm.console_socket)
        except OSError:
            self.close()
            raise

    def cmd(self, command, **arguments):
        """A QMP command; its error names the machine and the command."""
        try:
            return self.vm.command(command, **arguments)
        except ExecuteError as e:
            raise RunError('%s: %s: %s' % (self.name, command, e)) from e

    def close(self):
        """quit, then kill after 10 s; closes the console first."""
        try:
            self.vm.shutdown(timeout=10)
        except AbnormalShutdown:
            pass


def boot(name, mode, setup, rundir, timeout=120, qemu=None, disk=None):
    g = GuestVM(name, mode, setup, rundir, qemu=qemu, disk=disk)
    if not g.console.wait_for(r'FPH-GUEST-READY', timeout):
        text = g.console.text[-1500:]
        g.close()
        raise RunError('%s guest did not boot in %d s (%s):\n%s' %
                       (mode.kind, timeout, setup.accel, text))
    time.sleep(0.5)
    return g


def kvm_usable():
    """/dev/kvm opens: the module is loaded and we may use it."""
    try:
        fd = os.open('/dev/kvm', os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def pick_accel(kind='stock', qemu=QEMU_BIN):
    """KVM when it really boots our guest here, TCG otherwise."""
    if not kvm_usable():
        return 'tcg', '/dev/kvm is not usable'
    rundir = tempfile.mkdtemp(prefix='fph-kvm-probe-')
    try:
        boot('kvm-probe', Mode('kvm-probe', kind, 'free-page-hint=off'),
             Setup('kvm', 512, qemu=qemu), rundir, timeout=30).close()
    except RUN_ERRORS:
        return 'tcg', 'KVM did not boot the guest within 30 s'
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
    return 'kvm', 'KVM boots the guest'


def scenario_commands(scenario, mem_mib, hold_mib=None):
    """Guest shell commands that prepare a scenario (before migrating), and
    the ones to run while migrating; the MiB of live data the guest keeps
    (the checked holder, @hold_mib or a sixteenth of RAM, plus what a
    scenario holds).  'idle' and 'unballooned' (the ballooned scenario's
    reference, run apart from the idle scenario's figures) only hold."""
    hold = hold_mib or max(16, mem_mib // 16)
    live = hold
    prep = ['fph-guest hold %d' % hold]
    during = []
    if scenario == 'freed':
        prep.append('fph-guest fill %d' % (mem_mib * 3 // 4 - hold))
    elif scenario == 'fragmented':
        frag = mem_mib * 3 // 4 - hold
        prep.append('fph-guest fragment %d' % frag)
        live += frag // 2               # every other page stays in use
    elif scenario == 'ballooned':
        # Written and freed, then the host's balloon takes it (after prep,
        # balloon_target_mib()).
        prep.append('fph-guest fill %d' % (mem_mib * 3 // 4 - hold))
    elif scenario == 'churn':
        churn = max(8, mem_mib // 16)
        prep.append('fph-guest fill %d' % (mem_mib // 2))
        prep.append('fph-guest churn %d 600' % churn)
        during.append('fph-guest rewrite')
        live += churn // 8              # one chunk of the churner at a time
    elif scenario in PAGECACHE:
        # The whole disk (disk_mib(), the guest's only virtio-blk one) into
        # the page cache, then idle.  The kernel drops a block device's
        # cache when its last user closes it, so the shell keeps it open,
        # as a mounted file system would.  The cache is clean and can be
        # dropped: it is not live data.
        prep += ['exec 3</dev/vda', 'dd if=/dev/vda of=/dev/null bs=1M']
    return hold, live, prep, during


# The disk's image in the run's folder
DISK_IMAGE = 'disk.img'


def disk_mib(scenario, mem_mib):
    """The size of the disk a scenario's guest reads, if any: a quarter
    of guest RAM."""
    return mem_mib // 4 if scenario in PAGECACHE else None


def make_disk(rundir, mib):
    """A raw image of @mib MiB of random data in @rundir (random, so that
    its cached pages are no zero pages migration would send cheaply);
    returns its path and MD5."""
    path = os.path.join(rundir, DISK_IMAGE)
    md5 = hashlib.md5()
    with open(path, 'wb') as f:
        for _ in range(mib):
            block = os.urandom(1 << 20)
            md5.update(block)
            f.write(block)
    return path, md5.hexdigest()


def check_disk(dst, r, md5):
    """The destination reads the whole disk again, from its page cache
    (migrated) or from the image (dropped), and must find @md5; a
    mismatch or a failed read is @r's error."""
    if not r.guest_alive:
        return r
    try:
        status, out = dst.console.run('md5sum /dev/vda', timeout=300)
    except TimeoutError as e:
        status, out = -1, str(e)
    if status or md5 not in out:
        r.error = ('disk read on the destination: %s' %
                   (out or status))[:300]
    return r


def balloon_target_mib(scenario, mem_mib):
    """The balloon target a scenario sets after its guest commands, if
    any: a quarter of guest RAM."""
    return mem_mib // 4 if scenario in BALLOONED else None


# A balloon that has not moved for this long has stopped where it is.
BALLOON_STALL_S = 10


def balloon_down(g, target_mib, timeout=600):
    """Set the balloon target of @g with QMP balloon and wait until
    query-balloon reaches it or stops moving; returns the guest's RAM in
    MiB then (and says it when short of the target)."""
    target = target_mib << 20
    g.cmd('balloon', value=target)
    start = last_move = time.monotonic()
    last = None
    while True:
        actual = g.cmd('query-balloon')['actual']
        now = time.monotonic()
        if actual <= target:
            break
        if actual != last:
            last, last_move = actual, now
        elif now - last_move > BALLOON_STALL_S:
            progress('   balloon stopped at %d MiB, target %d MiB' %
                     (actual >> 20, target_mib))
            break
        if now - start > timeout:
            progress('   balloon at %d MiB after %d s, target %d MiB' %
                     (actual >> 20, timeout, target_mib))
            break
        time.sleep(0.2)
    progress('   balloon: guest RAM %d MiB in %.0f s' %
             (actual >> 20, time.monotonic() - start))
    return actual >> 20


def run_commands(g, commands, timeout=600):
    """Guest shell commands, each of which must succeed."""
    for c in commands:
        status, out = g.console.run(c, timeout=timeout)
        if status:
            raise RunError('guest command %r failed: %s' % (c, out))


def start_migration(src, dst, setup, mode, params=None):
    """Migrate @src to @dst (started with incoming=True) over TCP; returns
    when the migration has started, with its start time."""
    port = free_port()
    p = {'max-bandwidth': int(setup.bandwidth_mib * (1 << 20)),
         'downtime-limit': 300}
    p.update(mode.params)
    p.update(params or {})
    # Stock QEMU (mixed versions, soak comparisons) has no qemu-fph
    # parameters; what it lacks it does not do anyway.
    known = src.cmd('query-migrate-parameters')
    p = {k: v for k, v in p.items() if k in known}
    src.cmd('migrate-set-parameters', **p)
    dst.cmd('migrate-incoming', uri='tcp:127.0.0.1:%d' % port)
    start = time.monotonic()
    src.cmd('migrate', uri='tcp:127.0.0.1:%d' % port)
    return start


class ThreadCpu:
    """The CPU time (utime + stime of /proc/PID/task/TID/stat) of a
    thread of @pid named @comm that starts after this object: sampled every
    @interval seconds from a thread of ours until stop().

    The migration thread exits as soon as the migration ends, and its
    times go with it, so the last sample taken while it ran is the figure:
    it misses at most @interval of the thread's last moments.

    stat gives utime + stime in 10 ms clock ticks, too coarse for a 1 GiB
    guest's migration, which takes tens of ms of CPU; the kernel scales
    them so that they add up to the thread's run time, which schedstat has
    in ns.  So schedstat when the kernel has it, stat otherwise."""

    def __init__(self, pid, comm, interval=0.02):
        self.task_dir = '/proc/%d/task' % pid
        self.comm = comm
        self.interval = interval
        self.tick_ms = 1000 / os.sysconf('SC_CLK_TCK')
        # A thread of that name already there is an earlier migration's,
        # on its way out (a cancelled one).
        self.old = set(self._named())
        self.tid = None
        self.ms = None
        self.done = threading.Event()
        self.sampler = threading.Thread(target=self._run, daemon=True)
        self.sampler.start()

    def _named(self):
        tids = []
        try:
            entries = os.listdir(self.task_dir)
        except OSError:
            return tids
        for t in entries:
            try:
                with open('%s/%s/comm' % (self.task_dir, t)) as f:
                    if f.read().strip() == self.comm:
                        tids.append(t)
            except OSError:
                pass
        return tids

    def _sample(self):
        if self.tid is None:
            new = [t for t in self._named() if t not in self.old]
            if not new:
                return
            self.tid = new[0]
        task = '%s/%s/' % (self.task_dir, self.tid)
        try:
            with open(task + 'stat') as f:
                stat = f.read()
        except OSError:
            return                      # it has ended: keep the last value
        name, _, rest = stat.partition(' (')[2].rpartition(') ')
        if name != self.comm:
            return                      # the id went to another thread
        try:
            with open(task + 'schedstat') as f:
                self.ms = int(f.read().split()[0]) / 1e6
            return
        except (OSError, ValueError, IndexError):
            pass
        fields = rest.split()
        # Fields 14 and 15 of stat; rest starts at field 3 (state).
        self.ms = (int(fields[11]) + int(fields[12])) * self.tick_ms

    def _run(self):
        while not self.done.is_set():
            self._sample()
            self.done.wait(self.interval)

    def stop(self):
        """The thread's CPU time in ms, None if it was never seen."""
        self.done.set()
        self.sampler.join()
        self._sample()
        return None if self.ms is None else round(self.ms)


# The name of QEMU 7.2's migration thread (with -name debug-threads=on).
MIGRATION_THREAD = 'live_migration'


def status_mib(pid, field):
    """A memory figure of /proc/PID/status (VmRSS, VmHWM), in MiB."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) // 1024
    return None


class PeakRss:
    """The resident memory of process @pid now, and its peak from now
    until peak(): writing 5 to clear_refs sets the peak (VmHWM) to the
    current RSS, so the boot's peak does not count."""

    def __init__(self, pid):
        self.pid = pid
        self.before = status_mib(pid, 'VmRSS')
        try:
            with open('/proc/%d/clear_refs' % pid, 'w') as f:
                f.write('5')
            self.reset = True
        except OSError:
            self.reset = False

    def peak(self):
        return status_mib(self.pid, 'VmHWM') if self.reset else None


def migrate(src, dst, setup, mode, during=(), params=None, rss=None):
    """One migration to the end; (query-migrate, seconds, the migration
    thread's CPU ms).  RunError when it does not complete.  @rss: a
    RunResult that gets the source's resident memory before and its peak
    while migrating."""
    pid = src.vm.get_pid()
    cpu = ThreadCpu(pid, MIGRATION_THREAD)
    mem = PeakRss(pid)
    try:
        start = start_migration(src, dst, setup, mode, params)
        for c in during:
            src.console.send(c + '\n')
        info = wait_migration(src, start, setup.timeout)
    finally:
        cpu_ms = cpu.stop()
    if rss is not None:
        rss.src_rss_mib, rss.src_peak_rss_mib = mem.before, mem.peak()
    return info, time.monotonic() - start, cpu_ms


def new_result(setup, mode, scenario, live=0):
    return RunResult(mode.kind, mode.name, scenario, setup.accel,
                     setup.mem_mib, setup.bandwidth_mib, live_mib=live,
                     sparse_ram=setup.sparse_ram or None)


def record_migration(r, info, elapsed, cpu_ms=None):
    """What QEMU measured, into @r."""
    ram = info.get('ram', {})
    r.migration_cpu_ms = cpu_ms
    r.pages_scanned = ram.get('normal', 0) + ram.get('duplicate', 0)
    # Absent while the balloon has no ballooned-page bitmap.
    r.balloon_skipped_pages = info.get('balloon-skipped-pages')
    # Absent with skip-unbacked-pages off (and on stock QEMU).
    r.unbacked_skipped_pages = info.get('unbacked-skipped-pages')
    hints = info.get('free-page-hints', {})
    r.total_ms = info.get('total-time')
    r.downtime_ms = info.get('downtime')
    r.mb_sent = round(ram.get('transferred', 0) / 1e6, 1)
    r.zero_pages = ram.get('duplicate', 0)
    r.free_pages_skipped = hints.get('skipped-pages')
    r.hint_latency_us = hints.get('latency')
    r.hint_turn_us = hints.get('longest-turn')
    r.wall_s = round(elapsed, 1)


def check_destination(dst, r, src_log='', before=()):
    """On the destination: alive, data intact, no kernel complaints; into
    @r.  @before: guest commands that run first (e.g. stop a writer)."""
    dst.console.send('\n')
    alive = True
    try:
        status, out = dst.console.run('echo alive', timeout=60)
        alive = status == 0 and 'alive' in out
    except TimeoutError:
        alive = False
    checked = wrong = None
    dmesg_bad = []
    dmesg_text = ''
    if alive:
        try:
            for c in before:
                dst.console.run(c, timeout=600)
            status, out = dst.console.run('fph-guest verify', timeout=180)
            m = re.search(r'pages checked (\d+), pages wrong (\d+)', out)
            if m:
                checked, wrong = int(m.group(1)), int(m.group(2))
            status, dmesg_text = dst.console.run('dmesg', timeout=60)
            dmesg_bad = [l for l in dmesg_text.splitlines()
                         if BAD_LOG.search(l)]
        except TimeoutError:
            alive = False
    console_bad = [l for l in dst.console.text.splitlines()
                   if BAD_LOG.search(l)]
    fpb_line = re.findall(r'free page bitmap cmd \d+: .*',
                          src_log + '\n' + dmesg_text)
    r.guest_alive = alive
    r.pages_checked = checked
    r.pages_wrong = wrong
    r.kernel_complaints = sorted(set(console_bad + dmesg_bad))[:10]
    r.guest_bitmap_report = fpb_line[-1] if fpb_line else None
    return r


def migrate_run(setup, mode, scenario, rundir):
    """One migration, its machines' sockets and logs in @rundir."""
    hold, live, prep, during = scenario_commands(scenario, setup.mem_mib,
                                                 setup.hold_mib)
    disk = md5 = None
    if disk_mib(scenario, setup.mem_mib):
        disk, md5 = make_disk(rundir, disk_mib(scenario, setup.mem_mib))
    src = boot('source', mode, setup, rundir, disk=disk)
    dst = None
    try:
        dst = GuestVM('destination', mode, setup, rundir, incoming=True,
                      disk=disk)
        run_commands(src, prep)
        r = new_result(setup, mode, scenario, live)
        target = balloon_target_mib(scenario, setup.mem_mib)
        if target:
            r.balloon_mib = balloon_down(src, target)
        info, elapsed, cpu_ms = migrate(src, dst, setup, mode, during,
                                        rss=r)
        record_migration(r, info, elapsed, cpu_ms)
        check_destination(dst, r, src.console.text)
        return check_disk(dst, r, md5) if disk else r
    finally:
        src.close()
        if dst:
            dst.close()


def try_migrate_run(setup, mode, scenario):
    """migrate_run() in a folder of its own, so that harnesses running at
    once share no path; a run that breaks is a failed row, not the end, and
    keeps its folder (the QEMU logs)."""
    rundir = tempfile.mkdtemp(prefix='fph-run-')
    try:
        r = migrate_run(setup, mode, scenario, rundir)
        shutil.rmtree(rundir, ignore_errors=True)
        return r
    except RUN_ERRORS as e:
        progress('   run failed; its QEMU logs are in ' + rundir)
        # The logs tell why; the disk image would only fill the disk.
        if os.path.exists(os.path.join(rundir, DISK_IMAGE)):
            os.unlink(os.path.join(rundir, DISK_IMAGE))
        return RunResult(mode.kind, mode.name, scenario, setup.accel,
                         setup.mem_mib, setup.bandwidth_mib,
                         error=str(e)[:300],
                         sparse_ram=setup.sparse_ram or None)


def run_loop(setup, plan, baselines=None):
    """The run loop of the demo, the benchmark, the soak and the end-to-end
    check: one migration for each (label, scenario, mode) of @plan, in
    order, saying what runs and how it went; a mode is a Mode or the name of
    one.  Yields each RunResult, with its limit when @baselines are
    given."""
    for label, scenario, mode in plan:
        progress(label)
        start = time.monotonic()
        if not isinstance(mode, Mode):
            mode = MODES[mode]
        r = try_migrate_run(setup, mode, scenario)
        if baselines is not None:
            r.limit_mb = limit_mb(baselines, r)
        progress('   %.0f MB sent, %s ms, %s (%.0f s)' %
                 (r.mb_sent, r.total_ms, r.check(),
                  time.monotonic() - start))
        for line in r.kernel_complaints:
            print('      ' + line, flush=True)
        yield r


def idle_baselines(setup, kinds, reps=1, rows=None):
    """What each guest kernel sends idle with hints off, less its live data:
    the base of the limit (median of @reps runs).  The runs go to @rows
    when given."""
    baselines = {}
    for kind, mode in (('stock', 'off'), ('fph', 'fph-off')):
        if kind not in kinds:
            continue
        plan = [('baseline: %s kernel idle, hints off' % kind, 'idle', mode)]
        runs = list(run_loop(setup, plan * reps))
        if rows is not None:
            rows += runs
        vals = [r.mb_sent - r.live_mib * 1.048576 for r in runs]
        baselines[kind] = sorted(vals)[len(vals) // 2]
    return baselines


def limit_mb(baselines, r):
    """What the same guest kernel sends idle after boot, plus live data."""
    base = baselines.get(r.kind)
    if base is None:
        return None
    return round(base + r.live_mib * 1.048576, 1)


def wait_migration(vm, start, timeout):
    while True:
        info = vm.cmd('query-migrate')
        if info.get('status') in ('completed', 'failed', 'cancelled'):
            break
        if time.monotonic() - start > timeout:
            vm.cmd('migrate_cancel')
            raise RunError('migration did not finish in %d s' % timeout)
        time.sleep(0.1)
    if info['status'] != 'completed':
        raise RunError('migration %s: %s' % (info['status'],
                                             info.get('error-desc', '')))
    # Stock 7.2 announces completion before it counts the times (qemu-fph's
    # patch 0022 fixes that): a query in between reads 0 for both.
    deadline = time.monotonic() + 1
    while not info.get('total-time'):
        if time.monotonic() > deadline:
            raise RunError('migration completed without a total time')
        time.sleep(0.05)
        info = vm.cmd('query-migrate')
    return info


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port

