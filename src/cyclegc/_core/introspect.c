/* introspect.c -- the read-mostly gc API over the generation lists:
 * get_objects, get_referrers, get_referents, freeze/unfreeze.  None of these
 * runs Python code while it walks a list except through PyList_Append
 * (which allocates, but never collects: the caller holds `collecting`
 * where that matters, and an allocation never runs cyclegc). */
#include "collector.h"

static int
append_list(PyObject *result, PyGC_Head *list)
{
    for (PyGC_Head *g = cg_next(list); g != list; g = cg_next(g)) {
        PyObject *op = CG_FROM_GC(g);
        if (op == result) {
            continue;
        }
        if (PyList_Append(result, op) < 0) {
            return -1;
        }
    }
    return 0;
}

/* The lists holding the objects of `generation` (-1: of every generation,
 * not the permanent one).  Objects of a bounded-pause round sit on lists of
 * incremental.c and belong to the oldest generation. */
#define MAX_LISTS (CG_NUM_GENERATIONS + 32)

static int
generation_lists(CgState *st, Py_ssize_t generation, PyGC_Head **heads)
{
    int n = 0;
    for (int i = 0; i < CG_NUM_GENERATIONS; i++) {
        if (generation == -1 || generation == i) {
            heads[n++] = cg_gen_head(st, i);
        }
    }
    if (generation == -1 || generation == CG_NUM_GENERATIONS - 1) {
        n += cg_inc_lists(heads + n, MAX_LISTS - n);
    }
    return n;
}

PyObject *
cg_get_objects(CgState *st, Py_ssize_t generation)
{
    PyGC_Head *heads[MAX_LISTS];
    int nheads = generation_lists(st, generation, heads);
    PyObject *result = PyList_New(0);
    if (result == NULL) {
        return NULL;
    }
    for (int i = 0; i < nheads; i++) {
        if (append_list(result, heads[i]) < 0) {
            Py_DECREF(result);
            return NULL;
        }
    }
    return result;
}

static int
visit_is_one_of(PyObject *op, void *objs)
{
    Py_ssize_t n = PyTuple_GET_SIZE((PyObject *)objs);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyTuple_GET_ITEM((PyObject *)objs, i) == op) {
            return 1;
        }
    }
    return 0;
}

PyObject *
cg_get_referrers(CgState *st, PyObject *objs)
{
    PyObject *result = PyList_New(0);
    if (result == NULL) {
        return NULL;
    }
    PyGC_Head *heads[MAX_LISTS];
    int nheads = generation_lists(st, -1, heads);
    for (int i = 0; i < nheads; i++) {
        PyGC_Head *list = heads[i];
        for (PyGC_Head *g = cg_next(list); g != list; g = cg_next(g)) {
            PyObject *op = CG_FROM_GC(g);
            if (op == objs || op == result) {
                continue;
            }
            if (Py_TYPE(op)->tp_traverse(op, visit_is_one_of, objs)) {
                if (PyList_Append(result, op) < 0) {
                    Py_DECREF(result);
                    return NULL;
                }
            }
        }
    }
    return result;
}

/* A NULL from a buggy tp_traverse is passed on on purpose: PyList_Append
 * raises SystemError, exactly as the built-in's get_referents does. */
static int
visit_append(PyObject *op, void *result)
{
    return PyList_Append((PyObject *)result, op) < 0 ? -1 : 0;
}

PyObject *
cg_get_referents(PyObject *objs)
{
    PyObject *result = PyList_New(0);
    if (result == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(objs);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *op = PyTuple_GET_ITEM(objs, i);
        if (!cg_is_gc(op) || Py_TYPE(op)->tp_traverse == NULL) {
            continue;
        }
        if (Py_TYPE(op)->tp_traverse(op, visit_append, result)) {
            Py_DECREF(result);
            return NULL;
        }
    }
    return result;
}

/* Every generation moves to the permanent one; the allocation count of
 * generation 0 restarts (as the interpreter's freeze does). */
void
cg_freeze(CgState *st)
{
    cg_inc_abort(st);
    for (int i = 0; i < CG_NUM_GENERATIONS; i++) {
        cg_list_merge(cg_gen_head(st, i), cg_permanent_head(st));
    }
    st->generations[0].count = 0;
}

void
cg_unfreeze(CgState *st)
{
    cg_inc_abort(st);
    cg_list_merge(cg_permanent_head(st), cg_gen_head(st, CG_NUM_GENERATIONS - 1));
}

