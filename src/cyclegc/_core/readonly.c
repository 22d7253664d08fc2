/* readonly.c -- finding the garbage of a full collection without writing to
 * the objects that survive it ("fork-friendly" mode).
 *
 * A pre-fork server's workers share the parent's heap until a page is
 * written.  The usual collection writes the header of every object it
 * examines (gc_refs, list links), so one full collection in a worker copies
 * nearly the whole shared heap.  Here every per-object fact lives in private
 * scratch memory instead, and the only objects written are the garbage
 * (which is freed, so its pages are written anyway) and the list neighbours
 * it is unlinked from:
 *
 *   mark_from_roots     what the roots reach is alive: a sparse bitmap over
 *                       1 MiB chunks of the address space (1 bit per 16
 *                       bytes: 8 KiB per MiB of heap that holds live objects)
 *   collect_candidates  every tracked object of the generations and of the
 *                       permanent generation (frozen objects are examined in
 *                       this mode) not marked: an array, in list order, with
 *                       an open-addressing index by address
 *   subtract_internal   trial deletion over the candidates: gc_refs in the
 *                       array, not in the headers
 *   mark_reachable      candidates referenced from outside, and what they
 *                       reach, are alive
 *   move_garbage        the rest moves to the `unreachable` list with its
 *                       COLLECTING bit set: from here on the ordinary phases
 *                       of collector.c (finalizers, weakrefs, tp_clear) run
 *
 * Until move_garbage nothing is written but scratch memory and the few
 * survivors that stop being tracked (tuples and dicts of atoms, as the
 * built-in's full collection untracks them), so running out of scratch
 * memory simply abandons this path (the caller falls back to the ordinary
 * collection).  Survivors are never relinked or promoted.
 */
#include "collector.h"
#include "addrset.h"

#include <stdint.h>
#include <string.h>

int cg_fork_friendly = 0;
int cg_heap_shared = 0;

/* ---- candidates: array + index by address ---------------------------------- */

#define REACHABLE ((Py_ssize_t)-1)

typedef struct {
    PyObject *op;
    Py_ssize_t refs;        /* gc_refs, or REACHABLE */
} Candidate;

typedef struct {
    Candidate *items;
    Py_ssize_t n, capacity;
    Py_ssize_t *index;      /* slot -> position + 1 (0 = empty) */
    size_t mask;
} Candidates;

static int
candidates_append(Candidates *c, PyObject *op, Py_ssize_t refs)
{
    if (c->n == c->capacity) {
        Py_ssize_t cap = c->capacity ? c->capacity * 2 : 1024;
        Candidate *items = PyMem_RawRealloc(c->items, (size_t)cap * sizeof(Candidate));
        if (items == NULL) {
            return -1;
        }
        c->items = items;
        c->capacity = cap;
    }
    c->items[c->n].op = op;
    c->items[c->n].refs = refs;
    c->n++;
    return 0;
}

static int
candidates_build_index(Candidates *c)
{
    size_t size = 64;
    while (size < (size_t)c->n * 2) {
        size *= 2;
    }
    c->index = PyMem_RawCalloc(size, sizeof(Py_ssize_t));
    if (c->index == NULL) {
        return -1;
    }
    c->mask = size - 1;
    for (Py_ssize_t i = 0; i < c->n; i++) {
        size_t h = hash_word((uintptr_t)c->items[i].op) & c->mask;
        while (c->index[h] != 0) {
            h = (h + 1) & c->mask;
        }
        c->index[h] = i + 1;
    }
    return 0;
}

static inline Candidate *
candidates_find(Candidates *c, PyObject *op)
{
    for (size_t h = hash_word((uintptr_t)op) & c->mask;; h = (h + 1) & c->mask) {
        Py_ssize_t pos = c->index[h];
        if (pos == 0) {
            return NULL;
        }
        if (c->items[pos - 1].op == op) {
            return &c->items[pos - 1];
        }
    }
}

static void
candidates_free(Candidates *c)
{
    PyMem_RawFree(c->items);
    PyMem_RawFree(c->index);
    memset(c, 0, sizeof(*c));
}

/* ---- the phases -------------------------------------------------------------- */

typedef struct {
    AddrSet marked;
    CgStack stack;
    CgRing ring;            /* referents not yet checked (gclist.h) */
    CgRing ready;           /* popped, storage prefetched, not yet traversed */
    Candidates cands;
} Scratch;

