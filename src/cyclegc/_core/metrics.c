/* metrics.c -- what every collection cost, kept by the core itself.
 *
 * Recording is a few stores into static memory at the end of a collection:
 * no allocation, no lock (the GIL is held), no Python code, so it is safe
 * from any collection and free enough for young collections of a few
 * microseconds.  Python (cyclegc.stats) turns a snapshot into dicts. */
#include "collector.h"

#define RECENT 256
#define HIST_BUCKETS 32     /* bucket i: duration < 2**i microseconds */

typedef struct {
    Py_ssize_t collections, collected, uncollectable, candidates;
    double duration, max_duration;
} GenTotals;

typedef struct {
    int generation, reason;
    Py_ssize_t collected, uncollectable, candidates;
    double duration;
} Record;

static GenTotals totals[CG_NUM_GENERATIONS];
static Record recent[RECENT];
static Py_ssize_t recorded;                 /* ever, so recent[recorded % RECENT] is next */
static Py_ssize_t histogram[HIST_BUCKETS];

void
cg_metrics_record(int gen, int reason, const CgResult *r)
{
    GenTotals *t = &totals[gen];
    t->collections++;
    t->collected += r->collected;
    t->uncollectable += r->uncollectable;
    t->candidates += r->candidates;
    t->duration += r->duration;
    if (r->duration > t->max_duration) {
        t->max_duration = r->duration;
    }
    Record *rec = &recent[recorded % RECENT];
    rec->generation = gen;
    rec->reason = reason;
    rec->collected = r->collected;
    rec->uncollectable = r->uncollectable;
    rec->candidates = r->candidates;
    rec->duration = r->duration;
    recorded++;
    int bucket = 0;
    double us = r->duration * 1e6;
    while (bucket < HIST_BUCKETS - 1 && us >= (double)((Py_ssize_t)1 << bucket)) {
        bucket++;
    }
    histogram[bucket]++;
}

/* (totals, recent, histogram): totals is one tuple per generation
 * (collections, collected, uncollectable, candidates, duration, max_duration);
 * recent lists the last collections oldest first as (generation, reason,
 * collected, uncollectable, candidates, duration); histogram[i] counts the
 * collections shorter than 2**i microseconds (and not shorter than 2**(i-1)). */
PyObject *
cg_metrics_snapshot(void)
{
    PyObject *tot = PyTuple_New(CG_NUM_GENERATIONS);
    Py_ssize_t n = recorded < RECENT ? recorded : RECENT;
    PyObject *rec = PyList_New(n);
    PyObject *hist = PyTuple_New(HIST_BUCKETS);
    if (tot == NULL || rec == NULL || hist == NULL) {
        goto error;
    }
    for (int g = 0; g < CG_NUM_GENERATIONS; g++) {
        GenTotals *t = &totals[g];
        PyObject *item = Py_BuildValue("(nnnndd)", t->collections, t->collected,
                                       t->uncollectable, t->candidates,
                                       t->duration, t->max_duration);
        if (item == NULL) {
            goto error;
        }
        PyTuple_SET_ITEM(tot, g, item);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Record *r = &recent[(recorded - n + i) % RECENT];
        PyObject *item = Py_BuildValue("(iinnnd)", r->generation, r->reason, r->collected,
                                       r->uncollectable, r->candidates, r->duration);
        if (item == NULL) {
            goto error;
        }
        PyList_SET_ITEM(rec, i, item);
    }
    for (int i = 0; i < HIST_BUCKETS; i++) {
        PyObject *v = PyLong_FromSsize_t(histogram[i]);
        if (v == NULL) {
            goto error;
        }
        PyTuple_SET_ITEM(hist, i, v);
    }
    return Py_BuildValue("(NNN)", tot, rec, hist);
error:
    Py_XDECREF(tot);
    Py_XDECREF(rec);
    Py_XDECREF(hist);
    return NULL;
}

void
cg_metrics_reset(void)
{
    memset(totals, 0, sizeof(totals));
    memset(recent, 0, sizeof(recent));
    memset(histogram, 0, sizeof(histogram));
    recorded = 0;
}
