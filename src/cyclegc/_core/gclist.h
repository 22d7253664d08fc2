/* gclist.h -- the interpreter's doubly linked GC lists, as the core uses them.
 *
 * Every tracked container is linked into exactly one list through the
 * PyGC_Head in front of it: a generation, the permanent generation, or one of
 * the collector's private lists during a collection.  A list head is a bare
 * PyGC_Head with no flag bits.  Outside a collection _gc_prev holds a pointer
 * plus the FINALIZED bit; during one, the collector borrows its upper bits for
 * gc_refs (see collector.c), and borrows bit 0 of _gc_next as UNREACHABLE.
 */
#ifndef CYCLEGC_GCLIST_H
#define CYCLEGC_GCLIST_H

#include "compat.h"

/* Bit 0 of _gc_next: "in the tentatively unreachable list" (collector only). */
#define CG_NEXT_UNREACHABLE ((uintptr_t)1)

static inline PyGC_Head *cg_next(PyGC_Head *g) { return (PyGC_Head *)g->_gc_next; }
static inline PyGC_Head *cg_prev(PyGC_Head *g) { return (PyGC_Head *)(g->_gc_prev & CG_PREV_MASK); }

static inline void
cg_set_next(PyGC_Head *g, PyGC_Head *next)
{
    g->_gc_next = (uintptr_t)next;
}

/* Set the prev pointer, keeping the flag bits. */
static inline void
cg_set_prev(PyGC_Head *g, PyGC_Head *prev)
{
    g->_gc_prev = (g->_gc_prev & ~CG_PREV_MASK) | (uintptr_t)prev;
}

static inline void
cg_list_init(PyGC_Head *list)
{
    list->_gc_prev = (uintptr_t)list;
    list->_gc_next = (uintptr_t)list;
}

static inline int
cg_list_is_empty(PyGC_Head *list)
{
    return list->_gc_next == (uintptr_t)list;
}

/* Link `node` (not in any list) at the end of `list`. */
static inline void
cg_list_append(PyGC_Head *node, PyGC_Head *list)
{
    PyGC_Head *last = (PyGC_Head *)list->_gc_prev;
    cg_set_prev(node, last);
    cg_set_next(last, node);
    cg_set_next(node, list);
    list->_gc_prev = (uintptr_t)node;
}

/* Unlink `node` from whatever list holds it and append it to `list`. */
static inline void
cg_list_move(PyGC_Head *node, PyGC_Head *list)
{
    PyGC_Head *prev = cg_prev(node);
    PyGC_Head *next = cg_next(node);
    cg_set_next(prev, next);
    cg_set_prev(next, prev);
    cg_list_append(node, list);
}

/* Unlink `node` from a normal list and append it to `list` in the state
 * update_refs leaves a candidate in: gc_refs := refcount, COLLECTING set,
 * its prev link given up (`list` is then linked by next only, its head's
 * prev still naming the tail).  A caller that builds its candidate set
 * this way saves trial deletion a walk of the set (cg_trial_deletion_subtracted). */
static inline void
cg_list_move_as_candidate(PyGC_Head *node, PyGC_Head *list)
{
    cg_list_move(node, list);      /* its prev link is then overwritten */
    node->_gc_prev = (node->_gc_prev & CG_PREV_FINALIZED) | CG_PREV_COLLECTING
                     | ((uintptr_t)Py_REFCNT(CG_FROM_GC(node)) << CG_PREV_SHIFT);
}

/* A reference to candidate `node` from another candidate: subtract_refs's
 * step, for a caller that counts while it builds the set.  Returns the
 * count left. */
static inline Py_ssize_t
cg_subtract_ref(PyGC_Head *node)
{
    node->_gc_prev -= ((uintptr_t)1 << CG_PREV_SHIFT);
    return (Py_ssize_t)(node->_gc_prev >> CG_PREV_SHIFT);
}

/* Unlink `node` and mark it untracked (keeps only the FINALIZED bit). */
static inline void
cg_list_untrack(PyGC_Head *node)
{
    PyGC_Head *prev = cg_prev(node);
    PyGC_Head *next = cg_next(node);
    cg_set_next(prev, next);
    cg_set_prev(next, prev);
    node->_gc_next = 0;
    node->_gc_prev &= CG_PREV_FINALIZED;
}

