/* C fast paths of the mapper (see mappers/envelope.py and mappers/cloudevents.py).
 *
 * match(value, template) -> (cut, number, op) | None tells whether the change event `value` ends with
 * the template's text joined by a number as wide (digits, no leading zero): `cut` is where that text's
 * ,"source":{ starts, `number` the number, `op` the op letter. The template tuple is
 * (size, at, end, zero, op_at, ops): the text's length from ,"source":{ on, where the number starts and
 * ends in it, the first digit not allowed (-1: none), where the op letter is (from the end), and by op
 * letter (its byte value) None or (op, parts) -- the text cut at the number's places. Done in Python,
 * the comparison cost what skipping the source block saved; here it is a few memcmp calls.
 *
 * typed_write(state, slow, source, op, subject, subject_json, data_json) -> (id, time, raw) is the call
 * `EventWriter.typed` returns (functools.partial binds its state list and its pure-Python `write`). It
 * writes the usual event -- a PostgreSQL change (an integer `lsn` in the Debezium source block) at the
 * commit time the state was last set for -- and hands every other call to `slow`, which also sets the
 * state: [prefix, type_tail, ts_us, time, mid, time_part] -- the connector's part of the id's input
 * ("<connector>\x1f", bytes), "\x1f<type>\x1f<fingerprint>" (bytes), the commit time it is set for
 * (None before the first event), its RFC 3339 text (str), the CloudEvent between the id and the subject
 * and between the subject and the data (bytes; empty: not set yet). The id is BLAKE2b-128 (RFC 7693)
 * of the id's parts as hex, computed here as hashlib.blake2b(digest_size=16) does.
 *
 * Failure story: a template or state of another shape raises TypeError or ValueError, or goes to `slow`
 * (a bug either way); a value that does not match gives None, and the caller parses it in full; an
 * input typed_write does not know (another type, a surrogate in the subject) goes to `slow`, so errors
 * are the pure-Python ones. The unit tests check both paths give the same events.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "_jsonout.h"

static const char SOURCE[] = ",\"source\":{";
#define SOURCE_LEN ((Py_ssize_t)sizeof SOURCE - 1)

static int get_size(PyObject *t, Py_ssize_t i, Py_ssize_t *out) {
    *out = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, i));
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *match(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyTuple_Check(args[1]) || PyTuple_GET_SIZE(args[1]) != 6) {
        PyErr_SetString(PyExc_TypeError, "match(value: bytes, template: tuple of 6)");
        return NULL;
    }
    PyObject *t = args[1];
    Py_ssize_t size, at, end, zero, op_at;
    if (get_size(t, 0, &size) < 0 || get_size(t, 1, &at) < 0 || get_size(t, 2, &end) < 0 ||
        get_size(t, 3, &zero) < 0 || get_size(t, 4, &op_at) < 0)
        return NULL;
    PyObject *ops = PyTuple_GET_ITEM(t, 5);
    if (!PyTuple_Check(ops) || PyTuple_GET_SIZE(ops) != 256 || size < SOURCE_LEN || at < SOURCE_LEN || end <= at ||
        end > size || end - at > 19 || op_at >= 0 || -op_at > size) {
        PyErr_SetString(PyExc_ValueError, "match: not a template");
        return NULL;
    }
    const char *v = PyBytes_AS_STRING(args[0]);
    Py_ssize_t len = PyBytes_GET_SIZE(args[0]), cut = len - size;
    if (cut <= 0) Py_RETURN_NONE;
    const char *rest = v + cut;
    PyObject *op = PyTuple_GET_ITEM(ops, (unsigned char)v[len + op_at]);
    if (op == Py_None) Py_RETURN_NONE;
    if (!PyTuple_Check(op) || PyTuple_GET_SIZE(op) != 2 || !PyTuple_Check(PyTuple_GET_ITEM(op, 1))) {
        PyErr_SetString(PyExc_ValueError, "match: not a template");
        return NULL;
    }
    const char *n = rest + at;
    Py_ssize_t width = end - at;
    if ((unsigned char)n[0] == zero) Py_RETURN_NONE;
    unsigned long long number = 0;
    for (Py_ssize_t i = 0; i < width; i++) {
        if (n[i] < '0' || n[i] > '9') Py_RETURN_NONE;
        number = number * 10 + (unsigned long long)(n[i] - '0');
    }
    /* the rest equals the parts joined by the number */
    PyObject *parts = PyTuple_GET_ITEM(op, 1);
    Py_ssize_t count = PyTuple_GET_SIZE(parts), pos = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *part = PyTuple_GET_ITEM(parts, i);
        if (!PyBytes_Check(part)) {
            PyErr_SetString(PyExc_ValueError, "match: not a template");
            return NULL;
        }
        Py_ssize_t plen = PyBytes_GET_SIZE(part);
        if (pos + plen > size || memcmp(rest + pos, PyBytes_AS_STRING(part), (size_t)plen) != 0) Py_RETURN_NONE;
        pos += plen;
        if (i + 1 < count) {
            if (pos + width > size || memcmp(rest + pos, n, (size_t)width) != 0) Py_RETURN_NONE;
            pos += width;
        }
    }
    if (pos != size) Py_RETURN_NONE;
    PyObject *num = PyLong_FromUnsignedLongLong(number);
    if (num == NULL) return NULL;
    PyObject *cut_obj = PyLong_FromSsize_t(cut);
    if (cut_obj == NULL) {
        Py_DECREF(num);
        return NULL;
    }
    PyObject *letter = PyTuple_GET_ITEM(op, 0);
    Py_INCREF(letter);
    PyObject *out = PyTuple_New(3);
    if (out == NULL) {
        Py_DECREF(num);
        Py_DECREF(cut_obj);
        Py_DECREF(letter);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 0, cut_obj);
    PyTuple_SET_ITEM(out, 1, num);
    PyTuple_SET_ITEM(out, 2, letter);
    return out;
}

