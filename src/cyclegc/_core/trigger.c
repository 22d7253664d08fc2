/* trigger.c -- cyclegc runs the process's automatic collections.
 *
 * While installed (cyclegc.install()):
 *
 *  - the interpreter's own threshold0 is 0, so CPython's automatic
 *    collector never runs (every version tests `threshold0 != 0` before it
 *    schedules or runs one); trig.threshold0 holds the value, which
 *    gc.get_threshold()/set_threshold() read and write (cg_threshold0,
 *    cg_set_threshold0).  The interpreter's `enabled` stays the one flag
 *    for both APIs: gc.enable()/disable() and C code's PyGC_Enable()/
 *    PyGC_Disable()/PyGC_IsEnabled() switch cyclegc's automatic
 *    collections, as they switch the built-in's.  (Keeping the built-in off
 *    with enabled = 0 made PyGC_IsEnabled() answer 0 and let PyGC_Enable()
 *    wake the built-in next to cyclegc: CPython's test_capi test_gc_control.)
 *    A threshold0 written by the built-in's own gc.set_threshold (a
 *    reference taken before install()) is adopted at the next malloc;
 *
 *  - a wrapper around the PYMEM_DOMAIN_OBJ allocator finds the allocation
 *    that makes a collection due, and the collection runs where the
 *    built-in's would (compat.h, CG_COLLECTS_IN_ALLOCATION): inside that
 *    allocation on 3.11, at the allocating thread's next eval-breaker check
 *    on 3.12+.  The interpreter counts a new GC object after its malloc
 *    returns (_PyObject_GC_Link: count0++, then "due if count0 >
 *    threshold0"), so the wrapper sees the count left by the previous
 *    allocations and must tell, *before* the malloc, whether this one is a
 *    GC object's.  It tells by the malloc's return address: every GC object
 *    of the interpreter is allocated at a handful of call sites (its
 *    gc_alloc, inlined into the exported _PyObject_GC_New/_NewVar/...,
 *    and tp_alloc's PyType_GenericAlloc, which allocates GC and non-GC
 *    types alike).  install() learns those addresses by calling each entry
 *    point once (calibrate()); for PyType_GenericAlloc it also learns where
 *    the caller's `type` argument lies in our frame, so that the wrapper
 *    can ask the type itself.  So "count0 >= threshold0 at a GC object's
 *    malloc" is exactly the built-in's condition, checked one step earlier.
 *    Mallocs at other sites (ints, strings, buffers) never schedule
 *    anything.  A site calibration did not know (an extension calling
 *    PyObject_Malloc and linking itself is impossible, but tracemalloc
 *    wrapping us is not) is learned the first time a malloc there is
 *    followed by a link near the threshold; that one collection runs late,
 *    at the next allocation.  realloc and free are the wrapped allocator's
 *    own functions (no cost);
 *
 *  - on 3.12+ the collection runs from a pending call, which the
 *    interpreter runs at the next eval-breaker check, in any thread: the
 *    point where it would have run its own scheduled collection.  On 3.11
 *    it runs inside the allocation, in whatever thread allocates, before the
 *    real malloc: the built-in collects right after it, with nothing
 *    observable in between, and leaves the new object uncounted (count0 is
 *    set so that the link brings it to 0, as the built-in's leaves it).
 *    Where 3.11 cannot tell (a learned site, PyType_GenericAlloc without a
 *    calibrated type slot), the collection is deferred to the nearest safe
 *    point after: a pending call in the main thread; in another thread its
 *    next line, call or return event, through a C trace function armed on
 *    that thread only (compat.h, cg_line_hook_arm), or a helper thread that
 *    takes the GIL at the allocating thread's next eval-breaker check where
 *    the thread has a tracer of its own or allocates another threshold0
 *    objects without an event.  Collecting in the thread that allocated is
 *    what the built-in does, and it matters: a thread whose collection runs
 *    elsewhere keeps allocating whenever a finalizer releases the GIL (I/O),
 *    no collection can start meanwhile, and collections snowball (7-13
 *    instead of 428 in tests/test_install.py's case).  What remains
 *    different: 3.12+'s built-in also runs a scheduled collection from
 *    PyErr_CheckSignals() (C code polling for signals); a pending call does
 *    not run there, so cyclegc's runs at the next eval-breaker check;
 *
 *  - the collection itself chooses the generation by the built-in's rules
 *    (the oldest generation whose count exceeds its threshold; the oldest
 *    only if long_lived_pending > long_lived_total / 4) and runs it through
 *    cg_run_collection(gen, CG_REASON_AUTO) (protocol.c), the C function
 *    behind cyclegc.api.run_collection(gen, "auto"): no Python code runs
 *    between the decision and the end of the collection unless gc.callbacks
 *    or finalizers do, so no other thread can take the GIL meanwhile.
 *
 * All state below is read and written with the GIL held, except the
 * helper's wake-up lock.
 */
#include "collector.h"
#include "pythread.h"
#include <dlfcn.h>

