/* collector.h -- the core's C interface between its translation units. */
#ifndef CYCLEGC_COLLECTOR_H
#define CYCLEGC_COLLECTOR_H

#include "gclist.h"

#define CG_DEBUG_STATS          (1 << 0)
#define CG_DEBUG_COLLECTABLE    (1 << 1)
#define CG_DEBUG_UNCOLLECTABLE  (1 << 2)
#define CG_DEBUG_SAVEALL        (1 << 5)
#define CG_DEBUG_LEAK           (CG_DEBUG_COLLECTABLE | CG_DEBUG_UNCOLLECTABLE | CG_DEBUG_SAVEALL)

/* What one collection found and cost. */
typedef struct {
    Py_ssize_t collected;      /* unreachable objects freed (or saved, SAVEALL) */
    Py_ssize_t uncollectable;  /* objects kept because of legacy tp_del */
    Py_ssize_t candidates;     /* objects examined */
    double duration;           /* wall seconds */
} CgResult;

/* Run one complete collection of generation `gen` (0..2) and of every
 * younger generation.  The caller holds the GIL, has no exception set, and
 * has set st->collecting (so no other collection can start meanwhile).
 * Finalizers and callbacks run inside; they may release the GIL. */
void cg_collect_generation(CgState *st, int gen, CgResult *out);

/* The phases collector.c lends to incremental.c: trial deletion of a young
 * chunk, as a young collection's (survivors stay in it, atom tuples among
 * them untracked; returns its size, *survivors how many stay), and steps 6-11 on what trial deletion
 * found unreachable (survivors of those steps move to `old`). */
Py_ssize_t cg_trial_deletion(CgState *st, PyGC_Head *candidates, PyGC_Head *unreachable,
                             Py_ssize_t *survivors);
/* The last step of it (move_unreachable) on `n` candidates whose counts
 * are done: built with cg_list_move_as_candidate, every reference between
 * them subtracted (cg_subtract_ref), nothing run since.  `order`, if not
 * NULL, names the n candidates in list order: the walk prefetches ahead
 * from it. */
Py_ssize_t cg_trial_deletion_subtracted(PyGC_Head *candidates, Py_ssize_t n, PyGC_Head *unreachable,
                                        PyObject *const *order);
/* How many objects the last full collection left to trial deletion (what
 * marking did not reach; all candidates when it did not mark). */
extern Py_ssize_t cg_last_trial_candidates;
/* Seconds spent per generation in each part of cg_collect_generation,
 * summed since the process started (_core._phase_seconds()): where the
 * time of real programs' collections goes (benchmarks/realworld). */
enum { CG_PHASE_MARK, CG_PHASE_SPLIT, CG_PHASE_TRIAL, CG_PHASE_UNTRACK,
       CG_PHASE_DISPOSE, CG_PHASE_OTHER, CG_PHASES };
extern double cg_phase_seconds[CG_NUM_GENERATIONS][CG_PHASES];
/* Heavy objects in young collections (collector.c): the types learned,
 * forgetting them (tests), and how many objects the last young
 * collection skipped. */
PyObject *cg_heavy_types(void);
void cg_forget_heavy_types(void);
int cg_add_heavy_type(PyTypeObject *tp);
extern Py_ssize_t cg_last_heavy_skipped;
/* Debug: (tracked, marked, a sample of the unmarked) of marking now. */
PyObject *cg_unmarked_sample(CgState *st, Py_ssize_t max);
void cg_dispose_garbage(CgState *st, PyGC_Head *unreachable, PyGC_Head *old,
                        Py_ssize_t *collected, Py_ssize_t *uncollectable);
/* The same for a caller that surveyed the garbage itself: `garbage` a
 * normal list of COLLECTING objects, none with a legacy tp_del, `count` of
 * them; `weakrefs`: one is a weakref or has weakrefs; `finalizers`: one has
 * a tp_finalize not yet called. */
