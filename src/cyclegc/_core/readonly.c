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

#include <stdint.h>
#include <string.h>

int cg_fork_friendly = 0;

/* ---- a set of addresses: sparse bitmap ------------------------------------ */

#define CHUNK_SHIFT 20                      /* 1 MiB of address space */
#define SLOT_SHIFT 4                        /* objects are >= 32 bytes apart */
#define WORDS_PER_CHUNK ((1u << (CHUNK_SHIFT - SLOT_SHIFT)) / 64)

typedef struct {
    uintptr_t key;          /* address >> CHUNK_SHIFT; 0 = empty slot */
    uint64_t *bits;
} Chunk;

typedef struct {
    Chunk *slots;
    size_t mask;            /* slots - 1 (a power of two) */
    size_t used;
    Chunk *last;            /* the chunk hit last: heaps have locality */
    size_t bytes;           /* scratch memory held */
} AddrSet;

static inline size_t
hash_word(uintptr_t x)
{
    x ^= x >> 29;
    x *= (uintptr_t)0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    return (size_t)x;
}

static Chunk *
chunk_find(AddrSet *s, uintptr_t key)
{
    for (size_t i = hash_word(key) & s->mask;; i = (i + 1) & s->mask) {
        if (s->slots[i].key == key || s->slots[i].key == 0) {
            return &s->slots[i];
        }
    }
}

static int
addrset_grow(AddrSet *s)
{
    size_t n = s->slots ? (s->mask + 1) * 2 : 64;
    Chunk *old = s->slots;
    size_t old_n = s->slots ? s->mask + 1 : 0;
    s->slots = PyMem_RawCalloc(n, sizeof(Chunk));
    if (s->slots == NULL) {
        s->slots = old;
        return -1;
    }
    s->mask = n - 1;
    s->bytes += n * sizeof(Chunk) - old_n * sizeof(Chunk);
    for (size_t i = 0; i < old_n; i++) {
        if (old[i].key != 0) {
            *chunk_find(s, old[i].key) = old[i];
        }
    }
    PyMem_RawFree(old);
    s->last = NULL;
    return 0;
}

/* The bitmap word for `p`, creating its chunk if `create`; NULL if absent
 * (or out of memory). */
static uint64_t *
addrset_word(AddrSet *s, const void *p, int create)
{
    uintptr_t a = (uintptr_t)p;
    uintptr_t key = (a >> CHUNK_SHIFT) + 1;
    size_t slot = (a & (((uintptr_t)1 << CHUNK_SHIFT) - 1)) >> SLOT_SHIFT;
    Chunk *c = s->last;
    if (c == NULL || c->key != key) {
        if (s->slots == NULL) {
            if (!create || addrset_grow(s) < 0) {
                return NULL;
            }
        }
        c = chunk_find(s, key);
        if (c->key == 0) {
            if (!create) {
                return NULL;
            }
            if ((s->used + 1) * 2 > s->mask + 1) {
                if (addrset_grow(s) < 0) {
                    return NULL;
                }
                c = chunk_find(s, key);
            }
            uint64_t *bits = PyMem_RawCalloc(WORDS_PER_CHUNK, sizeof(uint64_t));
            if (bits == NULL) {
                return NULL;
            }
            c->key = key;
            c->bits = bits;
            s->used++;
            s->bytes += WORDS_PER_CHUNK * sizeof(uint64_t);
        }
        s->last = c;
    }
    return &c->bits[slot / 64];
}

static inline uint64_t
addr_bit(const void *p)
{
    return (uint64_t)1 << ((((uintptr_t)p) >> SLOT_SHIFT) % 64);
}

static void
addrset_free(AddrSet *s)
{
    if (s->slots != NULL) {
        for (size_t i = 0; i <= s->mask; i++) {
            PyMem_RawFree(s->slots[i].bits);
        }
        PyMem_RawFree(s->slots);
    }
    memset(s, 0, sizeof(*s));
}

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
    Candidates cands;
} Scratch;

/* A tracked, mortal container not yet marked: mark it and queue it.  Only
 * reads the object.  Out of scratch memory, it stays unmarked (a candidate):
 * that costs time, never correctness. */
static int
visit_mark(PyObject *op, void *arg)
{
    Scratch *s = (Scratch *)arg;
    if (!cg_is_gc(op) || CG_AS_GC(op)->_gc_next == 0 || CG_IS_IMMORTAL(op)) {
        return 0;
    }
    uint64_t *word = addrset_word(&s->marked, op, 1);
    uint64_t bit = addr_bit(op);
    if (word == NULL || (*word & bit)) {
        return 0;
    }
    if (cg_stack_push(&s->stack, op, 0) == 0) {
        *word |= bit;
    }
    return 0;
}

/* After: every object reachable from the roots through tracked containers
 * is in s->marked. */
static void
mark_from_roots(Scratch *s)
{
    cg_visit_roots(visit_mark, s);
    while (s->stack.size > 0) {
        PyObject *op = s->stack.items[--s->stack.size];
        Py_TYPE(op)->tp_traverse(op, visit_mark, s);
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

/* After: each candidate's refs counts the references from non-candidates. */
static void
subtract_internal(Scratch *s)
{
    for (Py_ssize_t i = 0; i < s->cands.n; i++) {
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
    *survivors = kept_young + from_young_alive;
    rc = 0;
done:
    addrset_free(&s.marked);
    cg_stack_free(&s.stack);
    candidates_free(&s.cands);
    return rc;
}
