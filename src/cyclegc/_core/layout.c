/* layout.c -- prove the compiled-in struct layout against the live interpreter.
 *
 * The core reaches the interpreter's collector state, free lists, frames and
 * thread list by offsets taken from the internal headers of the CPython that
 * compiled it.  A wheel is installed on other patch levels and distribution
 * builds, where a changed offset would be silent memory corruption.  So when
 * the core loads, before anything touches the collector's lists, this file
 * compares what the core reads through its offsets with what the
 * interpreter's own code (the gc module, public C API) reports, and makes the
 * interpreter change values to see them change at the expected place:
 *
 *   runtime    _PyRuntime.interpreters head and main are the interpreters
 *              PyInterpreterState_Head()/Main() return;
 *   gc         enabled follows PyGC_Disable/Enable; debug and the thresholds
 *              equal gc.get_debug()/get_threshold() and follow
 *              gc.set_debug()/set_threshold(); the counts equal
 *              gc.get_count() and count0 follows one allocation and one
 *              free; generation_stats equal gc.get_stats(); garbage and
 *              callbacks are the very lists of the gc module; generation0
 *              points at the first generation's head;
 *   lists      a list just created is the last object of generation 0 (its
 *              links point at our head), and each generation and the
 *              permanent generation is, over its first and last
 *              CG_LAYOUT_WALK members, a well-formed doubly linked circular
 *              list of tracked GC objects (the permanent generation's length
 *              equals gc.get_freeze_count() when it is that short);
 *   freelists  a list, a dict and tuples of 1 and 19 items, created and
 *              freed, come from and go back to the free-list slots the core
 *              empties after a full collection;
 *   ceval      (3.11, 3.12) see cg_check_ceval() in compat.h;
 *   frame      the thread state's top frame is the frame of the caller
 *              (PyEval_GetFrame()), with its code, globals, builtins, frame
 *              object, function and plain local variables where the
 *              interpreter reports them, and the `previous` chain matches
 *              PyFrame_GetBack() over a few callers.
 *
 * Pointers read through an offset not yet proven are only compared, never
 * followed: the scalar and identity checks come before the list walks.
 * Every value the check changes (enabled, debug, thresholds, the recursion
 * limit) is put back whether it passes or not.  The gc functions come from
 * a new instance of the built-in gc module, so that a program that replaced
 * or patched sys.modules["gc"] (as cyclegc.install() patches it) cannot
 * mislead the check.
 *
 * On a mismatch the module's exec fails with an ImportError naming the patch
 * level the core was built for, the one running, and the first check that
 * failed.  Test hook: CYCLEGC_TEST_LAYOUT_SHIFT=<group> makes the check read
 * that group one pointer off, as a changed struct would (the collector itself
 * never uses the shifted addresses: the import fails).
 */
#include "collector.h"

#include <stdlib.h>
#include <string.h>

/* Members checked from each end of each generation list: the check must stay
 * well under a millisecond on a heap of millions. */
#define CG_LAYOUT_WALK 64

static const char *const group_names[] = {
    "runtime", "gc", "lists", "freelists",
#if CG_CHECKS_CEVAL
    "ceval",
#endif
    "frame", NULL,
};

typedef struct {
    const char *shifted;    /* the group the test hook shifts, or NULL */
    PyObject *gc;           /* a fresh instance of the built-in gc module */
    CgState *st;            /* as the gc and lists groups see it */
} Check;

static void *
shift(const Check *c, const char *group, void *p)
{
    if (c->shifted != NULL && strcmp(c->shifted, group) == 0) {
        return (char *)p + sizeof(void *);
    }
    return p;
}

/* ---- helpers ----------------------------------------------------------------- */

/* gc.<name>(*args) of the fresh built-in module; NULL with an error set. */
static PyObject *
gc_call(const Check *c, const char *name, const char *format, ...)
{
    PyObject *func = PyObject_GetAttrString(c->gc, name);
    if (func == NULL) {
        return NULL;
    }
    PyObject *args;
    if (format == NULL) {
        args = PyTuple_New(0);
    }
    else {
        va_list va;
        va_start(va, format);
        args = Py_VaBuildValue(format, va);
        va_end(va);
    }
    PyObject *res = NULL;
    if (args != NULL) {
        res = PyObject_Call(func, args, NULL);
    }
    Py_XDECREF(args);
    Py_DECREF(func);
    return res;
}

