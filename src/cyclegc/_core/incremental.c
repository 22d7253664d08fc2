/* incremental.c -- bounded pauses: the old generation a slice at a time.
 *
 * With install(max_pause_ms=P) every automatic collection is an
 * *increment*: the young collection the built-in would run (generation 0,
 * or 0 and 1), then as much old-generation work as fits in what is left of
 * P.  Old-generation work is organised in *rounds*, started by the
 * built-in's own rule for a full collection (10 generation-1 collections
 * and old objects grown by a quarter), so a round costs about what one full
 * collection would, and comes as often.
 *
 * Why no barrier is needed.  CPython has no write barrier, so nothing an
 * increment learns about reachability stays true while the program runs.
 * We never rely on it.  The one fact every verdict rests on is the one the
 * built-in's does: trial deletion over ANY set S of tracked objects,
 * done in one stop, is exact about S (an object referenced from outside S,
 * or reachable from one that is, survives).  What an increment learned
 * earlier only decides *which* S to examine.  A wrong guess costs work or
 * delays a verdict to the next round; it never frees a live object.
 *
 * A round:
 *
 *   start        the oldest generation moves to `to_sweep`: the objects this
 *                round must account for.  Objects promoted meanwhile go to
 *                the (now empty) oldest generation and wait for the next
 *                round.
 *   mark_frozen  frozen objects (the permanent generation) are put in the
 *                mark set without being moved: a marker object (an empty
 *                list of ours) walks the permanent list, so the walk can
 *                stop anywhere and resume safely, whatever is freed.
 *   mark         what the roots (sys.modules, every thread's frames: their
 *                locals and, where known live, their value stacks,
 *                stackroots.c) reach
 *                is *probably* alive: marked in `marks`, an address bitmap
 *                outside the objects (addrset.h; list links are rewritten
 *                by the interpreter, so a mark cannot live in them), moved
 *                to `gray`, traversed later in FIFO order and moved to
 *                `visited`.  Lists are the work queue because the
 *                interpreter unlinks an object from whatever list holds it
 *                when it frees it: no dangling pointers between increments,
 *                and no references held that would delay a destructor.
 *                Lists and dicts (subclasses too: OrderedDict, defaultdict)
 *                of more than WIDE items are walked a slice of items per
 *                step, parked meanwhile alone on a list of ours (freed while
 *                parked: the list is empty, the walk stops).  A subclass's
 *                other references (its __dict__, a default_factory) are not
 *                marked this way: they stay unmarked, which costs sweep
 *                work, not correctness.  Other huge containers (sets,
 *                deques) are traversed whole: a stop can overrun there.
 *   sweep        slices S are cut from `to_sweep`: each seed object with
 *                its closure through *unmarked* tracked objects (stopping
 *                at marked ones, which is what keeps S small), capped by
 *                the time left, counted as it is cut (build_slice does
 *                trial deletion's first two steps).  Before each stop's
 *                first slice the roots are visited again and what they
 *                reach unmarked is marked first (rescan_roots: a frame may
 *                have taken up what marking missed).  Trial deletion on S; its survivors are
 *                marked and move to `visited`; its garbage goes through the
 *                usual finalizer / weakref / tp_clear phases of collector.c.
 *   finish       `visited` becomes the oldest generation again, in front of
 *                the objects promoted during the round; the marks are
 *                cleared in O(1) (addrset_clear: chunks are zeroed when next
 *                used), their memory kept for the next round.
 *
 * Garbage is found within two rounds: an evicted cycle is unmarked in the
 * first round that starts after it died, and no marked object is reachable
 * from it (it is unreachable), so its closure holds the whole cycle.  A
 * cycle partly marked (it died during marking) waits for the next round.
 *
 * Limits, stated: a garbage structure whose closure exceeds the slice cap
 * cannot be proven garbage in a bounded stop.  Slices that hit the cap are
 * counted and put back, and the next stop takes that closure whole as its
 * first slice (after two such slices in a row found alive, for two rounds
 * only rounds after two truncated ones are uncapped: each seed's closure
 * taken whole).  A slice past the cap is an oversized slice (an
 * "overflow" stop, counted in incremental_stats()), the only stop not
 * bounded by P, proportional to the structure, not to the heap.  When a
 * round falls behind its pacer, extra stops (old work only) come halfway
 * between young collections.  Its garbage is parked and cleared a
 * slice per stop.  (Until the fourth session the overflow stop was one
 * complete collection: marking the whole heap.)  Marking from
 * frames and modules misses objects held only by C code; they cost sweep
 * work every round but are never freed (trial deletion sees the reference).
 *
 * Young generations bigger than a stop (a raised threshold0) are collected a
 * chunk per stop (young_chunked): same soundness argument as a slice.
 *
 * The pacer.  Rounds must finish before the program has promoted much more
 * (memory), yet not spend every stop on old work when there is no hurry
 * (throughput, latency of the requests around the stop).  Each increment's
 * quota = the round's remaining work spread over the increments left before
 * promotions since the round started reach `headroom` (a tenth of the
 * built-in's quarter of the old generation), at least MIN_QUOTA objects;
 * the stop's time limit caps it.  Promotions per increment are a running
 * average; the cost per swept object follows the slowest recent slice (up
 * at once, down slowly), so stops err on the short side.
 */
#include "collector.h"
#include "addrset.h"

#define WIDE 1024               /* items per slice of a wide list or dict */
#define WIDE_DEPTH 16           /* wide containers parked at once */
#define CLOCK_EVERY 64          /* objects between deadline checks */
#define MIN_QUOTA 2000          /* objects of old work per increment, at least */
#define MIN_SLICE 64            /* a sweep slice, at least */
#define BUDGET_SHARE 0.7        /* of max_pause, the collector's to plan for */
/* 3.11: how long a round's marking waits for the main thread's late stack
 * roots, besides 8 increments: with other threads collecting, 8 increments
 * pass before the main thread next holds the GIL (threads_work.py: 2-9 of
 * 13-18 requests served, a 200k-row table unmarked in 3 runs of 4). */
#define LATE_ROOTS_WAIT 0.050

typedef enum { IDLE = 0, MARK_FROZEN, MARK, SWEEP } Phase;

/* What one stop spent its time on, by part: the young collection, marking
 * (frozen objects, roots, gray objects, wide slices), building and deciding
 * sweep slices (trial deletion), and disposing of the garbage they found
 * (weakrefs, finalizers, resurrection check, tp_clear), or a complete
 * overflow / fork-friendly collection.  The part that took longest is the
 * stop's cause; its object count says how big it was. */
enum { PART_YOUNG = 0, PART_MARK, PART_SWEEP, PART_DISPOSE, PART_FULL, NPARTS };
static const char *part_names[NPARTS] = {
    "young collection", "mark", "sweep slice", "garbage disposal (weakrefs, finalizers, tp_clear)",
    "complete collection",
};

typedef struct {
    double seconds;
    double cpu_seconds;             /* the thread's CPU time: what a busy machine does not inflate */
    double cpu_start;
    double part_seconds[NPARTS];
    Py_ssize_t part_objects[NPARTS];
    Py_ssize_t slices;
    int young_gen;
    int overflow;
    int deferred;                   /* a slice was put back for the next stop */
    Py_ssize_t oversized_at;        /* slices before the first oversized one; -1: none */
} StopInfo;

