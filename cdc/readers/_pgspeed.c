/* C fast path for the hottest loops of capture (see cdc/readers/pgfast.py and pgevents.py).
 *
 * encode_change(buf, in_stream, specs) turns one replication frame carrying a row change straight into
 * the Debezium JSON of its row images and keys; encode_part(...) also makes the reader's decision for the
 * usual change and returns the parts it buffers; assemble_batch(parts, ctx) turns buffered parts into
 * ChangeEvents, each value an envelope built by concatenation. All have pure-Python twins
 * (pgfast.encode_change_py, pgfast.encode_part_py, pgevents.assemble_batch_py), used where this module is
 * not built; the unit tests check that both give the same bytes, and the same errors (ValueError for
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

/* What encoding one frame found: the fields of encode_change's result, as new references (NULL for None
 * where noted), and the relation's spec (borrowed) when it has one. */
typedef struct {
    int found;              /* 0: not a row change; 1: a row change (the rest is set) */
    unsigned char tag;
    unsigned long long wal_start;
    PyObject *xid;          /* int, or Py_None outside a stream */
    unsigned long rel;
    PyObject *old_kind, *old_js, *new_js, *old_key, *new_key;   /* NULL: None */
    int complete;
    uint32_t longest;
    int status;
    PyObject *spec;         /* borrowed; NULL without a spec */
} enc_t;

static void enc_clear(enc_t *e) {
    Py_CLEAR(e->xid);
    Py_CLEAR(e->old_kind);
    Py_CLEAR(e->old_js);
    Py_CLEAR(e->new_js);
    Py_CLEAR(e->old_key);
    Py_CLEAR(e->new_key);
}

/* Encode one frame into *e; 0 on success (e->found says whether it was a row change), -1 with an
 * exception (e is cleared). `specs` must be a dict. */
