/* C fast path of binlog row decoding (see cdc/readers/binlogrows.py, which documents the encodings).
 *
 * decode_rows(data, pos, end, spec, cols, cols2) walks the row images of one rows event and returns
 * the list of row dicts (cols2 None), or of (before, after) tuples for an update (cols2: the columns of
 * the after image). spec has one entry per table column, (kind, a, b, c, obj, name), built by
 * RowDecoder._native_fn: the kinds below are decoded here, K_FALLBACK calls obj(data, p) -> (value,
 * p), the compiled Python reader of that column, for everything else. name is None for a column that
 * is read past but not emitted. cols lists the columns present in the image (the columns-present bitmap).
 *
 * encode_rows(data, pos, end, jspec, cols, cols2, keys, dumps) walks the same images but writes each one
 * straight as the JSON text orjson.dumps gives for its dict (the event hot path: no dict, no orjson
 * call), and the key object of the `keys` columns (indexes, in key order; empty: no key) beside it:
 * a list of (row, key) tuples, or (before, after, old_key, new_key) for an update; a key is None when
 * `keys` is empty. jspec is spec with JSON in place of Python values: name is the label b'"name":',
 * an ENUM's obj the tuple of its members' JSON, a zero date's obj the JSON of the value it stands for.
 * A K_FALLBACK value is serialised with dumps (orjson.dumps). Both walks share one value decoder
 * (decode_value), so they cannot disagree on what the bytes mean.
 *
 * envelopes(op, rows, topic, src, post, post_d, post_c, first_row, tombstones) wraps encode_rows'
 * rows in Debezium envelopes: the (topic, key, value) records of mysqlevents.EnvelopeMaker.events_json,
 * whose Python loop is its twin (see there for the pieces).
 *
 * The pure-Python twins are the code RowDecoder compiles itself and events_json's loop; the unit tests
 * compare both value for value and byte for byte. On any problem (truncated event, invalid date, unknown ENUM index, invalid
 * UTF-8) this raises ValueError without detail: RowDecoder then walks the event again in Python to name
 * the column and the row.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
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
    PyObject *name;  /* borrowed; NULL when not emitted (decode_rows: str; encode_rows: its JSON label) */
    int64_t secs;    /* K_TIMESTAMP2: the last second written as text (-1: none), consecutive rows share it */
    char secs_text[20];
} col_t;

static PyObject *bad(void) {
    PyErr_SetString(PyExc_ValueError, "binlog row: cannot decode (truncated event or invalid value)");
    return NULL;
}