/* A (int, int, int) result of the gc module into out[3]; -1 on error. */
static int
gc_triple(const Check *c, const char *name, long out[3])
{
    PyObject *t = gc_call(c, name, NULL);
    if (t == NULL) {
        return -1;
    }
    int ok = PyArg_ParseTuple(t, "lll", &out[0], &out[1], &out[2]);
    Py_DECREF(t);
    return ok ? 0 : -1;
}

static long
gc_long(const Check *c, const char *name)
{
    PyObject *v = gc_call(c, name, NULL);
    if (v == NULL) {
        return -1;
    }
    long r = PyLong_AsLong(v);
    Py_DECREF(v);
    return r;
}

static int
aligned(const void *p)
{
    return p != NULL && ((uintptr_t)p & (sizeof(void *) - 1)) == 0;
}

/* Plausibly a live GC object: a positive refcount, a GC type whose own type
 * is a type.  Only called on list members reached from proven heads. */
static int
plausible_gc_object(PyObject *op)
{
    if (Py_REFCNT(op) <= 0) {
        return 0;
    }
    PyTypeObject *tp = Py_TYPE(op);
    if (!aligned(tp) || !aligned(Py_TYPE(tp))) {
        return 0;
    }
    return PyType_HasFeature(tp, Py_TPFLAGS_HAVE_GC)
        && PyType_HasFeature(Py_TYPE(tp), Py_TPFLAGS_TYPE_SUBCLASS);
}

/* ---- groups ------------------------------------------------------------------ */

static const char *
check_runtime(const Check *c)
{
    CgInterpreters *ip = shift(c, "runtime", CG_RUNTIME_INTERPRETERS());
    if (ip->head != PyInterpreterState_Head() || ip->main != PyInterpreterState_Main()) {
        return "runtime: _PyRuntime.interpreters is not the interpreter list";
    }
    return NULL;
}

/* The gc state's scalars and the gc module's lists.  Called with the
 * interpreter's collector disabled (no automatic collection can change
 * counts or stats meanwhile); thresholds and debug are restored by the
 * caller. */