void cg_dispose_surveyed_garbage(CgState *st, PyGC_Head *garbage, PyGC_Head *old,
                                 Py_ssize_t count, int weakrefs, int finalizers,
                                 Py_ssize_t *collected, Py_ssize_t *uncollectable);

/* Bounded pauses (incremental.c).  While enabled, automatic collections are
 * increments: a young collection plus a slice of an old-generation round.
 * cg_inc_abort() ends a round, returning its objects to the oldest
 * generation (full collections, freeze, unfreeze call it);
 * cg_inc_lists() names the lists holding objects of the round, for
 * introspection.  cg_run_increment is the protocol.c wrapper (callbacks,
 * metrics) around cg_inc_step. */
int cg_inc_enabled(void);
double cg_inc_max_pause(void);              /* seconds; 0: disabled */
int cg_inc_configure(double max_pause);     /* seconds; 0 disables */
enum { CG_INC_YOUNG = 0, CG_INC_OLD = 1, CG_INC_FULL = 2, CG_INC_EXTRA = 3 };
int cg_inc_plan(CgState *st);               /* what the next increment does */
void cg_inc_request_round(void);            /* the next increment starts a round */
void cg_inc_force_overflow(void);            /* tests: the next increment is an overflow collection */
void cg_inc_force_oversized(Py_ssize_t hard_cap); /* tests: every round uncapped, slices past hard_cap oversized (0: off) */
double cg_inc_set_sweep_cost(double seconds);       /* tests: the pacer's cost per object; returns the previous */
void cg_inc_force_young_chunk(Py_ssize_t n);  /* tests: young chunks of n objects (0: auto, -1: none) */
int cg_inc_young_generation(CgState *st);   /* 0 or 1: the young part of the next increment */
int cg_inc_wants_extra_stop(CgState *st);   /* a round is behind: old work between young stops */
int cg_inc_set_extra_stops(int on);          /* tests: returns the previous setting */
void cg_inc_step(CgState *st, int young_gen, int plan, CgResult *out);
void cg_inc_abort(CgState *st);
int cg_inc_lists(PyGC_Head **heads, int max);
int cg_inc_parked(void);                    /* parked garbage waits to be cleared */
int cg_inc_is_marked(PyObject *op);          /* in this round's marks (tests, diagnosis) */
int cg_inc_cursor_linked(void);             /* the marker walks the permanent list */
PyObject *cg_inc_stats(void);
extern int cg_spread_enabled;                 /* closures proven across stops (default 1; _set_spread) */
void cg_inc_set_spread_step_limit(Py_ssize_t n);   /* tests: members per stop at most (0: budget) */
void cg_inc_set_spread_settle_pages(Py_ssize_t n);    /* tests: verdicts settle n pages a stop */
void cg_inc_set_spread_alive_walk(Py_ssize_t mode);   /* tests: members shown alive by a list walk: 1 always, -1 never */
int cg_inc_spread_from(PyObject *op);         /* tests: the next stop spreads op's closure */

/* The page write detector (writewatch.c): pages are page numbers (address
 * >> 12), sorted, unique.  cg_ww_dirty() lists (in out, at most max) the
 * pages written since cg_ww_protect() protected them; -1 if any page is
 * unmapped, not registered or not present, or more than max are written. */
int cg_ww_available(void);
int cg_ww_protect(const uintptr_t *pages, Py_ssize_t n);
Py_ssize_t cg_ww_dirty(const uintptr_t *pages, Py_ssize_t n, uintptr_t *out, Py_ssize_t max);
/* Writable again without a fault, from pages[pos] until the deadline;
 * returns where it stopped (n: done). */
Py_ssize_t cg_ww_release(const uintptr_t *pages, Py_ssize_t n, Py_ssize_t pos, double deadline);
void cg_ww_after_fork(void);
PyObject *cg_ww_stats(void);
PyObject *cg_ww_selftest(void);          /* tests: the detector on pages of its own */
Py_ssize_t cg_run_increment(int young_gen);   /* young_gen -1: an extra stop, old work only */

