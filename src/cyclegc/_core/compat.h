/* compat.h -- the one place where CPython 3.11, 3.12 and 3.13 differ.
 *
 * The collector reaches the interpreter's own collector state
 * (PyInterpreterState.gc, struct _gc_runtime_state) through CPython's internal
 * headers.  Its layout is identical in 3.11, 3.12 and 3.13 GIL builds; what
 * differs is a handful of helpers, each wrapped here in a cg_* function with
 * one meaning on every version.  No other file of the core tests
 * PY_VERSION_HEX.
 */
#ifndef CYCLEGC_COMPAT_H
#define CYCLEGC_COMPAT_H

#ifndef Py_BUILD_CORE_MODULE
#  define Py_BUILD_CORE_MODULE 1   /* internal headers; implies Py_BUILD_CORE */
#endif

#include <Python.h>
#include <time.h>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030E0000
#  error "cyclegc's core supports CPython 3.11, 3.12 and 3.13 only"
#endif
#ifdef Py_GIL_DISABLED
#  error "cyclegc's core does not support free-threaded CPython builds"
#endif

#include "internal/pycore_interp.h"   /* struct _is: the ->gc member */
#include "internal/pycore_gc.h"       /* PyGC_Head, struct _gc_runtime_state */

typedef struct _gc_runtime_state CgState;

#define CG_NUM_GENERATIONS NUM_GENERATIONS

/* The interpreter's collector state (one per interpreter). */
static inline CgState *
cg_state(void)
{
    return &PyInterpreterState_Get()->gc;
}

/* The GC header sits immediately before the object in every version. */
#define CG_AS_GC(op)   ((PyGC_Head *)(op) - 1)
#define CG_FROM_GC(g)  ((PyObject *)((PyGC_Head *)(g) + 1))

/* Bits of _gc_prev (shared with CPython: FINALIZED must survive us). */
#define CG_PREV_FINALIZED   ((uintptr_t)_PyGC_PREV_MASK_FINALIZED)
#define CG_PREV_COLLECTING  ((uintptr_t)_PyGC_PREV_MASK_COLLECTING)
#define CG_PREV_SHIFT       _PyGC_PREV_SHIFT
#define CG_PREV_MASK        _PyGC_PREV_MASK

/* Does this object take part in cycle collection?  (Same test as
 * PyObject_IS_GC, inlined: a GC type, and tp_is_gc agrees if present.)
 * NULL is no object: every visitor asks this first, so a buggy tp_traverse
 * that visits NULL cannot crash a collection (the built-in's does). */
static inline int
cg_is_gc(PyObject *op)
{
    if (op == NULL) {
        return 0;
    }
    PyTypeObject *tp = Py_TYPE(op);
    return (tp->tp_flags & Py_TPFLAGS_HAVE_GC) != 0
        && (tp->tp_is_gc == NULL || tp->tp_is_gc(op));
}

/* Immortal objects (3.12+) have refcounts that do not count references, so
 * trial deletion would be wrong on them.  What the interpreter itself does
 * with a tracked immortal found during a collection:
 *   3.11: there are none.
 *   3.12: moves it to the permanent generation.
 *   3.13: untracks it.
 * CG_IMMORTAL_ACTION names that choice; update_refs() applies it. */
enum cg_immortal_action { CG_IMMORTAL_NONE, CG_IMMORTAL_FREEZE, CG_IMMORTAL_UNTRACK };
#if PY_VERSION_HEX >= 0x030D0000
#  define CG_IS_IMMORTAL(op) _Py_IsImmortal(op)
#  define CG_IMMORTAL_ACTION CG_IMMORTAL_UNTRACK
#elif PY_VERSION_HEX >= 0x030C0000
#  define CG_IS_IMMORTAL(op) _Py_IsImmortal(op)
#  define CG_IMMORTAL_ACTION CG_IMMORTAL_FREEZE
#else
#  define CG_IS_IMMORTAL(op) 0
#  define CG_IMMORTAL_ACTION CG_IMMORTAL_NONE
#endif

/* Making an object immortal (immortal.c, 3.12+, PEP 683): a reference
 * count of _Py_IMMORTAL_REFCNT makes Py_INCREF and Py_DECREF leave the
 * object alone (they test the low 32 bits), so it is never written by them
 * and never freed.  3.11 has no immortal objects.  A debug build asserts
 * that an immortal str is interned, so there strings stay mortal.  Code
 * objects are not GC objects in either version: their constants and names,
 * which every execution of the code reads, are reached through these
 * fields (the same in 3.12 and 3.13). */