static struct {
    int initialized;
    double max_pause;               /* seconds; 0: disabled */
    Phase phase;
    PyGC_Head to_sweep, gray, visited;
    PyGC_Head wide_head[WIDE_DEPTH];
    Py_ssize_t wide_pos[WIDE_DEPTH];
    int nwide;
    PyObject *cursor;               /* walks the permanent generation */
    AddrSet marks;
    /* pacing */
    double sweep_cost;              /* seconds per object in S (average) */
    double young_cost;              /* seconds per object of a young collection */
    Py_ssize_t gen1_estimate;       /* objects in generation 1 (survivors since) */
    Py_ssize_t young_chunks, young_chunked_objects, gen0_passed;
    int young_backlog;              /* generation 0 is being collected in chunks */
    Py_ssize_t chunk_count_mark;    /* count0 as the last chunk left it (-1: none) */
    Py_ssize_t young_catchup, young_catchup_objects;  /* chunks grown to keep up; their excess */
    int last_young_chunked;         /* the last increment's young part was a chunk */
    Py_ssize_t forced_chunk;        /* tests: chunk size (0: from the budget; -1: never chunk) */
    Py_ssize_t forced_hard_cap;     /* tests: > 0: every round uncapped, slices past it oversized;
                                     * < 0: rounds capped, closures past -n put back, taken whole */
    int extra_stops_off;            /* tests, experiments: no extra stops */
    double promo_per_inc;           /* promotions per increment (average) */
    Py_ssize_t last_pending;
    Py_ssize_t round_work_est, round_work_done;
    Py_ssize_t round_start_pending, round_headroom;
    Py_ssize_t round_survivors;
    int round_truncated, truncated_rounds, overflow_due, round_requested;
    int uncapped, uncap_next;       /* this round's / the next round's slices take whole closures */
    int take_whole;                 /* the next stop's first slice takes its closure whole */
    int whole_off_rounds;           /* rounds left before a truncation may do that again */
    int alive_whole_streak;         /* oversized slices in a row found mostly alive */
    int late_roots_wait;            /* 3.11: increments marking waits for them */
    double late_roots_until;        /* ... and at least until then (seconds) */
    Py_ssize_t late_roots_requested, late_roots_visited;
    /* figures */
    Py_ssize_t rounds, increments, old_increments, marked, swept;
    Py_ssize_t collected, uncollectable, truncations, overflow_collections, aborted;
    Py_ssize_t oversized_slices;    /* overflow stops that were slices (the rest: complete collections) */
    Py_ssize_t whole_garbage_slices; /* slices found garbage whole (all_garbage) */
    Py_ssize_t deferred_slices;     /* oversized closures put back for a stop of their own */
    Py_ssize_t extra_stops;         /* old-work-only stops between young ones (behind rounds) */
    Py_ssize_t largest_slice;
    double longest_increment, round_started_at, last_round_seconds;
    StopInfo stop, longest_stop;    /* the current (last) stop; the longest */
    StopInfo busiest_stop;          /* the one with the most thread CPU time */
    /* proven garbage of an overflow collection, cleared a slice per stop */
    PyGC_Head parked;
    Py_ssize_t parked_total, parked_cleared, parked_max;
    int clearing;                   /* clear_parked is running (a finalizer may freeze()) */
} inc;

static void
init_state(void)
{
    if (inc.initialized) {
        return;
    }
    cg_list_init(&inc.to_sweep);
    cg_list_init(&inc.gray);
    cg_list_init(&inc.visited);
    cg_list_init(&inc.parked);
    for (int i = 0; i < WIDE_DEPTH; i++) {
        cg_list_init(&inc.wide_head[i]);
    }
    inc.sweep_cost = 300e-9;
    inc.young_cost = 100e-9;
    inc.chunk_count_mark = -1;
    inc.initialized = 1;
}

int
cg_inc_enabled(void)
{
    return inc.max_pause > 0;
}

double
cg_inc_max_pause(void)
{
    return inc.max_pause;
}

int
cg_inc_configure(double max_pause)
{
    init_state();
    if (inc.cursor == NULL) {
        inc.cursor = PyList_New(0);
        if (inc.cursor == NULL) {
            return -1;
        }
        PyObject_GC_UnTrack(inc.cursor);
    }
    if (max_pause <= 0) {
        cg_inc_abort(cg_state());
        inc.max_pause = 0;
    }
    else {
        if (cg_stack_roots_configure() < 0) {
            return -1;
        }
        inc.max_pause = max_pause;
    }
    return 0;
}

/* The calling thread's CPU seconds.  Costs per object are measured with it:
 * a stop the scheduler preempted on a busy machine took longer on the wall
 * clock, not more work, and an estimate that follows the wall clock "up at
 * once" shrank every later slice and chunk to its minimum. */
static double
thread_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- list helpers ------------------------------------------------------ */

/* Link `node` (in no list) right after `pos`. */
static void
insert_after(PyGC_Head *node, PyGC_Head *pos)
{
    PyGC_Head *next = cg_next(pos);
    cg_set_prev(node, pos);
    cg_set_next(node, next);
    cg_set_next(pos, node);
    cg_set_prev(next, node);
}

static void
unlink_node(PyGC_Head *node)
{
    PyGC_Head *prev = cg_prev(node);
    PyGC_Head *next = cg_next(node);
    cg_set_next(prev, next);
    cg_set_prev(next, prev);
}

/* ---- marks ------------------------------------------------------------- */

/* A tracked, mortal container not (yet) shown alive in this round. */
static inline int
is_white(PyObject *op)
{
    return cg_is_gc(op) && cg_is_tracked(op) && !CG_IS_IMMORTAL(op)
           && !addrset_has(&inc.marks, op);
}

typedef struct {
    int holds_container;    /* the object traversed refers to a tracked container */
} GrayCtx;

/* A tracked referent not yet marked turns gray (marked, queued on `gray`). */
static inline void
make_gray(PyObject *op)
{
    if (!CG_IS_IMMORTAL(op) && !addrset_has(&inc.marks, op)
        && addrset_add(&inc.marks, op) == 0) {
        cg_list_move(CG_AS_GC(op), &inc.gray);
    }
}

/* Visitor of exact tuples and dicts (their untracking depends on what they
 * hold): a white referent turns gray at once. */
static int
visit_gray(PyObject *op, void *arg)
{
    GrayCtx *ctx = (GrayCtx *)arg;
    if (!cg_is_gc(op)) {
        return 0;
    }
    if (!cg_is_tracked(op)) {
        ctx->holds_container |= !PyTuple_CheckExact(op);
        return 0;
    }
    ctx->holds_container = 1;
    make_gray(op);
    return 0;
}

/* Referents of every other object wait in a ring (gclist.h), their header
 * lines prefetched, and turn gray when they leave it: graying does not
 * depend on order.  The ring holds borrowed pointers, so it is drained
 * before mark_step returns, i.e. before any Python code can run. */
static CgRing gray_ring = CG_RING_INIT;

static inline void
gray_checked(PyObject *op)
{
    if (cg_is_gc(op) && cg_is_tracked(op)) {
        make_gray(op);
    }
}

static int
visit_gray_deferred(PyObject *op, void *Py_UNUSED(arg))
{
    PyObject *due = cg_ring_defer(&gray_ring, op, 0);
    if (due != NULL) {
        gray_checked(due);
    }
    return 0;
}

static void
drain_gray_ring(void)
{
    while (!cg_ring_empty(&gray_ring)) {
        gray_checked(cg_ring_take(&gray_ring));
    }
}

/* ---- start ------------------------------------------------------------- */

/* Invariant after: every old object is in `to_sweep`, the marks are empty,
 * the round's pacing figures are set. */
static void
round_start(CgState *st, double now)
{
    PyGC_Head *oldest = cg_gen_head(st, CG_NUM_GENERATIONS - 1);
    cg_list_merge(&inc.visited, &inc.to_sweep);     /* leftovers, if any */
    cg_list_merge(&inc.gray, &inc.to_sweep);
    cg_list_merge(oldest, &inc.to_sweep);
    addrset_clear(&inc.marks);
    st->generations[CG_NUM_GENERATIONS - 1].count = 0;
    inc.round_work_est = Py_MAX(st->long_lived_total + st->long_lived_pending, 10000);
    inc.round_work_done = 0;
    inc.round_start_pending = st->long_lived_pending;
    inc.round_headroom = Py_MAX(st->long_lived_total / 40, 10000);
    inc.round_survivors = 0;
    inc.round_truncated = 0;
    inc.uncapped = inc.uncap_next || inc.forced_hard_cap > 0;
    inc.uncap_next = 0;
    inc.round_started_at = now;
    inc.round_requested = 0;
    inc.late_roots_wait = 0;
    inc.late_roots_until = 0;
    inc.phase = MARK_FROZEN;
    PyGC_Head *perm = cg_permanent_head(st);
    insert_after(CG_AS_GC(inc.cursor), perm);
}

/* ---- mark_frozen ------------------------------------------------------- */

/* Marks the permanent generation's objects from the cursor on, until the
 * deadline.  Invariant: everything between the permanent head and the
 * cursor is marked (or immortal).  Returns 1 when the walk is complete (the
 * cursor is then out of every list), else 0. */
static int
mark_frozen_step(CgState *st, double deadline, Py_ssize_t *work)
{
    PyGC_Head *perm = cg_permanent_head(st);
    PyGC_Head *c = CG_AS_GC(inc.cursor);
    PyGC_Head *last = c;
    Py_ssize_t n = 0;
    for (PyGC_Head *g = cg_next(c); g != perm; g = cg_next(g)) {
        if (n % CLOCK_EVERY == 0 && n > 0 && cg_now() > deadline) {
            break;
        }
        PyObject *op = CG_FROM_GC(g);
        if (!CG_IS_IMMORTAL(op)) {
            (void)addrset_add(&inc.marks, op);
        }
        last = g;
        n++;
    }
    *work += n;
    if (cg_next(last) == perm) {
        cg_list_untrack(c);
        return 1;
    }
    if (last != c) {
        unlink_node(c);
        insert_after(c, last);
    }
    return 0;
}

