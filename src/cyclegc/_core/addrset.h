/* addrset.h -- a set of object addresses kept outside the objects.
 *
 * A sparse bitmap over 1 MiB chunks of the address space, one bit per 16
 * bytes (GC objects are at least 32 bytes apart): 8 KiB of scratch per MiB
 * of heap that holds a member.  Used where the collector must remember a
 * fact about an object without writing to it (readonly.c) or across the
 * program's own execution (incremental.c: a mark bit that survives the
 * interpreter relinking the object's GC header).  Single-threaded: callers
 * hold the GIL.  Out of memory is reported (NULL word), never fatal.
 */
#ifndef CYCLEGC_ADDRSET_H
#define CYCLEGC_ADDRSET_H

#include <stdint.h>
#include <string.h>
#include "Python.h"


#define CHUNK_SHIFT 20                      /* 1 MiB of address space */
#define SLOT_SHIFT 4                        /* objects are >= 32 bytes apart */
#define WORDS_PER_CHUNK ((1u << (CHUNK_SHIFT - SLOT_SHIFT)) / 64)

typedef struct {
    uintptr_t key;          /* address >> CHUNK_SHIFT; 0 = empty slot */
    uint64_t *bits;
    uint32_t epoch;         /* bits are valid only if == the set's epoch */
} Chunk;

typedef struct {
    Chunk *slots;
    size_t mask;            /* slots - 1 (a power of two) */
    size_t used;
    Chunk *last;            /* the chunk hit last: heaps have locality */
    size_t bytes;           /* scratch memory held */
    uint32_t epoch;         /* addrset_clear() moves it on */
} AddrSet;

static inline size_t
hash_word(uintptr_t x)
{
    x ^= x >> 29;
    x *= (uintptr_t)0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    return (size_t)x;
}

static inline Chunk *
chunk_find(AddrSet *s, uintptr_t key)
{
    for (size_t i = hash_word(key) & s->mask;; i = (i + 1) & s->mask) {
        if (s->slots[i].key == key || s->slots[i].key == 0) {
            return &s->slots[i];
        }
    }
}

static inline int
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
static inline uint64_t *
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
            c->epoch = s->epoch;
            s->used++;
            s->bytes += WORDS_PER_CHUNK * sizeof(uint64_t);
        }
        s->last = c;
    }
    if (c->epoch != s->epoch) {
        /* a chunk from before the last addrset_clear(): empty until reused */
        if (!create) {
            return NULL;
        }
        memset(c->bits, 0, WORDS_PER_CHUNK * sizeof(uint64_t));
        c->epoch = s->epoch;
    }
    return &c->bits[slot / 64];
}

static inline uint64_t
addr_bit(const void *p)
{
    return (uint64_t)1 << ((((uintptr_t)p) >> SLOT_SHIFT) % 64);
}

static inline void
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

/* Empties the set in O(1), keeping its memory: each chunk is zeroed when
 * it is next written (8 KiB at a time), instead of the whole bitmap being
 * freed or cleared in one go (1.3-1.6 ms for a 9M-object heap). */
static inline void
addrset_clear(AddrSet *s)
{
    s->epoch++;
    s->last = NULL;
}

/* Is `p` in the set? */
static inline int
addrset_has(AddrSet *s, const void *p)
{
    uint64_t *w = addrset_word(s, p, 0);
    return w != NULL && (*w & addr_bit(p)) != 0;
}

/* Adds `p`; -1 if out of memory (the set is unchanged). */
static inline int
addrset_add(AddrSet *s, const void *p)
{
    uint64_t *w = addrset_word(s, p, 1);
    if (w == NULL) {
        return -1;
    }
    *w |= addr_bit(p);
    return 0;
}

#endif /* CYCLEGC_ADDRSET_H */
