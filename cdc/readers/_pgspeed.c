/* C fast path for the hottest loops of capture (see cdc/readers/pgfast.py and pgevents.py).
 *
 * encode_change(buf, in_stream, specs) turns one replication frame carrying a row change straight into
 * the Debezium JSON of its row images and keys; envelope(...) concatenates an event's value. Both have
 * pure-Python twins (pgfast.encode_change_py, pgevents.envelope_py), used where this module is not
 * built; the unit tests check that both give the same bytes, and the same errors (ValueError for
 * malformed frames or values a converter rejects).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>

static inline uint32_t rd32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static PyObject *truncated(void) {
    PyErr_SetString(PyExc_ValueError, "pgoutput: truncated or malformed change message");
    return NULL;
}

/* The header every row-change frame shares: 'w' XLogData, tag I/U/D, [xid], rel oid.
 * Returns 1 and fills *h (h->xid a new reference), 0 when the frame is not a row change, -1 on error. */
typedef struct {
    unsigned char tag;
    unsigned long long wal_start;
    PyObject *xid;
    unsigned long rel;
    const unsigned char *p;   /* at the tuple kind byte */
} head_t;

static int parse_head(const unsigned char *b, Py_ssize_t len, int in_stream, head_t *h) {
    const unsigned char *end = b + len, *p;
    if (len < 26 || b[0] != 'w' || (b[25] != 'I' && b[25] != 'U' && b[25] != 'D')) return 0;
    h->tag = b[25];
    h->wal_start = ((unsigned long long)rd32(b + 1) << 32) | rd32(b + 5);
    p = b + 26;
    if (in_stream) {
        if (end - p < 4) { truncated(); return -1; }
        h->xid = PyLong_FromUnsignedLong(rd32(p));
        if (h->xid == NULL) return -1;
        p += 4;
    } else {
        h->xid = Py_None; Py_INCREF(h->xid);
    }
    if (end - p < 5) { Py_DECREF(h->xid); h->xid = NULL; truncated(); return -1; }
    h->rel = rd32(p);
    h->p = p + 4;
    return 1;
}

/* ------------------------------------------------------------------------------------------------
 * encode_change(buf, in_stream, specs): one XLogData frame carrying an Insert, Update or Delete, with
 * its tuples returned as the JSON objects Debezium writes for them, built from the server's text bytes.
 *
 * specs maps rel_oid -> (labels, codes, convs, included, key_indexes, dumps) where labels[i] is the
 * column's JSON label with its colon (b'"id":'), codes[i] says how the value is encoded (below),
 * convs[i] is pgtypes' converter (str -> value) used by code FALLBACK and whenever a fast path does not
 * apply, included lists the indexes emitted in the row, key_indexes the primary key's, and dumps is
 * orjson.dumps. Returns None for a frame that is not a row change, else
 *   (tag, wal_start, xid, rel_oid, old_kind, old_json, new_json, old_key, new_key, old_key_complete,
 *    longest, status)
 * status 0: encoded; 1: no spec for rel_oid (nothing encoded); 2: an unchanged-TOAST value is in a
 * tuple (nothing encoded: the caller takes the dict path, which can fill it in).
 */
enum { C_NUMBER = 0, C_STRING = 1, C_BOOL = 2, C_DECIMAL = 3, C_TSTZ6 = 4, C_FALLBACK = 5 };

#include "_jsonout.h"

static const char HEX[] = "0123456789abcdef";

static int put_json_string(out_t *o, const unsigned char *s, Py_ssize_t n) {
    /* The same escapes as orjson: \" \\ \b \f \n \r \t, \u00XX for other controls; UTF-8 as is. */
    if (out_put(o, "\"", 1) < 0) return -1;
    Py_ssize_t run = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (out_put(o, (const char *)s + run, i - run) < 0) return -1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        Py_ssize_t len = 2;
        switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            default:
                esc[1] = 'u'; esc[2] = '0'; esc[3] = '0'; esc[4] = HEX[c >> 4]; esc[5] = HEX[c & 15];
                len = 6;
        }
        if (out_put(o, esc, len) < 0) return -1;
        run = i + 1;
    }
    if (out_put(o, (const char *)s + run, n - run) < 0) return -1;
    return out_put(o, "\"", 1);
}

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Java's BigDecimal.toString prints plain digits unless the value is below 1E-6 (or NaN/Infinity):
 * -?(?:[1-9][0-9]*(?:\.[0-9]+)?|0(?:\.(?!0{6})[0-9]+)?) */
