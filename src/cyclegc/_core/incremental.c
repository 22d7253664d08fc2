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
 * cannot be proven garbage in a bounded stop -- unless the kernel reports
 * page writes: then it is proven across stops ("a closure proven across
 * stops", below), and what follows applies where it cannot be.  Slices that hit the cap are
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

static int spread_init(void);

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
        if (cg_stack_roots_configure() < 0 || spread_init() < 0) {
            return -1;
        }
        inc.max_pause = max_pause;
    }
    return 0;
}

/* A recent cost per object (`*est`) given a new measure `per`: up at once,
 * down slowly (`keep` of the old value each time), so that the estimate
 * stays on the side of the costlier stops it must bound. */
static inline void
cost_sample(double *est, double per, double keep)
{
    *est = per > *est ? per : keep * *est + (1.0 - keep) * per;
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
    PyObject *truncated_seed;   /* the seed whose closure reached the hard cap */
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
        if (ctx->truncated && ctx->truncated_seed == NULL) {
            ctx->truncated_seed = op;
        }
    }
}

static void park_proven(CgState *st, CgPark *proven);

/* A survivor of a round's examination (a slice's, a spread's): an exact
 * tuple or dict holding only atoms is untracked, as a full collection
 * would untrack it (a round stands for one), else it is marked, so that
 * later slices of the round stop at it.  1 if it stays tracked. */
static int
keep_survivor(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    if ((tp == &PyTuple_Type || tp == &PyDict_Type) && cg_is_atom_container(op, 1)) {
        cg_list_untrack(CG_AS_GC(op));
        return 0;
    }
    (void)addrset_add(&inc.marks, op);
    return 1;
}

/* The survivors of a slice (`slice`, a normal list), in one walk, each
 * kept as above.  Returns how many stay tracked. */
