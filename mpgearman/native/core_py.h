/* The Python object of the C core, shared by its binding files (core.c, the
 * table operations; core_rings_py.c, the rings served in C). */
#ifndef MPG_CORE_PY_H
#define MPG_CORE_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core_rings.h"

typedef struct {
    PyObject_HEAD
    core k;
    int ready;
    PyObject *clock;
    PyObject *share, *release;      /* share(handle, name, size) -> name or None */
    PyObject *keep;                 /* keep(handle, name, size, on) -> bool */
    PyObject *board;                /* claim/show/release, or None */
    rings r;                    /* valid while has_rings */
    Py_buffer mem;              /* the shared segment the rings live in */
    int has_rings;
} CoreObject;

PyObject *CoreRings_attach(CoreObject *self, PyObject *const *a, Py_ssize_t n);
PyObject *CoreRings_serve(CoreObject *self, PyObject *const *a, Py_ssize_t n);
PyObject *CoreRings_put(CoreObject *self, PyObject *const *a, Py_ssize_t n);
PyObject *CoreRings_route(CoreObject *self, PyObject *const *a, Py_ssize_t n);
PyObject *CoreRings_publish(CoreObject *self, PyObject *const *a, Py_ssize_t n);
PyObject *CoreRings_set_gen(CoreObject *self, PyObject *const *a, Py_ssize_t n);
PyObject *CoreRings_take_pending(CoreObject *self, PyObject *const *a, Py_ssize_t n);
void CoreRings_detach(CoreObject *self);
PyObject *CoreRings_detach_py(CoreObject *self, PyObject *const *a, Py_ssize_t n);

#define CORE_RINGS_METHODS \
    {"attach_rings", (PyCFunction)(void (*)(void))CoreRings_attach, METH_FASTCALL, \
     "attach_rings(mem, in_offsets, out_offsets, merge_limit, piece): serve these rings"}, \
    {"detach_rings", (PyCFunction)(void (*)(void))CoreRings_detach_py, METH_FASTCALL, \
     "detach_rings(): let go of the segment (records still pending are dropped)"}, \
    {"serve", (PyCFunction)(void (*)(void))CoreRings_serve, METH_FASTCALL, \
     "serve(slot, budget) -> (records taken, first non-PACKET record or None, " \
     "None or (requests that cost their connection, the last one's conn, type))"}, \
    {"put", (PyCFunction)(void (*)(void))CoreRings_put, METH_FASTCALL, \
     "put(conn, data, kind[, name, size]): output made outside the core (0 send, " \
     "1 close, 2 data as the head of a spooled send of the spool file name, size bytes)"}, \
    {"route", (PyCFunction)(void (*)(void))CoreRings_route, METH_FASTCALL, \
     "route(): output into pending records (a dead generation's dropped)"}, \
    {"publish", (PyCFunction)(void (*)(void))CoreRings_publish, METH_FASTCALL, \
     "publish() -> (slots to ring, slots with records still pending)"}, \
    {"set_gen", (PyCFunction)(void (*)(void))CoreRings_set_gen, METH_FASTCALL, \
     "set_gen(slot, generation): the live acceptor generation of a slot"}, \
    {"take_pending", (PyCFunction)(void (*)(void))CoreRings_take_pending, METH_FASTCALL, \
     "take_pending(slot) -> [records] not yet on the ring, now dropped"},

#endif