#if PY_VERSION_HEX >= 0x030C0000
#  define CG_CAN_IMMORTALIZE 1
#  define CG_SET_IMMORTAL(op) ((op)->ob_refcnt = _Py_IMMORTAL_REFCNT)
#  ifdef Py_DEBUG
#    define CG_IMMORTAL_STR_OK 0
#  else
#    define CG_IMMORTAL_STR_OK 1
#  endif
static inline void
cg_visit_code_members(PyObject *op, visitproc visit, void *arg)
{
    PyCodeObject *co = (PyCodeObject *)op;
    PyObject *members[] = {co->co_consts, co->co_names, co->co_localsplusnames,
                           co->co_localspluskinds, co->co_filename, co->co_name,
                           co->co_qualname, co->co_linetable, co->co_exceptiontable};
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        if (members[i] != NULL) {
            visit(members[i], arg);
        }
    }
}
#else
#  define CG_CAN_IMMORTALIZE 0
#  define CG_SET_IMMORTAL(op) ((void)(op))
#  define CG_IMMORTAL_STR_OK 0
static inline void
cg_visit_code_members(PyObject *op, visitproc visit, void *arg)
{
    (void)op; (void)visit; (void)arg;
}
#endif

/* Weakref list of an object whose type supports weakrefs.  Offset form only:
 * 3.12+ _PyObject_GET_WEAKREFS_LISTPTR() pulls in a non-exported symbol, and
 * static builtin types (the case it handles) are never garbage. */
static inline PyWeakReference **
cg_weakrefs_listptr(PyObject *op)
{
    return (PyWeakReference **)((char *)op + Py_TYPE(op)->tp_weaklistoffset);
}

/* Roots for marking what is alive before trial deletion (collector.c):
 * the modules (sys.modules reaches every module dict, class and function
 * defined at module level) and the local variables of every frame that is
 * executing on some thread.  Everything they reference is alive, so marking
 * from them never keeps garbage; missing a root only leaves more work to
 * trial deletion.  Only the frame layout differs between versions:
 *   3.11: tstate->cframe->current_frame, code in f_code, no C-stack frames.
 *   3.12: same chain, plus FRAME_OWNED_BY_CSTACK entry frames to skip.
 *   3.13: tstate->current_frame, code in f_executable (may be None). */
#include "internal/pycore_frame.h"

#if PY_VERSION_HEX >= 0x030D0000
#  define CG_THREAD_HAS_FRAMES(ts) 1
#  define CG_TOP_FRAME(ts)      ((ts)->current_frame)
#  define CG_FRAME_CODE(f)      (PyCode_Check((f)->f_executable) ? (PyCodeObject *)(f)->f_executable : NULL)
#  define CG_FRAME_ON_CSTACK(f) ((f)->owner == FRAME_OWNED_BY_CSTACK)
#  define CG_FRAME_FUNC(f)      ((f)->f_funcobj)
#elif PY_VERSION_HEX >= 0x030C0000
#  define CG_THREAD_HAS_FRAMES(ts) ((ts)->cframe != NULL)
#  define CG_TOP_FRAME(ts)      ((ts)->cframe->current_frame)
#  define CG_FRAME_CODE(f)      ((f)->f_code)
#  define CG_FRAME_ON_CSTACK(f) ((f)->owner == FRAME_OWNED_BY_CSTACK)
#  define CG_FRAME_FUNC(f)      ((f)->f_funcobj)
#else
#  define CG_THREAD_HAS_FRAMES(ts) ((ts)->cframe != NULL)
#  define CG_TOP_FRAME(ts)      ((ts)->cframe->current_frame)
#  define CG_FRAME_CODE(f)      ((f)->f_code)
#  define CG_FRAME_ON_CSTACK(f) 0
#  define CG_FRAME_FUNC(f)      ((PyObject *)(f)->f_func)
#endif

/* The value stack (stackroots.c).  Every version keeps `stacktop` (values
 * are localsplus[co_nlocalsplus .. stacktop)) while a frame is suspended,
 * and -1 while it executes (the evaluation loop holds the stack pointer);
 * the instruction a frame is at is prev_instr (3.11, 3.12: set as each
 * instruction starts) or instr_ptr (3.13: same); the index is in code units
 * of the adaptive bytecode.  Code-object extras: the 3.11 names are inline
 * wrappers of the PyUnstable_ ones on 3.12+. */
