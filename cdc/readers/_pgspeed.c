/* C fast path for the hottest loop of capture: decoding pgoutput row changes.
 *
 * decode_change(buf, in_stream, unchanged) takes one CopyData message of the replication stream. If it
 * is an XLogData frame carrying an Insert, Update or Delete, it returns
 *   (tag, wal_start, xid | None, rel_oid, old_kind | None, old_tuple | None, new_tuple | None, longest)
 * where `longest` is the byte length of the new tuple's longest value, with tuple values as str (text), bytes (binary), None (NULL) or `unchanged` (unchanged TOAST);
 * otherwise None, and the caller uses the pure-Python decoder. Malformed input raises ValueError.
 * Behaviour is identical to cdc/readers/pgoutput.py, which the unit tests check on the same bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static inline uint32_t rd32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static PyObject *truncated(void) {
    PyErr_SetString(PyExc_ValueError, "pgoutput: truncated or malformed change message");
    return NULL;
}

static PyObject *read_tuple(const unsigned char **pp, const unsigned char *end, PyObject *unchanged,
                            uint32_t *longest) {
    const unsigned char *p = *pp;
    if (end - p < 2) return truncated();
    Py_ssize_t n = ((Py_ssize_t)p[0] << 8) | p[1];
    p += 2;
    PyObject *t = PyTuple_New(n);
    if (t == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p >= end) { Py_DECREF(t); return truncated(); }
        unsigned char k = *p++;
        PyObject *v;
        if (k == 'n') {
            v = Py_None; Py_INCREF(v);
        } else if (k == 'u') {
            v = unchanged; Py_INCREF(v);
        } else if (k == 't' || k == 'b') {
            if (end - p < 4) { Py_DECREF(t); return truncated(); }
            uint32_t len = rd32(p);
            p += 4;
            if ((size_t)(end - p) < len) { Py_DECREF(t); return truncated(); }
            if (len > *longest) *longest = len;
            v = k == 't' ? PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)len, "strict")
                         : PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)len);
            if (v == NULL) {
                Py_DECREF(t);
                if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    PyErr_Clear();
                    PyErr_SetString(PyExc_ValueError, "pgoutput: text value is not valid UTF-8");
                }
                return NULL;
            }
            p += len;
        } else {
            Py_DECREF(t);
            PyErr_Format(PyExc_ValueError, "pgoutput: unknown tuple column kind 0x%02x", k);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    *pp = p;
    return t;
}

static PyObject *decode_change(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "decode_change(buf, in_stream, unchanged)");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) != 0) return NULL;
    int in_stream = PyObject_IsTrue(args[1]);
    PyObject *unchanged = args[2];
    const unsigned char *b = view.buf, *end = b + view.len, *p;
    PyObject *result = NULL, *old = NULL, *new_ = NULL, *xid = NULL, *old_kind = NULL;
    uint32_t longest_old = 0, longest = 0;
    if (in_stream < 0) goto done;
    if (view.len < 26 || b[0] != 'w' || (b[25] != 'I' && b[25] != 'U' && b[25] != 'D')) {
        result = Py_None; Py_INCREF(result);
        goto done;
    }
    unsigned char tag = b[25];
    unsigned long long wal_start = ((unsigned long long)rd32(b + 1) << 32) | rd32(b + 5);
    p = b + 26;
    if (in_stream) {
        if (end - p < 4) { truncated(); goto done; }
        xid = PyLong_FromUnsignedLong(rd32(p));
        p += 4;
    } else {
        xid = Py_None; Py_INCREF(xid);
    }
    if (end - p < 5) { truncated(); goto done; }
    unsigned long rel = rd32(p);
    p += 4;
    unsigned char kind = *p++;
    if (tag == 'U' && (kind == 'K' || kind == 'O')) {
        old_kind = PyUnicode_FromStringAndSize((const char *)&kind, 1);
        if ((old = read_tuple(&p, end, unchanged, &longest_old)) == NULL) goto done;
        if (p >= end) { truncated(); goto done; }
        kind = *p++;
    }
    if (tag == 'D') {
        if (kind != 'K' && kind != 'O') {
            PyErr_Format(PyExc_ValueError, "pgoutput: Delete expects an old tuple 'K' or 'O', got 0x%02x", kind);
            goto done;
        }
        old_kind = PyUnicode_FromStringAndSize((const char *)&kind, 1);
        if ((old = read_tuple(&p, end, unchanged, &longest_old)) == NULL) goto done;
    } else {
        if (kind != 'N') {
            PyErr_Format(PyExc_ValueError, "pgoutput: %s expects a new tuple 'N', got 0x%02x",
                         tag == 'I' ? "Insert" : "Update", kind);
            goto done;
        }
        if ((new_ = read_tuple(&p, end, unchanged, &longest)) == NULL) goto done;
    }
    if (old == NULL) { old = Py_None; Py_INCREF(old); }
    if (new_ == NULL) { new_ = Py_None; Py_INCREF(new_); }
    if (old_kind == NULL) { old_kind = Py_None; Py_INCREF(old_kind); }
    result = Py_BuildValue("(iKOkOOOk)", (int)tag, wal_start, xid, rel, old_kind, old, new_,
                           (unsigned long)longest);
done:
    Py_XDECREF(old);
    Py_XDECREF(new_);
    Py_XDECREF(xid);
    Py_XDECREF(old_kind);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"decode_change", (PyCFunction)(void (*)(void))decode_change, METH_FASTCALL,
     "decode_change(buf, in_stream, unchanged) -> (tag, wal_start, xid, rel_oid, old_kind, old, new, longest) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pgspeed", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pgspeed(void) { return PyModule_Create(&module); }
