/* trigger.c -- cyclegc runs the process's automatic collections.
 *
 * While installed (cyclegc.install()):
 *
 *  - the interpreter's own `enabled` is 0, so CPython's automatic collector
 *    never runs; cyclegc keeps its own enabled flag (trig.enabled), which
 *    gc.enable()/disable()/isenabled() operate on (module.c asks
 *    cg_trigger_set_enabled / cg_trigger_enabled first);
 *
 *  - a wrapper around the PYMEM_DOMAIN_OBJ allocator watches the
 *    interpreter's generation-0 count.  The interpreter counts a new GC
 *    object after its malloc returns (_PyObject_GC_Link), so the wrapper
 *    sees, at every object allocation, the count left by the previous ones.
 *    It looks one allocation ahead: at count0 == threshold0 the allocation
 *    under way is usually the GC object that makes the collection due, and
 *    the built-in schedules its collection right after that object is
 *    linked.  Waiting for count0 > threshold0 (the next malloc) ran our
 *    collections at another point of the program's loop, and on 3.13 the
 *    young generation they examined spread over 68 pages against the
 *    built-in's 53 (now 56): 7 % slower on a loop of short-lived cycles
 *    with the same instruction count.  When the guess is wrong (that
 *    malloc was not a GC object's) the pending call finds nothing due and
 *    the wrapper waits for count0 > threshold0 until the next automatic
 *    collection (`lag`), so a loop of non-GC allocations does not queue a
 *    pending call per iteration.  The wrapper only *schedules* a
 *    collection: it never collects inside an allocation.  realloc and free
 *    are the wrapped allocator's own functions (no cost);
 *
 *  - the scheduled collection runs in the thread that allocated, at a safe
 *    point, with no exception set: a pending call, run at the next
 *    eval-breaker check, on 3.12+ (any thread) and in 3.11's main thread.
 *    3.11 runs pending calls only in the main thread, so another thread's
 *    collection runs at its next line, call or return event, through a C
 *    trace function armed on that thread only (compat.h,
 *    cg_line_hook_arm).  Collecting in the thread that allocated is what
 *    the built-in does, and it matters: a thread whose collection runs
 *    elsewhere keeps allocating whenever a finalizer releases the GIL (I/O),
 *    no collection can start meanwhile, and collections snowball (7-13
 *    instead of 428 in tests/test_install.py's case).  Where the thread has
 *    a tracer of its own, or allocates another threshold0 objects without
 *    an event (C code), a helper thread collects instead: it takes the GIL
 *    at the allocating thread's next eval-breaker check (it asks that
 *    thread to drop the GIL, as any thread waiting for the GIL does).  That
 *    also covers a main thread blocked in join() or sleep();
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

typedef struct {
    int installed;
    int enabled;                /* cyclegc's enabled flag while installed */
    int armed;                  /* installed && enabled: the wrapper looks */
    int pending_queued;         /* our pending call is queued, not yet run */
    Py_ssize_t lag;             /* schedule at count0 >= threshold0 + lag */
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
} Trigger;

static Trigger trig;

/* ---- running one automatic collection ------------------------------------ */

/* The built-in's choice of generation; -1 if none is due. */
static int
choose_generation(CgState *st)
{
    for (int i = CG_NUM_GENERATIONS - 1; i >= 0; i--) {
        if (st->generations[i].count > st->generations[i].threshold) {
            if (i == CG_NUM_GENERATIONS - 1
                && st->long_lived_pending < st->long_lived_total / 4) {
                continue;
            }
            return i;
        }
    }
    return -1;
}

/* Called with the GIL at a safe point (pending call or helper thread). */
static void
run_due_collection(void)
{
    trig.n_runs++;
    if (!trig.armed) {
        return;
    }
    CgState *st = trig.st;
    if (st->collecting || st->generations[0].threshold <= 0) {
        return;
    }
    if (st->generations[0].count <= st->generations[0].threshold) {
        if (st->generations[0].count == st->generations[0].threshold) {
            trig.lag = 1;   /* scheduled one allocation early, wrongly: wait */
        }
        return;
    }
    trig.lag = 0;
    PyThreadState *ts = cg_tstate_unchecked();
    if (ts == NULL || ts->interp != trig.interp || PyErr_Occurred()) {
        return;   /* the next allocation schedules again */
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
    cg_line_hook_disarm(cg_tstate_unchecked());
    run_due_collection();
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
    run_due_collection();
    return 0;   /* never raises into the frame that happened to run us */
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

/* count0 >= threshold0 (+ lag) seen at an allocation: schedule, never
 * collect. */
static Py_NO_INLINE void
schedule_collection(void)
{
    CgState *st = trig.st;
    if (st->generations[0].threshold <= 0) {
        return;
    }
    /* Another interpreter's allocation (3.12+ may run it without our GIL):
     * read nothing more, write nothing. */
    PyThreadState *ts = cg_tstate_unchecked();
    if (ts == NULL || ts->interp != trig.interp) {
        return;
    }
    if (st->collecting) {
        trig.n_skipped_collecting++;
        return;
    }
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
    }
    else {
        /* 3.11, not the main thread: collect in this thread, at its next
         * event, as the built-in would collect in it.  The helper takes
         * over if the thread has a tracer of its own, or if it allocated
         * another threshold0 objects without reaching an event (C code). */
        if (st->generations[0].count <= st->generations[0].threshold) {
            return;   /* no look-ahead here: 3.11 collects inside the
                       * allocation that makes it due, the next event is
                       * the nearest safe point after it */
        }
        if (st->generations[0].count <= 2 * st->generations[0].threshold) {
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
}

static inline void
check_allocation(void)
{
    if (trig.armed) {
        CgState *st = trig.st;
        Py_ssize_t threshold = st->generations[0].threshold;
        if (st->generations[0].count >= threshold + trig.lag && threshold > 0) {
            schedule_collection();
        }
    }
}

static void *
trig_malloc(void *ctx, size_t size)
{
    check_allocation();
    return trig.orig.malloc(ctx, size);
}

static void *
trig_calloc(void *ctx, size_t nelem, size_t elsize)
{
    check_allocation();
    return trig.orig.calloc(ctx, nelem, elsize);
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

int
cg_trigger_enabled(void)
{
    return trig.installed ? trig.enabled : -1;
}

int
cg_trigger_set_enabled(int on)
{
    if (!trig.installed) {
        return 0;
    }
    trig.enabled = on != 0;
    trig.armed = trig.enabled;
    return 1;
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
    trig.enabled = st->enabled != 0;
    trig.pending_queued = 0;
    st->enabled = 0;                    /* the built-in never collects by itself */
    cg_cancel_builtin_gc_request(interp);
    trig.installed = 1;
    wrap_allocator();
    trig.armed = trig.enabled;
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
    trig.armed = 0;
    trig.installed = 0;
    trig.st->enabled = trig.enabled;
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
cg_trigger_after_fork(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    trig.pending_queued = 0;
    if (!trig.installed || CG_PENDING_ANY_THREAD) {
        Py_RETURN_NONE;
    }
    /* The parent's locks and thread are gone; forget them (leaked). */
    trig.helper_running = 0;
    trig.wake = trig.done = trig.ready = NULL;
    if (helper_start() < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
cg_trigger_stats(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{snsnsnsnsisisisdsdsdsdsnsn}",
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
}