static Py_ssize_t
keep_survivors(PyGC_Head *slice)
{
    Py_ssize_t kept = 0;
    PyGC_Head *g = cg_next(slice);
    while (g != slice) {
        PyGC_Head *next = cg_next(g);
        kept += keep_survivor(CG_FROM_GC(g));
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

/* The figures of a slice's (or a spread's) disposal: n examined, the
 * garbage disposed of since t1. */
static void
count_disposed(CgState *st, CgResult *out, Py_ssize_t n, Py_ssize_t collected,
               Py_ssize_t uncollectable, double t1)
{
    inc.stop.part_seconds[PART_DISPOSE] += cg_now() - t1;
    inc.stop.part_objects[PART_DISPOSE] += collected + uncollectable;
    st->generation_stats[CG_NUM_GENERATIONS - 1].collected += collected;
    st->generation_stats[CG_NUM_GENERATIONS - 1].uncollectable += uncollectable;
    out->collected += collected;
    out->uncollectable += uncollectable;
    out->candidates += n;
    inc.collected += collected;
    inc.uncollectable += uncollectable;
}

/* ---- a closure proven across stops ------------------------------------ */

/* A garbage structure bigger than a stop (a tree of 200k objects dropped at
 * once) was proven in one oversized slice: trial deletion over a set is
 * exact only if the set is examined within one stop, because between stops
 * the program may move a reference into or out of it.  Where the kernel
 * reports page writes (writewatch.c), the examination is spread instead:
 *
 *   join      the closure of the seed whose closure was too big for its
 *             slice (through unmarked tracked objects, as build_slice) is
 *             built a budget per stop, writing nothing to the members'
 *             objects: each one's refcount (read when it is traversed), its
 *             references to other members (as member indices) and its count
 *             of references from members go to side tables.  A traversed
 *             member moves to a private list (sp.list), whose GC-header
 *             writes are ours.
 *   watch     at the end of each stop the pages of the memory each new
 *             member's tp_traverse reads -- its block (pre-header, GC header,
 *             object) and, for the types whose layout we know, its storage
 *             (a list's items, a dict's entries, a set's table, an
 *             instance's values) -- are write-protected.  Other types are
 *             not admitted: the closure is taken whole in one stop, as
 *             before.  A page written once stays "dirty" to the end.
 *   check     each later stop starts by asking which watched pages are
 *             dirty.  A page unmapped, not present or no longer registered
 *             ends the spread before any member is read.
 *   read      a member is read (traversed, or read again at the verdict)
 *             only when it is certainly alive: its block is clean (its
 *             refcount was not written, so it was not freed), or a member
 *             whose references are intact references it.  Mid-spread, one
 *             that cannot be read ends it *without reading anything*: what
 *             was traversed is kept alive for the round (spread_unsure).
 *   decide    when every member is traversed: the members on dirty pages
 *             are read again (refcount if their block is dirty, references
 *             in any case, the recorded ones taken back); one that cannot be
 *             read safely counts as referenced from outside.  The others'
 *             recorded values are what their memory holds now, so counts
 *             and references describe the set at this one instant, and
 *             move_unreachable on the side tables (from the members
 *             referenced from outside, along the recorded references) finds
 *             exactly what trial deletion over the set in this stop would:
 *             the rest is garbage and goes through the usual weakref /
 *             finalizer / resurrection steps and the parked clearing; the
 *             reached are marked, as a slice's survivors are.
 *
 * Why clean pages mean unchanged members: a reference to a member is made
 * or dropped by writing the member's refcount, in its block; a reference
 * moved without a count change (list.pop, dict.pop) is moved by writing the
 * container, its block (size, used, version) or its storage, both watched
 * for the admitted types.  C code holding a member by a borrowed pointer
 * across stops is the hazard every collector has (the built-in would free
 * it too).  The argument, hazard by hazard, is in docs/design.md ("A proof
 * across stops"). */

#define SPREAD_MAX (1 << 24)     /* members at most (indices are 32 bits) */
#define SPREAD_SMALL 256         /* a closure put back at a cap below this is taken whole, as
                                  * is a spread this small that ends unsure: one stop proves it,
                                  * with whatever else the stop's slice holds */
#define SPREAD_DIRTY_MAX 65536   /* dirty pages at most: past that, one stop's proof */

typedef struct {
    PyObject *op;
    Py_ssize_t refcnt;       /* when traversed; -1 before */
    uintptr_t spage;         /* storage: first page, how many (0: none) */
    uint32_t snp;
    uint32_t internal;       /* references from members traversed so far */
    uint32_t eoff, ecount;   /* its references to members: edges[eoff..] */
    int32_t via;             /* the member whose traversal made it join (-1: the seed) */
    uint8_t pre;             /* bytes of its block before op */
    uint8_t atomish;         /* an exact tuple or dict: may hold only atoms (keep_survivor) */
    uint16_t dirty;          /* at the verdict: 1 block dirty, 2 storage dirty */
    uint32_t blen;           /* bytes of its block from op */
    int32_t snap;            /* a wide member: offset of its copy in sp.snap (else -1) */
} SpMember;

#define SP_BLOCK_DIRTY 1
#define SP_STORAGE_DIRTY 2
#define SP_UNSURE 4             /* not read at the verdict: counts as referenced from outside */

static struct {
    int active;              /* a closure is being proven */
    int next;                /* the next stop starts one */
    SpMember **mchunks;      /* the members, SP_CHUNK a chunk (never moved: no
                              * copy of the whole table when it grows) */
    Py_ssize_t n, scanned, nmchunks, mchunks_cap;
    int32_t *slots;          /* address -> member index + 1, open addressing */
    size_t mask;
    int32_t *old_slots;      /* the table before it grew, moved a few slots per join */
    size_t old_mask, migrated;
    uint32_t **echunks;      /* references between members, by source */
    Py_ssize_t nedges, necks, echunks_cap;
    uintptr_t *pages;        /* watched pages, sorted, unique */
    Py_ssize_t npages, pages_cap;
    uintptr_t *fresh;        /* pages named in this stop */
    Py_ssize_t nfresh, fresh_cap;
    uintptr_t *dirty;        /* watched pages written since protected (this stop's check) */
    Py_ssize_t ndirty;
    uintptr_t *touched;      /* pages of GC headers this stop's list moves wrote */
    Py_ssize_t ntouched, touched_cap;
    PyGC_Head list;          /* the traversed members, in traversal order */
    Py_ssize_t mism;         /* members whose refcount is not their count from members */
    uintptr_t last_block, last_storage;
    int refused;             /* a member's type is not admitted, or no memory */
    int weakrefs, finalizers;
    Py_ssize_t stops;        /* of the current one */
    int32_t current;         /* the member being traversed */
    int partial;             /* it is a wide list or dict, traversed in slices from wide_pos */
    Py_ssize_t wide_pos;
    CgSlots ring;            /* referents waiting for their header lines */
    uint8_t *memo;           /* a verdict's or settling's stop: what it learned per member */
    Py_ssize_t memo_n, memo_stop;
    uintptr_t range_s0, range_s1;   /* the storage spread_ranges() found last */
    uintptr_t *rel;          /* pages of an ended spread still protected, */
    Py_ssize_t nrel, relpos; /* made writable a part per stop (spread_release) */
    char *snap;              /* copies of wide members' objects (refcount left out) */
    Py_ssize_t nsnap, snap_cap;
    traverseproc subtype_traverse;
    /* figures */
    Py_ssize_t started, proven_garbage, kept_alive, kept_unsure, aborted_unsure, aborted_unwatchable, refused_type;
    Py_ssize_t kept_from_outside;   /* verdicts not taken: all reached from outside */
    int unsure_streak;       /* spreads in a row that ended unsure */
    Py_ssize_t largest, longest_stops, garbage_objects, reread;
    /* the longest verdict: seconds, members, members on dirty pages, read again */
    double verdict_seconds, verdict_reread_seconds, verdict_dispose_seconds;
    Py_ssize_t verdict_members, verdict_dirty, verdict_reread, last_dirty, last_reread;
    double last_reread_seconds, last_dispose_seconds;   /* the last verdict's parts */
    int settles;             /* stops of the current spread spent settling (spread_settle) */
    int verdict_waited;      /* the verdict was left to a stop of its own once */
    Py_ssize_t settle_pages; /* tests: settle whenever pages are dirty, this many per stop */
    double reread_cost, decide_cost;   /* seconds per member read again / decided, recent */
    Py_ssize_t settle_stops, settled_pages;   /* figures */
    char refused_name[64];   /* the type of the last object refused */
    Py_ssize_t step_limit;   /* tests: members traversed per stop at most (0: the budget's) */
    double watch_cost;       /* seconds the end of a stop's share took (the watch), recent */
    uint8_t *witnessed;      /* this stop: referenced by a clean member (spread_alive) */
    Py_ssize_t witnessed_n, witnessed_stop;
    Py_ssize_t flagged_stop, flagged, flagged_blocks;   /* spread_flag_dirty: the stop its flags are of */
    int alive_walk;          /* tests: 1 the list walk always shows members alive first, -1 never */
    double walk_cost;        /* seconds per member of that walk, recent */
} sp;

static int spread_wanted(void);

#define SP_CHUNK_SHIFT 14
#define SP_CHUNK ((Py_ssize_t)1 << SP_CHUNK_SHIFT)
#define SP_ECHUNK_SHIFT 16

static inline SpMember *
spm(Py_ssize_t k)
{
    return &sp.mchunks[k >> SP_CHUNK_SHIFT][k & (SP_CHUNK - 1)];
}

static inline uint32_t *
spe(Py_ssize_t i)
{
    return &sp.echunks[i >> SP_ECHUNK_SHIFT][i & (((Py_ssize_t)1 << SP_ECHUNK_SHIFT) - 1)];
}

#define SPM(k) (*spm(k))
#define SPE(i) (*spe(i))

/* What a verdict's or settling's stop learns about members, kept for that
 * stop.  Within one such stop no code but this file's runs, so a fact found
 * about a member holds until the stop ends: that it is alive (not freed),
 * and that its recorded references are its present ones (found by
 * comparing them, or made so by reading it again).  Without it a chain of
 * `via` members on written pages was walked again for every member below
 * it, and a member compared on the way was walked once more to be read
 * again (Sphinx: 2.6 traversals per member on a written page). */
#define MEMO_ALIVE 1
#define MEMO_INTACT 2            /* recorded references are the present ones */
#define MEMO_CHANGED 4           /* ... are not */

static void
memo_end(void)
{
    PyMem_RawFree(sp.memo);
    sp.memo = NULL;
    sp.memo_n = 0;
    sp.memo_stop = -1;
}

static void
memo_begin(void)
{
    memo_end();
    sp.memo = PyMem_RawCalloc((size_t)(sp.n > 0 ? sp.n : 1), 1);
    if (sp.memo != NULL) {      /* (without memory: no memo, the same answers slower) */
        sp.memo_n = sp.n;
        sp.memo_stop = sp.stops;
    }
}

static inline int
memo_get(Py_ssize_t k)
{
    return sp.memo != NULL && sp.memo_stop == sp.stops && k < sp.memo_n ? sp.memo[k] : 0;
}

static inline void
memo_put(Py_ssize_t k, int clear, int set)
{
    if (sp.memo != NULL && sp.memo_stop == sp.stops && k < sp.memo_n) {
        sp.memo[k] = (uint8_t)((sp.memo[k] & ~clear) | set);
    }
}

/* The traverse function of classes defined in Python (typeobject.c's,
 * not exported): read from a class made for the purpose when the mode is
 * switched on, and kept (never garbage: gc.garbage under DEBUG_SAVEALL
 * would show it). */
static PyObject *spread_probe_class;

static int
spread_init(void)
{
    if (sp.subtype_traverse != NULL) {
        return 0;
    }
    spread_probe_class = PyObject_CallFunction((PyObject *)&PyType_Type, "s(){}", "_cyclegc_probe");
    if (spread_probe_class == NULL) {
        return -1;
    }
    sp.subtype_traverse = ((PyTypeObject *)spread_probe_class)->tp_traverse;
    return 0;
}

/* The builtins whose storage spread_layout() knows (besides exact tuples). */
static int
spread_known_storage(PyTypeObject *tp)
{
    return tp == &PyList_Type || tp == &PyDict_Type || tp == &PySet_Type || tp == &PyFrozenSet_Type;
}

/* A class defined in Python on top of tuple whose instances are laid out
 * as a tuple's: no __dict__, no __weakref__, no slots of its own
 * (namedtuple and typing.NamedTuple classes, whose __slots__ is empty).
 * Its traverse (subtype_traverse) visits the class, then the items, all in
 * the block; items change only by a write to it.  pylint's spreads all
 * ended at astroid's Position, a NamedTuple, and took their stops whole. */
static int
spread_tuple_like(PyTypeObject *tp)
{
    for (PyTypeObject *b = tp; b != &PyTuple_Type; b = b->tp_base) {
        if (b == NULL || !(b->tp_flags & Py_TPFLAGS_HEAPTYPE)
            || b->tp_traverse != sp.subtype_traverse || b->tp_del != NULL
            || b->tp_basicsize != PyTuple_Type.tp_basicsize
            || b->tp_itemsize != PyTuple_Type.tp_itemsize
            || b->tp_dictoffset != 0 || b->tp_weaklistoffset != 0) {
            return 0;
        }
    }
    return sp.subtype_traverse != NULL;
}

/* Types whose tp_traverse reads only the block and the storage
 * spread_layout() names: exact tuples, lists, dicts, sets and frozensets,
 * and classes defined in Python on top of object, of a list, dict, set or
 * frozenset (Counter, defaultdict's Python subclasses...: subtype_traverse,
 * then the base's traverse on the same object), or of a builtin that holds
 * no references and has no items (str, float: subtype_traverse stops
 * there); and tuple-like classes (above).  Bound methods, weakrefs, cells
 * and functions read only their own block too, and were admitted for a
 * while: the differential soak then kept garbage a round longer than the
 * built-in in 3 seeds of 1,500 (a weakref held from C code seeds a spread
 * kept alive), cause not established, so they end a spread again. */
static int
spread_admitted(PyTypeObject *tp)
{
    if (tp == &PyTuple_Type || spread_known_storage(tp)) {
        return 1;
    }
    if (tp->tp_itemsize != 0) {
        return spread_tuple_like(tp);
    }
    if (tp->tp_traverse != sp.subtype_traverse || sp.subtype_traverse == NULL
        || tp->tp_del != NULL) {
        return 0;
    }
    for (PyTypeObject *b = tp->tp_base; b != NULL; b = b->tp_base) {
        if (b == &PyBaseObject_Type || spread_known_storage(b)) {
            return 1;
        }
        if (b->tp_traverse == NULL && b->tp_itemsize == 0
            && !(b->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
            return 1;       /* a builtin base without references (str, float) */
        }
        if (b->tp_traverse != sp.subtype_traverse) {
            return 0;
        }
    }
    return 0;
}

static int
spread_grow(void **v, Py_ssize_t *cap, Py_ssize_t need, size_t item)
{
    if (need <= *cap) {
        return 0;
    }
    Py_ssize_t c = *cap ? *cap : 1024;
    while (c < need) {
        c *= 2;
    }
    void *p = PyMem_RawRealloc(*v, (size_t)c * item);
    if (p == NULL) {
        return -1;
    }
    *v = p;
    *cap = c;
    return 0;
}

static int
spread_name_pages(uintptr_t start, uintptr_t end, uintptr_t *last)
{
    for (uintptr_t p = start >> 12; p <= (end - 1) >> 12; p++) {
        if (p == *last) {
            continue;
        }
        if (spread_grow((void **)&sp.fresh, &sp.fresh_cap, sp.nfresh + 1, sizeof(uintptr_t)) < 0) {
            return -1;
        }
        sp.fresh[sp.nfresh++] = p;
        *last = p;
    }
    return 0;
}

static void spread_count_refused(const char *name);

/* The memory `op`'s traverse reads: its block (pre-header, then `len`
 * bytes from op) and one storage [s0, s1) (0, 0: none).  -1 if it has two
 * (a list, dict or set subclass instance with attribute values). */
static int
spread_layout(PyObject *op, size_t *pre_out, size_t *len_out, uintptr_t *s0_out, uintptr_t *s1_out)
{
    PyTypeObject *tp = Py_TYPE(op);
    size_t pre = _PyType_PreHeaderSize(tp);
    size_t len = (size_t)tp->tp_basicsize;
    uintptr_t s0 = 0, s1 = 0;
    PyTypeObject *bt = tp;          /* the builtin a Python class stands on */
    while (bt != NULL && (bt->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        bt = bt->tp_base;
    }
    if (bt != tp && bt != NULL && spread_known_storage(bt) && cg_instance_values(op, &s0, &s1)) {
        return -1;      /* items and attribute values: two storages, one recorded */
    }
    if (bt == &PyTuple_Type) {      /* a tuple, or a tuple-like class's instance */
        len += (size_t)Py_SIZE(op) * sizeof(PyObject *);
    }
    else if (bt == &PyList_Type) {
        PyListObject *l = (PyListObject *)op;
        if (Py_SIZE(l) > 0) {
            s0 = (uintptr_t)l->ob_item;
            s1 = s0 + (uintptr_t)Py_SIZE(l) * sizeof(PyObject *);
        }
    }
    else if (bt == &PyDict_Type) {
        PyDictObject *d = (PyDictObject *)op;
        if (d->ma_values != NULL) {
            cg_split_dict_values(d, &s0, &s1);      /* an instance's __dict__ */
        }
        else if (d->ma_keys->dk_nentries > 0) {
            size_t esize;
            s0 = (uintptr_t)cg_dict_entries(d->ma_keys, &esize);
            s1 = s0 + (uintptr_t)d->ma_keys->dk_nentries * esize;
        }
    }
    else if (bt == &PySet_Type || bt == &PyFrozenSet_Type) {
        PySetObject *so = (PySetObject *)op;
        if (so->table != so->smalltable) {
            s0 = (uintptr_t)so->table;
            s1 = s0 + (uintptr_t)(so->mask + 1) * sizeof(setentry);
        }
    }
    else {
        (void)cg_instance_values(op, &s0, &s1);   /* attributes in a values array */
    }
    *pre_out = pre;
    *len_out = len;
    *s0_out = s0;
    *s1_out = s1;
    return 0;
}

/* Is member e's memory where it was when it was read (the same block
 * size, the same storage pages)?  Only then do its watched pages cover
 * what its tp_traverse reads now. */
static int
spread_same_layout(PyObject *op, const SpMember *e)
{
    size_t pre, len;
    uintptr_t s0, s1;
    if (spread_layout(op, &pre, &len, &s0, &s1) < 0) {
        return 0;
    }
    uint32_t snp = s1 > s0 ? (uint32_t)(((s1 - 1) >> 12) - (s0 >> 12) + 1) : 0;
    return pre == e->pre && len == e->blen && snp == e->snp && (snp == 0 || (s0 >> 12) == e->spage);
}

/* The memory `op`'s traverse reads (member `e`): its block and storage,
 * recorded and named for watching.  -1 if its layout is not one we know
 * or memory ran out. */
static int
spread_ranges(PyObject *op, SpMember *e)
{
    size_t pre, len;
    uintptr_t s0, s1;
    if (spread_layout(op, &pre, &len, &s0, &s1) < 0) {
        spread_count_refused(Py_TYPE(op)->tp_name);
        return -1;
    }
    if (pre > UINT8_MAX || len > UINT32_MAX || (s1 - s0) >> 12 > UINT32_MAX - 2) {
        return -1;
    }
    e->pre = (uint8_t)pre;
    e->atomish = Py_TYPE(op) == &PyTuple_Type || Py_TYPE(op) == &PyDict_Type;
    e->blen = (uint32_t)len;
    e->spage = s0 >> 12;
    e->snp = s1 > s0 ? (uint32_t)(((s1 - 1) >> 12) - (s0 >> 12) + 1) : 0;
    sp.range_s0 = s0;
    sp.range_s1 = s1;
    if (spread_name_pages((uintptr_t)op - pre, (uintptr_t)op + len, &sp.last_block) < 0) {
        return -1;
    }
    if (s1 > s0 && spread_name_pages(s0, s1, &sp.last_storage) < 0) {
        return -1;
    }
    return 0;
}

static inline size_t
spread_hash(PyObject *op)
{
    return (size_t)(((uintptr_t)op >> 4) * (uintptr_t)0x9E3779B97F4A7C15ULL);
}

/* The member index of `op`, or -1.  While the table grows, the old one is
 * looked in too (its slots are copied a few per join, never cleared, so
 * its probe chains stay whole; a member is inserted in the new one only). */
static inline Py_ssize_t
spread_probe(const int32_t *slots, size_t mask, PyObject *op)
{
    for (size_t i = spread_hash(op) & mask;; i = (i + 1) & mask) {
        int32_t k = slots[i];
        if (k == 0) {
            return -1;
        }
        if (SPM(k - 1).op == op) {
            return k - 1;
        }
    }
}

static inline Py_ssize_t
spread_find(PyObject *op)
{
    Py_ssize_t k = spread_probe(sp.slots, sp.mask, op);
    if (k < 0 && sp.old_slots != NULL) {
        k = spread_probe(sp.old_slots, sp.old_mask, op);
    }
    return k;
}

static inline void
spread_insert(int32_t *slots, size_t mask, Py_ssize_t k)
{
    size_t i = spread_hash(SPM(k).op) & mask;
    while (slots[i] != 0) {
        i = (i + 1) & mask;
    }
    slots[i] = (int32_t)(k + 1);
}

/* Copies `count` slots of the old table (all: -1) into the new one. */
static void
spread_migrate(Py_ssize_t count)
{
    while (sp.old_slots != NULL && count-- != 0) {
        int32_t k = sp.old_slots[sp.migrated];
        if (k != 0) {
            spread_insert(sp.slots, sp.mask, k - 1);
        }
        if (++sp.migrated > sp.old_mask) {
            PyMem_RawFree(sp.old_slots);
            sp.old_slots = NULL;
        }
    }
}

/* Room for one more member: the table doubles when half full, the old
 * one moved over by the next joins (a copy of it all at once was a stop's
 * worth at 200k members). */
static int
spread_room(void)
{
    if ((sp.n >> SP_CHUNK_SHIFT) >= sp.nmchunks) {
        if (spread_grow((void **)&sp.mchunks, &sp.mchunks_cap, sp.nmchunks + 1, sizeof(SpMember *)) < 0) {
            return -1;
        }
        SpMember *c = PyMem_RawMalloc(SP_CHUNK * sizeof(SpMember));
        if (c == NULL) {
            return -1;
        }
        sp.mchunks[sp.nmchunks++] = c;
    }
    if ((size_t)(sp.n + 1) * 2 > sp.mask + 1) {
        spread_migrate(-1);
        size_t size = sp.mask ? 2 * (sp.mask + 1) : 8192;
        int32_t *slots = PyMem_RawCalloc(size, sizeof(int32_t));
        if (slots == NULL) {
            return -1;
        }
        sp.old_slots = sp.slots;
        sp.old_mask = sp.mask;
        sp.migrated = 0;
        sp.slots = slots;
        sp.mask = size - 1;
    }
    spread_migrate(8);
    return 0;
}

/* The two counts of member k change through these: `mism` counts the
 * members whose counts differ, so the verdict needs no walk. */
static inline void
spread_set_counts(Py_ssize_t k, Py_ssize_t refcnt, Py_ssize_t internal)
{
    SpMember *e = &SPM(k);
    sp.mism -= e->refcnt != (Py_ssize_t)e->internal;
    e->refcnt = refcnt;
    e->internal = (uint32_t)internal;
    sp.mism += refcnt != internal;
}

/* Which types ended spreads, by name: what a user reads to see why large
 * structures still take an oversized stop (the first REFUSED_KINDS names;
 * the rest are counted under "other"). */
#define REFUSED_KINDS 12
static struct {
    char name[48];
    Py_ssize_t count;
} refused_kinds[REFUSED_KINDS + 1];
static int nrefused_kinds;

static void
spread_count_refused(const char *name)
{
    snprintf(sp.refused_name, sizeof(sp.refused_name), "%s", name);     /* the last one */
    int i = 0;
    for (; i < nrefused_kinds; i++) {
        if (strncmp(refused_kinds[i].name, name, sizeof(refused_kinds[i].name) - 1) == 0) {
            break;
        }
    }
    if (i == nrefused_kinds) {
        if (nrefused_kinds == REFUSED_KINDS) {
            snprintf(refused_kinds[i].name, sizeof(refused_kinds[i].name), "other");
        }
        else {
            snprintf(refused_kinds[i].name, sizeof(refused_kinds[i].name), "%s", name);
            nrefused_kinds++;
        }
    }
    refused_kinds[i].count++;
}

static PyObject *
refused_kinds_dict(void)
{
    PyObject *d = PyDict_New();
    for (int i = 0; d != NULL && i <= REFUSED_KINDS; i++) {
        if (refused_kinds[i].count == 0) {
            continue;
        }
        PyObject *v = PyLong_FromSsize_t(refused_kinds[i].count);
        if (v == NULL || PyDict_SetItemString(d, refused_kinds[i].name, v) < 0) {
            Py_XDECREF(v);
            Py_CLEAR(d);
            break;
        }
        Py_DECREF(v);
    }
    return d;
}

/* `op` (alive, unmarked, tracked, mortal, not a member) joins, referenced
 * once by member `via`.  Returns its index, or -1 and sp.refused set. */
static Py_ssize_t
spread_join(PyObject *op, int32_t via)
{
    if (!spread_admitted(Py_TYPE(op))) {
        spread_count_refused(Py_TYPE(op)->tp_name);
        sp.refused = 1;
        return -1;
    }
    if (sp.n >= SPREAD_MAX || spread_room() < 0) {
        sp.refused = 1;
        return -1;
    }
    SpMember *e = &SPM(sp.n);
    e->op = op;
    e->snap = -1;
    e->pre = 0;
    e->atomish = 0;
    e->blen = 0;
    e->snp = 0;
    e->refcnt = -1;
    e->internal = via >= 0;
    sp.mism++;
    e->eoff = e->ecount = 0;
    e->via = via;
    e->dirty = 0;
    spread_insert(sp.slots, sp.mask, sp.n);
    return sp.n++;
}

static inline int
spread_edge(Py_ssize_t target)
{
    if ((sp.nedges >> SP_ECHUNK_SHIFT) >= sp.necks) {
        uint32_t *c = NULL;
        if (sp.nedges >= UINT32_MAX
            || spread_grow((void **)&sp.echunks, &sp.echunks_cap, sp.necks + 1, sizeof(uint32_t *)) < 0
            || (c = PyMem_RawMalloc(sizeof(uint32_t) << SP_ECHUNK_SHIFT)) == NULL) {
            sp.refused = 1;
            return -1;
        }
        sp.echunks[sp.necks++] = c;
    }
    SPE(sp.nedges) = (uint32_t)target;
    sp.nedges++;
    return 0;
}

/* A referent of the member being traversed: a member gains a count; an
 * unmarked tracked referent joins (build_slice's pull, counts on the
 * side).  Either way the reference is recorded. */
static void
spread_pull(PyObject *op)
{
    if (sp.refused || !cg_is_gc(op) || !cg_is_tracked(op)) {
        return;
    }
    Py_ssize_t k = spread_find(op);
    if (k >= 0) {
        spread_set_counts(k, SPM(k).refcnt, (Py_ssize_t)SPM(k).internal + 1);
    }
    else if (CG_IS_IMMORTAL(op) || addrset_has(&inc.marks, op)) {
        return;
    }
    else if ((k = spread_join(op, sp.current)) < 0) {
        return;
    }
    (void)spread_edge(k);
}

/* Referents wait in a ring while their header lines load (a wide
 * container's are a miss each); the ring is drained before the member's
 * references are closed (spread_drain), so each member's stay together. */
static int
spread_visit(PyObject *op, void *Py_UNUSED(arg))
{
    if (op != NULL) {
        __builtin_prefetch(&sp.slots[spread_hash(op) & sp.mask]);
        PyObject *due = cg_slots_swap(&sp.ring, op);
        if (due != NULL) {
            spread_pull(due);
        }
    }
    return 0;
}

static void
spread_drain(void)
{
    while (sp.ring.n > 0) {
        spread_pull(cg_slots_pop_oldest(&sp.ring));
    }
}

/* A referent of a member re-read at the verdict: members only (a new
 * referent outside the set does not change whether the set is garbage).
 * The referent is not read (its header would be a cache miss each, the
 * most of a verdict's time): found by address.  A member untracked since
 * it joined wrote its block doing so, and is not read itself: it counts
 * as referenced from outside (SP_UNSURE), whatever references to it are
 * recorded. */
static int
spread_revisit(PyObject *op, void *Py_UNUSED(arg))
{
    if (op != NULL) {
        Py_ssize_t k = spread_find(op);
        if (k >= 0) {
            spread_set_counts(k, SPM(k).refcnt, (Py_ssize_t)SPM(k).internal + 1);
            (void)spread_edge(k);
        }
    }
    return 0;
}

static void
spread_free(void)
{
    for (Py_ssize_t i = 0; i < sp.nmchunks; i++) {
        PyMem_RawFree(sp.mchunks[i]);
    }
    for (Py_ssize_t i = 0; i < sp.necks; i++) {
        PyMem_RawFree(sp.echunks[i]);
    }
    PyMem_RawFree(sp.mchunks);
    PyMem_RawFree(sp.echunks);
    PyMem_RawFree(sp.slots);
    PyMem_RawFree(sp.old_slots);
    if (sp.rel == NULL) {
        sp.rel = sp.pages;          /* spread_release's now */
        sp.nrel = sp.npages;
        sp.relpos = 0;
    }
    else {
        PyMem_RawFree(sp.pages);    /* (never: a spread starts after the release) */
    }
    PyMem_RawFree(sp.fresh);
    PyMem_RawFree(sp.dirty);
    PyMem_RawFree(sp.touched);
    PyMem_RawFree(sp.snap);
    PyMem_RawFree(sp.witnessed);
    sp.witnessed = NULL;
    sp.witnessed_n = 0;
    sp.witnessed_stop = -1;
    sp.flagged_stop = -1;
    sp.mchunks = NULL;
    sp.echunks = NULL;
    sp.slots = sp.old_slots = NULL;
    sp.pages = sp.fresh = sp.dirty = sp.touched = NULL;
    sp.snap = NULL;
    sp.n = sp.scanned = sp.nmchunks = sp.mchunks_cap = 0;
    sp.nedges = sp.necks = sp.echunks_cap = 0;
    sp.npages = sp.pages_cap = sp.nfresh = sp.fresh_cap = sp.ndirty = 0;
    sp.ntouched = sp.touched_cap = sp.nsnap = sp.snap_cap = 0;
    sp.mask = sp.old_mask = sp.migrated = 0;
    sp.mism = 0;
    sp.partial = 0;
    sp.settles = 0;
    sp.verdict_waited = 0;
    sp.wide_pos = 0;
    sp.active = 0;
    sp.refused = 0;
    sp.weakrefs = sp.finalizers = 0;
    sp.stops = 0;
    memo_end();
}

/* Ends a spread without a verdict.  Reads no member (one may be freed):
 * the traversed ones go back to the head of `to_sweep` from sp.list (whose
 * ends are alive: the interpreter unlinks an object it frees), the others
 * never left their lists.  `whole`: the next stop takes the closure whole,
 * as before spreading existed. */
static void
spread_abort(int whole)
{
    if (sp.active) {
        /* the traversed members first in `to_sweep`, as they were cut; the
         * interpreter unlinked any freed meanwhile */
        cg_list_merge(&inc.to_sweep, &sp.list);
        cg_list_merge(&sp.list, &inc.to_sweep);
        spread_free();
        if (whole) {
            inc.take_whole = 1;
        }
    }
    sp.next = 0;
}

/* The spread ends keeping its traversed members alive for this round
 * without reading any: their addresses marked (a mark on a freed address
 * only spares a newer object), sp.list (the interpreter unlinked any
 * freed) to `visited`; the members not yet traversed stay where they are.
 * Keeping is always sound; what it costs is garbage kept a round longer. */
static void
spread_keep_traversed(void)
{
    Py_ssize_t upto = sp.scanned + (sp.partial ? 1 : 0);
    for (Py_ssize_t k = 0; k < upto; k++) {
        (void)addrset_add(&inc.marks, SPM(k).op);
    }
    inc.round_survivors += upto;
    cg_list_merge(&sp.list, &inc.visited);
    spread_free();
    sp.next = 0;
}

/* A member could not be read safely (maybe freed: the program is changing
 * the set).  The traversed members are kept (spread_keep_traversed).  Twice in
 * a row, or for a closure small enough for one stop anyway, the closure is
 * taken whole instead (a one-stop proof, exact), so garbage written near
 * (shared pages) cannot be kept forever. */
static void
spread_unsure(void)
{
    if (sp.unsure_streak >= 1 || sp.n < SPREAD_SMALL) {
        sp.unsure_streak = 0;
        sp.aborted_unsure++;
        spread_abort(1);
        return;
    }
    sp.unsure_streak++;
    sp.kept_unsure++;
    spread_keep_traversed();
}

static int
cmp_page(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}

static int
page_in(const uintptr_t *v, Py_ssize_t n, uintptr_t p)
{
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (v[mid] < p) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo < n && v[lo] == p;
}

/* Is a page of [first, first + count) dirty (this stop's check)?  The
 * dirty pages go into a hash set, rebuilt at each check: one or two probes
 * a page.  (A 4096-bit filter of the low bits in front of a binary search
 * was mostly positive when a third of the pages were written -- Sphinx:
 * 1.3 ms to flag 36k members.)  Without memory for the set, the search. */
static uintptr_t *dirty_set;    /* page + 1; 0: empty */
static size_t dirty_set_cap;    /* a power of two, at least twice the dirty pages */
static size_t dirty_set_mask;   /* 0: no set (search sp.dirty) */

static inline size_t
dirty_slot(uintptr_t p)
{
    return (size_t)((p * (uintptr_t)0x9E3779B97F4A7C15ULL) >> 20) & dirty_set_mask;
}

static void
set_dirty_pages(void)
{
    dirty_set_mask = 0;
    if (sp.ndirty <= 0) {
        return;
    }
    size_t cap = 1024;
    while (cap < 2 * (size_t)sp.ndirty) {
        cap *= 2;
    }
    if (cap > dirty_set_cap) {
        uintptr_t *t = PyMem_RawRealloc(dirty_set, cap * sizeof(uintptr_t));
        if (t == NULL) {
            return;
        }
        dirty_set = t;
        dirty_set_cap = cap;
    }
    memset(dirty_set, 0, cap * sizeof(uintptr_t));
    dirty_set_mask = cap - 1;
    for (Py_ssize_t i = 0; i < sp.ndirty; i++) {
        size_t j = dirty_slot(sp.dirty[i]);
        while (dirty_set[j] != 0) {
            j = (j + 1) & dirty_set_mask;
        }
        dirty_set[j] = sp.dirty[i] + 1;
    }
}

static inline int
dirty_page(uintptr_t p)
{
    if (sp.ndirty <= 0) {
        return 0;
    }
    if (dirty_set_mask == 0) {
        return page_in(sp.dirty, sp.ndirty, p);
    }
    for (size_t j = dirty_slot(p);; j = (j + 1) & dirty_set_mask) {
        uintptr_t v = dirty_set[j];
        if (v == p + 1) {
            return 1;
        }
        if (v == 0) {
            return 0;
        }
    }
}

static int
pages_dirty(uintptr_t first, uintptr_t count)
{
    for (uintptr_t p = first; p < first + count; p++) {
        if (dirty_page(p)) {
            return 1;
        }
    }
    return 0;
}

static inline int
block_dirty(const SpMember *e)
{
    uintptr_t s = ((uintptr_t)e->op - e->pre) >> 12;
    uintptr_t t = ((uintptr_t)e->op + e->blen - 1) >> 12;
    return pages_dirty(s, t - s + 1);
}

static inline int
storage_dirty(const SpMember *e)
{
    return e->snp > 0 && pages_dirty(e->spage, e->snp);
}

static Py_ssize_t
sort_unique(uintptr_t *v, Py_ssize_t n)
{
    qsort(v, (size_t)n, sizeof(uintptr_t), cmp_page);
    Py_ssize_t u = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (u == 0 || v[i] != v[u - 1]) {
            v[u++] = v[i];
        }
    }
    return u;
}

/* The end of a stop that did not decide: the pages named in it that are
 * new join the watched ones and are protected; a page already watched
 * keeps its state (a dirty one stays dirty), except those our own list
 * moves wrote after the check found them clean: protected again.  Between
 * the check, the reading of the members, and this, only this file's code
 * ran. */
static int
spread_watch(void)
{
    Py_ssize_t nnew = 0;
    if (sp.nfresh > 0) {
        sp.nfresh = sort_unique(sp.fresh, sp.nfresh);
        for (Py_ssize_t i = 0; i < sp.nfresh; i++) {
            if (!page_in(sp.pages, sp.npages, sp.fresh[i])) {
                sp.fresh[nnew++] = sp.fresh[i];
            }
        }
    }
    sp.nfresh = nnew;
    Py_ssize_t nre = 0;
    if (sp.ntouched > 0) {
        sp.ntouched = sort_unique(sp.touched, sp.ntouched);
        for (Py_ssize_t i = 0; i < sp.ntouched; i++) {
            uintptr_t p = sp.touched[i];
            if (page_in(sp.pages, sp.npages, p) && !dirty_page(p)) {
                sp.touched[nre++] = p;
            }
        }
    }
    sp.ntouched = 0;
    if ((nnew > 0 && cg_ww_protect(sp.fresh, nnew) < 0)
        || (nre > 0 && cg_ww_protect(sp.touched, nre) < 0)) {
        return -1;
    }
    if (nnew == 0) {
        return 0;
    }
    if (spread_grow((void **)&sp.pages, &sp.pages_cap, sp.npages + nnew, sizeof(uintptr_t)) < 0) {
        return -1;
    }
    Py_ssize_t i = sp.npages - 1, j = nnew - 1, k = sp.npages + nnew - 1;
    while (j >= 0) {
        if (i >= 0 && sp.pages[i] > sp.fresh[j]) {
            sp.pages[k--] = sp.pages[i--];
        }
        else {
            sp.pages[k--] = sp.fresh[j--];
        }
    }
    sp.npages += nnew;
    sp.nfresh = 0;
    return 0;
}

/* A traversed member moves to sp.list (so that the verdict needs no walk
 * to gather it); the pages of the GC headers the move writes are noted. */
static int
spread_touch(PyGC_Head *g)
{
    uintptr_t p = (uintptr_t)g >> 12;
    if (sp.ntouched > 0 && (sp.touched[sp.ntouched - 1] == p
                            || (sp.ntouched > 1 && sp.touched[sp.ntouched - 2] == p))) {
        return 0;
    }
    if (spread_grow((void **)&sp.touched, &sp.touched_cap, sp.ntouched + 1, sizeof(uintptr_t)) < 0) {
        return -1;
    }
    sp.touched[sp.ntouched++] = p;
    return 0;
}

static int
spread_move(PyObject *op)
{
    PyGC_Head *g = CG_AS_GC(op);
    PyGC_Head *tail = (PyGC_Head *)sp.list._gc_prev;
    if (spread_touch(g) < 0 || spread_touch(cg_prev(g)) < 0 || spread_touch(cg_next(g)) < 0
        || (tail != &sp.list && spread_touch(tail) < 0)) {
        return -1;
    }
    cg_list_move(g, &sp.list);
    return 0;
}

/* A copy of a wide member: its object (the refcount left out: it may
 * change without its references changing) and, as its slices are read, its
 * storage, so that a page of either written by a neighbour can be told
 * from a change of its own: [storage address, its length, bytes copied,
 * object bytes, storage bytes].  The storage is copied a slice at a time
 * (all at once was 2 ms for a dict of 100k items). */
#define SNAP_HEAD (3 * sizeof(uintptr_t))

static int
spread_snapshot(Py_ssize_t k)
{
    SpMember *e = &SPM(k);
    size_t olen = e->blen - sizeof(Py_ssize_t);
    uintptr_t head[3] = {sp.range_s0, sp.range_s1 - sp.range_s0, 0};
    size_t len = SNAP_HEAD + olen + head[1];
    if (sp.nsnap + (Py_ssize_t)len > INT32_MAX
        || spread_grow((void **)&sp.snap, &sp.snap_cap, sp.nsnap + (Py_ssize_t)len, 1) < 0) {
        return -1;
    }
    char *d = sp.snap + sp.nsnap;
    memcpy(d, head, SNAP_HEAD);
    memcpy(d + SNAP_HEAD, (char *)e->op + sizeof(Py_ssize_t), olen);
    e->snap = (int32_t)sp.nsnap;
    sp.nsnap += (Py_ssize_t)len;
    return 0;
}

/* The storage of wide member k read up to `upto` (an address in it) is
 * copied, what was not yet. */
static void
spread_snap_storage(Py_ssize_t k, uintptr_t upto)
{
    SpMember *e = &SPM(k);
    uintptr_t head[3];
    char *d = sp.snap + e->snap;
    memcpy(head, d, SNAP_HEAD);
    uintptr_t from = head[0] + head[2];
    upto = Py_MIN(upto, head[0] + head[1]);
    if (upto > from) {
        memcpy(d + SNAP_HEAD + (e->blen - sizeof(Py_ssize_t)) + head[2], (void *)from, upto - from);
        head[2] = upto - head[0];
        memcpy(d, head, SNAP_HEAD);
    }
}

/* Where wide member k's storage has been read up to, its slices at `pos`. */
static uintptr_t
spread_read_upto(PyObject *op, Py_ssize_t pos)
{
    if (PyList_CheckExact(op)) {
        return (uintptr_t)(((PyListObject *)op)->ob_item + pos);
    }
    size_t esize;
    char *entries = cg_dict_entries(((PyDictObject *)op)->ma_keys, &esize);
    return (uintptr_t)(entries + (size_t)pos * esize);
}

/* A wide member (alive) whose object is byte for byte its copy but for
 * the refcount, and whose storage read so far is too, on every dirty page
 * of it (what is not read yet will be read as it is then). */
static int
spread_same_bytes(const SpMember *e)
{
    if (e->snap < 0) {
        return 0;
    }
    const char *d = sp.snap + e->snap;
    uintptr_t head[3];
    memcpy(head, d, SNAP_HEAD);
    size_t olen = e->blen - sizeof(Py_ssize_t);
    d += SNAP_HEAD;
    if (memcmp(d, (char *)e->op + sizeof(Py_ssize_t), olen) != 0) {
        return 0;           /* same object: so the same storage address */
    }
    d += olen;
    uintptr_t s0 = head[0], end = head[0] + head[2];
    for (uintptr_t p = e->spage; p < e->spage + e->snp; p++) {
        if (dirty_page(p)) {
            uintptr_t lo = Py_MAX(p << 12, s0), hi = Py_MIN((p + 1) << 12, end);
            if (hi > lo && memcmp(d + (lo - s0), (void *)lo, hi - lo) != 0) {
                return 0;
            }
        }
    }
    return 1;
}


/* Member v (alive, traversed) still makes the references to members it
 * made when traversed: its pages are clean; or it is a wide member whose
 * storage is clean and whose object is its copy; or, read again now, it
 * references the same members in the same order (small members only: a
 * wide one would cost a walk of all its items; one read again in this stop
 * is known intact).  In a verdict's or settling's stop the answer is kept
 * in the memo (the members a list made join are checked one after the
 * other, each asking about the list). */
static int
spread_same_edges_visit(PyObject *op, void *arg)
{
    Py_ssize_t *pos = (Py_ssize_t *)arg;
    /* the members spread_revisit would record: "intact" means "read
     * again, it would record the same" (referents are not read) */
    if (op != NULL && pos[0] >= 0) {
        Py_ssize_t k = spread_find(op);
        if (k >= 0) {
            if (pos[0] >= pos[2] || (Py_ssize_t)SPE(pos[1] + pos[0]) != k) {
                pos[0] = -1;
            }
            else {
                pos[0]++;
            }
        }
    }
    return 0;
}

/* Member e (alive, read in this stop) references the members it recorded,
 * in the same order: one compare-walk, referents found by address. */
static int
spread_edges_same(const SpMember *e)
{
    Py_ssize_t pos[3] = {0, e->eoff, e->ecount};
    Py_TYPE(e->op)->tp_traverse(e->op, spread_same_edges_visit, pos);
    return pos[0] == (Py_ssize_t)e->ecount;
}

static int
spread_refs_intact(Py_ssize_t v)
{
    const SpMember *e = &SPM(v);
    int sd = storage_dirty(e), bd = block_dirty(e);
    if (!sd && !bd) {
        return 1;
    }
    int m = memo_get(v);
    if (m & (MEMO_INTACT | MEMO_CHANGED)) {
        return (m & MEMO_INTACT) != 0;
    }
    int answer = e->snap >= 0 ? spread_same_bytes(e) : spread_edges_same(e);
    memo_put(v, 0, answer ? MEMO_INTACT : MEMO_CHANGED);
    sp.reread++;
    return answer;
}

/* Member k is referenced by a traversed member all of whose pages are
 * clean (so the reference is still in memory): alive.  One walk of the
 * recorded references per stop, when the `via` chain could not tell. */
static int
spread_witnessed(Py_ssize_t k)
{
    if (sp.witnessed_stop != sp.stops) {
        uint8_t *w = PyMem_RawRealloc(sp.witnessed, (size_t)sp.n + 1);
        if (w == NULL) {
            return 0;
        }
        sp.witnessed = w;
        memset(w, 0, (size_t)sp.n + 1);
        for (Py_ssize_t m = 0; m < sp.scanned; m++) {
            const SpMember *e = &SPM(m);
            if (e->blen == 0 || block_dirty(e) || storage_dirty(e)) {
                continue;
            }
            for (uint32_t x = 0; x < e->ecount; x++) {
                w[SPE(e->eoff + x)] = 1;
            }
        }
        sp.witnessed_stop = sp.stops;
        sp.witnessed_n = sp.n;
    }
    return k < sp.witnessed_n && sp.witnessed[k];   /* (later ones joined this stop) */
}

/* Member k is certainly alive now (see "read" above): traversed and its
 * block clean (its refcount was not written: not freed), or referenced by
 * a member that is alive and whose references are intact -- its storage
 * clean and its block clean or, for a wide member, byte for byte its copy
 * but for the refcount.  The chain of `via` members is followed upwards
 * (a node joined through a wide index joined through a small dict...). */
#define ALIVE_DEPTH 64
static int
spread_alive(Py_ssize_t k)
{
    Py_ssize_t chain[ALIVE_DEPTH], chain_start = k;
    int depth = 0;
    for (;;) {
        const SpMember *e = &SPM(k);
        if ((memo_get(k) & MEMO_ALIVE) || (e->blen > 0 && !block_dirty(e))) {
            break;                      /* alive: walk back down */
        }
        if (e->via < 0 || depth == ALIVE_DEPTH) {
            return spread_witnessed(chain_start);
        }
        chain[depth++] = e->via;
        k = e->via;
    }
    /* chain[depth-1] is alive; each below it is referenced by the next */
    while (depth > 0) {
        if (!spread_refs_intact(chain[--depth])) {
            return spread_witnessed(chain_start);
        }
        if (depth > 0) {
            memo_put(chain[depth - 1], 0, MEMO_ALIVE);
        }
    }
    memo_put(chain_start, 0, MEMO_ALIVE);
    return 1;
}

/* Every member still on the spread's private list is alive, and is the
 * object that was traversed as that member: a traversed member moved to
 * sp.list (spread_move) and nothing of ours links anything else into it;
 * the interpreter unlinks an object from whatever list holds it when it
 * frees or untracks it, and tracks a new one into generation 0.  So one
 * walk of the list shows alive every member on it (MEMO_ALIVE), reading
 * only list nodes, which are live objects' headers.  The list is in
 * traversal order, which is index order, so the nodes to come are known:
 * they are prefetched (a freed member's address is harmless to
 * prefetch), and the walk is not a chain of dependent misses.  Used when
 * many members are on written pages: Sphinx's `via` chains cost a
 * compare-walk of ~1 us per member up a chain (2.5 ms for 10k members on
 * written pages); the list, ~15 ns per member. */
#define LIST_AHEAD 16
static void
spread_alive_by_list(void)
{
    Py_ssize_t e = 0;
    for (PyGC_Head *g = cg_next(&sp.list); g != &sp.list; g = cg_next(g)) {
        PyObject *op = CG_FROM_GC(g);
        Py_ssize_t k = e < sp.n && SPM(e).op == op ? e : spread_find(op);
        if (k >= 0) {
            memo_put(k, 0, MEMO_ALIVE);
            e = k + 1;
        }
        if (e + LIST_AHEAD < sp.n) {
            CG_PREFETCH(CG_AS_GC(SPM(e + LIST_AHEAD).op));
        }
    }
}

/* Many members with written blocks to show alive: the list walk first
 * (tests and the fuzzer: sp.alive_walk 1 always, -1 never).  A settling
 * stop (deadline > 0) walks only if the walk fits before its deadline: its
 * reading is bounded by the deadline member by member, the walk is not (a
 * spread of 1M members is a walk of ~10 ms); the verdict (deadline 0)
 * takes the cheaper way whatever it costs. */
static void
spread_alive_prepass(Py_ssize_t block_dirty, double deadline)
{
    if (sp.alive_walk < 0) {
        return;
    }
    if (sp.alive_walk == 0) {
        if (block_dirty < 256 || block_dirty * 16 < sp.n) {
            return;
        }
        if (deadline > 0 && cg_now() + (double)sp.n * sp.walk_cost > deadline) {
            return;
        }
    }
    double t0 = cg_now();
    spread_alive_by_list();
    if (sp.n >= 1024) {
        cost_sample(&sp.walk_cost, (cg_now() - t0) / (double)sp.n, 0.9);
    }
}

/* Flags the members on dirty pages (a walk of the side table only), once
 * per stop: the settling's or the "keep instead" check's flags serve the
 * verdict of the same stop, taken before anything is read (the walk was
 * 0.5 ms for 48k members, twice in a verdict's stop).  Reading a member
 * changes only its own flags (SP_UNSURE), never its pages' state. */
static Py_ssize_t
spread_flag_dirty(void)
{
    if (sp.flagged_stop == sp.stops) {
        return sp.flagged;
    }
    Py_ssize_t count = 0, blocks = 0;
    for (Py_ssize_t k = 0; k < sp.n; k++) {
        SpMember *e = &SPM(k);
        e->dirty = (block_dirty(e) ? SP_BLOCK_DIRTY : 0) | (storage_dirty(e) ? SP_STORAGE_DIRTY : 0);
        count += e->dirty != 0;
        blocks += (e->dirty & SP_BLOCK_DIRTY) != 0;
    }
    sp.flagged_stop = sp.stops;
    sp.flagged = count;
    sp.flagged_blocks = blocks;
    return count;
}

/* The members on dirty pages read again: each one alive for sure first
 * (a dirty block needs a clean member referencing it), its old references
 * taken back, its present ones counted, and its refcount read if its block
 * is dirty.  A member that cannot be read safely (not known to be alive --
 * maybe freed --, or no longer of a type we can read) is not read at all:
 * it is flagged SP_UNSURE and counts as referenced from outside, keeping
 * what its recorded references reach.  That is conservative whatever it
 * became: a reference it gained to a member moved there without a count
 * change took it from a member whose memory changed (read again here, its
 * count from members drops).  Returns how many are flagged, -1 if memory
 * ran out. */
static Py_ssize_t
spread_flag_unsure(void)
{
    Py_ssize_t unsure = 0;
    spread_alive_prepass(sp.flagged_blocks, 0.0);
    for (Py_ssize_t k = 0; k < sp.n; k++) {
        if ((SPM(k).dirty & SP_BLOCK_DIRTY) && !spread_alive(k)) {
            SPM(k).dirty |= SP_UNSURE;
            unsure++;
        }
    }
    if (unsure > 0) {
        /* a clean member references it: alive (one walk of the clean
         * members' references, only when a `via` chain could not tell) */
        for (Py_ssize_t k = 0; k < sp.n; k++) {
            SpMember *e = &SPM(k);
            if (e->dirty != 0) {
                continue;
            }
            for (uint32_t x = 0; x < e->ecount; x++) {
                SpMember *t = &SPM((Py_ssize_t)SPE(e->eoff + x));
                if (t->dirty & SP_UNSURE) {
                    t->dirty &= ~SP_UNSURE;
                    unsure--;
                }
            }
        }
    }
    return unsure;
}

/* Member k (flagged dirty, not SP_UNSURE: alive) read again.  1 read, 0
 * not readable (flagged SP_UNSURE now), -1 out of memory.  A member that
 * joined through k and that k no longer references loses its `via`: the
 * chain "k references it" (spread_alive) held for the old references. */
static int
spread_reread_member(Py_ssize_t k)
{
    SpMember *e = &SPM(k);
    PyObject *op = e->op;
    PyTypeObject *tp = Py_TYPE(op);
    if ((e->dirty & SP_BLOCK_DIRTY)
        && (!spread_admitted(tp) || !cg_is_tracked(op))) {
        e->dirty |= SP_UNSURE;
        return 0;
    }
    if (e->dirty & SP_BLOCK_DIRTY) {
        spread_set_counts(k, Py_REFCNT(op), e->internal);
        sp.weakrefs |= tp->tp_weaklistoffset != 0 && *cg_weakrefs_listptr(op) != NULL;
        sp.finalizers |= tp->tp_finalize != NULL && !(CG_AS_GC(op)->_gc_prev & CG_PREV_FINALIZED);
    }
    if ((memo_get(k) & MEMO_INTACT) || spread_same_bytes(e)) {
        return 1;       /* a neighbour wrote its page: its references stand */
    }
    if (e->snap < 0 && !(memo_get(k) & MEMO_CHANGED) && spread_edges_same(e)) {
        /* compared first: most members on written pages are unchanged
         * (their neighbours wrote), and a walk that only compares costs
         * less than taking the references back and recording them again */
        memo_put(k, 0, MEMO_INTACT | MEMO_ALIVE);
        sp.reread++;
        return 1;
    }
    uint32_t old_off = e->eoff, old_count = e->ecount;
    for (uint32_t x = 0; x < old_count; x++) {
        Py_ssize_t t = SPE(old_off + x);
        spread_set_counts(t, SPM(t).refcnt, (Py_ssize_t)SPM(t).internal - 1);
    }
    Py_ssize_t from = sp.nedges;     /* its present references replace them */
    tp->tp_traverse(op, spread_revisit, NULL);
    if (sp.refused) {
        return -1;
    }
    e = &SPM(k);
    e->eoff = (uint32_t)from;
    e->ecount = (uint32_t)(sp.nedges - from);
    /* A wide member's copy is of its bytes before: compared again (a
     * later settling stop, spread_refs_intact), bytes changed back to it
     * would pass for the references recorded now, which are the changed
     * ones -- a reference to a member counted that is not there, which can
     * hide one from outside.  Read again, it is walked again from now on. */
    e->snap = -1;
    memo_put(k, MEMO_CHANGED, MEMO_INTACT | MEMO_ALIVE);
    for (uint32_t x = 0; x < old_count; x++) {
        Py_ssize_t t = SPE(old_off + x);
        if (SPM(t).via != (int32_t)k) {
            continue;
        }
        int kept = 0;
        for (uint32_t y = 0; y < e->ecount && y < 64 && !kept; y++) {
            kept = (Py_ssize_t)SPE(e->eoff + y) == t;
        }
        if (!kept) {
            SPM(t).via = -1;        /* alive by a witness walk from now on */
        }
    }
    sp.reread++;
    return 1;
}

/* The members flagged dirty read again (spread_flag_unsure first: which
 * can be read).  Returns how many are SP_UNSURE, -1 if memory ran out. */
#define REREAD_AHEAD 6

static Py_ssize_t
spread_reread(void)
{
    Py_ssize_t unsure = spread_flag_unsure();
    /* in index order; each member's object is prefetched a few reads
     * ahead, then its storage (alive, so its memory is the object's:
     * block-dirty ones were shown alive by spread_flag_unsure, the others'
     * refcounts were not written) */
    Py_ssize_t m = 0;
    Py_ssize_t *todo = PyMem_RawMalloc((size_t)(sp.n > 0 ? sp.n : 1) * sizeof(Py_ssize_t));
    if (todo == NULL) {
        return -1;
    }
    for (Py_ssize_t k = 0; k < sp.n; k++) {
        const SpMember *e = &SPM(k);
        if (e->dirty != 0 && !(e->dirty & SP_UNSURE)) {
            todo[m++] = k;
        }
    }
    for (Py_ssize_t i = 0; i < m; i++) {
        if (i + 2 * REREAD_AHEAD < m) {
            cg_prefetch_object(SPM(todo[i + 2 * REREAD_AHEAD]).op, 1);
        }
        if (i + REREAD_AHEAD < m) {
            /* its header lines were asked for REREAD_AHEAD reads ago: the
             * storage its traversal reads first (alive: safe to read) */
            cg_prefetch_storage(SPM(todo[i + REREAD_AHEAD]).op);
        }
        int r = spread_reread_member(todo[i]);
        if (r < 0) {
            PyMem_RawFree(todo);
            return -1;
        }
        unsure += r == 0;
    }
    PyMem_RawFree(todo);
    return unsure;
}

/* move_unreachable on the side tables: reach[k] (zeroed by the caller)
 * set for every member reached along the recorded references from the
 * members referenced from outside -- a count other than the references
 * recorded from members, or SP_UNSURE (not read at the verdict).  Returns
 * how many, -1 if memory ran out. */
static Py_ssize_t
spread_reach(uint8_t *reach)
{
    Py_ssize_t n = sp.n, top = 0, reached;
    Py_ssize_t *todo = PyMem_RawMalloc((size_t)(n > 0 ? n : 1) * sizeof(Py_ssize_t));
    if (todo == NULL) {
        return -1;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        if (SPM(k).refcnt != (Py_ssize_t)SPM(k).internal || (SPM(k).dirty & SP_UNSURE)) {
            reach[k] = 1;
            todo[top++] = k;
        }
    }
    reached = top;
    while (top > 0) {
        const SpMember *e = &SPM(todo[--top]);
        for (uint32_t x = 0; x < e->ecount; x++) {
            Py_ssize_t t = SPE(e->eoff + x);
            if (!reach[t]) {
                reach[t] = 1;
                todo[top++] = t;
                reached++;
            }
        }
    }
    PyMem_RawFree(todo);
    return reached;
}

/* Every member is reached, along the recorded references, from members
 * recorded as referenced from outside (spread_reach, on the records as
 * they are, this stop's SP_UNSURE flags not set yet): the verdict
 * would most likely find them all alive.  Nothing is read: the records of
 * members on written pages may be stale (the program's use of a live
 * structure writes its refcounts), so this is an estimate, used only to
 * keep, which is always sound.  What it can cost is retention: a structure
 * that was referenced from outside when read, and dropped since, is kept
 * for this round, as marking keeps what dies after it; the next round
 * reads it dead and its verdict frees it.  Garbage whose records show no
 * reference from outside always gets its verdict.  A live structure that
 * marking did not reach (linked after the round began) is the usual case:
 * on Sphinx such verdicts read 2-17k of 36k members on written pages, 4-30
 * ms, to find them all alive. */
static int
spread_all_reached_from_outside(void)
{
    if (sp.n == 0 || sp.mism == 0) {
        return 0;
    }
    uint8_t *reach = PyMem_RawCalloc((size_t)sp.n, 1);
    Py_ssize_t reached = reach == NULL ? -1 : spread_reach(reach);
    PyMem_RawFree(reach);
    return reached == sp.n;
}

/* The verdict, `flagged` members to read again, would not fit this stop
 * and would keep every member: they are kept without it (not in tests
 * that force settling). */
static int
spread_keep_instead(double deadline, Py_ssize_t flagged)
{
    double verdict = (double)flagged * sp.reread_cost + (double)sp.n * sp.decide_cost;
    return sp.settle_pages == 0 && cg_now() + verdict > deadline && spread_all_reached_from_outside();
}

static void
spread_keep_all(void)
{
    sp.kept_from_outside++;
    sp.unsure_streak = 0;
    spread_keep_traversed();
}

/* Settling: a verdict with many members on dirty pages (a program busy
 * writing near a big structure: Sphinx, 6.7k of 38k members, 20k reads
 * again, 6.6 ms in one stop) reads them again over several stops instead,
 * and decides at the first stop whose reading fits its budget.  Each stop
 * goes through the dirty pages in address order: every member with memory
 * on a page is read again (each shown alive first: a member read again
 * earlier in the stop keeps as its `via` only the members it still
 * references, so the chains stay true), and then the page is protected
 * again.  A page is
 * protected only when all its members were read in this stop, so a
 * protected page again means "each member on it is as recorded", which is
 * the invariant of the joining stops; a page with a member that could not
 * be read, or whose memory moved (a list grown past its pages: its new
 * storage is not watched), is left dirty, or ends the settling.  After
 * SETTLE_MAX stops the verdict is taken whatever it costs. */
#define SETTLE_MAX 8

typedef struct {
    uintptr_t page;
    Py_ssize_t k;
} PageMember;

static int
cmp_page_member(const void *a, const void *b)
{
    const PageMember *x = a, *y = b;
    return (x->page > y->page) - (x->page < y->page);
}

/* The dirty pages of [first, last] go to `v` as member k's. */
static int
spread_add_page_members(PageMember **v, Py_ssize_t *n, Py_ssize_t *cap,
                        uintptr_t first, uintptr_t last, Py_ssize_t k)
{
    for (uintptr_t page = first; page <= last; page++) {
        if (!dirty_page(page)) {
            continue;
        }
        if (spread_grow((void **)v, cap, *n + 1, sizeof(PageMember)) < 0) {
            return -1;
        }
        (*v)[(*n)++] = (PageMember){page, k};
    }
    return 0;
}

/* 1: decide now (little to read again, or settling is over); 0: pages
 * read again and protected, the verdict waits for the next stop; 2: keep
 * every member instead (spread_keep_instead); -1: the spread must end
 * (out of memory, or the watch failed). */
static int
spread_settle(double deadline)
{
    Py_ssize_t flagged = spread_flag_dirty();
    double now = cg_now();
    double verdict = (double)flagged * sp.reread_cost + (double)sp.n * sp.decide_cost;
    if (flagged == 0 || (sp.settle_pages == 0 && now + verdict <= deadline)) {
        return 1;
    }
    if (spread_keep_instead(deadline, flagged)) {
        return 2;
    }
    if (sp.settles >= SETTLE_MAX) {
        /* the program writes faster than the settling reads: the verdict
         * as it is.  (Taking the closure whole instead when that looked
         * cheaper was tried: on Sphinx it did not shorten the longest
         * stops, and it made a live structure that marking cannot reach
         * take an oversized stop most rounds.) */
        return 1;
    }
    PageMember *v = NULL;
    Py_ssize_t nv = 0, vcap = 0;
    for (Py_ssize_t k = 0; k < sp.n; k++) {
        const SpMember *e = &SPM(k);
        if (e->dirty == 0) {
            continue;
        }
        uintptr_t b0 = ((uintptr_t)e->op - e->pre) >> 12, b1 = ((uintptr_t)e->op + e->blen - 1) >> 12;
        if (spread_add_page_members(&v, &nv, &vcap, b0, b1, k) < 0
            || (e->snp > 0 && spread_add_page_members(&v, &nv, &vcap, e->spage,
                                                      e->spage + e->snp - 1, k) < 0)) {
            PyMem_RawFree(v);
            return -1;
        }
    }
    qsort(v, (size_t)nv, sizeof(PageMember), cmp_page_member);
    memo_begin();
    spread_alive_prepass(sp.flagged_blocks, deadline);
    uint8_t *done = PyMem_RawCalloc((size_t)sp.n, 1);    /* 1 read, 2 not readable */
    uintptr_t *again = PyMem_RawMalloc((size_t)(nv > 0 ? nv : 1) * sizeof(uintptr_t));
    if (done == NULL || again == NULL) {
        PyMem_RawFree(v);
        PyMem_RawFree(done);
        PyMem_RawFree(again);
        return -1;
    }
    Py_ssize_t nagain = 0, reads = 0, i = 0;
    int result = 0;
    double t0 = now;
    while (i < nv) {
        if (cg_now() > deadline || (sp.settle_pages > 0 && nagain >= sp.settle_pages)) {
            break;
        }
        uintptr_t page = v[i].page;
        int whole = 1;
        for (; i < nv && v[i].page == page; i++) {
            Py_ssize_t k = v[i].k;
            if (done[k] == 0) {
                SpMember *e = &SPM(k);
                int r = 0;
                /* alive first (its block clean, or a `via` chain, or a
                 * witness); a member read again before in this stop keeps
                 * the `via` of those it still references (spread_reread_member) */
                if (((e->dirty & SP_BLOCK_DIRTY) == 0 || spread_alive(k))
                    && spread_same_layout(e->op, e)) {
                    r = spread_reread_member(k);
                    reads++;
                }
                if (r < 0) {
                    result = -1;
                    goto out;
                }
                done[k] = r == 1 ? 1 : 2;
            }
            whole &= done[k] == 1;
        }
        if (whole) {
            again[nagain++] = page;
        }
    }
    if (nagain > 0 && cg_ww_protect(again, nagain) < 0) {
        result = -1;
        goto out;
    }
    if (reads > 0) {
        double per = (cg_now() - t0) / (double)reads;
        cost_sample(&sp.reread_cost, per, 0.9);
    }
    sp.settles++;
    sp.settle_stops++;
    sp.settled_pages += nagain;
out:
    memo_end();
    PyMem_RawFree(v);
    PyMem_RawFree(done);
    PyMem_RawFree(again);
    return result;
}

/* Member k survives the verdict.  One flagged SP_UNSURE was not shown
 * alive (it may have been freed since it was traversed): it is marked by
 * its address only, as spread_unsure marks, never read -- keep_survivor
 * reads its type and, for a dict, its entries (a freed dict's were: a
 * crash in the fuzzer, 1 run in ~30 under load). */
static void
spread_keep(Py_ssize_t k)
{
    const SpMember *e = &SPM(k);
    if ((e->dirty & SP_UNSURE) || !e->atomish || e->ecount > 0) {
        /* not read: a member not shown alive; or one that keep_survivor
         * would only mark, not an exact tuple or dict, or one referencing
         * a member (tracked: not an atom).  Reading every survivor was
         * 1.2-3.3 ms of a 25-36k-member verdict on Sphinx. */
        (void)addrset_add(&inc.marks, e->op);
    }
    else {
        (void)keep_survivor(e->op);
    }
}

/* The verdict on a complete closure (see "decide" above), at a stop whose
 * check passed, nothing else run since.  0 if it could not be reached
 * safely (the caller ends the spread). */
static int
spread_decide(CgState *st, CgResult *out)
{
    Py_ssize_t n = sp.n, unsure = 0, dirty = 0, reread0 = sp.reread;
    double t0 = cg_now();
    if (sp.ndirty > 0 && (dirty = spread_flag_dirty()) > 0) {
        memo_begin();
        unsure = spread_reread();
        memo_end();
        if (unsure < 0) {
            return 0;
        }
        sp.last_reread_seconds = cg_now() - t0;
        cost_sample(&sp.reread_cost, sp.last_reread_seconds / (double)dirty, 0.9);
    }
    sp.last_dirty = dirty;
    sp.last_reread = sp.reread - reread0;
    sp.unsure_streak = 0;
    /* The pages stay protected: un-protecting them run by run cost more
     * (1.9 ms for 200k objects) than the faults of the writes that come
     * (tp_clear of garbage, in bounded stops; the program's, once a page). */
    if (n > sp.largest) {
        sp.largest = n;
    }
    if (sp.stops > sp.longest_stops) {
        sp.longest_stops = sp.stops;
    }
    inc.swept += n;
    /* move_unreachable on the side tables: what a member referenced from
     * outside reaches through the recorded references is alive, the rest
     * garbage (every count and reference describes this instant) */
    Py_ssize_t alive = 0;
    if (sp.mism > 0 || unsure > 0) {
        uint8_t *reach = PyMem_RawCalloc((size_t)n, 1);
        if (reach == NULL || (alive = spread_reach(reach)) < 0) {
            PyMem_RawFree(reach);
            return 0;
        }
        PyGC_Head garbage;
        cg_list_init(&garbage);
        if (alive < n) {
            for (Py_ssize_t k = 0; k < n; k++) {
                if (!reach[k]) {
                    cg_list_move(CG_AS_GC(SPM(k).op), &garbage);
                }
                else {
                    spread_keep(k);
                }
            }
        }
        else {
            for (Py_ssize_t k = 0; k < n; k++) {
                spread_keep(k);
            }
        }
        PyMem_RawFree(reach);
        inc.round_survivors += alive;
        cg_list_merge(&sp.list, &inc.visited);
        cg_list_merge(&garbage, &sp.list);      /* sp.list: the garbage now */
        if (alive == n) {
            sp.kept_alive++;
            spread_free();
            return 1;
        }
    }
    int weakrefs = sp.weakrefs, finalizers = sp.finalizers;
    n -= alive;
    spread_free();
    PyGC_Head unreachable;
    cg_list_init(&unreachable);
    cg_list_merge(&sp.list, &unreachable);
    if (weakrefs || finalizers) {
        /* their steps look for the garbage by its flag */
        for (PyGC_Head *g = cg_next(&unreachable); g != &unreachable; g = cg_next(g)) {
            g->_gc_prev |= CG_PREV_COLLECTING;
        }
    }
    sp.proven_garbage++;
    inc.whole_garbage_slices++;
    CgPark proven = {.count = 0, .code_ran = 0};
    cg_list_init(&proven.list);
    Py_ssize_t collected = 0, uncollectable = 0;
    double t1 = cg_now();
    cg_park_garbage = &proven;
    cg_dispose_surveyed_garbage(st, &unreachable, &inc.visited, n, weakrefs, finalizers,
                                &collected, &uncollectable);
    cg_park_garbage = NULL;
    park_proven(st, &proven);
    sp.last_dispose_seconds = cg_now() - t1;
    count_disposed(st, out, n, collected, uncollectable, t1);
    sp.garbage_objects += collected;
    return 1;
}

/* Member k's traversal is complete: its references closed, itself moved to
 * sp.list.  -1 (the spread ended) if a referent could not join. */
static int
spread_close(Py_ssize_t k, int move)
{
    SPM(k).ecount = (uint32_t)(sp.nedges - SPM(k).eoff);
    sp.scanned = k + 1;
    if (sp.refused || (move && spread_move(SPM(k).op) < 0)) {
        sp.refused_type++;
        spread_abort(1);
        return -1;
    }
    return 0;
}

/* The pages an ended spread left protected are made writable a part per
 * stop (all at once was 1.9 ms for 200k objects), before its garbage is
 * cleared (whose writes would each fault) and before a new spread protects
 * any.  Returns 1 when none is left. */
static int
spread_release(double deadline)
{
    if (sp.rel == NULL) {
        return 1;
    }
    sp.relpos = cg_ww_release(sp.rel, sp.nrel, sp.relpos, deadline);
    if (sp.relpos < sp.nrel) {
        return 0;
    }
    PyMem_RawFree(sp.rel);
    sp.rel = NULL;
    sp.nrel = sp.relpos = 0;
    return 1;
}

/* One stop's share of a spread: the check, traversal until the deadline,
 * then the verdict or the watch.  Returns the objects traversed. */
static Py_ssize_t
spread_step(CgState *st, double deadline, CgResult *out)
{
    double t0 = cg_now();
    Py_ssize_t before = sp.scanned, done = 0;
    if (!sp.active) {
        if (!spread_wanted()) {
            sp.next = 0;
            inc.take_whole = 1;
            return 0;
        }
        if (!spread_release(deadline)) {
            return 1;               /* the next stop starts it */
        }
        sp.next = 0;
        PyGC_Head *head = cg_next(&inc.to_sweep);
        if (head == &inc.to_sweep || CG_IS_IMMORTAL(CG_FROM_GC(head))
            || addrset_has(&inc.marks, CG_FROM_GC(head))) {
            return 0;               /* the closure that was put back is gone */
        }
        if (sp.subtype_traverse == NULL) {
            inc.take_whole = 1;     /* (spread_init failed when the mode came on) */
            return 0;
        }
        sp.active = 1;
        sp.started++;
        if (sp.reread_cost == 0) {
            sp.reread_cost = 300e-9;    /* first guesses; measured from then on (1.1 us, Sphinx's */
                                        /* with its alive checks, made more verdicts settle, */
                                        /* and a settling stop more is a stop more for the */
                                        /* program to write in: more spreads ended unsure) */
            sp.decide_cost = 20e-9;
        }
        if (sp.walk_cost == 0) {
            sp.walk_cost = 15e-9;
        }
        cg_list_init(&sp.list);
        cg_slots_init(&sp.ring);
        sp.last_block = sp.last_storage = (uintptr_t)-1;
        (void)spread_join(CG_FROM_GC(head), -1);
        if (sp.refused) {
            sp.refused_type++;
            spread_abort(1);
            return 0;
        }
    }
    else {
        if (!cg_spread_enabled) {
            spread_abort(1);
            return 0;
        }
        if (sp.dirty == NULL) {
            sp.dirty = PyMem_RawMalloc(SPREAD_DIRTY_MAX * sizeof(uintptr_t));
        }
        sp.ndirty = sp.dirty == NULL ? -1 : cg_ww_dirty(sp.pages, sp.npages, sp.dirty, SPREAD_DIRTY_MAX);
        if (sp.ndirty < 0) {
            sp.aborted_unwatchable++;
            spread_abort(1);
            return 0;
        }
        set_dirty_pages();
    }
    sp.stops++;
    sp.last_block = sp.last_storage = (uintptr_t)-1;
    Py_ssize_t joined_before = sp.stops == 1 ? 0 : sp.n;   /* later ones were just found alive */
    Py_ssize_t next_clock = CLOCK_EVERY;
    /* the watch at the end is part of the stop: leave it its time (at
     * least CLOCK_EVERY members are traversed, so a spread always moves) */
    deadline -= sp.watch_cost;
    while (sp.scanned < sp.n) {
        if (done >= next_clock) {
            next_clock = done + CLOCK_EVERY;
            if (cg_now() > deadline) {
                break;
            }
        }
        if (sp.step_limit > 0 && done >= sp.step_limit) {
            break;
        }
        Py_ssize_t k = sp.scanned;
        PyObject *op = SPM(k).op;
        if (sp.partial) {
            /* a wide member begun in an earlier stop: unchanged since?  A
             * dirty block may be its neighbours' doing: its copy says. */
            SpMember *e = &SPM(k);
            int bd = block_dirty(e);
            /* it was moved to sp.list's tail when its walk began, and
             * nothing joined the list since: still the tail, so not freed
             * (the interpreter unlinks an object it frees) */
            if (bd && cg_prev(&sp.list) != CG_AS_GC(op)) {
                spread_unsure();
                goto out;
            }
            if (bd || storage_dirty(e)) {
                if (!spread_same_bytes(e)) {
                    spread_unsure();
                    goto out;
                }
                if (bd) {
                    spread_set_counts(k, Py_REFCNT(op), e->internal);
                }
            }
        }
        else {
            if (k < joined_before && !spread_alive(k)) {
                spread_unsure();
                goto out;
            }
            PyTypeObject *tp = Py_TYPE(op);
            if (!cg_is_tracked(op) || spread_ranges(op, &SPM(k)) < 0) {
                /* untracked meanwhile (a young collection untracks dicts of
                 * atoms), or a layout we do not know */
                sp.refused_type++;
                spread_abort(1);
                goto out;
            }
            spread_set_counts(k, Py_REFCNT(op), SPM(k).internal);
            SPM(k).eoff = (uint32_t)sp.nedges;
            sp.weakrefs |= tp->tp_weaklistoffset != 0 && *cg_weakrefs_listptr(op) != NULL;
            sp.finalizers |= tp->tp_finalize != NULL && !(CG_AS_GC(op)->_gc_prev & CG_PREV_FINALIZED);
            if (k + 1 < sp.n) {
                cg_prefetch_object(SPM(k + 1).op, 0);
            }
            sp.current = (int32_t)k;
            if ((tp == &PyList_Type && PyList_GET_SIZE(op) > WIDE)
                || (tp == &PyDict_Type && PyDict_GET_SIZE(op) > WIDE)) {
                /* traversed in slices, and its object copied: at the
                 * verdict a dirty page of its block (its neighbours') need
                 * not mean a walk of all its items again */
                if (spread_snapshot(k) < 0 || spread_move(op) < 0) {
                    sp.aborted_unwatchable++;
                    spread_abort(1);
                    goto out;
                }
                sp.partial = 1;
                sp.wide_pos = 0;
            }
            else {
                tp->tp_traverse(op, spread_visit, NULL);
                spread_drain();
                done++;
                if (spread_close(k, 1) < 0) {
                    goto out;
                }
                continue;
            }
        }
        int finished;
        done += cg_visit_items_slice(op, &sp.wide_pos, WIDE, spread_visit, NULL, &finished);
        spread_drain();
        spread_snap_storage(k, spread_read_upto(op, sp.wide_pos));
        if (finished) {
            sp.partial = 0;
            if (spread_close(k, 0) < 0) {
                goto out;
            }
        }
        else if (sp.refused) {
            sp.refused_type++;
            spread_abort(1);
            goto out;
        }
    }
    int settle = 1;
    if (sp.scanned == sp.n && done > 0 && !sp.verdict_waited
        && (sp.settle_pages > 0 || cg_now() + (double)sp.n * sp.decide_cost > deadline)) {
        /* the joining took this stop: the verdict gets a stop of its own
         * (the pages named in this one are watched first, below).  Not
         * when pages were merely written: a verdict a stop later meets more
         * written pages and ends unsure more often (the differential soak
         * then keeps garbage a round longer), and on Sphinx it did not make
         * the longest stops shorter. */
        sp.verdict_waited = 1;
        settle = 0;
    }
    else if (sp.scanned == sp.n && done == 0 && sp.ndirty > 0) {
        settle = spread_settle(deadline);
        if (settle < 0) {
            sp.aborted_unwatchable++;
            spread_abort(1);
            goto out;
        }
        if (settle == 0) {
            goto out;       /* nothing new to watch: the pages read were protected */
        }
        if (settle == 2) {
            spread_keep_all();
            goto out;
        }
    }
    else if (sp.scanned == sp.n && settle && sp.ndirty > 0
             && spread_keep_instead(deadline, spread_flag_dirty())) {
        spread_keep_all();      /* (the joining ended in this stop) */
        goto out;
    }
    if (sp.scanned == sp.n && settle) {
        double tv = cg_now();
        Py_ssize_t members = sp.n;
        sp.last_dirty = sp.last_reread = 0;
        sp.last_reread_seconds = sp.last_dispose_seconds = 0;
        if (!spread_decide(st, out)) {
            spread_unsure();
        }
        double took = cg_now() - tv;
        if (members > 0 && sp.last_reread == 0) {
            double per = took / (double)members;
            cost_sample(&sp.decide_cost, per, 0.9);
        }
        if (took > sp.verdict_seconds) {
            sp.verdict_seconds = took;
            sp.verdict_members = members;
            sp.verdict_dirty = sp.last_dirty;
            sp.verdict_reread = sp.last_reread;
            sp.verdict_reread_seconds = sp.last_reread_seconds;
            sp.verdict_dispose_seconds = sp.last_dispose_seconds;
        }
    }
    else {
        double tw = cg_now();
        if (spread_watch() < 0) {
            sp.aborted_unwatchable++;
            spread_abort(1);
        }
        else {
            double w = cg_now() - tw;
            sp.watch_cost = w > sp.watch_cost ? w : 0.9 * sp.watch_cost + 0.1 * w;
        }
    }
out:
    inc.stop.part_seconds[PART_SWEEP] += cg_now() - t0;
    inc.stop.part_objects[PART_SWEEP] += done;
    inc.stop.slices++;
    (void)before;
    return Py_MAX(done, 1);
}

/* The knob (_core._set_spread): tests and benchmarks compare the one-stop
 * proof.  Switching it off ends a spread at its next stop.  On by default
 * (where the kernel reports page writes).  The eleventh session had it off
 * over the differential seed 5204100, where two objects the built-in keeps
 * alive are freed; the twelfth found why, and it is not a proof's fault:
 * garbage decided alive in one part (referenced by garbage of a later
 * part) died by its count, and CPython's deallocation detaches a weakref's
 * callback before calling it, so what only that callback held died too
 * (design.md, "Parts decided apart"). */
int cg_spread_enabled = 1;

/* Tests and the fuzzer: every verdict with dirty pages settles first (up
 * to SETTLE_MAX stops), n pages per stop at most (0: as the budget says). */
void
cg_inc_set_spread_settle_pages(Py_ssize_t n)
{
    sp.settle_pages = n;
}

/* Tests and the fuzzer: 1, every verdict's or settling's stop shows the
 * members alive by a walk of the spread's list first; -1 never; 0 when
 * many members' blocks were written. */
void
cg_inc_set_spread_alive_walk(Py_ssize_t mode)
{
    sp.alive_walk = mode > 0 ? 1 : mode < 0 ? -1 : 0;
}

/* Tests and the fuzzer: at most n members traversed per stop (0: as the
 * budget allows), so that a small closure spreads over many stops. */
void
cg_inc_set_spread_step_limit(Py_ssize_t n)
{
    sp.step_limit = n;
}

/* Tests and the fuzzer: the next stop proves `op`'s closure across stops,
 * if a round is sweeping, no spread runs and op is unmarked in a GC list.
 * Returns 1 if so. */
int
cg_inc_spread_from(PyObject *op)
{
    if (!inc.initialized || inc.phase != SWEEP || sp.active || !cg_is_gc(op)
        || !cg_is_tracked(op) || CG_IS_IMMORTAL(op) || addrset_has(&inc.marks, op)
        || (CG_AS_GC(op)->_gc_prev & CG_PREV_COLLECTING) || !spread_wanted()) {
        return 0;
    }
    PyGC_Head *g = CG_AS_GC(op);
    unlink_node(g);
    insert_after(g, &inc.to_sweep);
    sp.next = 1;
    return 1;
}

static int
spread_wanted(void)
{
    return cg_spread_enabled && cg_ww_available();
}

static PyObject *
spread_stats(void)
{
    PyObject *ww = cg_ww_stats();
    if (ww == NULL) {
        return NULL;
    }
    PyObject *verdict = Py_BuildValue("{sdsdsdsnsnsnsnsn}", "seconds", sp.verdict_seconds,
                                      "reread_seconds", sp.verdict_reread_seconds,
                                      "dispose_seconds", sp.verdict_dispose_seconds,
                                      "members", sp.verdict_members, "dirty", sp.verdict_dirty,
                                      "reread", sp.verdict_reread, "settle_stops", sp.settle_stops,
                                      "settled_pages", sp.settled_pages);
    PyObject *refused = refused_kinds_dict();
    if (verdict == NULL || refused == NULL) {
        Py_XDECREF(verdict);
        Py_XDECREF(refused);
        Py_DECREF(ww);
        return NULL;
    }
    return Py_BuildValue("{sOsnsnsnsnsnsnsnsnsnsnsnsnsnsnsnsssNsNsN}",
                         "enabled", spread_wanted() ? Py_True : Py_False,
                         "active", (Py_ssize_t)sp.active,
                         "members", sp.active ? sp.n : (Py_ssize_t)0,
                         "traversed", sp.active ? sp.scanned : (Py_ssize_t)0,
                         "started", sp.started,
                         "proven_garbage", sp.proven_garbage,
                         "kept_alive", sp.kept_alive,
                         "kept_unsure", sp.kept_unsure,
                         "kept_from_outside", sp.kept_from_outside,
                         "aborted_unsure", sp.aborted_unsure,
                         "aborted_unwatchable", sp.aborted_unwatchable,
                         "refused_type", sp.refused_type,
                         "largest", sp.largest,
                         "longest_stops", sp.longest_stops,
                         "garbage_objects", sp.garbage_objects,
                         "reread", sp.reread,
                         "last_refused_type", sp.refused_name,
                         "write_watch", ww,
                         "longest_verdict", verdict,
                         "refused_types", refused);
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
    ctx.truncated_seed = NULL;
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
            if (whole_next && spread_wanted()
                && (ctx.hard_cap >= SPREAD_SMALL || sp.step_limit > 0)) {
                /* proven across stops, if it can be: from the seed whose
                 * closure is the big one, moved to the head */
                sp.next = 1;
                if (ctx.truncated_seed != NULL) {
                    PyGC_Head *g = CG_AS_GC(ctx.truncated_seed);
                    unlink_node(g);
                    insert_after(g, &inc.to_sweep);
                }
            }
            else {
                inc.take_whole |= whole_next;
            }
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
    count_disposed(st, out, n, collected, uncollectable, t1);
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
        cost_sample(&inc.sweep_cost, per, 0.95);
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
    spread_abort(0);
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
cg_inc_is_marked(PyObject *op)
{
    return inc.initialized && addrset_has(&inc.marks, op);
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
    PyGC_Head *all[4 + WIDE_DEPTH];
    all[n++] = &inc.to_sweep;
    if (sp.active) {
        all[n++] = &sp.list;
    }
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
            if (sp.active || sp.next) {
                /* a spread is the stop's only old work (its members are
                 * out of to_sweep: the round does not end meanwhile), and
                 * waits for the next stop if marking took half of this one
                 * (its check and watch cost a few hundred microseconds) */
                if (first || cg_now() < deadline - inc.max_pause * BUDGET_SHARE / 2) {
                    work += spread_step(st, deadline, out);
                }
                goto done;
            }
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
    /* Until generation 0 is empty again after chunking began, it is
     * chunked.  Otherwise the counts say whether it fits, and when they
     * say it does generation 0 is counted too: count0 is no measure of
     * it.  Every GC object freed anywhere lowers count0, so a program
     * dropping old structures while it builds new ones (pylint drops its
     * ASTs) has a generation 0 several times count0: a generation-1
     * collection of 21,946 objects took 5.6 ms on 3.13 where the counts
     * said it fit.  Generation 0's objects are recent, mostly in cache,
     * and the collection reads them next; counting stops at what fits.
     * gen1_estimate adds what young collections left (their real sizes),
     * so generation 1, whose objects are cold, is not walked.  (Walking
     * cold objects the collection then reads again cost Sphinx's
     * generation-1 collections on 3.13 and, while chunking, doubled
     * big_young's chunks: 5.3 ms.) */
    if (!inc.young_backlog) {
        Py_ssize_t g1 = young_gen == 1 ? Py_MIN(inc.gen1_estimate, cap) : 0;
        Py_ssize_t est = (Py_ssize_t)st->generations[0].count + g1;
        if (est <= cap) {
            est = g1 + cg_list_size_upto(cg_gen_head(st, 0), cap + 1 - g1);
        }
        if (est <= cap) {
            return 0;
        }
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
        cost_sample(&inc.young_cost, per, 0.95);
    }
    return 1;
}

/* Every GC object freed lowers generation 0's count (PyObject_GC_Del,
 * down to 0).  The built-in frees garbage only inside a collection, after
 * it set that count, so its frees never delay the next collection.  Old
 * work frees garbage after the stop's young part (or in a stop without
 * one: an extra stop, parked clearing that did not finish), and would
 * delay the next young collection by as many objects as it freed while
 * the program's new ones pile up in generation 0: Sphinx on 3.13
 * (threshold0 2,000, an extra stop every 350 allocations) had young
 * collections of 12-17k objects, 4-5 ms.  The count is put back to what
 * it was before the old work (`count0`), if that freed more than it
 * allocated. */
static void
keep_count0(CgState *st, int count0)
{
    if (st->generations[0].count < count0) {
        st->generations[0].count = count0;
    }
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
            int count0 = st->generations[0].count;
            old_work(st, t0 + inc.max_pause * BUDGET_SHARE, out);
            keep_count0(st, count0);
            if (PyErr_Occurred()) {
                cg_write_unraisable_msg("in garbage collection", NULL);
            }
        }
        inc.last_young_chunked = 0;
        out->duration = cg_now() - t0;
        end_stop(t0);
        return;
    }
    if (!spread_release(t0 + inc.max_pause * BUDGET_SHARE) && !cg_list_is_empty(&inc.parked)) {
        /* the parked garbage's pages are still protected: its tp_clear
         * would fault on each */
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
        int count0 = st->generations[0].count;
        Py_ssize_t n = clear_parked(st, t0 + inc.max_pause * BUDGET_SHARE, 0);
        inc.stop.part_seconds[PART_DISPOSE] += cg_now() - tp;
        inc.stop.part_objects[PART_DISPOSE] += n;
        if (!cg_list_is_empty(&inc.parked)) {
            keep_count0(st, count0);    /* no young collection in this stop */
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
            cost_sample(&inc.young_cost, per, 0.95);
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
        int count0 = st->generations[0].count;     /* as the young part left it */
        old_work(st, t0 + inc.max_pause * BUDGET_SHARE, out);
        keep_count0(st, count0);
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
    PyObject *spread = busiest == NULL ? NULL : spread_stats();
    if (spread == NULL) {
        Py_XDECREF(last);
        Py_XDECREF(longest);
        Py_XDECREF(busiest);
        return NULL;
    }
    return Py_BuildValue(
        "{sdsssnsnsnsnsnsnsnsnsnsnsnsnsnsnsnsdsdsdsdsnsnsnsnsnsnsnsnsnsnsnsnsnsNsNsNsN}",
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
        "busiest_stop", busiest,
        "spread", spread);
}