/* Append all of `from` to `to`; `from` is left empty. */
static inline void
cg_list_merge(PyGC_Head *from, PyGC_Head *to)
{
    if (!cg_list_is_empty(from)) {
        PyGC_Head *to_tail = cg_prev(to);
        PyGC_Head *from_head = cg_next(from);
        PyGC_Head *from_tail = cg_prev(from);
        cg_set_next(to_tail, from_head);
        cg_set_prev(from_head, to_tail);
        cg_set_next(from_tail, to);
        cg_set_prev(to, from_tail);
    }
    cg_list_init(from);
}

static inline Py_ssize_t
cg_list_size(PyGC_Head *list)
{
    Py_ssize_t n = 0;
    for (PyGC_Head *g = cg_next(list); g != list; g = cg_next(g)) {
        n++;
    }
    return n;
}

/* The size of `list`, or `limit` if it holds at least that many. */
static inline Py_ssize_t
cg_list_size_upto(PyGC_Head *list, Py_ssize_t limit)
{
    Py_ssize_t n = 0;
    for (PyGC_Head *g = cg_next(list); g != list && n < limit; g = cg_next(g)) {
        n++;
    }
    return n;
}

static inline PyGC_Head *
cg_gen_head(CgState *st, int gen)
{
    return &st->generations[gen].head;
}

static inline PyGC_Head *
cg_permanent_head(CgState *st)
{
    return &st->permanent_generation.head;
}

static inline int
cg_is_tracked(PyObject *op)
{
    return CG_AS_GC(op)->_gc_next != 0;
}

/* A growable stack of objects still to traverse (scratch memory of the
 * marking passes).  cg_stack_push fails (-1) when out of memory or past
 * `cap` entries (0: no cap); callers treat that as "leave it unmarked",
 * which costs time, never correctness. */
typedef struct {
    PyObject **items;
    Py_ssize_t size, capacity;
} CgStack;

static inline int
cg_stack_push(CgStack *s, PyObject *op, Py_ssize_t cap)
{
    if (s->size == s->capacity) {
        Py_ssize_t n = s->capacity ? s->capacity * 2 : 4096;
        if (cap > 0 && n > cap) {
            return -1;
        }
        PyObject **items = PyMem_RawRealloc(s->items, (size_t)n * sizeof(PyObject *));
        if (items == NULL) {
            return -1;
        }
        s->items = items;
        s->capacity = n;
    }
    s->items[s->size++] = op;
    return 0;
}

static inline void
cg_stack_free(CgStack *s)
{
    PyMem_RawFree(s->items);
    s->items = NULL;
    s->size = s->capacity = 0;
}

/* ---- keeping cache misses in flight ------------------------------------
 *
 * Following a pointer to an object that is not in cache costs a trip to
 * DRAM (~100 ns).  A depth-first walk takes those trips one after another:
 * the next object to traverse is the one whose header was just read.  A
 * CgRing is a small FIFO of object pointers placed between a visitor and
 * whatever it does with an object: cg_ring_put() prefetches the object's GC
 * header and object header and parks the pointer; the pointer is only acted
 * on when cg_ring_depth more have been put behind it (or when the caller
 * drains the ring), by which time its lines have arrived.  Up to
 * cg_ring_depth misses are then in flight at once instead of one.
 *
 * Invariants every user keeps: an entry is a pointer the visitor was given
 * (never NULL), nothing is known about it yet (it may be any object, GC or
 * not), and the ring is drained before the phase that filled it ends, so a
 * deferred action is never lost.  Only actions whose result does not depend
 * on when they run within the phase may be deferred (marking, decrementing
 * gc_refs, marking reachable ahead of or behind a scan; each user says why).
 * Entries are borrowed: no Python code runs while a ring is non-empty, so
 * nothing they point to can be freed meanwhile. */
