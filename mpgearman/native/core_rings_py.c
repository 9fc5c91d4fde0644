/* The Python calls of the rings served in C (core_rings.c). */
#include "core_py.h"

static int need_rings(CoreObject *self)
{
    if (self->has_rings)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "no rings attached");
    return 0;
}

static int slot_arg(CoreObject *self, PyObject *o, uint32_t *i)
{
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || (unsigned long)v >= self->r.n) {
        PyErr_Format(PyExc_IndexError, "slot %ld out of range", v);
        return -1;
    }
    *i = (uint32_t)v;
    return 0;
}

static uint64_t *offsets(PyObject *seq, Py_ssize_t *n)
{
    PyObject *fast = PySequence_Fast(seq, "offsets must be a sequence");
    if (fast == NULL)
        return NULL;
    *n = PySequence_Fast_GET_SIZE(fast);
    uint64_t *v = PyMem_Calloc(*n ? (size_t)*n : 1, sizeof(uint64_t));
    for (Py_ssize_t i = 0; v && i < *n; i++) {
        v[i] = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(fast, i));
        if (PyErr_Occurred()) {
            PyMem_Free(v);
            v = NULL;
        }
    }
    Py_DECREF(fast);
    if (v == NULL && !PyErr_Occurred())
        PyErr_NoMemory();
    return v;
}

void CoreRings_detach(CoreObject *self)
{
    if (!self->has_rings)
        return;
    rings_fini(&self->r);
    PyBuffer_Release(&self->mem);
    self->has_rings = 0;
}

PyObject *CoreRings_detach_py(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    (void)a; (void)n;
    CoreRings_detach(self);
    Py_RETURN_NONE;
}

PyObject *CoreRings_attach(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    if (n != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "attach_rings(mem, in_offsets, out_offsets, merge_limit, piece)");
        return NULL;
    }
    unsigned long long limit = PyLong_AsUnsignedLongLong(a[3]);
    unsigned long long piece = PyLong_AsUnsignedLongLong(a[4]);
    if (PyErr_Occurred())
        return NULL;
    Py_ssize_t nin, nout;
    uint64_t *in = offsets(a[1], &nin), *out = in ? offsets(a[2], &nout) : NULL;
    if (out == NULL || nin != nout || nin > 256) {
        if (out && !PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, nin != nout
                            ? "in_offsets and out_offsets differ in length"
                            : "at most 256 ring pairs");
        PyMem_Free(in);
        PyMem_Free(out);
        return NULL;
    }
    CoreRings_detach(self);
    int rc = -1;
    if (PyObject_GetBuffer(a[0], &self->mem, PyBUF_WRITABLE) == 0) {
        rc = rings_init(&self->r, self->mem.buf, (uint64_t)self->mem.len, (uint32_t)nin,
                        in, out, limit, piece);
        if (rc < 0) {
            rings_fini(&self->r);
            PyBuffer_Release(&self->mem);
            if (rc == -1)
                PyErr_NoMemory();
            else
                PyErr_SetString(PyExc_ValueError, "a ring does not fit the buffer");
        }
    }
    PyMem_Free(in);
    PyMem_Free(out);
    if (rc < 0)
        return NULL;
    self->has_rings = 1;
    Py_RETURN_NONE;
}

PyObject *CoreRings_serve(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    uint32_t i;
    if (n != 2) {
        PyErr_SetString(PyExc_TypeError, "serve(slot, budget)");
        return NULL;
    }
    if (!need_rings(self) || slot_arg(self, a[0], &i) < 0)
        return NULL;
    long budget = PyLong_AsLong(a[1]);
    if (budget == -1 && PyErr_Occurred())
        return NULL;
    const unsigned char *rec;
    uint32_t len;
    int64_t got = rings_serve(&self->r, &self->k, i, budget > 0 ? (uint32_t)budget : 0,
                              &rec, &len);
    if (got < 0) {
        PyErr_Format(PyExc_RuntimeError, "inbound ring %u is corrupt", i);
        return NULL;
    }
    PyObject *r = rec ? PyBytes_FromStringAndSize((const char *)rec, len) : Py_NewRef(Py_None);
    if (rec)
        rings_release(&self->r, i);
    if (r == NULL)
        return NULL;
    if (self->r.contained) {    /* (taken, record, (count, conn, type)) */
        uint64_t count = self->r.contained;
        self->r.contained = 0;
        return Py_BuildValue("(LN(KLi))", (long long)got, r, (unsigned long long)count,
                             (long long)self->r.bad_conn, self->r.bad_type);
    }
    return Py_BuildValue("(LNO)", (long long)got, r, Py_None);
}