/* Frames' value stacks as marking roots (stackroots.c): every frame whose
 * stack the interpreter keeps (stacktop >= 0), and the top frame of the
 * thread named by cg_safe_point_tstate (set by trigger.c while a collection
 * runs at a safe point: an eval-breaker pending call, a 3.11 trace event),
 * whose live depth comes from its bytecode.  cg_stack_roots_configure loads
 * the opcode tables (cyclegc._opcodes) once; call it with the GIL, outside
 * any collection. */
extern PyThreadState *cg_safe_point_tstate;
int cg_park_safe_point(PyThreadState *ts);  /* a slot, or -1 */
void cg_unpark_safe_point(int slot);
void cg_unpark_all(void);                   /* in a forked child */
int cg_stack_roots_configure(void);
void cg_stack_roots_adopt(void);    /* after a collection: if `opcode` is imported, loads them at a safe point */
void cg_stack_roots_reserve(void);  /* takes our co_extra slot (at import) */
void cg_visit_stack_roots(visitproc visit, void *arg);
PyObject *cg_stack_depths(PyObject *code, int any);  /* test hook */
Py_ssize_t cg_live_depths(void);    /* analyses not yet freed (test hook) */
extern int cg_executing_roots;   /* other executing frames' value stacks (on) */
/* 3.11: roots visited inside an allocation miss the top frame's stack;
 * trigger.c queues a pending call (main thread) that calls
 * cg_inc_late_stack_roots() at a safe point.  -1 if it cannot. */
int cg_request_late_stack_roots(void);
void cg_inc_late_stack_roots(void);
PyObject *cg_stack_roots_now(int top_safe);         /* test hook */

/* Visits up to `max` items of a list (from index *pos) or dict (PyDict_Next
 * position *pos), subclasses included, advancing *pos; *done is set when the
 * container is exhausted.  Returns the items visited.  Marking walks wide
 * containers with it a slice at a time (collector.c, incremental.c). */
Py_ssize_t cg_visit_items_slice(PyObject *op, Py_ssize_t *pos, Py_ssize_t max,
                                visitproc visit, void *arg, int *done);

/* Where cg_dispose_garbage puts proven garbage instead of clearing it
 * (incremental.c sets it around an overflow stop, then clears the list a
 * slice per stop); NULL: cleared at once, as the built-in does.  `count`
 * grows by the objects parked; `code_ran` is set if a finalizer or a
 * weakref callback ran first (only then can the parked objects have gained
 * new weakrefs: without it, nothing need look at them again). */
typedef struct {
    PyGC_Head list;
    Py_ssize_t count;
    int code_ran;
} CgPark;
extern CgPark *cg_park_garbage;

/* Whether full collections mark from the roots first (default 1). */
extern int cg_marking_enabled;
extern int cg_fused_full;           /* without marking: steps 2-3 in one walk */
/* Whether the split after marking walks the list with many walkers in
 * flight (default 1) or with one (measurements, tests). */
extern int cg_split_walkers;
/* Trial deletion parks referents in a prefetch ring only for candidate
 * sets of at least this many objects. */
extern Py_ssize_t cg_ring_min_candidates;
/* Trial deletion records the candidates' order (and prefetches from it)
 * from this many candidates (collector.c, "the candidates in list order"). */
extern Py_ssize_t cg_order_min;
/* Young collections take the ring only if, over the first candidates,
 * at least this many per 64 referred to an older container; and what the
 * last such probe found (-1: none yet).  See subtract_refs. */
extern Py_ssize_t cg_ring_probe_older;
extern Py_ssize_t cg_last_ring_probe;

/* An exact tuple (or, if `full`, dict) holding no container: the built-in
 * untracks those among the survivors of a collection. */
int cg_is_atom_container(PyObject *op, int full);

/* Fork-friendly full collections (readonly.c): survivors are only read;
 * the permanent generation is examined too.  Default 0. */
extern int cg_fork_friendly;
/* Set once memory can be shared with another process: this process forked
 * or was forked (the at-fork hooks of api.py), or by tests.  Before that no
 * page is shared, so fork-friendly mode has nothing to spare. */