static int bad_rc(void) {
    bad();
    return -1;
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

static const char DIGITS2[] =
    "0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849"
    "5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/* Decimal digits of v, zero-padded to at least `width` (<= 20), at o; returns the end. Two digits a
 * step: a timestamp is mostly such numbers. */
static char *put_uint(char *o, uint64_t v, int width) {
    char tmp[24], *t = tmp + sizeof tmp;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        t -= 2;
        memcpy(t, DIGITS2 + 2 * r, 2);
    }
    if (v >= 10) { t -= 2; memcpy(t, DIGITS2 + 2 * v, 2); } else { *--t = (char)('0' + v); }
    while (tmp + sizeof tmp - t < width) *--t = '0';
    Py_ssize_t n = tmp + sizeof tmp - t;
    memcpy(o, t, n);
    return o + n;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static Py_ssize_t binary_text_len(Py_ssize_t total, int mode) {
    return mode == 2 ? 2 * total : (total + 2) / 3 * 4;
}

/* bytes (plus `pad` zero bytes) as base64 (mode 0), URL-safe base64 (1) or lower-case hex (2), at o
 * (binary_text_len bytes) */
static void binary_text(unsigned char *o, const unsigned char *src, Py_ssize_t len, Py_ssize_t pad, int mode) {
    Py_ssize_t total = len + pad;
    if (mode == 2) {
        static const char HEX[] = "0123456789abcdef";
        for (Py_ssize_t i = 0; i < total; i++) {
            unsigned char x = i < len ? src[i] : 0;
            *o++ = HEX[x >> 4];
            *o++ = HEX[x & 15];
        }
        return;
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
}

/* ------------------------------------------------------------------------------------------------
 * One value, decoded: what decode_value found, before it becomes a Python object or JSON text. */

enum {
    V_SKIP,     /* a column read past (not emitted) */
    V_I64,      /* i */
    V_U64,      /* u */
    V_DOUBLE,   /* d */
    V_BIGDIV,   /* DECIMAL as double whose unscaled value u is too large for one exact division: u / 10^scale */
    V_ASCII,    /* text[0..n): a string of JSON-safe ASCII (no escapes needed) */
    V_UTF8,     /* s[0..n): UTF-8 text in the event */
    V_BINARY,   /* s[0..n) plus pad zero bytes, encoded per mode */
    V_ZERO,     /* a zero date: the column's obj */
    V_MEMBER,   /* ENUM member u of the column's obj */
    V_PY,       /* py: a value from the column's Python reader (new reference) */
};

typedef struct {
    int kind, neg, scale, mode;
    int64_t i;
    uint64_t u;
    double d;
    const unsigned char *s;
    Py_ssize_t n, pad;
    PyObject *py;
    char text[64];
} val_t;

static int fallback(const col_t *c, PyObject *data, Py_ssize_t *pp, Py_ssize_t end, val_t *v) {
    PyObject *pos = PyLong_FromSsize_t(*pp);
    if (pos == NULL) return -1;
    PyObject *args[2] = {data, pos};
    PyObject *res = PyObject_Vectorcall(c->obj, args, 2, NULL);
    Py_DECREF(pos);
    if (res == NULL) return -1;
    if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2) {
        Py_DECREF(res);
        PyErr_SetString(PyExc_TypeError, "binlog row reader must return (value, position)");
        return -1;
    }
    Py_ssize_t np = PyLong_AsSsize_t(PyTuple_GET_ITEM(res, 1));
    if (np == -1 && PyErr_Occurred()) { Py_DECREF(res); return -1; }
    if (np > end) { Py_DECREF(res); return bad_rc(); }
    *pp = np;
    v->kind = V_PY;
    v->py = PyTuple_GET_ITEM(res, 0);
    Py_INCREF(v->py);
    Py_DECREF(res);
    return 0;
}

/* The value of column c at *pp (not NULL in the image) into *v, advancing *pp; -1 with an exception. */
static int decode_value(col_t *c, PyObject *data, const unsigned char *b, Py_ssize_t *pp, Py_ssize_t end,
                        val_t *v) {
    Py_ssize_t p = *pp;
    const unsigned char *q = b + p;
    switch (c->kind) {
    case K_INT: {
        int n = c->a;
        if (p + n > end) return bad_rc();
        uint64_t u = le(q, n);
        *pp = p + n;
        if (c->b) {  /* signed */
            v->kind = V_I64;
            v->i = n == 8 ? (int64_t)u : (u & (1ULL << (8 * n - 1))) ? (int64_t)(u - (1ULL << (8 * n))) : (int64_t)u;
        } else {
            v->kind = V_U64;
            v->u = u;
        }
        return 0;
    }
    case K_DOUBLE: {
        if (p + 8 > end) return bad_rc();
        uint64_t u = le(q, 8);  /* the binlog's little-endian IEEE bits, whatever the host's byte order */
        memcpy(&v->d, &u, 8);
        *pp = p + 8;
        v->kind = V_DOUBLE;
        return 0;
    }
    case K_FLOAT_WIDE: {
        float f;
        if (p + 4 > end) return bad_rc();
        uint32_t u = (uint32_t)le(q, 4);
        memcpy(&f, &u, 4);
        *pp = p + 4;
        v->kind = V_DOUBLE;
        v->d = (double)f;
        return 0;
    }
    case K_DECIMAL: {
        int size = decimal_size(c->a, c->b);
        uint64_t ip, fp;
        int neg;
        if (p + size > end) return bad_rc();
        read_decimal(q, c->a, c->b, &ip, &fp, &neg);
        *pp = p + size;
        if (ip >= (uint64_t)POW10[c->a - c->b] || fp >= (uint64_t)POW10[c->b]) return bad_rc();
        if (c->c == 1) {  /* double */
            uint64_t u = ip * (uint64_t)POW10[c->b] + fp;
            if (u < (1ULL << 53)) {  /* exact operands: one IEEE division is correctly rounded, as int / int */
                double d = (double)u / (double)POW10[c->b];
                v->kind = V_DOUBLE;
                v->d = neg && u ? -d : d;  /* no -0.0: BigDecimal has one zero */
                return 0;
            }
            v->kind = V_BIGDIV;
            v->u = u;
            v->neg = neg;
            v->scale = c->b;
            return 0;
        }
        if (c->c == 2) {  /* precise: Kafka Connect Decimal, BigInteger.toByteArray() of the unscaled value */
            int64_t u = (int64_t)(ip * (uint64_t)POW10[c->b] + fp);
            if (neg) u = -u;
            unsigned char bytes[8];
            int n = 1;
            while (n < 8 && !(u >= -((int64_t)1 << (8 * n - 1)) && u < ((int64_t)1 << (8 * n - 1)))) n++;
            for (int k = 0; k < n; k++) bytes[n - 1 - k] = (unsigned char)((uint64_t)u >> (8 * k));
            binary_text((unsigned char *)v->text, bytes, n, 0, 0);
            v->kind = V_ASCII;
            v->n = binary_text_len(n, 0);
            return 0;
        }
        char *o = v->text;
        if (neg && (ip || fp)) *o++ = '-';
        o = put_uint(o, ip, 1);
        if (c->b) { *o++ = '.'; o = put_uint(o, fp, c->b); }
        v->kind = V_ASCII;
        v->n = o - v->text;
        return 0;
    }
    case K_TEXT_UTF8:
    case K_BINARY:
    case K_SKIP_VAR: {
        int n = c->a;
        if (p + n > end) return bad_rc();
        Py_ssize_t len = (Py_ssize_t)le(q, n);
        p += n;
        if (len > end - p) return bad_rc();
        *pp = p + len;
        v->s = b + p;
        v->n = len;
        if (c->kind == K_SKIP_VAR) {
            v->kind = V_SKIP;
        } else if (c->kind == K_BINARY) {  /* BINARY(n) is right-padded with zero bytes to n, as the server returns it */
            v->kind = V_BINARY;
            v->pad = c->b > len ? c->b - len : 0;
            v->mode = c->c;
        } else {
            v->kind = V_UTF8;
        }
        return 0;
    }
    case K_SKIP_FIXED:
        if (p + c->a > end) return bad_rc();
        *pp = p + c->a;
        v->kind = V_SKIP;
        return 0;
    case K_DATE: {
        if (p + 3 > end) return bad_rc();
        uint64_t x = le(q, 3);
        *pp = p + 3;
        int d = (int)(x & 31), m = (int)(x >> 5 & 15), y = (int)(x >> 9);
        if (y == 0 || m == 0 || d == 0) { v->kind = V_ZERO; return 0; }
        if (!valid_date(y, m, d)) return bad_rc();
        v->kind = V_I64;
        v->i = days_from_civil(y, m, d);
        return 0;
    }
    case K_DATETIME2: {
        int fsp = c->a, fb = (fsp + 1) / 2;
        if (p + 5 + fb > end) return bad_rc();
        int64_t ipart = (int64_t)be(q, 5) - 0x8000000000LL;
        uint64_t frac = be(q + 5, fb);
        *pp = p + 5 + fb;
        int64_t ymd = ipart >> 17, ym = ymd >> 5;
        int d = (int)(ymd & 31), m = (int)(ym % 13), y = (int)(ym / 13);
        int h = (int)(ipart >> 12 & 31), mi = (int)(ipart >> 6 & 63), s = (int)(ipart & 63);
        if (ipart < 0) return bad_rc();
        if (y == 0 || m == 0 || d == 0) { v->kind = V_ZERO; return 0; }
        if (!valid_date(y, m, d) || h > 23 || mi > 59 || s > 59) return bad_rc();
        static const int64_t mult[] = {0, 10000, 100, 1};
        int64_t us = (days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + s) * 1000000 + (int64_t)frac * mult[fb];
        v->kind = V_I64;
        v->i = c->b > 1 ? floordiv(us, c->b) : us;
        return 0;
    }
    case K_TIMESTAMP2: {
        int fsp = c->a, fb = (fsp + 1) / 2;
        if (p + 4 + fb > end) return bad_rc();
        int64_t secs = (int64_t)be(q, 4);
        uint64_t frac = be(q + 4, fb);
        *pp = p + 4 + fb;
        if (secs == 0 && frac == 0) { v->kind = V_ZERO; return 0; }
        static const int64_t mult[] = {0, 10000, 100, 1};
        int64_t us = (int64_t)frac * mult[fb];
        if (secs != c->secs) {  /* YYYY-MM-DDTHH:MM:SS */
            int y, m, d;
            int64_t days = secs / 86400, rem = secs % 86400;
            civil_from_days(days, &y, &m, &d);
            char *o = put_uint(c->secs_text, (uint64_t)y, 4);
            *o++ = '-'; o = put_uint(o, (uint64_t)m, 2);
            *o++ = '-'; o = put_uint(o, (uint64_t)d, 2);
            *o++ = 'T'; o = put_uint(o, (uint64_t)(rem / 3600), 2);
            *o++ = ':'; o = put_uint(o, (uint64_t)(rem / 60 % 60), 2);
            *o++ = ':'; put_uint(o, (uint64_t)(rem % 60), 2);
            c->secs = secs;
        }
        memcpy(v->text, c->secs_text, 19);
        char *o = v->text + 19;
        if (fsp) { *o++ = '.'; o = put_uint(o, (uint64_t)(us / POW10[6 - fsp]), fsp); }
        *o++ = 'Z';
        v->kind = V_ASCII;
        v->n = o - v->text;
        return 0;
    }
    case K_TIME2: {
        int fsp = c->a, fb = (fsp + 1) / 2, size = 3 + fb;
        if (p + size > end) return bad_rc();
        int64_t x = (int64_t)be(q, size) - ((int64_t)1 << (8 * size - 1));
        *pp = p + size;
        int neg = x < 0;
        if (neg) x = -x;
        int64_t ipart = x >> (8 * fb);
        static const int64_t mult[] = {0, 10000, 100, 1};
        int64_t us = ((ipart >> 12 & 1023) * 3600 + (ipart >> 6 & 63) * 60 + (ipart & 63)) * 1000000
                     + (fb ? (x & ((1LL << (8 * fb)) - 1)) * mult[fb] : 0);
        if (neg) us = -us;
        v->kind = V_I64;
        v->i = c->b > 1 ? floordiv(us, c->b) : us;
        return 0;
    }
    case K_YEAR: {
        if (p + 1 > end) return bad_rc();
        *pp = p + 1;
        v->kind = V_I64;
        v->i = q[0] ? 1900 + q[0] : 0;
        return 0;
    }
    case K_ENUM: {
        int n = c->a;
        if (p + n > end) return bad_rc();
        uint64_t i = le(q, n);
        *pp = p + n;
        if (i >= (uint64_t)PyTuple_GET_SIZE(c->obj)) return bad_rc();
        v->kind = V_MEMBER;
        v->u = i;
        return 0;
    }
    default:
        return fallback(c, data, pp, end, v);
    }
}

/* u / 10^scale, negated if neg, correctly rounded (Python's int / int) */
static PyObject *big_division(const val_t *v) {
    PyObject *num = PyLong_FromUnsignedLongLong(v->u), *den = PyLong_FromLongLong(POW10[v->scale]), *r = NULL;
    if (num && den) r = PyNumber_TrueDivide(num, den);
    Py_XDECREF(num);
    Py_XDECREF(den);
    if (r && v->neg) { PyObject *m = PyNumber_Negative(r); Py_DECREF(r); r = m; }
    return r;
}

/* ------------------------------------------------------------------------------------------------
 * decode_rows: values as Python objects, rows as dicts */

/* A new reference to the value (Py_None for a skipped column's placeholder, never stored); steals v->py. */
static PyObject *to_object(const col_t *c, val_t *v) {
    switch (v->kind) {
    case V_SKIP: Py_RETURN_NONE;
    case V_I64: return PyLong_FromLongLong(v->i);
    case V_U64: return PyLong_FromUnsignedLongLong(v->u);
    case V_DOUBLE: return PyFloat_FromDouble(v->d);
    case V_BIGDIV: return big_division(v);
    case V_ASCII: return PyUnicode_DecodeASCII(v->text, v->n, NULL);
    case V_UTF8: return PyUnicode_DecodeUTF8((const char *)v->s, v->n, NULL);
    case V_BINARY: {
        PyObject *str = PyUnicode_New(binary_text_len(v->n + v->pad, v->mode), 127);
        if (str != NULL) binary_text(PyUnicode_1BYTE_DATA(str), v->s, v->n, v->pad, v->mode);
        return str;
    }
    case V_ZERO: Py_INCREF(c->obj); return c->obj;
    case V_MEMBER: {
        PyObject *m = PyTuple_GET_ITEM(c->obj, (Py_ssize_t)v->u);
        Py_INCREF(m);
        return m;
    }
    default: return v->py;  /* V_PY */
    }
}

/* One image: the null bitmap of the n present columns idx[], then their values. */
static PyObject *image(col_t *cols, const Py_ssize_t *idx, Py_ssize_t n, PyObject *data,
                       const unsigned char *b, Py_ssize_t *pp, Py_ssize_t end) {
    Py_ssize_t nb = (n + 7) / 8, p = *pp;
    if (p + nb > end) return bad();
    const unsigned char *nulls = b + p;
    p += nb;
    PyObject *row = PyDict_New();
    if (row == NULL) return NULL;
    for (Py_ssize_t j = 0; j < n; j++) {
        col_t *c = &cols[idx[j]];
        PyObject *x;
        if (nulls[j >> 3] >> (j & 7) & 1) {
            if (c->name == NULL) continue;
            x = Py_None;
            Py_INCREF(x);
        } else {
            val_t v;
            if (decode_value(c, data, b, &p, end, &v) < 0) { Py_DECREF(row); return NULL; }
            x = to_object(c, &v);
            if (x == NULL) { Py_DECREF(row); return NULL; }
            if (c->name == NULL) { Py_DECREF(x); continue; }
        }
        int rc = PyDict_SetItem(row, c->name, x);
        Py_DECREF(x);
        if (rc < 0) { Py_DECREF(row); return NULL; }
    }
    *pp = p;
    return row;
}

/* ------------------------------------------------------------------------------------------------
 * encode_rows: values as orjson writes them, rows as JSON objects */

#include "_jsonout.h"

static int out_bytes(out_t *o, PyObject *bytes) {
    return out_put(o, PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes));
}