static const char *
check_gc_state(const Check *c)
{
    CgState *st = c->st;
    long t[3], probe[3], seen[3], counts[3];

    if (st->enabled != 0) {
        return "gc: enabled is not 0 after PyGC_Disable()";
    }
    PyGC_Enable();
    int on = st->enabled;
    PyGC_Disable();
    if (on != 1) {
        return "gc: enabled is not 1 after PyGC_Enable()";
    }

    long debug = gc_long(c, "get_debug");
    if (debug == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (st->debug != debug) {
        return "gc: debug differs from gc.get_debug()";
    }
    PyObject *r = gc_call(c, "set_debug", "(l)", debug ^ 0x5a00L);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    if (st->debug != (debug ^ 0x5a00L)) {
        return "gc: debug does not follow gc.set_debug()";
    }

    if (gc_triple(c, "get_threshold", t) < 0) {
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        if (st->generations[i].threshold != t[i]) {
            return "gc: thresholds differ from gc.get_threshold()";
        }
        probe[i] = t[i] < 1000000 ? t[i] + 1009 + 2 * i : t[i] - 1009 - 2 * i;
    }
    r = gc_call(c, "set_threshold", "(lll)", probe[0], probe[1], probe[2]);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    for (int i = 0; i < 3; i++) {
        seen[i] = st->generations[i].threshold;
    }
    if (seen[0] != probe[0] || seen[1] != probe[1] || seen[2] != probe[2]) {
        return "gc: thresholds do not follow gc.set_threshold()";
    }

    /* gc.get_count() reads the counts, then allocates its result tuple. */
    long before0 = st->generations[0].count;
    if (gc_triple(c, "get_count", counts) < 0) {
        return NULL;
    }
    long after0 = st->generations[0].count;
    if (counts[0] < before0 - 4 || counts[0] > after0 + 4
        || st->generations[1].count != counts[1] || st->generations[2].count != counts[2]) {
        return "gc: counts differ from gc.get_count()";
    }
    /* A tuple too big for the free lists is a fresh GC allocation (count0
     * + 1) and a GC free (count0 - 1). */
    before0 = st->generations[0].count;
    PyObject *big = PyTuple_New(25);
    if (big == NULL) {
        return NULL;
    }
    after0 = st->generations[0].count;
    Py_DECREF(big);
    long freed0 = st->generations[0].count;
    if (after0 != before0 + 1 || freed0 != before0) {
        return "gc: count0 does not follow an allocation and a free";
    }

    PyObject *stats = gc_call(c, "get_stats", NULL);
    if (stats == NULL) {
        return NULL;
    }
    const char *bad = NULL;
    if (!PyList_Check(stats) || PyList_GET_SIZE(stats) != 3) {
        bad = "gc: gc.get_stats() is not a list of 3";
    }
    for (int i = 0; bad == NULL && i < 3; i++) {
        PyObject *d = PyList_GET_ITEM(stats, i);
        static const char *keys[] = {"collections", "collected", "uncollectable"};
        Py_ssize_t ours[3] = {st->generation_stats[i].collections,
                              st->generation_stats[i].collected,
                              st->generation_stats[i].uncollectable};
        for (int k = 0; k < 3; k++) {
            PyObject *v = PyDict_Check(d) ? PyDict_GetItemString(d, keys[k]) : NULL;
            Py_ssize_t theirs = v != NULL ? PyLong_AsSsize_t(v) : -1;
            if (theirs == -1 && PyErr_Occurred()) {
                PyErr_Clear();
            }
            if (theirs != ours[k]) {
                bad = "gc: generation_stats differ from gc.get_stats()";
                break;
            }
        }
    }
    Py_DECREF(stats);
    if (bad != NULL) {
        return bad;
    }

    PyObject *garbage = PyObject_GetAttrString(c->gc, "garbage");
    PyObject *callbacks = PyObject_GetAttrString(c->gc, "callbacks");
    Py_XDECREF(garbage);    /* only compared; the module keeps them alive */
    Py_XDECREF(callbacks);
    if (garbage == NULL || callbacks == NULL) {
        return NULL;
    }
    if (st->garbage != garbage || st->callbacks != callbacks) {
        return "gc: garbage or callbacks are not the gc module's lists";
    }
    if (st->generation0 != &st->generations[0].head) {
        return "gc: generation0 does not point at the first generation";
    }
    if (st->collecting != 0 && st->collecting != 1) {
        return "gc: collecting is not a flag";
    }
    return NULL;
}

/* Walks up to CG_LAYOUT_WALK members of the list at `head` in one direction,
 * checking that each link is mirrored and each member is a GC object.
 * Sets *closed (the walk came back to the head) and *n (members seen). */
static const char *
walk_list(PyGC_Head *head, int forward, int *closed, Py_ssize_t *n)
{
    PyGC_Head *from = head;
    PyGC_Head *g = forward ? cg_next(head) : cg_prev(head);
    *n = 0;
    while (g != head && *n < CG_LAYOUT_WALK) {
        if (!aligned(g)) {
            return "lists: a link of a generation list is not a pointer";
        }
        PyGC_Head *back = forward ? cg_prev(g) : cg_next(g);
        if (back != from) {
            return "lists: a generation list's links are not mirrored";
        }
        if (g->_gc_next == 0 || !plausible_gc_object(CG_FROM_GC(g))) {
            return "lists: a generation list holds something that is not a tracked GC object";
        }
        from = g;
        g = forward ? cg_next(g) : cg_prev(g);
        (*n)++;
    }
    *closed = (g == head);
    if (*closed && (forward ? cg_prev(head) : cg_next(head)) != from) {
        return "lists: a generation list does not close on its head";
    }
    return NULL;
}

static const char *
check_lists(const Check *c)
{
    CgState *st = c->st;
    PyGC_Head *heads[CG_NUM_GENERATIONS + 1];
    for (int i = 0; i < CG_NUM_GENERATIONS; i++) {
        heads[i] = shift(c, "lists", cg_gen_head(st, i));
    }
    heads[CG_NUM_GENERATIONS] = shift(c, "lists", cg_permanent_head(st));

    /* A new container is linked last into generation 0: its links must
     * point at our head, and our head's tail at it.  Only compared. */
    PyObject *probe = PyList_New(0);
    if (probe == NULL) {
        return NULL;
    }
    PyGC_Head *pg = CG_AS_GC(probe);
    int linked = pg->_gc_next == (uintptr_t)heads[0]
                 && (PyGC_Head *)(heads[0]->_gc_prev & CG_PREV_MASK) == pg;
    Py_DECREF(probe);
    if (!linked) {
        return "lists: a new object is not linked at the end of generation 0";
    }

    for (int i = 0; i <= CG_NUM_GENERATIONS; i++) {
        int closed;
        Py_ssize_t n;
        const char *bad = walk_list(heads[i], 1, &closed, &n);
        if (bad == NULL && !closed) {
            bad = walk_list(heads[i], 0, &closed, &n);
        }
        if (bad != NULL) {
            return bad;
        }
        if (i == CG_NUM_GENERATIONS && closed) {
            long frozen = gc_long(c, "get_freeze_count");
            if (frozen == -1 && PyErr_Occurred()) {
                return NULL;
            }
            if (frozen != n) {
                return "lists: the permanent generation's length differs from gc.get_freeze_count()";
            }
        }
    }
    return NULL;
}

/* An array free list (lists, dicts): a new object comes from its last slot
 * (if any), and goes back to the last slot when freed. */
static const char *
check_array_freelist(PyObject **items, int *numfree, int max, PyObject *(*make)(void),
                     const char *what)
{
    int n0 = *numfree;
    if (n0 < 0 || n0 > max) {
        return what;
    }
    PyObject *last = n0 > 0 ? items[n0 - 1] : NULL;
    PyObject *op = make();
    if (op == NULL) {
        return NULL;
    }
    int popped = *numfree;
    Py_DECREF(op);
    int pushed = *numfree;
    if (n0 > 0 && (op != last || popped != n0 - 1)) {
        return what;
    }
    if (pushed != (n0 > 0 ? n0 : 1) || items[pushed - 1] != op) {
        return what;
    }
    return NULL;
}

/* A tuple free list: one chain per size, its head in heads[size - 1]. */
static const char *
check_tuple_freelist(PyTupleObject **heads, int *numfree, Py_ssize_t size)
{
    Py_ssize_t i = size - 1;
    int n0 = numfree[i];
    if (n0 < 0 || n0 > PyTuple_MAXFREELIST) {
        return "freelists: the tuple free list's count is out of range";
    }
    PyTupleObject *head = heads[i];
    PyObject *t = PyTuple_New(size);
    if (t == NULL) {
        return NULL;
    }
    int popped = numfree[i];
    Py_DECREF(t);
    if (n0 > 0 && ((PyTupleObject *)t != head || popped != n0 - 1)) {
        return "freelists: a new tuple does not come from the tuple free list";
    }
    if (heads[i] != (PyTupleObject *)t || numfree[i] != (n0 > 0 ? n0 : 1)) {
        return "freelists: a freed tuple does not go to the tuple free list";
    }
    return NULL;
}

static PyObject *new_list(void) { return PyList_New(0); }
static PyObject *new_dict(void) { return PyDict_New(); }

static const char *
check_freelists(const Check *c)
{
    PyInterpreterState *interp = shift(c, "freelists", PyInterpreterState_Get());
    const char *bad = check_array_freelist(CG_LIST_FREELIST(CG_FREELISTS(interp)),
                                           PyList_MAXFREELIST, new_list,
                                           "freelists: lists do not use the list free list");
    if (bad == NULL) {
        bad = check_array_freelist(CG_DICT_FREELIST(CG_FREELISTS(interp)),
                                   PyDict_MAXFREELIST, new_dict,
                                   "freelists: dicts do not use the dict free list");
    }
    if (bad == NULL) {
        bad = check_tuple_freelist(CG_TUPLE_FREELIST(CG_FREELISTS(interp)), 1);
    }
    if (bad == NULL) {
        bad = check_tuple_freelist(CG_TUPLE_FREELIST(CG_FREELISTS(interp)), PyTuple_MAXSAVESIZE - 1);
    }
    return bad;
}

static const char *
check_ceval(const Check *c)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    return cg_check_ceval(shift(c, "ceval", interp), interp);
}

