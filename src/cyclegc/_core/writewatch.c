/* writewatch.c -- which pages of ours did anything write since we looked?
 *
 * A page write detector, the one thing a proof spread over several stops
 * needs (incremental.c, "a closure proven across stops"): CPython has no
 * write barrier, but every store to memory goes through the page tables,
 * and Linux 6.7 can report those stores per page without a fault handler
 * of ours:
 *
 *   - userfaultfd(2) with UFFD_FEATURE_WP_ASYNC: pages of a registered
 *     range can be write-protected; the first write to one after that is
 *     resolved by the kernel itself (no thread of ours wakes up, no signal,
 *     a write from the kernel -- read(2) into such a page -- succeeds) and
 *     clears the page's protection;
 *   - ioctl(PAGEMAP_SCAN) on /proc/self/pagemap: which pages of a range are
 *     unprotected ("written"), and write-protect them again in the same
 *     call.
 *
 * Unprivileged processes may use it with UFFD_USER_MODE_ONLY (the default
 * vm.unprivileged_userfaultfd=0 allows that flag); container seccomp
 * profiles often forbid the syscall.  Where anything is missing (an older
 * kernel, no userfaultfd, a seccomp filter, soft-dirty-only kernels)
 * cg_ww_available() is 0 and the caller keeps its one-stop proof.
 *
 * What "clean" means, exactly: cg_ww_dirty(pages) leaves a page out of
 * its answer only if the page is mapped, belongs to a range registered
 * with our userfaultfd, and has not been written since cg_ww_protect()
 * protected it; it lists the pages written since, and fails (-1) if any
 * page is unmapped, in a range mapped afresh (not registered), or not
 * present (dropped with MADV_DONTNEED): a caller treats that as "anything
 * may have happened".  Writes are seen whoever makes them: this thread, another
 * thread, the kernel on our behalf.
 *
 * A forked child starts without the detector (its mappings are not
 * registered, and the descriptors name the parent's memory):
 * cg_ww_after_fork() forgets them; the child opens its own when it next
 * needs them.
 */
#include "collector.h"

#if defined(__linux__)
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

/* The kernel ABI of Linux 6.7+, spelled out: the build machine's headers
 * may be older than the kernel the module runs on. */
#ifndef UFFD_FEATURE_WP_ASYNC
#  define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_USER_MODE_ONLY
#  define UFFD_USER_MODE_ONLY 1
#endif
typedef struct { uint64_t start, end, categories; } CgPageRegion;
typedef struct {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
} CgPmScanArg;
#define CG_PAGEMAP_SCAN         _IOWR('f', 16, CgPmScanArg)
#define CG_PAGE_IS_WPALLOWED    (1 << 0)
#define CG_PAGE_IS_WRITTEN      (1 << 1)
#define CG_PAGE_IS_PRESENT      (1 << 3)
#define CG_PAGE_IS_SWAPPED      (1 << 4)
#define CG_PM_SCAN_WP_MATCHING  (1 << 0)
#define CG_PM_SCAN_CHECK_WPASYNC (1 << 1)

#define PAGE_SHIFT_4K 12
#define CHUNK (1UL << 20)       /* ranges are registered a MiB at a time */
#define RUN_GAP 4               /* pages apart that still make one run */

static struct {
    int state;                  /* 0 untried, 1 available, -1 not */
    int uffd, pagemap;
    long page_size;
    Py_ssize_t registrations, protects, scans;
} ww = {0, -1, -1, 0, 0, 0, 0};

static void
ww_close(void)
{
    if (ww.uffd >= 0) {
        close(ww.uffd);
    }
    if (ww.pagemap >= 0) {
        close(ww.pagemap);
    }
    ww.uffd = ww.pagemap = -1;
}

/* Our two descriptors, out of the program's way.  The kernel hands out the
 * lowest free number, and programs expect the numbers they get to follow
 * one another; the detector opens its descriptors at the first closure
 * spread, wherever the program is then, and a low number taken there can
 * sit in the middle of a run the program makes later.  (CPython's test_os
 * test_closerange, which wants consecutive or free descriptors, skipped in
 * a whole-list run under install(max_pause_ms=2) and ran with the
 * built-in; alone it skips with the built-in too, so that run does not
 * show our descriptors were the cause.)  They are moved to just below the
 * soft limit (at most 4096, so that the table does not grow past that),
 * where a checker such as valgrind keeps its own.  If that fails, the
 * descriptor stays where it is. */
