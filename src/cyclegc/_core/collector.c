/* collector.c -- cyclegc's cycle collector, phase by phase.
 *
 * The algorithm is trial deletion over the interpreter's own generation
 * lists, the same contract the built-in collector keeps:
 *
 *   1. start_generation    merge the younger lists into the one collected
 *      (fork-friendly full collections find the garbage in readonly.c
 *      instead of steps 1b-5, writing nothing but the garbage)
 *  1b. mark_alive          (full collections) everything reachable from the
 *                          roots (modules, executing frames and their value
 *                          stacks, stackroots.c) is alive: one
 *                          traversal each, and trial deletion skips it
 *   2. update_refs         gc_refs := refcount for every candidate
 *   3. subtract_refs       gc_refs -= references from other candidates
 *   4. move_unreachable    anything reachable from gc_refs > 0 survives;
 *                          the rest is tentatively unreachable
 *   5. untrack_*           tuples (and, on full collections, dicts) that can
 *                          hold no cycle leave the GC lists
 *   6. move_legacy_*       tp_del objects and all they reach are uncollectable
 *   7. handle_weakrefs     weakrefs to the garbage cleared; callbacks of live
 *                          weakrefs run
 *   8. finalize_garbage    PEP 442 tp_finalize, at most once per object
 *   9. handle_resurrected  steps 2-4 again on the garbage: what a finalizer
 *                          made reachable again survives
 *  10. delete_garbage      tp_clear breaks the remaining cycles
 *  11. legacy finalizers go to gc.garbage; stats are recorded
 *  12. clear_freelists     (full collections) the interpreter's free lists
 *                          of lists, dicts and tuples are emptied
 *
 * Scratch state lives in the GC headers, as in CPython: while a collection
 * runs, _gc_prev's upper bits hold gc_refs and its COLLECTING bit marks the
 * candidates; bit 0 of _gc_next marks the tentatively unreachable list.  Every
 * phase leaves the lists it hands on in a stated shape (see each comment), and
 * the collection ends with every object's header back in normal form: a
 * valid prev pointer, no COLLECTING bit, no UNREACHABLE bit.
 */
#include "collector.h"

/* ---- gc_refs in the header ------------------------------------------- */

static inline Py_ssize_t
refs_of(PyGC_Head *g)
{
    return (Py_ssize_t)(g->_gc_prev >> CG_PREV_SHIFT);
}

static inline void
set_refs(PyGC_Head *g, Py_ssize_t refs)
{
    g->_gc_prev = (g->_gc_prev & ~CG_PREV_MASK) | ((uintptr_t)refs << CG_PREV_SHIFT);
}

static inline int
is_candidate(PyGC_Head *g)
{
    return (g->_gc_prev & CG_PREV_COLLECTING) != 0;
}

static inline void
clear_candidate(PyGC_Head *g)
{
    g->_gc_prev &= ~CG_PREV_COLLECTING;
}

static void
debug_object(const char *what, PyObject *op)
{
    PySys_FormatStderr("gc: %s <%s %p>\n", what, Py_TYPE(op)->tp_name, (void *)op);
}

/* ---- 1. start_generation ------------------------------------------- */

/* Resets the allocation counters as the interpreter expects and merges the
 * generations younger than `gen` into it.  After: every candidate is in
 * the list returned, in the interpreter's order (oldest first). */
static PyGC_Head *
start_generation(CgState *st, int gen)
{
    if (gen + 1 < CG_NUM_GENERATIONS) {
        st->generations[gen + 1].count += 1;
    }
    for (int i = 0; i <= gen; i++) {
        st->generations[i].count = 0;
    }
    for (int i = 0; i < gen; i++) {
        cg_list_merge(cg_gen_head(st, i), cg_gen_head(st, gen));
    }
    return cg_gen_head(st, gen);
}

/* ---- 1b. mark_alive ---------------------------------------------------- */

/* Bits of _gc_next used only between mark_alive and split_unmarked, while
 * no list is walked and no Python code runs (headers are 8-byte aligned, so
 * bits 0-2 of a list pointer are always free; bit 0 is CG_NEXT_UNREACHABLE):
 *   NEXT_ALIVE      reached from a root
 *   NEXT_UNTRACK    ...and an exact tuple or dict holding no container, to be
 *                   untracked as the built-in would (see "untracking in the scan") */
#define NEXT_ALIVE   ((uintptr_t)2)
#define NEXT_UNTRACK ((uintptr_t)4)
#define NEXT_FLAGS   (NEXT_ALIVE | NEXT_UNTRACK)

/* An explicit stack of objects marked but not yet traversed.  Its size is
 * capped: an object that does not fit is simply left unmarked, and trial
 * deletion, which is correct for any candidate set, deals with it.  Wide
 * containers (exact lists and dicts of more than WIDE items) would push all
 * their items at once, so they are traversed a slice at a time instead,
 * from a second small stack of (container, position) entries, the object
 * stack draining between slices: scratch memory then grows with the
 * nesting of wide containers, not with their width. */
#define MARK_STACK_CAP ((Py_ssize_t)1 << 20)
/* Entry points for split_unmarked's walkers: every `stride`-th marked
 * object, the stride doubling (and every other entry dropped) whenever
 * SPLIT_WALKERS are kept, so they are spread over the whole marking. */
#define SPLIT_WALKERS 64

typedef struct {
    PyObject *op[SPLIT_WALKERS];
    int n;
    Py_ssize_t stride, countdown;
} CgEntries;

static inline void
entries_offer(CgEntries *e, PyObject *op)
{
    if (--e->countdown > 0) {
        return;
    }
    if (e->n == SPLIT_WALKERS) {
        for (int i = 0; i < SPLIT_WALKERS / 2; i++) {
            e->op[i] = e->op[2 * i + 1];
        }
        e->n = SPLIT_WALKERS / 2;
        e->stride *= 2;
    }
    e->op[e->n++] = op;
    e->countdown = e->stride;
}
#define WIDE 1024

typedef struct {
    PyObject *op;
    Py_ssize_t pos;
} WideEntry;

/* Two stages, so that many cache misses are in flight at once (gclist.h,
 * CgRing; docs/design.md, "Marking"): a referent met while traversing an
 * object is first parked, unread, in `ring`, its lines prefetched; when it
 * leaves the ring (32 referents later) it is *checked*: read, and if it is
 * an unmarked candidate, marked and pushed on `stack`.  Objects on the
 * stack are marked and not yet traversed; each is pushed at most once, so
 * the stack never holds more than the heap's objects.  A popped object
 * waits in `ready` (stage two, below) before it is traversed.
 *
 * Untracking exact tuples and dicts that hold no container (as the
 * built-in's full collection does) needs to know what they hold, which is
 * only known when their referents are checked: such a container gets
 * NEXT_UNTRACK tentatively when it is traversed, its referents are parked
 * tagged with it, and the check of a referent that is (or may become) a
 * container clears the bit.  All parked referents are checked before
 * mark_alive returns, so a bit still set then is the built-in's verdict. */
typedef struct {
    CgStack stack;
    CgRing ring;            /* referents not yet checked, tagged with the
                               tuple/dict they were met in (or NULL) */
    CgRing ready;           /* popped from the stack, storage prefetched */
    PyObject *parent;       /* the tuple/dict being traversed, or NULL */
    PyObject *known;        /* the last referent found already marked... */
    PyObject *known_type;   /* ...and the last such class */
    CgEntries *entries;     /* a sample of the marked objects, or NULL */
    WideEntry *wide;
    Py_ssize_t nwide, wide_capacity;
} MarkStack;

static int
push_wide(MarkStack *m, PyObject *op)
{
    if (m->nwide == m->wide_capacity) {
        Py_ssize_t n = m->wide_capacity ? m->wide_capacity * 2 : 16;
        WideEntry *w = PyMem_RawRealloc(m->wide, (size_t)n * sizeof(WideEntry));
        if (w == NULL) {
            return -1;
        }
        m->wide = w;
        m->wide_capacity = n;
    }
    m->wide[m->nwide++] = (WideEntry){op, 0};
    return 0;
}

/* Checks a referent `op` met in `parent` (an exact tuple or dict with
 * NEXT_UNTRACK set, or NULL).  If `op` is a container (tracked, or an
 * untracked GC object other than a tuple: it may be tracked later), the
 * parent holds one and keeps being tracked.  If `op` is an unmarked
 * candidate of a full collection (tracked, not immortal: immortals sit in
 * the permanent generation on 3.12 and must not be written to), it is
 * marked and pushed to be traversed; a full stack leaves it unmarked, and
 * trial deletion will examine it. */
static inline void
mark_checked(MarkStack *m, PyObject *op, PyObject *parent)
{
    if (!cg_is_gc(op)) {
        return;
    }
    PyGC_Head *g = CG_AS_GC(op);
    uintptr_t next = g->_gc_next;
    if (next == 0) {
        if (parent != NULL && !PyTuple_CheckExact(op)) {
            CG_AS_GC(parent)->_gc_next &= ~NEXT_UNTRACK;
        }
        return;
    }
    if (parent != NULL) {
        CG_AS_GC(parent)->_gc_next &= ~NEXT_UNTRACK;
    }
    if ((next & NEXT_ALIVE) || CG_IS_IMMORTAL(op)) {
        if (PyType_Check(op)) {
            m->known_type = op;
        }
        else {
            m->known = op;
        }
        return;
    }
    if (cg_stack_push(&m->stack, op, MARK_STACK_CAP) == 0) {
        g->_gc_next = next | NEXT_ALIVE;
        if (m->entries != NULL) {
            entries_offer(m->entries, op);
        }
    }
}

/* The traversal's visitor: park `op` in the ring, tagged with the
 * tuple/dict being traversed, and check the oldest parked referent if more
 * than the ring's depth wait.  Deferring the check is sound because
 * marking's result does not depend on order, and every parked pointer is
 * checked before mark_alive returns. */
static int
visit_mark_deferred(PyObject *op, void *arg)
{
    MarkStack *m = (MarkStack *)arg;
    if (op == NULL) {
        return 0;
    }
    if (op == m->known_type || op == m->known) {
        /* Already marked (or immortal) and tracked: what checking it would
         * find, without the ring.  Every instance of a class meets its
         * class this way, one after another. */
        if (m->parent != NULL) {
            CG_AS_GC(m->parent)->_gc_next &= ~NEXT_UNTRACK;
        }
        return 0;
    }
    cg_ring_put_tagged(&m->ring, op, m->parent);
    if (cg_ring_over(&m->ring)) {
        CgRingEntry e = cg_ring_take_entry(&m->ring);
        mark_checked(m, e.op, e.tag);
    }
    return 0;
}

/* The roots' visitor: a few objects, checked at once. */
static int
visit_mark_root(PyObject *op, void *arg)
{
    mark_checked((MarkStack *)arg, op, NULL);
    return 0;
}

/* Marking is only sound when every tracked, non-immortal object is a
 * candidate, i.e. nothing but immortals was frozen into the permanent
 * generation (3.12 puts its startup immortals there). */
static int
can_mark_alive(CgState *st)
{
    PyGC_Head *perm = cg_permanent_head(st);
    for (PyGC_Head *g = cg_next(perm); g != perm; g = cg_next(g)) {
        if (!CG_IS_IMMORTAL(CG_FROM_GC(g))) {
            return 0;
        }
    }
    return 1;
}