static int encode_frame(PyObject *bufobj, int in_stream, PyObject *specs, enc_t *e) {
    memset(e, 0, sizeof *e);
    e->complete = 1;
    Py_buffer view;
    if (PyObject_GetBuffer(bufobj, &view, PyBUF_SIMPLE) != 0) return -1;
    const unsigned char *b = view.buf, *end = b + view.len, *p;
    /* Scratch per call, not static (a fallback converter runs Python code, which may let another
     * thread in): on the stack up to 64 columns, on the heap for wider tables. */
    raw_t stack_raw[2 * STACK_COLS], *raws = stack_raw;
    Py_ssize_t nold = -1, nnew = -1, ncols = 0;
    uint32_t longest_old = 0;
    int unchanged = 0, rc = -1;
    head_t h;
    int found = parse_head(b, view.len, in_stream, &h);
    if (found <= 0) {
        if (found == 0) rc = 0;
        goto done;
    }
    e->found = 1;
    e->tag = h.tag;
    e->wal_start = h.wal_start;
    e->rel = h.rel;
    e->xid = h.xid;
    p = h.p;
    PyObject *rel_obj = PyLong_FromUnsignedLong(h.rel);
    if (rel_obj == NULL) goto done;
    PyObject *spec = PyDict_GetItemWithError(specs, rel_obj);   /* borrowed */
    Py_DECREF(rel_obj);
    if (spec == NULL) {
        if (PyErr_Occurred()) goto done;
        e->status = 1;   /* not ours to encode: the caller decides (unknown or excluded relation) */
        rc = 0;
        goto done;
    }
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 6) {
        PyErr_SetString(PyExc_TypeError, "encode_change: a spec is (labels, codes, convs, included, keys, dumps, ...)");
        goto done;
    }
    e->spec = spec;
    ncols = PyTuple_GET_SIZE(PyTuple_GET_ITEM(spec, 1));
    if (ncols > STACK_COLS && (raws = PyMem_Malloc(sizeof(raw_t) * 2 * ncols)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    raw_t *old_raw = raws, *new_raw = raws + (ncols > STACK_COLS ? ncols : STACK_COLS);
    unsigned char kind = *p++;
    if (h.tag != 'I' && (kind == 'K' || kind == 'O')) {
        e->old_kind = PyUnicode_FromStringAndSize((const char *)&kind, 1);
        if (e->old_kind == NULL) goto done;
        if ((nold = scan_tuple(&p, end, old_raw, ncols, &longest_old, &unchanged)) < 0) goto done;
        if (h.tag == 'U') {
            if (p >= end) { truncated(); goto done; }
            kind = *p++;
        }
    } else if (h.tag == 'D') {
        PyErr_Format(PyExc_ValueError, "pgoutput: Delete expects an old tuple 'K' or 'O', got 0x%02x", kind);
        goto done;
    }
    if (h.tag != 'D') {
        if (kind != 'N') {
            PyErr_Format(PyExc_ValueError, "pgoutput: %s expects a new tuple 'N', got 0x%02x",
                         h.tag == 'I' ? "Insert" : "Update", kind);
            goto done;
        }
        if ((nnew = scan_tuple(&p, end, new_raw, ncols, &e->longest, &unchanged)) < 0) goto done;
    }
    if ((nnew >= 0 && nnew != ncols) || (nold >= 0 && nold != ncols)) {
        PyErr_Format(PyExc_ValueError, "pgoutput: tuple has %zd columns, the relation %zd",
                     nnew >= 0 ? nnew : nold, ncols);
        goto done;
    }
    if (unchanged) {
        e->status = 2;   /* the dict path fills unchanged TOAST values in */
        rc = 0;
        goto done;
    }
    {
        PyObject *labels = PyTuple_GET_ITEM(spec, 0), *codes = PyTuple_GET_ITEM(spec, 1);
        PyObject *convs = PyTuple_GET_ITEM(spec, 2), *included = PyTuple_GET_ITEM(spec, 3);
        PyObject *keys = PyTuple_GET_ITEM(spec, 4), *dumps = PyTuple_GET_ITEM(spec, 5);
        int has_key = PyTuple_GET_SIZE(keys) > 0;
        if (nnew >= 0) {
            if ((e->new_js = encode_object(new_raw, nnew, labels, codes, convs, included, dumps, NULL)) == NULL)
                goto done;
            if (has_key && (e->new_key = encode_object(new_raw, nnew, labels, codes, convs, keys, dumps, NULL)) == NULL)
                goto done;
        }
        if (nold >= 0) {
            if ((e->old_js = encode_object(old_raw, nold, labels, codes, convs, included, dumps, NULL)) == NULL)
                goto done;
            if (has_key && (e->old_key = encode_object(old_raw, nold, labels, codes, convs, keys, dumps,
                                                       &e->complete)) == NULL)
                goto done;
        }
    }
    rc = 0;
done:
    if (rc < 0) enc_clear(e);
    if (raws != stack_raw) PyMem_Free(raws);
    PyBuffer_Release(&view);
    return rc;
}

#define OR_NONE(x) ((x) != NULL ? (x) : Py_None)

static PyObject *encoded_tuple(const enc_t *e) {
    return Py_BuildValue("(iKOkOOOOOOki)", (int)e->tag, e->wal_start, e->xid, e->rel, OR_NONE(e->old_kind),
                         OR_NONE(e->old_js), OR_NONE(e->new_js), OR_NONE(e->old_key), OR_NONE(e->new_key),
                         (e->old_key != NULL && e->complete) ? Py_True : Py_False, (unsigned long)e->longest,
                         e->status);
}

static PyObject *encode_change(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "encode_change(buf, in_stream, specs: dict)");
        return NULL;
    }
    int in_stream = PyObject_IsTrue(args[1]);
    enc_t e;
    if (in_stream < 0 || encode_frame(args[0], in_stream, args[2], &e) < 0) return NULL;
    PyObject *result = e.found ? encoded_tuple(&e) : Py_NewRef(Py_None);
    enc_clear(&e);
    return result;
}

/* ------------------------------------------------------------------------------------------------
 * encode_part(buf, in_stream, specs, tx_xid, chunk_rel): encode_change, and for the usual row change
 * also the reader's decision: the change's parts tuple
 *   (xid, op, topic, schema, table, key, before, after, lsn)
 * ready for the transaction's buffer. The spec's 7th item is the relation's route
 * (topic, schema, table, remember_from, skipped_ops). Where the reader must look closer it returns
 * encode_change's tuple instead: nothing encoded (status 1 or 2), the relation of an open incremental
 * snapshot chunk (rel == chunk_rel), a skipped operation, a value long enough to remember for unchanged
 * TOAST (longest >= remember_from, with a new image), or a primary-key change (an update whose complete
 * old key differs from the new one). None for a frame that is not a row change. */
static PyObject *op_c, *op_u, *op_d;