Py_ssize_t
cg_freeze_count(CgState *st)
{
    /* not counting the marker object a round walks this list with */
    return cg_list_size(cg_permanent_head(st)) - cg_inc_cursor_linked();
}

/* ---- the memory-bound floor of a collection (benchmarks/bench_scaling.py) --- */

/* Reads what a collection must read, writes nothing.  The walk follows the
 * list links and reads each object's refcount (update_refs' reads); the
 * traversal calls tp_traverse once per object with a visitor that reads
 * each referent's type and, for a GC object, its header (subtract_refs'
 * reads).  A collection does at least the walk and, for what it does not
 * mark, one traversal, so their cost per object is a floor it cannot go
 * under, and shows how that floor moves with the heap's size. */
static int
visit_read(PyObject *op, void *arg)
{
    if (cg_is_gc(op)) {
        *(uintptr_t *)arg += CG_AS_GC(op)->_gc_prev;
    }
    return 0;
}

PyObject *
cg_walk_probe(CgState *st)
{
    PyGC_Head *heads[MAX_LISTS];
    int nheads = generation_lists(st, -1, heads);
    uintptr_t sink = 0;
    Py_ssize_t n = 0;
    double t0 = cg_now();
    for (int i = 0; i < nheads; i++) {
        for (PyGC_Head *g = cg_next(heads[i]); g != heads[i]; g = cg_next(g)) {
            sink += (uintptr_t)Py_REFCNT(CG_FROM_GC(g));
            n++;
        }
    }
    double t1 = cg_now();
    for (int i = 0; i < nheads; i++) {
        for (PyGC_Head *g = cg_next(heads[i]); g != heads[i]; g = cg_next(g)) {
            PyObject *op = CG_FROM_GC(g);
            traverseproc traverse = Py_TYPE(op)->tp_traverse;
            if (traverse != NULL) {
                (void)traverse(op, visit_read, &sink);
            }
        }
    }
    double t2 = cg_now();
    return Py_BuildValue("(nddn)", n, t1 - t0, t2 - t1, (Py_ssize_t)(sink & 1));
}

/* The floor of a full collection on this heap, in two orders: one
 * tp_traverse of every tracked object (every generation, not the permanent
 * one) whose visitor reads each referent's GC header, writing nothing but
 * a scratch array.  `order` 0: objects in address order (memory order: the
 * hardware prefetcher helps, referents are read wherever they are); 1: in
 * a random order (seeded), so each object is a miss of its own too.  A
 * plain loop with no prefetching: what any collector that follows pointers
 * one at a time pays.  Returns (objects, seconds of the traversal alone). */
static int
cmp_addr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}

PyObject *
cg_traverse_probe(CgState *st, int order, unsigned long long seed)
{
    PyGC_Head *heads[MAX_LISTS];
    int nheads = generation_lists(st, -1, heads);
    Py_ssize_t n = 0, cap = 0;
    for (int i = 0; i < nheads; i++) {
        cap += cg_list_size(heads[i]);
    }
    PyObject **objs = PyMem_RawMalloc((size_t)(cap ? cap : 1) * sizeof(PyObject *));
    if (objs == NULL) {
        return PyErr_NoMemory();
    }
    for (int i = 0; i < nheads; i++) {
        for (PyGC_Head *g = cg_next(heads[i]); g != heads[i] && n < cap; g = cg_next(g)) {
            objs[n++] = CG_FROM_GC(g);
        }
    }
    if (order == 0) {
        qsort(objs, (size_t)n, sizeof(PyObject *), cmp_addr);
    }
    else {
        uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
        for (Py_ssize_t i = n - 1; i > 0; i--) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;     /* xorshift64 */
            Py_ssize_t j = (Py_ssize_t)(x % (uint64_t)(i + 1));
            PyObject *t = objs[i]; objs[i] = objs[j]; objs[j] = t;
        }
    }
    uintptr_t sink = 0;
    double t0 = cg_now();
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *op = objs[i];
        traverseproc traverse = Py_TYPE(op)->tp_traverse;
        if (traverse != NULL) {
            (void)traverse(op, visit_read, &sink);
        }
    }
    double t1 = cg_now();
    PyMem_RawFree(objs);
    return Py_BuildValue("(ndn)", n, t1 - t0, (Py_ssize_t)(sink & 1));
}
