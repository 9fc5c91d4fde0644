/* _ring: single-producer single-consumer byte-record rings in shared memory.
 *
 * Owns the atomic protocol on one ring's control block and data area as
 * laid out in layout.h: record framing, wrap markers, publishing head and
 * tail (release/acquire) and the reader_sleeping handshake (seq_cst fences).
 * Every function takes the shared buffer and the byte offset of the ring.
 *
 * Must not: do I/O, block, take locks, call back into Python code, or keep
 * any state between calls.  Everything lives in the shared buffer so the
 * pure-Python twin (ring_py.py) produces the same bytes and results.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "ringcore.h"

/* The protocol steps themselves are ringcore.h's, shared with the
   acceptor's native loop; this file maps them to Python calls. */
typedef struct {
    Py_buffer view;
    rc_ring rc;
} ring_t;

#define U64_AT(r, off) RC_U64(&(r)->rc, off)
#define HEAD(r) U64_AT(r, MPG_RING_HEAD_OFF)
#define TAIL(r) U64_AT(r, MPG_RING_TAIL_OFF)
#define HEAD_CACHE(r) U64_AT(r, MPG_RING_HEAD_CACHE_OFF)
#define CAPACITY(r) U64_AT(r, MPG_RING_CAPACITY_OFF)
#define SLEEPING(r) RC_SLEEPING(&(r)->rc)

#define RELAXED memory_order_relaxed
#define ACQUIRE memory_order_acquire
#define RELEASE memory_order_release

static int
valid_capacity(uint64_t cap)
{
    return cap >= MPG_RING_MIN_CAPACITY && cap <= MPG_RING_MAX_CAPACITY
           && (cap & (cap - 1)) == 0;
}

/* Checks shared with ring_py._open: same order, same messages. */
static int
check_geometry(Py_ssize_t len, Py_ssize_t off, const uint64_t *cap_arg,
               ring_t *r)
{
    if (off < 0 || off % MPG_CACHE_LINE != 0) {
        PyErr_Format(PyExc_ValueError,
                     "ring offset %zd is not a non-negative multiple of %d",
                     off, MPG_CACHE_LINE);
        return -1;
    }
    if (off > len - MPG_RING_CTRL_SIZE) {
        PyErr_Format(PyExc_ValueError,
                     "ring control block at offset %zd does not fit in a "
                     "%zd-byte buffer", off, len);
        return -1;
    }
    r->rc.ctrl = (unsigned char *)r->view.buf + off;
    if ((uintptr_t)r->rc.ctrl % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "ring is not 8-byte aligned");
        return -1;
    }
    uint64_t cap = cap_arg ? *cap_arg
                           : atomic_load_explicit(CAPACITY(r), RELAXED);
    if (!valid_capacity(cap)) {
        PyErr_Format(PyExc_ValueError,
                     "ring capacity %llu at offset %zd is not a power of two "
                     "in [%d, %llu]", (unsigned long long)cap, off,
                     MPG_RING_MIN_CAPACITY,
                     (unsigned long long)MPG_RING_MAX_CAPACITY);
        return -1;
    }
    if (cap > (uint64_t)(len - off - MPG_RING_CTRL_SIZE)) {
        PyErr_Format(PyExc_ValueError,
                     "ring at offset %zd with capacity %llu does not fit in a "
                     "%zd-byte buffer", off, (unsigned long long)cap, len);
        return -1;
    }
    r->rc.cap = cap;
    r->rc.mask = cap - 1;
    r->rc.data = r->rc.ctrl + MPG_RING_DATA_OFF;
    return 0;
}

/* Borrow the buffer and locate the ring.  cap_arg is NULL except for init,
   where the capacity comes from the caller instead of the control block. */
static int
ring_open(ring_t *r, PyObject *mem, PyObject *off_obj, const uint64_t *cap_arg)
{
    Py_ssize_t off = PyNumber_AsSsize_t(off_obj, PyExc_OverflowError);
    if (off == -1 && PyErr_Occurred())
        return -1;
    if (PyObject_GetBuffer(mem, &r->view, PyBUF_WRITABLE) < 0)
        return -1;
    if (check_geometry(r->view.len, off, cap_arg, r) < 0) {
        PyBuffer_Release(&r->view);
        return -1;
    }
    return 0;
}

