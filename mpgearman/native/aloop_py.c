/* _aloop's Python face: the Loop type (construction, teardown, methods) and
 * the module.  mpgearman/acceptor/native_loop.py builds a Loop from an
 * acceptor's configuration and runs it.
 */
#include "aloop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

static int
watch(al_loop *L, int fd, uint64_t tag)
{
    /* The doorbell is edge-triggered: each ring is one event and its
       counter is never read back (one syscall less per wake-up). */
    uint32_t events = tag == TAG_BELL ? EPOLLIN | EPOLLET : EPOLLIN;
    struct epoll_event ev = {.events = events, .data.u64 = tag};
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static int
setup_listeners(al_loop *L, PyObject *fds)
{
    PyObject *seq = PySequence_Fast(fds, "listen_fds must be a sequence");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > (Py_ssize_t)(sizeof L->lfds / sizeof L->lfds[0])) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "too many listening sockets");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long fd = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (fd == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        L->lfds[i] = (int)fd;
        if (watch(L, (int)fd, TAG_LISTEN | (uint64_t)i) < 0) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    L->nlisten = (int)n;
    L->listening = 1;
    return 0;
}

static int
setup_rings(al_loop *L, unsigned long long in_off, unsigned long long out_off)
{
    unsigned char *base = L->seg.buf;
    uint64_t len = (uint64_t)L->seg.len;
    if (rc_attach(&L->rin, base, len, in_off) < 0
        || rc_attach(&L->rout, base, len, out_off) < 0) {
        PyErr_SetString(PyExc_ValueError, "ring offsets do not fit the segment");
        return -1;
    }
    rc_producer_begin(&L->rin, &L->tail, &L->headc);
    L->budget = L->rin.cap / 2 ? L->rin.cap / 2 : 1;
    return 0;
}

static int
setup_counters(al_loop *L, PyObject *counters, unsigned line)
{
    if (counters == Py_None)
        return 0;
    if (PyObject_GetBuffer(counters, &L->ctr, PyBUF_WRITABLE) < 0)
        return -1;
    uint64_t at = MPG_CTR_PROCS_OFF + (uint64_t)line * MPG_CTR_LINE_SIZE;
    if (L->ctr.len < 0 || at + MPG_CTR_LINE_SIZE > (uint64_t)L->ctr.len) {
        PyErr_SetString(PyExc_ValueError, "counters line outside the mapping");
        return -1;
    }
    L->fig = (uint64_t *)((unsigned char *)L->ctr.buf + at);
    return 0;
}

/* The status board: its header says where the slots are. */
static int
setup_board(al_loop *L, PyObject *board, const char *prefix, Py_ssize_t plen)
{
    if (plen < 0 || (size_t)plen + 1 >= sizeof L->prefix) {
        PyErr_SetString(PyExc_ValueError, "handle prefix too long");
        return -1;
    }
    memcpy(L->prefix, prefix, (size_t)plen);
    L->prefix[plen] = ':';
    L->prefix_len = (size_t)plen + 1;
    if (board == Py_None)
        return 0;
    if (PyObject_GetBuffer(board, &L->board, PyBUF_SIMPLE) < 0)
        return -1;
    unsigned char *b = L->board.buf;
    uint32_t count;
    uint64_t slots;
    if (L->board.len < MPG_BOARD_DONE_OFF) {
        PyErr_SetString(PyExc_ValueError, "status board too small");
        return -1;
    }
    memcpy(&count, b + MPG_BOARD_COUNT_OFF, 4);
    memcpy(&slots, b + MPG_BOARD_SLOTS_OFF, 8);
    L->board_slots = MPG_BOARD_DONE_OFF + (uint64_t)count * MPG_BOARD_DONE_STRIDE;
    if (L->index >= count || !slots || (slots & (slots - 1)) || slots > (1ULL << 40)
        || L->board_slots + slots * MPG_SLOT_SIZE > (uint64_t)L->board.len) {
        PyErr_SetString(PyExc_ValueError, "status board does not fit its mapping");
        return -1;
    }
    L->board_mask = slots - 1;
    return 0;
}