typedef struct {
    int installed;
    int live;                   /* installed and calibrated: the wrapper looks
                                 * (while the interpreter's `enabled` is 1) */
    Py_ssize_t threshold0;      /* threshold0 while installed (the
                                 * interpreter's field is 0 meanwhile) */
    Py_ssize_t extra_at;        /* bounded mode: count0 at which an extra stop
                                 * (old work only) is due; 0: none wanted */
    int pending_queued;         /* our pending call is queued, not yet run */
    int calibrating;            /* calibrate() is calling the entry points */
    void *prev_ra;              /* the last malloc near the threshold: its site */
    Py_ssize_t prev_count;      /* ... and count0 then */
    PyInterpreterState *interp; /* the interpreter we collect for */
    CgState *st;

    int wrapped;                /* our allocator wraps `orig` */
    PyMemAllocatorEx orig;
    PyMemAllocatorEx mine;

    /* helper thread (versions whose pending calls are main-thread only) */
    int helper_running;
    int helper_stop;
    int helper_requested;       /* a handoff is asked for, not yet served */
    int helper_posted;          /* `wake` released and not yet consumed */
    PyThread_type_lock wake;    /* released to wake the helper */
    PyThread_type_lock done;    /* released by the helper when it exits */
    PyThread_type_lock ready;   /* released by the helper once it waits */

    /* figures for tests and benchmarks */
    Py_ssize_t n_scheduled, n_handoffs, n_runs, n_collections;
    double requested_at;        /* when the pending handoff was asked for */
    double handoff_latency_max, handoff_latency_total;
    double queued_at;           /* when the pending call was queued */
    double pending_latency_max, pending_latency_total;
    Py_ssize_t n_skipped_collecting;  /* due, but a collection was running */
    Py_ssize_t n_line_hooks;    /* 3.11: collections armed in their thread */
    Py_ssize_t n_in_allocation; /* 3.11: collections run inside the allocation */
    Py_ssize_t n_deferred;      /* collections deferred to the next safe point */
    Py_ssize_t n_learned;       /* GC allocation sites learned after install */
    Py_ssize_t n_wrong_guesses; /* pending calls that found nothing due */
    Py_ssize_t n_extra;         /* extra stops run (bounded mode) */
    Py_ssize_t n_waits;         /* waits for another thread's stop (bounded mode) */
    Py_ssize_t n_wait_timeouts; /* ... that gave up */
    double wait_max, wait_total;
    unsigned long gave_up_seq;  /* the stop a wait gave up on: not waited for again */
} Trigger;

static Trigger trig;

/* cyclegc's automatic collections are on: installed, calibrated, and the
 * interpreter's `enabled` (gc.enable(), PyGC_Enable()) set. */
static inline int
armed(void)
{
    return trig.live && trig.st->enabled;
}

/* ---- running one automatic collection ------------------------------------ */

/* The built-in's choice of generation; -1 if none is due. */
static int
choose_generation(CgState *st)
{
    for (int i = CG_NUM_GENERATIONS - 1; i >= 0; i--) {
        Py_ssize_t threshold = i == 0 ? trig.threshold0 : st->generations[i].threshold;
        if (st->generations[i].count > threshold) {
            if (i == CG_NUM_GENERATIONS - 1
                && st->long_lived_pending < st->long_lived_total / 4) {
                continue;
            }
            return i;
        }
    }
    return -1;
}

/* ---- Other threads wait for a stop (bounded mode) -------------------------
 *
 * A stop's gc.callbacks are Python code, and Python code lets other threads
 * run: every switch interval (5 ms) a waiting thread asks for the GIL, and
 * the stop's callbacks hand it over.  While the flag is held nobody else may
 * start a collection, so the other threads allocate meanwhile, unchecked:
 * in benchmarks/pauses/threads_work.py with one Python callback, four
 * threads put 160-430k objects in generation 0 between two stops, and
 * the young chunk that must catch up with them (incremental.c, "Catch-up")
 * took 30-45 ms; with no Python callback the same program's longest stop
 * is 1.7-2.1 ms.  The built-in stops every thread during a collection,
 * callbacks aside; bounded mode now does too, where it matters: a thread
 * that finds a collection due while another thread's stop holds the flag
 * waits for that stop to end, at a safe point and without the GIL, then
 * takes its own turn.  So the allocations made during a stop's callbacks
 * are at most a threshold's worth per thread, and chunks keep up at their
 * normal size.  The wait is bounded (WAIT_LIMIT_PAUSES stops' budget, at
 * least WAIT_LIMIT_MIN): a callback or finalizer of that stop that waits
 * for this thread (a lock it holds, a join) costs one delay, never a
 * deadlock, and a stop given up on is not waited for again.  Plain mode
 * keeps the built-in's rule (the due collection is skipped). */
#define WAIT_LIMIT_PAUSES 4
#define WAIT_LIMIT_MIN 0.010
#define WAIT_SLICE_NS 100000

/* Bounded mode, and another thread's stop holds the flag, one not given
 * up on: a thread that needs a collection is to wait for it. */
static inline int
other_threads_stop(CgState *st)
{
    return st->collecting && cg_inc_enabled() && cg_stop_thread != 0
           && cg_stop_thread != PyThread_get_thread_ident()
           && trig.gave_up_seq != cg_stop_seq;
}

/* ... and this thread may wait now: only at a safe point of its own (our
 * pending call, a 3.11 trace event), never inside an allocation or in the
 * 3.11 helper thread. */
static inline int
should_wait_for_stop(CgState *st)
{
    return cg_safe_point_tstate != NULL && cg_safe_point_tstate == cg_tstate_unchecked()
           && other_threads_stop(st);
}

/* With the GIL: releases it until the stop in progress ends (or the limit
 * passes), then takes it back. */
static void
wait_for_stop(CgState *st)
{
    unsigned long seq = cg_stop_seq;
    /* at a safe point of its own (a pending call, a trace event): the
     * other thread's marking may take this top frame's safe depth */
    PyThreadState *me = cg_tstate_unchecked();
    PyThreadState *safe = cg_safe_point_tstate == me ? me : NULL;
    int slot = safe != NULL ? cg_park_safe_point(me) : -1;
    cg_safe_point_tstate = NULL;    /* names the collecting thread only */
    double limit = Py_MAX(WAIT_LIMIT_PAUSES * cg_inc_max_pause(), WAIT_LIMIT_MIN);
    double t0 = cg_now();
    trig.n_waits++;
    while (st->collecting && cg_stop_seq == seq) {
        if (cg_now() - t0 > limit) {
            trig.gave_up_seq = seq;
            trig.n_wait_timeouts++;
            break;
        }
        Py_BEGIN_ALLOW_THREADS
        struct timespec ts = {0, WAIT_SLICE_NS};
        nanosleep(&ts, NULL);
        Py_END_ALLOW_THREADS
    }
    cg_unpark_safe_point(slot);
    cg_safe_point_tstate = safe;    /* the other stop cleared it */
    double waited = cg_now() - t0;
    trig.wait_total += waited;
    if (waited > trig.wait_max) {
        trig.wait_max = waited;
    }
}

/* Run the automatic collection that is due, if one is.  Called with the GIL
 * at a safe point: a pending call, the helper thread, a 3.11 line event, or
 * (3.11) inside the allocation that makes it due. */
