/* C fast path of binlog row decoding (see cdc/readers/binlogrows.py, which documents the encodings).
 *
 * decode_rows(data, pos, end, spec, cols, cols2) walks the row images of one rows event and returns
 * the list of row dicts (cols2 None), or of (before, after) tuples for an update (cols2: the columns of
 * the after image). spec has one entry per table column, (kind, a, b, c, obj, name), built by
 * RowDecoder._native_spec: the kinds below are decoded here, K_FALLBACK calls obj(data, p) -> (value,
 * p), the compiled Python reader of that column, for everything else. name is None for a column that
 * is read past but not emitted. cols lists the columns present in the image (the columns-present bitmap).
 *
 * The pure-Python twin is the code RowDecoder compiles itself; the unit tests compare both value for
 * value. On any problem (truncated event, invalid date, unknown ENUM index) this raises ValueError
 * without detail: RowDecoder then walks the event again in Python to name the column and the row.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum {
    K_FALLBACK = 0, K_INT = 1, K_DOUBLE = 2, K_FLOAT_WIDE = 3, K_DECIMAL = 4, K_TEXT_UTF8 = 5, K_DATE = 6,
    K_DATETIME2 = 7, K_TIMESTAMP2 = 8, K_TIME2 = 9, K_YEAR = 10, K_ENUM = 11, K_SKIP_FIXED = 12,
    K_SKIP_VAR = 13, K_BINARY = 14,
};

typedef struct {
    int kind, a, b, c;
    PyObject *obj;   /* borrowed from spec */
    PyObject *name;  /* borrowed; NULL when not emitted */
} col_t;

static PyObject *bad(void) {
    PyErr_SetString(PyExc_ValueError, "binlog row: cannot decode (truncated event or invalid value)");
    return NULL;
}

static inline uint64_t be(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static inline uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static inline int64_t floordiv(int64_t x, int64_t d) {
    int64_t q = x / d;
    return (x % d != 0 && ((x < 0) != (d < 0))) ? q - 1 : q;
}

/* days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil) */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int valid_date(int y, int m, int d) {
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1) return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

static const int64_t POW10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
                                10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
                                100000000000000LL, 1000000000000000LL, 10000000000000000LL,
                                100000000000000000LL, 1000000000000000000LL};
static const int DIG2BYTES[] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};

/* NEWDECIMAL(precision <= 18) at p: the integer and fraction parts and the sign (positive: sign bit set;
 * negative: every bit of the positive form inverted). */
static void read_decimal(const unsigned char *p, int precision, int scale, uint64_t *ip, uint64_t *fp, int *neg) {
    int intg = precision - scale, size;
    unsigned char buf[16];
    size = DIG2BYTES[intg % 9] + (intg / 9) * 4 + (scale / 9) * 4 + DIG2BYTES[scale % 9];
    memcpy(buf, p, size);
    *neg = !(buf[0] & 0x80);
    buf[0] ^= 0x80;
    if (*neg) for (int i = 0; i < size; i++) buf[i] = (unsigned char)~buf[i];
    const unsigned char *q = buf;
    uint64_t i_part = 0, f_part = 0;
    int lead = intg % 9;
    if (lead) { i_part = be(q, DIG2BYTES[lead]); q += DIG2BYTES[lead]; }
    for (int k = 0; k < intg / 9; k++) { i_part = i_part * 1000000000ULL + be(q, 4); q += 4; }
    for (int k = 0; k < scale / 9; k++) { f_part = f_part * 1000000000ULL + be(q, 4); q += 4; }
    int tail = scale % 9;
    if (tail) f_part = f_part * (uint64_t)POW10[tail] + be(q, DIG2BYTES[tail]);
    *ip = i_part;
    *fp = f_part;
}

static int decimal_size(int precision, int scale) {
    int intg = precision - scale;
    return DIG2BYTES[intg % 9] + (intg / 9) * 4 + (scale / 9) * 4 + DIG2BYTES[scale % 9];
}

/* Decimal digits of v, zero-padded to at least `width`, at o; returns the end. */
static char *put_uint(char *o, uint64_t v, int width) {
    char tmp[24];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n < width) tmp[n++] = '0';
    while (n) *o++ = tmp[--n];
    return o;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* bytes (plus `pad` zero bytes) as base64 (mode 0), URL-safe base64 (1) or lower-case hex (2): a str */