#define CG_FRAME_STACKTOP(f)    ((f)->stacktop)
#if PY_VERSION_HEX >= 0x030D0000
#  define CG_FRAME_INSTR_INDEX(f, code) ((Py_ssize_t)((f)->instr_ptr - _PyCode_CODE(code)))
#else
#  define CG_FRAME_INSTR_INDEX(f, code) ((Py_ssize_t)((f)->prev_instr - _PyCode_CODE(code)))
#endif

/* Whether a frame leaving by return or exception is unlinked from its
 * thread's frames before its slots are cleared (GH-99729, 3.11.1): only
 * then may stackroots.c read executing frames other than the collecting
 * thread's top one.  A runtime test: a wheel built against later headers
 * can run on 3.11.0. */
#define CG_DYING_FRAMES_UNLINKED() (Py_Version >= 0x030B01F0)
#define CG_CODE_UNITS(code)     ((const uint8_t *)_PyCode_CODE(code))

/* The interpreter's thread list may change without the GIL (a thread state
 * can be created or deleted by a thread that does not hold it), so it is
 * walked under the runtime's own lock, as CPython walks it.  The holder of
 * that lock never waits for the GIL, so waiting for it with the GIL held
 * cannot deadlock; and the GIL must not be released meanwhile (headers hold
 * collector bits).  3.13's PyMutex would release it while waiting, so there
 * we take the lock the way its own fast path does, spinning. */
#if PY_VERSION_HEX >= 0x030D0000
#  include <sched.h>
#  include "internal/pycore_runtime.h"
static inline void
cg_threads_lock(void)
{
    uint8_t *bits = &_PyRuntime.interpreters.mutex._bits;
    for (;;) {
        uint8_t v = _Py_atomic_load_uint8_relaxed(bits);
        if ((v & _Py_LOCKED) == 0
            && _Py_atomic_compare_exchange_uint8(bits, &v, (uint8_t)(v | _Py_LOCKED))) {
            return;
        }
        sched_yield();
    }
}
#  define CG_THREADS_LOCK()   cg_threads_lock()
#  define CG_THREADS_UNLOCK() PyMutex_Unlock(&_PyRuntime.interpreters.mutex)
#else
#  include "internal/pycore_runtime.h"
#  define CG_THREADS_LOCK()   PyThread_acquire_lock(_PyRuntime.interpreters.mutex, WAIT_LOCK)
#  define CG_THREADS_UNLOCK() PyThread_release_lock(_PyRuntime.interpreters.mutex)
#endif

/* Calls visit(obj, arg) for each root object (never NULL).  `visit` must
 * not run Python code, allocate Python objects or take the GIL. */
static inline void
cg_visit_roots(visitproc visit, void *arg)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    PyObject *modules = PyImport_GetModuleDict();
    if (modules != NULL) {
        visit(modules, arg);
    }
    CG_THREADS_LOCK();
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts != NULL;
         ts = PyThreadState_Next(ts)) {
        if (!CG_THREAD_HAS_FRAMES(ts)) {
            continue;
        }
        for (_PyInterpreterFrame *f = CG_TOP_FRAME(ts); f != NULL; f = f->previous) {
            PyCodeObject *code;
            if (CG_FRAME_ON_CSTACK(f) || (code = CG_FRAME_CODE(f)) == NULL) {
                continue;
            }
            if (CG_FRAME_FUNC(f) != NULL) {
                visit(CG_FRAME_FUNC(f), arg);
            }
            if (f->f_locals != NULL) {
                visit(f->f_locals, arg);
            }
            for (int i = 0; i < code->co_nlocalsplus; i++) {
                if (f->localsplus[i] != NULL) {
                    visit(f->localsplus[i], arg);
                }
            }
        }
    }
    CG_THREADS_UNLOCK();
}

/* Report the pending exception to sys.unraisablehook as "Exception ignored
 * <what>" about `obj` (may be NULL).  3.13 no longer exports
 * _PyErr_WriteUnraisableMsg and formats the object into the message. */
static inline void
cg_write_unraisable_msg(const char *what, PyObject *obj)
{
#if PY_VERSION_HEX >= 0x030D0000
    if (obj != NULL) {
        PyErr_FormatUnraisable("Exception ignored %s %s", what,
                               PyType_Check(obj)
                                   ? ((PyTypeObject *)obj)->tp_name
                                   : Py_TYPE(obj)->tp_name);
    }
    else {
        PyErr_FormatUnraisable("Exception ignored %s", what);
    }
#else
    _PyErr_WriteUnraisableMsg(what, obj);
#endif
}