static PyObject *
loop_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *names[] = {
        "listen_fds", "segment", "in_off", "out_off", "bell_fd", "coord_bell_fd",
        "inbox_fd", "index", "gen", "slots", "types", "max_payload", "stream_threshold",
        "max_queued_output", "max_spool_bytes", "request_timeout", "capacity",
        "spool_dir", "spool_tag", "counters", "counters_line", "board", "handle_prefix",
        NULL};
    PyObject *fds, *segment, *counters, *board;
    unsigned long long in_off, out_off, max_payload, threshold, max_queued, max_spool, cap;
    int bell, coord_bell, inbox;
    unsigned index, gen, slots, line;
    const char *types, *dir, *tag, *prefix;
    Py_ssize_t ntypes, nprefix;
    double timeout;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "$OOKKiiiIIIy#KKKKdKssOIOy#", names, &fds,
                                     &segment, &in_off, &out_off, &bell, &coord_bell,
                                     &inbox, &index, &gen, &slots, &types, &ntypes,
                                     &max_payload, &threshold, &max_queued, &max_spool,
                                     &timeout, &cap, &dir, &tag, &counters, &line, &board,
                                     &prefix, &nprefix))
        return NULL;
    if (ntypes != AL_MAX_TYPE + 1 || strlen(tag) >= 40 || !slots) {
        PyErr_SetString(PyExc_ValueError, "bad type table, spool tag or slots");
        return NULL;
    }
    al_loop *L = (al_loop *)type->tp_alloc(type, 0);
    if (L == NULL)
        return NULL;
    L->ep = L->spool_dir = -1;
    L->bell_fd = bell;
    L->coord_bell_fd = coord_bell;
    L->inbox_fd = inbox;
    L->index = index;
    L->gen = gen;
    L->slots = slots;
    memcpy(L->types, types, sizeof L->types);
    L->max_payload = max_payload;
    L->stream_threshold = threshold;
    L->max_queued = max_queued;
    L->max_spool = max_spool;
    L->request_timeout = timeout;
    L->capacity = cap;
    L->capacity_logged = -1;
    L->full_wait = 0.001;
    snprintf(L->tag, sizeof L->tag, "%s", tag);
    L->logs = PyList_New(0);
    L->rbuf = malloc(AL_RECV_SIZE);
    L->hash = calloc(1024, sizeof *L->hash);
    L->hash_mask = 1023;
    L->by_fd = calloc(1024, sizeof *L->by_fd);
    L->by_fd_cap = 1024;
    if (L->logs == NULL || L->rbuf == NULL || L->hash == NULL || L->by_fd == NULL) {
        Py_DECREF(L);
        return PyErr_NoMemory();
    }
    L->spool_dir = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    L->ep = epoll_create1(EPOLL_CLOEXEC);
    if (L->spool_dir < 0 || L->ep < 0) {
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, dir);
        Py_DECREF(L);
        return NULL;
    }
    if (PyObject_GetBuffer(segment, &L->seg, PyBUF_WRITABLE) < 0
        || setup_rings(L, in_off, out_off) < 0 || setup_counters(L, counters, line) < 0
        || setup_board(L, board, prefix, nprefix) < 0
        || setup_listeners(L, fds) < 0 || watch(L, bell, TAG_BELL) < 0
        || watch(L, inbox, TAG_INBOX) < 0) {
        Py_DECREF(L);
        return NULL;
    }
    return (PyObject *)L;
}

static void
loop_dealloc(al_loop *L)
{
    for (uint64_t i = 0; L->hash && i <= L->hash_mask; i++) {
        while (L->hash[i]) {
            al_conn *c = L->hash[i];
            L->hash[i] = c->hnext;
            al_free_output(c);
            if (c->spool_fd >= 0)
                close(c->spool_fd);
            free(c->spool_args);
            close(c->fd);
            free(c->in);
            free(c);
        }
    }
    free(L->hash);
    free(L->by_fd);
    free(L->pend);
    free(L->rbuf);
    if (L->ep >= 0)
        close(L->ep);
    if (L->spool_dir >= 0)
        close(L->spool_dir);
    if (L->seg.obj)
        PyBuffer_Release(&L->seg);
    if (L->ctr.obj)
        PyBuffer_Release(&L->ctr);
    if (L->board.obj)
        PyBuffer_Release(&L->board);
    Py_XDECREF(L->logs);
    Py_TYPE(L)->tp_free((PyObject *)L);
}

#define FAST(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL

static PyMethodDef loop_methods[] = {
    {"run", FAST(loop_run),
     "run(seconds) -> bool: turn the loop for up to `seconds` (less when log "
     "lines wait); True when the signal inbox became readable."},
    {"take_logs", FAST(loop_take_logs), "take_logs() -> [(level, text)]"},
    {"close_all", FAST(loop_close_all),
     "close_all(): close every connection (CLOSED records) and publish."},
    {"stats", FAST(loop_stats), "stats() -> dict of counts (tests, bench)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject loop_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mpgearman.native._aloop.Loop",
    .tp_basicsize = sizeof(al_loop),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An acceptor's event loop over its sockets and rings.",
    .tp_new = loop_new,
    .tp_dealloc = (destructor)loop_dealloc,
    .tp_methods = loop_methods,
};

static struct PyModuleDef aloop_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mpgearman.native._aloop",
    .m_doc = "The acceptor's event loop in C (twin: mpgearman/acceptor/loop.py).",
    .m_size = 0,
};

PyMODINIT_FUNC
PyInit__aloop(void)
{
    if (PyType_Ready(&loop_type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&aloop_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&loop_type);
    if (PyModule_AddObject(m, "Loop", (PyObject *)&loop_type) < 0) {
        Py_DECREF(&loop_type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