/* can_mark_alive, and no list of the bounded mode holds objects, nothing is
 * parked: every tracked object that is not immortal is in the generations. */
static int
heap_all_candidates(CgState *st)
{
    PyGC_Head *heads[32];
    return can_mark_alive(st) && cg_inc_lists(heads, 32) == 0 && !cg_inc_parked();
}

/* Fork-friendly mode takes the read-only path (readonly.c) only where it
 * spares something: once pages may be shared with another process, or
 * while freeze() holds objects, whose garbage only that path examines.  A
 * process that never forked shares no page; there the header-marking
 * collection is faster (a heap under construction, which marking from the
 * roots misses, costs the read-only path's address lookups ~3x the
 * built-in's time) and untracks atom containers as the built-in does. */
int
cg_readonly_due(CgState *st)
{
    /* After immortalize_heap() what was shared is out of every list: the
     * lists hold the process's own objects, and the ordinary collection
     * writes only pages that are private already. */
    return cg_fork_friendly && ((cg_heap_shared && !cg_heap_immortalized) || !can_mark_alive(st));
}

static int
tuple_has_null(PyObject *op)
{
    for (Py_ssize_t i = PyTuple_GET_SIZE(op); --i >= 0; ) {
        if (PyTuple_GET_ITEM(op, i) == NULL) {
            return 1;
        }
    }
    return 0;
}

/* Traverses one popped object: whole, or (wide list/dict) queued for
 * slices.  An exact dict, or an exact tuple with no NULL item (a tuple
 * still being filled must stay tracked; traversal skips NULLs), is set
 * NEXT_UNTRACK until a referent shows it holds a container (the untracking
 * test of step 5, decided while marking). */
static void
mark_traverse(MarkStack *m, PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PyObject *parent = NULL;
    if (tp == &PyDict_Type || (tp == &PyTuple_Type && !tuple_has_null(op))) {
        CG_AS_GC(op)->_gc_next |= NEXT_UNTRACK;
        parent = op;
    }
    if (((tp == &PyList_Type && PyList_GET_SIZE(op) > WIDE)
         || (tp == &PyDict_Type && PyDict_GET_SIZE(op) > WIDE))
        && push_wide(m, op) == 0) {
        return;
    }
    m->parent = parent;
    tp->tp_traverse(op, visit_mark_deferred, m);
    m->parent = NULL;
}

Py_ssize_t
cg_visit_items_slice(PyObject *op, Py_ssize_t *pos, Py_ssize_t max,
                     visitproc visit, void *arg, int *done)
{
    Py_ssize_t n = 0;
    if (PyList_Check(op)) {
        Py_ssize_t i = *pos, end = Py_MIN(i + max, PyList_GET_SIZE(op));
        for (; i < end; i++, n++) {
            PyObject *item = PyList_GET_ITEM(op, i);
            if (item != NULL) {
                visit(item, arg);
            }
        }
        *pos = i;
        *done = i >= PyList_GET_SIZE(op);
    }
    else {
        PyObject *key, *value;
        for (; n < max; n++) {
            if (!PyDict_Next(op, pos, &key, &value)) {
                break;
            }
            visit(key, arg);
            visit(value, arg);
        }
        *done = n < max;
    }
    return n;
}

/* Visits the next slice of the wide container on top of the wide stack
 * (a dict's items tagged with it, see MarkStack); pops it when done. */
static void
mark_wide_slice(MarkStack *m)
{
    WideEntry *w = &m->wide[m->nwide - 1];
    PyObject *op = w->op;
    int done;
    m->parent = PyDict_CheckExact(op) ? op : NULL;
    (void)cg_visit_items_slice(op, &w->pos, WIDE, visit_mark_deferred, m, &done);
    m->parent = NULL;
    if (done) {
        m->nwide--;     /* visits never grow the wide stack */
    }
}

/* Stage two of marking: an object popped from the stack waits in `ready`
 * for MARK_READY_DEPTH (cg_ready_depth, 8) more before it is traversed, while the storage its
 * traversal reads first (out of line, a dependent miss otherwise) arrives:
 * a list's item array, a dict's keys and values, a set's table, an
 * instance's managed __dict__ or values (compat.h).  Reads only the
 * object's own header, which stage one brought in. */
#define MARK_READY_DEPTH cg_ready_depth

/* Full collections only.  Sets NEXT_ALIVE on every candidate reachable from
 * the roots (cg_visit_roots), traversing each once.  Marked objects are
 * alive: the built-in would find them reachable too.  The loop keeps both
 * stages full, as long as there is work to fill them with: it traverses
 * from `ready` only once MARK_READY_DEPTH objects wait there, refills it
 * from the stack (depth first, which keeps the stack short), then takes
 * the next slice of a wide container (new work: a thousand referents),
 * and only when there is nothing else drains the ring, then `ready`.  It
 * ends when all are empty, so no parked object is forgotten.  After: the
 * lists are unchanged except for NEXT_ALIVE bits, which split_unmarked
 * clears. */
static Py_ssize_t
mark_alive(CgEntries *entries)
{
    MarkStack m = {{NULL, 0, 0}, CG_RING_INIT, CG_RING_INIT, NULL, NULL, NULL, entries, NULL, 0, 0};
    Py_ssize_t marked = 0;
    cg_visit_roots(visit_mark_root, &m);
    cg_visit_stack_roots(visit_mark_root, &m);
    for (;;) {
        if (m.ready.in - m.ready.out > MARK_READY_DEPTH) {
            mark_traverse(&m, cg_ring_take(&m.ready));
            marked++;
        }
        else if (m.stack.size > 0) {
            PyObject *op = m.stack.items[--m.stack.size];
            cg_prefetch_storage(op);
            cg_ring_park(&m.ready, op);
        }
        else if (m.nwide > 0) {
            mark_wide_slice(&m);
        }
        else if (!cg_ring_empty(&m.ring)) {
            CgRingEntry e = cg_ring_take_entry(&m.ring);
            mark_checked(&m, e.op, e.tag);
        }
        else if (!cg_ring_empty(&m.ready)) {
            mark_traverse(&m, cg_ring_take(&m.ready));
            marked++;
        }
        else {
            break;
        }
    }
    cg_stack_free(&m.stack);
    PyMem_RawFree(m.wide);
    return marked;
}

/* Clears the marks: marked objects stay in `young` in their order (those
 * flagged NEXT_UNTRACK leave the GC lists), every unmarked one moves to
 * `rest`, the candidates left for trial deletion.  After: both are normal
 * lists; returns how many marked objects stay tracked. */
static Py_ssize_t
split_unmarked(PyGC_Head *young, PyGC_Head *rest)
{
    Py_ssize_t kept = 0;
    cg_list_init(rest);
    PyGC_Head *g = cg_next(young);
    while (g != young) {
        uintptr_t raw = g->_gc_next;
        PyGC_Head *next = (PyGC_Head *)(raw & ~NEXT_FLAGS);
        if ((raw & NEXT_FLAGS) == NEXT_ALIVE) {
            g->_gc_next = (uintptr_t)next;
            kept++;
        }
        else {
            PyGC_Head *prev = cg_prev(g);
            cg_set_next(prev, next);
            cg_set_prev(next, prev);
            if (raw & NEXT_UNTRACK) {
                g->_gc_next = 0;
                g->_gc_prev &= CG_PREV_FINALIZED;
            }
            else {
                cg_list_append(g, rest);
            }
        }
        g = next;
    }
    return kept;
}

/* _unmarked_sample(n) (module.c): marks from the roots as a full
 * collection would, outside any collection, and returns (tracked objects,
 * marked, up to n of the unmarked ones, sampled uniformly), with every mark
 * cleared and nothing untracked.  What a full collection would leave to
 * trial deletion, to find roots marking misses.  None when marking is not
 * possible (a user freeze()).  No Python code runs while marks are set. */