static int put_int(out_t *o, int neg, uint64_t u) {
    if (out_reserve(o, 21) < 0) return -1;
    char *w = o->p + o->len;
    if (neg) *w++ = '-';
    o->len = put_uint(w, u, 1) - o->p;
    return 0;
}

/* A double as orjson writes it: Python's repr digits (the shortest that round-trip), plainly for
 * 1e-5 <= |x| < 1e16 ("0.00001", "100.0"), else "1.5e+16"/"1e-6" (no exponent padding); NaN and the
 * infinities (never in a MySQL column) as null, as orjson does. */
static int put_double(out_t *o, double x) {
    if (!isfinite(x)) return out_put(o, "null", 4);
    char *r = PyOS_double_to_string(x, 'r', 0, 0, NULL);
    if (r == NULL) return -1;
    const char *s = r;
    int neg = *s == '-';
    s += neg;
    char digits[40];
    int nd = 0, point = 0, after = 0;
    for (; *s && *s != 'e' && nd < 32; s++) {
        if (*s == '.') { after = 1; continue; }
        if (nd == 0 && *s == '0') { point -= after; continue; }  /* leading zeros */
        digits[nd++] = *s;
        point += !after;
    }
    if (*s == 'e') point += atoi(s + 1);
    PyMem_Free(r);
    while (nd && digits[nd - 1] == '0') nd--;
    if (out_reserve(o, 64) < 0) return -1;
    char *w = o->p + o->len;
    if (neg) *w++ = '-';
    int k = point - 1;  /* the decimal exponent of the first digit */
    if (nd == 0) {
        memcpy(w, "0.0", 3);
        w += 3;
    } else if (k > -6 && k < 16) {
        if (point <= 0) {
            *w++ = '0'; *w++ = '.';
            for (int i = 0; i < -point; i++) *w++ = '0';
            memcpy(w, digits, nd);
            w += nd;
        } else if (point >= nd) {
            memcpy(w, digits, nd);
            w += nd;
            for (int i = nd; i < point; i++) *w++ = '0';
            *w++ = '.'; *w++ = '0';
        } else {
            memcpy(w, digits, point);
            w += point;
            *w++ = '.';
            memcpy(w, digits + point, nd - point);
            w += nd - point;
        }
    } else {
        *w++ = digits[0];
        if (nd > 1) { *w++ = '.'; memcpy(w, digits + 1, nd - 1); w += nd - 1; }
        *w++ = 'e';
        *w++ = k > 0 ? '+' : '-';
        w = put_uint(w, (uint64_t)(k > 0 ? k : -k), 1);
    }
    o->len = w - o->p;
    return 0;
}