/* Bounded mode: count0 at which the next extra stop (old work only) is
 * due, after one at `count0`; 0: none.  A round behind its pacer gets a
 * stop at least every EXTRA_STEP allocations of tracked objects, half
 * the default threshold0 of 3.11-3.12 (one extra stop halfway between
 * their young collections).  3.13's threshold0 of 2000 had given its
 * rounds one stop per 1000 allocations, a third of 3.12's rate, and
 * Sphinx on 3.13 carried more floating garbage (peak RSS 1.11-1.34x
 * against 1.08-1.10x).  A smaller threshold0 keeps one halfway. */
#define EXTRA_STEP 350
static Py_ssize_t
next_extra_stop(CgState *st, Py_ssize_t count0)
{
    if (!cg_inc_wants_extra_stop(st)) {
        return 0;
    }
    Py_ssize_t step = Py_MAX(Py_MIN(trig.threshold0 / 2, EXTRA_STEP), 1);
    Py_ssize_t at = count0 + step;
    return at < trig.threshold0 ? at : 0;
}

static void
run_due_collection(void)
{
    trig.n_runs++;
    if (!armed()) {
        return;
    }
    CgState *st = trig.st;
    if (should_wait_for_stop(st) && !PyErr_Occurred()) {
        wait_for_stop(st);
        if (!armed()) {
            return;
        }
    }
    if (st->collecting || trig.threshold0 <= 0) {
        return;
    }
    if (st->generations[0].count <= trig.threshold0) {
        if (trig.extra_at > 0 && st->generations[0].count >= trig.extra_at) {
            /* bounded mode, a round behind: old work between two young
             * collections (cg_inc_wants_extra_stop, next_extra_stop); the
             * young generation is left alone.  None if the round ended
             * meanwhile (a collect()): then no allocation schedules
             * another until the next young collection decides again. */
            trig.extra_at = 0;
            if (cg_inc_wants_extra_stop(st)) {
                trig.n_extra++;
                cg_run_increment(-1);
                if (PyErr_Occurred()) {
                    cg_write_unraisable_msg("in automatic garbage collection", NULL);
                }
                trig.extra_at = next_extra_stop(st, st->generations[0].count);
                return;
            }
        }
        trig.n_wrong_guesses++;   /* that malloc was not a GC object's after all */
        return;
    }
    PyThreadState *ts = cg_tstate_unchecked();
    if (ts == NULL || ts->interp != trig.interp || PyErr_Occurred()) {
        return;   /* the next GC allocation schedules again */
    }
    int gen = choose_generation(st);
    if (gen < 0) {
        return;
    }
    trig.n_collections++;
    if (cg_inc_enabled()) {
        /* Bounded pauses: the young part by the same rules, the old
         * generation a slice per increment (incremental.c). */
        cg_run_increment(cg_inc_young_generation(st));
        trig.extra_at = next_extra_stop(st, 0);
    }
    else {
        /* The one path every collection takes (api.run_collection(gen,
         * "auto") is this same call): collecting flag, gc.callbacks,
         * metrics. */
        cg_run_collection(gen, CG_REASON_AUTO);
    }
    if (PyErr_Occurred()) {   /* never leak an error into the running frame */
        cg_write_unraisable_msg("in automatic garbage collection", NULL);
    }
}

/* 3.11, non-main threads: the trace function armed by schedule_collection()
 * (compat.h, cg_line_hook_arm), called at the thread's next line, call or
 * return event.  It removes itself first, whatever happens next. */
static int
line_hook(PyObject *Py_UNUSED(obj), PyFrameObject *Py_UNUSED(frame),
          int Py_UNUSED(what), PyObject *Py_UNUSED(arg))
{
    PyThreadState *ts = cg_tstate_unchecked();
    cg_line_hook_disarm(ts);
    /* A trace event: this thread's frame is between instructions (or at a
     * call, return or exception event, before any unwinding pops), so its
     * value stack may serve as marking roots (stackroots.c). */
    cg_safe_point_tstate = ts;
    run_due_collection();
    cg_safe_point_tstate = NULL;
    return 0;
}

static int
pending_collect(void *Py_UNUSED(arg))
{
    trig.pending_queued = 0;
    double lat = cg_now() - trig.queued_at;
    trig.pending_latency_total += lat;
    if (lat > trig.pending_latency_max) {
        trig.pending_latency_max = lat;
    }
    /* A pending call runs at an eval-breaker check of this thread's top
     * frame: between instructions, never while it unwinds an exception, so
     * its value stack may serve as marking roots (stackroots.c). */
    cg_safe_point_tstate = cg_tstate_unchecked();
    int lent = cg_inc_enabled() && CG_PENDING_ANY_THREAD ? cg_pending_lend(trig.interp) : 0;
    run_due_collection();
    cg_pending_unlend(trig.interp, lent);
    cg_safe_point_tstate = NULL;
    return 0;   /* never raises into the frame that happened to run us */
}

/* 3.11: a round's roots were visited inside an allocation, where the top
 * frame's value stack cannot be read; this pending call, at the main
 * thread's next eval-breaker check, adds it (stackroots.c).
 *
 * The frame that allocated (`late_frame`) must be the top frame then, or
 * gone.  The allocation may be its call's own (a comprehension calling a
 * class: the instance is allocated before __init__ runs), and then the
 * next check is the RESUME of the callee, with the allocating frame below
 * a call into C, where only its `any` depth is safe: none of a 3.11
 * comprehension's stack, whose list is the root that matters.  So while
 * that frame is still below the top, the call waits for the next check
 * (the callee returns to it, and its next check is at a safe point of its
 * own).  A frame that has returned left what it held to its caller.
 * Which allocation makes the stop due is a matter of counts: a Python gc
 * callback's own allocations shift them, and building a 200k-row list with
 * one installed left the list unmarked in every round (4 oversized slices,
 * up to 394k objects).  Only addresses are compared; nothing is read from
 * a frame that may be gone.  Marking waits a few increments at most
 * (incremental.c, late_roots_wait) and goes on without them after. */
static _PyInterpreterFrame *late_frame;     /* the allocating frame, or NULL */
static void *late_code;                     /* its code, for comparison only */

