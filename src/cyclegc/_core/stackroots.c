/* stackroots.c -- frames' value stacks as marking roots (bounded pauses).
 *
 * A list being built by a comprehension, the iterator of a running for
 * loop, the arguments of a call in progress: they live on a frame's value
 * stack, not in its local variables, and marking (incremental.c) that
 * missed them left a big live structure unmarked, so the round's sweep cut
 * its closure into truncated slices and an overflow collection followed
 * (examples/churn.py).  These roots only choose what marking calls alive;
 * trial deletion still decides every verdict.  What must hold is that every
 * pointer visited is a live object: reading a stale slot would dereference
 * freed memory.
 *
 * Which slots are live:
 *
 *   suspended frames   stacktop >= 0 (a frame that called a Python function
 *                      inline, a suspended generator): localsplus[nlocalsplus
 *                      .. stacktop) is what the interpreter's own frame
 *                      traversal visits; used on every frame of every thread.
 *   executing frames   stacktop == -1: the stack pointer is a local of the
 *                      evaluation loop.  Only the collecting thread's top
 *                      frame, and only at a safe point (cg_safe_point_tstate:
 *                      the collection runs from our pending call at an
 *                      eval-breaker check, 3.12/3.13 and 3.11's deferred
 *                      cases, or from our 3.11 trace hook at an event):
 *                      the frame is between instructions or inside one
 *                      that calls out, never unwinding an exception (which
 *                      pops and frees slots without a check).  Its live
 *                      depth is computed from the bytecode: the depth D
 *                      before the instruction it is at (flow analysis with
 *                      the interpreter's PyCompile_OpcodeStackEffectWithJump,
 *                      jumps, the exception table's handler depths), minus
 *                      an upper bound P of the values that instruction may
 *                      consume (pushed bound - stack effect, _opcodes.py):
 *                      slots below D - P are never touched by it, before,
 *                      during or after.  At the eval-breaker checks
 *                      (RESUME, JUMP_BACKWARD: P = 0; the end of a call: P =
 *                      its inputs) that is exact or one short.
 *   other executing frames (below a call into C, other threads' tops, 3.11's
 *                      collections inside an allocation): the `any` depth.
 *                      Such a frame's thread is stopped in one of three
 *                      places (it released the GIL, or it runs the Python
 *                      code we are in):
 *                      (1) at an eval-breaker check: between instructions,
 *                          covered by the safe depth as above;
 *                      (2) inside a C call made by its instruction (a
 *                          blocking call, a C function calling Python):
 *                          the instruction never touches slots below D - P;
 *                          3.11 and 3.12 superinstructions run their second
 *                          half with the last instruction still at the
 *                          first, so the next unit's safe depth bounds too;
 *                      (3) inside a deallocation during exception unwinding
 *                          (a __del__, a file's close releasing the GIL):
 *                          the eval loop pops and frees slots down to the
 *                          level of the handler covering next_instr - 1, or
 *                          to 0 with none, with no check in between, its
 *                          last instruction unchanged; slots below that
 *                          level are untouched.  next_instr - 1 is the
 *                          instruction (or one of its caches) except in two
 *                          cases, both bounded: a backward jump whose
 *                          eval-breaker check raises (a signal handler) has
 *                          next_instr at the jump's target, so the level
 *                          at the unit before the target bounds it; and
 *                          RERAISE with an oparg sets the last instruction
 *                          back to a pushed lasti (an instruction a handler
 *                          with the lasti flag covers) and unwinds by its
 *                          own handler, so for those instructions the
 *                          level at every such RERAISE bounds it.
 *                      `any` is the minimum of all these (analyse_unwinding);
 *                      what it leaves is never freed while the frame is
 *                      stopped there.  A frame being cleared on return or
 *                      on leaving by an exception is unlinked from its
 *                      thread's frames first (3.11.1+, GH-99729), so it is
 *                      never seen.  The stacks of threads blocked mid-
 *                      comprehension (3.12+: the inlined comprehension's
 *                      cleanup handler keeps its list) become roots; a
 *                      comprehension on 3.11 has its own frame with no
 *                      handler, so the list being built is one only at the
 *                      collecting thread's safe point.
 *
 * The analysis of a code object is kept in its co_extra slot and on the
 * `analyses` list: freed with the code object (free_depths, which unlinks
 * it), or at exit (free_all_depths, a Py_AtExit function) if the code object
 * outlives the interpreter -- deep-frozen code (3.11, 3.12: runpy's, the
 * importlib bootstrap's) is static: its co_extra array is freed by
 * finalization without calling the free function, and valgrind found those
 * analyses definitely lost.  A code object it cannot analyse (an opcode the
 * tables do not know, instrumented code, inconsistent depths) is remembered
 * as such and gives no roots.  It costs O(code length) once per code
 * object, inside the stop that first needs it. */