/* ---- mark -------------------------------------------------------------- */

/* Traverses one gray object: its white referents turn gray; it moves to
 * `visited`, or stops being tracked if it is an exact tuple or dict holding
 * no container (as a full collection would untrack it), or, a wide list or
 * dict, is parked to be walked in slices. */
static void
mark_one(PyGC_Head *g)
{
    PyObject *op = CG_FROM_GC(g);
    PyTypeObject *tp = Py_TYPE(op);
    if (inc.nwide < WIDE_DEPTH
        && ((PyList_Check(op) && PyList_GET_SIZE(op) > WIDE)
            || (PyDict_Check(op) && PyDict_GET_SIZE(op) > WIDE))) {
        cg_list_move(g, &inc.wide_head[inc.nwide]);
        inc.wide_pos[inc.nwide] = 0;
        inc.nwide++;
        return;
    }
    if (tp != &PyDict_Type && tp != &PyTuple_Type) {
        tp->tp_traverse(op, visit_gray_deferred, NULL);
        cg_list_move(g, &inc.visited);
        inc.round_survivors++;
        return;
    }
    GrayCtx ctx = {0};
    tp->tp_traverse(op, visit_gray, &ctx);
    if ((tp == &PyDict_Type && !ctx.holds_container)
        || (tp == &PyTuple_Type && !ctx.holds_container && cg_is_atom_container(op, 1))) {
        cg_list_untrack(g);
    }
    else {
        cg_list_move(g, &inc.visited);
        inc.round_survivors++;
    }
}

/* One slice of the innermost parked wide container.  Returns items visited. */
static Py_ssize_t
mark_wide_slice(void)
{
    int i = inc.nwide - 1;
    PyGC_Head *head = &inc.wide_head[i];
    if (cg_list_is_empty(head)) {       /* freed while parked */
        inc.nwide--;
        return 1;
    }
    PyGC_Head *g = cg_next(head);
    PyObject *op = CG_FROM_GC(g);
    GrayCtx ctx = {0};
    int done;
    Py_ssize_t n = cg_visit_items_slice(op, &inc.wide_pos[i], WIDE,
                                        PyList_Check(op) ? visit_gray_deferred : visit_gray,
                                        &ctx, &done);
    if (done) {
        cg_list_move(g, &inc.visited);
        inc.round_survivors++;
        inc.nwide--;
    }
    return n + 1;
}

/* Marks until the deadline or the quota.  Gray objects first, so the gray
 * list stays short; a wide slice only when it is empty.  Returns 1 when
 * marking is complete. */
static int
mark_step(double deadline, Py_ssize_t quota, Py_ssize_t *work)
{
    /* The clock is read every CLOCK_EVERY units of work, a unit being an
     * object traversed or an item of a wide slice (a slice is WIDE items:
     * counting it as one step let 64 slices, 65k items, run unchecked). */
    Py_ssize_t n = 0, next_check = CLOCK_EVERY;
    while (n < quota) {
        if (n >= next_check) {
            if (cg_now() > deadline) {
                break;
            }
            next_check = n + CLOCK_EVERY;
        }
        if (!cg_list_is_empty(&inc.gray)) {
            mark_one(cg_next(&inc.gray));
            n++;
        }
        else if (!cg_ring_empty(&gray_ring)) {
            gray_checked(cg_ring_take(&gray_ring));
        }
        else if (inc.nwide > 0) {
            n += mark_wide_slice();
        }
        else {
            *work += n;
            inc.marked += n;
            return 1;
        }
    }
    drain_gray_ring();      /* may leave objects on `gray`: marking goes on */
    *work += n;
    inc.marked += n;
    return 0;
}

/* The value-stack roots of the calling thread's top frame, at a safe point
 * after the round's roots were visited elsewhere (3.11): they turn gray if
 * marking is still running; later, sweep would not see a new gray object. */
void
cg_inc_late_stack_roots(void)
{
    CgState *st = cg_state();
    if (inc.phase != MARK || st->collecting) {
        return;
    }
    inc.late_roots_wait = 0;
    inc.late_roots_until = 0;
    inc.late_roots_visited++;
    GrayCtx ctx = {0};
    cg_visit_stack_roots(visit_gray, &ctx);
}

/* ---- roots again, during sweep ------------------------------------------ */

/* The roots as they are now turn gray if they are not marked; returns 1 if
 * any did (the gray list is not empty).  Marking visited the roots once, when the round started; a
 * structure a frame took up afterwards (a local assigned, an argument
 * passed) while its old path was cut before marking reached it is alive and
 * unmarked, and sweep would examine all of it in one slice to find that out
 * (Sphinx: doctrees of 10-30k objects held only by a frame, each found
 * alive by an oversized slice).  Called once per stop of the sweep phase,
 * before its first slice: a frame walk, a few microseconds; what turned
 * gray is marked in at most half the stop, the rest of the gray list in
 * the next stops, and all of it before the round finishes (its objects
 * must be back in `visited` by then).  Like all marking it decides only
 * which sets sweep examines, never a verdict: a gray object's unmarked
 * referents may meanwhile be examined by a slice, and found alive. */
static int
rescan_roots(void)
{
    GrayCtx ctx = {0};
    cg_visit_roots(visit_gray, &ctx);
    cg_visit_stack_roots(visit_gray, &ctx);
    return !cg_list_is_empty(&inc.gray);
}

/* ---- sweep ------------------------------------------------------------- */

/* A slice stops taking seeds at `cap` objects; the closure of the last seed
 * may run on to `hard_cap` (twice what the time left allows).  Only a closure cut at the hard cap
 * counts as truncated: that seed's structure is too big for one stop. */
typedef struct {
    PyGC_Head *slice;
    Py_ssize_t n, cap, hard_cap;
    int truncated;
    CgSlots ring;           /* referents waiting for their header lines */
    Py_ssize_t positive;    /* members whose gc_refs is above zero */
    int listed;             /* every member is in `members`, in list order */
} SliceCtx;

/* The members of the slice being cut, in list order (grown as needed,
 * kept between slices up to MEMBERS_KEPT entries): what lets the walk of an
 * all-garbage slice prefetch ahead (all_garbage). */
#define MEMBERS_KEPT 65536
static PyObject **members;
static Py_ssize_t members_cap;

static inline void
list_member(SliceCtx *ctx, PyObject *op)
{
    if (ctx->n > members_cap) {
        Py_ssize_t cap = members_cap ? members_cap * 2 : 4096;
        while (cap < ctx->n) {
            cap *= 2;
        }
        PyObject **m = PyMem_RawRealloc(members, (size_t)cap * sizeof(PyObject *));
        if (m == NULL) {
            ctx->listed = 0;
            return;
        }
        members = m;
        members_cap = cap;
    }
    members[ctx->n - 1] = op;
}

/* A member joins as update_refs would leave it (gc_refs = refcount,
 * COLLECTING set). */
static inline void
add_to_slice(PyGC_Head *g, SliceCtx *ctx)
{
    cg_list_move_as_candidate(g, ctx->slice);
    ctx->n++;
    ctx->positive++;        /* a refcount is at least 1 */
    if (ctx->listed) {
        list_member(ctx, CG_FROM_GC(g));
    }
}

/* Visitor of a member: a referent in S (COLLECTING marks membership) loses
 * one count, as subtract_refs would; an unmarked tracked referent joins S
 * and loses one.  Each member is traversed once, when the scan reaches it,
 * and every referent of it that is ever in S is in S after its visit (a
 * referent left out then, marked, immortal or past the hard cap, stays
 * out: once the cap is reached nothing joins), so every reference between
 * members is subtracted exactly once: building S and subtract_refs are one
 * walk (for a structure bigger than the caches, a walk is a miss per
 * object).  Nothing outside S carries COLLECTING: parked garbage, the only
 * other kind, is cleared at the start of every stop. */
static void
pull(PyObject *op, SliceCtx *ctx)
{
    if (!cg_is_gc(op)) {
        return;
    }
    PyGC_Head *g = CG_AS_GC(op);
    if (g->_gc_prev & CG_PREV_COLLECTING) {
        if (cg_subtract_ref(g) == 0) {
            ctx->positive--;
        }
        return;
    }
    if (g->_gc_next == 0 || CG_IS_IMMORTAL(op) || addrset_has(&inc.marks, op)) {
        return;
    }
    if (ctx->n >= ctx->hard_cap) {
        ctx->truncated = 1;
        return;
    }
    add_to_slice(g, ctx);
    if (cg_subtract_ref(g) == 0) {
        ctx->positive--;
    }
}

