/* module.c -- the extension module cyclegc._core._cyclegc.
 *
 * Two kinds of functions live here:
 *
 *  - The gc API entry points (collect, enable, get_objects, ...).  They use
 *    the same calling conventions as the built-in gc module of the running
 *    version and are created with __module__ "gc", so that bad arguments get
 *    the built-in's exception types and messages, produced by CPython's own
 *    argument machinery.  Anything beyond argument checking and reading or
 *    writing the interpreter's state is the collection itself
 *    (protocol.c); when to collect is decided in Python.
 *
 *  - Private helpers for the Python layer: run_collection, metrics, the
 *    marking switch.
 */
#include "collector.h"

#define CG_MODULE_DOC "cyclegc's C core: collector phases and gc API entry points."

/* ---- gc API entry points ------------------------------------------------ */

/* The int conversion of the built-in's argument clinic (_PyLong_AsInt):
 * __index__, then one OverflowError wording for both directions. */
static int
as_c_int(PyObject *obj, int *out)
{
    int overflow;
    long v = PyLong_AsLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow || v > INT_MAX || v < INT_MIN) {
        PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to C int");
        return -1;
    }
    *out = (int)v;
    return 0;
}

static PyObject *
api_enable(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    cg_state()->enabled = 1;   /* one flag for both collectors (trigger.c) */
    Py_RETURN_NONE;
}

static PyObject *
api_disable(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    cg_state()->enabled = 0;
    Py_RETURN_NONE;
}

static PyObject *
api_isenabled(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(cg_state()->enabled);
}

static PyObject *
api_collect(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"generation", NULL};
    int generation = CG_NUM_GENERATIONS - 1;
    PyObject *genobj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:collect", kwlist, &genobj)) {
        return NULL;
    }
    if (genobj != NULL && as_c_int(genobj, &generation) < 0) {
        return NULL;
    }
    if (generation < 0 || generation >= CG_NUM_GENERATIONS) {
        PyErr_SetString(PyExc_ValueError, "invalid generation");
        return NULL;
    }
    return PyLong_FromSsize_t(cg_run_collection(generation, CG_REASON_MANUAL));
}

static PyObject *
api_get_debug(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(cg_state()->debug);
}

static PyObject *
api_set_debug(PyObject *self, PyObject *arg)
{
    int flags;
    if (as_c_int(arg, &flags) < 0) {
        return NULL;
    }
    cg_state()->debug = flags;
    Py_RETURN_NONE;
}

static PyObject *
api_get_threshold(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    CgState *st = cg_state();
    return Py_BuildValue("(nii)", cg_threshold0(st),
                         st->generations[1].threshold, st->generations[2].threshold);
}

static PyObject *
api_set_threshold(PyObject *self, PyObject *args)
{
    CgState *st = cg_state();
    int t[CG_NUM_GENERATIONS];
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    for (int i = 0; i < CG_NUM_GENERATIONS; i++) {
        t[i] = i == 0 ? (int)cg_threshold0(st) : st->generations[i].threshold;
    }
    if (CG_SET_THRESHOLD_CUSTOM_ARITY_ERROR && (n < 1 || n > CG_NUM_GENERATIONS)) {
        PyErr_SetString(PyExc_TypeError, "gc.set_threshold requires 1 to 3 arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "i|ii:set_threshold", &t[0], &t[1], &t[2])) {
        return NULL;
    }
    cg_set_threshold0(st, t[0]);
    for (int i = 1; i < CG_NUM_GENERATIONS; i++) {
        st->generations[i].threshold = t[i];
    }
    Py_RETURN_NONE;
}

static PyObject *
api_get_count(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    CgState *st = cg_state();
    return Py_BuildValue("(iii)", st->generations[0].count,
                         st->generations[1].count, st->generations[2].count);
}

static PyObject *
api_get_objects(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"generation", NULL};
    PyObject *genobj = Py_None;
    Py_ssize_t generation = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:get_objects", kwlist, &genobj)) {
        return NULL;
    }
    if (genobj != Py_None) {
        if (!PyIndex_Check(genobj)) {
            PyErr_Format(PyExc_TypeError, "argument should be integer or None, not '%.200s'",
                         Py_TYPE(genobj)->tp_name);
            return NULL;
        }
        generation = PyNumber_AsSsize_t(genobj, PyExc_OverflowError);
        if (generation == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (generation >= CG_NUM_GENERATIONS) {
            PyErr_Format(PyExc_ValueError,
                         "generation parameter must be less than the number of "
                         "available generations (%i)", CG_NUM_GENERATIONS);
            return NULL;
        }
        if (generation < -1) {
            PyErr_SetString(PyExc_ValueError, "generation parameter cannot be negative");
            return NULL;
        }
    }
    return cg_get_objects(cg_state(), generation);
}

