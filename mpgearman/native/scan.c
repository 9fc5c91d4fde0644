/* Framing scan of complete small Gearman request packets (module _scan).
 *
 * Owns: walking consecutive well-formed binary packets in a byte buffer and
 * reporting where each body lies. It does no I/O, allocates nothing but its
 * result, and calls into no Python object except to parse its arguments and
 * build the result. Everything it does not accept (text lines, incomplete,
 * bad magic, bad type, big packets) is left to the Python decoder's slow path
 * at the returned stop position. Pure-Python twin: scan_py.py.
 *
 *   scan_packets(buf, pos, max_small) -> ([(type, body_start, body_end)], stop)
 *
 * Header, all big-endian:
 *
 *   +---------+---------+---------+----------------------+
 *   | "\0REQ" | type u32| size u32| body (size bytes)    |
 *   +---------+---------+---------+----------------------+
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define HEADER_SIZE 12
#define MAX_TYPE 42

static inline uint32_t
be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Appends one (type, start, end) tuple; returns -1 with an exception set. */
static int
append_frame(PyObject *frames, uint32_t type, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *frame = Py_BuildValue("(Inn)", (unsigned int)type, start, end);
    if (frame == NULL)
        return -1;
    int rc = PyList_Append(frames, frame);
    Py_DECREF(frame);
    return rc;
}

static PyObject *
scan_packets(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, max_small;

    if (!PyArg_ParseTuple(args, "y*nn:scan_packets", &view, &pos, &max_small))
        return NULL;
    if (pos < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pos must not be negative");
        return NULL;
    }
    PyObject *frames = PyList_New(0);
    if (frames == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *buf = view.buf;
    const Py_ssize_t len = view.len;

    /* pos may lie beyond len: then nothing is scanned and stop == pos. */
    while (pos <= len && len - pos >= HEADER_SIZE) {
        const unsigned char *h = buf + pos;
        if (memcmp(h, "\0REQ", 4) != 0)
            break;
        uint32_t type = be32(h + 4);
        uint32_t size = be32(h + 8);
        if (type < 1 || type > MAX_TYPE)
            break;
        /* Compare as 64-bit so a size near 4 GiB never wraps. */
        if (max_small < 0 || (unsigned long long)size > (unsigned long long)max_small)
            break;
        if ((unsigned long long)size > (unsigned long long)(len - pos - HEADER_SIZE))
            break;
        Py_ssize_t start = pos + HEADER_SIZE;
        Py_ssize_t end = start + (Py_ssize_t)size;
        if (append_frame(frames, type, start, end) < 0) {
            Py_DECREF(frames);
            PyBuffer_Release(&view);
            return NULL;
        }
        pos = end;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(Nn)", frames, pos);
}

static PyMethodDef scan_methods[] = {
    {"scan_packets", scan_packets, METH_VARARGS,
     "scan_packets(buf, pos, max_small) -> (frames, stop)\n\n"
     "Walk consecutive complete \\0REQ packets with 1 <= type <= 42 and\n"
     "size <= max_small from pos; frames are (type, body_start, body_end)."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot scan_slots[] = {
    {0, NULL},
};

static struct PyModuleDef scan_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_scan",
    .m_doc = "Framing scan of complete small Gearman request packets.",
    .m_size = 0,
    .m_methods = scan_methods,
    .m_slots = scan_slots,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
    return PyModuleDef_Init(&scan_module);
}