/* UTF-8 bytes as a JSON string, as orjson writes one: \" \\ \b \t \n \f \r, \u00XX for the other
 * controls, everything else (DEL, non-ASCII) as is. The bytes are checked as strictly as Python's
 * UTF-8 codec (no overlong forms, no surrogates, nothing past U+10FFFF): -1 with ValueError if not. */
static int put_utf8(out_t *o, const unsigned char *s, Py_ssize_t n) {
    static const char HEX[] = "0123456789abcdef";
    Py_ssize_t i = 0;
    if (out_put(o, "\"", 1) < 0) return -1;
    while (i < n) {
        /* room for a chunk of input at 6 bytes out per byte in (\u00XX), plus a character straddling its end */
        Py_ssize_t stop = n - i > 4096 ? i + 4096 : n;
        if (out_reserve(o, 6 * (stop - i) + 8) < 0) return -1;
        char *w = o->p + o->len;
        while (i < stop) {
            unsigned char c = s[i];
            if (c < 0x80) {
                i++;
                if (c >= 0x20 && c != '"' && c != '\\') { *w++ = (char)c; continue; }
                *w++ = '\\';
                switch (c) {
                case '"': *w++ = '"'; break;
                case '\\': *w++ = '\\'; break;
                case '\b': *w++ = 'b'; break;
                case '\t': *w++ = 't'; break;
                case '\n': *w++ = 'n'; break;
                case '\f': *w++ = 'f'; break;
                case '\r': *w++ = 'r'; break;
                default: *w++ = 'u'; *w++ = '0'; *w++ = '0'; *w++ = HEX[c >> 4]; *w++ = HEX[c & 15];
                }
                continue;
            }
            int len;
            unsigned char lo = 0x80, hi = 0xBF;  /* the range of the second byte */
            if (c >= 0xC2 && c <= 0xDF) len = 2;
            else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; else if (c == 0xED) hi = 0x9F; }
            else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; else if (c == 0xF4) hi = 0x8F; }
            else return bad_rc();
            if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) return bad_rc();
            for (int k = 2; k < len; k++) if ((s[i + k] & 0xC0) != 0x80) return bad_rc();
            memcpy(w, s + i, len);
            w += len;
            i += len;
        }
        o->len = w - o->p;
    }
    return out_put(o, "\"", 1);
}