static int
reject_keywords(const char *name, PyObject *kwargs)
{
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_Format(PyExc_TypeError, "%s() takes no keyword arguments", name);
        return -1;
    }
    return 0;
}

static PyObject *
api_get_referrers(PyObject *self, PyObject *args, PyObject *kwargs)
{
    if (reject_keywords(CG_VARARGS_NAME("get_referrers"), kwargs) < 0) {
        return NULL;
    }
    return cg_get_referrers(cg_state(), args);
}

static PyObject *
api_get_referents(PyObject *self, PyObject *args, PyObject *kwargs)
{
    if (reject_keywords(CG_VARARGS_NAME("get_referents"), kwargs) < 0) {
        return NULL;
    }
    return cg_get_referents(args);
}

static PyObject *
api_get_stats(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    CgState *st = cg_state();
    PyObject *result = PyList_New(0);
    if (result == NULL) {
        return NULL;
    }
    for (int i = 0; i < CG_NUM_GENERATIONS; i++) {
        PyObject *d = Py_BuildValue("{snsnsn}",
                                    "collections", st->generation_stats[i].collections,
                                    "collected", st->generation_stats[i].collected,
                                    "uncollectable", st->generation_stats[i].uncollectable);
        if (d == NULL || PyList_Append(result, d) < 0) {
            Py_XDECREF(d);
            Py_DECREF(result);
            return NULL;
        }
        Py_DECREF(d);
    }
    return result;
}

static PyObject *
api_is_tracked(PyObject *self, PyObject *obj)
{
    return PyBool_FromLong(cg_is_gc(obj) && cg_is_tracked(obj));
}

static PyObject *
api_is_finalized(PyObject *self, PyObject *obj)
{
    return PyBool_FromLong(cg_is_gc(obj) && (CG_AS_GC(obj)->_gc_prev & CG_PREV_FINALIZED));
}

static PyObject *
api_freeze(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    cg_freeze(cg_state());
    Py_RETURN_NONE;
}

static PyObject *
api_unfreeze(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    cg_unfreeze(cg_state());
    Py_RETURN_NONE;
}

static PyObject *
api_get_freeze_count(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(cg_freeze_count(cg_state()));
}

/* _immortalize_heap() -> objects made immortal: see immortal.c. */
static PyObject *
core_immortalize_heap(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    CgState *st = cg_state();
    if (st->collecting) {
        PyErr_SetString(PyExc_RuntimeError, "immortalize_heap() cannot run during a collection");
        return NULL;
    }
    return PyLong_FromSsize_t(cg_immortalize_heap(st));
}

/* Docstrings carry text signatures so inspect.signature() matches gc's. */
static PyMethodDef api_methods[] = {
    {"enable", api_enable, METH_NOARGS,
     "enable($module, /)\n--\n\nEnable automatic garbage collection."},
    {"disable", api_disable, METH_NOARGS,
     "disable($module, /)\n--\n\nDisable automatic garbage collection."},
    {"isenabled", api_isenabled, METH_NOARGS,
     "isenabled($module, /)\n--\n\nReturns true if automatic garbage collection is enabled."},
    {"collect", (PyCFunction)(void (*)(void))api_collect, METH_VARARGS | METH_KEYWORDS,
     "collect($module, /, generation=2)\n--\n\n"
     "Run a garbage collection with cyclegc's collector.\n\n"
     "With no argument, do a full collection.  The generation argument (0, 1\n"
     "or 2) collects that generation and every younger one.  Returns the\n"
     "number of unreachable objects found."},
    {"get_debug", api_get_debug, METH_NOARGS,
     "get_debug($module, /)\n--\n\nGet the garbage collection debugging flags."},
    {"set_debug", api_set_debug, METH_O,
     "set_debug($module, flags, /)\n--\n\nSet the garbage collection debugging flags."},
    {"get_threshold", api_get_threshold, METH_NOARGS,
     "get_threshold($module, /)\n--\n\nReturn the current collection thresholds."},
    {"set_threshold", api_set_threshold, METH_VARARGS,
     "set_threshold(threshold0, [threshold1, [threshold2]])\n"
     "Set the collection thresholds (a threshold of 0 disables automatic collection)."},
    {"get_count", api_get_count, METH_NOARGS,
     "get_count($module, /)\n--\n\nReturn a three-tuple of the current collection counts."},
    {"get_objects", (PyCFunction)(void (*)(void))api_get_objects, METH_VARARGS | METH_KEYWORDS,
     "get_objects($module, /, generation=None)\n--\n\n"
     "Return a list of objects tracked by the collector (excluding the list returned)."},
    {"get_referrers", (PyCFunction)(void (*)(void))api_get_referrers, METH_VARARGS | METH_KEYWORDS,
     CG_REFERRERS_SIGNATURE "Return the list of objects that directly refer to any of objs."},
    {"get_referents", (PyCFunction)(void (*)(void))api_get_referents, METH_VARARGS | METH_KEYWORDS,
     CG_REFERENTS_SIGNATURE "Return the list of objects that are directly referred to by objs."},
    {"get_stats", api_get_stats, METH_NOARGS,
     "get_stats($module, /)\n--\n\nReturn a list of dictionaries containing per-generation statistics."},
    {"is_tracked", api_is_tracked, METH_O,
     "is_tracked($module, obj, /)\n--\n\nReturns true if the object is tracked by the garbage collector."},
    {"is_finalized", api_is_finalized, METH_O,
     "is_finalized($module, obj, /)\n--\n\nReturns true if the object has been already finalized by the GC."},
    {"freeze", api_freeze, METH_NOARGS,
     "freeze($module, /)\n--\n\nFreeze all current tracked objects and ignore them for future collections."},
    {"unfreeze", api_unfreeze, METH_NOARGS,
     "unfreeze($module, /)\n--\n\nUnfreeze all objects in the permanent generation."},
    {"get_freeze_count", api_get_freeze_count, METH_NOARGS,
     "get_freeze_count($module, /)\n--\n\nReturn the number of objects in the permanent generation."},
    {NULL, NULL, 0, NULL},
};