#include "collector.h"

#define FWD 1
#define BACK 2
#define NOFALL 4
#define BAIL 8
#define EXTARG 16
#define GENSTART 32
#define RERAISE 64

static struct {
    int loaded;                 /* 1: tables usable; -1: unusable */
    Py_ssize_t extra_index;
    uint8_t deopt[256], caches[256], flags[256], pushed[256];
} tab = {.extra_index = -1};

PyThreadState *cg_safe_point_tstate = NULL;

/* Threads parked at a safe point: each waits, without the GIL, for another
 * thread's stop to end (trigger.c, "Other threads wait for a stop"), from
 * the pending call or trace event that made it the safe-point thread of its
 * own collection.  Its top frame stays as it was there (the thread runs
 * nothing until it has the GIL back and has left this table), so its live
 * depth is the safe one, as if it were collecting. */
#define CG_MAX_PARKED 16
static PyThreadState *parked[CG_MAX_PARKED];

int
cg_park_safe_point(PyThreadState *ts)
{
    for (int i = 0; i < CG_MAX_PARKED; i++) {
        if (parked[i] == NULL) {
            parked[i] = ts;
            return i;
        }
    }
    return -1;      /* full: the thread's frames get the `any` depth */
}

void
cg_unpark_safe_point(int slot)
{
    if (slot >= 0 && slot < CG_MAX_PARKED) {
        parked[slot] = NULL;
    }
}

void
cg_unpark_all(void)
{
    memset(parked, 0, sizeof(parked));
}

static int
is_parked(PyThreadState *ts)
{
    for (int i = 0; i < CG_MAX_PARKED; i++) {
        if (parked[i] == ts) {
            return 1;
        }
    }
    return 0;
}

/* One code object's analysis, per code unit (-1: none known): `safe`, the
 * depth no part of the instruction touches (for a frame at a safe point);
 * `any`, also below every depth an exception unwinding may pop to with
 * the frame's last instruction there (for any other executing frame).
 * `any` points into the same allocation, after `safe`.  `prev`/`next`:
 * its place on the `analyses` list. */
typedef struct Depths {
    struct Depths *prev, *next;
    Py_ssize_t n;
    int failed;
    int16_t *any;
    int16_t safe[1];
} Depths;

/* Every analysis not yet freed, each exactly once, each in exactly one code
 * object's co_extra slot (it is linked only once _PyCode_SetExtra stored
 * it).  The list is touched with the GIL held (depths_of, and free_depths
 * from a code object's deallocation), except by free_all_depths, which runs
 * after the interpreter is finalized: no thread runs Python code any more
 * (daemon threads never get the GIL back).
 *
 * `exited`: free_all_depths has run.  From then on there is no analysis:
 * depths_of gives none (tab.loaded is -1, so cg_stack_roots_configure does
 * not reload either: no new block, no read of a freed one) and free_depths
 * frees nothing -- a code object still alive (static or immortal code, a
 * leaked one) keeps a dangling pointer to its freed analysis in its
 * co_extra slot; the only reader of that slot is depths_of, and if such a
 * code object dies later its free_depths must not free the block a second
 * time.  `atexit`: 1 once free_all_depths is registered, -1 if Py_AtExit
 * refused it (its table is full): the analyses are then left to the
 * process's exit, as before. */