static int put_dumps(out_t *o, PyObject *value, PyObject *dumps) {
    PyObject *js = PyObject_CallOneArg(dumps, value);
    if (js == NULL) return -1;
    int rc = PyBytes_Check(js) ? out_bytes(o, js) : -1;
    if (rc < 0 && !PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "dumps must return bytes");
    Py_DECREF(js);
    return rc;
}

/* The JSON of a decoded value; releases v->py. */
static int put_value(out_t *o, const col_t *c, val_t *v, PyObject *dumps) {
    switch (v->kind) {
    case V_SKIP: return 0;
    case V_I64: return put_int(o, v->i < 0, v->i < 0 ? (uint64_t)0 - (uint64_t)v->i : (uint64_t)v->i);
    case V_U64: return put_int(o, 0, v->u);
    case V_DOUBLE: return put_double(o, v->d);
    case V_BIGDIV: {
        PyObject *f = big_division(v);
        if (f == NULL) return -1;
        double d = PyFloat_AsDouble(f);
        Py_DECREF(f);
        return d == -1.0 && PyErr_Occurred() ? -1 : put_double(o, d);
    }
    case V_ASCII: {
        if (out_reserve(o, v->n + 2) < 0) return -1;
        char *w = o->p + o->len;
        *w = '"';
        memcpy(w + 1, v->text, v->n);
        w[v->n + 1] = '"';
        o->len += v->n + 2;
        return 0;
    }
    case V_UTF8: return put_utf8(o, v->s, v->n);
    case V_BINARY: {
        Py_ssize_t n = binary_text_len(v->n + v->pad, v->mode);
        if (out_reserve(o, n + 2) < 0) return -1;
        unsigned char *w = (unsigned char *)o->p + o->len;
        *w = '"';
        binary_text(w + 1, v->s, v->n, v->pad, v->mode);
        w[n + 1] = '"';
        o->len += n + 2;
        return 0;
    }
    case V_ZERO: return out_bytes(o, c->obj);
    case V_MEMBER: return out_bytes(o, PyTuple_GET_ITEM(c->obj, (Py_ssize_t)v->u));
    default: {  /* V_PY */
        int rc = put_dumps(o, v->py, dumps);
        Py_DECREF(v->py);
        return rc;
    }
    }
}

/* Where each key column's JSON sits in the image's text: slot[i] is column i's place in the key (-1:
 * not a key column); span[2k], span[2k+1] the start and end of key column k's value (-1: absent). */
typedef struct {
    const Py_ssize_t *slot;
    Py_ssize_t *span;
    Py_ssize_t n;
} keys_t;