PyObject *
cg_unmarked_sample(CgState *st, Py_ssize_t max)
{
    if (!heap_all_candidates(st)) {
        /* a user freeze(), or tracked objects on lists of the bounded
         * mode, which the walk below would not clear */
        Py_RETURN_NONE;
    }
    PyObject **sample = PyMem_RawMalloc((size_t)(max > 0 ? max : 1) * sizeof(PyObject *));
    if (sample == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t marked = mark_alive(NULL), total = 0, unmarked = 0, n = 0;
    unsigned long long rng = 0x9E3779B97F4A7C15ULL;
    for (int gen = 0; gen < CG_NUM_GENERATIONS; gen++) {
        PyGC_Head *head = cg_gen_head(st, gen);
        PyGC_Head *g = cg_next(head);
        while (g != head) {
            uintptr_t raw = g->_gc_next;
            PyGC_Head *next = (PyGC_Head *)(raw & ~NEXT_FLAGS);
            g->_gc_next = (uintptr_t)next;
            total++;
            if (!(raw & NEXT_ALIVE)) {
                unmarked++;
                /* reservoir sampling */
                if (n < max) {
                    sample[n++] = CG_FROM_GC(g);
                }
                else {
                    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                    Py_ssize_t j = (Py_ssize_t)((rng >> 33) % (unsigned long long)unmarked);
                    if (j < max) {
                        sample[j] = CG_FROM_GC(g);
                    }
                }
            }
            g = next;
        }
    }
    /* Marks are clear: from here on Python objects may be made. */
    PyObject *list = PyList_New(n);
    if (list == NULL) {
        PyMem_RawFree(sample);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyList_SET_ITEM(list, i, Py_NewRef(sample[i]));
    }
    PyMem_RawFree(sample);
    (void)unmarked;
    return Py_BuildValue("(nnN)", total, marked, list);
}

/* split_walkers: exactly split_unmarked's result (the same lists in the
 * same order), with many walks in flight instead of one.  The walk
 * follows _gc_next from object to object, a dependent cache miss each
 * when list order is not memory order, which in real programs' heaps it is
 * not: it took as long as marking itself (benchmarks/realworld, 3.12:
 * sphinx 0.62 s of split against 0.52 s of marking).  Here the list is cut
 * at up to SPLIT_WALKERS marked objects sampled while marking (their
 * _gc_next gets bit 0, free during the split, as a boundary), and one
 * walker per segment does split_unmarked's work from its start to the next
 * boundary (or the head), the walkers taking turns a node at a time so
 * their misses overlap.  Each keeps its segment's kept objects linked in
 * order and collects its unmarked ones in order; the segment a walker ends
 * at is the one that follows, so the unmarked lists are joined in list
 * order.  Order matters: the garbage is finalized and cleared in list
 * order, as the built-in does (tests/differential compares the order of
 * finalizers). */
typedef struct {
    PyGC_Head *start;       /* where its segment starts (the head for walker 0) */
    PyGC_Head *cur;         /* the next node to look at, or NULL when done */
    PyGC_Head *kept;        /* the last node kept (the start at first) */
    PyGC_Head *end;         /* the boundary reached */
    PyGC_Head rest;         /* its unmarked objects, in order */
    int follows;            /* the walker of the segment after it */
} SplitWalker;

#define BOUNDARY ((uintptr_t)1)

static Py_ssize_t
split_walkers(PyGC_Head *young, PyGC_Head *rest, CgEntries *entries)
{
    SplitWalker w[SPLIT_WALKERS + 1];
    int n = 0;
    Py_ssize_t kept = 0;
    /* walker 0 starts at the head; the others at sampled marked objects
     * that stay tracked (not NEXT_UNTRACK), each once */
    w[n++].kept = young;
    for (int i = 0; i < entries->n; i++) {
        PyGC_Head *g = CG_AS_GC(entries->op[i]);
        if ((g->_gc_next & (NEXT_FLAGS | BOUNDARY)) == NEXT_ALIVE) {
            g->_gc_next |= BOUNDARY;
            w[n++].kept = g;
        }
    }
    for (int i = 0; i < n; i++) {
        PyGC_Head *start = w[i].start = w[i].kept;
        uintptr_t raw = start->_gc_next;
        if (i > 0) {
            start->_gc_next = raw & ~NEXT_FLAGS;      /* keeps BOUNDARY */
            kept++;
        }
        w[i].cur = (PyGC_Head *)(raw & ~(NEXT_FLAGS | BOUNDARY));
        cg_list_init(&w[i].rest);
        w[i].follows = -1;
    }
    int active = n;
    while (active > 0) {
        active = 0;
        for (int i = 0; i < n; i++) {
            PyGC_Head *g = w[i].cur;
            if (g == NULL) {
                continue;
            }
            if (g == young || (g->_gc_next & BOUNDARY)) {
                /* the end of this segment: link the last kept node to it */
                PyGC_Head *k = w[i].kept;
                k->_gc_next = (k->_gc_next & BOUNDARY) | (uintptr_t)g;
                cg_set_prev(g, k);
                w[i].end = g;
                w[i].cur = NULL;
                continue;
            }
            active++;
            uintptr_t raw = g->_gc_next;
            PyGC_Head *next = (PyGC_Head *)(raw & ~NEXT_FLAGS);
            CG_PREFETCH(next);
            if ((raw & NEXT_FLAGS) == NEXT_ALIVE) {
                PyGC_Head *k = w[i].kept;
                k->_gc_next = (k->_gc_next & BOUNDARY) | (uintptr_t)g;
                cg_set_prev(g, k);
                g->_gc_next = (uintptr_t)next;
                w[i].kept = g;
                kept++;
            }
            else if (raw & NEXT_UNTRACK) {
                g->_gc_next = 0;
                g->_gc_prev &= CG_PREV_FINALIZED;
            }
            else {
                cg_list_append(g, &w[i].rest);
            }
            w[i].cur = next;
        }
    }
    /* which segment follows which; clear the boundaries */
    for (int i = 0; i < n; i++) {
        for (int j = 1; j < n && w[i].end != young; j++) {
            if (w[j].start == w[i].end) {
                w[i].follows = j;
                break;
            }
        }
    }
    for (int j = 1; j < n; j++) {
        w[j].start->_gc_next &= ~BOUNDARY;
    }
    cg_list_init(rest);
    for (int i = 0; i >= 0; i = w[i].follows) {
        cg_list_merge(&w[i].rest, rest);
    }
    return kept;
}

/* ---- candidate pages -------------------------------------------------------
 *
 * Most references a small candidate set holds point out of it: a young
 * generation's to classes, interned strings, small ints and above all
 * older containers; a full collection's unmarked rest (mostly garbage) to
 * the marked heap; a bounded-mode slice's survivors to marked objects.
 * The visitors of subtract_refs and move_unreachable read each such
 * referent's header only to learn that it is not a candidate, and on a big
 * heap each read is a cache miss.  The page (4 KiB) of every candidate is
 * recorded in a small bitmap (hashed, 8192 bits: it stays in L1) before
 * the first visit; a referent whose page has no bit is not a candidate,
 * and the visitors drop it without reading a byte of it.  A set bit proves
 * nothing (another object of the page, or a hash collision), and the
 * referent then takes the usual test.  Exact because every candidate's
 * page is recorded before the first visit and a candidate set only
 * shrinks afterwards.  Used when the bitmap stays sparse: candidates on at
 * most ~2,048 distinct pages (a young generation is dense: 20k objects of
 * 3.13's generation-1 collections fit in a few hundred pages). */
#define PAGE_FILTER_BITS 13
static uint64_t cand_pages[(1 << PAGE_FILTER_BITS) / 64];

static inline uintptr_t
page_slot(const void *op)
{
    return (uintptr_t)(((uint64_t)((uintptr_t)op >> 12) * 0x9E3779B97F4A7C15ull)
                       >> (64 - PAGE_FILTER_BITS));
}

static Py_ssize_t cand_pages_set;     /* bits set since the last clearing */

static inline void
cand_pages_clear(void)
{
    memset(cand_pages, 0, sizeof(cand_pages));
    cand_pages_set = 0;
}

static inline void
cand_page_add(const void *op)
{
    uintptr_t h = page_slot(op);
    uint64_t bit = (uint64_t)1 << (h & 63);
    cand_pages_set += (cand_pages[h >> 6] & bit) == 0;
    cand_pages[h >> 6] |= bit;
}

/* Whether the bitmap is sparse enough to pay: at most a quarter of its
 * bits set (a referent on a page with no candidate is then dropped at
 * least 3 times in 4). */
#define PAGES_USEFUL ((1 << PAGE_FILTER_BITS) / 4)

static inline int
cand_pages_useful(void)
{
    return cand_pages_set <= PAGES_USEFUL;
}

/* 0: `op` is certainly not a candidate; 1: it may be. */
static inline int
cand_page_has(const void *op)
{
    uintptr_t h = page_slot(op);
    return (int)((cand_pages[h >> 6] >> (h & 63)) & 1);
}

/* ---- the candidates in list order ------------------------------------------
 *
 * Every walk of trial deletion goes down the candidate list, one dependent
 * miss per object once the list is out of cache.  On a real program it is:
 * aiohttp's young collections of ~4,000 objects traverse referents in a
 * 200k-row catalogue, whose lines evict the candidates' own between one
 * walk and the next, and move_unreachable spent two thirds of its samples
 * on the load of each next header.  update_refs, which walks the list
 * anyway, writes the candidates' addresses in list order into a buffer;
 * subtract_refs and move_unreachable prefetch from it ORDER_AHEAD objects
 * ahead.  Only a hint: a prefetch reads nothing, and nothing is freed or
 * reordered between update_refs and the first pass of move_unreachable
 * (objects set aside stay in the list; moves happen behind the scan or
 * at the tail), so the buffer names the list as those walks find it.
 * Taken from cg_order_min candidates (below that the list stays in cache and
 * the prefetching costs ~7 instructions per object for nothing); the buffer
 * grows to the largest candidate set seen, up to ORDER_MAX (a full
 * collection's whole heap goes without). */
Py_ssize_t cg_order_min = 2048;     /* _set_order_min(): a knob for measurements */
#define ORDER_AHEAD 12
#define ORDER_START ((Py_ssize_t)1 << 14)
#define ORDER_MAX ((Py_ssize_t)1 << 18)

/* The walks' step `step` (0 at the list's first object): prefetch the
 * object ORDER_AHEAD places further down `order` (which may be NULL). */
static inline void
order_prefetch(PyObject *const *order, Py_ssize_t norder, Py_ssize_t step)
{
    if (order != NULL && step + ORDER_AHEAD < norder) {
        cg_prefetch_object(order[step + ORDER_AHEAD], 0);
    }
}

static PyObject **order_buf;
static Py_ssize_t order_cap;        /* entries order_buf holds */
static Py_ssize_t order_wanted;     /* candidates of the last walk it could not hold */

/* The buffer, allocated at first use and grown (up to ORDER_MAX entries,
 * 2 MiB) after a walk it could not hold; *cap is set to its size, 0 if
 * there is none (an allocation failed: no hint, nothing else changes). */
static PyObject **
order_buffer(Py_ssize_t *cap)
{
    if (order_buf == NULL || (order_wanted > order_cap && order_cap < ORDER_MAX)) {
        Py_ssize_t want = order_cap > 0 ? order_cap : ORDER_START;
        while (want < order_wanted && want < ORDER_MAX) {
            want *= 2;
        }
        PyObject **grown = (PyObject **)PyMem_RawRealloc(order_buf, (size_t)want * sizeof(PyObject *));
        if (grown != NULL) {
            order_buf = grown;
            order_cap = want;
        }
        order_wanted = 0;
    }
    *cap = order_buf != NULL ? order_cap : 0;
    return order_buf;
}

/* A walk of n candidates found the buffer (of cap entries) too small: the
 * next one grows it, unless no buffer could hold them. */
static inline void
order_unheld(Py_ssize_t n, Py_ssize_t cap)
{
    if (n > cap && n <= ORDER_MAX) {
        order_wanted = n;
    }
}

/* ---- 2. update_refs ---------------------------------------------------- */

/* One object of update_refs: gc_refs := refcount, COLLECTING set; an
 * immortal object (3.12+) is set aside as the interpreter would.  Returns
 * whether `g` stays a candidate.  Setting aside unlinks `g`, which writes
 * its successor's prev; when the successor is already done (the walk from
 * the tail did it) that word holds its gc_refs, and is given back. */
static inline int
update_one(CgState *st, PyGC_Head *g)
{
    PyObject *op = CG_FROM_GC(g);
    if (CG_IMMORTAL_ACTION != CG_IMMORTAL_NONE && CG_IS_IMMORTAL(op)) {
        PyGC_Head *succ = cg_next(g);
        uintptr_t kept = succ->_gc_prev;
        if (CG_IMMORTAL_ACTION == CG_IMMORTAL_FREEZE) {
            cg_list_move(g, cg_permanent_head(st));
        }
        else {
            cg_list_untrack(g);
        }
        if (kept & CG_PREV_COLLECTING) {
            succ->_gc_prev = kept;
        }
        return 0;
    }
    g->_gc_prev = (g->_gc_prev & CG_PREV_FINALIZED)
                  | CG_PREV_COLLECTING
                  | ((uintptr_t)Py_REFCNT(op) << CG_PREV_SHIFT);
    return 1;
}

/* For each object in `young`: gc_refs := refcount, COLLECTING set.
 * Immortal objects (3.12+) are set aside as the interpreter would.
 * After: the list is singly linked (prev holds gc_refs); returns its size;
 * cand_pages holds the page of every object in it, unless it filled
 * past use (cand_pages_useful() then says so).
 *
 * The list is walked from both ends at once, forward by next links and
 * backward by prev links, until the walks meet: each step is a cache miss
 * on an object's header that depends on the previous one's, and two
 * independent chains keep two misses in flight (this walk is the first to
 * touch a young generation after the program ran, most of a young
 * collection's misses).  The backward walk reads a node's prev before
 * update_one overwrites it; next links are never written here except by
 * the unlinking of an immortal object, which reads only the node's own
 * links.  Every node is done exactly once: the walks stop when they meet
 * on a node (done once) or become adjacent. */
static Py_ssize_t
update_refs(CgState *st, PyGC_Head *young, PyObject ***order_out)
{
    Py_ssize_t n = 0;
    int record = 1;         /* until the bitmap is too full to be used */
    cand_pages_clear();
    /* The order (see "the candidates in list order" below): the forward
     * walk fills it from the front, the backward walk from the back. */
    Py_ssize_t cap;
    PyObject **order = order_buffer(&cap);
    Py_ssize_t front = 0, back = cap;
    *order_out = NULL;
    PyGC_Head *f = cg_next(young);
    PyGC_Head *b = cg_prev(young);
    if (f == young) {
        return 0;
    }
    for (;;) {
        if (f == b) {
            if (update_one(st, f)) {
                n++;
                if (record) {
                    cand_page_add(CG_FROM_GC(f));
                }
                if (order != NULL && front < back) {
                    order[front++] = CG_FROM_GC(f);
                }
                else {
                    order = NULL;
                }
            }
            break;
        }
        PyGC_Head *fn = cg_next(f);
        PyGC_Head *bp = cg_prev(b);
        int kf = update_one(st, f);
        int kb = update_one(st, b);
        n += kf + kb;
        if (record) {
            if (kf) {
                cand_page_add(CG_FROM_GC(f));
            }
            if (kb) {
                cand_page_add(CG_FROM_GC(b));
            }
            record = cand_pages_useful();
        }
        if (order != NULL) {
            if (back - front < 2) {
                order = NULL;       /* more candidates than it holds */
            }
            else {
                if (kf) {
                    order[front++] = CG_FROM_GC(f);
                }
                if (kb) {
                    order[--back] = CG_FROM_GC(b);
                }
            }
        }
        if (fn == b) {
            break;
        }
        f = fn;
        b = bp;
    }
    if (order != NULL) {
        /* the back part is already in list order (its last entry, the
         * tail, was written first, at the end) */
        memmove(order + front, order + back, (size_t)(cap - back) * sizeof(PyObject *));
        *order_out = order;
    }
    else {
        order_unheld(n, cap);
    }
    return n;
}

/* ---- 3. subtract_refs ---------------------------------------------------- */

/* The visitors of subtract_refs and move_unreachable skip the ring for
 * one referent: the last class they found not to be a candidate.  Every
 * instance of a heap type visits its class, and in a young collection that
 * class is nearly always old: it would cost a ring slot, two prefetches and
 * a tp_is_gc call per instance per pass to learn nothing.  Sound because
 * within each phase an object never becomes a candidate (update_refs sets
 * COLLECTING before subtract_refs; move_unreachable only clears it).
 * NULL referents (a tp_traverse may visit NULL) are dropped before the
 * ring: a parked NULL would be counted by CgSlots and then read. */
/* ---- heavy objects in young collections ----------------------------------
 *
 * A young object whose traversal visits tens of thousands of references
 * makes a young collection of a few thousand objects cost milliseconds:
 * most of its referents are old, and each one's header is a cache miss.
 * Sphinx under bounded pauses: the C pickler of pickle.dump, whose memo
 * holds every object pickled so far (60-80k), sits in generation 0 while
 * it runs, and young collections of 5-8k objects took 4-5 ms.  When such
 * an object is referenced from outside the young generation (the C
 * function running it holds it), trial deletion need not traverse it.
 *
 * Objects of a *heavy type* (learned, below) are set aside by subtract_refs
 * (at most HEAVY_MAX per collection; more are traversed as usual) and
 * settled after the others: (1) a walk of each one's references compares
 * them with the set-aside objects only, reading no header, and subtracts
 * those; each one's gc_refs is then exact: its references from outside
 * the young generation.  (2) One with gc_refs > 0 is *skipped*: its
 * references to the other candidates are not subtracted (those to
 * set-aside objects, subtracted by (1), are given back), and
 * move_unreachable does not traverse it.  (3) The others are traversed as
 * usual, minus the set-aside objects (already subtracted).
 *
 * Why the verdict is the standard one.  A skipped X has references from
 * outside, so in the standard algorithm X is a root of move_unreachable
 * and everything X refers to is reachable.  Leaving X's references
 * unsubtracted only makes X's referents roots themselves: the reachable
 * set, the closure of the roots, is the same, and X's own count, on which
 * the skip was decided, is exact.
 * Not traversing X in move_unreachable loses nothing, its referents being
 * roots already.  Only what the collection reads changes.
 *
 * Learning.  After a young collection slower than HEAVY_SLOW at more than
 * HEAVY_NS per candidate, the survivors' references are counted (their
 * traversals, reading no referent); the type of one with more than
 * HEAVY_VISITS becomes heavy (HEAVY_TYPES at most; never an exact list,
 * tuple, dict or set, too common to set aside by type).  A freed type's
 * address reused by another type only makes that one's instances set
 * aside: work, never a verdict.  A walk that finds no new heavy type makes
 * the next ones wait: 1, 3, 7 ... up to HEAVY_BACKOFF slow collections go
 * by unlearned (aiohttp's young collections of ~4,000 objects run at
 * ~300 ns per object, all misses on old rows, with no heavy object; the walk
 * after each was 5 % of their time).  Finding one starts over at once. */
#define HEAVY_MAX 16
#define HEAVY_TYPES 8
#define HEAVY_VISITS 4096
#define HEAVY_SLOW 1e-3
#define HEAVY_NS 300e-9
#define HEAVY_BACKOFF 63

static PyTypeObject *heavy_types[HEAVY_TYPES];
static int heavy_ntypes = 0;

typedef struct {
    PyObject *op[HEAVY_MAX];
    unsigned char skipped[HEAVY_MAX];
    int n, nskipped;
    uint64_t bloom;         /* a bit per address class of the set-aside */
} Heavy;

static inline int
is_heavy_type(PyTypeObject *tp)
{
    for (int i = 0; i < heavy_ntypes; i++) {
        if (heavy_types[i] == tp) {
            return 1;
        }
    }
    return 0;
}

static inline uint64_t
heavy_bit(PyObject *op)
{
    return (uint64_t)1 << (((uintptr_t)op >> 4) & 63);
}

/* Sets `op` aside if it is of a heavy type and there is room. */
static inline int
heavy_set_aside(Heavy *h, PyObject *op)
{
    if (h == NULL || heavy_ntypes == 0 || h->n >= HEAVY_MAX || !is_heavy_type(Py_TYPE(op))) {
        return 0;
    }
    h->op[h->n] = op;
    h->skipped[h->n] = 0;
    h->n++;
    h->bloom |= heavy_bit(op);
    return 1;
}

static inline int
heavy_index(const Heavy *h, PyObject *op)
{
    if (!(h->bloom & heavy_bit(op))) {
        return -1;
    }
    for (int i = 0; i < h->n; i++) {
        if (h->op[i] == op) {
            return i;
        }
    }
    return -1;
}

typedef struct {
    CgSlots ring;
    PyObject *known;        /* a class found not to be a candidate, or NULL */
    PyGC_Head *reachable;   /* move_unreachable's young list */
    Py_ssize_t older;       /* the probe's count (see subtract_refs) */
    Heavy *heavy;           /* young collections: the set-aside, or NULL */
    int pages;              /* cand_pages holds every candidate's page */
} VisitArgs;

static inline void
visit_args_init(VisitArgs *a, PyGC_Head *reachable, Heavy *heavy, int pages)
{
    cg_slots_init(&a->ring);
    a->known = NULL;
    a->reachable = reachable;
    a->older = 0;
    a->heavy = heavy;
    a->pages = pages;
}

static inline void
decref_candidate(VisitArgs *a, PyObject *op)
{
    if (cg_is_gc(op)) {
        PyGC_Head *g = CG_AS_GC(op);
        if (is_candidate(g)) {
            g->_gc_prev -= ((uintptr_t)1 << CG_PREV_SHIFT);
            return;
        }
    }
    if (PyType_Check(op)) {
        a->known = op;
    }
}

/* decref_candidate, counting the referents that are containers outside the
 * candidate set and not classes: in a young collection, the older objects
 * its candidates refer to (see subtract_refs). */
static int
visit_decref_probe(PyObject *op, void *arg)
{
    VisitArgs *a = (VisitArgs *)arg;
    if (a->pages && !cand_page_has(op)) {
        return 0;       /* not a candidate, and not read: no miss to hide */
    }
    if (op != a->known && op != NULL) {
        if (cg_is_gc(op) && !is_candidate(CG_AS_GC(op)) && !PyType_Check(op)) {
            a->older++;
        }
        decref_candidate(a, op);
    }
    return 0;
}

/* Parks each referent in the ring (gclist.h) and hands the oldest one
 * parked to `then` (decref_candidate, or decref_or_adopt): subtractions
 * commute, so deferring them changes nothing but when the referent's
 * header is read. */
static inline __attribute__((always_inline)) int
visit_through_ring(VisitArgs *a, PyObject *op, void (*then)(VisitArgs *, PyObject *))
{
    if (op == a->known || op == NULL) {
        return 0;
    }
    PyObject *due = cg_slots_swap(&a->ring, op);
    if (due != NULL) {
        then(a, due);
    }
    return 0;
}

static int
visit_decref(PyObject *op, void *arg)
{
    return visit_through_ring((VisitArgs *)arg, op, decref_candidate);
}

/* Is `op` an atom (not a container)?  Without the ring the referent's
 * header is read at once anyway, so the visitors below ask this first: an
 * atom then costs a load and a test.  (Every class is a container, its
 * metatype having Py_TPFLAGS_HAVE_GC, so an atom is never a class and
 * never needs the `known` test.) */
static inline int
is_atom(PyObject *op)
{
    return op == NULL || !(Py_TYPE(op)->tp_flags & Py_TPFLAGS_HAVE_GC);
}

/* The same without the ring, for small candidate sets (see
 * deduce_unreachable). */
static int
visit_decref_now(PyObject *op, void *arg)
{
    VisitArgs *a = (VisitArgs *)arg;
    if (!is_atom(op) && op != a->known) {
        decref_candidate(a, op);
    }
    return 0;
}

/* visit_decref_now behind the candidate-pages filter: a referent on a page
 * with no candidate is not read at all. */
static int
visit_decref_paged(PyObject *op, void *arg)
{
    VisitArgs *a = (VisitArgs *)arg;
    if (cand_page_has(op) && !is_atom(op) && op != a->known) {
        decref_candidate(a, op);
    }
    return 0;
}

/* Whether the prefetch ring pays for itself.  It hides the misses on
 * referents that are not in cache, at ~10 instructions per referent.  A
 * young generation was just allocated and is in cache, and so are the
 * atoms and classes it refers to; what misses is the older containers its
 * objects refer to.  So for a young collection (`probe`), subtract_refs
 * traverses its first RING_PROBE candidates without the ring, counting
 * those older referents, and takes the ring for the rest (and for
 * move_unreachable) only if there were at least RING_PROBE_OLDER per 64
 * candidates.  Measured on paired young collections over 1M-object heaps
 * (benchmarks/bench_young_threshold.py's shapes): stdlib ASTs, whose young
 * objects refer to each other, are 1.1x the built-in's without the ring
 * and 1.2-1.5x with it; shapes whose new objects refer to old ones are
 * 0.55-0.8x with it and ~1.0x without, from ~5,000 candidates. */
#define RING_PROBE 512
Py_ssize_t cg_ring_probe_older = 24;     /* per 64 candidates */
Py_ssize_t cg_last_ring_probe = -1;

/* Settling the set-aside (below): which one is being walked, and how many
 * references each holds to each. */
typedef struct {
    Heavy *h;
    int from;
    Py_ssize_t among[HEAVY_MAX][HEAVY_MAX];
} Among;

/* Step (1) of settling the set-aside: a reference to one of them. */
static int
visit_heavy_among(PyObject *op, void *arg)
{
    Among *m = (Among *)arg;
    int j;
    if (op != NULL && (j = heavy_index(m->h, op)) >= 0) {
        CG_AS_GC(op)->_gc_prev -= ((uintptr_t)1 << CG_PREV_SHIFT);
        m->among[m->from][j]++;
    }
    return 0;
}

/* Step (3): as visit_decref_now, the set-aside excepted. */
static int
visit_decref_not_heavy(PyObject *op, void *arg)
{
    VisitArgs *a = (VisitArgs *)arg;
    if (!is_atom(op) && op != a->known && heavy_index(a->heavy, op) < 0) {
        decref_candidate(a, op);
    }
    return 0;
}

/* Settles the set-aside objects (see "heavy objects" above).  After: each
 * one either had its references subtracted as subtract_refs would, or has
 * gc_refs > 0 and is marked skipped, and every reference a skipped one
 * holds is unsubtracted.  That last part matters: step (1) subtracted the
 * references between set-aside objects, and move_unreachable does not
 * traverse a skipped one, so a set-aside object referenced only by a
 * skipped one would otherwise be taken for garbage (the fuzzer's
 * cyclegc-heavy mode found that at once: a reachable dict cleared).  The
 * skips are decided on the exact counts first; giving back afterwards
 * adds only references held by skipped objects, which are reachable, so
 * the reachable set is still the standard one.  Step (1) counts what each
 * set-aside object holds to each other one, so that giving back needs no
 * second walk: a skipped object (the C pickler, whose memo is its whole
 * traversal) is walked once. */
static void
settle_heavy(VisitArgs *a)
{
    Heavy *h = a->heavy;
    Among m;
    m.h = h;
    for (int i = 0; i < h->n; i++) {
        memset(m.among[i], 0, (size_t)h->n * sizeof(Py_ssize_t));
    }
    for (int i = 0; i < h->n; i++) {
        PyObject *op = h->op[i];
        m.from = i;
        Py_TYPE(op)->tp_traverse(op, visit_heavy_among, &m);
    }
    for (int i = 0; i < h->n; i++) {
        if (refs_of(CG_AS_GC(h->op[i])) > 0) {
            h->skipped[i] = 1;
            h->nskipped++;
        }
    }
    for (int i = 0; i < h->n; i++) {
        PyObject *op = h->op[i];
        if (h->skipped[i]) {
            for (int j = 0; j < h->n; j++) {
                CG_AS_GC(h->op[j])->_gc_prev += (uintptr_t)m.among[i][j] << CG_PREV_SHIFT;
            }
        }
        else {
            Py_TYPE(op)->tp_traverse(op, visit_decref_not_heavy, a);
        }
    }
}

/* After: each candidate's gc_refs counts the references to it from outside
 * the candidate set (>= 0 for correct refcounts); the ring is drained.
 * Returns whether it used the ring (`ring`: 0 no, 1 yes, 2 probe first). */
static inline __attribute__((always_inline)) int     /* one caller */
subtract_refs(PyGC_Head *young, int ring, Heavy *heavy, int pages,
              PyObject *const *order, Py_ssize_t norder)
{
    Py_ssize_t step = 0;
    VisitArgs a;
    visit_args_init(&a, NULL, heavy, pages);
    PyGC_Head *g = cg_next(young);
    if (ring == 2) {
        int i = 0;
        for (; i < RING_PROBE && g != young; i++, g = cg_next(g)) {
            PyObject *op = CG_FROM_GC(g);
            order_prefetch(order, norder, step++);
            if (heavy_set_aside(heavy, op)) {
                continue;
            }
            Py_TYPE(op)->tp_traverse(op, visit_decref_probe, &a);
        }
        cg_last_ring_probe = a.older * 64 / (i > 0 ? i : 1);
        ring = a.older * 64 >= cg_ring_probe_older * i;
    }
    visitproc visit = ring ? visit_decref : pages ? visit_decref_paged : visit_decref_now;
    for (; g != young; g = cg_next(g)) {
        PyObject *op = CG_FROM_GC(g);
        if (order != NULL) {
            order_prefetch(order, norder, step++);
        }
        else if (ring) {
            CG_PREFETCH(cg_next(g));    /* its header loads while `op` is traversed */
        }
        if (heavy_set_aside(heavy, op)) {
            continue;
        }
        Py_TYPE(op)->tp_traverse(op, visit, &a);
    }
    while (a.ring.n > 0) {
        decref_candidate(&a, cg_slots_pop(&a.ring));
    }
    if (heavy != NULL && heavy->n > 0) {
        settle_heavy(&a);
    }
    return ring;
}

/* ---- 2+3 in one walk: full collections without marking --------------------
 *
 * update_refs walks the whole heap once to set every gc_refs before
 * subtract_refs walks it again; a full collection without marking (the
 * built-in's survivors' order, design.md) pays three walks of the list.
 * When every tracked object that is not immortal is a candidate (the
 * condition marking needs too: the permanent generation holds only
 * immortals, no list of the bounded mode holds objects, nothing is parked)
 * the two walks can be one: a referent the walk has not reached yet is
 * tracked iff it is a candidate, so the visitor sets its gc_refs from its
 * refcount first (COLLECTING marks it done) and then subtracts, and the
 * walk, reaching an object already set, only traverses it.  An immortal
 * object is never set by the visitor; the walk sets it aside, as
 * update_one does.  After: what update_refs and subtract_refs leave. */
int cg_fused_full = 1;      /* _set_fused_full(): a knob for measurements */

static inline void
decref_or_adopt(VisitArgs *a, PyObject *op)
{
    if (cg_is_gc(op)) {
        PyGC_Head *g = CG_AS_GC(op);
        if (!is_candidate(g) && g->_gc_next != 0
            && !(CG_IMMORTAL_ACTION != CG_IMMORTAL_NONE && CG_IS_IMMORTAL(op))) {
            /* tracked, ahead of the walk: a candidate, its count set now */
            g->_gc_prev = (g->_gc_prev & CG_PREV_FINALIZED)
                          | CG_PREV_COLLECTING
                          | ((uintptr_t)Py_REFCNT(op) << CG_PREV_SHIFT);
        }
    }
    decref_candidate(a, op);
}

static int
visit_decref_adopt(PyObject *op, void *arg)
{
    return visit_through_ring((VisitArgs *)arg, op, decref_or_adopt);
}

static Py_NO_INLINE Py_ssize_t      /* rare: kept out of the young collections' code */
update_subtract_full(CgState *st, PyGC_Head *young, PyObject ***order_out)
{
    Py_ssize_t n = 0, cap;
    PyObject **order = order_buffer(&cap);
    VisitArgs a;
    visit_args_init(&a, NULL, NULL, 0);
    *order_out = NULL;
    PyGC_Head *g = cg_next(young);
    while (g != young) {
        PyGC_Head *next = cg_next(g);
        CG_PREFETCH(next);
        if (!is_candidate(g) && !update_one(st, g)) {
            g = next;       /* an immortal, set aside */
            continue;
        }
        PyObject *op = CG_FROM_GC(g);
        if (order != NULL) {
            if (n < cap) {
                order[n] = op;
            }
            else {
                order = NULL;
            }
        }
        n++;
        Py_TYPE(op)->tp_traverse(op, visit_decref_adopt, &a);
        g = next;
    }
    while (a.ring.n > 0) {
        decref_or_adopt(&a, cg_slots_pop(&a.ring));
    }
    if (order != NULL) {
        *order_out = order;
    }
    else {
        order_unheld(n, cap);
    }
    return n;
}

/* ---- 4. move_unreachable ------------------------------------------------ */

/* A reachable object's referent `op`: if it is a candidate it is reachable
 * too.  If it was already moved to the unreachable list it comes back to
 * the tail of `reachable`, to be scanned in turn. */
static void
reach(VisitArgs *a, PyObject *op)
{
    PyGC_Head *reachable = a->reachable;
    if (!cg_is_gc(op)) {
        if (PyType_Check(op)) {
            a->known = op;
        }
        return;
    }
    PyGC_Head *g = CG_AS_GC(op);
    if (!is_candidate(g)) {
        /* older generation, untracked, or already scanned */
        if (PyType_Check(op)) {
            a->known = op;
        }
        return;
    }
    if (g->_gc_next & CG_NEXT_UNREACHABLE) {
        /* Unlink from the unreachable list (its prev links are valid). */
        PyGC_Head *prev = cg_prev(g);
        PyGC_Head *next = (PyGC_Head *)(g->_gc_next & ~CG_NEXT_UNREACHABLE);
        prev->_gc_next = g->_gc_next;           /* keeps the UNREACHABLE bit */
        cg_set_prev(next, prev);
        cg_list_append(g, reachable);           /* clears the bit on g */
        set_refs(g, 1);
    }
    else if (refs_of(g) == 0) {
        set_refs(g, 1);     /* still ahead of the scan: it will be visited */
    }
}

/* Parks each referent; reaches the oldest parked one.  Deferring reach() is
 * sound: whenever it runs, an object ahead of the scan gets gc_refs 1 (the
 * scan keeps it), one the scan has moved to `unreachable` moves back to
 * the tail (the scan visits it again), one already scanned is left alone;
 * and move_unreachable drains the ring before it may end.
 *
 * It also leaves the survivors in the built-in's order, which decides
 * which tuples are untracked ("untracking in the scan") and the order of
 * the older generation afterwards.  Two rules see to it: (1) the scan,
 * meeting an object with gc_refs 0, looks for it among the parked pointers
 * (compares only), and keeps it in place if it is there, as the built-in,
 * whose reach would already have run, does; (2) the ring is drained oldest
 * first, so objects move back to the tail in the order they were visited,
 * as the built-in moves them.  Without them, a young collection taking the
 * ring left tuples tracked that the built-in untracks (a test compares the
 * two on nested tuples). */
static int
visit_reachable(PyObject *op, void *arg)
{
    VisitArgs *a = (VisitArgs *)arg;
    if (op == a->known || op == NULL) {
        return 0;       /* a class known not to be a candidate, or none */
    }
    PyObject *due = cg_slots_swap(&a->ring, op);
    if (due != NULL) {
        reach(a, due);
    }
    return 0;
}

/* Scans `young` in order.  Invariant: everything left of the scan point is
 * reachable from outside the candidate set, has been traversed, and has a
 * valid prev pointer and no COLLECTING bit; everything moved to
 * `unreachable` had gc_refs == 0 when reached and nothing scanned so far
 * refers to it, except through a referent still parked in the ring.
 * young->_gc_prev always names the tail of the young chain (also when the
 * scan moves that tail away: a parked referent may be appended after it).
 * The scan ends only when it reached the end with the ring empty.
 * After: `young` is a normal list of survivors; `unreachable` holds the rest,
 * still COLLECTING, each with the UNREACHABLE bit in _gc_next (the head's
 * own next is clean). */
static int
visit_reachable_now(PyObject *op, void *arg)
{
    VisitArgs *a = (VisitArgs *)arg;
    if (!is_atom(op) && op != a->known) {
        reach(a, op);
    }
    return 0;
}

/* The same behind the candidate-pages filter. */
static int
visit_reachable_paged(PyObject *op, void *arg)
{
    VisitArgs *a = (VisitArgs *)arg;
    if (cand_page_has(op) && !is_atom(op) && op != a->known) {
        reach(a, op);
    }
    return 0;
}

/* Untracking in the scan.  Survivors that can never be part of a cycle stop
 * being tracked, as the built-in does after its move_unreachable: exact
 * tuples of atoms on every collection, exact dicts of atoms on full ones
 * only (a dict re-tracks itself when it gets a container: checking young
 * dicts would be quadratic); see cg_is_atom_container.  The built-in does
 * it in a second walk of the survivors; the scan below does it where it
 * keeps each one, having just read its type to traverse it, so the walk
 * and its cache misses go (on aiohttp's young collections that walk was a
 * tenth of their time).
 *
 * Why the same objects end untracked.  Whether a tuple or dict can be
 * untracked depends on which tuples it holds are still tracked.  The
 * survivors list the scan leaves is in the order the scan kept them (kept
 * objects are appended in turn; one moved back from `unreachable` goes to
 * the tail and is kept when the scan reaches it), and the built-in's walk
 * goes down that list.  So when the scan looks at X, the tuples untracked
 * so far are exactly those the walk would have untracked before reaching
 * X: the survivors before X.  A tuple X holds that is ahead of the scan, in
 * `unreachable` or parked in the ring is after X in the final list and
 * still tracked in both (a list node in `unreachable` keeps a non-zero
 * _gc_next).  Only the deduce_unreachable of a collection untracks; that of
 * resurrection and the bounded-mode slices pass UNTRACK_NONE. */
enum { UNTRACK_NONE, UNTRACK_TUPLES, UNTRACK_TUPLES_DICTS };

static inline int
atom_container_now(PyObject *op, int untrack)
{
    PyTypeObject *tp = Py_TYPE(op);
    return (tp == &PyTuple_Type || (untrack == UNTRACK_TUPLES_DICTS && tp == &PyDict_Type))
        && cg_is_atom_container(op, untrack == UNTRACK_TUPLES_DICTS);
}

/* The scan itself.  `order` (may be NULL): the first `norder` objects of
 * `young` in list order; the scan's first pass follows it exactly (moves
 * and untracking only touch the scan point, what is behind it, or the
 * tail), so it prefetches ORDER_AHEAD objects ahead from it: the walk is
 * otherwise a chain of dependent misses, the whole cost of moving garbage,
 * which is not traversed.  `extras` is a constant at each call (see
 * move_unreachable), so the small collections' version carries none of
 * the prefetching and skipping, which cost them ~7 instructions per
 * object (callgrind: move_unreachable +47 %).  Returns how many survivors
 * it kept (untracked ones not counted). */
static inline __attribute__((always_inline)) Py_ssize_t
scan_young(VisitArgs *args, PyGC_Head *young, PyGC_Head *unreachable, visitproc visit,
           Heavy *heavy, PyObject *const *order, Py_ssize_t norder, const int extras,
           int untrack)
{
    Py_ssize_t step = 0;
    Py_ssize_t kept = 0;
    int skips = extras && heavy != NULL && heavy->nskipped > 0;
    PyGC_Head *prev = young;
    PyGC_Head *g = cg_next(young);
    for (;;) {
        while (g != young) {
            if (extras) {
                order_prefetch(order, norder, step++);
            }
            if (refs_of(g) > 0
                || (args->ring.n > 0 && cg_slots_holds(&args->ring, CG_FROM_GC(g)))) {
                PyObject *op = CG_FROM_GC(g);
                int i;
                if (extras) {
                    CG_PREFETCH(cg_next(g));
                }
                /* The traversal may append to young, changing g->_gc_next.
                 * A skipped heavy object's referents are roots already. */
                if (!skips || (i = heavy_index(heavy, op)) < 0 || !heavy->skipped[i]) {
                    Py_TYPE(op)->tp_traverse(op, visit, args);
                }
                if (untrack && atom_container_now(op, untrack)) {
                    /* untracked where it stands (see "untracking in the
                     * scan" above): unlinked as a move to `unreachable`
                     * would, then its header cleared as untracking does */
                    prev->_gc_next = g->_gc_next;
                    if (young->_gc_prev == (uintptr_t)g) {
                        young->_gc_prev = (uintptr_t)prev;
                    }
                    g->_gc_next = 0;
                    g->_gc_prev &= CG_PREV_FINALIZED;
                }
                else {
                    cg_set_prev(g, prev);
                    clear_candidate(g);
                    prev = g;
                    kept++;
                }
            }
            else {
                prev->_gc_next = g->_gc_next;
                if (young->_gc_prev == (uintptr_t)g) {
                    young->_gc_prev = (uintptr_t)prev;
                }
                PyGC_Head *last = (PyGC_Head *)unreachable->_gc_prev;
                last->_gc_next = CG_NEXT_UNREACHABLE | (uintptr_t)g;
                cg_set_prev(g, last);
                g->_gc_next = CG_NEXT_UNREACHABLE | (uintptr_t)unreachable;
                unreachable->_gc_prev = (uintptr_t)g;
            }
            g = cg_next(prev);
        }
        if (args->ring.n == 0) {
            break;
        }
        while (args->ring.n > 0) {
            reach(args, cg_slots_pop_oldest(&args->ring));
        }
        g = cg_next(prev);
    }
    young->_gc_prev = (uintptr_t)prev;
    return kept;
}

static Py_ssize_t
move_unreachable(PyGC_Head *young, PyGC_Head *unreachable, int ring, Heavy *heavy,
                 PyObject *const *order, Py_ssize_t norder, int pages, int untrack)
{
    Py_ssize_t kept;
    VisitArgs args;
    visit_args_init(&args, young, heavy, pages);
    visitproc visit = ring ? visit_reachable : pages ? visit_reachable_paged : visit_reachable_now;
    if (ring || order != NULL || (heavy != NULL && heavy->nskipped > 0)) {
        kept = scan_young(&args, young, unreachable, visit, heavy, order, norder, 1, untrack);
    }
    else {
        kept = scan_young(&args, young, unreachable, visit, NULL, NULL, 0, 0, untrack);
    }
    unreachable->_gc_next &= ~CG_NEXT_UNREACHABLE;
    return kept;
}

/* Steps 2-4 on `candidates`, a normal list.  No object outside it may carry
 * the COLLECTING bit, or it would be mistaken for a candidate.  `fused`:
 * steps 2 and 3 in one walk (update_subtract_full; `candidates` is the
 * whole heap and heap_all_candidates() holds). */
static Py_ssize_t
deduce_unreachable_as(CgState *st, PyGC_Head *candidates, PyGC_Head *unreachable,
                      int young, int untrack, Py_ssize_t *survivors, int fused)
{
    PyObject **order;
    Py_ssize_t n;
    int pages = 0, ring;
    Heavy heavy;
    heavy.n = heavy.nskipped = 0;
    heavy.bloom = 0;
    Heavy *h = young && heavy_ntypes > 0 ? &heavy : NULL;
    if (fused) {
        n = update_subtract_full(st, candidates, &order);
        ring = n >= cg_ring_min_candidates;
    }
    else {
        n = update_refs(st, candidates, &order);
        pages = cand_pages_useful();
        ring = n < cg_ring_min_candidates ? 0 : young ? 2 : 1;
    }
    if (n < cg_order_min) {
        order = NULL;
    }
    if (!fused) {
        ring = subtract_refs(candidates, ring, h, pages, order, n);
    }
    cg_list_init(unreachable);
    Py_ssize_t kept = move_unreachable(candidates, unreachable, ring, h, order,
                                       order != NULL ? n : 0, pages, untrack);
    if (survivors != NULL) {
        *survivors = kept;
    }
    cg_last_heavy_skipped = h != NULL ? h->nskipped : 0;
    return n;
}

static Py_ssize_t
deduce_unreachable(CgState *st, PyGC_Head *candidates, PyGC_Head *unreachable,
                   int young, int untrack, Py_ssize_t *survivors)
{
    return deduce_unreachable_as(st, candidates, unreachable, young, untrack, survivors, 0);
}

static void
clear_unreachable_bits(PyGC_Head *list)
{
    for (PyGC_Head *g = (PyGC_Head *)(list->_gc_next & ~CG_NEXT_UNREACHABLE);
         g != list;
         g = (PyGC_Head *)(g->_gc_next & ~CG_NEXT_UNREACHABLE)) {
        g->_gc_next &= ~CG_NEXT_UNREACHABLE;
    }
}

/* ---- 5. untracking ------------------------------------------------------ */

/* Could `op` ever be part of a cycle through a container holding it? */
static inline int
may_be_tracked(PyObject *op)
{
    if (!cg_is_gc(op)) {
        return 0;
    }
    if (PyTuple_CheckExact(op)) {
        return cg_is_tracked(op);
    }
    return 1;
}

/* Could a container holding only what `op` holds be part of a cycle? */
static int
tuple_holds_only_atoms(PyObject *op)
{
    Py_ssize_t n = PyTuple_GET_SIZE(op);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(op, i);
        if (item == NULL || may_be_tracked(item)) {
            return 0;
        }
    }
    return 1;
}