/* The referent waits in the ring while its header lines load (gclist.h);
 * deferring is sound because pull() does not depend on when it runs
 * within the build: the marks do not change, and once the hard cap is
 * reached nothing joins.  build_slice drains the ring before it ends. */
static int
visit_pull(PyObject *op, void *arg)
{
    SliceCtx *ctx = (SliceCtx *)arg;
    if (op != NULL) {
        PyObject *due = cg_slots_swap(&ctx->ring, op);
        if (due != NULL) {
            pull(due, ctx);
        }
    }
    return 0;
}

/* Cuts a slice S off `to_sweep`: seeds in list order, each followed by its
 * closure through unmarked objects, until `cap` objects.  Invariant after:
 * S is linked by next only; its members, and only they, carry COLLECTING;
 * each one's gc_refs counts the references to it from outside S (trial
 * deletion's steps 2 and 3 are done); nothing else was written but list
 * links. */
static void
build_slice(SliceCtx *ctx)
{
    PyGC_Head *scanned = ctx->slice;
    while (ctx->n < ctx->cap && !cg_list_is_empty(&inc.to_sweep)) {
        PyGC_Head *seed = cg_next(&inc.to_sweep);
        PyObject *op = CG_FROM_GC(seed);
        if (CG_IS_IMMORTAL(op) || addrset_has(&inc.marks, op)) {
            cg_list_move(seed, &inc.visited);
            continue;
        }
        add_to_slice(seed, ctx);
        for (;;) {
            while (cg_next(scanned) != ctx->slice) {
                scanned = cg_next(scanned);
                PyObject *member = CG_FROM_GC(scanned);
                CG_PREFETCH(cg_next(scanned));
                Py_TYPE(member)->tp_traverse(member, visit_pull, ctx);
            }
            if (ctx->ring.n == 0) {
                break;
            }
            while (ctx->ring.n > 0) {
                pull(cg_slots_pop(&ctx->ring), ctx);
            }
        }
    }
}

static void park_proven(CgState *st, CgPark *proven);

/* The survivors of a slice (`slice`, a normal list), in one walk: tuples
 * and dicts holding only atoms are untracked, as a full collection would
 * (a round stands for one), and the rest are marked, so that later slices
 * of the round stop at them.  Returns how many stay. */
static Py_ssize_t
keep_survivors(PyGC_Head *slice)
{
    Py_ssize_t kept = 0;
    PyGC_Head *g = cg_next(slice);
    while (g != slice) {
        PyGC_Head *next = cg_next(g);
        PyObject *op = CG_FROM_GC(g);
        PyTypeObject *tp = Py_TYPE(op);
        if ((tp == &PyTuple_Type || tp == &PyDict_Type) && cg_is_atom_container(op, 1)) {
            cg_list_untrack(g);
        }
        else {
            (void)addrset_add(&inc.marks, op);
            kept++;
        }
        g = next;
    }
    return kept;
}

/* Puts a slice back at the head of `to_sweep`, as if build_slice had
 * never cut it: prev links given back (FINALIZED kept, COLLECTING and the
 * counts dropped).  Nothing was decided about its members, so nothing is
 * undone but list links; the same seed starts the next slice.  Members
 * pulled from elsewhere (a young generation) stay in `to_sweep`, as a
 * slice's survivors would have joined `visited`. */
static void
abandon_slice(PyGC_Head *slice)
{
    PyGC_Head *prev = slice;
    for (PyGC_Head *g = cg_next(slice); g != slice; g = cg_next(g)) {
        g->_gc_prev = (uintptr_t)prev | (g->_gc_prev & CG_PREV_FINALIZED);
        prev = g;
    }
    slice->_gc_prev = (uintptr_t)prev;
    cg_list_merge(&inc.to_sweep, slice);    /* slice, then the rest */
    cg_list_merge(slice, &inc.to_sweep);
}

/* A slice no member of which is referenced from outside it (ctx->positive
 * is 0: every gc_refs is 0) is garbage whole: move_unreachable would move
 * every member to `unreachable` without traversing one.  This does what it
 * would in one walk of the members in list order, prefetching from the
 * array PREFETCH_AHEAD members ahead (a walk of the list itself is a chain
 * of dependent misses, 20 % of an oversized slice of garbage): give back
 * each member's prev link (keeping its flag bits) and survey it as
 * cg_dispose_garbage would (the walk it saves there).  Returns 0 and
 * leaves everything as it was if a member has a legacy tp_del (the usual
 * path handles those).  After: `slice` is a normal list of COLLECTING
 * objects; *weakrefs and *finalizers say what disposal must look at. */
#define PREFETCH_AHEAD 12
static int
all_garbage(PyGC_Head *slice, Py_ssize_t n, int *weakrefs, int *finalizers)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (Py_TYPE(members[i])->tp_del != NULL) {
            return 0;
        }
    }
    int w = 0, f = 0;
    PyTypeObject *last = NULL;
    int is_weakref = 0, has_finalize = 0;
    PyGC_Head *prev = slice;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n) {
            cg_prefetch_object(members[i + PREFETCH_AHEAD], 0);
        }
        PyObject *op = members[i];
        PyGC_Head *g = CG_AS_GC(op);
        PyTypeObject *tp = Py_TYPE(op);
        if (tp != last) {
            last = tp;
            is_weakref = PyWeakref_Check(op);
            has_finalize = tp->tp_finalize != NULL;
        }
        w |= is_weakref || (tp->tp_weaklistoffset != 0 && *cg_weakrefs_listptr(op) != NULL);
        f |= has_finalize && !(g->_gc_prev & CG_PREV_FINALIZED);
        g->_gc_prev = (uintptr_t)prev | (g->_gc_prev & (CG_PREV_FINALIZED | CG_PREV_COLLECTING));
        prev = g;
    }
    *weakrefs = w;
    *finalizers = f;
    return 1;
}

/* One slice: cut, trial deletion, survivors marked and kept, garbage
 * disposed of.  Returns the slice's size.
 *
 * In an uncapped round (after two rounds in a row truncated a closure)
 * the closure of every seed is taken whole, however big: the one way to
 * prove a structure bigger than a stop garbage without a write barrier is
 * to examine all of it in one stop.  A slice past `hard_cap` is then an
 * overflow stop: not bounded by the budget, but proportional to the
 * structure, not to the heap as the complete collection it replaces was.
 * Same soundness as any slice (trial deletion over a set examined within
 * one stop); its garbage is parked, as an overflow collection's is, so
 * that tp_clear and the freeing are spread over the next stops. */