/* Monotonic seconds, for durations. */
static inline double
cg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Is the interpreter finalizing (shutdown collection)? */
static inline int
cg_is_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* Free lists.  A full collection of the built-in empties the interpreter's
 * free lists, so memory held there goes back to the allocator and the next
 * container is a fresh allocation (test_gc checks that through get_count).
 * The interpreter's clearers are not exported, so the core empties the
 * lists of the GC'd types itself: lists and dicts (arrays of objects) and
 * tuples (one chain per size, linked through ob_item[0]).  Where each lives: */
#if PY_VERSION_HEX >= 0x030D0000
#  include "internal/pycore_freelist.h"
#  define CG_FREELISTS(interp)        (&(interp)->object_state.freelists)
#  define CG_LIST_FREELIST(fl)        ((PyObject **)(fl)->lists.items), &(fl)->lists.numfree
#  define CG_DICT_FREELIST(fl)        ((PyObject **)(fl)->dicts.items), &(fl)->dicts.numfree
#  define CG_TUPLE_FREELIST(fl)       ((fl)->tuples.items), ((fl)->tuples.numfree)
#else
#  define CG_FREELISTS(interp)        (interp)
#  define CG_LIST_FREELIST(fl)        ((PyObject **)(fl)->list.free_list), &(fl)->list.numfree
#  define CG_DICT_FREELIST(fl)        ((PyObject **)(fl)->dict_state.free_list), &(fl)->dict_state.numfree
#  define CG_TUPLE_FREELIST(fl)       ((fl)->tuple.free_list), ((fl)->tuple.numfree)
#endif

static inline void
cg_drain_object_array(PyObject **items, int *numfree)
{
    while (*numfree > 0) {
        *numfree -= 1;
        PyObject_GC_Del(items[*numfree]);
    }
}

static inline void
cg_drain_tuple_chains(PyTupleObject **heads, int *numfree)
{
    for (int size = 0; size < PyTuple_NFREELISTS; size++) {
        PyTupleObject *t = heads[size];
        heads[size] = NULL;
        numfree[size] = 0;
        while (t != NULL) {
            PyTupleObject *next = (PyTupleObject *)t->ob_item[0];
            PyObject_GC_Del(t);
            t = next;
        }
    }
}

static inline void
cg_clear_freelists(void)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    cg_drain_object_array(CG_LIST_FREELIST(CG_FREELISTS(interp)));
    cg_drain_object_array(CG_DICT_FREELIST(CG_FREELISTS(interp)));
    cg_drain_tuple_chains(CG_TUPLE_FREELIST(CG_FREELISTS(interp)));
}

/* ---- the layout check (layout.c) -----------------------------------------
 *
 * The core is compiled against one patch level's internal headers and may be
 * loaded by another (a wheel built on 3.12.1 runs on 3.12.12 and on
 * distribution builds).  Before anything touches the collector's lists,
 * layout.c proves every structure the core reaches by compile-time offsets
 * against the interpreter's own code.  What differs between versions for
 * that is here; the free lists, frames and thread lock above are checked
 * through the same macros the core uses. */
#include "internal/pycore_code.h"     /* CO_FAST_*: kinds of a frame's locals */
#ifndef CO_FAST_HIDDEN
#  define CO_FAST_HIDDEN 0            /* 3.11 has no hidden (inlined comprehension) locals */
#endif
/* How many co_extra slots a code object's extra array covers (0 without
 * one).  The array's type is private to Objects/codeobject.c; its layout,
 * a Py_ssize_t ce_size followed by the slots, is the same in 3.11-3.13.
 * The slot count registered so far is the interpreter's
 * co_extra_user_count (struct _is). */
typedef struct {
    Py_ssize_t ce_size;
    void *ce_extras[1];
} CgCodeExtra;
#define CG_CODE_EXTRA_SIZE(co) \
    ((co)->co_extra == NULL ? 0 : ((CgCodeExtra *)(co)->co_extra)->ce_size)
#define CG_CODE_EXTRA_USERS() (_PyInterpreterState_GET()->co_extra_user_count)

/* A plain local variable (not a cell, free or hidden one): its localsplus
 * slot holds what PyFrame_GetLocals() reports under its name. */
