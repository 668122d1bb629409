/*
 * fph-guest: guest-side memory workloads for the qemu-fph migration tests
 *
 * One static binary for the test initramfs.  Each subcommand prints one
 * summary line and exits 0 on success:
 *
 *   fph-guest fill [--full] MIB   touch MIB MiB, then free it again
 *   fph-guest fragment MIB        leave the free memory in 4 KiB holes
 *   fph-guest churn MIB SECONDS   allocate, write and free in the background
 *   fph-guest hold MIB            keep MIB MiB of checkable data
 *   fph-guest verify              check the held data
 *   fph-guest rewrite             rewrite the held data (next generation)
 *   fph-guest meminfo             MemTotal and MemFree
 *
 * The holder keeps its pid in /run/fph-hold.pid and answers in
 * /run/fph-hold.result; FPH_RUN_DIR replaces /run (for runs on a host).
 *
 * Build: gcc -static -O2 -Wall -o fph-guest fph-guest.c
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/*
 * Pages are counted in 4 KiB units whatever the kernel's page size, since
 * that is the granularity of QEMU's dirty and free page bitmaps on x86.
 */
#define PAGE_SIZE_4K    4096UL
#define WORDS_PER_PAGE  (PAGE_SIZE_4K / sizeof(uint64_t))
#define MIB             (1024UL * 1024UL)
#define PAGES_PER_MIB   (MIB / PAGE_SIZE_4K)

/* More than any test guest has; catches typos such as an extra zero. */
#define MAX_MIB         (1024UL * 1024UL)
#define MAX_SECONDS     (7UL * 24 * 3600)

/* How long verify and rewrite wait for the holder. */
#define WAIT_SECONDS    120

static const char *prog = "fph-guest";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
                                                    noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: error: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: %s fill [--full] MIB\n"
            "       %s fragment MIB\n"
            "       %s churn MIB SECONDS\n"
            "       %s hold MIB\n"
            "       %s verify\n"
            "       %s rewrite\n"
            "       %s meminfo\n",
            prog, prog, prog, prog, prog, prog, prog);
    exit(2);
}

/*
 * Parse a decimal count in [min, max]; name says what it is in errors.
 * By hand rather than with strtoul, which takes signs, blanks and wraps
 * negative numbers around.
 */
static unsigned long parse_count(const char *s, const char *name,
                                 unsigned long min, unsigned long max)
{
    const char *c;
    unsigned long v = 0;

    if (!*s) {
        die("%s is empty", name);
    }
    for (c = s; *c; c++) {
        if (*c < '0' || *c > '9') {
            die("%s '%s' is not a decimal number", name, s);
        }
        if (v > (max - (*c - '0')) / 10) {
            die("%s %s is out of range (%lu-%lu)", name, s, min, max);
        }
        v = v * 10 + (*c - '0');
    }
    if (v < min) {
        die("%s %lu is out of range (%lu-%lu)", name, v, min, max);
    }
    return v;
}

static const char *run_dir(void)
{
    const char *d = getenv("FPH_RUN_DIR");

    return d && *d ? d : "/run";
}

static char *run_path(const char *name)
{
    char *p;

    if (asprintf(&p, "%s/%s", run_dir(), name) < 0) {
        die("out of memory");
    }
    return p;
}

/*
 * Map len bytes of private anonymous memory.  nohuge asks for 4 KiB pages
 * only: with transparent huge pages a 2 MiB page is freed as one piece, so
 * punching 4 KiB holes into it would free nothing.
 */
static uint8_t *map_anon(size_t len, bool nohuge)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        die("mmap of %zu MiB failed: %s", len / MIB, strerror(errno));
    }
    if (nohuge && madvise(p, len, MADV_NOHUGEPAGE) < 0) {
        die("madvise(MADV_NOHUGEPAGE) failed: %s", strerror(errno));
    }
    return p;
}

/*
 * One non-zero word per 4 KiB page is enough for QEMU to see the page as
 * non-zero (its zero-page check reads the whole page); full writes every
 * word, for workloads that want the pages' whole contents to be data.
 */
static void touch_pages(uint8_t *p, size_t pages, bool full)
{
    size_t i, w;

    for (i = 0; i < pages; i++) {
        uint64_t *page = (uint64_t *)(p + i * PAGE_SIZE_4K);
        uint64_t v = 0xf9b1f9b100000000ULL | (i + 1);

        if (full) {
            for (w = 0; w < WORDS_PER_PAGE; w++) {
                page[w] = v ^ w;
            }
        } else {
            page[0] = v;
        }
    }
}

/*
 * Background work: fork a child that does the work and reports through a
 * pipe, so the parent can print the child's one summary line (or its
 * error) and exit with the right status once the child is ready.  The
 * child leaves the session of the console shell, so that hangups and job
 * control of the shell do not reach it.
 */