/* The plain local variables of frame `f` equal what the interpreter reports
 * for its frame object; returns the number compared, -1 on a difference or
 * an error (*bad set, or an exception). */
static int
compare_locals(_PyInterpreterFrame *f, PyCodeObject *code, PyFrameObject *fo, const char **bad)
{
    if (code->co_nlocalsplus != PyTuple_GET_SIZE(code->co_localsplusnames)) {
        *bad = "frame: co_nlocalsplus differs from the number of local names";
        return -1;
    }
    PyObject *locals = PyFrame_GetLocals(fo);
    if (locals == NULL) {
        return -1;
    }
    int compared = 0;
    for (int i = 0; i < code->co_nlocalsplus; i++) {
        if (!CG_FAST_PLAIN_LOCAL(_PyLocals_GetKind(code->co_localspluskinds, i))) {
            continue;
        }
        PyObject *value = PyObject_GetItem(locals, PyTuple_GET_ITEM(code->co_localsplusnames, i));
        if (value == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                compared = -1;
                break;
            }
            PyErr_Clear();
        }
        Py_XDECREF(value);  /* only compared; the frame keeps it alive */
        if (value != f->localsplus[i]) {
            *bad = "frame: a local variable differs from the frame's locals";
            compared = -1;
            break;
        }
        compared += value != NULL;
    }
    Py_DECREF(locals);
    return compared;
}