#define CG_FAST_PLAIN_LOCAL(kind) \
    (((kind) & (CO_FAST_LOCAL | CO_FAST_CELL | CO_FAST_FREE | CO_FAST_HIDDEN)) == CO_FAST_LOCAL)

/* The runtime's interpreter list: its lock guards the thread walk of
 * cg_visit_roots (a PyThread_type_lock on 3.11/3.12, a PyMutex on 3.13). */
typedef struct pyinterpreters CgInterpreters;
#define CG_RUNTIME_INTERPRETERS() (&_PyRuntime.interpreters)

/* interp->ceval fields the core writes: eval_breaker and gil_drop_request
 * on 3.11 (cg_request_gil_drop), gc_scheduled on 3.12
 * (cg_cancel_builtin_gc_request); none on 3.13.  Their neighbour
 * recursion_limit is the field Py_GetRecursionLimit() reads and
 * Py_SetRecursionLimit() writes, so a round trip through them anchors the
 * struct; the flags must hold 0 or 1.  `ceval_of` may be shifted by the test
 * hook, `interp` is the real one.  Returns NULL, or what differs. */
#define CG_CHECKS_CEVAL (PY_VERSION_HEX < 0x030D0000)

static inline const char *
cg_check_ceval(PyInterpreterState *ceval_of, PyInterpreterState *interp)
{
#if CG_CHECKS_CEVAL
    struct _ceval_state *ce = &ceval_of->ceval;
    int limit = Py_GetRecursionLimit();
    if (ce->recursion_limit != limit) {
        return "ceval: recursion_limit differs from Py_GetRecursionLimit()";
    }
    int probe = limit < 1000000 ? limit + 977 : limit - 977;
    Py_SetRecursionLimit(probe);
    int seen = ce->recursion_limit;
    Py_SetRecursionLimit(limit);
    if (seen != probe) {
        return "ceval: recursion_limit does not follow Py_SetRecursionLimit()";
    }
    int breaker = _Py_atomic_load_relaxed(&ce->eval_breaker);
    int drop = _Py_atomic_load_relaxed(&ce->gil_drop_request);
    if ((breaker != 0 && breaker != 1) || (drop != 0 && drop != 1)) {
        return "ceval: eval_breaker or gil_drop_request is not a flag";
    }
#  if PY_VERSION_HEX >= 0x030C0000
    /* 3.12: recursion_limit, gil, own_gil, gc_scheduled, pending. */
    if (ce->own_gil != 0 && ce->own_gil != 1) {
        return "ceval: own_gil is not a flag";
    }
    PyInterpreterState *owner = ce->own_gil ? interp : PyInterpreterState_Main();
    if (ce->gil != &owner->_gil) {
        return "ceval: gil is not the interpreter's GIL";
    }
    int scheduled = _Py_atomic_load_relaxed(&ce->gc_scheduled);
    if (scheduled != 0 && scheduled != 1) {
        return "ceval: gc_scheduled is not a flag";
    }
#  else
    (void)interp;
#  endif
    if (ce->pending.lock == NULL) {
        return "ceval: the pending calls have no lock";
    }
#else
    (void)ceval_of;
    (void)interp;
#endif
    return NULL;
}

/* ---- automatic collections (trigger.c) ----------------------------------
 *
 * cyclegc runs automatic collections from a pending call: the interpreter
 * runs it at the next eval-breaker check, never inside an allocation.
 *   3.12+: a pending call queued with no flags may run in ANY thread of the
 *          interpreter (the one holding the GIL next sees the bit).
 *   3.11:  pending calls only ever run in the main thread, so an allocation
 *          in another thread hands the collection to cyclegc's helper
 *          thread instead: it asks the running thread to drop the GIL at its
 *          next eval-breaker check (as a thread waiting for the GIL would)
 *          and the helper collects while holding it. */
#include "internal/pycore_ceval.h"    /* _PyEval_AddPendingCall */
#include "internal/pycore_pystate.h"  /* _Py_IsMainThread */

#if PY_VERSION_HEX >= 0x030C0000
#  define CG_PENDING_ANY_THREAD 1
#  define cg_add_pending_call(interp, func) _PyEval_AddPendingCall((interp), (func), NULL, 0)
#else
#  define CG_PENDING_ANY_THREAD 0
#  define cg_add_pending_call(interp, func) _PyEval_AddPendingCall((interp), (func), NULL)
#endif