static PyObject *encode_part(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "encode_part(buf, in_stream, specs: dict, tx_xid, chunk_rel)");
        return NULL;
    }
    int in_stream = PyObject_IsTrue(args[1]);
    long long chunk_rel = PyLong_AsLongLong(args[4]);
    if (chunk_rel == -1 && PyErr_Occurred()) return NULL;
    enc_t e;
    if (in_stream < 0 || encode_frame(args[0], in_stream, args[2], &e) < 0) return NULL;
    if (!e.found) return Py_NewRef(Py_None);
    PyObject *result = NULL, *route = NULL;
    if (e.status == 0 && PyTuple_GET_SIZE(e.spec) >= 7 && (long long)e.rel != chunk_rel) {
        route = PyTuple_GET_ITEM(e.spec, 6);
        if (!PyTuple_Check(route) || PyTuple_GET_SIZE(route) != 5 || !PyUnicode_Check(PyTuple_GET_ITEM(route, 4))) {
            PyErr_SetString(PyExc_TypeError, "encode_part: a route is (topic, schema, table, remember_from, skipped)");
            goto done;
        }
        PyObject *op = e.tag == 'I' ? op_c : e.tag == 'U' ? op_u : op_d;
        long long remember_from = PyLong_AsLongLong(PyTuple_GET_ITEM(route, 3));
        if (remember_from == -1 && PyErr_Occurred()) goto done;
        int skipped = PyUnicode_Contains(PyTuple_GET_ITEM(route, 4), op);
        if (skipped < 0) goto done;
        int pk_change = 0;
        if (e.tag == 'U' && e.old_key != NULL && e.complete) {
            /* e.new_key is set whenever e.old_key is (both follow has_key) */
            pk_change = e.new_key == NULL || PyBytes_GET_SIZE(e.old_key) != PyBytes_GET_SIZE(e.new_key) ||
                        memcmp(PyBytes_AS_STRING(e.old_key), PyBytes_AS_STRING(e.new_key),
                               PyBytes_GET_SIZE(e.old_key)) != 0;
        }
        int remember = e.new_js != NULL && (long long)e.longest >= remember_from;
        if (!skipped && !pk_change && !remember) {
            PyObject *xid = e.xid != Py_None ? e.xid : args[3];
            PyObject *key = e.tag == 'D' ? e.old_key : e.new_key;
            result = PyTuple_Pack(9, xid, op, PyTuple_GET_ITEM(route, 0), PyTuple_GET_ITEM(route, 1),
                                  PyTuple_GET_ITEM(route, 2), OR_NONE(key), OR_NONE(e.old_js), OR_NONE(e.new_js),
                                  Py_None);
            if (result != NULL) {
                PyObject *lsn = PyLong_FromUnsignedLongLong(e.wal_start);
                if (lsn == NULL) { Py_CLEAR(result); goto done; }
                Py_DECREF(Py_None);
                PyTuple_SET_ITEM(result, 8, lsn);
            }
            goto done;
        }
    }
    result = encoded_tuple(&e);
done:
    enc_clear(&e);
    return result;
}

/* The Debezium value bytes of one change:
 *   {"before":B,"after":A,"source":HEAD\"LSN MID NAMES,"lsn":LSN END
 * B and A are JSON bytes or NULL (null); head/mid/names/end are the transaction's constant pieces
 * (pgevents.assemble builds them), all bytes; the event's LSN goes in twice (sequence and lsn). */
static PyObject *build_envelope(PyObject *before, PyObject *after, PyObject *head, unsigned long long lsn,
                                PyObject *mid, PyObject *names, PyObject *end) {
    char num[24];
    int nlen = snprintf(num, sizeof num, "%llu", lsn);
    out_t o;
    out_init(&o);
#define PUT(s, n) if (out_put(&o, (s), (n)) < 0) goto fail
#define PUTB(obj) PUT(PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj))
    PUT("{\"before\":", 10);
    if (before == NULL) { PUT("null", 4); } else { PUTB(before); }
    PUT(",\"after\":", 9);
    if (after == NULL) { PUT("null", 4); } else { PUTB(after); }
    PUT(",\"source\":", 10);
    PUTB(head);
    PUT("\\\"", 2);
    PUT(num, nlen);
    PUTB(mid);
    PUTB(names);
    PUT(",\"lsn\":", 7);
    PUT(num, nlen);
    PUTB(end);
#undef PUT
#undef PUTB
    PyObject *res = PyBytes_FromStringAndSize(o.p, o.len);
    out_free(&o);
    return res;
fail:
    out_free(&o);
    return NULL;
}

/* ------------------------------------------------------------------------------------------------
 * assemble_batch(parts, ctx) -> list of ChangeEvent: pgevents.assemble's loop for a list of parts
 *   (xid, op, topic, schema, table, key, before, after, lsn)
 * with rows as JSON bytes (the encoder's) or as dicts (serialised here with dumps), and
 *   ctx = (head, mid, ends, names, names_of, dumps, tombstones, event, counts)
 * ends: op -> the envelope's end; names: (schema, table) -> NAMES, filled through names_of(schema,
 * table) on a miss; event: (ChangeEvent, its topic, key and value member descriptors), through which
 * each event is made without running Python code. A delete is followed by a tombstone (value None) when
 * tombstones is true and it has a key. counts, a dict or None, gets 1 added under (topic, op) for each
 * event but tombstones. */