static int report_fd = -1;

static void daemonize(void)
{
    int fds[2];
    pid_t pid;
    char buf[512];
    size_t len = 0;
    ssize_t n;

    if (pipe(fds) < 0) {
        die("pipe failed: %s", strerror(errno));
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        die("fork failed: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        report_fd = fds[1];
        setsid();
        signal(SIGHUP, SIG_IGN);
        /* Errors before the report still reach the parent via stderr. */
        if (dup2(report_fd, STDERR_FILENO) < 0) {
            _exit(1);
        }
        return;
    }

    close(fds[1]);
    for (;;) {
        n = read(fds[0], buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0 || len + n >= sizeof(buf) - 1) {
            len += n > 0 ? n : 0;
            break;
        }
        len += n;
    }
    buf[len] = '\0';
    if (strncmp(buf, "ok ", 3) == 0) {
        fputs(buf + 3, stdout);
        exit(0);
    }
    if (len == 0) {
        die("background process %d exited without a report", (int)pid);
    }
    /* The child's die() wrote a complete message. */
    fputs(buf, stderr);
    exit(1);
}

/* In the child: hand the parent its summary line and detach from stdio. */
static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void report(const char *fmt, ...)
{
    char buf[480];
    va_list ap;
    int fd;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (dprintf(report_fd, "ok %s\n", buf) < 0) {
        _exit(1);
    }

    /* Nothing may reach the console the test runner parses from now on. */
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO) {
            close(fd);
        }
    }
    close(report_fd);
    report_fd = -1;
}

static int cmd_fill(int argc, char **argv)
{
    bool full = false;
    unsigned long mib;
    size_t pages;
    uint8_t *p;

    if (argc == 3 && strcmp(argv[1], "--full") == 0) {
        full = true;
        argv++;
        argc--;
    }
    if (argc != 2) {
        usage();
    }
    mib = parse_count(argv[1], "MIB", 1, MAX_MIB);
    pages = mib * PAGES_PER_MIB;

    /*
     * munmap hands the pages back to the kernel's free lists with our data
     * still in them: that is what free page hinting must skip safely.
     */
    p = map_anon(mib * MIB, false);
    touch_pages(p, pages, full);
    if (munmap(p, mib * MIB) < 0) {
        die("munmap failed: %s", strerror(errno));
    }
    printf("fill: %zu pages written and freed\n", pages);
    return 0;
}