static Py_ssize_t
sweep_slice(CgState *st, Py_ssize_t cap, Py_ssize_t hard_cap, int defer, CgResult *out)
{
    PyGC_Head slice, unreachable;
    CgPark proven = {.count = 0, .code_ran = 0};
    cg_list_init(&slice);
    cg_list_init(&proven.list);
    if (inc.forced_hard_cap != 0) {
        hard_cap = Py_ABS(inc.forced_hard_cap);
    }
    int taken_whole = inc.take_whole && !defer;
    if (taken_whole) {
        inc.take_whole = 0;
    }
    SliceCtx ctx = {&slice, 0, cap,
                    (inc.uncapped && !defer) || taken_whole ? PY_SSIZE_T_MAX : hard_cap, 0};
    cg_slots_init(&ctx.ring);
    ctx.positive = 0;
    ctx.listed = 1;
    double t0 = cg_now(), c0 = thread_cpu_now();
    build_slice(&ctx);
    if (ctx.truncated) {
        /* In a capped round a structure too big for this stop would only
         * be found alive in part by trial deletion, and left to the rounds
         * after (large garbage, Sphinx's doctrees, waited three rounds
         * and piled up): the next stop takes it whole as its first slice
         * (an oversized slice), in this round, unless alive ones turned
         * up lately (whole_off_rounds).  And an oversized closure after
         * other work of the stop would add to it.  Either way it goes
         * back and starts the next stop. */
        int whole_next = !inc.uncapped && inc.whole_off_rounds == 0;
        if (defer || whole_next) {
            abandon_slice(&slice);
            inc.take_whole |= whole_next;
            inc.truncations += !defer;
            inc.deferred_slices++;
            inc.stop.deferred = 1;
            inc.stop.part_seconds[PART_SWEEP] += cg_now() - t0;
            inc.stop.part_objects[PART_SWEEP] += ctx.n;
            return ctx.n;
        }
        inc.truncations++;
        inc.round_truncated = 1;    /* counts toward an uncapped round */
    }
    int oversized = ctx.n > hard_cap;
    if (oversized) {
        inc.overflow_collections++;
        inc.oversized_slices++;
        inc.stop.overflow = 1;
        if (inc.stop.oversized_at < 0) {
            inc.stop.oversized_at = inc.stop.slices;
        }
    }
    Py_ssize_t n = ctx.n;
    int weakrefs = 1, finalizers = 1;
    int whole = ctx.positive == 0 && ctx.listed && n > 0
                && all_garbage(&slice, n, &weakrefs, &finalizers);
    if (whole) {
        inc.whole_garbage_slices++;
        cg_list_init(&unreachable);
        cg_list_merge(&slice, &unreachable);
    }
    else {
        (void)cg_trial_deletion_subtracted(&slice, n, &unreachable,
                                           ctx.listed ? members : NULL);
    }
    if (members_cap > MEMBERS_KEPT) {
        PyMem_RawFree(members);
        members = NULL;
        members_cap = 0;
    }
    Py_ssize_t kept = keep_survivors(&slice);
    inc.round_survivors += kept;
    if (oversized && inc.forced_hard_cap == 0) {
        /* Alive twice in a row: a structure held where marking does not
         * look (C code), which taking whole at every truncation would
         * cost an oversized stop each round; for the next two rounds
         * truncations wait for the rule of two truncated rounds, as
         * before.  Once is not enough: garbage referenced from other
         * garbage its closure does not reach (swept later) is found alive
         * once, then garbage in the next round. */
        inc.alive_whole_streak = kept > n / 2 ? inc.alive_whole_streak + 1 : 0;
        if (inc.alive_whole_streak >= 2) {
            inc.alive_whole_streak = 0;
            inc.whole_off_rounds = 3;
        }
    }
    cg_list_merge(&slice, &inc.visited);
    double t1 = cg_now();       /* the survivors' marking is the sweep's */
    inc.stop.part_seconds[PART_SWEEP] += t1 - t0;
    inc.stop.part_objects[PART_SWEEP] += n;
    inc.stop.slices++;
    Py_ssize_t collected = 0, uncollectable = 0;
    if (oversized) {
        cg_park_garbage = &proven;
    }
    if (whole) {
        cg_dispose_surveyed_garbage(st, &unreachable, &inc.visited, n, weakrefs, finalizers,
                                    &collected, &uncollectable);
    }
    else {
        cg_dispose_garbage(st, &unreachable, &inc.visited, &collected, &uncollectable);
    }
    cg_park_garbage = NULL;
    if (oversized) {
        park_proven(st, &proven);
    }
    inc.stop.part_seconds[PART_DISPOSE] += cg_now() - t1;
    inc.stop.part_objects[PART_DISPOSE] += collected + uncollectable;
    st->generation_stats[CG_NUM_GENERATIONS - 1].collected += collected;
    st->generation_stats[CG_NUM_GENERATIONS - 1].uncollectable += uncollectable;
    out->collected += collected;
    out->uncollectable += uncollectable;
    out->candidates += n;
    inc.collected += collected;
    inc.uncollectable += uncollectable;
    inc.swept += n;
    if (n > inc.largest_slice) {
        inc.largest_slice = n;
    }
    if (n >= MIN_SLICE && !whole) {
        /* Up at once, down slowly: a slice of garbage (freed, tp_clear'ed)
         * costs more per object than one of survivors, and an estimate
         * averaged over both would overrun the stop on the next garbage.
         * A slice garbage whole costs a fraction of the others (no
         * unreachable walk, no survey: aiohttp on 3.11 had its estimate
         * talked down by them, and a live slice of 20k objects then took
         * 8 ms): it does not teach the estimate, which stays on the side of
         * the costlier slices it must bound. */
        double per = (thread_cpu_now() - c0) / (double)n;
        inc.sweep_cost = per > inc.sweep_cost ? per : 0.95 * inc.sweep_cost + 0.05 * per;
    }
    return n;
}

/* ---- finish ------------------------------------------------------------ */

/* Invariant after: the oldest generation holds `visited` followed by what
 * was promoted during the round; the marks are freed; the long-lived
 * figures describe that list as the built-in's full collection would. */
static void
round_finish(CgState *st, double now)
{
    PyGC_Head *oldest = cg_gen_head(st, CG_NUM_GENERATIONS - 1);
    cg_list_merge(oldest, &inc.visited);
    cg_list_merge(&inc.visited, oldest);
    addrset_clear(&inc.marks);      /* O(1); the memory serves the next round */
    Py_ssize_t promoted = st->long_lived_pending - inc.round_start_pending;
    st->long_lived_total = inc.round_survivors;
    st->long_lived_pending = Py_MAX(promoted, 0);
    st->generation_stats[CG_NUM_GENERATIONS - 1].collections++;
    if (inc.whole_off_rounds > 0) {
        inc.whole_off_rounds--;
    }
    inc.take_whole = 0;
    inc.truncated_rounds = inc.round_truncated ? inc.truncated_rounds + 1 : 0;
    if (inc.truncated_rounds >= 2) {
        /* the next round proves such structures in oversized slices */
        inc.uncap_next = 1;
        inc.truncated_rounds = 0;
    }
    inc.uncapped = 0;
    inc.rounds++;
    inc.last_round_seconds = now - inc.round_started_at;
    inc.phase = IDLE;
}

/* ---- parked garbage ------------------------------------------------------ */

/* An overflow collection proves a structure garbage in one stop (trial
 * deletion, weakrefs cleared and called back, finalizers run, resurrection
 * checked) and parks it here instead of breaking its cycles there: tp_clear
 * and the freeing it causes, most of such a stop, are spread over the next
 * stops.  Nothing can reach a parked object: nothing outside the garbage
 * references it (proven), it is in no generation (get_objects,
 * get_referrers, the built-in's PyGC_Collect walk those), and no weakref
 * refers to it: those of the proof are cleared, and those a finalizer made
 * afterwards are cleared here before parking, by the collection's own step 7
 * (a live weakref's callback runs, as it would have when the built-in freed
 * the referent; a weakref that is garbage never calls back).  collect(),
 * freeze, uninstall and a new overflow clear the whole list first. */
static void
park_clear_new_weakrefs(CgState *st, PyGC_Head *list)
{
    int called;
    (void)cg_handle_weakrefs(list, cg_gen_head(st, CG_NUM_GENERATIONS - 1), &called);
}

/* `proven`, garbage an overflow stop proved (cg_park_garbage), joins the
 * parked list.  Invariant before: nothing else is parked (every stop
 * clears the parked list before doing anything else).  When no finalizer
 * or callback ran, no new weakref can exist and the count is exact: the
 * list is not walked again (for a structure bigger than the caches, each
 * walk costs a cache miss per object). */
static void
park_proven(CgState *st, CgPark *proven)
{
    if (cg_list_is_empty(&proven->list)) {
        return;
    }
    Py_ssize_t np = proven->count;
    if (proven->code_ran) {
        park_clear_new_weakrefs(st, &proven->list);
        np = cg_list_size(&proven->list);
    }
    inc.parked_total += np;
    if (np > inc.parked_max) {
        inc.parked_max = np;
    }
    cg_list_merge(&proven->list, &inc.parked);
}

/* tp_clear on parked objects until the deadline (all of them if `all`), as
 * collector.c's delete_garbage does; an object its tp_clear does not free
 * goes to the oldest generation.  Returns the objects cleared. */
static Py_ssize_t
clear_parked(CgState *st, double deadline, int all)
{
    Py_ssize_t n = 0;
    PyGC_Head *oldest = cg_gen_head(st, CG_NUM_GENERATIONS - 1);
    if (inc.clearing) {
        return 0;
    }
    inc.clearing = 1;
    while (!cg_list_is_empty(&inc.parked)) {
        if (!all && n > 0 && n % CLOCK_EVERY == 0 && cg_now() > deadline) {
            break;
        }
        PyGC_Head *g = cg_next(&inc.parked);
        cg_clear_garbage_object(CG_FROM_GC(g));
        if (cg_next(&inc.parked) == g) {
            g->_gc_prev &= ~CG_PREV_COLLECTING;
            cg_list_move(g, oldest);
        }
        n++;
    }
    inc.clearing = 0;
    inc.parked_cleared += n;
    return n;
}

int
cg_inc_parked(void)
{
    return inc.initialized && !cg_list_is_empty(&inc.parked);
}

/* ---- abort ------------------------------------------------------------- */

/* Invariant after: no object is on a list of this file, the cursor is
 * untracked, the marks are freed; the round's objects are in the oldest
 * generation.  Safe at any point, also from a finalizer run by a slice
 * (that slice's own lists are local and end in `visited`, which the next
 * round start or abort takes back). */