static int
dict_holds_only_atoms(PyObject *op)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(op, &pos, &key, &value)) {
        if (may_be_tracked(key) || may_be_tracked(value)) {
            return 0;
        }
    }
    return 1;
}

/* Is `op` an exact tuple (or, on full collections, an exact dict) that
 * holds no container, so that it can stop being tracked? */
int
cg_is_atom_container(PyObject *op, int full)
{
    PyTypeObject *tp = Py_TYPE(op);
    return (tp == &PyTuple_Type && tuple_holds_only_atoms(op))
        || (full && tp == &PyDict_Type && dict_holds_only_atoms(op));
}

/* ---- 6. legacy finalizers ------------------------------------------------ */

/* What the steps after move_legacy_finalizers will find in the garbage,
 * learnt in the same walk (every garbage object's header and type are read
 * there anyway): most garbage has no weakref and no finalizer to call, and
 * then the walks of steps 7-9 have nothing to do. */
typedef struct {
    Py_ssize_t count;       /* objects left in `unreachable` */
    int weakrefs;           /* some object is a weakref or has weakrefs */
    int finalizers;         /* some object has a tp_finalize not yet called */
} GarbageSurvey;

/* Clears the UNREACHABLE bits of `unreachable` (it becomes a normal list) and
 * moves the objects with a legacy tp_del to `finalizers`, with COLLECTING
 * cleared: they will not be collected.  Fills `survey` for the objects left
 * (the type's answers are cached: garbage comes in runs of one type). */