/* A tracked, mortal container not yet marked: mark it and queue it.  Only
 * reads the object.  Out of scratch memory, it stays unmarked (a candidate):
 * that costs time, never correctness. */
static void
mark_checked(Scratch *s, PyObject *op)
{
    if (!cg_is_gc(op) || CG_AS_GC(op)->_gc_next == 0 || CG_IS_IMMORTAL(op)) {
        return;
    }
    uint64_t *word = addrset_word(&s->marked, op, 1);
    uint64_t bit = addr_bit(op);
    if (word == NULL || (*word & bit)) {
        return;
    }
    if (cg_stack_push(&s->stack, op, 0) == 0) {
        *word |= bit;
    }
}

static int
visit_mark(PyObject *op, void *arg)
{
    mark_checked((Scratch *)arg, op);
    return 0;
}

/* The traversal's visitor: park the referent, its header lines prefetched
 * (read prefetches: nothing of a survivor is written), and check the
 * oldest parked one.  Marking does not depend on order, and
 * mark_from_roots drains the ring before it returns. */
static int
visit_mark_deferred(PyObject *op, void *arg)
{
    Scratch *s = (Scratch *)arg;
    PyObject *due = cg_ring_defer(&s->ring, op, 1);
    if (due != NULL) {
        mark_checked(s, due);
    }
    return 0;
}

/* After: every object reachable from the roots through tracked containers
 * is in s->marked.  The same two prefetch stages as collector.c's
 * mark_alive: referents wait in `ring` before they are checked, popped
 * objects wait in `ready` (their storage prefetched) before they are
 * traversed; the loop ends only when the stack and both rings are empty. */
static void
mark_from_roots(Scratch *s)
{
    cg_visit_roots(visit_mark, s);
    cg_visit_stack_roots(visit_mark, s);
    for (;;) {
        if (s->ready.in - s->ready.out > cg_ready_depth) {
            PyObject *op = cg_ring_take(&s->ready);
            Py_TYPE(op)->tp_traverse(op, visit_mark_deferred, s);
        }
        else if (s->stack.size > 0) {
            PyObject *op = s->stack.items[--s->stack.size];
            cg_prefetch_storage(op);
            cg_ring_park(&s->ready, op);
        }
        else if (!cg_ring_empty(&s->ring)) {
            mark_checked(s, cg_ring_take(&s->ring));
        }
        else if (!cg_ring_empty(&s->ready)) {
            PyObject *op = cg_ring_take(&s->ready);
            Py_TYPE(op)->tp_traverse(op, visit_mark_deferred, s);
        }
        else {
            break;
        }
    }
}

/* The fork-friendly search for the garbage of a full collection (see the top
 * of this file).  `young` is the merged generation list.  On success (0),
 * `unreachable` holds the garbage (normal list, COLLECTING set), survivors
 * are untouched, *candidates counts the objects examined and *survivors the
 * objects left in `young`.  On failure (-1, out of scratch memory) nothing
 * was written. */
int cg_find_garbage_readonly(CgState *st, PyGC_Head *young, PyGC_Head *unreachable,
                             Py_ssize_t *candidates, Py_ssize_t *survivors);

/* Appends the unmarked mortal objects of `list` to the candidates, in list
 * order, with gc_refs = refcount; counts the marked ones in *kept.  With
 * `untrack`, marked tuples and dicts of atoms stop being tracked, as the
 * built-in's full collection does: the only survivors written, and only
 * those a full collection has not seen since they became atom-only (the
 * frozen generation is left alone, as the built-in never examines it). */