static struct {
    Depths *head;
    Py_ssize_t live;
    Py_ssize_t refused;         /* not stored: see may_store_analysis */
    int atexit;
    int exited;
} analyses;

/* The co_extra free function.  CPython calls it for every slot of a code
 * object's co_extra array, set or not: when another extension stored an
 * extra in a later slot, ours may be NULL (test_capi's code-extra tests). */
static void
free_depths(void *p)
{
    if (p == NULL || analyses.exited) {
        return;
    }
    Depths *d = (Depths *)p;
    if (d->prev != NULL) {
        d->prev->next = d->next;
    }
    else {
        analyses.head = d->next;
    }
    if (d->next != NULL) {
        d->next->prev = d->prev;
    }
    analyses.live--;
    PyMem_RawFree(d);
}

/* Py_AtExit runs this at the very end of Py_FinalizeEx, after the last
 * collection (no collection, hence no depths_of, can follow) and after the
 * interpreter's code objects are gone or, static ones, had their co_extra
 * arrays freed without free_depths.  What is still on the list is freed;
 * see `analyses` for the pointers that dangle afterwards and why nothing
 * reads or frees them. */
static void
free_all_depths(void)
{
    analyses.exited = 1;
    tab.loaded = -1;
    Depths *d = analyses.head;
    while (d != NULL) {
        Depths *next = d->next;
        PyMem_RawFree(d);
        d = next;
    }
    analyses.head = NULL;
    analyses.live = 0;
}

/* Analyses not yet freed (for tests). */
Py_ssize_t
cg_live_depths(void)
{
    return analyses.live;
}

int
cg_stack_roots_configure(void)
{
    if (tab.loaded != 0) {
        return 0;
    }
    tab.loaded = -1;
    PyObject *mod = PyImport_ImportModule("cyclegc._opcodes");
    if (mod == NULL) {
        return -1;
    }
    PyObject *t = PyObject_CallMethod(mod, "tables", NULL);
    Py_DECREF(mod);
    if (t == NULL) {
        return -1;
    }
    uint8_t *dst[4] = {tab.deopt, tab.caches, tab.flags, tab.pushed};
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 4) {
        Py_DECREF(t);
        PyErr_SetString(PyExc_RuntimeError, "cyclegc._opcodes.tables(): 4 tables expected");
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        PyObject *b = PyTuple_GET_ITEM(t, i);
        if (!PyBytes_Check(b) || PyBytes_GET_SIZE(b) != 256) {
            Py_DECREF(t);
            PyErr_SetString(PyExc_RuntimeError, "cyclegc._opcodes.tables(): 256-byte tables expected");
            return -1;
        }
        memcpy(dst[i], PyBytes_AS_STRING(b), 256);
    }
    Py_DECREF(t);
    if (tab.extra_index < 0) {
        return 0;           /* no co_extra slot: no value-stack roots of running frames */
    }
    tab.loaded = 1;
    return 0;
}

/* Our co_extra slot, taken when the extension is imported (module_exec),
 * not when the tables load: taken first, it is slot 0, and while no other
 * extension has a slot every analysis may be stored (may_store_analysis);
 * taken after another extension's, none could be. */
void
cg_stack_roots_reserve(void)
{
    static int done = 0;
    if (done) {
        return;
    }
    done = 1;
    tab.extra_index = _PyEval_RequestCodeExtraIndex(free_depths);
    if (tab.extra_index < 0) {
        PyErr_Clear();      /* no slot left: configure leaves the tables unusable */
    }
}