void
cg_inc_abort(CgState *st)
{
    if (!inc.initialized) {
        return;
    }
    (void)clear_parked(st, 0.0, 1);
    PyGC_Head *oldest = cg_gen_head(st, CG_NUM_GENERATIONS - 1);
    cg_list_merge(&inc.visited, oldest);
    cg_list_merge(&inc.gray, oldest);
    for (int i = 0; i < WIDE_DEPTH; i++) {
        cg_list_merge(&inc.wide_head[i], oldest);
    }
    inc.nwide = 0;
    cg_list_merge(&inc.to_sweep, oldest);
    if (inc.cursor != NULL && cg_is_tracked(inc.cursor)) {
        cg_list_untrack(CG_AS_GC(inc.cursor));
    }
    addrset_free(&inc.marks);
    if (inc.phase != IDLE) {
        inc.aborted++;
    }
    inc.phase = IDLE;
    /* What a pending overflow collection was for, a complete collection
     * (the usual caller) has just done; freeze() leaves nothing to sweep. */
    inc.overflow_due = 0;
    inc.truncated_rounds = 0;
    inc.take_whole = 0;
}

int
cg_inc_cursor_linked(void)
{
    return inc.cursor != NULL && cg_is_tracked(inc.cursor);
}

int
cg_inc_lists(PyGC_Head **heads, int max)
{
    int n = 0;
    if (!inc.initialized) {
        return 0;
    }
    PyGC_Head *all[3 + WIDE_DEPTH];
    all[n++] = &inc.to_sweep;
    all[n++] = &inc.gray;
    all[n++] = &inc.visited;
    for (int i = 0; i < inc.nwide; i++) {
        all[n++] = &inc.wide_head[i];
    }
    int k = 0;
    for (int i = 0; i < n && k < max; i++) {
        if (!cg_list_is_empty(all[i])) {
            heads[k++] = all[i];
        }
    }
    return k;
}

/* ---- the increment ----------------------------------------------------- */

void
cg_inc_force_overflow(void)
{
    inc.overflow_due = 1;
}

void
cg_inc_force_oversized(Py_ssize_t hard_cap)
{
    inc.forced_hard_cap = hard_cap;
}

double
cg_inc_set_sweep_cost(double seconds)
{
    double previous = inc.sweep_cost;
    inc.sweep_cost = seconds;
    return previous;
}

void
cg_inc_force_young_chunk(Py_ssize_t n)
{
    inc.forced_chunk = n;
}

int
cg_inc_set_extra_stops(int on)
{
    int was = !inc.extra_stops_off;
    inc.extra_stops_off = !on;
    return was;
}

void
cg_inc_request_round(void)
{
    inc.round_requested = 1;
}

static int
round_due(CgState *st)
{
    int old = CG_NUM_GENERATIONS - 1;
    if (inc.round_requested) {
        return 1;
    }
    return st->generations[old].count > st->generations[old].threshold
           && st->long_lived_pending >= st->long_lived_total / 4;
}

/* Objects of old work this increment should do (before the time cap). */
static Py_ssize_t
pacer_quota(CgState *st)
{
    Py_ssize_t left = inc.round_work_est - inc.round_work_done;
    Py_ssize_t promoted = st->long_lived_pending - inc.round_start_pending;
    double room = (double)(inc.round_headroom - promoted);
    double per_inc = inc.promo_per_inc > 1.0 ? inc.promo_per_inc : 1.0;
    if (room <= per_inc) {
        return PY_SSIZE_T_MAX;          /* behind: all the stop allows */
    }
    double quota = (double)left / (room / per_inc);
    return Py_MAX((Py_ssize_t)quota, MIN_QUOTA);
}

/* Old-generation work until the deadline or the quota (at least one small
 * step, so rounds always progress). */
static void
old_work(CgState *st, double deadline, CgResult *out)
{
    Py_ssize_t quota = pacer_quota(st), work = 0;
    int first = 1, rescanned = 0;
    while (inc.phase != IDLE && work < quota && (first || cg_now() < deadline)) {
        Py_ssize_t before = work;
        double tm = cg_now();
        switch (inc.phase) {
        case MARK_FROZEN:
            if (mark_frozen_step(st, deadline, &work)) {
                GrayCtx ctx = {0};
                cg_visit_roots(visit_gray, &ctx);
                cg_visit_stack_roots(visit_gray, &ctx);
                inc.phase = MARK;
                if ((cg_safe_point_tstate != cg_tstate_unchecked() || !cg_is_main_thread())
                    && cg_request_late_stack_roots() == 0) {
                    /* 3.11 inside an allocation, or in another thread than
                     * the main one: the main thread's top frame's stack
                     * joins at its next safe point; marking does not end
                     * before (a few increments at most) */
                    inc.late_roots_wait = 8;
                    inc.late_roots_until = cg_now() + LATE_ROOTS_WAIT;
                    inc.late_roots_requested++;
                }
            }
            inc.stop.part_seconds[PART_MARK] += cg_now() - tm;
            inc.stop.part_objects[PART_MARK] += work - before;
            break;
        case MARK:
            if (mark_step(deadline, quota - work, &work)) {
                if (inc.late_roots_wait > 0 || (inc.late_roots_until > 0 && cg_now() < inc.late_roots_until)) {
                    inc.late_roots_wait -= inc.late_roots_wait > 0;  /* the pending call has not run yet */
                    inc.stop.part_seconds[PART_MARK] += cg_now() - tm;
                    goto done;
                }
                inc.phase = SWEEP;
            }
            inc.stop.part_seconds[PART_MARK] += cg_now() - tm;
            inc.stop.part_objects[PART_MARK] += work - before;
            break;
        case SWEEP: {
            if (cg_list_is_empty(&inc.to_sweep)) {
                if (!cg_list_is_empty(&inc.gray) || inc.nwide > 0) {
                    inc.phase = MARK;   /* what the roots reached, first */
                    break;
                }
                round_finish(st, cg_now());
                break;
            }
            if (!rescanned) {
                /* At most half of what is left of the stop: frames hold new
                 * objects at every stop, and marking them must not starve
                 * the sweep (the round would never end). */
                rescanned = 1;
                if (rescan_roots()) {
                    double now = cg_now();
                    mark_step(now + (deadline - now) / 2, Py_MAX((quota - work) / 2, 1), &work);
                    inc.stop.part_seconds[PART_MARK] += cg_now() - tm;
                    inc.stop.part_objects[PART_MARK] += work - before;
                    tm = cg_now();
                }
            }
            /* The time left bounds the slice and, doubled, the closure of
             * its last seed; the pacer's quota only stops seeding earlier. */
            double left = deadline - cg_now();
            Py_ssize_t time_cap = (Py_ssize_t)(left / inc.sweep_cost);
            if (time_cap < MIN_SLICE) {
                if (!first) {
                    goto done;
                }
                time_cap = MIN_SLICE;
            }
            Py_ssize_t cap = Py_MAX(Py_MIN(time_cap, quota - work), MIN_SLICE);
            /* In an uncapped round an oversized slice is the stop's first:
             * a later one is cut at the usual cap and put back. */
            work += sweep_slice(st, cap, 2 * time_cap, inc.stop.slices > 0, out);
            if (inc.phase != SWEEP || inc.stop.deferred) {
                goto done;      /* a finalizer ended the round (freeze...),
                                 * or a closure waits for the next stop */
            }
            if (!cg_list_is_empty(&inc.parked)) {
                goto done;      /* an oversized slice: nothing more this stop */
            }
            break;
        }
        case IDLE:
            break;
        }
        if (work == before && inc.phase != IDLE && !first) {
            break;
        }
        first = 0;
    }
done:
    inc.round_work_done += work;
}

/* The young generation the next increment collects: the built-in's rule
 * (generation 1 when its count passes threshold1), or generation 1 earlier
 * when waiting would make it too big to collect within half the stop (3.13's
 * thresholds, 2000 x 10, make generation-1 collections of 20k+ objects:
 * several milliseconds).  The same objects are examined either way, in
 * smaller batches. */
int
cg_inc_young_generation(CgState *st)
{
    if (st->generations[1].count > st->generations[1].threshold) {
        return 1;
    }
    double half = inc.max_pause * 0.5;
    if ((double)cg_threshold0(st) * inc.young_cost > half) {
        /* generation 0 alone is too big for a stop (a program raised
         * threshold0): it is collected in chunks (young_chunked), and the
         * built-in's rule alone picks generation 1 */
        return 0;
    }
    Py_ssize_t next = inc.gen1_estimate + 2 * cg_threshold0(st);
    return (double)next * inc.young_cost > half ? 1 : 0;
}