static int plain_decimal(const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t i = 0;
    if (i < n && p[i] == '-') i++;
    if (i >= n) return 0;
    if (p[i] == '0') {
        i++;
        if (i == n) return 1;
        if (p[i] != '.') return 0;
        i++;
        if (n - i >= 6 && memcmp(p + i, "000000", 6) == 0) return 0;
    } else {
        if (p[i] < '1' || p[i] > '9') return 0;
        while (i < n && is_digit(p[i])) i++;
        if (i == n) return 1;
        if (p[i] != '.') return 0;
        i++;
    }
    if (i >= n) return 0;
    for (; i < n; i++) if (!is_digit(p[i])) return 0;
    return 1;
}

/* 'YYYY-MM-DD HH:MM:SS[.f{1,6}]+00' (a UTC session) -> "YYYY-MM-DDTHH:MM:SS.ffffffZ"; else 0. */
static int put_tstz6(out_t *o, const unsigned char *p, Py_ssize_t n) {
    if (n < 22 || p[4] != '-' || p[10] != ' ' || p[n - 3] != '+' || p[n - 2] != '0' || p[n - 1] != '0')
        return 0;
    Py_ssize_t frac = 0;
    if (n > 22) {
        if (p[19] != '.') return 0;
        frac = n - 23;
        if (frac < 1 || frac > 6) return 0;
    }
    char b[30];
    memcpy(b, "\"", 1);
    memcpy(b + 1, p, 10);
    b[11] = 'T';
    memcpy(b + 12, p + 11, 8);
    b[20] = '.';
    memcpy(b + 21, "000000", 6);
    if (frac) memcpy(b + 21, p + 20, frac);
    memcpy(b + 27, "Z\"", 2);
    return out_put(o, b, 29) < 0 ? -1 : 1;
}

static int put_fallback(out_t *o, const unsigned char *p, Py_ssize_t n, PyObject *conv, PyObject *dumps) {
    PyObject *text = PyUnicode_DecodeUTF8((const char *)p, n, "strict");
    if (text == NULL) return -1;
    PyObject *value = PyObject_CallOneArg(conv, text);
    Py_DECREF(text);
    if (value == NULL) return -1;
    PyObject *js = PyObject_CallOneArg(dumps, value);
    Py_DECREF(value);
    if (js == NULL) return -1;
    int rc = out_put(o, PyBytes_AS_STRING(js), PyBytes_GET_SIZE(js));
    Py_DECREF(js);
    return rc;
}

typedef struct { const unsigned char *p; Py_ssize_t n; char kind; } raw_t;

/* Scan TupleData into raws[] (pointers into buf); returns the column count, -1 on error. */
static Py_ssize_t scan_tuple(const unsigned char **pp, const unsigned char *end, raw_t *raws, Py_ssize_t max,
                             uint32_t *longest, int *unchanged) {
    const unsigned char *p = *pp;
    if (end - p < 2) { truncated(); return -1; }
    Py_ssize_t n = ((Py_ssize_t)p[0] << 8) | p[1];
    p += 2;
    if (n > max) {
        PyErr_Format(PyExc_ValueError, "pgoutput: tuple has %zd columns, the relation %zd", n, max);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p >= end) { truncated(); return -1; }
        unsigned char k = *p++;
        raws[i].kind = (char)k;
        raws[i].p = NULL;
        raws[i].n = 0;
        if (k == 't' || k == 'b') {
            if (end - p < 4) { truncated(); return -1; }
            uint32_t len = rd32(p);
            p += 4;
            if ((size_t)(end - p) < len) { truncated(); return -1; }
            raws[i].p = p;
            raws[i].n = len;
            if (len > *longest) *longest = len;
            p += len;
        } else if (k == 'u') {
            *unchanged = 1;
        } else if (k != 'n') {
            PyErr_Format(PyExc_ValueError, "pgoutput: unknown tuple column kind 0x%02x", k);
            return -1;
        }
    }
    *pp = p;
    return n;
}