/* One image as a JSON object: bytes, or NULL with an exception. */
static PyObject *image_json(col_t *cols, const Py_ssize_t *idx, Py_ssize_t n, PyObject *data,
                            const unsigned char *b, Py_ssize_t *pp, Py_ssize_t end, PyObject *dumps, out_t *o,
                            keys_t *keys) {
    Py_ssize_t nb = (n + 7) / 8, p = *pp;
    if (p + nb > end) return bad();
    const unsigned char *nulls = b + p;
    p += nb;
    for (Py_ssize_t k = 0; k < 2 * keys->n; k++) keys->span[k] = -1;
    o->len = 0;
    if (out_put(o, "{", 1) < 0) return NULL;
    int first = 1;
    for (Py_ssize_t j = 0; j < n; j++) {
        col_t *c = &cols[idx[j]];
        int null = nulls[j >> 3] >> (j & 7) & 1;
        val_t v;
        if (!null && decode_value(c, data, b, &p, end, &v) < 0) return NULL;
        if (c->name == NULL) {  /* read past */
            if (!null && v.kind == V_PY) Py_DECREF(v.py);
            continue;
        }
        if ((!first && out_put(o, ",", 1) < 0) || out_bytes(o, c->name) < 0) {
            if (!null && v.kind == V_PY) Py_DECREF(v.py);
            return NULL;
        }
        first = 0;
        Py_ssize_t start = o->len, k = keys->slot[idx[j]];
        if (null ? out_put(o, "null", 4) < 0 : put_value(o, c, &v, dumps) < 0) return NULL;
        if (k >= 0) {
            keys->span[2 * k] = start;
            keys->span[2 * k + 1] = o->len;
        }
    }
    if (out_put(o, "}", 1) < 0) return NULL;
    *pp = p;
    return PyBytes_FromStringAndSize(o->p, o->len);
}

/* The key object of the image just written to `row` (Py_None without key columns). */
static PyObject *key_json(const col_t *cols, PyObject *key_idx, const keys_t *keys, const out_t *row, out_t *o) {
    if (keys->n == 0) Py_RETURN_NONE;
    o->len = 0;
    if (out_put(o, "{", 1) < 0) return NULL;
    for (Py_ssize_t k = 0; k < keys->n; k++) {
        Py_ssize_t start = keys->span[2 * k], stop = keys->span[2 * k + 1];
        if (start < 0) {  /* RowDecoder checks each image shape first: a partial image without the key */
            PyErr_SetString(PyExc_ValueError, "binlog row: a key column is not in the row image");
            return NULL;
        }
        const col_t *c = &cols[PyLong_AsSsize_t(PyTuple_GET_ITEM(key_idx, k))];
        if ((k && out_put(o, ",", 1) < 0) || out_bytes(o, c->name) < 0
            || out_put(o, row->p + start, stop - start) < 0)
            return NULL;
    }
    if (out_put(o, "}", 1) < 0) return NULL;
    return PyBytes_FromStringAndSize(o->p, o->len);
}

/* ------------------------------------------------------------------------------------------------
 * arguments */

static int parse_spec(PyObject *spec, int json, col_t **out, Py_ssize_t *ncols) {
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
        col_t *c = &cols[i];
        c->kind = (int)PyLong_AsLong(PyTuple_GET_ITEM(e, 0));
        c->a = (int)PyLong_AsLong(PyTuple_GET_ITEM(e, 1));
        c->b = (int)PyLong_AsLong(PyTuple_GET_ITEM(e, 2));
        c->c = (int)PyLong_AsLong(PyTuple_GET_ITEM(e, 3));
        c->obj = PyTuple_GET_ITEM(e, 4);
        PyObject *name = PyTuple_GET_ITEM(e, 5);
        c->name = name == Py_None ? NULL : name;
        c->secs = -1;
        if (PyErr_Occurred()) { PyMem_Free(cols); return -1; }
        int zero = c->kind == K_DATE || c->kind == K_DATETIME2 || c->kind == K_TIMESTAMP2;
        int ok = !((c->kind == K_ENUM && !PyTuple_Check(c->obj))
                   || (c->kind == K_DECIMAL && (c->a > 18 || c->b < 0 || c->b > c->a))
                   || ((c->kind == K_INT || c->kind == K_TEXT_UTF8 || c->kind == K_SKIP_VAR || c->kind == K_BINARY)
                       && (c->a < 1 || c->a > 8))
                   || ((c->kind == K_DATETIME2 || c->kind == K_TIMESTAMP2 || c->kind == K_TIME2)
                       && (c->a < 0 || c->a > 6)));
        if (ok && json) {  /* labels, members and zero values are JSON bytes, written as they are */
            ok = (c->name == NULL || PyBytes_Check(c->name)) && (!zero || PyBytes_Check(c->obj));
            if (ok && c->kind == K_ENUM)
                for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(c->obj); k++)
                    ok &= PyBytes_Check(PyTuple_GET_ITEM(c->obj, k));
        }
        if (!ok) {
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

/* data, pos, end checked: the event bytes and the walk's bounds */
static const unsigned char *event_bounds(PyObject *data, PyObject *pos, PyObject *end_obj, Py_ssize_t *p,
                                         Py_ssize_t *end) {
    if (!PyBytes_Check(data)) { PyErr_SetString(PyExc_TypeError, "data must be bytes"); return NULL; }
    *p = PyLong_AsSsize_t(pos);
    *end = PyLong_AsSsize_t(end_obj);
    if (PyErr_Occurred()) return NULL;
    if (*p < 0 || *end > PyBytes_GET_SIZE(data) || *p > *end) {
        PyErr_SetString(PyExc_ValueError, "binlog row: position/end outside the data");
        return NULL;
    }
    return (const unsigned char *)PyBytes_AS_STRING(data);
}

/* decode_rows(data, pos, end, spec, cols, cols2) -> list of dicts | list of (before, after) */
static PyObject *decode_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 6) { PyErr_SetString(PyExc_TypeError, "decode_rows takes 6 arguments"); return NULL; }
    PyObject *data = args[0], *spec = args[3], *present = args[4], *present2 = args[5];
    Py_ssize_t p, end;
    const unsigned char *b = event_bounds(data, args[1], args[2], &p, &end);
    if (b == NULL) return NULL;
    col_t *cols;
    Py_ssize_t ncols, n1 = 0, n2 = 0, *idx1 = NULL, *idx2 = NULL;
    PyObject *out = NULL;
    if (parse_spec(spec, 0, &cols, &ncols) < 0) return NULL;
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