/* Full collections call this when they have ended (protocol.c): the tables
 * are loaded once the program itself has imported `opcode`, so that a
 * plain install() adds no import to the program (`opcode` costs ~1.5 ms at
 * start-up).  Until then only suspended frames give value-stack roots.
 *
 * Loading them imports cyclegc._opcodes and runs its tables(): Python code,
 * which must not run inside a collection.  A collection can start inside
 * any allocation (on 3.11 inside the very allocation that made it due, as
 * the built-in's does), in the middle of C code that does not expect an
 * import: loaded at the start of a full collection, the import ran the
 * program's import hooks in the middle of compile(), and pytest's
 * assertion rewriter, parsing the imported module, broke the AST state of
 * the compile() it interrupted ("AST constructor recursion depth
 * mismatch": pytest on networkx's tests, 3.11, every run).  So the load is
 * a pending call: the main thread runs it at an eval-breaker check, between
 * two bytecodes, where a signal handler could run too.  Such a check also
 * comes inside a collection, in the Python code of its gc.callbacks or
 * finalizers: there the load declines, and the end of the next full
 * collection asks again.  A failure leaves the tables unusable, silently
 * (they only save time). */
static int load_pending;

static int
load_at_safe_point(void *Py_UNUSED(arg))
{
    load_pending = 0;
    if (tab.loaded != 0 || cg_state()->collecting) {
        return 0;
    }
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    if (cg_stack_roots_configure() < 0) {
        PyErr_Clear();
    }
    PyErr_Restore(exc_type, exc_value, exc_tb);
    return 0;
}

void
cg_stack_roots_adopt(void)
{
    if (tab.loaded != 0 || load_pending) {
        return;
    }
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    PyObject *name = PyUnicode_FromString("opcode");
    PyObject *mod = name != NULL ? PyImport_GetModule(name) : NULL;   /* no import: a lookup */
    Py_XDECREF(name);
    PyErr_Clear();
    if (mod != NULL) {
        Py_DECREF(mod);
        load_pending = Py_AddPendingCall(load_at_safe_point, NULL) == 0;
    }
    PyErr_Restore(exc_type, exc_value, exc_tb);
}

/* ---- the analysis ------------------------------------------------------ */

static int
read_varint(const uint8_t **p, const uint8_t *end, int *out)
{
    if (*p >= end) {
        return -1;
    }
    unsigned b = *(*p)++;
    int val = b & 63;
    while (b & 64) {
        if (*p >= end || val > (1 << 24)) {
            return -1;
        }
        b = *(*p)++;
        val = (val << 6) | (b & 63);
    }
    *out = val;
    return 0;
}

/* One entry of a code object's exception table: the units [start, start +
 * len) are covered by the handler at unit `target`, which cuts the value
 * stack to `level` and then pushes lasti (if `lasti`) and the exception. */
typedef struct {
    int start, len, target, level, lasti;
} ExcEntry;

/* The exception table's bytes as [*p, *end): empty if the code has none. */
static void
exc_table(PyCodeObject *co, const uint8_t **p, const uint8_t **end)
{
    PyObject *et = co->co_exceptiontable;
    if (et != NULL && PyBytes_Check(et)) {
        *p = (const uint8_t *)PyBytes_AS_STRING(et);
        *end = *p + PyBytes_GET_SIZE(et);
    }
    else {
        *p = *end = NULL;
    }
}

/* Reads the entry at *p into *e: 1 if one was read, 0 at the end of the
 * table, -1 if it is malformed (the caller then gives up on the code). */
static int
next_exc_entry(const uint8_t **p, const uint8_t *end, ExcEntry *e)
{
    if (*p >= end) {
        return 0;
    }
    int dl;
    if (read_varint(p, end, &e->start) < 0 || read_varint(p, end, &e->len) < 0
        || read_varint(p, end, &e->target) < 0 || read_varint(p, end, &dl) < 0) {
        return -1;
    }
    e->level = dl >> 1;
    e->lasti = dl & 1;
    return 1;
}

/* Sets the depth at instruction `target`; -1 on a conflict or out of range.
 * *changed is set when a backward target got its first depth. */