PyObject *CoreRings_put(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    if ((n != 3 && n != 5) || !PyBytes_Check(a[1])) {
        PyErr_SetString(PyExc_TypeError, "put(conn, data: bytes, kind[, name: str, size])");
        return NULL;
    }
    long long conn = PyLong_AsLongLong(a[0]);
    long kind = PyLong_AsLong(a[2]);
    if (PyErr_Occurred())
        return NULL;
    if (kind < 0 || kind > 2 || (kind == 2) != (n == 5)) {
        PyErr_SetString(PyExc_ValueError,
                        "kind must be 0 (send), 1 (close) or 2 (spooled, with name and size)");
        return NULL;
    }
    const char *data = PyBytes_AS_STRING(a[1]);
    Py_ssize_t len = PyBytes_GET_SIZE(a[1]);
    int rc;
    if (kind == 2) {            /* head, then the spool file: as the core's own */
        Py_ssize_t nlen;
        const char *name = PyUnicode_AsUTF8AndSize(a[3], &nlen);
        unsigned long long size = PyLong_AsUnsignedLongLong(a[4]);
        if (name == NULL || PyErr_Occurred())
            return NULL;
        if (len == 0 || len > UINT32_MAX || nlen == 0 || nlen > UINT16_MAX) {
            PyErr_SetString(PyExc_ValueError, "a spooled send needs a head and a name");
            return NULL;
        }
        rc = out_put_spooled(&self->k, conn, data, (uint32_t)len, name, (uint32_t)nlen, size);
    } else {
        rc = out_put(&self->k, conn, data, (uint64_t)len, (int)kind);
    }
    if (rc < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

PyObject *CoreRings_route(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    (void)a; (void)n;
    if (!need_rings(self))
        return NULL;
    if (self->k.out.failed) {   /* a batch lost in a Python-side call */
        self->k.out.failed = 0;
        self->k.out.n = 0;
        self->k.out.used = 0;
    }
    if (rings_route(&self->r, &self->k) < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

PyObject *CoreRings_publish(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    (void)a; (void)n;
    if (!need_rings(self))
        return NULL;
    unsigned char bells[256];
    rings_publish(&self->r, bells);
    PyObject *ring = PyList_New(0), *waiting = PyList_New(0);
    for (uint32_t i = 0; ring && waiting && i < self->r.n; i++) {
        PyObject *slot = (bells[i] || self->r.pending[i].count) ? PyLong_FromUnsignedLong(i) : NULL;
        if ((bells[i] && PyList_Append(ring, slot) < 0)
            || (self->r.pending[i].count && PyList_Append(waiting, slot) < 0)) {
            Py_CLEAR(ring);
        }
        Py_XDECREF(slot);
    }
    if (ring == NULL || waiting == NULL) {
        Py_XDECREF(ring);
        Py_XDECREF(waiting);
        return NULL;
    }
    return Py_BuildValue("(NN)", ring, waiting);
}

PyObject *CoreRings_set_gen(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    uint32_t i;
    if (n != 2) {
        PyErr_SetString(PyExc_TypeError, "set_gen(slot, generation)");
        return NULL;
    }
    if (!need_rings(self) || slot_arg(self, a[0], &i) < 0)
        return NULL;
    long g = PyLong_AsLong(a[1]);
    if (g == -1 && PyErr_Occurred())
        return NULL;
    self->r.gens[i] = (uint16_t)(g & 0xFFFF);
    Py_RETURN_NONE;
}

PyObject *CoreRings_take_pending(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    uint32_t i;
    if (n != 1) {
        PyErr_SetString(PyExc_TypeError, "take_pending(slot)");
        return NULL;
    }
    if (!need_rings(self) || slot_arg(self, a[0], &i) < 0)
        return NULL;
    pendq *pq = &self->r.pending[i];
    PyObject *list = PyList_New(0);
    uint64_t at = pq->head;
    for (uint32_t x = 0; list && x < pq->count; x++) {
        uint32_t len;
        memcpy(&len, pq->buf + at, 4);
        PyObject *b = PyBytes_FromStringAndSize((const char *)pq->buf + at + 4, len);
        if (b == NULL || PyList_Append(list, b) < 0)
            Py_CLEAR(list);
        Py_XDECREF(b);
        at += 4 + (uint64_t)len;
    }
    if (list == NULL)
        return NULL;
    pq->count = 0;
    pq->head = pq->used = 0;
    return list;
}