/* Whether the allocating frame is still on the stack below `top`. */
static int
late_frame_below(_PyInterpreterFrame *top)
{
    if (late_frame == NULL || top == late_frame) {
        return 0;
    }
    for (_PyInterpreterFrame *f = top; f != NULL; f = f->previous) {
        if (f == late_frame) {
            return (void *)CG_FRAME_CODE(f) == late_code;
        }
    }
    return 0;
}

static int
pending_late_roots(void *Py_UNUSED(arg))
{
    PyThreadState *ts = cg_tstate_unchecked();
    /* Another thread's stop: this thread is at its safe point, and waits
     * for that stop (the increments it counts would otherwise end the
     * round's marking without these roots). */
    cg_safe_point_tstate = ts;
    if (trig.st != NULL && should_wait_for_stop(trig.st) && !PyErr_Occurred()) {
        wait_for_stop(trig.st);
    }
    cg_safe_point_tstate = NULL;
    if ((trig.st != NULL && trig.st->collecting)
        || (ts != NULL && CG_THREAD_HAS_FRAMES(ts) && late_frame_below(CG_TOP_FRAME(ts)))) {
        /* inside the collection's own callbacks or finalizers (the top
         * frame is theirs, not the program's), or the allocating frame is
         * below a call: again at the next check */
        (void)cg_add_pending_call(trig.interp, pending_late_roots);
        return 0;
    }
    late_frame = NULL;
    cg_safe_point_tstate = ts;
    cg_inc_late_stack_roots();
    cg_safe_point_tstate = NULL;
    return 0;
}

int
cg_request_late_stack_roots(void)
{
    if (!CG_COLLECTS_IN_ALLOCATION || trig.interp == NULL) {
        return -1;
    }
    /* From another thread (its own trace event was the safe point), the
     * main thread's frames were seen only where they were suspended: the
     * call adds its top frame's stack at its next check, nothing to wait
     * for (3.11's workers build no list the main thread's stop needs; the
     * main thread building a 200k-row table while four threads collect
     * did: 1-2 oversized slices and overflow collections per run of
     * benchmarks/pauses/threads_work.py). */
    PyThreadState *ts = cg_is_main_thread() ? cg_tstate_unchecked() : NULL;
    late_frame = ts != NULL && CG_THREAD_HAS_FRAMES(ts) ? CG_TOP_FRAME(ts) : NULL;
    late_code = late_frame != NULL ? (void *)CG_FRAME_CODE(late_frame) : NULL;
    return cg_add_pending_call(trig.interp, pending_late_roots) == 0 ? 0 : -1;
}

/* ---- the helper thread ---------------------------------------------------- */

static void
helper_post(void)
{
    if (!trig.helper_posted) {
        trig.helper_posted = 1;
        PyThread_release_lock(trig.wake);
    }
}

static void
helper_main(void *Py_UNUSED(arg))
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyThreadState *ts = PyEval_SaveThread();
    PyThread_release_lock(trig.ready);
    for (;;) {
        PyThread_acquire_lock(trig.wake, WAIT_LOCK);
        PyEval_RestoreThread(ts);
        trig.helper_posted = 0;
        if (trig.helper_stop) {
            break;
        }
        if (trig.helper_requested) {
            double lat = cg_now() - trig.requested_at;
            trig.handoff_latency_total += lat;
            if (lat > trig.handoff_latency_max) {
                trig.handoff_latency_max = lat;
            }
            trig.helper_requested = 0;
            run_due_collection();
        }
        ts = PyEval_SaveThread();
    }
    trig.helper_running = 0;
    PyGILState_Release(g);
    PyThread_release_lock(trig.done);
}

static void
free_helper_locks(void)
{
    PyThread_type_lock *locks[] = {&trig.wake, &trig.done, &trig.ready};
    for (size_t i = 0; i < Py_ARRAY_LENGTH(locks); i++) {
        if (*locks[i] != NULL) {
            PyThread_free_lock(*locks[i]);
            *locks[i] = NULL;
        }
    }
}

/* Start the helper and wait (GIL released) until it is waiting for work, so
 * that its first handoff does not wait for its start-up. */
static int
helper_start(void)
{
    if (CG_PENDING_ANY_THREAD || trig.helper_running) {
        return 0;
    }
    trig.wake = PyThread_allocate_lock();
    trig.done = PyThread_allocate_lock();
    trig.ready = PyThread_allocate_lock();
    if (trig.wake == NULL || trig.done == NULL || trig.ready == NULL) {
        free_helper_locks();
        PyErr_NoMemory();
        return -1;
    }
    /* All start taken: releasing `wake` wakes the helper; the helper
     * releases `ready` once started and `done` on exit. */
    PyThread_acquire_lock(trig.wake, WAIT_LOCK);
    PyThread_acquire_lock(trig.done, WAIT_LOCK);
    PyThread_acquire_lock(trig.ready, WAIT_LOCK);
    trig.helper_stop = trig.helper_requested = trig.helper_posted = 0;
    trig.helper_running = 1;
    if (PyThread_start_new_thread(helper_main, NULL) == PYTHREAD_INVALID_THREAD_ID) {
        trig.helper_running = 0;
        free_helper_locks();
        PyErr_SetString(PyExc_RuntimeError, "cyclegc: can't start the collection helper thread");
        return -1;
    }
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(trig.ready, WAIT_LOCK);
    Py_END_ALLOW_THREADS
    return 0;
}

/* Called with the GIL; releases it while the helper finishes. */
static void
helper_stop(void)
{
    if (!trig.helper_running) {
        return;
    }
    trig.helper_stop = 1;
    helper_post();
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(trig.done, WAIT_LOCK);
    Py_END_ALLOW_THREADS
    free_helper_locks();
}

/* ---- the allocator wrapper -------------------------------------------------- */