static PyObject *encode_binary(const unsigned char *src, Py_ssize_t len, Py_ssize_t pad, int mode) {
    Py_ssize_t total = len + pad, outlen = mode == 2 ? 2 * total : (total + 2) / 3 * 4;
    PyObject *str = PyUnicode_New(outlen, 127);
    if (str == NULL) return NULL;
    unsigned char *o = PyUnicode_1BYTE_DATA(str);
    if (mode == 2) {
        static const char HEX[] = "0123456789abcdef";
        for (Py_ssize_t i = 0; i < total; i++) {
            unsigned char x = i < len ? src[i] : 0;
            *o++ = HEX[x >> 4];
            *o++ = HEX[x & 15];
        }
        return str;
    }
    const char *alphabet = mode == 1 ? B64URL : B64;
    Py_ssize_t i = 0;
    for (; i + 3 <= total; i += 3) {
        uint32_t x = (uint32_t)(i < len ? src[i] : 0) << 16 | (uint32_t)(i + 1 < len ? src[i + 1] : 0) << 8
                     | (uint32_t)(i + 2 < len ? src[i + 2] : 0);
        *o++ = alphabet[x >> 18];
        *o++ = alphabet[x >> 12 & 63];
        *o++ = alphabet[x >> 6 & 63];
        *o++ = alphabet[x & 63];
    }
    if (i < total) {
        uint32_t x = (uint32_t)(i < len ? src[i] : 0) << 16 | (uint32_t)(i + 1 < total && i + 1 < len ? src[i + 1] : 0) << 8;
        *o++ = alphabet[x >> 18];
        *o++ = alphabet[x >> 12 & 63];
        *o++ = i + 1 < total ? alphabet[x >> 6 & 63] : '=';
        *o++ = '=';
    }
    return str;
}

static PyObject *fallback(const col_t *c, PyObject *data, Py_ssize_t *pp) {
    PyObject *pos = PyLong_FromSsize_t(*pp);
    if (pos == NULL) return NULL;
    PyObject *args[2] = {data, pos};
    PyObject *res = PyObject_Vectorcall(c->obj, args, 2, NULL);
    Py_DECREF(pos);
    if (res == NULL) return NULL;
    if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2) {
        Py_DECREF(res);
        PyErr_SetString(PyExc_TypeError, "binlog row reader must return (value, position)");
        return NULL;
    }
    Py_ssize_t np = PyLong_AsSsize_t(PyTuple_GET_ITEM(res, 1));
    if (np == -1 && PyErr_Occurred()) { Py_DECREF(res); return NULL; }
    *pp = np;
    PyObject *v = PyTuple_GET_ITEM(res, 0);
    Py_INCREF(v);
    Py_DECREF(res);
    return v;
}

/* One value at *pp (not NULL in the image). Returns a new reference, Py_None for a skipped column's
 * placeholder (never stored), or NULL with an exception set. */