static void
move_legacy_finalizers(PyGC_Head *unreachable, PyGC_Head *finalizers,
                       GarbageSurvey *survey)
{
    PyTypeObject *last = NULL;
    int is_weakref = 0, has_finalize = 0;
    Py_ssize_t count = 0;
    int weakrefs = 0, finals = 0;
    PyGC_Head *g = cg_next(unreachable);
    while (g != unreachable) {
        g->_gc_next &= ~CG_NEXT_UNREACHABLE;
        PyGC_Head *next = cg_next(g);
        PyObject *op = CG_FROM_GC(g);
        PyTypeObject *tp = Py_TYPE(op);
        if (tp->tp_del != NULL) {
            clear_candidate(g);
            cg_list_move(g, finalizers);
        }
        else {
            if (tp != last) {
                last = tp;
                is_weakref = PyWeakref_Check(op);
                has_finalize = tp->tp_finalize != NULL;
            }
            count++;
            weakrefs |= is_weakref
                        || (tp->tp_weaklistoffset != 0 && *cg_weakrefs_listptr(op) != NULL);
            finals |= has_finalize && !(g->_gc_prev & CG_PREV_FINALIZED);
        }
        g = next;
    }
    survey->count = count;
    survey->weakrefs = weakrefs;
    survey->finalizers = finals;
}