/* ---- allocation sites ---------------------------------------------------------
 *
 * The return addresses of the interpreter's mallocs for GC objects, learned
 * by calibrate() at install and, for sites it could not know, on the way.
 * SITE_GC: every malloc there is a GC object's (gc_alloc).  SITE_GENERIC:
 * PyType_GenericAlloc, GC or not by its type argument, which the site's `slot`
 * finds in our frame when calibration located it.  SITE_LEARNED: a malloc
 * there was once followed by a link.  Invariant: the table only grows, and
 * only install() and the GIL-holding allocator touch it. */
enum { SITE_NONE = 0, SITE_GC, SITE_GENERIC, SITE_LEARNED };
#define CG_SITES 64                       /* a power of two */
#define CG_NO_SLOT INT_MIN
typedef struct {
    void *ra;
    int kind;
    int slot;       /* SITE_GENERIC: the type argument, in words from
                     * near_threshold's frame; CG_NO_SLOT if not located */
} Site;
static Site sites[CG_SITES];
static int n_sites;
static int n_slots_found;

static inline size_t
site_hash(void *ra)
{
    return ((uintptr_t)ra >> 3) & (CG_SITES - 1);
}

static const Site no_site = {NULL, SITE_NONE, CG_NO_SLOT};

static const Site *
site_find(void *ra)
{
    for (size_t i = site_hash(ra), n = 0; n < CG_SITES; i = (i + 1) & (CG_SITES - 1), n++) {
        if (sites[i].ra == ra) {
            return &sites[i];
        }
        if (sites[i].ra == NULL) {
            break;
        }
    }
    return &no_site;
}

static int
site_kind(void *ra)
{
    return site_find(ra)->kind;
}

static void
site_add(void *ra, int kind, int slot)
{
    if (ra == NULL || n_sites >= CG_SITES - 1) {
        return;   /* full: the site stays unknown (late, never unsafe) */
    }
    for (size_t i = site_hash(ra);; i = (i + 1) & (CG_SITES - 1)) {
        if (sites[i].ra == ra) {
            return;
        }
        if (sites[i].ra == NULL) {
            sites[i].ra = ra;
            sites[i].kind = kind;
            sites[i].slot = slot;
            n_sites++;
            return;
        }
    }
}

/* ---- scheduling ---------------------------------------------------------------- */

/* Run the due collection at the next safe point: a pending call (3.12+, and
 * 3.11's main thread), else this thread's next trace event or the helper.
 * Never collects here. */
static void
defer_collection(PyThreadState *ts)
{
    CgState *st = trig.st;
    if (CG_PENDING_ANY_THREAD || cg_is_main_thread()) {
        if (trig.pending_queued) {
            return;
        }
        trig.pending_queued = 1;
        trig.queued_at = cg_now();
        if (cg_add_pending_call(trig.interp, pending_collect) != 0) {
            trig.pending_queued = 0;   /* queue full: the next allocation retries */
            return;
        }
        trig.n_scheduled++;
        return;
    }
    /* 3.11, not the main thread: collect in this thread, at its next
     * event.  The helper takes over if the thread has a tracer of its own,
     * or if it allocated another threshold0 objects without reaching an
     * event (C code). */
    if (st->generations[0].count <= 2 * trig.threshold0) {
        if (cg_line_hook_is(ts, line_hook)) {
            return;
        }
        if (cg_line_hook_arm(ts, line_hook)) {
            trig.n_line_hooks++;
            return;
        }
    }
    if (!trig.helper_running) {
        return;
    }
    if (trig.helper_requested) {
        /* Another thread, not the helper, got the GIL when the last
         * one dropped it: ask this one to drop it too. */
        cg_request_gil_drop(trig.interp);
        return;
    }
    trig.helper_requested = 1;
    trig.n_handoffs++;
    trig.requested_at = cg_now();
    cg_request_gil_drop(trig.interp);
    helper_post();
}

#if CG_COLLECTS_IN_ALLOCATION
/* 3.11: the built-in's point exactly.  This malloc is a GC object's and its
 * link would make count0 exceed threshold0 and collect: count the object
 * first, as the link does, collect, and leave count0 so that the link
 * brings it to what the built-in leaves (the new object uncounted).  Safe
 * here: we are outside the real allocator, at the point where the
 * built-in's collection would start one call later. */
static void
collect_in_allocation(void)
{
    CgState *st = trig.st;
    st->generations[0].count++;
    trig.n_in_allocation++;
    run_due_collection();
    st->generations[0].count--;
    trig.prev_ra = NULL;   /* the collection's own allocations teach nothing */
}
#endif

/* Bounded mode: count0 passed the extra stop's mark.  An extra stop is not
 * the built-in's point and needs no allocation site: any safe point. */
static inline void
schedule_extra_stop(PyThreadState *ts, CgState *st, Py_ssize_t c)
{
    if (trig.extra_at > 0 && c >= trig.extra_at && !st->collecting && !PyErr_Occurred()) {
        defer_collection(ts);
    }
}

/* Calibration (install): record the first malloc's return address of each
 * entry point called, and where in this frame the marker type lies. */
#define CG_SCAN_ABOVE 96          /* words above near_threshold's frame */
#define CG_SCAN_BELOW 32          /* at most this many below it */
static struct {
    void *ra;
    int n;
    PyTypeObject *marker;
    unsigned char hits[CG_SCAN_BELOW + CG_SCAN_ABOVE];
} cal;

static void
calibrate_record(void *ra, void **frame, void **lowest)
{
    if (cal.n++ > 0) {
        return;
    }
    cal.ra = ra;
    if (cal.marker == NULL) {
        return;
    }
    for (int i = -CG_SCAN_BELOW; i < CG_SCAN_ABOVE; i++) {
        if (frame + i >= lowest && frame[i] == (void *)cal.marker) {
            cal.hits[i + CG_SCAN_BELOW]++;
        }
    }
}

/* count0 is within reach of threshold0 at a malloc whose caller returns to
 * `ra`.  Decides whether this malloc is the built-in's trigger and acts as
 * the built-in would; learns sites.  Never inlined: its frame is the one
 * calibration measured (CG_SPILL_CALLEE_SAVED puts the caller's registers
 * in it). */
