/* C fast path of the mapper's event parsing (see mappers/envelope.py).
 *
 * match(value, template) -> (cut, number, op) | None tells whether the change event `value` ends with
 * the template's text joined by a number as wide (digits, no leading zero): `cut` is where that text's
 * ,"source":{ starts, `number` the number, `op` the op letter. The template tuple is
 * (size, at, end, zero, op_at, ops): the text's length from ,"source":{ on, where the number starts and
 * ends in it, the first digit not allowed (-1: none), where the op letter is (from the end), and by op
 * letter (its byte value) None or (op, parts) -- the text cut at the number's places. Done in Python,
 * the comparison cost what skipping the source block saved; here it is a few memcmp calls.
 *
 * Failure story: a template of another shape raises TypeError or ValueError (a bug); a value that does
 * not match gives None, and the caller parses it in full.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

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

static PyMethodDef methods[] = {
    {"match", (PyCFunction)(void (*)(void))match, METH_FASTCALL,
     "match(value, template) -> (cut, number, op) | None: see mappers/envelope.py"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mapspeed", NULL, -1, methods};

PyMODINIT_FUNC PyInit__mapspeed(void) { return PyModule_Create(&module); }