/* encode_rows(data, pos, end, jspec, cols, cols2, keys, dumps) -> list of (row, key) | list of
 * (before, after, old_key, new_key) */
static PyObject *encode_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 8) { PyErr_SetString(PyExc_TypeError, "encode_rows takes 8 arguments"); return NULL; }
    PyObject *data = args[0], *spec = args[3], *present = args[4], *present2 = args[5], *key_idx = args[6];
    PyObject *dumps = args[7];
    if (!PyTuple_Check(key_idx)) { PyErr_SetString(PyExc_TypeError, "keys must be a tuple"); return NULL; }
    Py_ssize_t p, end;
    const unsigned char *b = event_bounds(data, args[1], args[2], &p, &end);
    if (b == NULL) return NULL;
    col_t *cols;
    Py_ssize_t ncols, n1 = 0, n2 = 0, *idx1 = NULL, *idx2 = NULL, *slot = NULL, *span = NULL;
    PyObject *out = NULL;
    keys_t keys;
    out_t row, row2, key;  /* the image (the before image of an update), the after image, a key */
    out_init(&row);
    out_init(&row2);
    out_init(&key);
    if (parse_spec(spec, 1, &cols, &ncols) < 0) return NULL;
    Py_ssize_t nkeys = PyTuple_GET_SIZE(key_idx);
    slot = PyMem_Malloc(sizeof(Py_ssize_t) * (ncols ? ncols : 1));
    span = PyMem_Malloc(sizeof(Py_ssize_t) * 2 * (nkeys ? nkeys : 1));
    if (slot == NULL || span == NULL) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < ncols; i++) slot[i] = -1;
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(key_idx, k));
        if (i < 0 || i >= ncols || cols[i].name == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "key column index out of range or not emitted");
            goto done;
        }
        slot[i] = k;
    }
    keys.slot = slot;
    keys.span = span;
    keys.n = nkeys;
    idx1 = indexes(present, ncols, &n1);
    if (idx1 == NULL) goto done;
    if (present2 != Py_None && (idx2 = indexes(present2, ncols, &n2)) == NULL) goto done;
    out = PyList_New(0);
    if (out == NULL) goto done;
    while (p < end) {
        PyObject *item = NULL, *js = NULL, *kj = NULL, *js2 = NULL, *kj2 = NULL;
        js = image_json(cols, idx1, n1, data, b, &p, end, dumps, &row, &keys);
        if (js != NULL) kj = key_json(cols, key_idx, &keys, &row, &key);
        if (kj != NULL && idx2 != NULL) {
            js2 = image_json(cols, idx2, n2, data, b, &p, end, dumps, &row2, &keys);
            if (js2 != NULL) kj2 = key_json(cols, key_idx, &keys, &row2, &key);
            if (kj2 != NULL) item = PyTuple_Pack(4, js, js2, kj, kj2);
        } else if (kj != NULL) {
            item = PyTuple_Pack(2, js, kj);
        }
        Py_XDECREF(js);
        Py_XDECREF(kj);
        Py_XDECREF(js2);
        Py_XDECREF(kj2);
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
    PyMem_Free(slot);
    PyMem_Free(span);
    out_free(&row);
    out_free(&row2);
    out_free(&key);
    return out;
}

/* ------------------------------------------------------------------------------------------------
 * envelopes: Debezium's envelope around row JSON */

/* {"before":B,"after":A<src><row index><post>, B and A null when NULL: exact-size bytes */
static PyObject *envelope(PyObject *before, PyObject *after, PyObject *src, Py_ssize_t row, PyObject *post) {
    char num[24];
    Py_ssize_t nlen = put_uint(num, (uint64_t)row, 1) - num;
    Py_ssize_t lb = before ? PyBytes_GET_SIZE(before) : 4, la = after ? PyBytes_GET_SIZE(after) : 4;
    Py_ssize_t ls = PyBytes_GET_SIZE(src), lp = PyBytes_GET_SIZE(post);
    PyObject *v = PyBytes_FromStringAndSize(NULL, 10 + lb + 9 + la + ls + nlen + lp);
    if (v == NULL) return NULL;
    char *w = PyBytes_AS_STRING(v);
#define PUT(s, n) do { memcpy(w, (s), (n)); w += (n); } while (0)
    PUT("{\"before\":", 10);
    PUT(before ? PyBytes_AS_STRING(before) : "null", lb);
    PUT(",\"after\":", 9);
    PUT(after ? PyBytes_AS_STRING(after) : "null", la);
    PUT(PyBytes_AS_STRING(src), ls);
    PUT(num, nlen);
    PUT(PyBytes_AS_STRING(post), lp);
#undef PUT
    return v;
}