/* Whether an extra stop is wanted before the next young collection: a
 * round is running and behind its pacer (the objects promoted since it
 * began already passed its headroom, so every stop does all the old work
 * its budget allows and the round still falls behind).  Stops come only
 * with young collections, one per threshold0 allocations, and at 2 ms a
 * round over a few hundred thousand live objects lasts seconds: Sphinx on
 * 3.13 carried 2-3x the built-in's old garbage at its end.  An extra stop
 * (old work only, halfway to the next young collection) doubles the rate of
 * old work while the round is behind, and costs nothing otherwise.  It
 * changes no young collection: the young generation, its counts and its
 * promotions are those of the built-in's rules. */
int
cg_inc_wants_extra_stop(CgState *st)
{
    if (inc.max_pause <= 0 || inc.phase == IDLE || inc.extra_stops_off
        || !cg_list_is_empty(&inc.parked)) {
        return 0;
    }
    return pacer_quota(st) == PY_SSIZE_T_MAX;
}

int
cg_inc_plan(CgState *st)
{
    if (inc.overflow_due) {
        return CG_INC_FULL;
    }
    if (inc.phase == IDLE && cg_readonly_due(st)) {
        /* Rounds move survivors between lists, writing to pages a pre-fork
         * server shares; fork-friendly mode promised not to.  The complete
         * collection it runs instead is the one stop not bounded. */
        return round_due(st) ? CG_INC_FULL : CG_INC_YOUNG;
    }
    return (inc.phase != IDLE || round_due(st)) ? CG_INC_OLD : CG_INC_YOUNG;
}

/* ---- young generations larger than a stop ------------------------------- */

/* Trial deletion on the oldest `cap` objects of generation `gen` (list order
 * is allocation order, so what was built together is examined together);
 * survivors go to generation gen + 1, garbage is disposed of as usual.
 * Sound for the same reason as every slice: the chunk is examined within one
 * stop, and references from outside it (younger objects not in the chunk,
 * older generations) count as external.  A young cycle cut by a chunk's
 * border survives into the next generation and is found there, as a cycle
 * spanning two generations is by the built-in.  Returns the objects
 * examined; *done is set when the generation is empty after. */
static Py_ssize_t
young_chunk(CgState *st, int gen, Py_ssize_t cap, CgResult *out, int *done)
{
    PyGC_Head *young = cg_gen_head(st, gen);
    PyGC_Head *older = cg_gen_head(st, gen + 1);
    PyGC_Head chunk, unreachable;
    cg_list_init(&chunk);
    Py_ssize_t n = 0;
    for (PyGC_Head *g = cg_next(young); g != young && n < cap; n++) {
        PyGC_Head *next = cg_next(g);
        cg_list_move(g, &chunk);
        g = next;
    }
    *done = cg_list_is_empty(young);
    Py_ssize_t survivors = 0;
    Py_ssize_t examined = cg_trial_deletion(st, &chunk, &unreachable, &survivors);
    if (gen == CG_NUM_GENERATIONS - 2) {
        st->long_lived_pending += survivors;
    }
    cg_list_merge(&chunk, older);
    Py_ssize_t collected = 0, uncollectable = 0;
    cg_dispose_garbage(st, &unreachable, older, &collected, &uncollectable);
    st->generation_stats[gen].collected += collected;
    st->generation_stats[gen].uncollectable += uncollectable;
    out->collected += collected;
    out->uncollectable += uncollectable;
    out->candidates += examined;
    inc.young_chunks++;
    inc.young_chunked_objects += examined;
    return examined;
}

/* The young part of an increment when the generation is too big for the
 * stop (threshold0 raised to hundreds of thousands, as mypy does; a
 * generation 1 of ten such passes).  Each stop examines at most what half
 * the stop allows, at the young cost per object; the rest waits in its
 * generation.  Counts: generation 0's count is left `cap` short of its
 * threshold, so the next stop comes after cap / 8 more allocations and the
 * chunks outpace the program; generation 1's count grows by one per
 * threshold0 objects examined (a built-in generation-0 collection's worth);
 * a generation-1 pass runs until generation 1 is empty (then generation 2's
 * count grows by one), with a generation-0 chunk beside it in every stop
 * so young garbage keeps being found.  Returns 0 if the generation fits in
 * a stop (the caller collects it whole). */
static int
young_chunked(CgState *st, int young_gen, CgResult *out)
{
    if (inc.forced_chunk < 0) {
        return 0;
    }
    double half = inc.max_pause * 0.5;
    Py_ssize_t cap = (Py_ssize_t)(half / inc.young_cost);
    if (cap < 1000) {
        cap = 1000;
    }
    if (inc.forced_chunk > 0) {
        cap = inc.forced_chunk;
    }
    Py_ssize_t gen0 = st->generations[0].count;
    Py_ssize_t est = gen0 + (young_gen == 1 ? inc.gen1_estimate : 0);
    /* count0 is not generation 0's size once chunking began (every GC
     * object freed anywhere lowers it): until generation 0 is empty again,
     * it is chunked */
    if (est <= cap && !inc.young_backlog) {
        return 0;
    }
    if (st->debug & CG_DEBUG_SAVEALL) {
        /* the garbage a chunk finds goes to gc.garbage and would keep the
         * rest of its structure, in later chunks, alive: whole, as before */
        inc.young_backlog = 0;
        return 0;
    }
    double t0 = cg_now(), c0 = thread_cpu_now();
    int done;
    if (young_gen == 1) {
        Py_ssize_t n1 = young_chunk(st, 1, cap / 2, out, &done);
        inc.gen1_estimate = Py_MAX(inc.gen1_estimate - n1, 0);
        if (done) {
            st->generations[1].count = 0;
            st->generations[2].count += 1;
            st->generation_stats[1].collections++;
            inc.gen1_estimate = 0;
        }
        cap -= n1;
    }
    /* Catch-up.  The last chunk left count0 at chunk_count_mark, so count0
     * has grown since by what the program allocated (net of GC objects
     * freed) between the two stops.  A chunk must examine more than that,
     * or generation 0 grows without bound: that happens when stops are far
     * apart, as in a threaded program whose gc.callbacks are Python code
     * (each stop's callbacks let the other threads run a switch interval,
     * 5 ms, during which none of them can start a collection; benchmarks/
     * pauses/threads_work.py under bench_pauses.py: generation 0 reached
     * 630k objects against the built-in's 425k, peak RSS 1.5-2x).  Then the
     * chunk is 9/8 of those allocations, longer than the stop's budget: the
     * only bound on memory left; a single-threaded program allocates an
     * eighth of a chunk between two and never needs it. */
    Py_ssize_t cap0 = inc.forced_chunk > 0 ? Py_MAX(cap, 1) : Py_MAX(cap, 1000);
    if (inc.forced_chunk == 0 && inc.young_backlog && inc.chunk_count_mark >= 0) {
        Py_ssize_t since = (Py_ssize_t)st->generations[0].count - inc.chunk_count_mark;
        Py_ssize_t need = since + since / 8;
        if (need > cap0) {
            inc.young_catchup++;
            inc.young_catchup_objects += need - cap0;
            cap0 = need;
        }
    }
    Py_ssize_t before = out->collected;
    Py_ssize_t n0 = young_chunk(st, 0, cap0, out, &done);
    inc.gen1_estimate += n0 - (out->collected - before);
    st->generation_stats[0].collections++;
    inc.gen0_passed += n0;
    Py_ssize_t threshold0 = cg_threshold0(st);
    while (threshold0 > 0 && inc.gen0_passed >= threshold0) {
        inc.gen0_passed -= threshold0;
        st->generations[1].count += 1;
    }
    inc.young_backlog = !done;
    inc.chunk_count_mark = -1;
    if (done) {
        st->generations[0].count = 0;
    }
    else {
        /* due again after an eighth as many allocations as this stop examined:
         * the chunks outpace the program and generation 0 drains (then it
         * is collected whole, and waits for a full threshold again), so
         * young garbage waits about as long as with the built-in */
        st->generations[0].count = (int)Py_MAX(threshold0 - n0 / 8, 0);
        inc.chunk_count_mark = st->generations[0].count;
    }
    out->duration = cg_now() - t0;
    if (out->candidates >= 256) {
        double per = (thread_cpu_now() - c0) / (double)out->candidates;
        inc.young_cost = per > inc.young_cost ? per : 0.95 * inc.young_cost + 0.05 * per;
    }
    return 1;
}

/* Closes the figures of the stop that began at t0; keeps the longest. */
static void
end_stop(double t0)
{
    inc.stop.seconds = cg_now() - t0;
    inc.stop.cpu_seconds = thread_cpu_now() - inc.stop.cpu_start;
    if (inc.stop.seconds > inc.longest_increment) {
        inc.longest_increment = inc.stop.seconds;
        inc.longest_stop = inc.stop;
    }
    /* On a busy machine the longest stop on the clock is often one that
     * was preempted; the busiest is the longest the collector made. */
    if (inc.stop.cpu_seconds > inc.busiest_stop.cpu_seconds) {
        inc.busiest_stop = inc.stop;
    }
}