static PyObject *value(const col_t *c, PyObject *data, const unsigned char *b, Py_ssize_t *pp, Py_ssize_t end) {
    Py_ssize_t p = *pp;
    const unsigned char *q = b + p;
    char out[64];
    switch (c->kind) {
    case K_INT: {
        int n = c->a;
        if (p + n > end) return bad();
        uint64_t u = le(q, n);
        *pp = p + n;
        if (c->b) {  /* signed */
            int64_t s = n == 8 ? (int64_t)u : (u & (1ULL << (8 * n - 1))) ? (int64_t)(u - (1ULL << (8 * n))) : (int64_t)u;
            return PyLong_FromLongLong(s);
        }
        return PyLong_FromUnsignedLongLong(u);
    }
    case K_DOUBLE: {
        double d;
        if (p + 8 > end) return bad();
        uint64_t u = le(q, 8);  /* the binlog's little-endian IEEE bits, whatever the host's byte order */
        memcpy(&d, &u, 8);
        *pp = p + 8;
        return PyFloat_FromDouble(d);
    }
    case K_FLOAT_WIDE: {
        float f;
        if (p + 4 > end) return bad();
        uint32_t u = (uint32_t)le(q, 4);
        memcpy(&f, &u, 4);
        *pp = p + 4;
        return PyFloat_FromDouble((double)f);
    }
    case K_DECIMAL: {
        int size = decimal_size(c->a, c->b);
        uint64_t ip, fp;
        int neg;
        if (p + size > end) return bad();
        read_decimal(q, c->a, c->b, &ip, &fp, &neg);
        *pp = p + size;
        if (ip >= (uint64_t)POW10[c->a - c->b] || fp >= (uint64_t)POW10[c->b]) return bad();
        if (c->c == 1) {  /* double */
            uint64_t u = ip * (uint64_t)POW10[c->b] + fp;
            if (u < (1ULL << 53)) {  /* exact operands: one IEEE division is correctly rounded, as int / int */
                double d = (double)u / (double)POW10[c->b];
                return PyFloat_FromDouble(neg && u ? -d : d);  /* no -0.0: BigDecimal has one zero */
            }
            PyObject *num = PyLong_FromUnsignedLongLong(u), *den = PyLong_FromLongLong(POW10[c->b]), *r = NULL;
            if (num && den) r = PyNumber_TrueDivide(num, den);
            Py_XDECREF(num);
            Py_XDECREF(den);
            if (r && neg) { PyObject *m = PyNumber_Negative(r); Py_DECREF(r); r = m; }
            return r;
        }
        if (c->c == 2) {  /* precise: Kafka Connect Decimal, BigInteger.toByteArray() of the unscaled value */
            int64_t u = (int64_t)(ip * (uint64_t)POW10[c->b] + fp);
            if (neg) u = -u;
            unsigned char bytes[8];
            int n = 1;
            while (n < 8 && !(u >= -((int64_t)1 << (8 * n - 1)) && u < ((int64_t)1 << (8 * n - 1)))) n++;
            for (int k = 0; k < n; k++) bytes[n - 1 - k] = (unsigned char)((uint64_t)u >> (8 * k));
            return encode_binary(bytes, n, 0, 0);
        }
        char *o = out;
        if (neg && (ip || fp)) *o++ = '-';
        o = put_uint(o, ip, 1);
        if (c->b) { *o++ = '.'; o = put_uint(o, fp, c->b); }
        return PyUnicode_DecodeASCII(out, o - out, NULL);
    }
    case K_TEXT_UTF8:
    case K_BINARY:
    case K_SKIP_VAR: {
        int n = c->a;
        if (p + n > end) return bad();
        Py_ssize_t len = (Py_ssize_t)le(q, n);
        p += n;
        if (len > end - p) return bad();
        *pp = p + len;
        if (c->kind == K_SKIP_VAR) Py_RETURN_NONE;
        if (c->kind == K_BINARY)  /* BINARY(n) is right-padded with zero bytes to n, as the server returns it */
            return encode_binary(b + p, len, c->b > len ? c->b - len : 0, c->c);
        return PyUnicode_DecodeUTF8((const char *)b + p, len, NULL);
    }
    case K_SKIP_FIXED:
        if (p + c->a > end) return bad();
        *pp = p + c->a;
        Py_RETURN_NONE;
    case K_DATE: {
        if (p + 3 > end) return bad();
        uint64_t x = le(q, 3);
        *pp = p + 3;
        int d = (int)(x & 31), m = (int)(x >> 5 & 15), y = (int)(x >> 9);
        if (y == 0 || m == 0 || d == 0) { Py_INCREF(c->obj); return c->obj; }
        if (!valid_date(y, m, d)) return bad();
        return PyLong_FromLongLong(days_from_civil(y, m, d));
    }
    case K_DATETIME2: {
        int fsp = c->a, fb = (fsp + 1) / 2;
        if (p + 5 + fb > end) return bad();
        int64_t ipart = (int64_t)be(q, 5) - 0x8000000000LL;
        uint64_t frac = be(q + 5, fb);
        *pp = p + 5 + fb;
        int64_t ymd = ipart >> 17, ym = ymd >> 5;
        int d = (int)(ymd & 31), m = (int)(ym % 13), y = (int)(ym / 13);
        int h = (int)(ipart >> 12 & 31), mi = (int)(ipart >> 6 & 63), s = (int)(ipart & 63);
        if (ipart < 0) return bad();
        if (y == 0 || m == 0 || d == 0) { Py_INCREF(c->obj); return c->obj; }
        if (!valid_date(y, m, d) || h > 23 || mi > 59 || s > 59) return bad();
        static const int64_t mult[] = {0, 10000, 100, 1};
        int64_t us = (days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + s) * 1000000 + (int64_t)frac * mult[fb];
        return PyLong_FromLongLong(c->b > 1 ? floordiv(us, c->b) : us);
    }
    case K_TIMESTAMP2: {
        int fsp = c->a, fb = (fsp + 1) / 2;
        if (p + 4 + fb > end) return bad();
        int64_t secs = (int64_t)be(q, 4);
        uint64_t frac = be(q + 4, fb);
        *pp = p + 4 + fb;
        if (secs == 0 && frac == 0) { Py_INCREF(c->obj); return c->obj; }
        static const int64_t mult[] = {0, 10000, 100, 1};
        int64_t us = (int64_t)frac * mult[fb];
        int y, m, d;
        int64_t days = secs / 86400, rem = secs % 86400;
        civil_from_days(days, &y, &m, &d);
        char *o = put_uint(out, (uint64_t)y, 4);
        *o++ = '-'; o = put_uint(o, (uint64_t)m, 2);
        *o++ = '-'; o = put_uint(o, (uint64_t)d, 2);
        *o++ = 'T'; o = put_uint(o, (uint64_t)(rem / 3600), 2);
        *o++ = ':'; o = put_uint(o, (uint64_t)(rem / 60 % 60), 2);
        *o++ = ':'; o = put_uint(o, (uint64_t)(rem % 60), 2);
        if (fsp) { *o++ = '.'; o = put_uint(o, (uint64_t)(us / POW10[6 - fsp]), fsp); }
        *o++ = 'Z';
        return PyUnicode_DecodeASCII(out, o - out, NULL);
    }
    case K_TIME2: {
        int fsp = c->a, fb = (fsp + 1) / 2, size = 3 + fb;
        if (p + size > end) return bad();
        int64_t x = (int64_t)be(q, size) - ((int64_t)1 << (8 * size - 1));
        *pp = p + size;
        int neg = x < 0;
        if (neg) x = -x;
        int64_t ipart = x >> (8 * fb);
        static const int64_t mult[] = {0, 10000, 100, 1};
        int64_t us = ((ipart >> 12 & 1023) * 3600 + (ipart >> 6 & 63) * 60 + (ipart & 63)) * 1000000
                     + (fb ? (x & ((1LL << (8 * fb)) - 1)) * mult[fb] : 0);
        if (neg) us = -us;
        return PyLong_FromLongLong(c->b > 1 ? floordiv(us, c->b) : us);
    }
    case K_YEAR: {
        if (p + 1 > end) return bad();
        *pp = p + 1;
        return PyLong_FromLong(q[0] ? 1900 + q[0] : 0);
    }
    case K_ENUM: {
        int n = c->a;
        if (p + n > end) return bad();
        uint64_t i = le(q, n);
        *pp = p + n;
        if ((Py_ssize_t)i >= PyTuple_GET_SIZE(c->obj)) return bad();
        PyObject *v = PyTuple_GET_ITEM(c->obj, (Py_ssize_t)i);
        Py_INCREF(v);
        return v;
    }
    default: {
        PyObject *v = fallback(c, data, pp);
        if (v != NULL && *pp > end) { Py_DECREF(v); return bad(); }
        return v;
    }
    }
}

