/* _cyclegc_testtypes.c -- container types with odd tp_traverse slots, for
 * tests/test_odd_traverse.py (compiled at test time by tests/c_types/build.py).
 *
 * Every type is a GC type with a settable `ref` slot (a strong reference, so
 * cycles can be built), a tp_clear, weakref support, and a tp_dealloc that
 * untracks first.  They differ only in what tp_traverse visits:
 *
 *   NullVisitor     calls visit(NULL, arg) directly, before and after
 *                   visiting `ref` (Py_VISIT would skip a NULL); a non-zero
 *                   return from the visitor is passed on, as Py_VISIT does.
 *   ForeignVisitor  visits `ref`, then every object of `foreign`, a tuple
 *                   of objects it holds one strong reference to each (the
 *                   test chooses them: ints, strs, untracked containers,
 *                   static types, None, frozen objects).
 *   RepeatVisitor   RepeatVisitor(times): holds `ref` `times` times and
 *                   visits it `times` times (valid: counts balance).
 *
 * set_null_visits(flag) -> previous turns NullVisitor's NULL visits on and
 * off (on at import): the tests turn them off after each case, so an
 * instance kept alive by a failing test's traceback cannot crash a later
 * collection of the built-in gc.  hide(obj) / unhide() keep one object
 * alive from a C static, out of the collector's sight ("held by C code").
 * All types can be subclassed, so a Python subclass can add __del__.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

#define MAX_FOREIGN 16

typedef struct {
    PyObject_HEAD
    PyObject *ref;          /* held `times` times */
    Py_ssize_t times;
    Py_ssize_t nforeign;
    PyObject *foreign[MAX_FOREIGN];
    PyObject *weakreflist;
} TestObject;

static PyObject *
tt_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    TestObject *self = (TestObject *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->times = 1;
    }
    return (PyObject *)self;
}

static int
tt_clear(TestObject *self)
{
    PyObject *ref = self->ref;
    Py_ssize_t times = self->times, n = self->nforeign;
    PyObject *foreign[MAX_FOREIGN];
    memcpy(foreign, self->foreign, sizeof(foreign));
    self->ref = NULL;
    self->nforeign = 0;
    for (Py_ssize_t i = 0; ref != NULL && i < times; i++) {
        Py_DECREF(ref);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_DECREF(foreign[i]);
    }
    return 0;
}

static void
tt_dealloc(TestObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    (void)tt_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
tt_get_ref(TestObject *self, void *closure)
{
    return Py_NewRef(self->ref != NULL ? self->ref : Py_None);
}

static int
tt_set_ref(TestObject *self, PyObject *value, void *closure)
{
    PyObject *old = self->ref;
    for (Py_ssize_t i = 0; value != NULL && i < self->times; i++) {
        Py_INCREF(value);
    }
    self->ref = value;
    for (Py_ssize_t i = 0; old != NULL && i < self->times; i++) {
        Py_DECREF(old);
    }
    return 0;
}

static PyObject *
tt_get_foreign(TestObject *self, void *closure)
{
    PyObject *t = PyTuple_New(self->nforeign);
    for (Py_ssize_t i = 0; t != NULL && i < self->nforeign; i++) {
        PyTuple_SET_ITEM(t, i, Py_NewRef(self->foreign[i]));
    }
    return t;
}

static int
tt_set_foreign(TestObject *self, PyObject *value, void *closure)
{
    PyObject *seq = NULL;
    Py_ssize_t n = 0;
    if (value != NULL) {
        seq = PySequence_Tuple(value);
        if (seq == NULL) {
            return -1;
        }
        n = PyTuple_GET_SIZE(seq);
        if (n > MAX_FOREIGN) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError, "at most %d foreign objects", MAX_FOREIGN);
            return -1;
        }
    }
    PyObject *old[MAX_FOREIGN];
    Py_ssize_t nold = self->nforeign;
    memcpy(old, self->foreign, sizeof(old));
    for (Py_ssize_t i = 0; i < n; i++) {
        self->foreign[i] = Py_NewRef(PyTuple_GET_ITEM(seq, i));
    }
    self->nforeign = n;
    Py_XDECREF(seq);
    for (Py_ssize_t i = 0; i < nold; i++) {
        Py_DECREF(old[i]);
    }
    return 0;
}

static PyObject *
tt_get_times(TestObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->times);
}

static PyGetSetDef tt_getset[] = {
    {"ref", (getter)tt_get_ref, (setter)tt_set_ref, "the referenced object", NULL},
    {"times", (getter)tt_get_times, NULL, "how many times `ref` is held and visited", NULL},
    {NULL},
};

