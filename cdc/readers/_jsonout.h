/* A growable output buffer for the C fast paths (_pgspeed.c, _myspeed.c): JSON is written into it, then
 * copied once into an exact-size bytes object. Starts on the stack; grows on the heap by doubling.
 * Every function returns -1 with MemoryError set when memory runs out. */
#ifndef CDC_JSONOUT_H
#define CDC_JSONOUT_H

#include <Python.h>
#include <string.h>

typedef struct { char *p; Py_ssize_t len, cap; char stack[2048]; } out_t;

static void out_init(out_t *o) { o->p = o->stack; o->len = 0; o->cap = sizeof o->stack; }
static void out_free(out_t *o) { if (o->p != o->stack) PyMem_Free(o->p); }

static int out_grow(out_t *o, Py_ssize_t need) {
    Py_ssize_t cap = o->cap;
    while (cap < o->len + need) cap *= 2;
    char *np;
    if (o->p == o->stack) {
        np = PyMem_Malloc(cap);
        if (np != NULL) memcpy(np, o->stack, o->len);
    } else {
        np = PyMem_Realloc(o->p, cap);
    }
    if (np == NULL) { PyErr_NoMemory(); return -1; }
    o->p = np;
    o->cap = cap;
    return 0;
}

/* Room for n more bytes at o->p + o->len. */
static inline int out_reserve(out_t *o, Py_ssize_t n) {
    return o->len + n > o->cap ? out_grow(o, n) : 0;
}

static inline int out_put(out_t *o, const char *s, Py_ssize_t n) {
    if (out_reserve(o, n) < 0) return -1;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    return 0;
}

#endif
