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

#endif /* CYCLEGC_GCLIST_H */