/* ---- BLAKE2b-128 ---- */

static const uint64_t IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

static const uint8_t SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

static inline uint64_t rotr64(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

static inline uint64_t load64(const unsigned char *p) {  /* little-endian, whatever the machine */
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

#define G(a, b, c, d, x, y)                 \
    do {                                    \
        v[a] = v[a] + v[b] + (x);           \
        v[d] = rotr64(v[d] ^ v[a], 32);     \
        v[c] = v[c] + v[d];                 \
        v[b] = rotr64(v[b] ^ v[c], 24);     \
        v[a] = v[a] + v[b] + (y);           \
        v[d] = rotr64(v[d] ^ v[a], 16);     \
        v[c] = v[c] + v[d];                 \
        v[b] = rotr64(v[b] ^ v[c], 63);     \
    } while (0)

static void compress(uint64_t h[8], const unsigned char block[128], uint64_t t, int last) {
    uint64_t m[16], v[16];
    for (int i = 0; i < 16; i++) m[i] = load64(block + 8 * i);
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = IV[i];
    }
    v[12] ^= t;  /* the counter's high word stays 0: no input here comes near 2**64 bytes */
    if (last) v[14] = ~v[14];
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = SIGMA[r];
        G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/* The 16-byte unkeyed BLAKE2b digest of data[0:n], as 32 lower-case hex digits. */
static void blake2b_128_hex(const unsigned char *data, Py_ssize_t n, char hex[32]) {
    uint64_t h[8];
    unsigned char block[128];
    memcpy(h, IV, sizeof h);
    h[0] ^= 0x01010000ULL ^ 16;  /* depth 1, fanout 1, no key, digest length 16 */
    uint64_t t = 0;
    while (n > 128) {
        t += 128;
        compress(h, data, t, 0);
        data += 128;
        n -= 128;
    }
    memset(block, 0, sizeof block);
    memcpy(block, data, (size_t)n);
    compress(h, block, t + (uint64_t)n, 1);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        unsigned char byte = (unsigned char)(h[i / 8] >> (8 * (i % 8)));
        hex[2 * i] = digits[byte >> 4];
        hex[2 * i + 1] = digits[byte & 15];
    }
}

/* ---- the usual CloudEvent ---- */

static PyObject *s_ts_us, *s_lsn;
static const char SPEC[] = "{\"specversion\":\"1.0\",\"id\":\"";

static PyObject *call_slow(PyObject *const *args) { return PyObject_Vectorcall(args[1], args + 2, 5, NULL); }

static PyObject *typed_write(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "typed_write(state, slow, source, op, subject, subject_json, data_json)");
        return NULL;
    }
    PyObject *state = args[0], *source = args[2], *op = args[3], *subject = args[4];
    PyObject *subject_json = args[5], *data_json = args[6];
    if (!PyList_CheckExact(state) || PyList_GET_SIZE(state) != 6 || !PyDict_CheckExact(source) ||
        !PyUnicode_CheckExact(op) || !PyUnicode_CheckExact(subject) || !PyBytes_CheckExact(subject_json) ||
        !PyBytes_CheckExact(data_json))
        return call_slow(args);
    PyObject *prefix = PyList_GET_ITEM(state, 0), *type_tail = PyList_GET_ITEM(state, 1);
    PyObject *state_ts = PyList_GET_ITEM(state, 2), *time = PyList_GET_ITEM(state, 3);
    PyObject *mid = PyList_GET_ITEM(state, 4), *time_part = PyList_GET_ITEM(state, 5);
    if (!PyBytes_CheckExact(prefix) || !PyBytes_CheckExact(type_tail) || !PyLong_CheckExact(state_ts) ||
        !PyUnicode_CheckExact(time) || !PyBytes_CheckExact(mid) || !PyBytes_CheckExact(time_part) ||
        PyBytes_GET_SIZE(mid) == 0 || PyBytes_GET_SIZE(time_part) == 0)
        return call_slow(args);
    PyObject *ts = PyDict_GetItemWithError(source, s_ts_us);  /* borrowed */
    if (ts == NULL) return PyErr_Occurred() ? NULL : call_slow(args);
    if (!PyLong_CheckExact(ts)) return call_slow(args);
    int same = PyObject_RichCompareBool(ts, state_ts, Py_EQ);
    if (same < 0) return NULL;
    if (!same) return call_slow(args);
    PyObject *lsn = PyDict_GetItemWithError(source, s_lsn);
    if (lsn == NULL) return PyErr_Occurred() ? NULL : call_slow(args);
    if (!PyLong_CheckExact(lsn)) return call_slow(args);
    int overflow = 0;
    long long position = PyLong_AsLongLongAndOverflow(lsn, &overflow);
    if (position == -1 && PyErr_Occurred()) return NULL;
    if (overflow || position < 0) return call_slow(args);
    Py_ssize_t op_len, subject_len;
    const char *op_s = PyUnicode_AsUTF8AndSize(op, &op_len);
    const char *subject_s = op_s == NULL ? NULL : PyUnicode_AsUTF8AndSize(subject, &subject_len);
    if (subject_s == NULL) {  /* a surrogate: the pure-Python path raises its own error */
        PyErr_Clear();
        return call_slow(args);
    }

    /* the id's input: "<connector>\x1flsn:<lsn>\x1f<op>\x1f<subject>\x1f<type>\x1f<fingerprint>" */
    out_t in;
    out_init(&in);
    char digits[32];
    int nd = snprintf(digits, sizeof digits, "lsn:%lld\x1f", position);
    if (out_put(&in, PyBytes_AS_STRING(prefix), PyBytes_GET_SIZE(prefix)) < 0 || out_put(&in, digits, nd) < 0 ||
        out_put(&in, op_s, op_len) < 0 || out_put(&in, "\x1f", 1) < 0 || out_put(&in, subject_s, subject_len) < 0 ||
        out_put(&in, PyBytes_AS_STRING(type_tail), PyBytes_GET_SIZE(type_tail)) < 0) {
        out_free(&in);
        return NULL;
    }
    char hex[32];
    blake2b_128_hex((const unsigned char *)in.p, in.len, hex);
    out_free(&in);

    Py_ssize_t spec_len = (Py_ssize_t)sizeof SPEC - 1, mid_len = PyBytes_GET_SIZE(mid);
    Py_ssize_t sj_len = PyBytes_GET_SIZE(subject_json), tp_len = PyBytes_GET_SIZE(time_part);
    Py_ssize_t dj_len = PyBytes_GET_SIZE(data_json);
    PyObject *raw = PyBytes_FromStringAndSize(NULL, spec_len + 32 + mid_len + sj_len + tp_len + dj_len + 1);
    if (raw == NULL) return NULL;
    char *p = PyBytes_AS_STRING(raw);
    memcpy(p, SPEC, (size_t)spec_len);
    p += spec_len;
    memcpy(p, hex, 32);
    p += 32;
    memcpy(p, PyBytes_AS_STRING(mid), (size_t)mid_len);
    p += mid_len;
    memcpy(p, PyBytes_AS_STRING(subject_json), (size_t)sj_len);
    p += sj_len;
    memcpy(p, PyBytes_AS_STRING(time_part), (size_t)tp_len);
    p += tp_len;
    memcpy(p, PyBytes_AS_STRING(data_json), (size_t)dj_len);
    p[dj_len] = '}';
    PyObject *id = PyUnicode_New(32, 127);
    if (id == NULL) {
        Py_DECREF(raw);
        return NULL;
    }
    memcpy(PyUnicode_DATA(id), hex, 32);
    PyObject *out = PyTuple_Pack(3, id, time, raw);
    Py_DECREF(id);
    Py_DECREF(raw);
    return out;
}

static PyMethodDef methods[] = {
    {"match", (PyCFunction)(void (*)(void))match, METH_FASTCALL,
     "match(value, template) -> (cut, number, op) | None: see mappers/envelope.py"},
    {"typed_write", (PyCFunction)(void (*)(void))typed_write, METH_FASTCALL,
     "typed_write(state, slow, source, op, subject, subject_json, data_json) -> (id, time, raw)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mapspeed", NULL, -1, methods};

PyMODINIT_FUNC PyInit__mapspeed(void) {
    s_ts_us = PyUnicode_InternFromString("ts_us");
    s_lsn = PyUnicode_InternFromString("lsn");
    if (s_ts_us == NULL || s_lsn == NULL) return NULL;
    return PyModule_Create(&module);
}