static int count_event(PyObject *counts, PyObject *topic, PyObject *op) {
    PyObject *key = PyTuple_Pack(2, topic, op);
    if (key == NULL) return -1;
    PyObject *n = PyDict_GetItemWithError(counts, key);   /* borrowed */
    PyObject *next = NULL;
    if (n != NULL) {
        Py_ssize_t v = PyLong_AsSsize_t(n);
        if (!(v == -1 && PyErr_Occurred())) next = PyLong_FromSsize_t(v + 1);
    } else if (!PyErr_Occurred()) {
        next = PyLong_FromLong(1);
    }
    int rc = next == NULL ? -1 : PyDict_SetItem(counts, key, next);
    Py_XDECREF(next);
    Py_DECREF(key);
    return rc;
}

/* A row as JSON bytes (new reference), NULL for None; -1 on error. A dict is serialised with dumps; a key
 * (exact = 1) is copied to an exact-size object, since orjson's result keeps a ~4 KiB buffer. */
static int row_json(PyObject *row, PyObject *dumps, int exact, PyObject **out) {
    *out = NULL;
    if (row == Py_None) return 0;
    if (PyBytes_Check(row)) { *out = Py_NewRef(row); return 0; }
    if (!PyDict_Check(row)) {
        PyErr_SetString(PyExc_TypeError, "assemble_batch: a row is bytes, a dict or None");
        return -1;
    }
    PyObject *js = PyObject_CallOneArg(dumps, row);
    if (js == NULL) return -1;
    if (exact) {
        *out = PyBytes_FromStringAndSize(PyBytes_AS_STRING(js), PyBytes_GET_SIZE(js));
        Py_DECREF(js);
        return *out == NULL ? -1 : 0;
    }
    *out = js;
    return 0;
}

static PyObject *make_event(PyObject *event, PyObject *topic, PyObject *key, PyObject *value) {
    PyTypeObject *type = (PyTypeObject *)PyTuple_GET_ITEM(event, 0);
    PyObject *obj = type->tp_alloc(type, 0);
    if (obj == NULL) return NULL;
    PyObject *vals[3] = {topic, key != NULL ? key : Py_None, value != NULL ? value : Py_None};
    for (int i = 0; i < 3; i++) {
        PyObject *descr = PyTuple_GET_ITEM(event, i + 1);
        if (Py_TYPE(descr)->tp_descr_set(descr, obj, vals[i]) < 0) { Py_DECREF(obj); return NULL; }
    }
    return obj;
}