static inline int
cg_is_main_thread(void)
{
    return _Py_IsMainThread();
}

/* Lending the handling of pending calls (bounded mode, trigger.c "Other
 * threads wait for a stop").  While a thread runs pending calls the
 * interpreter lets no other thread run any (3.12: `busy`; 3.13: the
 * handling thread), so a stop run from our pending call would keep
 * another thread's pending call, the one that makes it wait for that
 * stop, from running until the stop ends.  The collecting thread lends the
 * handling for the stop's duration: another thread may then run pending
 * calls at its own eval-breaker checks, as it could before the stop began.
 * Each call is still taken from the queue once, under the queue's lock;
 * the interpreter keeps only one thread at a time in them to avoid
 * reentrancy, and ours are reentrant (a nested one finds the flag held and
 * returns).  Everything here runs with the GIL.  3.11 runs pending calls
 * in the main thread only, and other threads wait in their own trace
 * hook: nothing to lend.  Returns whether it lent. */
static inline int
cg_pending_lend(PyInterpreterState *interp)
{
#if PY_VERSION_HEX >= 0x030D0000
    struct _pending_calls *p = &interp->ceval.pending;
    if (p->handling_thread == _PyThreadState_GET()) {
        p->handling_thread = NULL;
        return 1;
    }
#elif PY_VERSION_HEX >= 0x030C0000
    struct _pending_calls *p = &interp->ceval.pending;
    if (p->busy) {
        PyThread_acquire_lock(p->lock, WAIT_LOCK);
        p->busy = 0;
        PyThread_release_lock(p->lock);
        return 1;
    }
#else
    (void)interp;
#endif
    return 0;
}

/* Takes the handling back, unless another thread holds it now (it gives it
 * up when its calls return, as the interpreter's own code does). */
static inline void
cg_pending_unlend(PyInterpreterState *interp, int lent)
{
    if (!lent) {
        return;
    }
#if PY_VERSION_HEX >= 0x030D0000
    struct _pending_calls *p = &interp->ceval.pending;
    if (p->handling_thread == NULL) {
        p->handling_thread = _PyThreadState_GET();
    }
#elif PY_VERSION_HEX >= 0x030C0000
    struct _pending_calls *p = &interp->ceval.pending;
    PyThread_acquire_lock(p->lock, WAIT_LOCK);
    p->busy = 1;
    PyThread_release_lock(p->lock);
#else
    (void)interp;
#endif
}

/* Ask the thread holding the GIL to drop it at its next eval-breaker check
 * (3.11's SET_GIL_DROP_REQUEST).  Only used where !CG_PENDING_ANY_THREAD. */
static inline void
cg_request_gil_drop(PyInterpreterState *interp)
{
#if PY_VERSION_HEX < 0x030C0000
    _Py_atomic_store_relaxed(&interp->ceval.gil_drop_request, 1);
    _Py_atomic_store_relaxed(&interp->ceval.eval_breaker, 1);
#else
    (void)interp;
#endif
}

/* 3.11, a thread other than the main one: its collection runs in that
 * thread at its next line, call or return event, through a C trace function
 * of ours set on its thread state (the same fields sys.settrace sets, without
 * the audit event, which would run Python code inside an allocation).  The
 * event is a safe point: the eval loop calls it between bytecodes, tracing
 * paused, no exception set.  Only where the thread has no trace function of
 * its own (a debugger, coverage): there the helper thread collects instead.
 * 3.12+ need none of it (pending calls run in any thread). */
#if !CG_PENDING_ANY_THREAD
static inline int
cg_line_hook_is(PyThreadState *ts, Py_tracefunc hook)
{
    return ts->c_tracefunc == hook;
}

static inline int
cg_line_hook_arm(PyThreadState *ts, Py_tracefunc hook)
{
    if (ts->c_tracefunc != NULL) {
        return 0;
    }
    ts->c_tracefunc = hook;
    ts->c_traceobj = NULL;
    _PyThreadState_UpdateTracingState(ts);
    return 1;
}

/* From inside the hook: the eval loop recomputes use_tracing when it
 * returns (tracing resumes only if a profiler is set). */
static inline void
cg_line_hook_disarm(PyThreadState *ts)
{
    ts->c_tracefunc = NULL;
    _PyThreadState_UpdateTracingState(ts);
}
#else
#  define cg_line_hook_is(ts, hook) ((void)(ts), (void)(hook), 0)
#  define cg_line_hook_arm(ts, hook) ((void)(ts), (void)(hook), 0)
#  define cg_line_hook_disarm(ts) ((void)(ts))
#endif