/* One frame: ours `f` is the interpreter's frame object `fo`. */
static const char *
check_frame(_PyInterpreterFrame *f, PyFrameObject *fo, int *compared)
{
    if (fo->f_frame != f) {
        return "frame: the thread state's frames are not the calling frames";
    }
    if (f->frame_obj != fo) {
        return "frame: frame_obj is not the frame's object";
    }
    PyCodeObject *code = PyFrame_GetCode(fo);
    PyObject *globals = PyFrame_GetGlobals(fo);
    PyObject *builtins = PyFrame_GetBuiltins(fo);
    /* Only compared: the frame keeps all three alive. */
    Py_DECREF(code);
    Py_XDECREF(globals);
    Py_XDECREF(builtins);
    if (globals == NULL || builtins == NULL) {
        return NULL;
    }
    if (CG_FRAME_CODE(f) != code || f->f_globals != globals || f->f_builtins != builtins) {
        return "frame: code, globals or builtins differ from the frame object's";
    }
    PyObject *func = CG_FRAME_FUNC(f);
    if (func != NULL && func != Py_None
        && (!PyFunction_Check(func) || PyFunction_GET_CODE(func) != (PyObject *)code)) {
        return "frame: the function is not the frame's";
    }
    const char *bad = NULL;
    int n = compare_locals(f, code, fo, &bad);
    if (n > 0) {
        *compared += n;
    }
    return bad;
}

/* The top frame and a few callers: the thread state's top frame is the
 * calling frame, and `previous` leads from each to its caller, skipping the
 * frames PyFrame_GetBack() skips (entry frames, frames not yet started). */
static const char *
check_frames(const Check *c)
{
    PyThreadState *ts = PyThreadState_Get();
    _PyInterpreterFrame *f = CG_THREAD_HAS_FRAMES(ts) ? CG_TOP_FRAME(ts) : NULL;
    f = shift(c, "frame", f);
    PyFrameObject *fo = PyEval_GetFrame();
    if (fo == NULL) {
        return f == NULL ? NULL : "frame: a top frame where the interpreter has none";
    }
    Py_INCREF(fo);
    const char *bad = NULL;
    int compared = 0;
    for (int depth = 0; fo != NULL && depth < 4; depth++) {
        bad = check_frame(f, fo, &compared);
        if (bad != NULL || PyErr_Occurred()) {
            break;
        }
        PyFrameObject *back = PyFrame_GetBack(fo);
        _PyInterpreterFrame *target = back != NULL ? back->f_frame : NULL;
        _PyInterpreterFrame *p = f->previous;
        while (p != target && bad == NULL) {
            if (!aligned(p) || !_PyFrame_IsIncomplete(p)) {
                bad = "frame: `previous` does not lead to the caller's frame";
            }
            p = p->previous;
        }
        Py_DECREF(fo);
        fo = back;
        f = p;
        if (bad != NULL) {
            break;
        }
    }
    Py_XDECREF(fo);
    if (bad == NULL && !PyErr_Occurred() && compared == 0) {
        bad = "frame: no local variable of the calling frames to compare";
    }
    return bad;
}

/* ---- entry point ------------------------------------------------------------- */

static PyObject *
fresh_gc_module(void)
{
    PyObject *bootstrap = PyImport_ImportModule("_frozen_importlib");
    PyObject *imp = PyImport_ImportModule("_imp");
    PyObject *spec = NULL, *module = NULL;
    if (bootstrap != NULL && imp != NULL) {
        spec = PyObject_CallMethod(bootstrap, "ModuleSpec", "sO", "gc", Py_None);
    }
    if (spec != NULL) {
        module = PyObject_CallMethod(imp, "create_builtin", "O", spec);
    }
    if (module != NULL) {
        PyObject *r = PyObject_CallMethod(imp, "exec_builtin", "O", module);
        if (r == NULL) {
            Py_CLEAR(module);
        }
        Py_XDECREF(r);
    }
    Py_XDECREF(spec);
    Py_XDECREF(imp);
    Py_XDECREF(bootstrap);
    return module;
}