void
cg_inc_step(CgState *st, int young_gen, int plan, CgResult *out)
{
    double t0 = cg_now();
    inc.increments++;
    memset(&inc.stop, 0, sizeof(inc.stop));
    inc.stop.oversized_at = -1;
    inc.stop.cpu_start = thread_cpu_now();
    inc.stop.young_gen = young_gen;
    if (plan == CG_INC_FULL) {
        if (inc.overflow_due) {
            inc.overflow_due = 0;
            inc.truncated_rounds = 0;
            inc.overflow_collections++;
            inc.stop.overflow = 1;
        }
        else {
            inc.round_requested = 0;    /* fork-friendly: this was the round */
        }
        CgPark proven = {.count = 0, .code_ran = 0};
        cg_list_init(&proven.list);
        int park = inc.stop.overflow;
        if (park) {
            cg_park_garbage = &proven;
        }
        cg_collect_generation(st, CG_NUM_GENERATIONS - 1, out);
        cg_park_garbage = NULL;
        if (park) {
            park_proven(st, &proven);
        }
        inc.stop.young_gen = CG_NUM_GENERATIONS - 1;
        inc.stop.part_seconds[PART_FULL] = out->duration;
        inc.stop.part_objects[PART_FULL] = out->candidates;
        end_stop(t0);
        return;
    }
    if (plan == CG_INC_EXTRA) {
        /* old work only: no young collection, no promotions to count */
        if (inc.phase != IDLE) {
            inc.old_increments++;
            inc.extra_stops++;
            old_work(st, t0 + inc.max_pause * BUDGET_SHARE, out);
            if (PyErr_Occurred()) {
                cg_write_unraisable_msg("in garbage collection", NULL);
            }
        }
        inc.last_young_chunked = 0;
        out->duration = cg_now() - t0;
        end_stop(t0);
        return;
    }
    if (!cg_list_is_empty(&inc.parked)) {
        /* Parked garbage first, and nothing else until it is gone: the
         * built-in frees all of it before any other collection looks at
         * the heap, and an object freed by refcount as that garbage is
         * cleared (a legacy tp_del object it alone held) must not be seen
         * by a collection in between, which would call it garbage itself
         * (the differential fuzzer's cyclegc-overflow mode found that). */
        double tp = cg_now();
        Py_ssize_t n = clear_parked(st, t0 + inc.max_pause * BUDGET_SHARE, 0);
        inc.stop.part_seconds[PART_DISPOSE] += cg_now() - tp;
        inc.stop.part_objects[PART_DISPOSE] += n;
        if (!cg_list_is_empty(&inc.parked)) {
            inc.last_young_chunked = 0;
            out->duration = cg_now() - t0;
            end_stop(t0);
            return;
        }
    }
    inc.last_young_chunked = young_chunked(st, young_gen, out);
    if (!inc.last_young_chunked) {
        double c0 = thread_cpu_now();
        cg_collect_generation(st, young_gen, out);
        if (out->candidates >= 256) {
            double per = (thread_cpu_now() - c0) / (double)out->candidates;
            inc.young_cost = per > inc.young_cost ? per : 0.95 * inc.young_cost + 0.05 * per;
        }
        inc.gen1_estimate = young_gen == 0
            ? inc.gen1_estimate + (out->candidates - out->collected)
            : 0;
    }
    inc.stop.part_seconds[PART_YOUNG] = out->duration;
    inc.stop.part_objects[PART_YOUNG] = out->candidates;
    Py_ssize_t promoted = st->long_lived_pending - inc.last_pending;
    if (promoted >= 0) {
        inc.promo_per_inc = 0.9 * inc.promo_per_inc + 0.1 * (double)promoted;
        if (inc.promo_per_inc < 1e-3) {
            inc.promo_per_inc = 0.0;
        }
    }
    if (plan == CG_INC_OLD) {
        if (inc.phase == IDLE) {
            round_start(st, t0);
        }
        inc.old_increments++;
        old_work(st, t0 + inc.max_pause * BUDGET_SHARE, out);
        if (PyErr_Occurred()) {
            cg_write_unraisable_msg("in garbage collection", NULL);
        }
    }
    inc.last_pending = st->long_lived_pending;
    out->duration = cg_now() - t0;
    end_stop(t0);
}

/* ---- figures ----------------------------------------------------------- */

static const char *
phase_name(Phase p)
{
    switch (p) {
    case MARK_FROZEN: return "mark_frozen";
    case MARK: return "mark";
    case SWEEP: return "sweep";
    default: return "idle";
    }
}

/* A stop's figures as a dict: seconds, cause (the part that took
 * longest), cause_objects, and each part's seconds and objects. */
static PyObject *
stop_dict(const StopInfo *s)
{
    int cause = 0;
    for (int i = 1; i < NPARTS; i++) {
        if (s->part_seconds[i] > s->part_seconds[cause]) {
            cause = i;
        }
    }
    PyObject *parts = PyDict_New();
    if (parts == NULL) {
        return NULL;
    }
    for (int i = 0; i < NPARTS; i++) {
        if (s->part_seconds[i] == 0 && s->part_objects[i] == 0) {
            continue;
        }
        PyObject *v = Py_BuildValue("{sdsn}", "seconds", s->part_seconds[i],
                                    "objects", s->part_objects[i]);
        if (v == NULL || PyDict_SetItemString(parts, part_names[i], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(parts);
            return NULL;
        }
        Py_DECREF(v);
    }
    const char *name = s->seconds == 0 ? "none"
                       : (cause == PART_FULL && s->overflow) ? "overflow collection"
                       : (cause == PART_SWEEP && s->overflow) ? "oversized sweep slice"
                       : part_names[cause];
    return Py_BuildValue("{sdsdsssnsisnsnsN}",
                         "seconds", s->seconds,
                         "cpu_seconds", s->cpu_seconds,
                         "cause", name,
                         "cause_objects", s->part_objects[cause],
                         "young_generation", s->young_gen,
                         "slices", s->slices,
                         "oversized_slice_at", s->overflow ? s->oversized_at : (Py_ssize_t)-1,
                         "parts", parts);
}

PyObject *
cg_inc_stats(void)
{
    PyObject *last = stop_dict(&inc.stop);
    PyObject *longest = last == NULL ? NULL : stop_dict(&inc.longest_stop);
    PyObject *busiest = longest == NULL ? NULL : stop_dict(&inc.busiest_stop);
    if (busiest == NULL) {
        Py_XDECREF(last);
        Py_XDECREF(longest);
        return NULL;
    }
    return Py_BuildValue(
        "{sdsssnsnsnsnsnsnsnsnsnsnsnsnsnsnsnsdsdsdsdsnsnsnsnsnsnsnsnsnsnsnsnsnsNsNsN}",
        "max_pause", inc.max_pause,
        "phase", phase_name(inc.phase),
        "rounds", inc.rounds,
        "increments", inc.increments,
        "old_increments", inc.old_increments,
        "marked", inc.marked,
        "swept", inc.swept,
        "collected", inc.collected,
        "uncollectable", inc.uncollectable,
        "truncated_slices", inc.truncations,
        "overflow_collections", inc.overflow_collections,
        "oversized_slices", inc.oversized_slices,
        "whole_garbage_slices", inc.whole_garbage_slices,
        "deferred_slices", inc.deferred_slices,
        "extra_stops", inc.extra_stops,
        "aborted_rounds", inc.aborted,
        "largest_slice", inc.largest_slice,
        "longest_increment", inc.longest_increment,
        "last_round_seconds", inc.last_round_seconds,
        "sweep_cost_ns", inc.sweep_cost * 1e9,
        "promoted_per_increment", inc.promo_per_inc,
        "marks_bytes", (Py_ssize_t)inc.marks.bytes,
        "late_stack_roots_requested", inc.late_roots_requested,
        "late_stack_roots_visited", inc.late_roots_visited,
        "young_chunks", inc.young_chunks,
        "parked_total", inc.parked_total,
        "parked_cleared", inc.parked_cleared,
        "parked_now", inc.initialized ? cg_list_size(&inc.parked) : (Py_ssize_t)0,
        "parked_max", inc.parked_max,
        "young_chunked_objects", inc.young_chunked_objects,
        "young_backlog", (Py_ssize_t)inc.young_backlog,
        "young_catchup_chunks", inc.young_catchup,
        "young_catchup_objects", inc.young_catchup_objects,
        "last_young_chunked", (Py_ssize_t)inc.last_young_chunked,
        "last_stop", last,
        "longest_stop", longest,
        "busiest_stop", busiest);
}