static int
ww_high_fd(int fd)
{
    struct rlimit rl;
    if (fd < 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < 256) {
        return fd;
    }
    rlim_t top = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 4096 ? 4096 : rl.rlim_cur;
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, (int)(top - 64));
    if (hi < 0) {
        return fd;
    }
    close(fd);
    return hi;
}

/* Opens the detector once per process; 1 if it works. */
int
cg_ww_available(void)
{
    if (ww.state != 0) {
        return ww.state > 0;
    }
    ww.state = -1;
    ww.page_size = sysconf(_SC_PAGESIZE);
    if (ww.page_size != (1L << PAGE_SHIFT_4K)) {
        return 0;
    }
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0) {
        fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    }
    if (fd < 0) {
        return 0;
    }
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC};
    if (ioctl(fd, UFFDIO_API, &api) != 0 || !(api.features & UFFD_FEATURE_WP_ASYNC)) {
        close(fd);
        return 0;
    }
    ww.uffd = ww_high_fd(fd);
    ww.pagemap = ww_high_fd(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
    if (ww.pagemap < 0) {
        ww_close();
        return 0;
    }
    /* A probe: PAGEMAP_SCAN exists (6.7+) if it accepts an empty range. */
    CgPmScanArg arg;
    memset(&arg, 0, sizeof(arg));
    arg.size = sizeof(arg);
    arg.category_mask = CG_PAGE_IS_WRITTEN;
    arg.return_mask = CG_PAGE_IS_WRITTEN;
    if (ioctl(ww.pagemap, CG_PAGEMAP_SCAN, &arg) < 0) {
        ww_close();
        return 0;
    }
    ww.state = 1;
    return 1;
}

void
cg_ww_after_fork(void)
{
    ww_close();
    ww.state = 0;
}

static int
ww_register(uintptr_t start, uintptr_t end)
{
    struct uffdio_register reg;
    memset(&reg, 0, sizeof(reg));
    reg.range.start = start;
    reg.range.len = end - start;
    reg.mode = UFFDIO_REGISTER_MODE_WP;
    if (ioctl(ww.uffd, UFFDIO_REGISTER, &reg) != 0) {
        return -1;
    }
    ww.registrations++;
    return 0;
}

/* Write-protects [start, end) (pages written since the last time; the
 * others still are).  A range not registered yet is registered, a MiB
 * around it if that is all mapped memory of a kind userfaultfd accepts,
 * else exactly. */
static int
ww_protect_range(uintptr_t start, uintptr_t end)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        CgPmScanArg arg;
        memset(&arg, 0, sizeof(arg));
        arg.size = sizeof(arg);
        arg.flags = CG_PM_SCAN_WP_MATCHING | CG_PM_SCAN_CHECK_WPASYNC;
        arg.start = start;
        arg.end = end;
        arg.category_mask = CG_PAGE_IS_WRITTEN;
        arg.return_mask = CG_PAGE_IS_WRITTEN;
        ww.protects++;
        if (ioctl(ww.pagemap, CG_PAGEMAP_SCAN, &arg) >= 0 && arg.walk_end == end) {
            return 0;
        }
        if (attempt == 0) {
            uintptr_t cs = start & ~(CHUNK - 1), ce = (end + CHUNK - 1) & ~(CHUNK - 1);
            if (ww_register(cs, ce) != 0 && ww_register(start, end) != 0) {
                return -1;
            }
        }
    }
    return -1;
}

/* Calls fn on each run of `pages` (sorted page numbers, duplicates
 * allowed): pages at most RUN_GAP apart form one run (the gap's pages are
 * protected too: more "changed" answers, never fewer).  Stops at the
 * first nonzero answer and returns it. */
static int
for_each_run(const uintptr_t *pages, Py_ssize_t n, int (*fn)(uintptr_t, uintptr_t))
{
    Py_ssize_t i = 0;
    while (i < n) {
        uintptr_t first = pages[i], last = pages[i];
        i++;
        while (i < n && pages[i] <= last + RUN_GAP) {
            last = pages[i] > last ? pages[i] : last;
            i++;
        }
        int r = fn(first << PAGE_SHIFT_4K, (last + 1) << PAGE_SHIFT_4K);
        if (r != 0) {
            return r;
        }
    }
    return 0;
}

