/* _board: the job status board's atomic accesses (layout in layout.h).
 *
 * Owns the seqlock protocol of one slot (the coordinator writes, acceptors
 * read) and acquire/release access to the board's u64 counters.  Every
 * function takes the shared buffer and a byte offset.
 *
 * Must not: do I/O, block, take locks, call back into Python, or keep
 * state between calls.  The pure-Python twin is board_py.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdatomic.h>
#include <stdint.h>

#include "layout.h"

#define U32(p, off) ((_Atomic uint32_t *)((p) + (off)))
#define U64(p, off) ((_Atomic uint64_t *)((p) + (off)))
#define RELAXED memory_order_relaxed

/* Borrow `size` writable (or readable) bytes at `off` of `obj`. */
static unsigned char *
at(PyObject *obj, Py_ssize_t off, Py_ssize_t size, int writable, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0)
        return NULL;
    if (off < 0 || off % 8 != 0 || off > view->len - size
        || ((uintptr_t)view->buf + off) % 8 != 0) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "offset %zd is not an aligned place for "
                     "%zd bytes in a %zd-byte buffer", off, size, view->len);
        return NULL;
    }
    return (unsigned char *)view->buf + off;
}

static void
store_fields(unsigned char *s, uint64_t handle, uint32_t running, uint32_t num,
             uint32_t den)
{
    uint32_t seq = atomic_load_explicit(U32(s, MPG_SLOT_SEQ_OFF), RELAXED);
    atomic_store_explicit(U32(s, MPG_SLOT_SEQ_OFF), seq + 1, RELAXED);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(U32(s, MPG_SLOT_RUNNING_OFF), running, RELAXED);
    atomic_store_explicit(U64(s, MPG_SLOT_HANDLE_OFF), handle, RELAXED);
    atomic_store_explicit(U32(s, MPG_SLOT_NUM_OFF), num, RELAXED);
    atomic_store_explicit(U32(s, MPG_SLOT_DEN_OFF), den, RELAXED);
    atomic_store_explicit(U32(s, MPG_SLOT_SEQ_OFF), seq + 2, memory_order_release);
}

static PyObject *
board_write(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *mem;
    Py_ssize_t off;
    unsigned long long handle;
    unsigned int running, num, den;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "OnKIII:write", &mem, &off, &handle, &running, &num, &den))
        return NULL;
    unsigned char *s = at(mem, off, MPG_SLOT_SIZE, 1, &view);
    if (s == NULL)
        return NULL;
    store_fields(s, handle, running, num, den);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *
board_read(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *mem;
    Py_ssize_t off;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "On:read", &mem, &off))
        return NULL;
    unsigned char *s = at(mem, off, MPG_SLOT_SIZE, 0, &view);
    if (s == NULL)
        return NULL;
    uint64_t handle;
    uint32_t seq, running, num, den, coll;
    int tries = 0;
    for (;;) {
        if (++tries > MPG_SLOT_READ_TRIES) {
            /* The writer is stuck or dead halfway through this slot. */
            PyBuffer_Release(&view);
            Py_RETURN_NONE;
        }
        seq = atomic_load_explicit(U32(s, MPG_SLOT_SEQ_OFF), memory_order_acquire);
        if (seq & 1)
            continue;   /* the coordinator is halfway through this slot */
        running = atomic_load_explicit(U32(s, MPG_SLOT_RUNNING_OFF), RELAXED);
        handle = atomic_load_explicit(U64(s, MPG_SLOT_HANDLE_OFF), RELAXED);
        num = atomic_load_explicit(U32(s, MPG_SLOT_NUM_OFF), RELAXED);
        den = atomic_load_explicit(U32(s, MPG_SLOT_DEN_OFF), RELAXED);
        coll = atomic_load_explicit(U32(s, MPG_SLOT_COLLISIONS_OFF), RELAXED);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(U32(s, MPG_SLOT_SEQ_OFF), RELAXED) == seq)
            break;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("KIIII", (unsigned long long)handle, running, num, den, coll);
}

static PyObject *
board_set_collisions(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *mem;
    Py_ssize_t off;
    unsigned int value;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "OnI:set_collisions", &mem, &off, &value))
        return NULL;
    unsigned char *s = at(mem, off, MPG_SLOT_SIZE, 1, &view);
    if (s == NULL)
        return NULL;
    atomic_store_explicit(U32(s, MPG_SLOT_COLLISIONS_OFF), value, memory_order_release);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *
board_load(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *mem;
    Py_ssize_t off;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "On:load", &mem, &off))
        return NULL;
    unsigned char *p = at(mem, off, 8, 0, &view);
    if (p == NULL)
        return NULL;
    uint64_t v = atomic_load_explicit(U64(p, 0), memory_order_acquire);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *
board_store(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *mem;
    Py_ssize_t off;
    unsigned long long value;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "OnK:store", &mem, &off, &value))
        return NULL;
    unsigned char *p = at(mem, off, 8, 1, &view);
    if (p == NULL)
        return NULL;
    atomic_store_explicit(U64(p, 0), value, memory_order_release);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"write", board_write, METH_VARARGS,
     "write(mem, off, handle_no, running, num, den): rewrite a slot (seqlock)."},
    {"read", board_read, METH_VARARGS,
     "read(mem, off) -> (handle_no, running, num, den, collisions), consistent;\n"
     "None when no consistent copy came in MPG_SLOT_READ_TRIES tries."},
    {"set_collisions", board_set_collisions, METH_VARARGS,
     "set_collisions(mem, off, value)"},
    {"load", board_load, METH_VARARGS, "load(mem, off) -> u64 (acquire)"},
    {"store", board_store, METH_VARARGS, "store(mem, off, value) (release)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_board", "Job status board: seqlock slots and counters.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__board(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "LAYOUT_VERSION", MPG_BOARD_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