static Py_NO_INLINE void
near_threshold(void *ra)
{
    void *lowest = NULL;
    CG_SPILL_CALLEE_SAVED();
    void **frame = (void **)__builtin_frame_address(0);
    if (trig.calibrating) {
        calibrate_record(ra, frame, (void **)&lowest);
        return;
    }
    /* Another interpreter's allocation (3.12+ may run it without our GIL):
     * read nothing more, write nothing. */
    PyThreadState *ts = cg_tstate_unchecked();
    if (ts == NULL || ts->interp != trig.interp) {
        return;
    }
    CgState *st = trig.st;
    Py_ssize_t c = st->generations[0].count, t = trig.threshold0;
    if (c < t - 8) {
        /* below the usual window: here only for an extra stop (bounded
         * mode); nothing is learned, as without it */
        schedule_extra_stop(ts, st, c);
        return;
    }

    /* Learning: count0 rose by exactly one since the previous malloc seen
     * here, so that malloc was a GC object's.  If its site was unknown and
     * the object made a collection due, nobody scheduled it: do now. */
    int missed = 0;
    if (trig.prev_ra != NULL && c == trig.prev_count + 1 && site_kind(trig.prev_ra) == SITE_NONE) {
        site_add(trig.prev_ra, SITE_LEARNED, CG_NO_SLOT);
        trig.n_learned++;
        missed = c > t;
    }
    trig.prev_ra = ra;
    trig.prev_count = c;
    if (c < t) {
        schedule_extra_stop(ts, st, c);
        return;
    }
    const Site *site = site_find(ra);
    int kind = site->kind;
    if (kind == SITE_GENERIC && site->slot != CG_NO_SLOT) {
        if (!PyType_IS_GC((PyTypeObject *)frame[site->slot])) {
            kind = SITE_NONE;   /* a non-GC type's instance: the built-in counts nothing */
        }
        else {
            kind = SITE_GC;
        }
    }
    if (kind == SITE_NONE) {
        /* Not a GC object's malloc.  A collection is due only if a GC
         * allocation slipped past unseen (missed), or, as a last resort,
         * when count0 ran far past threshold0 by allocations we never saw
         * as GC ones. */
        if ((missed || c > 2 * t) && !st->collecting) {
            trig.n_deferred++;
            defer_collection(ts);
        }
        return;
    }
    /* The built-in's own conditions at the link (enabled: armed()). */
    if (st->collecting) {
        trig.n_skipped_collecting++;
        if (other_threads_stop(st) && !PyErr_Occurred()) {
            /* bounded mode, another thread's stop: wait for it at the
             * next safe point ("Other threads wait for a stop") */
            defer_collection(ts);
        }
        return;
    }
    if (PyErr_Occurred()) {
        return;
    }
#if CG_COLLECTS_IN_ALLOCATION
    if (kind == SITE_GC) {
        collect_in_allocation();
        return;
    }
    trig.n_deferred++;
#endif
    defer_collection(ts);
}

/* Someone set the interpreter's threshold0 behind our back (the built-in's
 * gc.set_threshold, referenced before install()): make it ours and put 0
 * back before the built-in's link can see it.  Only for our interpreter's
 * allocations (3.12+ may run another's without our GIL). */
static Py_NO_INLINE void
adopt_threshold0(void)
{
    PyThreadState *ts = cg_tstate_unchecked();
    if (ts == NULL || ts->interp != trig.interp) {
        return;
    }
    trig.threshold0 = trig.st->generations[0].threshold;
    trig.st->generations[0].threshold = 0;
}

static inline void
check_allocation(void *ra)
{
    if (trig.live) {
        CgState *st = trig.st;
        if (st->generations[0].threshold != 0) {
            adopt_threshold0();
        }
        Py_ssize_t threshold = trig.extra_at > 0 ? trig.extra_at : trig.threshold0;
        /* A window below the threshold, so that sites are learned before
         * they matter. */
        if (st->generations[0].count >= threshold - 8 && threshold > 0 && st->enabled) {
            near_threshold(ra);
        }
    }
    else if (trig.calibrating) {
        near_threshold(ra);
    }
}

static void *
trig_malloc(void *ctx, size_t size)
{
    check_allocation(__builtin_return_address(0));
    return trig.orig.malloc(ctx, size);
}

static void *
trig_calloc(void *ctx, size_t nelem, size_t elsize)
{
    check_allocation(__builtin_return_address(0));
    return trig.orig.calloc(ctx, nelem, elsize);
}

/* ---- calibration ------------------------------------------------------------- */

static int
cal_traverse(PyObject *Py_UNUSED(op), visitproc Py_UNUSED(visit), void *Py_UNUSED(arg))
{
    return 0;
}

static void
cal_gc_dealloc(PyObject *op)
{
    PyObject_GC_UnTrack(op);
    PyObject_GC_Del(op);
}

static void
cal_plain_dealloc(PyObject *op)
{
    PyObject_Free(op);
}

#define CAL_GC_TYPE(cname, pyname)                                          \
    static PyTypeObject cname = {                                           \
        PyVarObject_HEAD_INIT(NULL, 0)                                      \
        .tp_name = pyname,                                                  \
        .tp_basicsize = sizeof(PyObject),                                   \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,                \
        .tp_traverse = cal_traverse,                                        \
        .tp_dealloc = cal_gc_dealloc,                                       \
    }
CAL_GC_TYPE(CalGcA, "cyclegc._calibration_gc_a");
CAL_GC_TYPE(CalGcB, "cyclegc._calibration_gc_b");
static PyTypeObject CalPlain = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "cyclegc._calibration_plain",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = cal_plain_dealloc,
};

/* Call `fn` with the wrapper recording; returns the site of its first
 * malloc (NULL if it made none, or several where `only` asks for one). */
static void *
calibrate_call(PyObject *(*fn)(int, PyTypeObject *), int arg, PyTypeObject *marker, int only)
{
    cal.ra = NULL;
    cal.n = 0;
    cal.marker = marker;
    trig.calibrating = 1;
    PyObject *op = fn(arg, marker);
    trig.calibrating = 0;
    if (op == NULL) {
        PyErr_Clear();
        return NULL;
    }
    Py_DECREF(op);
    return (cal.n == 1 || (cal.n > 1 && !only)) ? cal.ra : NULL;
}