static int
record(int *depth, Py_ssize_t n, Py_ssize_t target, int d, Py_ssize_t here, int *changed)
{
    if (target < 0 || target >= n || d < 0) {
        return -1;
    }
    if (depth[target] < 0) {
        depth[target] = d;
        if (target <= here) {
            *changed = 1;
        }
        return 0;
    }
    return depth[target] == d ? 0 : -1;
}

/* Decodes the instruction at unit i: *op (as in the code), *oparg (with
 * its EXTENDED_ARG prefixes), *next (the unit after its caches).  Returns
 * 0, or -1 for a BAIL opcode (the caller skips one unit). */
static int
decode_at(const uint8_t *code, Py_ssize_t n, Py_ssize_t i, int *op, int *oparg, Py_ssize_t *next)
{
    int arg = 0, o;
    for (;;) {
        o = code[2 * i];
        if (tab.flags[o] & BAIL) {
            return -1;
        }
        arg = (arg << 8) | code[2 * i + 1];
        if (!(tab.flags[o] & EXTARG)) {
            break;
        }
        if (++i >= n) {
            return -1;
        }
    }
    *op = o;
    *oparg = arg;
    *next = i + 1 + tab.caches[o];
    return 0;
}

/* The `any` depths (see Depths), from `safe` and the exception table.
 *
 * An executing frame other than the collecting thread's top one at a safe
 * point may be anywhere in an instruction, or unwinding an exception: the
 * eval loop then pops and frees values down to the level of the handler
 * that covers next_instr - 1 (to 0 with none), with its last instruction
 * still where it was.  So `any` at an instruction is the minimum of:
 *  - `safe` there (what the instruction itself may consume), and `safe`
 *    at the next unit: 3.11 and 3.12 superinstructions (STORE_FAST__STORE_FAST)
 *    run their second half with the last instruction still at the first;
 *  - the handler level over the instruction's units (0 where none covers);
 *  - for a backward jump, the level at the unit before its target: the
 *    eval-breaker check after the jump may raise (a signal handler) with
 *    next_instr already at the target (and a lasti-flagged handler there
 *    pushes the jump as lasti: the next rule applies to it too);
 *  - (an instrumented jump sets the last instruction to its target while
 *    its callback runs, and an error there unwinds from the target: the
 *    target's own `any` covers it);
 *  - for an instruction a handler with the lasti flag covers, the level
 *    at every RERAISE with a non-zero oparg (0 where none covers one):
 *    such a RERAISE sets the last instruction back to a pushed lasti, one
 *    of these, and unwinds by its own handler. */