/* Where the built-in runs an automatic collection (trigger.c follows it):
 *   3.11:  synchronously inside the allocation of the GC object that makes
 *          generation 0's count exceed threshold0 (_PyObject_GC_Link);
 *   3.12+: that allocation only schedules it; it runs at the allocating
 *          thread's next eval-breaker check (and from PyErr_CheckSignals). */
#if PY_VERSION_HEX < 0x030C0000
#  define CG_COLLECTS_IN_ALLOCATION 1
#else
#  define CG_COLLECTS_IN_ALLOCATION 0
#endif

/* The interpreter's exported entry points that allocate a GC object through
 * its own gc_alloc (trigger.c calls each once at install to learn the
 * return address its malloc call has).  Returns the object allocated, or
 * NULL; the caller frees it with PyObject_GC_Del. */
static inline PyObject *
cg_gc_alloc_entry(int which, PyTypeObject *tp, PyTypeObject *vartp)
{
    switch (which) {
    case 0: return (PyObject *)_PyObject_GC_New(tp);
    case 1: return (PyObject *)_PyObject_GC_NewVar(vartp, 1);
#if PY_VERSION_HEX >= 0x030D0000
    case 2: return PyUnstable_Object_GC_NewWithExtraData(tp, 2 * sizeof(void *));
#endif
    default: return NULL;
    }
}
#define CG_GC_ALLOC_ENTRIES 3

/* Make the calling function save every callee-saved register in its own
 * frame (trigger.c reads a caller's register, spilled there, at one
 * calibrated allocation site).  Where unknown, nothing is spilled and the
 * calibration finds no slot, which only costs exactness, never safety. */
#if defined(__GNUC__) && defined(__x86_64__)
#  define CG_SPILL_CALLEE_SAVED() __asm__ volatile("" ::: "rbx", "r12", "r13", "r14", "r15", "memory")
#elif defined(__GNUC__) && defined(__aarch64__)
#  define CG_SPILL_CALLEE_SAVED() __asm__ volatile("" ::: "x19", "x20", "x21", "x22", "x23", \
                                                   "x24", "x25", "x26", "x27", "x28", "memory")
#else
#  define CG_SPILL_CALLEE_SAVED() ((void)0)
#endif

/* Forget a built-in automatic collection already requested before install():
 * 3.12 runs a scheduled one without re-checking `enabled` (3.13 re-checks;
 * 3.11 collects synchronously, so nothing is ever left scheduled). */
static inline void
cg_cancel_builtin_gc_request(PyInterpreterState *interp)
{
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
    _Py_atomic_store_relaxed(&interp->ceval.gc_scheduled, 0);
#else
    (void)interp;
#endif
}

/* The calling thread's state, NULL if it has none. */
#define cg_tstate_unchecked() _PyThreadState_UncheckedGet()

/* How the built-in gc module of each version words its argument errors and
 * signatures, where CPython's own argument parsing does not already match. */
#if PY_VERSION_HEX >= 0x030D0000
#  define CG_SET_THRESHOLD_CUSTOM_ARITY_ERROR 1
#  define CG_VARARGS_NAME(name) "gc." name
#  define CG_REFERRERS_SIGNATURE "get_referrers($module, /, *objs)\n--\n\n"
#  define CG_REFERENTS_SIGNATURE "get_referents($module, /, *objs)\n--\n\n"
#else
#  define CG_SET_THRESHOLD_CUSTOM_ARITY_ERROR 0
#  define CG_VARARGS_NAME(name) name
#  define CG_REFERRERS_SIGNATURE "get_referrers(*objs)\n"
#  define CG_REFERENTS_SIGNATURE "get_referents(*objs)\n"
#endif

/* Where the attributes of an instance with a managed __dict__ live, for
 * marking to prefetch them before the instance is traversed (collector.c):
 *   3.11: a values array or a dict, from the pre-header (obj-4, obj-3 words);
 *   3.12: one tagged pre-header word: a values array (bit 0 set) or a dict;
 *   3.13: values inline right after the object header when the type has
 *         Py_TPFLAGS_INLINE_VALUES, else a dict at obj-3 words.
 * NULL if the type has no managed dict or the object has neither yet.
 * Only reads the object's own header lines. */