/* An asm statement, not __builtin_prefetch: GCC 12 at -O3 -DNDEBUG (the
 * interpreter's own flags) deleted the builtin from cg_prefetch_storage()
 * (then in collector.c) entirely, no instruction left; a volatile asm stays. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#  define CG_PREFETCH(p) __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)(p)))
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
#  define CG_PREFETCH(p) __asm__ volatile("prfm pldl1keep, %0" : : "Q"(*(const char *)(p)))
#elif defined(__GNUC__) || defined(__clang__)
#  define CG_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)
#else
#  define CG_PREFETCH(p) ((void)(p))
#endif

#define CG_RING_SIZE 64u       /* capacity, a power of two > the deepest depth */

/* How many pointers stay parked before the oldest is acted on: about the
 * misses a core can overlap (32 by default; 0 acts on each at once, i.e.
 * the plain depth-first walk).  cg_ready_depth: the same for marking's
 * second stage (collector.c, 8).  Both are settable for measurements:
 * _core._set_prefetch(ring, ready). */
extern unsigned cg_ring_depth, cg_ready_depth;

typedef struct {
    PyObject *op;
    PyObject *tag;             /* the user's: e.g. the container op was met in */
} CgRingEntry;

typedef struct {
    CgRingEntry items[CG_RING_SIZE];
    unsigned in, out;          /* free-running; in - out entries are parked */
} CgRing;

#define CG_RING_INIT {{{NULL, NULL}}, 0, 0}

/* More than cg_ring_depth parked: the caller takes the oldest and acts. */
static inline int cg_ring_over(const CgRing *r) { return r->in - r->out > cg_ring_depth; }
static inline int cg_ring_empty(const CgRing *r) { return r->in == r->out; }

/* The lines of `op` a collector reads first: its GC header (16 bytes before
 * it) and its refcount and type.  Objects start 16-byte aligned, so these
 * 32 bytes lie in at most two cache lines: those of op - 16 and op + 8.
 * With `preheader`, the 16 bytes before the GC header too, where 3.11-3.13
 * keep an instance's managed __dict__ or values pointer (marking reads it
 * to prefetch the storage, cg_prefetch_storage): the lines of op - 32 and
 * op + 8.  Trial deletion never reads it, and fetching it there cost a
 * line per referent in two (for objects without a pre-header it is a
 * neighbour's).  Read prefetches even where the header will be written: a
 * write prefetch (__builtin_prefetch(p, 1)) compiles to nothing for the
 * baseline x86-64 target the extension is built for, which silently left
 * the header unprefetched at first. */
static inline void
cg_prefetch_object(PyObject *op, int preheader)
{
    CG_PREFETCH((char *)op - (preheader ? 2 : 1) * sizeof(PyGC_Head));
    CG_PREFETCH((char *)op + sizeof(Py_ssize_t));
}

/* Parks `op` without prefetching (the caller prefetched what it needs). */
static inline void
cg_ring_park(CgRing *r, PyObject *op)
{
    CgRingEntry *e = &r->items[r->in++ & (CG_RING_SIZE - 1)];
    e->op = op;
    e->tag = NULL;
}

/* Prefetches `op`'s header lines and parks it (at most cg_ring_depth + 1
 * are ever parked). */
static inline void
cg_ring_put(CgRing *r, PyObject *op, int preheader)
{
    cg_prefetch_object(op, preheader);
    cg_ring_park(r, op);
}

/* The same with a tag, given back by cg_ring_take_entry(), for marking
 * (pre-header prefetched too). */
static inline void
cg_ring_put_tagged(CgRing *r, PyObject *op, PyObject *tag)
{
    cg_prefetch_object(op, 1);
    CgRingEntry *e = &r->items[r->in++ & (CG_RING_SIZE - 1)];
    e->op = op;
    e->tag = tag;
}

/* The oldest parked pointer (the ring must not be empty). */
static inline PyObject *
cg_ring_take(CgRing *r)
{
    return r->items[r->out++ & (CG_RING_SIZE - 1)].op;
}

static inline CgRingEntry
cg_ring_take_entry(CgRing *r)
{
    return r->items[r->out++ & (CG_RING_SIZE - 1)];
}

/* What a visitor does with a ring: parks `op` (prefetched, with its
 * pre-header if `preheader`; NULL is no object and is dropped) and returns
 * the oldest parked pointer if more than cg_ring_depth wait (the caller
 * acts on it now), else NULL. */