static PyObject *assemble_batch(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyList_Check(args[0]) || !PyTuple_Check(args[1]) || PyTuple_GET_SIZE(args[1]) != 9) {
        PyErr_SetString(PyExc_TypeError, "assemble_batch(parts: list, ctx: tuple of 9)");
        return NULL;
    }
    PyObject *ctx = args[1];
    PyObject *head = PyTuple_GET_ITEM(ctx, 0), *mid = PyTuple_GET_ITEM(ctx, 1), *ends = PyTuple_GET_ITEM(ctx, 2);
    PyObject *names = PyTuple_GET_ITEM(ctx, 3), *names_of = PyTuple_GET_ITEM(ctx, 4);
    PyObject *dumps = PyTuple_GET_ITEM(ctx, 5), *event = PyTuple_GET_ITEM(ctx, 7), *counts = PyTuple_GET_ITEM(ctx, 8);
    int tombstones = PyObject_IsTrue(PyTuple_GET_ITEM(ctx, 6));
    if (tombstones < 0) return NULL;
    if (!PyBytes_Check(head) || !PyBytes_Check(mid) || !PyDict_Check(ends) || !PyDict_Check(names) ||
        !PyTuple_Check(event) || PyTuple_GET_SIZE(event) != 4 || !PyType_Check(PyTuple_GET_ITEM(event, 0)) ||
        (counts != Py_None && !PyDict_Check(counts))) {
        PyErr_SetString(PyExc_TypeError, "assemble_batch: ctx is (head, mid, ends, names, names_of, dumps, "
                                         "tombstones, (type, topic, key, value descriptors), counts)");
        return NULL;
    }
    for (int i = 1; i < 4; i++) {
        if (Py_TYPE(PyTuple_GET_ITEM(event, i))->tp_descr_set == NULL) {
            PyErr_SetString(PyExc_TypeError, "assemble_batch: the event fields must be settable descriptors");
            return NULL;
        }
    }
    PyObject *parts = args[0];
    Py_ssize_t n = PyList_GET_SIZE(parts);
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    PyObject *last_schema = NULL, *last_table = NULL, *last_names = NULL;   /* borrowed, from `names` */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *part = PyList_GET_ITEM(parts, i);
        if (!PyTuple_Check(part) || PyTuple_GET_SIZE(part) != 9) {
            PyErr_SetString(PyExc_TypeError, "assemble_batch: a part is a tuple of 9");
            goto fail;
        }
        PyObject *op = PyTuple_GET_ITEM(part, 1), *topic = PyTuple_GET_ITEM(part, 2);
        PyObject *schema = PyTuple_GET_ITEM(part, 3), *table = PyTuple_GET_ITEM(part, 4);
        unsigned long long lsn = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(part, 8));
        if (lsn == (unsigned long long)-1 && PyErr_Occurred()) goto fail;
        PyObject *end = PyDict_GetItemWithError(ends, op);   /* borrowed */
        if (end == NULL) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "assemble_batch: unknown op %R", op);
            goto fail;
        }
        if (schema != last_schema || table != last_table) {
            PyObject *st = PyTuple_Pack(2, schema, table);
            if (st == NULL) goto fail;
            PyObject *nm = PyDict_GetItemWithError(names, st);   /* borrowed */
            if (nm == NULL && !PyErr_Occurred()) {
                nm = PyObject_CallFunctionObjArgs(names_of, schema, table, NULL);
                if (nm != NULL) {
                    int rc = PyBytes_Check(nm) ? PyDict_SetItem(names, st, nm) : -1;
                    if (rc < 0 && !PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "names_of must return bytes");
                    Py_DECREF(nm);   /* `names` holds it */
                    nm = rc < 0 ? NULL : PyDict_GetItemWithError(names, st);
                }
            }
            Py_DECREF(st);
            if (nm == NULL) goto fail;
            last_schema = schema, last_table = table, last_names = nm;
        }
        PyObject *key, *before, *after;
        if (row_json(PyTuple_GET_ITEM(part, 5), dumps, 1, &key) < 0) goto fail;
        if (row_json(PyTuple_GET_ITEM(part, 6), dumps, 0, &before) < 0) { Py_XDECREF(key); goto fail; }
        if (row_json(PyTuple_GET_ITEM(part, 7), dumps, 0, &after) < 0) {
            Py_XDECREF(key); Py_XDECREF(before); goto fail;
        }
        PyObject *value = build_envelope(before, after, head, lsn, mid, last_names, end);
        Py_XDECREF(before);
        Py_XDECREF(after);
        PyObject *ev = value == NULL ? NULL : make_event(event, topic, key, value);
        Py_XDECREF(value);
        int rc = ev == NULL ? -1 : PyList_Append(out, ev);
        Py_XDECREF(ev);
        if (rc == 0 && counts != Py_None) rc = count_event(counts, topic, op);
        if (rc == 0 && tombstones && key != NULL && PyUnicode_Check(op) && PyUnicode_GET_LENGTH(op) == 1 &&
            PyUnicode_READ_CHAR(op, 0) == 'd') {
            PyObject *tomb = make_event(event, topic, key, NULL);
            rc = tomb == NULL ? -1 : PyList_Append(out, tomb);
            Py_XDECREF(tomb);
        }
        Py_XDECREF(key);
        if (rc < 0) goto fail;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"assemble_batch", (PyCFunction)(void (*)(void))assemble_batch, METH_FASTCALL,
     "assemble_batch(parts, ctx) -> list of ChangeEvent (pgevents.assemble's loop)"},
    {"encode_part", (PyCFunction)(void (*)(void))encode_part, METH_FASTCALL,
     "encode_part(buf, in_stream, specs, tx_xid, chunk_rel) -> parts tuple | encode_change's tuple | None"},
    {"encode_change", (PyCFunction)(void (*)(void))encode_change, METH_FASTCALL,
     "encode_change(buf, in_stream, specs) -> (tag, wal_start, xid, rel_oid, old_kind, old_json, new_json, "
     "old_key, new_key, old_key_complete, longest, status) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pgspeed", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pgspeed(void) {
    op_c = PyUnicode_InternFromString("c");
    op_u = PyUnicode_InternFromString("u");
    op_d = PyUnicode_InternFromString("d");
    if (op_c == NULL || op_u == NULL || op_d == NULL) return NULL;
    return PyModule_Create(&module);
}