static PyGetSetDef foreign_getset[] = {
    {"ref", (getter)tt_get_ref, (setter)tt_set_ref, "the referenced object", NULL},
    {"foreign", (getter)tt_get_foreign, (setter)tt_set_foreign,
     "objects held (one reference each) and visited after `ref`", NULL},
    {NULL},
};

static int null_visits = 1;

/* Calls visit(NULL, arg) itself: Py_VISIT never passes NULL. */
#define VISIT_NULL()                                \
    do {                                            \
        int r_ = null_visits ? visit(NULL, arg) : 0; \
        if (r_) {                                   \
            return r_;                              \
        }                                           \
    } while (0)

static int
null_traverse(TestObject *self, visitproc visit, void *arg)
{
    VISIT_NULL();
    Py_VISIT(self->ref);
    VISIT_NULL();
    return 0;
}

static int
foreign_traverse(TestObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->ref);
    for (Py_ssize_t i = 0; i < self->nforeign; i++) {
        Py_VISIT(self->foreign[i]);
    }
    return 0;
}

static int
repeat_traverse(TestObject *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < self->times; i++) {
        Py_VISIT(self->ref);
    }
    return 0;
}

static int
repeat_init(TestObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"times", NULL};
    Py_ssize_t times = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n", kwlist, &times)) {
        return -1;
    }
    if (times < 1 || times > 1000) {
        PyErr_SetString(PyExc_ValueError, "times must be in 1..1000");
        return -1;
    }
    if (self->ref != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "times cannot change while ref is set");
        return -1;
    }
    self->times = times;
    return 0;
}

#define TEST_TYPE(NAME, TRAVERSE, GETSET, INIT, DOC)                     \
    static PyTypeObject NAME##_Type = {                                  \
        PyVarObject_HEAD_INIT(NULL, 0)                                   \
        .tp_name = "_cyclegc_testtypes." #NAME,                          \
        .tp_basicsize = sizeof(TestObject),                              \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC              \
                    | Py_TPFLAGS_BASETYPE,                               \
        .tp_doc = DOC,                                                   \
        .tp_new = tt_new,                                                \
        .tp_init = (initproc)INIT,                                       \
        .tp_dealloc = (destructor)tt_dealloc,                            \
        .tp_traverse = (traverseproc)TRAVERSE,                           \
        .tp_clear = (inquiry)tt_clear,                                   \
        .tp_getset = GETSET,                                             \
        .tp_weaklistoffset = offsetof(TestObject, weakreflist),          \
    };

TEST_TYPE(NullVisitor, null_traverse, tt_getset, NULL,
          "tp_traverse calls visit(NULL) before and after visiting ref")
TEST_TYPE(ForeignVisitor, foreign_traverse, foreign_getset, NULL,
          "tp_traverse visits ref, then each object of foreign")
TEST_TYPE(RepeatVisitor, repeat_traverse, tt_getset, repeat_init,
          "RepeatVisitor(times): holds and visits ref `times` times")

static PyObject *hidden = NULL;

static PyObject *
hide(PyObject *module, PyObject *obj)
{
    Py_XSETREF(hidden, Py_NewRef(obj));
    Py_RETURN_NONE;
}

static PyObject *
unhide(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    PyObject *obj = hidden;
    hidden = NULL;
    return obj != NULL ? obj : Py_NewRef(Py_None);
}

static PyObject *
set_null_visits(PyObject *module, PyObject *flag)
{
    int on = PyObject_IsTrue(flag);
    if (on < 0) {
        return NULL;
    }
    int previous = null_visits;
    null_visits = on;
    return PyBool_FromLong(previous);
}

static PyMethodDef methods[] = {
    {"set_null_visits", set_null_visits, METH_O,
     "set_null_visits(flag) -> previous: whether NullVisitor visits NULL"},
    {"hide", hide, METH_O, "hide(obj): keep obj alive from a C static, unseen by the collector"},
    {"unhide", unhide, METH_NOARGS, "unhide(): give back (and release) the hidden object"},
    {NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_cyclegc_testtypes",
    "GC types with odd tp_traverse slots, for cyclegc's tests.", -1, methods,
};

PyMODINIT_FUNC
PyInit__cyclegc_testtypes(void)
{
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddType(m, &NullVisitor_Type) < 0
        || PyModule_AddType(m, &ForeignVisitor_Type) < 0
        || PyModule_AddType(m, &RepeatVisitor_Type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