static int
visit_move_to(PyObject *op, void *arg)
{
    if (cg_is_gc(op)) {
        PyGC_Head *g = CG_AS_GC(op);
        if (is_candidate(g)) {
            cg_list_move(g, (PyGC_Head *)arg);
            clear_candidate(g);
        }
    }
    return 0;
}

/* Everything a legacy finalizer can reach is kept alive with it.  After: no
 * object in `unreachable` is referenced by one in `finalizers`. */
static void
move_legacy_finalizer_reachable(PyGC_Head *finalizers)
{
    for (PyGC_Head *g = cg_next(finalizers); g != finalizers; g = cg_next(g)) {
        PyObject *op = CG_FROM_GC(g);    /* the list grows as we go */
        Py_TYPE(op)->tp_traverse(op, visit_move_to, finalizers);
    }
}

/* ---- 7. weakrefs --------------------------------------------------------- */

/* Clears every weakref that is garbage or refers to garbage, so no callback
 * or later lookup can see an object being collected.  Then runs the callbacks
 * of the cleared weakrefs that are themselves alive (a weakref that dies with
 * its referent never calls back).  Returns how many of those live weakrefs
 * were freed by running their callback.  `unreachable` is a normal list,
 * all COLLECTING; weakrefs that survive their callback go to `old`. */