/* One image: the null bitmap of the n present columns idx[], then their values. */
static PyObject *image(const col_t *cols, const Py_ssize_t *idx, Py_ssize_t n, PyObject *data,
                       const unsigned char *b, Py_ssize_t *pp, Py_ssize_t end) {
    Py_ssize_t nb = (n + 7) / 8, p = *pp;
    if (p + nb > end) return bad();
    const unsigned char *nulls = b + p;
    p += nb;
    PyObject *row = PyDict_New();
    if (row == NULL) return NULL;
    for (Py_ssize_t j = 0; j < n; j++) {
        const col_t *c = &cols[idx[j]];
        PyObject *v;
        if (nulls[j >> 3] >> (j & 7) & 1) {
            if (c->name == NULL) continue;
            v = Py_None;
            Py_INCREF(v);
        } else {
            v = value(c, data, b, &p, end);
            if (v == NULL) { Py_DECREF(row); return NULL; }
            if (c->name == NULL) { Py_DECREF(v); continue; }
        }
        int rc = PyDict_SetItem(row, c->name, v);
        Py_DECREF(v);
        if (rc < 0) { Py_DECREF(row); return NULL; }
    }
    *pp = p;
    return row;
}

static int parse_spec(PyObject *spec, col_t **out, Py_ssize_t *ncols) {
    if (!PyTuple_Check(spec)) { PyErr_SetString(PyExc_TypeError, "spec must be a tuple"); return -1; }
    Py_ssize_t n = PyTuple_GET_SIZE(spec);
    col_t *cols = PyMem_Calloc(n ? n : 1, sizeof(col_t));
    if (cols == NULL) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *e = PyTuple_GET_ITEM(spec, i);
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 6) {
            PyMem_Free(cols);
            PyErr_SetString(PyExc_TypeError, "spec entries are (kind, a, b, c, obj, name)");
            return -1;
        }
        cols[i].kind = (int)PyLong_AsLong(PyTuple_GET_ITEM(e, 0));
        cols[i].a = (int)PyLong_AsLong(PyTuple_GET_ITEM(e, 1));
        cols[i].b = (int)PyLong_AsLong(PyTuple_GET_ITEM(e, 2));
        cols[i].c = (int)PyLong_AsLong(PyTuple_GET_ITEM(e, 3));
        cols[i].obj = PyTuple_GET_ITEM(e, 4);
        PyObject *name = PyTuple_GET_ITEM(e, 5);
        cols[i].name = name == Py_None ? NULL : name;
        if (PyErr_Occurred()) { PyMem_Free(cols); return -1; }
        if ((cols[i].kind == K_ENUM && !PyTuple_Check(cols[i].obj))
            || (cols[i].kind == K_DECIMAL && (cols[i].a > 18 || cols[i].b < 0 || cols[i].b > cols[i].a))
            || ((cols[i].kind == K_INT || cols[i].kind == K_TEXT_UTF8 || cols[i].kind == K_SKIP_VAR
                 || cols[i].kind == K_BINARY) && (cols[i].a < 1 || cols[i].a > 8))
            || ((cols[i].kind == K_DATETIME2 || cols[i].kind == K_TIMESTAMP2 || cols[i].kind == K_TIME2)
                && (cols[i].a < 0 || cols[i].a > 6))) {
            PyMem_Free(cols);
            PyErr_Format(PyExc_ValueError, "spec entry %zd is invalid", i);
            return -1;
        }
    }
    *out = cols;
    *ncols = n;
    return 0;
}