extern int cg_heap_shared;
/* Whether a full collection now takes the read-only path: fork-friendly
 * mode, and pages may be shared or freeze() holds objects (whose garbage
 * only the read-only path collects). */
int cg_readonly_due(CgState *st);
int cg_find_garbage_readonly(CgState *st, PyGC_Head *young, PyGC_Head *unreachable,
                             Py_ssize_t *candidates, Py_ssize_t *survivors);

/* One collection with everything around it: the collecting flag,
 * gc.callbacks, metrics (protocol.c).  Returns collected + uncollectable,
 * or 0 if a collection is already running.  `reason`: CG_REASON_*. */
enum { CG_REASON_MANUAL = 0, CG_REASON_AUTO = 1, CG_REASON_INCREMENT = 2, CG_REASON_SHUTDOWN = 3 };
Py_ssize_t cg_run_collection(int gen, int reason);
extern unsigned long cg_stop_thread;    /* thread holding `collecting` (0: none) */
extern unsigned long cg_stop_seq;       /* collections and increments begun */

/* Per-collection figures kept by the core (metrics.c). */
void cg_metrics_record(int gen, int reason, const CgResult *r);
PyObject *cg_metrics_snapshot(void);
void cg_metrics_reset(void);

/* Introspection (introspect.c). */
PyObject *cg_get_objects(CgState *st, Py_ssize_t generation);
PyObject *cg_walk_probe(CgState *st);
PyObject *cg_traverse_probe(CgState *st, int order, unsigned long long seed);
PyObject *cg_get_referrers(CgState *st, PyObject *objs);
PyObject *cg_get_referents(PyObject *objs);
void cg_freeze(CgState *st);
void cg_unfreeze(CgState *st);
Py_ssize_t cg_freeze_count(CgState *st);
/* immortal.c: every object alive now made immortal (3.12+; 0 on 3.11),
 * except those that run code when they die; the tracked ones leave the
 * generations for a list no collection walks.  Returns how many it made. */
Py_ssize_t cg_immortalize_heap(CgState *st);
extern int cg_heap_immortalized;    /* immortalize_heap() made objects immortal */

/* Step 7 of a collection (collector.c): clears every weakref that is garbage
 * or refers to garbage (`unreachable`, all COLLECTING), then runs the
 * callbacks of the cleared weakrefs that are alive; those that survive go to
 * `old`.  Returns how many were freed by their callback; *called says
 * whether any callback ran.  Also used on parked garbage (incremental.c). */
Py_ssize_t cg_handle_weakrefs(PyGC_Head *unreachable, PyGC_Head *old, int *called);
void cg_clear_garbage_object(PyObject *op);     /* step 10's tp_clear of one object */

/* The layout check (layout.c): proves the compiled-in struct offsets against
 * the running interpreter.  0 and the seconds it took (wall, and CPU time of
 * the thread), or -1 with an ImportError naming the patch levels built for
 * and running.  Changes nothing lasting; run before anything touches the
 * collector's lists. */
int cg_layout_check(double *seconds, double *cpu_seconds);
PyObject *cg_layout_groups(void);        /* the names of its groups, a tuple */

/* Automatic collections while installed (trigger.c). */
Py_ssize_t cg_threshold0(CgState *st);   /* gc.get_threshold()[0]: while installed
                                          * the interpreter's field is 0 */
void cg_set_threshold0(CgState *st, int threshold);
PyObject *cg_trigger_install(PyObject *self, PyObject *ignored);
PyObject *cg_trigger_uninstall(PyObject *self, PyObject *ignored);
PyObject *cg_trigger_is_installed(PyObject *self, PyObject *ignored);
PyObject *cg_trigger_after_fork(PyObject *self, PyObject *restart_helper);
PyObject *cg_trigger_stats(PyObject *self, PyObject *ignored);
PyObject *cg_trigger_call_unwrapped(PyObject *self, PyObject *func);

#endif /* CYCLEGC_COLLECTOR_H */