int
cg_ww_protect(const uintptr_t *pages, Py_ssize_t n)
{
    if (!cg_ww_available()) {
        return -1;
    }
    return for_each_run(pages, n, ww_protect_range) ? -1 : 0;
}

/* The regions a scan reports, reused between calls. */
#define REGIONS 4096
static CgPageRegion *regions;

/* A page is clean when the walk reports it mapped (present or swapped),
 * in a registered range, and not written.  One scan covers the pages
 * between two watched pages too (the walk costs little per page; a call
 * per run would cost a syscall each), so a scan reports every mapped
 * page of its span, categories merged into regions, and the watched pages
 * are looked up in them: a page in no region is not mapped. */
#define SPAN_GAP (1UL << 16)    /* pages (256 MiB) between spans scanned apart */
#define WRITTEN(c) (((c) & (CG_PAGE_IS_WPALLOWED | CG_PAGE_IS_WRITTEN)) == \
                    (CG_PAGE_IS_WPALLOWED | CG_PAGE_IS_WRITTEN) \
                    && ((c) & (CG_PAGE_IS_PRESENT | CG_PAGE_IS_SWAPPED)))
#define CLEAN(c) (((c) & (CG_PAGE_IS_WPALLOWED | CG_PAGE_IS_WRITTEN)) == CG_PAGE_IS_WPALLOWED \
                  && ((c) & (CG_PAGE_IS_PRESENT | CG_PAGE_IS_SWAPPED)))

/* Appends the written pages of `pages[0..n)` (one span) to out; -1 if a
 * page is neither clean nor written-and-mapped, or out is full. */
static int
ww_span_dirty(const uintptr_t *pages, Py_ssize_t n, uintptr_t *out, Py_ssize_t *nout,
              Py_ssize_t max)
{
    uintptr_t start = pages[0] << PAGE_SHIFT_4K, end = (pages[n - 1] + 1) << PAGE_SHIFT_4K;
    Py_ssize_t i = 0;
    while (start < end) {
        CgPmScanArg arg;
        memset(&arg, 0, sizeof(arg));
        arg.size = sizeof(arg);
        arg.start = start;
        arg.end = end;
        arg.vec = (uint64_t)(uintptr_t)regions;
        arg.vec_len = REGIONS;
        arg.return_mask = CG_PAGE_IS_WPALLOWED | CG_PAGE_IS_WRITTEN
                          | CG_PAGE_IS_PRESENT | CG_PAGE_IS_SWAPPED;
        ww.scans++;
        long r = ioctl(ww.pagemap, CG_PAGEMAP_SCAN, &arg);
        if (r < 0 || arg.walk_end <= start) {
            return -1;
        }
        long k = 0;
        while (i < n && (pages[i] << PAGE_SHIFT_4K) < arg.walk_end) {
            uintptr_t a = pages[i] << PAGE_SHIFT_4K;
            while (k < r && regions[k].end <= a) {
                k++;
            }
            if (k == r || regions[k].start > a) {
                return -1;                  /* not mapped */
            }
            if (!CLEAN(regions[k].categories)) {
                if (!WRITTEN(regions[k].categories) || *nout >= max) {
                    return -1;              /* not registered, not present; too many */
                }
                out[(*nout)++] = pages[i];
            }
            i++;
        }
        start = arg.walk_end;
    }
    return i < n ? -1 : 0;
}

Py_ssize_t
cg_ww_dirty(const uintptr_t *pages, Py_ssize_t n, uintptr_t *out, Py_ssize_t max)
{
    if (!cg_ww_available()) {
        return -1;
    }
    if (regions == NULL) {
        regions = PyMem_RawMalloc(REGIONS * sizeof(CgPageRegion));
        if (regions == NULL) {
            return -1;
        }
    }
    Py_ssize_t nout = 0, i = 0;
    while (i < n) {
        Py_ssize_t j = i + 1;
        while (j < n && pages[j] - pages[j - 1] < SPAN_GAP) {
            j++;
        }
        if (ww_span_dirty(pages + i, j - i, out, &nout, max) < 0) {
            return -1;
        }
        i = j;
    }
    return nout;
}

/* The pages made writable again without a fault: before the collector
 * writes to watched objects itself (a proof's end).  Errors are ignored: a
 * page left protected costs a fault at its next write, nothing more. */