/* The column indexes of a present-columns tuple, checked; NULL with an exception on error. */
static Py_ssize_t *indexes(PyObject *present, Py_ssize_t ncols, Py_ssize_t *n) {
    if (!PyTuple_Check(present)) { PyErr_SetString(PyExc_TypeError, "cols must be a tuple"); return NULL; }
    *n = PyTuple_GET_SIZE(present);
    Py_ssize_t *idx = PyMem_Calloc(*n ? *n : 1, sizeof(Py_ssize_t));
    if (idx == NULL) { PyErr_NoMemory(); return NULL; }
    for (Py_ssize_t j = 0; j < *n; j++) {
        Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(present, j));
        if (i < 0 || i >= ncols) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "column index out of range");
            PyMem_Free(idx);
            return NULL;
        }
        idx[j] = i;
    }
    return idx;
}

/* decode_rows(data, pos, end, spec, cols, cols2) -> list of dicts | list of (before, after) */
static PyObject *decode_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 6) { PyErr_SetString(PyExc_TypeError, "decode_rows takes 6 arguments"); return NULL; }
    PyObject *data = args[0], *spec = args[3], *present = args[4], *present2 = args[5];
    if (!PyBytes_Check(data)) { PyErr_SetString(PyExc_TypeError, "data must be bytes"); return NULL; }
    Py_ssize_t p = PyLong_AsSsize_t(args[1]), end = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred()) return NULL;
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(data);
    if (p < 0 || end > PyBytes_GET_SIZE(data) || p > end) {
        PyErr_SetString(PyExc_ValueError, "binlog row: position/end outside the data");
        return NULL;
    }
    col_t *cols;
    Py_ssize_t ncols, n1 = 0, n2 = 0, *idx1 = NULL, *idx2 = NULL;
    PyObject *out = NULL;
    if (parse_spec(spec, &cols, &ncols) < 0) return NULL;
    idx1 = indexes(present, ncols, &n1);
    if (idx1 == NULL) goto done;
    if (present2 != Py_None && (idx2 = indexes(present2, ncols, &n2)) == NULL) goto done;
    out = PyList_New(0);
    if (out == NULL) goto done;
    while (p < end) {
        PyObject *item = image(cols, idx1, n1, data, b, &p, end);
        if (item != NULL && idx2 != NULL) {
            PyObject *after = image(cols, idx2, n2, data, b, &p, end);
            PyObject *pair = after ? PyTuple_Pack(2, item, after) : NULL;
            Py_XDECREF(after);
            Py_DECREF(item);
            item = pair;
        }
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(out);
            goto done;
        }
        Py_DECREF(item);
    }
done:
    PyMem_Free(cols);
    PyMem_Free(idx1);
    PyMem_Free(idx2);
    return out;
}

static PyMethodDef methods[] = {
    {"decode_rows", (PyCFunction)(void (*)(void))decode_rows, METH_FASTCALL,
     "decode_rows(data, pos, end, spec, cols, cols2) -> list of row dicts, or of (before, after) when cols2"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_myspeed", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__myspeed(void) { return PyModule_Create(&module); }