static int cmd_fragment(int argc, char **argv)
{
    unsigned long mib;
    size_t pages, i, freed = 0;
    uint8_t *p;

    if (argc != 2) {
        usage();
    }
    mib = parse_count(argv[1], "MIB", 1, MAX_MIB);
    pages = mib * PAGES_PER_MIB;

    /* Fork first so the memory belongs to the holder alone (no COW). */
    daemonize();
    p = map_anon(mib * MIB, true);
    touch_pages(p, pages, false);
    for (i = 0; i < pages; i += 2) {
        if (madvise(p + i * PAGE_SIZE_4K, PAGE_SIZE_4K, MADV_DONTNEED) < 0) {
            die("madvise(MADV_DONTNEED) failed: %s", strerror(errno));
        }
        freed++;
    }
    report("fragment: %zu pages freed in 4 KiB holes, holder pid %d",
           freed, (int)getpid());

    /* The kept pages pin the holes between them until we are killed. */
    for (;;) {
        pause();
    }
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmd_churn(int argc, char **argv)
{
    unsigned long mib, seconds;
    size_t chunk, pages;
    double end;
    uint64_t cycles = 0;
    char *path;
    FILE *f;

    if (argc != 3) {
        usage();
    }
    mib = parse_count(argv[1], "MIB", 1, MAX_MIB);
    seconds = parse_count(argv[2], "SECONDS", 1, MAX_SECONDS);

    /* An eighth at a time, whole 4 KiB pages, at least one. */
    pages = mib * PAGES_PER_MIB / 8;
    if (pages == 0) {
        pages = 1;
    }
    chunk = pages * PAGE_SIZE_4K;

    daemonize();
    report("churn: pid %d, %zu KiB chunks for %lu s",
           (int)getpid(), chunk / 1024, seconds);

    /*
     * Pages go from free to used and back again all the time, so the free
     * page information QEMU gets is always a little out of date.
     */
    end = now() + seconds;
    while (now() < end) {
        uint8_t *p = map_anon(chunk, false);

        touch_pages(p, pages, false);
        munmap(p, chunk);
        cycles++;
    }

    /* Not needed by the runner, but shows afterwards that it ran. */
    path = run_path("fph-churn.result");
    f = fopen(path, "w");
    if (f) {
        fprintf(f, "churn: %" PRIu64 " cycles of %zu KiB in %lu s\n",
                cycles, chunk / 1024, seconds);
        fclose(f);
    }
    return 0;
}

/*
 * The held data: every word of every page differs, and changes with the
 * generation, so that a page sent from an old round, a page left out, a
 * zero page or a page at the wrong address all show up in verify.
 * splitmix64's finaliser is cheap and mixes every input bit.
 */
static inline uint64_t hold_word(uint64_t page, uint64_t word, uint64_t gen)
{
    uint64_t x = (gen * 0x9e3779b97f4a7c15ULL) ^ (page << 9 | word);

    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    /* Never zero, so no page of held data looks like a zero page. */
    return x | 1;
}

static void hold_write(uint8_t *p, size_t pages, uint64_t gen)
{
    size_t i, w;

    for (i = 0; i < pages; i++) {
        uint64_t *page = (uint64_t *)(p + i * PAGE_SIZE_4K);

        for (w = 0; w < WORDS_PER_PAGE; w++) {
            page[w] = hold_word(i, w, gen);
        }
    }
}

/* Returns the number of wrong pages; logs the first few to log. */
static size_t hold_check(const uint8_t *p, size_t pages, uint64_t gen,
                         FILE *log)
{
    size_t i, w, wrong = 0;

    for (i = 0; i < pages; i++) {
        const uint64_t *page = (const uint64_t *)(p + i * PAGE_SIZE_4K);

        for (w = 0; w < WORDS_PER_PAGE; w++) {
            if (page[w] != hold_word(i, w, gen)) {
                break;
            }
        }
        if (w == WORDS_PER_PAGE) {
            continue;
        }
        if (log && wrong < 16) {
            fprintf(log, "page %zu word %zu: 0x%016" PRIx64
                    " expected 0x%016" PRIx64 "\n",
                    i, w, page[w], hold_word(i, w, gen));
        }
        wrong++;
    }
    return wrong;
}

/* Replace path's contents with line at once: write a temporary, rename. */
static void write_atomic(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void write_atomic(const char *path, const char *fmt, ...)
{
    char *tmp;
    FILE *f;
    va_list ap;

    if (asprintf(&tmp, "%s.tmp", path) < 0) {
        die("out of memory");
    }
    f = fopen(tmp, "w");
    if (!f) {
        die("cannot write %s: %s", tmp, strerror(errno));
    }
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    if (fflush(f) != 0 || fsync(fileno(f)) < 0 || fclose(f) != 0) {
        die("cannot write %s: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) < 0) {
        die("cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
    free(tmp);
}

/* Read the holder's pid from path; false if there is none. */
static bool read_pid(const char *path, long *pid)
{
    FILE *f = fopen(path, "r");
    bool ok;

    if (!f) {
        return false;
    }
    ok = fscanf(f, "%ld", pid) == 1 && *pid > 1;
    fclose(f);
    return ok;
}

static volatile sig_atomic_t want_verify, want_rewrite;

static void on_signal(int sig)
{
    /* Only note the request: the main loop does the work. */
    if (sig == SIGUSR1) {
        want_verify = 1;
    } else {
        want_rewrite = 1;
    }
}

/*
 * Answer the holder's signals forever.  old is the signal mask to wait
 * with, in which SIGUSR1 and SIGUSR2 are not blocked.
 */
static void hold_serve(uint8_t *p, size_t pages, uint64_t gen,
                       const sigset_t *old, const char *result_path,
                       const char *log_path) __attribute__((noreturn));

static void hold_serve(uint8_t *p, size_t pages, uint64_t gen,
                       const sigset_t *old, const char *result_path,
                       const char *log_path)
{
    for (;;) {
        while (!want_verify && !want_rewrite) {
            sigsuspend(old);
        }
        /* Verify first: it asks about the data as it was when asked. */
        if (want_verify) {
            FILE *log = fopen(log_path, "w");
            size_t wrong;

            want_verify = 0;
            wrong = hold_check(p, pages, gen, log);
            if (log) {
                fclose(log);
            }
            write_atomic(result_path, "verify: pages checked %zu, "
                         "pages wrong %zu\n", pages, wrong);
        }
        if (want_rewrite) {
            want_rewrite = 0;
            gen++;
            hold_write(p, pages, gen);
            write_atomic(result_path, "rewrite: generation %" PRIu64 "\n",
                         gen);
        }
    }
}

static int cmd_hold(int argc, char **argv)
{
    unsigned long mib;
    size_t pages;
    uint64_t gen = 1;
    uint8_t *p;
    char *pid_path, *result_path, *log_path;
    long pid;
    struct sigaction sa;
    sigset_t block, old;

    if (argc != 2) {
        usage();
    }
    mib = parse_count(argv[1], "MIB", 1, MAX_MIB);
    pages = mib * PAGES_PER_MIB;
    pid_path = run_path("fph-hold.pid");
    result_path = run_path("fph-hold.result");
    log_path = run_path("fph-hold.log");

    /*
     * verify and rewrite talk to the pid in the pid file: a second holder
     * would take it over and leave the first one's memory unaccounted for.
     */
    if (read_pid(pid_path, &pid) && kill(pid, 0) == 0) {
        die("a holder is already running (pid %ld); kill it first", pid);
    }

    daemonize();

    /*
     * Block the signals outside sigsuspend, so a request that arrives while
     * we work is kept pending instead of racing with the flag checks.
     */
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, &old);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);

    p = map_anon(mib * MIB, false);
    hold_write(p, pages, gen);
    unlink(result_path);
    write_atomic(pid_path, "%d\n", (int)getpid());
    report("hold: %zu pages written, generation %" PRIu64 ", holder pid %d",
           pages, gen, (int)getpid());

    hold_serve(p, pages, gen, &old, result_path, log_path);
}

/*
 * Ask the holder with sig and wait for its answer, a result line that
 * starts with prefix.  The old result is removed first so that only a new
 * answer counts.  Returns the line, without its newline.
 */
static char *ask_holder(int sig, const char *prefix)
{
    char *pid_path = run_path("fph-hold.pid");
    char *result_path = run_path("fph-hold.result");
    static char line[256];
    FILE *f;
    long pid;
    double deadline;

    if (!read_pid(pid_path, &pid)) {
        die("no holder: cannot read a pid from %s (run '%s hold MIB' "
            "first)", pid_path, prog);
    }

    if (unlink(result_path) < 0 && errno != ENOENT) {
        die("cannot remove %s: %s", result_path, strerror(errno));
    }
    if (kill(pid, sig) < 0) {
        die("cannot signal holder pid %ld: %s", pid, strerror(errno));
    }

    deadline = now() + WAIT_SECONDS;
    for (;;) {
        f = fopen(result_path, "r");
        if (f) {
            bool got = fgets(line, sizeof(line), f) != NULL;

            fclose(f);
            if (got && strncmp(line, prefix, strlen(prefix)) == 0) {
                line[strcspn(line, "\n")] = '\0';
                return line;
            }
        }
        if (kill(pid, 0) < 0 && errno == ESRCH) {
            die("holder pid %ld is gone", pid);
        }
        if (now() > deadline) {
            die("no answer from holder pid %ld in %d s", pid, WAIT_SECONDS);
        }
        usleep(50 * 1000);
    }
}

static int cmd_verify(int argc, char **argv)
{
    unsigned long checked, wrong;
    char *line;

    if (argc != 1) {
        usage();
    }
    line = ask_holder(SIGUSR1, "verify:");
    if (sscanf(line, "verify: pages checked %lu, pages wrong %lu",
               &checked, &wrong) != 2) {
        die("unexpected answer '%s'", line);
    }
    printf("%s\n", line);
    return wrong == 0 ? 0 : 1;
}

static int cmd_rewrite(int argc, char **argv)
{
    if (argc != 1) {
        usage();
    }
    printf("%s\n", ask_holder(SIGUSR2, "rewrite:"));
    return 0;
}

static int cmd_meminfo(int argc, char **argv)
{
    FILE *f;
    char line[256];
    unsigned long v, total = 0, free_kb = 0, avail = 0;
    int found = 0;

    if (argc != 1) {
        usage();
    }
    f = fopen("/proc/meminfo", "r");
    if (!f) {
        die("cannot read /proc/meminfo: %s", strerror(errno));
    }
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "MemTotal: %lu kB", &v) == 1) {
            total = v;
            found |= 1;
        } else if (sscanf(line, "MemFree: %lu kB", &v) == 1) {
            free_kb = v;
            found |= 2;
        } else if (sscanf(line, "MemAvailable: %lu kB", &v) == 1) {
            avail = v;
        }
    }
    fclose(f);
    if (found != 3) {
        die("no MemTotal/MemFree in /proc/meminfo");
    }
    printf("meminfo: MemTotal %lu kB, MemFree %lu kB, MemAvailable %lu kB\n",
           total, free_kb, avail);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
    } cmds[] = {
        { "fill", cmd_fill },
        { "fragment", cmd_fragment },
        { "churn", cmd_churn },
        { "hold", cmd_hold },
        { "verify", cmd_verify },
        { "rewrite", cmd_rewrite },
        { "meminfo", cmd_meminfo },
    };
    size_t i;

    /* Summary lines must reach the console before a fork or an exit. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        usage();
    }
    for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) == 0) {
            return cmds[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "%s: error: unknown subcommand '%s'\n", prog, argv[1]);
    usage();
}