/* Appends (topic, key, value) to out; steals value (NULL: an error already set). */
static int record(PyObject *out, PyObject *topic, PyObject *key, PyObject *value) {
    if (value == NULL) return -1;
    PyObject *t = PyTuple_New(3);
    if (t == NULL) { Py_DECREF(value); return -1; }
    Py_INCREF(topic);
    Py_INCREF(key);
    PyTuple_SET_ITEM(t, 0, topic);
    PyTuple_SET_ITEM(t, 1, key);
    PyTuple_SET_ITEM(t, 2, value);
    int rc = PyList_Append(out, t);
    Py_DECREF(t);
    return rc;
}

static int bytes_or_none(PyObject *x, int may_be_none) {
    return PyBytes_Check(x) || (may_be_none && x == Py_None);
}

/* envelopes(op, rows, topic, src, post, post_d, post_c, first_row, tombstones) -> list of (topic, key, value)
 * op 'u': rows of (before, after, old key, new key), a key change giving a delete (post_d), a tombstone
 * when tombstones, and a create (post_c); else rows of (image, key), the image being the before image of
 * op 'd' (then a tombstone after each keyed row when tombstones) and the after image otherwise. */
static PyObject *envelopes(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 9) { PyErr_SetString(PyExc_TypeError, "envelopes takes 9 arguments"); return NULL; }
    PyObject *rows = args[1], *topic = args[2], *src = args[3], *post = args[4], *post_d = args[5];
    PyObject *post_c = args[6];
    if (!PyUnicode_Check(args[0]) || PyUnicode_GET_LENGTH(args[0]) != 1 || !PyList_Check(rows)
        || !PyUnicode_Check(topic) || !PyBytes_Check(src) || !PyBytes_Check(post) || !PyBytes_Check(post_d)
        || !PyBytes_Check(post_c)) {
        PyErr_SetString(PyExc_TypeError, "envelopes(op: str, rows: list, topic: str, src, post, post_d, post_c: bytes, "
                                         "first_row: int, tombstones: bool)");
        return NULL;
    }
    Py_UCS4 op = PyUnicode_READ_CHAR(args[0], 0);
    Py_ssize_t first = PyLong_AsSsize_t(args[7]);
    int tombstones = PyObject_IsTrue(args[8]);
    if ((first == -1 && PyErr_Occurred()) || tombstones < 0) return NULL;
    if (first < 0) { PyErr_SetString(PyExc_ValueError, "first_row must be >= 0"); return NULL; }
    Py_ssize_t n = PyList_GET_SIZE(rows);
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *r = PyList_GET_ITEM(rows, j);
        Py_ssize_t i = first + j;
        int rc;
        if (op == 'u') {
            if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 4 || !bytes_or_none(PyTuple_GET_ITEM(r, 0), 0)
                || !bytes_or_none(PyTuple_GET_ITEM(r, 1), 0) || !bytes_or_none(PyTuple_GET_ITEM(r, 2), 1)
                || !bytes_or_none(PyTuple_GET_ITEM(r, 3), 1))
                goto badrow;
            PyObject *before = PyTuple_GET_ITEM(r, 0), *after = PyTuple_GET_ITEM(r, 1);
            PyObject *old = PyTuple_GET_ITEM(r, 2), *new = PyTuple_GET_ITEM(r, 3);
            int moved = 0;
            if (old != Py_None) {
                moved = PyObject_RichCompareBool(old, new, Py_NE);
                if (moved < 0) goto fail;
            }
            if (moved) {  /* a primary-key change: delete the old row, create the new */
                rc = record(out, topic, old, envelope(before, NULL, src, i, post_d));
                if (rc == 0 && tombstones) { Py_INCREF(Py_None); rc = record(out, topic, old, Py_None); }
                if (rc == 0) rc = record(out, topic, new, envelope(NULL, after, src, i, post_c));
            } else {
                rc = record(out, topic, new, envelope(before, after, src, i, post));
            }
        } else {
            if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2 || !bytes_or_none(PyTuple_GET_ITEM(r, 0), 0)
                || !bytes_or_none(PyTuple_GET_ITEM(r, 1), 1))
                goto badrow;
            PyObject *image = PyTuple_GET_ITEM(r, 0), *key = PyTuple_GET_ITEM(r, 1);
            if (op == 'd') {
                rc = record(out, topic, key, envelope(image, NULL, src, i, post));
                if (rc == 0 && tombstones && key != Py_None) { Py_INCREF(Py_None); rc = record(out, topic, key, Py_None); }
            } else {
                rc = record(out, topic, key, envelope(NULL, image, src, i, post));
            }
        }
        if (rc < 0) goto fail;
    }
    return out;
badrow:
    PyErr_SetString(PyExc_TypeError, "envelopes: rows of op 'u' are (bytes, bytes, bytes | None, bytes | None), "
                                     "others (bytes, bytes | None)");
fail:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"decode_rows", (PyCFunction)(void (*)(void))decode_rows, METH_FASTCALL,
     "decode_rows(data, pos, end, spec, cols, cols2) -> list of row dicts, or of (before, after) when cols2"},
    {"encode_rows", (PyCFunction)(void (*)(void))encode_rows, METH_FASTCALL,
     "encode_rows(data, pos, end, jspec, cols, cols2, keys, dumps) -> list of (row JSON, key JSON | None), or "
     "of (before, after, old key, new key) when cols2"},
    {"envelopes", (PyCFunction)(void (*)(void))envelopes, METH_FASTCALL,
     "envelopes(op, rows, topic, src, post, post_d, post_c, first_row, tombstones) -> list of (topic, key, value)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_myspeed", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__myspeed(void) { return PyModule_Create(&module); }