/* ---- private helpers for cyclegc.api -------------------------------------- */

/* run_collection(gen, reason) -> collected + uncollectable (0 if a
 * collection is already running); `reason` is a small int kept in the
 * metrics (cyclegc.stats.REASONS). */
static PyObject *
core_run_collection(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int gen, reason;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "run_collection(gen, reason)");
        return NULL;
    }
    if (as_c_int(args[0], &gen) < 0 || as_c_int(args[1], &reason) < 0) {
        return NULL;
    }
    if (gen < 0 || gen >= CG_NUM_GENERATIONS) {
        PyErr_SetString(PyExc_ValueError, "invalid generation");
        return NULL;
    }
    return PyLong_FromSsize_t(cg_run_collection(gen, reason));
}

static PyObject *
core_metrics_snapshot(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return cg_metrics_snapshot();
}

static PyObject *
core_metrics_reset(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    cg_metrics_reset();
    Py_RETURN_NONE;
}

static PyObject *
set_switch(int *sw, PyObject *flag)
{
    int on = PyObject_IsTrue(flag);
    if (on < 0) {
        return NULL;
    }
    int previous = *sw;
    *sw = on;
    return PyBool_FromLong(previous);
}

/* _set_marking(flag) -> previous: whether full collections mark what is
 * alive from the roots first (tests and benchmarks compare both). */
static PyObject *
core_set_marking(PyObject *self, PyObject *flag)
{
    return set_switch(&cg_marking_enabled, flag);
}

/* _set_fused_full(flag) -> previous: whether a full collection without
 * marking sets and subtracts the counts in one walk of the heap (collector.c,
 * update_subtract_full) or in two; the same result, benchmarks compare. */
static PyObject *
core_set_fused_full(PyObject *self, PyObject *flag)
{
    return set_switch(&cg_fused_full, flag);
}

/* _set_spread(flag) -> previous: whether bounded mode proves a closure
 * bigger than a stop across stops where page writes can be watched
 * (incremental.c) or in one oversized slice. */
static PyObject *
core_set_spread(PyObject *self, PyObject *flag)
{
    return set_switch(&cg_spread_enabled, flag);
}

/* _write_watch_selftest() -> dict: the page write detector (writewatch.c)
 * on memory of its own: what it says after a protect, a write, a write by
 * the kernel and an unmapping (tests). */
static PyObject *
core_write_watch_selftest(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return cg_ww_selftest();
}

/* A count for a knob of the core, set through `setter`. */
static PyObject *
set_count(PyObject *arg, void (*setter)(Py_ssize_t))
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    setter(n);
    Py_RETURN_NONE;
}

/* _set_spread_alive_walk(mode): tests and the fuzzer; 1, verdicts and
 * settling show members alive by a walk of the spread's list first; -1
 * never; 0 as many written members call for. */
static PyObject *
core_set_spread_alive_walk(PyObject *self, PyObject *arg)
{
    return set_count(arg, cg_inc_set_spread_alive_walk);
}

/* _set_spread_settle_pages(n): tests and the fuzzer; every verdict on
 * written pages settles first, n pages a stop (0: only when the stop's
 * budget says so). */
static PyObject *
core_set_spread_settle_pages(PyObject *self, PyObject *arg)
{
    return set_count(arg, cg_inc_set_spread_settle_pages);
}

/* _set_spread_step_limit(n): tests and the fuzzer; at most n members of a
 * spread traversed per stop (0: as the budget allows). */