static int
analyse_unwinding(PyCodeObject *co, Depths *out)
{
    Py_ssize_t n = out->n;
    const uint8_t *code = CG_CODE_UNITS(co);
    int16_t *any = out->any;
    int *cov = PyMem_RawMalloc(sizeof(int) * (size_t)(n + 1));
    uint8_t *lasti = PyMem_RawCalloc((size_t)(n + 1), 1);
    int rc = -1;
    if (cov == NULL || lasti == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        cov[i] = -1;
        any[i] = -1;
    }
    const uint8_t *p, *end;
    ExcEntry e;
    int got;
    exc_table(co, &p, &end);
    while ((got = next_exc_entry(&p, end, &e)) > 0) {
        for (Py_ssize_t k = e.start; k < (Py_ssize_t)e.start + e.len && k < n; k++) {
            cov[k] = cov[k] < 0 ? e.level : Py_MIN(cov[k], e.level);
            lasti[k] |= (uint8_t)e.lasti;
        }
    }
    if (got < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (cov[i] < 0) {
            cov[i] = 0;     /* no handler: unwinding pops everything */
        }
    }
    int rmin = -1;          /* min level at a RERAISE with an oparg; -1: none */
    Py_ssize_t i = 0;
    while (i < n) {
        int op, oparg;
        Py_ssize_t next;
        if (decode_at(code, n, i, &op, &oparg, &next) < 0) {
            i++;
            continue;
        }
        if ((tab.flags[op] & RERAISE) && oparg != 0) {
            for (Py_ssize_t k = i; k < next && k < n; k++) {
                rmin = rmin < 0 ? cov[k] : Py_MIN(rmin, cov[k]);
            }
        }
        i = next;
    }
    i = 0;
    while (i < n) {
        int op, oparg;
        Py_ssize_t next, start = i;
        if (decode_at(code, n, i, &op, &oparg, &next) < 0) {
            i++;
            continue;
        }
        int a = out->safe[start];
        if (a >= 0) {
            int covered_lasti = 0;
            for (Py_ssize_t k = start; k < next && k < n; k++) {
                a = Py_MIN(a, cov[k]);
                covered_lasti |= lasti[k];
            }
            if (next < n && out->safe[next] >= 0) {
                a = Py_MIN(a, out->safe[next]);
            }
            if (tab.flags[op] & BACK) {
                /* an unwinding from there may also push this instruction
                 * as lasti, under the handler covering `before` */
                Py_ssize_t before = next - oparg - 1;
                if (before >= 0 && before < n) {
                    a = Py_MIN(a, cov[before]);
                    covered_lasti |= lasti[before];
                }
                else {
                    a = 0;
                }
            }
            if (covered_lasti && rmin >= 0) {
                a = Py_MIN(a, rmin);
            }
        }
        for (Py_ssize_t k = start; k < next && k < n; k++) {
            any[k] = (int16_t)a;
        }
        i = next;
    }
    rc = 0;
done:
    PyMem_RawFree(cov);
    PyMem_RawFree(lasti);
    return rc;
}

static int
analyse(PyCodeObject *co, Depths *out)
{
    Py_ssize_t n = out->n;
    const uint8_t *code = CG_CODE_UNITS(co);
    int maxdepth = co->co_stacksize;
    if (maxdepth > 30000) {
        return -1;
    }
    int *depth = PyMem_RawMalloc(sizeof(int) * (size_t)(n + 1));
    if (depth == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        depth[i] = -1;
        out->safe[i] = -1;
    }
    int rc = -1, changed = 0;
    depth[0] = 0;
    /* Handlers: the stack is cut to `depth`, then lasti (if flagged) and
     * the exception are pushed. */
    const uint8_t *p, *end;
    ExcEntry e;
    int got;
    exc_table(co, &p, &end);
    while ((got = next_exc_entry(&p, end, &e)) > 0) {
        if (record(depth, n, e.target, e.level + e.lasti + 1, -1, &changed) < 0) {
            goto done;
        }
    }
    if (got < 0) {
        goto done;
    }
    for (int pass = 0; pass < 8; pass++) {
        changed = 0;
        int cur = -1;
        Py_ssize_t i = 0;
        while (i < n) {
            Py_ssize_t start = i;
            if (depth[i] >= 0) {
                if (cur >= 0 && cur != depth[i]) {
                    goto done;
                }
                cur = depth[i];
            }
            else if (cur >= 0) {
                depth[i] = cur;
            }
            /* EXTENDED_ARG prefixes belong to the instruction they extend. */
            int oparg = 0, op;
            for (;;) {
                op = code[2 * i];
                if (tab.flags[op] & BAIL) {
                    if (cur < 0) {      /* unreachable code: skip a unit */
                        break;
                    }
                    goto done;
                }
                oparg = (oparg << 8) | code[2 * i + 1];
                if (!(tab.flags[op] & EXTARG)) {
                    break;
                }
                if (++i >= n) {
                    goto done;
                }
            }
            if (tab.flags[op] & BAIL) {
                i = start + 1;
                continue;
            }
            int base = tab.deopt[op];
            Py_ssize_t next = i + 1 + tab.caches[op];
            if (cur < 0) {
                i = next;
                continue;
            }
            int eff = PyCompile_OpcodeStackEffectWithJump(base, oparg, 0);
            int f = tab.flags[op];
            int effj = (f & (FWD | BACK)) ? PyCompile_OpcodeStackEffectWithJump(base, oparg, 1) : eff;
            if (eff == PY_INVALID_STACK_EFFECT || effj == PY_INVALID_STACK_EFFECT) {
                PyErr_Clear();
                goto done;
            }
            if ((f & GENSTART) && eff < 1) {
                eff = effj = 1;     /* resumed with the sent value pushed */
            }
            int pushed = tab.pushed[op];
            if (pushed == 255) {
                pushed = oparg;
            }
            else if (pushed == 254) {
                pushed = (oparg & 0xFF) + (oparg >> 8) + 1;
            }
            int consumed = pushed - (eff < effj ? eff : effj);
            int safe = cur - (consumed > 0 ? consumed : 0);
            if (safe < 0) {
                safe = 0;
            }
            for (Py_ssize_t k = start; k < next && k < n; k++) {
                out->safe[k] = (int16_t)safe;
            }
            if (f & (FWD | BACK)) {
                Py_ssize_t target = (f & FWD) ? next + oparg : next - oparg;
                if (record(depth, n, target, cur + effj, i, &changed) < 0) {
                    goto done;
                }
            }
            if (f & NOFALL) {
                cur = -1;
            }
            else {
                cur += eff;
                if (cur < 0 || cur > maxdepth) {
                    goto done;
                }
            }
            i = next;
        }
        if (!changed) {
            rc = 0;
            break;
        }
    }
    if (rc == 0) {
        rc = analyse_unwinding(co, out);
    }
done:
    PyMem_RawFree(depth);
    return rc;
}