static PyObject *
cal_entry(int which, PyTypeObject *tp)
{
    PyObject *op = cg_gc_alloc_entry(which, tp != NULL ? tp : &CalGcA, &PyTuple_Type);
    if (op != NULL) {
        /* Never initialised: free the memory, not the object. */
        PyObject *mem = op;
        op = Py_None;
        Py_INCREF(op);
        PyObject_GC_Del(mem);
    }
    return op;
}

static PyObject *
cal_generic(int Py_UNUSED(which), PyTypeObject *tp)
{
    return PyType_GenericAlloc(tp, 0);
}

/* Modules: their tp_new allocates through the out-of-line copy of the
 * interpreter's tp_alloc helper (3.11-3.13), another generic site.  `args`
 * are made before recording starts. */
static PyObject *cal_module_args;

static PyObject *
cal_module(int Py_UNUSED(which), PyTypeObject *tp)
{
    return PyObject_Call((PyObject *)tp, cal_module_args, NULL);
}

/* One generic site: the same return address for every probe type, and the
 * slot of our frame that held each probe's type (CG_NO_SLOT if none did). */
static void
calibrate_generic(PyObject *(*fn)(int, PyTypeObject *), PyTypeObject **probes, int n, int only)
{
    memset(cal.hits, 0, sizeof(cal.hits));
    void *ra = NULL;
    for (int i = 0; i < n; i++) {
        void *got = calibrate_call(fn, 0, probes[i], only);
        if (got == NULL || (ra != NULL && got != ra)) {
            return;
        }
        ra = got;
    }
    if (site_kind(ra) != SITE_NONE) {
        return;   /* shared with a known site: leave that one alone */
    }
    int slot = CG_NO_SLOT;
    for (int i = 0; i < CG_SCAN_BELOW + CG_SCAN_ABOVE; i++) {
        if (cal.hits[i] == n) {
            slot = i - CG_SCAN_BELOW;
            n_slots_found++;
            break;
        }
    }
    site_add(ra, SITE_GENERIC, slot);
}

/* Learn the GC allocation sites (trig.wrapped, nothing armed, the
 * built-in's collector off).  Idempotent: the sites never move. */
static void
calibrate(void)
{
    static int done;
    if (done) {
        return;
    }
    done = 1;
    if (PyType_Ready(&CalGcA) < 0 || PyType_Ready(&CalGcB) < 0 || PyType_Ready(&CalPlain) < 0) {
        PyErr_Clear();
        return;
    }
    for (int which = 0; which < CG_GC_ALLOC_ENTRIES; which++) {
        site_add(calibrate_call(cal_entry, which, NULL, 1), SITE_GC, CG_NO_SLOT);
    }
    /* PyType_GenericAlloc, three types: two GC, one not. */
    PyTypeObject *generic[] = {&CalGcA, &CalGcB, &CalPlain};
    calibrate_generic(cal_generic, generic, (int)Py_ARRAY_LENGTH(generic), 1);
    /* Modules: ModuleType and a subclass of it. */
    PyObject *sub = PyObject_CallFunction((PyObject *)&PyType_Type, "s(O){}",
                                          "_cyclegc_calibration_module", &PyModule_Type);
    cal_module_args = Py_BuildValue("(s)", "_cyclegc_calibration");
    if (sub != NULL && cal_module_args != NULL) {
        PyTypeObject *modules[] = {&PyModule_Type, (PyTypeObject *)sub};
        calibrate_generic(cal_module, modules, (int)Py_ARRAY_LENGTH(modules), 0);
    }
    PyErr_Clear();
    Py_CLEAR(cal_module_args);
    Py_XDECREF(sub);
}

static int
allocator_is_ours(void)
{
    PyMemAllocatorEx cur;
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &cur);
    return cur.malloc == trig_malloc;
}

static void
wrap_allocator(void)
{
    if (trig.wrapped) {
        return;   /* still in place (someone wrapped us at uninstall) */
    }
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &trig.orig);
    trig.mine = trig.orig;              /* same ctx, realloc and free */
    trig.mine.malloc = trig_malloc;
    trig.mine.calloc = trig_calloc;
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &trig.mine);
    trig.wrapped = 1;
}

static void
unwrap_allocator(void)
{
    /* If another wrapper (tracemalloc, ...) now wraps ours, removing ours
     * would remove it too: ours stays in place, disarmed, and is reused by
     * the next install(). */
    if (trig.wrapped && allocator_is_ours()) {
        PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &trig.orig);
        trig.wrapped = 0;
    }
}

/* ---- C interface for module.c ---------------------------------------------- */

/* threshold0 as gc.get_threshold() shows it: ours while installed (for our
 * interpreter), the interpreter's own otherwise. */
Py_ssize_t
cg_threshold0(CgState *st)
{
    return trig.installed && st == trig.st ? trig.threshold0 : st->generations[0].threshold;
}

void
cg_set_threshold0(CgState *st, int threshold)
{
    if (trig.installed && st == trig.st) {
        trig.threshold0 = threshold;
    }
    else {
        st->generations[0].threshold = threshold;
    }
}

/* ---- private functions for cyclegc.install -------------------------------- */

/* trigger_install(): cyclegc runs the automatic collections. */
PyObject *
cg_trigger_install(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    if (trig.installed) {
        Py_RETURN_FALSE;
    }
    if (helper_start() < 0) {
        return NULL;
    }
    PyInterpreterState *interp = PyInterpreterState_Get();
    CgState *st = &interp->gc;
    trig.interp = interp;
    trig.st = st;
    trig.pending_queued = 0;
    trig.threshold0 = st->generations[0].threshold;
    trig.extra_at = 0;
    st->generations[0].threshold = 0;   /* the built-in never collects by itself */
    cg_cancel_builtin_gc_request(interp);
    trig.installed = 1;
    wrap_allocator();
    calibrate();
    trig.prev_ra = NULL;
    trig.live = 1;
    Py_RETURN_TRUE;
}

/* trigger_uninstall(): the built-in collector again, with cyclegc's enabled
 * flag as its own. */
