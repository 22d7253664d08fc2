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

/* Whether full collections mark from the roots first (default 1). */
extern int cg_marking_enabled;

/* An exact tuple (or, if `full`, dict) holding no container: the built-in
 * untracks those among the survivors of a collection. */
int cg_is_atom_container(PyObject *op, int full);

/* Fork-friendly full collections (readonly.c): survivors are only read;
 * the permanent generation is examined too.  Default 0. */
extern int cg_fork_friendly;
int cg_find_garbage_readonly(CgState *st, PyGC_Head *young, PyGC_Head *unreachable,
                             Py_ssize_t *candidates, Py_ssize_t *survivors);

/* One collection with everything around it: the collecting flag,
 * gc.callbacks, metrics (protocol.c).  Returns collected + uncollectable,
 * or 0 if a collection is already running.  `reason`: CG_REASON_*. */
enum { CG_REASON_MANUAL = 0, CG_REASON_AUTO = 1, CG_REASON_INCREMENT = 2, CG_REASON_SHUTDOWN = 3 };
Py_ssize_t cg_run_collection(int gen, int reason);

/* Per-collection figures kept by the core (metrics.c). */
void cg_metrics_record(int gen, int reason, const CgResult *r);
PyObject *cg_metrics_snapshot(void);
void cg_metrics_reset(void);

/* Introspection (introspect.c). */
PyObject *cg_get_objects(CgState *st, Py_ssize_t generation);
PyObject *cg_get_referrers(CgState *st, PyObject *objs);
PyObject *cg_get_referents(PyObject *objs);
void cg_freeze(CgState *st);
void cg_unfreeze(CgState *st);
Py_ssize_t cg_freeze_count(CgState *st);

/* Automatic collections while installed (trigger.c). */
int cg_trigger_enabled(void);            /* cyclegc's enabled flag; -1 if not installed */
int cg_trigger_set_enabled(int on);      /* 1 if installed (and set), 0 if not */
PyObject *cg_trigger_install(PyObject *self, PyObject *ignored);
PyObject *cg_trigger_uninstall(PyObject *self, PyObject *ignored);
PyObject *cg_trigger_is_installed(PyObject *self, PyObject *ignored);
PyObject *cg_trigger_after_fork(PyObject *self, PyObject *ignored);
PyObject *cg_trigger_stats(PyObject *self, PyObject *ignored);

#endif /* CYCLEGC_COLLECTOR_H */
