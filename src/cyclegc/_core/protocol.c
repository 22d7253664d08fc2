/* protocol.c -- what surrounds every collection, as the built-in does it.
 *
 *   1. claim the interpreter's `collecting` flag, or return 0 at once: a
 *      collect() from a finalizer or callback, from another thread while a
 *      finalizer has released the GIL, and the built-in's own automatic
 *      collector all see a collection in progress;
 *   2. gc.callbacks("start", info);
 *   3. the collection (collector.c), then its figures (metrics.c);
 *   4. gc.callbacks("stop", info), info carrying the built-in's keys plus
 *      "duration" (seconds) and "candidates" (objects examined), the names
 *      CPython 3.15 uses;
 *   5. release the flag.
 * Errors in callbacks go to sys.unraisablehook, as the built-in sends them.
 * When and which generation to collect is decided elsewhere (Python). */
#include "collector.h"

/* The thread whose collection holds the flag (0: none), and how many have
 * begun: trigger.c makes another thread that needs a collection wait for a
 * bounded-mode stop to end (see "Other threads wait for a stop" there). */
unsigned long cg_stop_thread;
unsigned long cg_stop_seq;

static inline void
claim(CgState *st)
{
    st->collecting = 1;
    cg_stop_thread = PyThread_get_thread_ident();
    cg_stop_seq++;
}

static inline void
release(CgState *st)
{
    cg_stop_thread = 0;
    st->collecting = 0;
}

static void
invoke_callbacks(CgState *st, const char *phase, int gen, const CgResult *r)
{
    PyObject *callbacks = st->callbacks;
    if (callbacks == NULL || PyList_GET_SIZE(callbacks) == 0) {
        return;
    }
    CgResult none = {0, 0, 0, 0.0};
    if (r == NULL) {
        r = &none;
    }
    PyObject *info = Py_BuildValue("{sisnsnsdsn}",
                                   "generation", gen,
                                   "collected", r->collected,
                                   "uncollectable", r->uncollectable,
                                   "duration", r->duration,
                                   "candidates", r->candidates);
    PyObject *phase_obj = PyUnicode_FromString(phase);
    if (info == NULL || phase_obj == NULL) {
        PyErr_WriteUnraisable(NULL);
        Py_XDECREF(info);
        Py_XDECREF(phase_obj);
        return;
    }
    /* Index the live list: a callback may add or remove callbacks. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(callbacks); i++) {
        PyObject *cb = PyList_GET_ITEM(callbacks, i);
        Py_INCREF(cb);
        PyObject *res = PyObject_CallFunctionObjArgs(cb, phase_obj, info, NULL);
        if (res == NULL) {
            PyErr_WriteUnraisable(cb);
        }
        else {
            Py_DECREF(res);
        }
        Py_DECREF(cb);
    }
    Py_DECREF(info);
    Py_DECREF(phase_obj);
}

Py_ssize_t
cg_run_collection(int gen, int reason)
{
    CgState *st = cg_state();
    if (st->collecting) {
        return 0;
    }
    claim(st);
    invoke_callbacks(st, "start", gen, NULL);
    CgResult r;
    cg_collect_generation(st, gen, &r);
    cg_metrics_record(gen, reason, &r);
    invoke_callbacks(st, "stop", gen, &r);
    release(st);
    if (gen == CG_NUM_GENERATIONS - 1) {
        cg_stack_roots_adopt();     /* marking's value-stack roots, loaded later (stackroots.c) */
    }
    return r.collected + r.uncollectable;
}

/* An increment of the bounded-pause mode (incremental.c), with the same
 * protocol; young_gen -1 is an extra stop (old work only, no young part).
 * Callbacks and metrics see generation 2 when the increment does
 * old-generation work (its stop is what users of max_pause_ms watch), the
 * young generation otherwise. */
Py_ssize_t
cg_run_increment(int young_gen)
{
    CgState *st = cg_state();
    if (st->collecting) {
        return 0;
    }
    claim(st);
    int plan = young_gen < 0 ? CG_INC_EXTRA : cg_inc_plan(st);
    int gen = plan == CG_INC_YOUNG ? young_gen : CG_NUM_GENERATIONS - 1;
    int reason = plan == CG_INC_OLD || plan == CG_INC_EXTRA ? CG_REASON_INCREMENT : CG_REASON_AUTO;
    invoke_callbacks(st, "start", gen, NULL);
    CgResult r = {0, 0, 0, 0.0};
    cg_inc_step(st, young_gen, plan, &r);
    cg_metrics_record(gen, reason, &r);
    invoke_callbacks(st, "stop", gen, &r);
    release(st);
    return r.collected + r.uncollectable;
}