#include "internal/pycore_object.h"

static inline const void *
cg_managed_dict_storage(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    if (!(tp->tp_flags & Py_TPFLAGS_MANAGED_DICT)) {
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030D0000
    PyDictObject *dict = _PyObject_ManagedDictPointer(op)->dict;
    if (dict != NULL) {
        return dict;
    }
    return (tp->tp_flags & Py_TPFLAGS_INLINE_VALUES) ? (const void *)_PyObject_InlineValues(op)
                                                     : NULL;
#elif PY_VERSION_HEX >= 0x030C0000
    PyDictOrValues dorv = *_PyObject_DictOrValuesPointer(op);
    return _PyDictOrValues_IsValues(dorv) ? (const void *)_PyDictOrValues_GetValues(dorv)
                                          : (const void *)dorv.dict;
#else
    PyDictValues *values = *_PyObject_ValuesPointer(op);
    return values != NULL ? (const void *)values : (const void *)*_PyObject_ManagedDictPointer(op);
#endif
}


/* ---- memory a proof across stops watches (incremental.c, spread) ------- */

#include "internal/pycore_dict.h"     /* PyDictKeysObject's layout */

/* An instance whose attributes live in a values array (not in a dict):
 * 1 and the array's range -- memory outside its object that its traverse
 * reads (values[0..n) for n the type's shared keys' entries, at most the
 * array's capacity) -- else 0.  Each version has its own layout: a
 * separate array found through the pre-header (3.11, 3.12: capacity
 * the shared keys' usable size, which adding a name does not change), or
 * inline after the object (3.13, its capacity in its header). */
static inline int
cg_instance_values(PyObject *op, uintptr_t *start, uintptr_t *end)
{
    PyTypeObject *tp = Py_TYPE(op);
    if (!(tp->tp_flags & Py_TPFLAGS_MANAGED_DICT)) {
        return 0;
    }
#if PY_VERSION_HEX >= 0x030D0000
    if (_PyObject_ManagedDictPointer(op)->dict != NULL || !(tp->tp_flags & Py_TPFLAGS_INLINE_VALUES)) {
        return 0;
    }
    PyDictValues *values = _PyObject_InlineValues(op);
    *start = (uintptr_t)values;
    *end = (uintptr_t)&values->values[values->capacity];
    return 1;
#else
#  if PY_VERSION_HEX >= 0x030C0000
    PyDictOrValues dorv = *_PyObject_DictOrValuesPointer(op);
    if (!_PyDictOrValues_IsValues(dorv)) {
        return 0;
    }
    PyDictValues *values = _PyDictOrValues_GetValues(dorv);
#  else
    PyDictValues *values = *_PyObject_ValuesPointer(op);
    if (values == NULL) {
        return 0;
    }
#  endif
    PyDictKeysObject *keys = ((PyHeapTypeObject *)tp)->ht_cached_keys;
    if (keys == NULL) {
        return 0;
    }
    *start = (uintptr_t)values;
    *end = (uintptr_t)(values->values + keys->dk_nentries + keys->dk_usable);
    return 1;
#endif
}

/* The values array a split dict's traverse reads (its keys are shared and
 * hold only strings): [start, end) as cg_instance_values measures it. */
static inline void
cg_split_dict_values(PyDictObject *d, uintptr_t *start, uintptr_t *end)
{
    PyDictValues *values = d->ma_values;
    *start = (uintptr_t)values;
#if PY_VERSION_HEX >= 0x030D0000
    *end = (uintptr_t)&values->values[values->capacity];
#else
    *end = (uintptr_t)(values->values + d->ma_keys->dk_nentries + d->ma_keys->dk_usable);
#endif
}

/* Where a combined dict's entries start, and their size: what its
 * traverse reads of its keys object besides the header (whose fields do
 * not change without the dict's own changing: a resize makes new keys). */
static inline char *
cg_dict_entries(PyDictKeysObject *dk, size_t *entry_size)
{
    *entry_size = dk->dk_kind == DICT_KEYS_GENERAL ? sizeof(PyDictKeyEntry) : sizeof(PyDictUnicodeEntry);
#if PY_VERSION_HEX >= 0x030C0000
    return (char *)_DK_ENTRIES(dk);
#else
    return (char *)&((int8_t *)dk->dk_indices)[(size_t)1 << dk->dk_log2_index_bytes];
#endif
}

#endif /* CYCLEGC_COMPAT_H */