static void
ring_close(ring_t *r)
{
    PyBuffer_Release(&r->view);
}

static int
check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t expected)
{
    if (nargs == expected)
        return 1;
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)",
                 name, expected, nargs);
    return 0;
}

/* The argument check and ring_open of the functions taking (mem, off). */
static int
open_args(ring_t *r, const char *name, PyObject *const *args,
          Py_ssize_t nargs)
{
    if (!check_nargs(name, nargs, 2))
        return -1;
    return ring_open(r, args[0], args[1], NULL);
}

static int
corrupt(const char *what)
{
    PyErr_Format(PyExc_RuntimeError, "ring is corrupt: %s", what);
    return -1;
}

/* Copy one record in after tail without publishing it.  *tail and *head
   are the producer's working values.  1 = written, 0 = no room, -1 = error. */
static int
write_record(ring_t *r, uint64_t *tail, uint64_t *head,
             const char *src, Py_ssize_t n)
{
    switch (rc_write2(&r->rc, tail, head, src, (uint64_t)n, NULL, 0)) {
    case 1:
        return 1;
    case 0:
        return 0;
    case -1:
        PyErr_Format(PyExc_ValueError,
                     "record of %zd bytes exceeds the ring's limit of %llu",
                     n, (unsigned long long)rc_max_record(&r->rc));
        return -1;
    default:
        return corrupt("head is ahead of tail");
    }
}

/* Write one item (bytes fast path, any contiguous buffer otherwise). */
static int
write_object(ring_t *r, uint64_t *tail, uint64_t *head, PyObject *item)
{
    if (PyBytes_CheckExact(item))
        return write_record(r, tail, head, PyBytes_AS_STRING(item),
                            PyBytes_GET_SIZE(item));
    Py_buffer src;
    if (PyObject_GetBuffer(item, &src, PyBUF_SIMPLE) < 0)
        return -1;
    int rc = write_record(r, tail, head, src.buf, src.len);
    PyBuffer_Release(&src);
    return rc;
}

static PyObject *
ring_push(PyObject *Py_UNUSED(mod), PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("push", nargs, 3))
        return NULL;
    ring_t r;
    if (ring_open(&r, args[0], args[1], NULL) < 0)
        return NULL;
    uint64_t tail = atomic_load_explicit(TAIL(&r), RELAXED);
    uint64_t head = atomic_load_explicit(HEAD_CACHE(&r), RELAXED);
    int rc = write_object(&r, &tail, &head, args[2]);
    if (rc == 1)
        atomic_store_explicit(TAIL(&r), tail, RELEASE);
    ring_close(&r);
    if (rc < 0)
        return NULL;
    return PyBool_FromLong(rc);
}

static PyObject *
ring_push_many(PyObject *Py_UNUSED(mod), PyObject *const *args,
               Py_ssize_t nargs)
{
    if (!check_nargs("push_many", nargs, 3))
        return NULL;
    PyObject *seq = PySequence_Fast(args[2], "push_many needs a sequence");
    if (seq == NULL)
        return NULL;
    ring_t r;
    if (ring_open(&r, args[0], args[1], NULL) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    uint64_t tail = atomic_load_explicit(TAIL(&r), RELAXED);
    uint64_t head = atomic_load_explicit(HEAD_CACHE(&r), RELAXED);
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq), i;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    int rc = 1;
    for (i = 0; i < count; i++) {
        rc = write_object(&r, &tail, &head, items[i]);
        if (rc != 1)
            break;
    }
    /* On an error nothing is published, so the ring is as it was. */
    if (rc >= 0 && i > 0)
        atomic_store_explicit(TAIL(&r), tail, RELEASE);
    ring_close(&r);
    Py_DECREF(seq);
    if (rc < 0)
        return NULL;
    return PyLong_FromSsize_t(i);
}