/* Whether an analysis may be stored in `co`'s co_extra without changing
 * which free functions CPython calls.  code_dealloc calls the free
 * function of every slot below the code object's ce_size, with NULL for
 * unset ones, and the first _PyCode_SetExtra on a code object sizes it for
 * every slot registered so far.  So storing ours in a code object that
 * has no co_extra would make its death call every other extension's free
 * function, which the built-in never does for an object that extension did
 * not touch; CPython's test_code registers a ctypes callback destroyed
 * before the interpreter's last collection, and code objects we had
 * analysed called it at exit (a crash on 3.11-3.13 in every mode, found by
 * the whole regression list).  Allowed: our slot is the only one (taken at
 * import, cg_stack_roots_reserve), or the code object's co_extra already
 * covers every slot (another extension stored in it: its free functions
 * are called anyway).  Otherwise the frame has no value-stack roots, which
 * only marking loses (roots choose sets, never verdicts). */
static int
may_store_analysis(PyCodeObject *co)
{
    Py_ssize_t users = CG_CODE_EXTRA_USERS();
    if (tab.extra_index == 0 && users == 1) {
        return 1;
    }
    return CG_CODE_EXTRA_SIZE(co) >= users;
}

/* The analysis of `co`, computed now if needed; NULL if unusable. */
static Depths *
depths_of(PyCodeObject *co)
{
    if (tab.loaded != 1) {
        return NULL;
    }
    void *extra = NULL;
    if (_PyCode_GetExtra((PyObject *)co, tab.extra_index, &extra) < 0) {
        PyErr_Clear();
        return NULL;
    }
    if (extra == NULL) {
        if (!may_store_analysis(co)) {
            analyses.refused++;
            return NULL;
        }
        Py_ssize_t n = Py_SIZE(co);
        Depths *d = PyMem_RawMalloc(sizeof(Depths) + sizeof(int16_t) * (size_t)(2 * (n > 0 ? n : 1)));
        if (d == NULL) {
            return NULL;
        }
        d->n = n;
        d->any = d->safe + (n > 0 ? n : 1);
        d->failed = analyse(co, d) < 0;
        if (_PyCode_SetExtra((PyObject *)co, tab.extra_index, d) < 0) {
            PyErr_Clear();
            PyMem_RawFree(d);
            return NULL;
        }
        if (analyses.atexit == 0) {
            analyses.atexit = Py_AtExit(free_all_depths) == 0 ? 1 : -1;
        }
        d->prev = NULL;
        d->next = analyses.head;
        if (d->next != NULL) {
            d->next->prev = d;
        }
        analyses.head = d;
        analyses.live++;
        extra = d;
    }
    Depths *d = (Depths *)extra;
    return d->failed ? NULL : d;
}