static inline PyObject *
cg_ring_defer(CgRing *r, PyObject *op, int preheader)
{
    if (op == NULL) {
        return NULL;
    }
    cg_ring_put(r, op, preheader);
    return cg_ring_over(r) ? cg_ring_take(r) : NULL;
}

/* CgSlots: the ring of trial deletion's visitors, which need no tag and
 * do the same to every entry.  Leaner than CgRing (about 10 instructions
 * fewer per referent, which a young collection of a few hundred objects
 * notices): a pointer put in a slot evicts the one put there depth puts
 * earlier, and the visitor acts on that one; an empty slot holds NULL,
 * and `n` counts the parked ones so that draining visits only those.  The
 * depth is cg_ring_depth rounded down to a power of two, read once per
 * phase (0 keeps one pointer parked).  The same invariants as CgRing: the
 * phase drains it (cg_slots_pop) before it ends. */
typedef struct {
    PyObject *slot[CG_RING_SIZE];
    unsigned pos, mask;
    unsigned n;             /* parked: the n slots before pos, cyclically */
} CgSlots;

static inline void
cg_slots_init(CgSlots *r)
{
    unsigned n = 1;
    while (n * 2 <= cg_ring_depth && n * 2 < CG_RING_SIZE) {
        n *= 2;
    }
    for (unsigned i = 0; i < n; i++) {
        r->slot[i] = NULL;
    }
    r->pos = 0;
    r->mask = n - 1;
    r->n = 0;
}

/* Prefetches `op` (not NULL) and parks it; returns the pointer it evicts
 * (to be acted on now), or NULL. */
static inline PyObject *
cg_slots_swap(CgSlots *r, PyObject *op)
{
    cg_prefetch_object(op, 0);
    PyObject **s = &r->slot[r->pos];
    PyObject *old = *s;
    *s = op;
    r->pos = (r->pos + 1) & r->mask;
    r->n += old == NULL;
    return old;
}

/* The most recently parked pointer, taken out (r->n must be > 0).
 * Draining is `while (r->n) act(cg_slots_pop(r))`: only the parked slots
 * are visited (move_unreachable drains each time its scan reaches the end,
 * once per link when a young chain is scanned backwards, so a loop over
 * every slot there cost ~160 instructions per link). */
static inline PyObject *
cg_slots_pop(CgSlots *r)
{
    r->pos = (r->pos - 1) & r->mask;
    PyObject *op = r->slot[r->pos];
    r->slot[r->pos] = NULL;
    r->n--;
    return op;
}

/* The oldest parked pointer, taken out (r->n must be > 0): draining in
 * the order the pointers were parked.  The parked ones stay the n slots
 * before pos, every other slot NULL, so parking goes on as before. */
static inline PyObject *
cg_slots_pop_oldest(CgSlots *r)
{
    unsigned i = (r->pos - r->n) & r->mask;
    PyObject *op = r->slot[i];
    r->slot[i] = NULL;
    r->n--;
    return op;
}

/* Whether `op` is parked (not NULL).  Compares every slot, reading no
 * object: a few instructions per slot, no miss. */
static inline int
cg_slots_holds(const CgSlots *r, PyObject *op)
{
    int found = 0;
    for (unsigned i = 0; i <= r->mask; i++) {
        found |= r->slot[i] == op;
    }
    return found;
}

/* An object's out-of-line storage, the line its traversal reads first (a
 * dependent miss otherwise): a list's item array, a dict's keys (and split
 * values), a set's table, an instance's managed __dict__ or values
 * (compat.h).  Reads only the object's own header lines, so it is used once
 * those have been prefetched and read (marking's second stage). */
static inline void
cg_prefetch_storage(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    const void *p;
    if (tp == &PyList_Type) {
        p = ((PyListObject *)op)->ob_item;
    }
    else if (tp == &PyDict_Type) {
        p = ((PyDictObject *)op)->ma_keys;
        if (((PyDictObject *)op)->ma_values != NULL) {
            CG_PREFETCH(((PyDictObject *)op)->ma_values);
        }
    }
    else if (tp == &PySet_Type) {
        p = ((PySetObject *)op)->table;
    }
    else {
        p = cg_managed_dict_storage(op);
    }
    if (p != NULL) {
        CG_PREFETCH(p);
    }
}

#endif /* CYCLEGC_GCLIST_H */