/* Copy up to max_items records from *head towards tail into list, moving
   *head past them (and past wrap markers).  0 = ok, -1 = error set. */
static int
read_records(ring_t *r, uint64_t *head, uint64_t tail, Py_ssize_t max_items,
             PyObject *list)
{
    const unsigned char *rec;
    uint32_t n;
    while (PyList_GET_SIZE(list) < max_items) {
        int got = rc_peek(&r->rc, head, tail, &rec, &n);
        if (got == 0)
            break;
        if (got < 0)
            return corrupt("record length or wrap marker out of bounds");
        PyObject *item = PyBytes_FromStringAndSize((const char *)rec, n);
        if (item == NULL)
            return -1;
        int failed = PyList_Append(list, item);
        Py_DECREF(item);
        if (failed)
            return -1;
        *head += rc_record_size(n);
    }
    return 0;
}

static PyObject *
ring_pop_batch(PyObject *Py_UNUSED(mod), PyObject *const *args,
               Py_ssize_t nargs)
{
    if (!check_nargs("pop_batch", nargs, 3))
        return NULL;
    Py_ssize_t max_items = PyNumber_AsSsize_t(args[2], PyExc_OverflowError);
    if (max_items == -1 && PyErr_Occurred())
        return NULL;
    if (max_items < 0) {
        PyErr_SetString(PyExc_ValueError, "max_items must be >= 0");
        return NULL;
    }
    ring_t r;
    if (ring_open(&r, args[0], args[1], NULL) < 0)
        return NULL;
    PyObject *list = PyList_New(0);
    uint64_t head = atomic_load_explicit(HEAD(&r), RELAXED);
    uint64_t start = head;
    uint64_t tail = atomic_load_explicit(TAIL(&r), ACQUIRE);
    int rc = -1;
    if (list == NULL)
        ;
    else if (tail - head > r.rc.cap)
        corrupt("tail is more than capacity ahead of head");
    else
        rc = read_records(&r, &head, tail, max_items, list);
    /* Release: the copies above happen before the producer may reuse. */
    if (rc == 0 && head != start)
        atomic_store_explicit(HEAD(&r), head, RELEASE);
    ring_close(&r);
    if (rc < 0) {
        Py_XDECREF(list);
        return NULL;
    }
    return list;
}

static PyObject *
ring_reader_idle(PyObject *Py_UNUSED(mod), PyObject *const *args,
                 Py_ssize_t nargs)
{
    ring_t r;
    if (open_args(&r, "reader_idle", args, nargs) < 0)
        return NULL;
    /* Its fence pairs with the one in writer_should_ring: either the
       producer sees the flag, or we see its tail. */
    int idle = rc_reader_idle(&r.rc);
    ring_close(&r);
    return PyBool_FromLong(idle);
}

static PyObject *
ring_reader_awake(PyObject *Py_UNUSED(mod), PyObject *const *args,
                  Py_ssize_t nargs)
{
    ring_t r;
    if (open_args(&r, "reader_awake", args, nargs) < 0)
        return NULL;
    rc_reader_awake(&r.rc);
    ring_close(&r);
    Py_RETURN_NONE;
}

static PyObject *
ring_writer_should_ring(PyObject *Py_UNUSED(mod), PyObject *const *args,
                        Py_ssize_t nargs)
{
    ring_t r;
    if (open_args(&r, "writer_should_ring", args, nargs) < 0)
        return NULL;
    /* A plain load first keeps the line shared while the reader is awake;
       only a set flag costs the exchange. */
    int ring = rc_writer_should_ring(&r.rc);
    ring_close(&r);
    return PyBool_FromLong(ring);
}

static PyObject *
ring_used(PyObject *Py_UNUSED(mod), PyObject *const *args, Py_ssize_t nargs)
{
    ring_t r;
    if (open_args(&r, "used", args, nargs) < 0)
        return NULL;
    uint64_t head = atomic_load_explicit(HEAD(&r), ACQUIRE);
    uint64_t tail = atomic_load_explicit(TAIL(&r), ACQUIRE);
    ring_close(&r);
    return PyLong_FromUnsignedLongLong(tail - head);
}