static int
collect_candidates(Scratch *s, PyGC_Head *list, Py_ssize_t *kept, int untrack)
{
    PyGC_Head *next;
    for (PyGC_Head *g = cg_next(list); g != list; g = next) {
        next = cg_next(g);
        PyObject *op = CG_FROM_GC(g);
        if (CG_IS_IMMORTAL(op)) {
            continue;
        }
        uint64_t *word = addrset_word(&s->marked, op, 0);
        if (word != NULL && (*word & addr_bit(op))) {
            if (untrack && cg_is_atom_container(op, 1)) {
                cg_list_untrack(g);
            }
            else {
                (*kept)++;
            }
            continue;
        }
        if (candidates_append(&s->cands, op, Py_REFCNT(op)) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
visit_subtract(PyObject *op, void *arg)
{
    Candidate *c = candidates_find((Candidates *)arg, op);
    if (c != NULL) {
        c->refs--;
    }
    return 0;
}

/* After: each candidate's refs counts the references from non-candidates.
 * The candidates are an array, so the objects to traverse are known ahead:
 * each is prefetched in two steps (header, then storage) a few iterations
 * before its turn.  Referents are only looked up by address in scratch
 * memory, never read. */
#define AHEAD_HEADER 16      /* candidates ahead whose header is prefetched */
#define AHEAD_STORAGE 4      /* ...and whose storage is (its header is in by then) */

static void
subtract_internal(Scratch *s)
{
    Py_ssize_t n = s->cands.n;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + AHEAD_HEADER < n) {
            cg_prefetch_object(s->cands.items[i + AHEAD_HEADER].op, 1);
        }
        if (i + AHEAD_STORAGE < n) {
            cg_prefetch_storage(s->cands.items[i + AHEAD_STORAGE].op);
        }
        PyObject *op = s->cands.items[i].op;
        Py_TYPE(op)->tp_traverse(op, visit_subtract, &s->cands);
    }
}

static int
visit_reach(PyObject *op, void *arg)
{
    Scratch *s = (Scratch *)arg;
    Candidate *c = candidates_find(&s->cands, op);
    if (c != NULL && c->refs != REACHABLE) {
        c->refs = REACHABLE;
        if (cg_stack_push(&s->stack, op, 0) < 0) {
            return -1;
        }
    }
    return 0;
}

/* After: refs == REACHABLE for every candidate referenced from outside the
 * candidate set or reachable from one that is.  -1 if out of memory. */
static int
mark_reachable(Scratch *s)
{
    for (Py_ssize_t i = 0; i < s->cands.n; i++) {
        Candidate *c = &s->cands.items[i];
        if (c->refs > 0) {
            c->refs = REACHABLE;
            if (cg_stack_push(&s->stack, c->op, 0) < 0) {
                return -1;
            }
        }
    }
    while (s->stack.size > 0) {
        PyObject *op = s->stack.items[--s->stack.size];
        if (Py_TYPE(op)->tp_traverse(op, visit_reach, s) < 0) {
            return -1;
        }
    }
    return 0;
}

/* The first writes: each unreachable candidate, in list order, moves to
 * `unreachable` with COLLECTING set.  Returns how many moved. */
static Py_ssize_t
move_garbage(Scratch *s, PyGC_Head *unreachable)
{
    Py_ssize_t moved = 0;
    for (Py_ssize_t i = 0; i < s->cands.n; i++) {
        if (s->cands.items[i].refs != REACHABLE) {
            PyGC_Head *g = CG_AS_GC(s->cands.items[i].op);
            cg_list_move(g, unreachable);
            g->_gc_prev |= CG_PREV_COLLECTING;
            moved++;
        }
    }
    return moved;
}

int
cg_find_garbage_readonly(CgState *st, PyGC_Head *young, PyGC_Head *unreachable,
                         Py_ssize_t *candidates, Py_ssize_t *survivors)
{
    Scratch s;
    memset(&s, 0, sizeof(s));
    Py_ssize_t kept_young = 0, kept_frozen = 0;
    int rc = -1;

    mark_from_roots(&s);
    if (collect_candidates(&s, young, &kept_young, 1) < 0) {
        goto done;
    }
    Py_ssize_t n_young = s.cands.n;
    if (collect_candidates(&s, cg_permanent_head(st), &kept_frozen, 0) < 0
        || candidates_build_index(&s.cands) < 0) {
        goto done;
    }
    subtract_internal(&s);
    if (mark_reachable(&s) < 0) {
        goto done;
    }
    Py_ssize_t from_young_alive = 0;
    for (Py_ssize_t i = 0; i < n_young; i++) {
        if (s.cands.items[i].refs == REACHABLE) {
            PyObject *op = s.cands.items[i].op;
            if (cg_is_atom_container(op, 1)) {
                cg_list_untrack(CG_AS_GC(op));
            }
            else {
                from_young_alive++;
            }
        }
    }
    cg_list_init(unreachable);
    move_garbage(&s, unreachable);
    *candidates = s.cands.n + kept_young + kept_frozen;
    cg_last_trial_candidates = s.cands.n;
    *survivors = kept_young + from_young_alive;
    rc = 0;
done:
    addrset_free(&s.marked);
    cg_stack_free(&s.stack);
    candidates_free(&s.cands);
    return rc;
}