static PyObject *
core_set_spread_step_limit(PyObject *self, PyObject *arg)
{
    return set_count(arg, cg_inc_set_spread_step_limit);
}

/* _is_marked(obj) -> bool: tests; whether this round has marked obj. */
static PyObject *
core_is_marked(PyObject *self, PyObject *obj)
{
    return PyBool_FromLong(cg_inc_is_marked(obj));
}

/* _spread_from(obj) -> bool: tests and the fuzzer; the next stop proves
 * obj's closure across stops (a round must be sweeping, obj unmarked). */
static PyObject *
core_spread_from(PyObject *self, PyObject *obj)
{
    return PyBool_FromLong(cg_inc_spread_from(obj));
}

/* _set_split_walkers(flag) -> previous: whether the split after marking
 * walks the list with many walkers in flight or with one (both give the
 * same lists in the same order; tests and benchmarks compare them). */
static PyObject *
core_set_split_walkers(PyObject *self, PyObject *flag)
{
    return set_switch(&cg_split_walkers, flag);
}

/* _last_trial_candidates() -> int: how many objects the last full
 * collection left to trial deletion, i.e. what marking from the roots did
 * not reach (tests of the roots; insight into what a heap's roots miss). */
static PyObject *
core_last_trial_candidates(PyObject *self, PyObject *unused)
{
    return PyLong_FromSsize_t(cg_last_trial_candidates);
}

/* _unmarked_sample(n) -> (tracked, marked, [up to n unmarked objects]) or
 * None: what marking from the roots would not reach now (collector.c). */
static PyObject *
core_unmarked_sample(PyObject *self, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        }
        return NULL;
    }
    return cg_unmarked_sample(cg_state(), n);
}

/* _phase_seconds() -> {name: (gen 0, gen 1, gen 2)}: seconds spent in each
 * part of the collections (collector.h, CG_PHASE_*) since the start. */