static PyObject *
ring_reset(PyObject *Py_UNUSED(mod), PyObject *const *args, Py_ssize_t nargs)
{
    ring_t r;
    if (open_args(&r, "reset", args, nargs) < 0)
        return NULL;
    atomic_store_explicit(HEAD(&r), 0, RELAXED);
    atomic_store_explicit(TAIL(&r), 0, RELAXED);
    atomic_store_explicit(HEAD_CACHE(&r), 0, RELAXED);
    atomic_store_explicit(SLEEPING(&r), 0, RELAXED);
    atomic_thread_fence(memory_order_seq_cst);
    ring_close(&r);
    Py_RETURN_NONE;
}

static PyObject *
ring_init(PyObject *Py_UNUSED(mod), PyObject *const *args, Py_ssize_t nargs)
{
    if (!check_nargs("init", nargs, 3))
        return NULL;
    Py_ssize_t cap = PyNumber_AsSsize_t(args[2], PyExc_OverflowError);
    if (cap == -1 && PyErr_Occurred())
        return NULL;
    /* A negative capacity reads as a huge one and fails the check. */
    uint64_t cap64 = (uint64_t)cap;
    ring_t r;
    if (ring_open(&r, args[0], args[1], &cap64) < 0)
        return NULL;
    /* Only the control block: records are framed, so stale data bytes are
     * never read, and leaving the data area alone keeps its pages untouched
     * (a fresh memfd reads as zeros without costing memory). */
    memset(r.rc.ctrl, 0, MPG_RING_CTRL_SIZE);
    atomic_store_explicit(CAPACITY(&r), cap64, RELAXED);
    atomic_thread_fence(memory_order_seq_cst);
    ring_close(&r);
    Py_RETURN_NONE;
}

static PyMethodDef ring_methods[] = {
    {"push", (PyCFunction)(void (*)(void))ring_push, METH_FASTCALL,
     "push(mem, off, data) -> bool: append one record; False when full."},
    {"push_many", (PyCFunction)(void (*)(void))ring_push_many, METH_FASTCALL,
     "push_many(mem, off, items) -> int: append records in order up to the "
     "first that does not fit; one tail publish."},
    {"pop_batch", (PyCFunction)(void (*)(void))ring_pop_batch, METH_FASTCALL,
     "pop_batch(mem, off, max_items) -> list[bytes]: one head publish."},
    {"reader_idle", (PyCFunction)(void (*)(void))ring_reader_idle,
     METH_FASTCALL,
     "reader_idle(mem, off) -> bool: announce sleep; True if the reader may "
     "block on its doorbell, False (flag cleared) if records arrived."},
    {"reader_awake", (PyCFunction)(void (*)(void))ring_reader_awake,
     METH_FASTCALL, "reader_awake(mem, off): clear reader_sleeping."},
    {"writer_should_ring", (PyCFunction)(void (*)(void))ring_writer_should_ring,
     METH_FASTCALL,
     "writer_should_ring(mem, off) -> bool: after publishing, take the "
     "reader_sleeping flag; True means ring the doorbell."},
    {"used", (PyCFunction)(void (*)(void))ring_used, METH_FASTCALL,
     "used(mem, off) -> int: bytes in flight, padding included."},
    {"reset", (PyCFunction)(void (*)(void))ring_reset, METH_FASTCALL,
     "reset(mem, off): empty the ring; only while neither side runs."},
    {"init", (PyCFunction)(void (*)(void))ring_init, METH_FASTCALL,
     "init(mem, off, capacity): zero the control block (not the data), set the "
     "capacity."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef ring_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mpgearman.native._ring",
    .m_doc = "SPSC byte-record rings in shared memory (see layout.h).",
    .m_size = 0,
    .m_methods = ring_methods,
};

PyMODINIT_FUNC
PyInit__ring(void)
{
    PyObject *m = PyModule_Create(&ring_module);
    if (m != NULL && PyModule_AddIntConstant(m, "LAYOUT_VERSION",
                                             MPG_LAYOUT_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
