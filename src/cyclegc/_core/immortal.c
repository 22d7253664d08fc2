/* immortal.c -- making the heap of a pre-fork server immortal (3.12+).
 *
 * Why.  A pre-fork server (gunicorn, uwsgi, multiprocessing's fork start
 * method) builds its heap in a master and forks workers that share its
 * pages until one is written.  Fork-friendly collection (readonly.c) keeps
 * the collector from writing them.  The program still does: every
 * Py_INCREF and Py_DECREF of a shared object writes its page, so a worker
 * that reads its share of a preloaded catalogue copies the pages it read.
 * With the built-in and gc.freeze() that is what is left of a worker's
 * private memory (benchmarks/realworld's gunicorn program: 0.44 of the
 * built-in's without freeze).  PEP 683 made objects with the reference
 * count _Py_IMMORTAL_REFCNT immortal: reference counting leaves them alone,
 * and they are never freed.  Meta's Cinder runs its pre-fork servers this
 * way; cyclegc.immortalize_heap() offers it to any 3.12 or 3.13 program.
 *
 * What becomes immortal: every object alive when it is called, that is
 * every tracked object of the generations and of the permanent generation,
 * and what they reference as tp_traverse shows it, untracked containers
 * (tuples and dicts of atoms) and their contents included, plus what
 * tp_traverse does not show but every use writes: the keys of exact dicts
 * and the members of code objects (constants, names).  Except objects
 * that run code when they die (a tp_finalize or tp_del: __del__, files,
 * sockets, generators): they stay mortal, so they still die, and files
 * are still flushed and closed, when the program drops them.
 *
 * Where they go.  An immortal object can never be garbage and never be
 * freed, so no collection needs to look at it.  Tracked ones leave the
 * generation lists for `immortal_list`, a list of this file that no
 * collection walks: a worker's collections then neither write nor read
 * them (the interpreter itself moves an immortal object it meets in a
 * collection to the permanent generation on 3.12 and untracks it on 3.13;
 * either way it is out of later collections).  They stay tracked:
 * untracking one (a dict that lost its last container) unlinks it from
 * this list as from any other.  Fork-friendly collection is then no longer
 * needed in the workers (collector.c, cg_readonly_due): their lists hold
 * their own objects, on pages already private, and the ordinary
 * collection is the faster (gunicorn workers' full collections of ~110k
 * objects took 35-216 ms read-only, every object looked up by address).
 *
 * Soundness.  Nothing is freed here, so no reachable object can be.  A
 * mortal object referenced by an immortal one keeps that reference in its
 * count, and the immortal one, examined by no collection, never has its
 * references subtracted: the mortal object is externally referenced and
 * survives every trial deletion, as it must (its referrer lives forever).
 * What it costs: memory of objects the program drops later is never given
 * back, and their weakref callbacks never run (documented in the API).
 */
#include "collector.h"

static PyGC_Head immortal_list;
static int immortal_list_ready;
int cg_heap_immortalized;

typedef struct {
    CgStack todo;           /* untracked containers and code objects to traverse */
    Py_ssize_t made;        /* objects made immortal */
} Immortalize;

static int
dies_with_code(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    return tp->tp_finalize != NULL || tp->tp_del != NULL;
}

/* Makes `op` immortal if it may be.  Returns 1 if it just became immortal. */
static int
make_immortal(Immortalize *im, PyObject *op)
{
    if (CG_IS_IMMORTAL(op)) {
        return 0;
    }
    if (dies_with_code(op) || (PyUnicode_Check(op) && !CG_IMMORTAL_STR_OK)) {
        return 0;
    }
    CG_SET_IMMORTAL(op);
    im->made++;
    return 1;
}

/* A referent of an object made immortal.  A tracked one is in a list the
 * walk takes in turn (or already took); an untracked container's
 * referents, and a code object's members, are reached from the todo stack.
 * An object that fails to be pushed stays immortal with its referents
 * mortal: less saved, nothing wrong. */
static int
visit_immortalize(PyObject *op, void *arg)
{
    Immortalize *im = (Immortalize *)arg;
    if (op == NULL || (cg_is_gc(op) && cg_is_tracked(op))) {
        return 0;
    }
    if (make_immortal(im, op) && (cg_is_gc(op) || PyCode_Check(op))) {
        (void)cg_stack_push(&im->todo, op, 0);
    }
    return 0;
}

/* The references of an object just made immortal. */
static void
immortalize_referents(Immortalize *im, PyObject *op)
{
    if (PyCode_Check(op)) {
        cg_visit_code_members(op, visit_immortalize, im);
        return;
    }
    traverseproc traverse = Py_TYPE(op)->tp_traverse;
    if (traverse != NULL) {
        traverse(op, visit_immortalize, im);
    }
    if (PyDict_CheckExact(op)) {
        /* a dict whose keys are all str does not visit them */
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(op, &pos, &key, &value)) {
            visit_immortalize(key, im);
        }
    }
}

static void
drain(Immortalize *im)
{
    while (im->todo.size > 0) {
        immortalize_referents(im, im->todo.items[--im->todo.size]);
    }
}

/* Every tracked object of `list` that may be made immortal becomes so,
 * with its referents, and moves to immortal_list.  Invariant: traversal
 * only pushes untracked objects and changes no list, so `next` read before
 * it is still the next node. */
static void
immortalize_list(Immortalize *im, PyGC_Head *list)
{
    PyGC_Head *next;
    for (PyGC_Head *g = cg_next(list); g != list; g = next) {
        next = cg_next(g);
        PyObject *op = CG_FROM_GC(g);
        if (!CG_IS_IMMORTAL(op)) {
            if (!make_immortal(im, op)) {
                continue;       /* stays mortal, where it is */
            }
            immortalize_referents(im, op);
            drain(im);
        }
        cg_list_move(g, &immortal_list);
    }
}

Py_ssize_t
cg_immortalize_heap(CgState *st)
{
    if (!CG_CAN_IMMORTALIZE) {
        return 0;
    }
    if (!immortal_list_ready) {
        cg_list_init(&immortal_list);
        immortal_list_ready = 1;
    }
    /* A bounded round's lists go back to the oldest generation first. */
    cg_inc_abort(st);
    Immortalize im = {{NULL, 0, 0}, 0};
    for (int i = 0; i < CG_NUM_GENERATIONS; i++) {
        immortalize_list(&im, cg_gen_head(st, i));
    }
    immortalize_list(&im, cg_permanent_head(st));
    cg_stack_free(&im.todo);
    st->generations[0].count = 0;
    cg_heap_immortalized |= im.made > 0;
    return im.made;
}