static int put_value(out_t *o, const raw_t *r, long code, PyObject *conv, PyObject *dumps) {
    if (r->kind == 'n') return out_put(o, "null", 4);
    if (r->kind == 'b') return put_fallback(o, r->p, r->n, conv, dumps);
    const unsigned char *p = r->p;
    Py_ssize_t n = r->n;
    int rc;
    switch (code) {
        case C_NUMBER:
            if (n > 0) return out_put(o, (const char *)p, n);
            break;
        case C_STRING:
            return put_json_string(o, p, n);
        case C_BOOL:
            if (n == 1 && p[0] == 't') return out_put(o, "true", 4);
            if (n == 1 && p[0] == 'f') return out_put(o, "false", 5);
            break;
        case C_DECIMAL:
            if (plain_decimal(p, n)) {
                if (out_put(o, "\"", 1) < 0 || out_put(o, (const char *)p, n) < 0) return -1;
                return out_put(o, "\"", 1);
            }
            break;
        case C_TSTZ6:
            rc = put_tstz6(o, p, n);
            if (rc != 0) return rc < 0 ? -1 : 0;
            break;
    }
    return put_fallback(o, p, n, conv, dumps);
}

/* The JSON object of the columns listed in `which` (indexes into raws); NULL with an exception. */
static PyObject *encode_object(const raw_t *raws, Py_ssize_t ncols, PyObject *labels, PyObject *codes,
                               PyObject *convs, PyObject *which, PyObject *dumps, int *complete) {
    out_t o;
    out_init(&o);
    Py_ssize_t m = PyTuple_GET_SIZE(which);
    if (out_put(&o, "{", 1) < 0) goto fail;
    for (Py_ssize_t j = 0; j < m; j++) {
        Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(which, j));
        if (i < 0 || i >= ncols) {
            PyErr_Format(PyExc_ValueError, "pgoutput: tuple has %zd columns, the relation more", ncols);
            goto fail;
        }
        PyObject *label = PyTuple_GET_ITEM(labels, i);
        if ((j && out_put(&o, ",", 1) < 0) || out_put(&o, PyBytes_AS_STRING(label), PyBytes_GET_SIZE(label)) < 0)
            goto fail;
        if (complete != NULL && raws[i].kind == 'n') *complete = 0;
        if (put_value(&o, &raws[i], PyLong_AsLong(PyTuple_GET_ITEM(codes, i)), PyTuple_GET_ITEM(convs, i),
                      dumps) < 0) {
            PyObject *t, *v, *tb;
            PyErr_Fetch(&t, &v, &tb);
            PyErr_Format(PyExc_ValueError, "column %s: cannot encode value: %S", PyBytes_AS_STRING(label),
                         v ? v : Py_None);
            Py_XDECREF(t); Py_XDECREF(v); Py_XDECREF(tb);
            goto fail;
        }
    }
    if (out_put(&o, "}", 1) < 0) goto fail;
    PyObject *res = PyBytes_FromStringAndSize(o.p, o.len);
    out_free(&o);
    return res;
fail:
    out_free(&o);
    return NULL;
}

#define STACK_COLS 64