PyObject *
cg_layout_groups(void)
{
    Py_ssize_t n = 0;
    while (group_names[n] != NULL) {
        n++;
    }
    PyObject *t = PyTuple_New(n);
    for (Py_ssize_t i = 0; t != NULL && i < n; i++) {
        PyObject *s = PyUnicode_FromString(group_names[i]);
        if (s == NULL) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    return t;
}

static void
running_version(char *buf, size_t size)
{
    const char *v = Py_GetVersion();
    size_t n = strcspn(v, " ");
    snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), v);
}

static double
thread_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int
cg_layout_check(double *seconds, double *cpu_seconds)
{
    double t0 = cg_now(), cpu0 = thread_cpu_now();
    Check c = {NULL, NULL, NULL};
    c.shifted = getenv("CYCLEGC_TEST_LAYOUT_SHIFT");
    if (c.shifted != NULL && c.shifted[0] == '\0') {
        c.shifted = NULL;
    }
    if (c.shifted != NULL) {
        int known = 0;
        for (int i = 0; group_names[i] != NULL; i++) {
            known |= strcmp(group_names[i], c.shifted) == 0;
        }
        if (!known) {
            PyErr_Format(PyExc_ImportError,
                         "CYCLEGC_TEST_LAYOUT_SHIFT=%s names no group of the layout check",
                         c.shifted);
            return -1;
        }
    }
    c.gc = fresh_gc_module();
    if (c.gc == NULL) {
        return -1;
    }
    c.st = shift(&c, "gc", cg_state());

    /* Saved through the interpreter's own code, restored the same way. */
    long debug = -1, thresholds[3] = {0, 0, 0};
    int was_enabled = PyGC_Disable();
    const char *bad = NULL;
    int saved = 0;
    debug = gc_long(&c, "get_debug");
    if (!(debug == -1 && PyErr_Occurred()) && gc_triple(&c, "get_threshold", thresholds) == 0) {
        saved = 1;
        bad = check_runtime(&c);
        if (bad == NULL && !PyErr_Occurred()) {
            bad = check_gc_state(&c);
        }
        if (bad == NULL && !PyErr_Occurred()) {
            bad = check_lists(&c);
        }
        if (bad == NULL && !PyErr_Occurred()) {
            bad = check_freelists(&c);
        }
        if (bad == NULL && !PyErr_Occurred()) {
            bad = check_ceval(&c);
        }
        if (bad == NULL && !PyErr_Occurred()) {
            bad = check_frames(&c);
        }
    }

    /* Put back what the check changed, keeping any error of its own. */
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    int restored = 1;
    if (saved) {
        PyObject *r = gc_call(&c, "set_debug", "(l)", debug);
        restored &= r != NULL;
        Py_XDECREF(r);
        r = gc_call(&c, "set_threshold", "(lll)", thresholds[0], thresholds[1], thresholds[2]);
        restored &= r != NULL;
        Py_XDECREF(r);
    }
    if (was_enabled) {
        PyGC_Enable();
    }
    Py_DECREF(c.gc);
    if (!restored) {
        /* Cannot happen with the built-in gc; never hide it if it does. */
        Py_XDECREF(exc_type);
        Py_XDECREF(exc_value);
        Py_XDECREF(exc_tb);
        return -1;
    }
    PyErr_Restore(exc_type, exc_value, exc_tb);
    if (PyErr_Occurred()) {
        return -1;
    }
    if (bad != NULL) {
        char running[64];
        running_version(running, sizeof running);
        PyErr_Format(PyExc_ImportError,
                     "cyclegc's core was built for CPython %s and this is CPython %s, whose "
                     "internal structures differ from the ones it was compiled against (%s%s%s). "
                     "Nothing was changed. Install cyclegc built for this interpreter: "
                     "pip install --no-binary cyclegc cyclegc",
                     PY_VERSION, running, bad,
                     c.shifted != NULL ? "; forced by CYCLEGC_TEST_LAYOUT_SHIFT=" : "",
                     c.shifted != NULL ? c.shifted : "");
        return -1;
    }
    *seconds = cg_now() - t0;
    *cpu_seconds = thread_cpu_now() - cpu0;
    return 0;
}