static int
ww_release_range(uintptr_t start, uintptr_t end)
{
    struct uffdio_writeprotect wp;
    memset(&wp, 0, sizeof(wp));
    wp.range.start = start;
    wp.range.len = end - start;
    wp.mode = 0;
    (void)ioctl(ww.uffd, UFFDIO_WRITEPROTECT, &wp);
    return 0;
}

/* From pages[pos], run by run, until `deadline` (seconds, cg_now());
 * returns where it stopped (n: all done). */
Py_ssize_t
cg_ww_release(const uintptr_t *pages, Py_ssize_t n, Py_ssize_t pos, double deadline)
{
    if (ww.state <= 0) {
        return n;
    }
    Py_ssize_t runs = 0;
    while (pos < n) {
        if (++runs % 16 == 0 && cg_now() > deadline) {
            break;
        }
        uintptr_t first = pages[pos], last = pages[pos];
        pos++;
        while (pos < n && pages[pos] <= last + RUN_GAP) {
            last = pages[pos] > last ? pages[pos] : last;
            pos++;
        }
        (void)ww_release_range(first << PAGE_SHIFT_4K, (last + 1) << PAGE_SHIFT_4K);
    }
    return pos;
}

/* For tests: the detector on memory of its own (8 pages, mapped here):
 * what it reports after a protect, a write from this thread, a write by
 * the kernel (read(2) from a pipe), and an unmapped page. */
PyObject *
cg_ww_selftest(void)
{
    if (!cg_ww_available()) {
        return Py_BuildValue("{sO}", "available", Py_False);
    }
    long ps = 1L << PAGE_SHIFT_4K;
    char *m = mmap(NULL, 8 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    memset(m, 1, 8 * ps);
    uintptr_t pages[8], out[8];
    for (int i = 0; i < 8; i++) {
        pages[i] = ((uintptr_t)m >> PAGE_SHIFT_4K) + (uintptr_t)i;
    }
    int protected_ok = cg_ww_protect(pages, 8) == 0;
    Py_ssize_t clean = cg_ww_dirty(pages, 8, out, 8);
    m[2 * ps + 100] = 7;
    Py_ssize_t one = cg_ww_dirty(pages, 8, out, 8);
    int one_is_2 = one == 1 && out[0] == pages[2];
    int fds[2], kernel_ok = 0;
    if (pipe(fds) == 0) {
        if (write(fds[1], "abc", 3) == 3 && read(fds[0], m + 5 * ps + 8, 3) == 3) {
            Py_ssize_t two = cg_ww_dirty(pages, 8, out, 8);
            kernel_ok = two == 2 && out[1] == pages[5];
        }
        close(fds[0]);
        close(fds[1]);
    }
    (void)cg_ww_release(pages, 8, 0, 1e300);
    munmap(m + 7 * ps, ps);
    Py_ssize_t unmapped = cg_ww_dirty(pages, 8, out, 8);
    munmap(m, 7 * ps);
    return Py_BuildValue("{sOsOsnsOsOsn}", "available", Py_True,
                         "protected", protected_ok ? Py_True : Py_False,
                         "dirty_after_protect", clean,
                         "write_seen_on_its_page", one_is_2 ? Py_True : Py_False,
                         "kernel_write_seen", kernel_ok ? Py_True : Py_False,
                         "unmapped_answer", unmapped);
}

PyObject *
cg_ww_stats(void)
{
    return Py_BuildValue("{sOsnsnsn}", "available", cg_ww_available() ? Py_True : Py_False,
                         "registrations", ww.registrations, "protects", ww.protects,
                         "scans", ww.scans);
}

#else   /* not Linux: no detector */

int cg_ww_available(void) { return 0; }
void cg_ww_after_fork(void) {}
int cg_ww_protect(const uintptr_t *pages, Py_ssize_t n) { (void)pages; (void)n; return -1; }
Py_ssize_t cg_ww_dirty(const uintptr_t *pages, Py_ssize_t n, uintptr_t *out, Py_ssize_t max)
{ (void)pages; (void)n; (void)out; (void)max; return -1; }
Py_ssize_t cg_ww_release(const uintptr_t *pages, Py_ssize_t n, Py_ssize_t pos, double deadline)
{ (void)pages; (void)pos; (void)deadline; return n; }
PyObject *
cg_ww_stats(void)
{
    return Py_BuildValue("{sO}", "available", Py_False);
}
PyObject *
cg_ww_selftest(void)
{
    return Py_BuildValue("{sO}", "available", Py_False);
}

#endif