static PyObject *encode_change(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "encode_change(buf, in_stream, specs: dict)");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) != 0) return NULL;
    int in_stream = PyObject_IsTrue(args[1]);
    const unsigned char *b = view.buf, *end = b + view.len, *p;
    PyObject *result = NULL, *xid = NULL, *old_kind = NULL, *spec = NULL;
    PyObject *old_js = NULL, *new_js = NULL, *old_key = NULL, *new_key = NULL;
    /* Scratch per call, not static (a fallback converter runs Python code, which may let another
     * thread in): on the stack up to 64 columns, on the heap for wider tables. */
    raw_t stack_raw[2 * STACK_COLS], *raws = stack_raw;
    Py_ssize_t nold = -1, nnew = -1, ncols = 0;
    uint32_t longest = 0, longest_old = 0;
    int unchanged = 0, complete = 1, status = 0;
    if (in_stream < 0) goto done;
    head_t h;
    int found = parse_head(b, view.len, in_stream, &h);
    if (found <= 0) {
        if (found == 0) { result = Py_None; Py_INCREF(result); }
        goto done;
    }
    unsigned char tag = h.tag;
    unsigned long long wal_start = h.wal_start;
    unsigned long rel = h.rel;
    xid = h.xid;
    p = h.p;
    PyObject *rel_obj = PyLong_FromUnsignedLong(rel);
    if (rel_obj == NULL) goto done;
    spec = PyDict_GetItemWithError(args[2], rel_obj);   /* borrowed */
    Py_DECREF(rel_obj);
    if (spec == NULL) {
        if (PyErr_Occurred()) goto done;
        status = 1;   /* not ours to encode: the caller decides (unknown or excluded relation) */
        goto build;
    }
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 6) {
        PyErr_SetString(PyExc_TypeError, "encode_change: a spec is (labels, codes, convs, included, keys, dumps)");
        goto done;
    }
    ncols = PyTuple_GET_SIZE(PyTuple_GET_ITEM(spec, 1));
    if (ncols > STACK_COLS && (raws = PyMem_Malloc(sizeof(raw_t) * 2 * ncols)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    raw_t *old_raw = raws, *new_raw = raws + (ncols > STACK_COLS ? ncols : STACK_COLS);
    unsigned char kind = *p++;
    if (tag != 'I' && (kind == 'K' || kind == 'O')) {
        old_kind = PyUnicode_FromStringAndSize((const char *)&kind, 1);
        if ((nold = scan_tuple(&p, end, old_raw, ncols, &longest_old, &unchanged)) < 0) goto done;
        if (tag == 'U') {
            if (p >= end) { truncated(); goto done; }
            kind = *p++;
        }
    } else if (tag == 'D') {
        PyErr_Format(PyExc_ValueError, "pgoutput: Delete expects an old tuple 'K' or 'O', got 0x%02x", kind);
        goto done;
    }
    if (tag != 'D') {
        if (kind != 'N') {
            PyErr_Format(PyExc_ValueError, "pgoutput: %s expects a new tuple 'N', got 0x%02x",
                         tag == 'I' ? "Insert" : "Update", kind);
            goto done;
        }
        if ((nnew = scan_tuple(&p, end, new_raw, ncols, &longest, &unchanged)) < 0) goto done;
    }
    if ((nnew >= 0 && nnew != ncols) || (nold >= 0 && nold != ncols)) {
        PyErr_Format(PyExc_ValueError, "pgoutput: tuple has %zd columns, the relation %zd",
                     nnew >= 0 ? nnew : nold, ncols);
        goto done;
    }
    if (unchanged) {
        status = 2;   /* the dict path fills unchanged TOAST values in */
        goto build;
    }
    {
        PyObject *labels = PyTuple_GET_ITEM(spec, 0), *codes = PyTuple_GET_ITEM(spec, 1);
        PyObject *convs = PyTuple_GET_ITEM(spec, 2), *included = PyTuple_GET_ITEM(spec, 3);
        PyObject *keys = PyTuple_GET_ITEM(spec, 4), *dumps = PyTuple_GET_ITEM(spec, 5);
        int has_key = PyTuple_GET_SIZE(keys) > 0;
        if (nnew >= 0) {
            if ((new_js = encode_object(new_raw, nnew, labels, codes, convs, included, dumps, NULL)) == NULL) goto done;
            if (has_key && (new_key = encode_object(new_raw, nnew, labels, codes, convs, keys, dumps, NULL)) == NULL)
                goto done;
        }
        if (nold >= 0) {
            if ((old_js = encode_object(old_raw, nold, labels, codes, convs, included, dumps, NULL)) == NULL) goto done;
            if (has_key && (old_key = encode_object(old_raw, nold, labels, codes, convs, keys, dumps, &complete)) == NULL)
                goto done;
        }
    }
build:
#define OR_NONE(x) ((x) != NULL ? (x) : Py_None)
    result = Py_BuildValue("(iKOkOOOOOOki)", (int)tag, wal_start, xid, rel, OR_NONE(old_kind), OR_NONE(old_js),
                           OR_NONE(new_js), OR_NONE(old_key), OR_NONE(new_key),
                           (old_key != NULL && complete) ? Py_True : Py_False, (unsigned long)longest, status);
done:
    Py_XDECREF(xid);
    Py_XDECREF(old_kind);
    Py_XDECREF(old_js);
    Py_XDECREF(new_js);
    Py_XDECREF(old_key);
    Py_XDECREF(new_key);
    if (raws != stack_raw) PyMem_Free(raws);
    PyBuffer_Release(&view);
    return result;
}


/* envelope(before, after, head, lsn, mid, names, end) -> the Debezium value bytes:
 *   {"before":B,"after":A,"source":HEAD\"LSN MID NAMES,"lsn":LSN END
 * B and A are JSON bytes or None (null); head/mid/names/end are the transaction's constant pieces
 * (pgevents.assemble builds them); the event's LSN goes in twice (sequence and lsn). */
static PyObject *envelope(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "envelope(before, after, head, lsn, mid, names, end)");
        return NULL;
    }
    PyObject *parts[7] = {args[0], args[1], args[2], NULL, args[4], args[5], args[6]};
    for (int i = 0; i < 7; i++) {
        if (i == 3 || ((i == 0 || i == 1) && parts[i] == Py_None)) continue;
        if (!PyBytes_Check(parts[i])) {
            PyErr_Format(PyExc_TypeError, "envelope: argument %d must be bytes", i + 1);
            return NULL;
        }
    }
    unsigned long long lsn = PyLong_AsUnsignedLongLong(args[3]);
    if (lsn == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    char num[24];
    int nlen = snprintf(num, sizeof num, "%llu", lsn);
    out_t o;
    out_init(&o);
#define PUT(s, n) if (out_put(&o, (s), (n)) < 0) goto fail
#define PUTB(obj) PUT(PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj))
    PUT("{\"before\":", 10);
    if (parts[0] == Py_None) { PUT("null", 4); } else { PUTB(parts[0]); }
    PUT(",\"after\":", 9);
    if (parts[1] == Py_None) { PUT("null", 4); } else { PUTB(parts[1]); }
    PUT(",\"source\":", 10);
    PUTB(parts[2]);
    PUT("\\\"", 2);
    PUT(num, nlen);
    PUTB(parts[4]);
    PUTB(parts[5]);
    PUT(",\"lsn\":", 7);
    PUT(num, nlen);
    PUTB(parts[6]);
#undef PUT
#undef PUTB
    PyObject *res = PyBytes_FromStringAndSize(o.p, o.len);
    out_free(&o);
    return res;
fail:
    out_free(&o);
    return NULL;
}

static PyMethodDef methods[] = {
    {"envelope", (PyCFunction)(void (*)(void))envelope, METH_FASTCALL,
     "envelope(before, after, head, lsn, mid, names, end) -> Debezium value bytes"},
    {"encode_change", (PyCFunction)(void (*)(void))encode_change, METH_FASTCALL,
     "encode_change(buf, in_stream, specs) -> (tag, wal_start, xid, rel_oid, old_kind, old_json, new_json, "
     "old_key, new_key, old_key_complete, longest, status) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pgspeed", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pgspeed(void) { return PyModule_Create(&module); }