Py_ssize_t
cg_handle_weakrefs(PyGC_Head *unreachable, PyGC_Head *old, int *called)
{
    PyGC_Head to_call;
    Py_ssize_t freed = 0;
    PyTypeObject *last = NULL;
    int is_weakref = 0;
    cg_list_init(&to_call);

    for (PyGC_Head *g = cg_next(unreachable); g != unreachable; g = cg_next(g)) {
        PyObject *op = CG_FROM_GC(g);
        if (Py_TYPE(op) != last) {
            last = Py_TYPE(op);
            is_weakref = PyWeakref_Check(op);
        }
        if (is_weakref) {
            _PyWeakref_ClearRef((PyWeakReference *)op);
        }
        if (Py_TYPE(op)->tp_weaklistoffset == 0) {
            continue;
        }
        PyWeakReference **list = cg_weakrefs_listptr(op);
        /* Clearing a weakref unlinks it, so the head changes each time. */
        for (PyWeakReference *wr = *list; wr != NULL; wr = *list) {
            _PyWeakref_ClearRef(wr);
            if (wr->wr_callback == NULL) {
                continue;
            }
            if (is_candidate(CG_AS_GC(wr))) {
                continue;       /* the weakref is garbage too: no callback */
            }
            Py_INCREF(wr);
            cg_list_move(CG_AS_GC(wr), &to_call);
        }
    }

    /* No weakref can reach the garbage now, so callbacks are safe. */
    *called = !cg_list_is_empty(&to_call);
    while (!cg_list_is_empty(&to_call)) {
        PyGC_Head *g = cg_next(&to_call);
        PyWeakReference *wr = (PyWeakReference *)CG_FROM_GC(g);
        PyObject *callback = wr->wr_callback;
        PyObject *res = PyObject_CallOneArg(callback, (PyObject *)wr);
        if (res == NULL) {
            PyErr_WriteUnraisable(callback);
        }
        else {
            Py_DECREF(res);
        }
        Py_DECREF(wr);
        if (cg_next(&to_call) == g) {
            cg_list_move(g, old);   /* still alive */
        }
        else {
            freed++;
        }
    }
    return freed;
}

/* ---- 8. finalizers ------------------------------------------------------- */

/* Calls tp_finalize once on each object of `garbage` that has one and was
 * never finalized (FINALIZED bit set first).  Objects may be freed or
 * untracked meanwhile: each is moved to a private list before its finalizer
 * runs.  After: `garbage` holds the objects still tracked, in order.
 * Returns how many finalizers it called. */
static Py_ssize_t
finalize_garbage(PyGC_Head *garbage)
{
    Py_ssize_t called = 0;
    PyGC_Head seen;
    cg_list_init(&seen);
    while (!cg_list_is_empty(garbage)) {
        PyGC_Head *g = cg_next(garbage);
        PyObject *op = CG_FROM_GC(g);
        cg_list_move(g, &seen);
        destructor finalize = Py_TYPE(op)->tp_finalize;
        if (finalize != NULL && !(g->_gc_prev & CG_PREV_FINALIZED)) {
            g->_gc_prev |= CG_PREV_FINALIZED;
            Py_INCREF(op);
            finalize(op);
            Py_DECREF(op);
            called++;
        }
    }
    cg_list_merge(&seen, garbage);
    return called;
}

/* ---- 9. resurrection ----------------------------------------------------- */

/* Finalizers may have made garbage reachable again.  Trial deletion on the
 * garbage alone tells which: anything referenced from outside it now, or
 * reachable from such an object, survives and moves to `old`.  After:
 * `still_unreachable` is a normal list of COLLECTING objects, true garbage. */
static void
handle_resurrected(CgState *st, PyGC_Head *garbage, PyGC_Head *still_unreachable,
                   PyGC_Head *old)
{
    deduce_unreachable(st, garbage, still_unreachable, 0, UNTRACK_NONE, NULL);
    clear_unreachable_bits(still_unreachable);
    cg_list_merge(garbage, old);
}

/* ---- 10. delete_garbage -------------------------------------------------- */

/* tp_clear on one garbage object, held meanwhile (clearing may drop the
 * last other reference); an error goes to sys.unraisablehook.  Used here
 * and by incremental.c's freeing of parked garbage. */
void
cg_clear_garbage_object(PyObject *op)
{
    inquiry clear = Py_TYPE(op)->tp_clear;
    if (clear != NULL) {
        Py_INCREF(op);
        (void)clear(op);
        if (PyErr_Occurred()) {
            cg_write_unraisable_msg("in tp_clear of", (PyObject *)Py_TYPE(op));
        }
        Py_DECREF(op);
    }
}

/* Breaks the cycles: tp_clear on each object (or, with DEBUG_SAVEALL, keeps
 * it in gc.garbage).  Objects that survive their tp_clear (something outside
 * still holds them, e.g. a C structure the traversal did not see) move to
 * `old` with COLLECTING cleared. */
static void
delete_garbage(CgState *st, PyGC_Head *garbage, PyGC_Head *old)
{
    while (!cg_list_is_empty(garbage)) {
        PyGC_Head *g = cg_next(garbage);
        PyObject *op = CG_FROM_GC(g);
        if (st->debug & CG_DEBUG_SAVEALL) {
            if (PyList_Append(st->garbage, op) < 0) {
                PyErr_Clear();
            }
        }
        else {
            cg_clear_garbage_object(op);
        }
        if (cg_next(garbage) == g) {
            clear_candidate(g);
            cg_list_move(g, old);
        }
    }
}

/* ---- 11. reporting ------------------------------------------------------- */

/* Appends the legacy-finalizer objects (all of them under SAVEALL) to
 * gc.garbage and keeps the whole list alive in `old`. */
static void
handle_legacy_finalizers(CgState *st, PyGC_Head *finalizers, PyGC_Head *old)
{
    for (PyGC_Head *g = cg_next(finalizers); g != finalizers; g = cg_next(g)) {
        PyObject *op = CG_FROM_GC(g);
        if ((st->debug & CG_DEBUG_SAVEALL) || Py_TYPE(op)->tp_del != NULL) {
            if (PyList_Append(st->garbage, op) < 0) {
                PyErr_Clear();
                break;
            }
        }
    }
    cg_list_merge(finalizers, old);
}

static void
debug_generation_sizes(CgState *st)
{
    PySys_FormatStderr(
        "gc: objects in each generation: %zd %zd %zd\n"
        "gc: objects in permanent generation: %zd\n",
        cg_list_size(cg_gen_head(st, 0)), cg_list_size(cg_gen_head(st, 1)),
        cg_list_size(cg_gen_head(st, 2)), cg_list_size(cg_permanent_head(st)));
}

/* ---- the collection ------------------------------------------------------ */

int cg_marking_enabled = 1;
int cg_split_walkers = 1;
Py_ssize_t cg_ring_min_candidates = 2048;
CgPark *cg_park_garbage = NULL;
unsigned cg_ring_depth = 32;
unsigned cg_ready_depth = 8;

static void maybe_learn_heavy(PyGC_Head *young);

/* A young chunk is examined as a young collection is: heavy objects set
 * aside, the ring probed, the candidates' pages filtered, and a slow
 * chunk teaches heavy types (bounded mode collects a generation that
 * outgrew the stop in chunks, and a chunk holding the C pickler of
 * pickle.dump traversed its whole memo: 4-4.5 ms stops, Sphinx on 3.13). */
Py_ssize_t
cg_trial_deletion(CgState *st, PyGC_Head *candidates, PyGC_Head *unreachable,
                  Py_ssize_t *survivors)
{
    double t = cg_now();
    Py_ssize_t n = deduce_unreachable(st, candidates, unreachable, 1, UNTRACK_TUPLES, survivors);
    double dt = cg_now() - t;
    if (dt > HEAVY_SLOW && dt > HEAVY_NS * (double)n) {
        maybe_learn_heavy(candidates);
    }
    return n;
}

Py_ssize_t
cg_trial_deletion_subtracted(PyGC_Head *candidates, Py_ssize_t n, PyGC_Head *unreachable,
                             PyObject *const *order)
{
    int ring = n < cg_ring_min_candidates ? 0 : 1;
    int pages = 0;
    if (order != NULL) {
        cand_pages_clear();
        for (Py_ssize_t i = 0; i < n && cand_pages_useful(); i++) {
            cand_page_add(order[i]);        /* addresses only: nothing is read */
        }
        pages = cand_pages_useful();
    }
    cg_list_init(unreachable);
    move_unreachable(candidates, unreachable, ring, NULL, order, n, pages, UNTRACK_NONE);
    return n;
}

/* Steps 6-11 on the `unreachable` list deduce_unreachable left.  Whatever
 * survives (resurrected objects, legacy finalizers and what they reach,
 * objects whose tp_clear did not free them) ends in `old`.  After:
 * `unreachable` is empty; counts are added to *collected, *uncollectable. */
static void dispose_surveyed(CgState *st, PyGC_Head *unreachable, PyGC_Head *finalizers,
                             PyGC_Head *old, GarbageSurvey survey,
                             Py_ssize_t *collected, Py_ssize_t *uncollectable);