int cg_executing_roots = 1;

/* Values on the stack of frame `f` (code `code`) known to be live;
 * `safe_point`: the collecting thread's top frame at a safe point. */
static int
live_stack_depth(_PyInterpreterFrame *f, PyCodeObject *code, int safe_point)
{
    int top = CG_FRAME_STACKTOP(f);
    int nlocals = code->co_nlocalsplus;
    if (top >= 0) {
        int d = top - nlocals;
        return d > 0 && d <= code->co_stacksize ? d : 0;
    }
    if (!safe_point && !(cg_executing_roots && CG_DYING_FRAMES_UNLINKED())) {
        return 0;
    }
    Depths *dp = depths_of(code);
    if (dp == NULL) {
        return 0;
    }
    Py_ssize_t idx = CG_FRAME_INSTR_INDEX(f, code);
    if (idx < 0 || idx >= dp->n) {
        return 0;
    }
    int d = safe_point ? dp->safe[idx] : dp->any[idx];
    return d >= 0 && d <= code->co_stacksize ? d : 0;
}

void
cg_visit_stack_roots(visitproc visit, void *arg)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    PyThreadState *safe_ts = cg_safe_point_tstate;
    if (safe_ts != NULL && safe_ts != _PyThreadState_GET()) {
        safe_ts = NULL;
    }
    CG_THREADS_LOCK();
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts != NULL;
         ts = PyThreadState_Next(ts)) {
        if (!CG_THREAD_HAS_FRAMES(ts)) {
            continue;
        }
        int top = 1;
        for (_PyInterpreterFrame *f = CG_TOP_FRAME(ts); f != NULL; f = f->previous) {
            PyCodeObject *code;
            if (CG_FRAME_ON_CSTACK(f) || (code = CG_FRAME_CODE(f)) == NULL) {
                continue;
            }
            int d = live_stack_depth(f, code, top && (ts == safe_ts || (ts != NULL && is_parked(ts))));
            top = 0;
            PyObject **base = f->localsplus + code->co_nlocalsplus;
            for (int i = 0; i < d; i++) {
                if (base[i] != NULL) {
                    visit(base[i], arg);
                }
            }
        }
    }
    CG_THREADS_UNLOCK();
}

/* ---- test hooks ---------------------------------------------------------- */

PyObject *
cg_stack_depths(PyObject *code, int any)
{
    if (!PyCode_Check(code)) {
        PyErr_SetString(PyExc_TypeError, "a code object is expected");
        return NULL;
    }
    if (cg_stack_roots_configure() < 0) {
        return NULL;
    }
    Depths *d = depths_of((PyCodeObject *)code);
    if (d == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *list = PyList_New(d->n);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < d->n; i++) {
        PyObject *v = PyLong_FromLong(any ? d->any[i] : d->safe[i]);
        if (v == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, v);
    }
    return list;
}

static int
visit_append(PyObject *op, void *arg)
{
    return PyList_Append((PyObject *)arg, op);
}

/* The value-stack roots as marking would see them now, the calling thread's
 * top frame (the caller, inside a CALL of this function: its inputs are
 * intact) treated as at a safe point when `top_safe`. */
PyObject *
cg_stack_roots_now(int top_safe)
{
    if (cg_stack_roots_configure() < 0) {
        return NULL;
    }
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    PyThreadState *saved = cg_safe_point_tstate;
    cg_safe_point_tstate = top_safe ? _PyThreadState_GET() : NULL;
    cg_visit_stack_roots(visit_append, list);
    cg_safe_point_tstate = saved;
    if (PyErr_Occurred()) {
        Py_DECREF(list);
        return NULL;
    }
    return list;
}