static PyObject *
core_phase_seconds(PyObject *self, PyObject *unused)
{
    static const char *names[CG_PHASES] = {"mark", "split", "trial", "untrack", "dispose", "other"};
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    for (int p = 0; p < CG_PHASES; p++) {
        PyObject *v = Py_BuildValue("(ddd)", cg_phase_seconds[0][p], cg_phase_seconds[1][p],
                                    cg_phase_seconds[2][p]);
        if (v == NULL || PyDict_SetItemString(d, names[p], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

/* _set_heap_shared(flag) -> previous: whether this process may share
 * pages with another (api.py sets it at every fork, in parent and child;
 * tests set it to exercise the read-only path without forking). */
static PyObject *
core_set_heap_shared(PyObject *self, PyObject *flag)
{
    int was = cg_heap_shared;
    PyObject *previous = set_switch(&cg_heap_shared, flag);
    if (previous != NULL && !was && cg_heap_shared && cg_fork_friendly) {
        cg_inc_abort(cg_state());       /* as core_set_fork_friendly, below */
    }
    return previous;
}

/* _set_fork_friendly(flag) -> previous: full collections write nothing but
 * the garbage, and examine the permanent generation too (readonly.c).
 * Switching it on ends a bounded-pause round in progress: its slices move
 * survivors between lists, which is what the mode promises not to do, and a
 * pre-fork worker ("auto" switches the mode on in every forked child)
 * inherits the round its parent was in (found by benchmarks/realworld's
 * gunicorn program: workers went on slicing the inherited round). */
static PyObject *
core_set_fork_friendly(PyObject *self, PyObject *flag)
{
    int was = cg_fork_friendly;
    PyObject *previous = set_switch(&cg_fork_friendly, flag);
    if (previous != NULL && !was && cg_fork_friendly) {
        cg_inc_abort(cg_state());
    }
    return previous;
}

/* _set_max_pause(seconds) -> None: automatic collections become bounded
 * increments (incremental.c); 0 gives back the generational behaviour.
 * Ending the mode returns the round's objects to the oldest generation. */
static PyObject *
core_set_max_pause(PyObject *self, PyObject *arg)
{
    double seconds = PyFloat_AsDouble(arg);
    if (seconds == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (!(seconds >= 0.0)) {
        PyErr_SetString(PyExc_ValueError, "max pause must be >= 0");
        return NULL;
    }
    if (cg_inc_configure(seconds) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* run_increment(young_gen, start_round=False) -> collected: one increment
 * now, as an automatic collection of the bounded-pause mode would run it;
 * `start_round` starts an old-generation round if none is running (tests
 * drive rounds with it).  The mode must be configured (_set_max_pause). */
static PyObject *
core_run_increment(PyObject *self, PyObject *args)
{
    int gen, start_round = 0;
    if (!PyArg_ParseTuple(args, "i|p:run_increment", &gen, &start_round)) {
        return NULL;
    }
    if (gen < 0 || gen > 1) {
        PyErr_SetString(PyExc_ValueError, "young generation must be 0 or 1");
        return NULL;
    }
    if (!cg_inc_enabled()) {
        PyErr_SetString(PyExc_RuntimeError, "the bounded-pause mode is off");
        return NULL;
    }
    if (start_round) {
        cg_inc_request_round();
    }
    return PyLong_FromSsize_t(cg_run_increment(gen));
}

/* _stack_safe_depths(code) / _stack_any_depths(code) -> [depth per code
 * unit] or None; _stack_roots(top_safe) -> [objects]: the value-stack
 * analysis and roots (stackroots.c), for tests; _live_depths() -> the
 * number of analyses not yet freed; _set_executing_roots(on):
 * other executing frames' value stacks as roots (on by default). */
static PyObject *
core_stack_safe_depths(PyObject *self, PyObject *code)
{
    return cg_stack_depths(code, 0);
}

static PyObject *
core_stack_any_depths(PyObject *self, PyObject *code)
{
    return cg_stack_depths(code, 1);
}

static PyObject *
core_live_depths(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(cg_live_depths());
}

static PyObject *
core_set_executing_roots(PyObject *self, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0) {
        return NULL;
    }
    cg_executing_roots = on;
    Py_RETURN_NONE;
}

static PyObject *
core_set_young_chunk(PyObject *self, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    cg_inc_force_young_chunk(n);
    Py_RETURN_NONE;
}

static PyObject *
core_set_extra_stops(PyObject *self, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0) {
        return NULL;
    }
    return PyBool_FromLong(cg_inc_set_extra_stops(on));
}

static PyObject *
core_force_overflow(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    cg_inc_force_overflow();
    Py_RETURN_NONE;
}

/* _force_oversized(n): tests and the fuzzer; every round takes whole
 * closures and a slice of more than n objects is an oversized (overflow)
 * slice whose garbage is parked; 0 turns it off. */
static PyObject *
core_force_oversized(PyObject *self, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    cg_inc_force_oversized(n);
    Py_RETURN_NONE;
}

/* _set_sweep_cost(ns) -> previous: the pacer's sweep cost per object
 * (tests: slices that run faster than it leave room for more in a stop). */
static PyObject *
core_set_sweep_cost(PyObject *self, PyObject *arg)
{
    double ns = PyFloat_AsDouble(arg);
    if (ns == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (!(ns > 0.0)) {
        PyErr_SetString(PyExc_ValueError, "_set_sweep_cost: ns must be positive");
        return NULL;
    }
    return PyFloat_FromDouble(cg_inc_set_sweep_cost(ns * 1e-9) * 1e9);
}

static PyObject *
core_stack_roots(PyObject *self, PyObject *arg)
{
    int top_safe = PyObject_IsTrue(arg);
    if (top_safe < 0) {
        return NULL;
    }
    return cg_stack_roots_now(top_safe);
}

static PyObject *
core_incremental_stats(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return cg_inc_stats();
}

static PyObject *
core_long_lived(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    CgState *st = cg_state();
    return Py_BuildValue("(nn)", st->long_lived_total, st->long_lived_pending);
}

static PyObject *
core_interp_lists(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    CgState *st = cg_state();
    return Py_BuildValue("(OO)", st->garbage, st->callbacks);
}

static PyObject *
core_walk_probe(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return cg_walk_probe(cg_state());
}

/* _layout_check() -> (seconds, CPU seconds): the layout check of the
 * module's load, run again (tests, timing).  Call it from a function: the
 * check compares the local variables of the calling frames. */
static PyObject *
core_layout_check(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    double seconds, cpu_seconds;
    if (cg_layout_check(&seconds, &cpu_seconds) < 0) {
        return NULL;
    }
    return Py_BuildValue("(dd)", seconds, cpu_seconds);
}

/* _traverse_probe(order, seed) -> (objects, seconds, _): the floor of a full
 * collection, a read-only traversal in memory (0) or random (1) order. */
static PyObject *
core_traverse_probe(PyObject *self, PyObject *args)
{
    int order;
    unsigned long long seed = 1;
    if (!PyArg_ParseTuple(args, "i|K", &order, &seed)) {
        return NULL;
    }
    return cg_traverse_probe(cg_state(), order, seed);
}

/* _set_prefetch(ring, ready) -> (previous ring, previous ready): how many
 * pointers wait, prefetched, before they are read (gclist.h, CgRing); 0, 0
 * is the plain depth-first walk.  For measurements. */
static PyObject *
core_set_prefetch(PyObject *self, PyObject *args)
{
    int ring, ready;
    if (!PyArg_ParseTuple(args, "ii", &ring, &ready)) {
        return NULL;
    }
    if (ring < 0 || ring >= (int)CG_RING_SIZE || ready < 0 || ready >= (int)CG_RING_SIZE) {
        PyErr_Format(PyExc_ValueError, "depths must be in 0..%u", CG_RING_SIZE - 1);
        return NULL;
    }
    PyObject *previous = Py_BuildValue("(II)", cg_ring_depth, cg_ready_depth);
    cg_ring_depth = (unsigned)ring;
    cg_ready_depth = (unsigned)ready;
    return previous;
}

/* Sets *knob to the int `arg`, returns its previous value: the private
 * Py_ssize_t tuning setters below are this and nothing else. */
static PyObject *
swap_ssize_knob(PyObject *arg, Py_ssize_t *knob)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t previous = *knob;
    *knob = n;
    return PyLong_FromSsize_t(previous);
}

/* _set_ring_min_candidates(n) -> previous: trial deletion uses its
 * prefetch ring only for at least n candidates. */
static PyObject *
core_set_ring_min_candidates(PyObject *self, PyObject *arg)
{
    return swap_ssize_knob(arg, &cg_ring_min_candidates);
}

/* _set_order_min(n) -> previous: trial deletion prefetches down the
 * candidates' recorded order only from n candidates. */
static PyObject *
core_set_order_min(PyObject *self, PyObject *arg)
{
    return swap_ssize_knob(arg, &cg_order_min);
}

/* _set_ring_probe_older(n) -> previous, and _last_ring_probe(): the
 * young collections' choice of the prefetch ring (collector.c). */
static PyObject *
core_set_ring_probe_older(PyObject *self, PyObject *arg)
{
    return swap_ssize_knob(arg, &cg_ring_probe_older);
}

static PyObject *
core_last_ring_probe(PyObject *self, PyObject *unused)
{
    return PyLong_FromSsize_t(cg_last_ring_probe);
}

/* _heavy_types() -> [types], _forget_heavy_types(), _last_heavy_skipped():
 * young collections' heavy objects (collector.c). */
static PyObject *
core_heavy_types(PyObject *self, PyObject *unused)
{
    return cg_heavy_types();
}

static PyObject *
core_forget_heavy_types(PyObject *self, PyObject *unused)
{
    cg_forget_heavy_types();
    Py_RETURN_NONE;
}

static PyObject *
core_add_heavy_type(PyObject *self, PyObject *arg)
{
    if (!PyType_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "a type is expected");
        return NULL;
    }
    if (cg_add_heavy_type((PyTypeObject *)arg) < 0) {
        PyErr_SetString(PyExc_ValueError, "too many heavy types");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
core_last_heavy_skipped(PyObject *self, PyObject *unused)
{
    return PyLong_FromSsize_t(cg_last_heavy_skipped);
}

static PyMethodDef core_methods[] = {
    {"_heavy_types", core_heavy_types, METH_NOARGS,
     "_heavy_types() -> the types whose instances young collections set aside (learned)."},
    {"_add_heavy_type", core_add_heavy_type, METH_O,
     "_add_heavy_type(tp): tests: young collections set its instances aside."},
    {"_forget_heavy_types", core_forget_heavy_types, METH_NOARGS,
     "_forget_heavy_types(): tests: learn them again."},
    {"_last_heavy_skipped", core_last_heavy_skipped, METH_NOARGS,
     "objects the last young collection did not traverse (heavy, referenced from outside)."},
    {"run_collection", (PyCFunction)(void (*)(void))core_run_collection, METH_FASTCALL,
     "run_collection(gen, reason) -> collected + uncollectable (0 if one is running)"},
    {"metrics_snapshot", core_metrics_snapshot, METH_NOARGS,
     "(totals per generation, recent collections, duration histogram)"},
    {"metrics_reset", core_metrics_reset, METH_NOARGS, "Forget the core's metrics."},
    {"_immortalize_heap", core_immortalize_heap, METH_NOARGS,
     "_immortalize_heap() -> objects made immortal: see cyclegc.immortalize_heap()."},
    {"_set_marking", core_set_marking, METH_O,
     "_set_marking(flag) -> previous: mark from the roots before trial deletion."},
    {"_write_watch_selftest", core_write_watch_selftest, METH_NOARGS,
     "_write_watch_selftest() -> dict: the page write detector on pages of its own."},
    {"_set_spread_alive_walk", core_set_spread_alive_walk, METH_O,
     "_set_spread_alive_walk(mode): tests: members shown alive by a walk of the spread's list first (1 always, -1 never, 0 when many are written)."},
    {"_set_spread_settle_pages", core_set_spread_settle_pages, METH_O,
     "_set_spread_settle_pages(n): tests: every verdict on written pages settles first, n pages a stop (0: off)."},
    {"_set_spread_step_limit", core_set_spread_step_limit, METH_O,
     "_set_spread_step_limit(n): at most n members of a spread per stop (0: the budget's)."},
    {"_is_marked", core_is_marked, METH_O,
     "_is_marked(obj) -> bool: whether the bounded-pause round has marked obj (alive for the round)."},
    {"_spread_from", core_spread_from, METH_O,
     "_spread_from(obj) -> bool: the next stop proves obj's closure across stops."},
    {"_set_spread", core_set_spread, METH_O,
     "_set_spread(flag) -> previous: closures bigger than a stop proven across stops."},
    {"_set_fused_full", core_set_fused_full, METH_O,
     "_set_fused_full(flag) -> previous: a full collection without marking counts in one walk."},
    {"_set_order_min", core_set_order_min, METH_O,
     "_set_order_min(n) -> previous: trial deletion prefetches down the candidates' order from n candidates."},
    {"_set_ring_min_candidates", core_set_ring_min_candidates, METH_O,
     "_set_ring_min_candidates(n) -> previous: trial deletion's prefetch ring only from n candidates."},
    {"_set_ring_probe_older", core_set_ring_probe_older, METH_O,
     "_set_ring_probe_older(n) -> previous: young collections take the ring from n older referents per 64 probed."},
    {"_last_ring_probe", core_last_ring_probe, METH_NOARGS,
     "older referents per 64 candidates in the last young collection's probe (-1: none)."},
    {"_set_split_walkers", core_set_split_walkers, METH_O,
     "_set_split_walkers(flag) -> previous: split marked/unmarked with many walkers in flight."},
    {"_last_trial_candidates", core_last_trial_candidates, METH_NOARGS,
     "_last_trial_candidates() -> int: objects the last full collection left to trial deletion."},
    {"_unmarked_sample", core_unmarked_sample, METH_O,
     "_unmarked_sample(n) -> (tracked, marked, sample of the unmarked) or None: what marking misses now."},
    {"_phase_seconds", core_phase_seconds, METH_NOARGS,
     "_phase_seconds() -> {phase: (gen 0, gen 1, gen 2) seconds}: where collections spent their time."},
    {"_set_heap_shared", core_set_heap_shared, METH_O,
     "_set_heap_shared(flag) -> previous: pages may be shared with another process."},
    {"_set_fork_friendly", core_set_fork_friendly, METH_O,
     "_set_fork_friendly(flag) -> previous: full collections only read survivors."},
    {"_set_max_pause", core_set_max_pause, METH_O,
     "_set_max_pause(seconds): bounded increments for automatic collections (0: off)."},
    {"run_increment", core_run_increment, METH_VARARGS,
     "run_increment(young_gen, start_round=False) -> collected: one bounded-pause increment now."},
    {"_stack_safe_depths", core_stack_safe_depths, METH_O, NULL},
    {"_stack_any_depths", core_stack_any_depths, METH_O, NULL},
    {"_live_depths", core_live_depths, METH_NOARGS, NULL},
    {"_set_executing_roots", core_set_executing_roots, METH_O, NULL},
    {"_stack_roots", core_stack_roots, METH_O, NULL},
    {"_set_young_chunk", core_set_young_chunk, METH_O, NULL},
    {"_force_overflow", core_force_overflow, METH_NOARGS, NULL},
    {"_set_extra_stops", core_set_extra_stops, METH_O,
     "_set_extra_stops(on) -> previous: old-work stops between young ones when a round is behind."},
    {"_set_sweep_cost", core_set_sweep_cost, METH_O,
     "_set_sweep_cost(ns) -> previous: the pacer's sweep cost per object (tests)."},
    {"_force_oversized", core_force_oversized, METH_O,
     "_force_oversized(n): every round uncapped, slices past n objects oversized (0: off);"
     " n < 0: rounds capped, a closure past -n put back and taken whole by the next stop."},
    {"incremental_stats", core_incremental_stats, METH_NOARGS,
     "Figures of the bounded-pause mode (rounds, increments, slices...)."},
    {"long_lived", core_long_lived, METH_NOARGS, "(long_lived_total, long_lived_pending)"},
    {"_walk_probe", core_walk_probe, METH_NOARGS,
     "_walk_probe() -> (objects, walk s, traverse s, _): what a collection must read, timed."},
    {"_traverse_probe", core_traverse_probe, METH_VARARGS,
     "_traverse_probe(order, seed=1) -> (objects, s, _): read-only traversal, memory (0) or random (1) order."},
    {"_set_prefetch", core_set_prefetch, METH_VARARGS,
     "_set_prefetch(ring, ready) -> previous: pointers parked, prefetched, before they are read."},
    {"interp_lists", core_interp_lists, METH_NOARGS,
     "The interpreter's own gc.garbage and gc.callbacks lists."},
    {"_layout_check", core_layout_check, METH_NOARGS,
     "_layout_check() -> (seconds, CPU seconds): prove the struct layout against the interpreter again."},
    {"trigger_install", cg_trigger_install, METH_NOARGS,
     "trigger_install(): cyclegc runs the automatic collections."},
    {"trigger_uninstall", cg_trigger_uninstall, METH_NOARGS,
     "Give the automatic collections back to the built-in collector."},
    {"trigger_installed", cg_trigger_is_installed, METH_NOARGS, "Is the trigger installed?"},
    {"trigger_after_fork", cg_trigger_after_fork, METH_O,
     "trigger_after_fork(restart_helper): the trigger in a forked child."},
    {"trigger_stats", cg_trigger_stats, METH_NOARGS, "The trigger's counters."},
    {"trigger_call_unwrapped", cg_trigger_call_unwrapped, METH_O,
     "Call func() with the interpreter's own object allocator in place."},
    {NULL, NULL, 0, NULL},
};

/* ---- module ---------------------------------------------------------------- */

static int
add_api_functions(PyObject *module)
{
    PyObject *api = PyDict_New();
    PyObject *modname = PyUnicode_FromString("gc");
    if (api == NULL || modname == NULL) {
        goto error;
    }
    for (PyMethodDef *def = api_methods; def->ml_name != NULL; def++) {
        PyObject *func = PyCFunction_NewEx(def, module, modname);
        if (func == NULL || PyDict_SetItemString(api, def->ml_name, func) < 0) {
            Py_XDECREF(func);
            goto error;
        }
        Py_DECREF(func);
    }
    Py_DECREF(modname);
    int rc = PyModule_AddObjectRef(module, "API", api);
    Py_DECREF(api);
    return rc;
error:
    Py_XDECREF(api);
    Py_XDECREF(modname);
    return -1;
}

static int
check_runtime_version(void)
{
    unsigned long built = PY_VERSION_HEX >> 16, running = Py_Version >> 16;
    if (built != running) {
        PyErr_Format(PyExc_ImportError,
                     "cyclegc's core was built for CPython %s but runs on %lu.%lu.%lu; "
                     "reinstall cyclegc for this interpreter",
                     PY_VERSION, running >> 8, running & 0xff, (Py_Version >> 8) & 0xff);
        return -1;
    }
    return 0;
}

/* Nothing may touch the interpreter's collector state before the layout
 * check has proven the offsets the core reaches it by (layout.c). */
static int
module_exec(PyObject *module)
{
    double layout_seconds, layout_cpu_seconds;
    if (check_runtime_version() < 0 || cg_layout_check(&layout_seconds, &layout_cpu_seconds) < 0) {
        return -1;
    }
    cg_stack_roots_reserve();
    PyObject *groups = cg_layout_groups();
    PyObject *seconds = PyFloat_FromDouble(layout_seconds);
    PyObject *cpu_seconds = PyFloat_FromDouble(layout_cpu_seconds);
    int rc = (groups == NULL || seconds == NULL || cpu_seconds == NULL
              || PyModule_AddObjectRef(module, "LAYOUT_GROUPS", groups) < 0
              || PyModule_AddObjectRef(module, "LAYOUT_CHECK_SECONDS", seconds) < 0
              || PyModule_AddObjectRef(module, "LAYOUT_CHECK_CPU_SECONDS", cpu_seconds) < 0
              || PyModule_AddStringConstant(module, "BUILT_FOR", PY_VERSION) < 0) ? -1 : 0;
    Py_XDECREF(groups);
    Py_XDECREF(seconds);
    Py_XDECREF(cpu_seconds);
    if (rc < 0) {
        return -1;
    }
    if (add_api_functions(module) < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(module, "DEBUG_STATS", CG_DEBUG_STATS) < 0
        || PyModule_AddIntConstant(module, "DEBUG_COLLECTABLE", CG_DEBUG_COLLECTABLE) < 0
        || PyModule_AddIntConstant(module, "DEBUG_UNCOLLECTABLE", CG_DEBUG_UNCOLLECTABLE) < 0
        || PyModule_AddIntConstant(module, "DEBUG_SAVEALL", CG_DEBUG_SAVEALL) < 0
        || PyModule_AddIntConstant(module, "DEBUG_LEAK", CG_DEBUG_LEAK) < 0
        || PyModule_AddIntConstant(module, "CAN_IMMORTALIZE", CG_CAN_IMMORTALIZE) < 0
        || PyModule_AddIntConstant(module, "NUM_GENERATIONS", CG_NUM_GENERATIONS) < 0) {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "cyclegc._core._cyclegc",
    .m_doc = CG_MODULE_DOC,
    .m_size = 0,
    .m_methods = core_methods,
    .m_slots = module_slots,
};

PyMODINIT_FUNC
PyInit__cyclegc(void)
{
    return PyModuleDef_Init(&module_def);
}