PyObject *
cg_trigger_uninstall(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    if (!trig.installed) {
        Py_RETURN_FALSE;
    }
    trig.live = 0;
    trig.installed = 0;
    trig.extra_at = 0;
    trig.st->generations[0].threshold = (int)trig.threshold0;
    unwrap_allocator();
    helper_stop();
    /* A queued pending call finds us disarmed and does nothing. */
    Py_RETURN_TRUE;
}

PyObject *
cg_trigger_is_installed(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(trig.installed);
}

/* In a forked child the helper thread does not exist: start a new one. */
PyObject *
cg_trigger_after_fork(PyObject *Py_UNUSED(self), PyObject *restart_helper)
{
    trig.pending_queued = 0;
    cg_unpark_all();    /* the parent's other threads are gone */
    cg_ww_after_fork(); /* its descriptors name the parent's memory */
    if (!trig.installed || CG_PENDING_ANY_THREAD) {
        Py_RETURN_NONE;
    }
    /* The parent's locks and thread are gone; forget them (leaked). */
    trig.helper_running = 0;
    trig.helper_requested = trig.helper_posted = 0;
    trig.wake = trig.done = trig.ready = NULL;
    /* Not in a child forked from another thread than the main one: its
     * last Python thread ends with pthread_exit, and our helper would keep
     * the process alive (install.py). */
    if (!PyObject_IsTrue(restart_helper)) {
        Py_RETURN_NONE;
    }
    if (helper_start() < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
cg_trigger_stats(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    PyObject *d = Py_BuildValue("{snsnsnsnsisisisdsdsdsdsnsn}",
                         "scheduled", trig.n_scheduled,
                         "handoffs", trig.n_handoffs,
                         "runs", trig.n_runs,
                         "collections", trig.n_collections,
                         "allocator_wrapped", trig.wrapped,
                         "helper_thread", trig.helper_running,
                         "pending_any_thread", CG_PENDING_ANY_THREAD,
                         "handoff_latency_max", trig.handoff_latency_max,
                         "handoff_latency_total", trig.handoff_latency_total,
                         "pending_latency_max", trig.pending_latency_max,
                         "pending_latency_total", trig.pending_latency_total,
                         "skipped_collecting", trig.n_skipped_collecting,
                         "line_hooks", trig.n_line_hooks);
    if (d == NULL) {
        return NULL;
    }
    int n_gc = 0, n_generic = 0, n_learned_sites = 0;
    for (int i = 0; i < CG_SITES; i++) {
        n_gc += sites[i].ra != NULL && sites[i].kind == SITE_GC;
        n_generic += sites[i].ra != NULL && sites[i].kind == SITE_GENERIC;
        n_learned_sites += sites[i].ra != NULL && sites[i].kind == SITE_LEARNED;
    }
    PyObject *more = Py_BuildValue("{snsnsdsdsnsnsnsnsnsnsisisisOsi}",
                                   "stop_waits", trig.n_waits,
                                   "stop_wait_timeouts", trig.n_wait_timeouts,
                                   "stop_wait_max", trig.wait_max,
                                   "stop_wait_total", trig.wait_total,
                                   "in_allocation", trig.n_in_allocation,
                                   "deferred", trig.n_deferred,
                                   "learned", trig.n_learned,
                                   "wrong_guesses", trig.n_wrong_guesses,
                                   "extra_stops", trig.n_extra,
                                   "extra_stop_at", trig.extra_at,
                                   "gc_sites", n_gc,
                                   "generic_sites", n_generic,
                                   "learned_sites", n_learned_sites,
                                   "type_slot_found", n_slots_found == n_generic ? Py_True : Py_False,
                                   "collects_in_allocation", CG_COLLECTS_IN_ALLOCATION);
    if (more == NULL || PyDict_Update(d, more) < 0) {
        Py_XDECREF(more);
        Py_DECREF(d);
        return NULL;
    }
    Py_DECREF(more);
    /* Where the learned sites are (symbol+offset, for diagnostics). */
    PyObject *names = PyList_New(0);
    for (int i = 0; names != NULL && i < CG_SITES; i++) {
        if (sites[i].ra == NULL || sites[i].kind != SITE_LEARNED) {
            continue;
        }
        Dl_info info;
        PyObject *name;
        if (dladdr(sites[i].ra, &info) && info.dli_sname != NULL) {
            name = PyUnicode_FromFormat("%s+%zu", info.dli_sname,
                                        (size_t)((char *)sites[i].ra - (char *)info.dli_saddr));
        }
        else if (dladdr(sites[i].ra, &info) && info.dli_fname != NULL) {
            name = PyUnicode_FromFormat("%s+%zu", info.dli_fname,
                                        (size_t)((char *)sites[i].ra - (char *)info.dli_fbase));
        }
        else {
            name = PyUnicode_FromFormat("%p", sites[i].ra);
        }
        if (name == NULL || PyList_Append(names, name) < 0) {
            Py_XDECREF(name);
            Py_CLEAR(names);
            break;
        }
        Py_DECREF(name);
    }
    if (names == NULL || PyDict_SetItemString(d, "learned_site_names", names) < 0) {
        Py_XDECREF(names);
        Py_DECREF(d);
        return NULL;
    }
    Py_DECREF(names);
    return d;
}

/* call_unwrapped(func): call func() with the interpreter's own allocator in
 * place of our wrapper.  sys._debugmallocstats() prints pymalloc's figures
 * only when the object allocator *is* pymalloc's (it compares function
 * pointers), so while installed it printed nothing of them (CPython's
 * test_sys.test_debugmallocstats).  Safe: our wrapper shares the wrapped
 * allocator's context, realloc and free, so memory allocated meanwhile is
 * the same kind; nothing collects meanwhile (the built-in's threshold0 is 0).
 * If another wrapper sits on top of ours, ours is left alone, as the
 * interpreter would not see pymalloc there anyway. */
PyObject *
cg_trigger_call_unwrapped(PyObject *Py_UNUSED(self), PyObject *func)
{
    int swap = trig.wrapped && allocator_is_ours();
    if (swap) {
        PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &trig.orig);
    }
    PyObject *res = PyObject_CallNoArgs(func);
    if (swap) {
        PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &trig.mine);
    }
    return res;
}