void
cg_dispose_garbage(CgState *st, PyGC_Head *unreachable, PyGC_Head *old,
                   Py_ssize_t *collected, Py_ssize_t *uncollectable)
{
    PyGC_Head finalizers;
    GarbageSurvey survey;

    cg_list_init(&finalizers);
    move_legacy_finalizers(unreachable, &finalizers, &survey);
    if (!cg_list_is_empty(&finalizers)) {
        /* What the legacy finalizers reach leaves `unreachable`: the
         * survey's count no longer holds (its flags still may, but this
         * path is rare enough to take the long way). */
        move_legacy_finalizer_reachable(&finalizers);
        survey.count = -1;
        survey.weakrefs = survey.finalizers = 1;
    }
    dispose_surveyed(st, unreachable, &finalizers, old, survey, collected, uncollectable);
}

void
cg_dispose_surveyed_garbage(CgState *st, PyGC_Head *garbage, PyGC_Head *old,
                            Py_ssize_t count, int weakrefs, int finalizers,
                            Py_ssize_t *collected, Py_ssize_t *uncollectable)
{
    PyGC_Head none;
    cg_list_init(&none);
    GarbageSurvey survey = {count, weakrefs, finalizers};
    dispose_surveyed(st, garbage, &none, old, survey, collected, uncollectable);
}

/* Steps 6-11 after the survey: `unreachable` a normal list of COLLECTING
 * objects, `finalizers` the legacy ones set apart (possibly empty). */
static void
dispose_surveyed(CgState *st, PyGC_Head *unreachable, PyGC_Head *finalizers_list,
                 PyGC_Head *old, GarbageSurvey survey,
                 Py_ssize_t *collected, Py_ssize_t *uncollectable)
{
    PyGC_Head final_unreachable;
    PyGC_Head *finalizers = finalizers_list;

    if (st->debug & CG_DEBUG_COLLECTABLE) {
        for (PyGC_Head *g = cg_next(unreachable); g != unreachable; g = cg_next(g)) {
            debug_object("collectable", CG_FROM_GC(g));
        }
    }

    int callbacks = 0;
    if (survey.weakrefs) {
        *collected += cg_handle_weakrefs(unreachable, old, &callbacks);
    }
    /* Resurrection needs code that can reach the garbage: a finalizer of
     * one of its objects.  When none ran, steps 8-9 would find every object
     * still unreachable (trial deletion again on the same references), so
     * they are skipped.  Weakref callbacks cannot reach the garbage (its
     * weakrefs were cleared first, and nothing outside refers to it), but
     * one may give a garbage object's class a __del__: after callbacks,
     * finalize_garbage looks at every object again. */
    Py_ssize_t finalized = 0;
    if (survey.finalizers || callbacks) {
        finalized = finalize_garbage(unreachable);
    }
    cg_list_init(&final_unreachable);
    Py_ssize_t proven;
    if (finalized > 0 || survey.count < 0) {
        handle_resurrected(st, unreachable, &final_unreachable, old);
        proven = cg_list_size(&final_unreachable);
    }
    else {
        cg_list_merge(unreachable, &final_unreachable);
        proven = survey.count;
    }
    *collected += proven;
    if (cg_park_garbage != NULL && !(st->debug & CG_DEBUG_SAVEALL)
        && cg_list_is_empty(finalizers)) {
        /* bounded pauses: proven garbage is cleared in later stops.  Not
         * with legacy finalizers: an object with tp_del that the garbage
         * alone holds is freed while the garbage is cleared, before it is
         * reported, and must not be reported uncollectable instead. */
        cg_list_merge(&final_unreachable, &cg_park_garbage->list);
        cg_park_garbage->count += proven;
        cg_park_garbage->code_ran |= callbacks || finalized > 0;
    }
    else {
        delete_garbage(st, &final_unreachable, old);
    }

    for (PyGC_Head *g = cg_next(finalizers); g != finalizers; g = cg_next(g)) {
        (*uncollectable)++;
        if (st->debug & CG_DEBUG_UNCOLLECTABLE) {
            debug_object("uncollectable", CG_FROM_GC(g));
        }
    }
    handle_legacy_finalizers(st, finalizers, old);
}

Py_ssize_t cg_last_trial_candidates = 0;
double cg_phase_seconds[CG_NUM_GENERATIONS][CG_PHASES];
Py_ssize_t cg_last_heavy_skipped = 0;

static int
visit_count(PyObject *Py_UNUSED(op), void *arg)
{
    (*(Py_ssize_t *)arg)++;
    return 0;
}

/* A slow young collection's survivors (`young`, a normal list): the type
 * of one whose traversal visits more than HEAVY_VISITS references becomes
 * heavy (see "heavy objects").  Reads the survivors' traversals only. */
static void
learn_heavy(PyGC_Head *young)
{
    for (PyGC_Head *g = cg_next(young); g != young && heavy_ntypes < HEAVY_TYPES; g = cg_next(g)) {
        PyObject *op = CG_FROM_GC(g);
        PyTypeObject *tp = Py_TYPE(op);
        if (tp == &PyList_Type || tp == &PyTuple_Type || tp == &PyDict_Type
            || tp == &PySet_Type || tp == &PyFrozenSet_Type || is_heavy_type(tp)) {
            continue;
        }
        Py_ssize_t visits = 0;
        tp->tp_traverse(op, visit_count, &visits);
        if (visits > HEAVY_VISITS) {
            heavy_types[heavy_ntypes++] = tp;
        }
    }
}

static unsigned heavy_wait = 0;    /* how many slow collections the next miss skips */
static unsigned heavy_skip = 0;    /* slow collections still to skip */

/* learn_heavy, with the back-off of "Learning" above. */
static void
maybe_learn_heavy(PyGC_Head *young)
{
    if (heavy_skip > 0) {
        heavy_skip--;
        return;
    }
    int before = heavy_ntypes;
    learn_heavy(young);
    if (heavy_ntypes > before) {
        heavy_wait = 0;
    }
    else if (heavy_wait < HEAVY_BACKOFF) {
        heavy_wait = heavy_wait * 2 + 1;
    }
    heavy_skip = heavy_wait;
}

PyObject *
cg_heavy_types(void)
{
    PyObject *list = PyList_New(0);
    for (int i = 0; list != NULL && i < heavy_ntypes; i++) {
        if (PyList_Append(list, (PyObject *)heavy_types[i]) < 0) {
            Py_CLEAR(list);
        }
    }
    return list;
}

void
cg_forget_heavy_types(void)
{
    heavy_ntypes = 0;
    heavy_wait = heavy_skip = 0;
}

/* Tests and the fuzzer: `tp` is heavy from now on, whatever its instances'
 * size (exact lists, dicts too).  Returns 0, or -1 if the table is full. */
int
cg_add_heavy_type(PyTypeObject *tp)
{
    if (is_heavy_type(tp)) {
        return 0;
    }
    if (heavy_ntypes >= HEAVY_TYPES) {
        return -1;
    }
    heavy_types[heavy_ntypes++] = tp;
    return 0;
}

void
cg_collect_generation(CgState *st, int gen, CgResult *out)
{
    PyGC_Head unreachable;
    Py_ssize_t collected = 0, uncollectable = 0, survivors = 0;
    double t0 = cg_now();
    int full = gen == CG_NUM_GENERATIONS - 1;

    if (full) {
        /* A complete collection supersedes an incremental round: its lists
         * go back to the oldest generation first (incremental.c). */
        cg_inc_abort(st);
    }
    if (st->debug & CG_DEBUG_STATS) {
        PySys_WriteStderr("gc: collecting generation %d...\n", gen);
        debug_generation_sizes(st);
    }

    PyGC_Head *young = start_generation(st, gen);
    PyGC_Head *old = gen + 1 < CG_NUM_GENERATIONS ? cg_gen_head(st, gen + 1) : young;

    double *ph = cg_phase_seconds[gen];
    double t = t0, t1;
    int readonly = full && cg_readonly_due(st)
        && cg_find_garbage_readonly(st, young, &unreachable, &out->candidates, &survivors) == 0;
    if (readonly) {
        /* survivors untouched: no untracking, nothing to merge */
        t1 = cg_now(); ph[CG_PHASE_TRIAL] += t1 - t; t = t1;
    }
    else if (full && cg_marking_enabled && can_mark_alive(st)) {
        PyGC_Head rest;
        CgEntries entries = {{NULL}, 0, 1, 1};
        Py_ssize_t marked = mark_alive(&entries);
        t1 = cg_now(); ph[CG_PHASE_MARK] += t1 - t; t = t1;
        survivors = cg_split_walkers ? split_walkers(young, &rest, &entries)
                                     : split_unmarked(young, &rest);
        t1 = cg_now(); ph[CG_PHASE_SPLIT] += t1 - t; t = t1;
        Py_ssize_t kept = 0;
        Py_ssize_t examined = deduce_unreachable(st, &rest, &unreachable, 0,
                                                 UNTRACK_TUPLES_DICTS, &kept);
        survivors += kept;
        t1 = cg_now(); ph[CG_PHASE_TRIAL] += t1 - t; t = t1;
        out->candidates = marked + examined;
        cg_last_trial_candidates = examined;
        cg_list_merge(&rest, young);
        t1 = cg_now(); ph[CG_PHASE_UNTRACK] += t1 - t; t = t1;
    }
    else {
        int fused = full && cg_fused_full && heap_all_candidates(st);
        out->candidates = deduce_unreachable_as(st, young, &unreachable, !full,
                                                full ? UNTRACK_TUPLES_DICTS : UNTRACK_TUPLES,
                                                &survivors, fused);
        t1 = cg_now();
        if (!full && t1 - t > HEAVY_SLOW && (t1 - t) > HEAVY_NS * (double)out->candidates) {
            maybe_learn_heavy(young);
            t1 = cg_now();
        }
        ph[CG_PHASE_TRIAL] += t1 - t; t = t1;
        if (full) {
            cg_last_trial_candidates = out->candidates;
        }
    }

    if (young != old) {
        if (gen == CG_NUM_GENERATIONS - 2) {
            st->long_lived_pending += survivors;
        }
        cg_list_merge(young, old);
    }
    else {
        st->long_lived_pending = 0;
        st->long_lived_total = survivors;
    }

    cg_dispose_garbage(st, &unreachable, old, &collected, &uncollectable);
    out->duration = cg_now() - t0;
    ph[CG_PHASE_DISPOSE] += t0 + out->duration - t;
    t = t0 + out->duration;
    if (st->debug & CG_DEBUG_STATS) {
        PySys_WriteStderr("gc: done, %zd unreachable, %zd uncollectable, %.4fs elapsed\n",
                          collected + uncollectable, uncollectable, out->duration);
    }
    if (full) {
        cg_clear_freelists();
    }

    if (PyErr_Occurred()) {
        cg_write_unraisable_msg("in garbage collection", NULL);
    }

    st->generation_stats[gen].collections++;
    st->generation_stats[gen].collected += collected;
    st->generation_stats[gen].uncollectable += uncollectable;
    out->collected = collected;
    out->uncollectable = uncollectable;
    out->duration = cg_now() - t0;
    ph[CG_PHASE_OTHER] += t0 + out->duration - t;
}
