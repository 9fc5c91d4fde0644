/* _core: the Python binding of the C core (core.h, core_ops.c,
 * core_handlers.c, core_table.c).
 *
 * Core(prefix, wakeup, job_retries, round_robin, exceptions, clock) has the
 * entry points of coordinator.core.Core (connect, disconnect, packet, tick)
 * and the table operations the Python rare paths call (status, show_jobs,
 * cancel, maxqueue, counts). Output is taken with drain(): a list of
 * (conn, bytes) to send and (conn, None) to close, in order.
 *
 * Must not: keep Python objects in the table, or call Python except the
 * clock.
 */
#include "core_py.h"
#include "core_rows.h"

/* -- what the core asks of Python (core.h core_hooks) -------------------------------- */

static PyObject *name_str(const char *p, size_t n)
{
    return PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "surrogateescape");
}

static int hook_share(void *ctx, const blob *handle, const char *name, size_t n, uint64_t size,
                      blob *out)
{
    CoreObject *self = ctx;
    if (PyErr_Occurred() || self->share == NULL)
        return -1;
    PyObject *nm = name_str(name, n);
    PyObject *r = nm ? PyObject_CallFunction(self->share, "y#OK", handle->p,
                                             (Py_ssize_t)handle->len, nm,
                                             (unsigned long long)size) : NULL;
    Py_XDECREF(nm);
    if (r == NULL || r == Py_None) {
        Py_XDECREF(r);
        return -1;
    }
    Py_ssize_t len;
    PyObject *b = PyUnicode_AsEncodedString(r, "utf-8", "surrogateescape");
    Py_DECREF(r);
    if (b == NULL)
        return -1;
    len = PyBytes_GET_SIZE(b);
    int rc = blob_set(out, PyBytes_AS_STRING(b), (size_t)len);
    Py_DECREF(b);
    if (rc < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void hook_release(void *ctx, const char *name, size_t n, uint64_t size)
{
    CoreObject *self = ctx;
    if (PyErr_Occurred() || self->release == NULL)
        return;
    PyObject *nm = name_str(name, n);
    PyObject *r = nm ? PyObject_CallFunction(self->release, "OK", nm,
                                             (unsigned long long)size) : NULL;
    Py_XDECREF(nm);
    Py_XDECREF(r);
}

static int hook_keep(void *ctx, const blob *handle, const char *name, size_t n, uint64_t size,
                     int on)
{
    CoreObject *self = ctx;
    if (PyErr_Occurred() || self->keep == NULL)
        return -1;
    PyObject *nm = name_str(name, n);
    PyObject *r = nm ? PyObject_CallFunction(self->keep, "y#OKO", handle->p,
                                             (Py_ssize_t)handle->len, nm,
                                             (unsigned long long)size,
                                             on ? Py_True : Py_False) : NULL;
    Py_XDECREF(nm);
    int ok = r != NULL && PyObject_IsTrue(r) == 1;
    Py_XDECREF(r);
    return ok ? 0 : -1;
}

static int hook_claim(void *ctx, uint64_t no)
{
    CoreObject *self = ctx;
    if (PyErr_Occurred())
        return 0;
    PyObject *r = PyObject_CallMethod(self->board, "claim", "K", (unsigned long long)no);
    int held = r != NULL && PyObject_IsTrue(r) == 1;
    Py_XDECREF(r);
    return held;
}

static void hook_show(void *ctx, uint64_t no, int running, uint32_t num, uint32_t den)
{
    CoreObject *self = ctx;
    if (PyErr_Occurred())
        return;
    PyObject *r = PyObject_CallMethod(self->board, "show", "KOII", (unsigned long long)no,
                                      running ? Py_True : Py_False, num, den);
    Py_XDECREF(r);
}

static void hook_unclaim(void *ctx, uint64_t no, int held)
{
    CoreObject *self = ctx;
    if (PyErr_Occurred())
        return;
    PyObject *r = PyObject_CallMethod(self->board, "release", "KO", (unsigned long long)no,
                                      held ? Py_True : Py_False);
    Py_XDECREF(r);
}

static double call_clock(void *ctx)
{
    CoreObject *self = ctx;
    if (PyErr_Occurred())
        return 0.0;
    PyObject *r = PyObject_CallNoArgs(self->clock);
    if (r == NULL)
        return 0.0;
    double v = PyFloat_AsDouble(r);
    Py_DECREF(r);
    return v;
}

static int Core_init(CoreObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"prefix", "wakeup", "job_retries", "round_robin", "exceptions",
                            "clock", "share", "release", "board", "max_spool_bytes", "keep",
                            NULL};
    Py_buffer prefix;
    unsigned int wakeup, retries;
    int rr, exc;
    PyObject *clock, *share = Py_None, *release = Py_None, *board = Py_None, *keep = Py_None;
    unsigned long long max_spool = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*IIppO|$OOOKO", names, &prefix, &wakeup,
                                     &retries, &rr, &exc, &clock, &share, &release, &board,
                                     &max_spool, &keep))
        return -1;
    if (self->ready) {
        core_fini(&self->k);
        self->ready = 0;
    }
    int rc = core_init(&self->k, prefix.buf, (size_t)prefix.len, wakeup, retries, rr, exc);
    PyBuffer_Release(&prefix);
    if (rc < 0) {
        PyErr_NoMemory();
        return -1;
    }
    self->ready = 1;
    Py_INCREF(clock);
    Py_XSETREF(self->clock, clock);
    self->k.clock = call_clock;
    self->k.clock_ctx = self;
    self->k.max_spool = max_spool;
    Py_XSETREF(self->share, share == Py_None ? NULL : Py_NewRef(share));
    Py_XSETREF(self->release, release == Py_None ? NULL : Py_NewRef(release));
    Py_XSETREF(self->board, board == Py_None ? NULL : Py_NewRef(board));
    Py_XSETREF(self->keep, keep == Py_None ? NULL : Py_NewRef(keep));
    self->k.h = (core_hooks){hook_share, hook_release, NULL, NULL, NULL,
                             self->keep ? hook_keep : NULL, self};
    if (self->board != NULL) {
        self->k.h.claim = hook_claim;
        self->k.h.show = hook_show;
        self->k.h.unclaim = hook_unclaim;
    }
    return 0;
}

static void Core_dealloc(CoreObject *self)
{
    CoreRings_detach(self);
    if (self->ready)
        core_fini(&self->k);
    Py_XDECREF(self->clock);
    Py_XDECREF(self->share);
    Py_XDECREF(self->release);
    Py_XDECREF(self->board);
    Py_XDECREF(self->keep);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* After an operation: a clock error or a lost batch becomes the exception. */
static PyObject *done(CoreObject *self, PyObject *value)
{
    if (self->k.out.failed) {
        self->k.out.failed = 0;
        self->k.out.n = 0;
        self->k.out.used = 0;
        Py_XDECREF(value);
        return PyErr_NoMemory();
    }
    if (PyErr_Occurred()) {
        Py_XDECREF(value);
        return NULL;
    }
    return value;
}

static int get_i64(PyObject *o, int64_t *v)
{
    long long x = PyLong_AsLongLong(o);
    if (x == -1 && PyErr_Occurred())
        return -1;
    *v = x;
    return 0;
}

static PyObject *Core_connect(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    int64_t conn, fd;
    if (n != 3) {
        PyErr_SetString(PyExc_TypeError, "connect(conn, peer, fd)");
        return NULL;
    }
    if (get_i64(a[0], &conn) < 0 || get_i64(a[2], &fd) < 0)
        return NULL;
    Py_ssize_t plen;
    const char *peer;
    if (PyUnicode_Check(a[1])) {
        peer = PyUnicode_AsUTF8AndSize(a[1], &plen);
    } else if (PyBytes_Check(a[1])) {
        peer = PyBytes_AS_STRING(a[1]);
        plen = PyBytes_GET_SIZE(a[1]);
    } else {
        PyErr_SetString(PyExc_TypeError, "peer must be str or bytes");
        return NULL;
    }
    if (peer == NULL)
        return NULL;
    if (core_connect(&self->k, conn, peer, (size_t)plen, fd) < 0)
        return PyErr_NoMemory();
    return done(self, Py_NewRef(Py_None));
}

static PyObject *Core_disconnect(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    int64_t conn;
    if (n != 1) {
        PyErr_SetString(PyExc_TypeError, "disconnect(conn)");
        return NULL;
    }
    if (get_i64(a[0], &conn) < 0)
        return NULL;
    core_disconnect(&self->k, conn);
    return done(self, Py_NewRef(Py_None));
}

/* A SpoolRef (anything with a str `name` and an int `size`): its name as
 * bytes in *name and its size; -1 (no exception) when x is not one. */
static int spool_arg(PyObject *x, PyObject **name, uint64_t *size)
{
    PyObject *n = PyObject_GetAttrString(x, "name");
    PyObject *z = n ? PyObject_GetAttrString(x, "size") : NULL;
    if (n == NULL || z == NULL || !PyUnicode_Check(n) || !PyLong_Check(z)) {
        Py_XDECREF(n);
        Py_XDECREF(z);
        PyErr_Clear();
        return -1;
    }
    *size = PyLong_AsUnsignedLongLong(z);
    *name = PyUnicode_AsEncodedString(n, "utf-8", "surrogateescape");
    Py_DECREF(n);
    Py_DECREF(z);
    if (*name == NULL || PyErr_Occurred()) {
        Py_CLEAR(*name);
        return -1;
    }
    return 0;
}

static PyObject *Core_packet(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    int64_t conn, ptype;
    if (n != 3 || !PyTuple_Check(a[2])) {
        PyErr_SetString(PyExc_TypeError, "packet(conn, ptype, args: tuple of bytes)");
        return NULL;
    }
    if (get_i64(a[0], &conn) < 0 || get_i64(a[1], &ptype) < 0)
        return NULL;
    Py_ssize_t given = PyTuple_GET_SIZE(a[2]);
    /* More arguments than any request has (a type no handler takes): the
     * first six and the last, the one that may be spooled. */
    Py_ssize_t count = given > 7 ? 7 : given;
    args_t args = {.count = (int)count};
    PyObject *spooled = NULL;       /* the name of a spooled last argument, as bytes */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *x = PyTuple_GET_ITEM(a[2], i == count - 1 ? given - 1 : i);
        if (i == count - 1 && !PyBytes_Check(x) && spool_arg(x, &spooled, &args.size) == 0) {
            args.spooled = 1;
            args.p[i] = PyBytes_AS_STRING(spooled);
            args.n[i] = (size_t)PyBytes_GET_SIZE(spooled);
            continue;
        }
        if (PyErr_Occurred())
            return NULL;
        if (!PyBytes_Check(x)) {
            PyErr_SetString(PyExc_TypeError, "packet arguments must be bytes");
            return NULL;
        }
        args.p[i] = PyBytes_AS_STRING(x);
        args.n[i] = (size_t)PyBytes_GET_SIZE(x);
    }
    if (ptype < INT32_MIN || ptype > INT32_MAX ||
        core_packet(&self->k, conn, (int)ptype, &args) < 0) {
        Py_XDECREF(spooled);
        PyErr_Format(PyExc_ValueError, "wrong argument count for packet type %lld",
                     (long long)ptype);
        return NULL;
    }
    Py_XDECREF(spooled);
    return done(self, Py_NewRef(Py_None));
}

static PyObject *Core_tick(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    (void)a; (void)n;
    double d = core_tick(&self->k);
    return done(self, d < 0 ? Py_NewRef(Py_None) : PyFloat_FromDouble(d));
}

static PyObject *Core_drain(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    (void)a; (void)n;
    outq *q = &self->k.out;
    PyObject *list = PyList_New(q->n);
    if (list == NULL)
        return NULL;
    for (uint32_t i = 0; i < q->n; i++) {
        out_rec *r = &q->recs[i];
        PyObject *item;
        if (r->hlen) {          /* (conn, head, spool name, size) */
            PyObject *name = name_str(q->buf + r->off + r->hlen, r->len - r->hlen);
            item = name ? Py_BuildValue("(Ly#NK)", (long long)r->conn, q->buf + r->off,
                                        (Py_ssize_t)r->hlen, name,
                                        (unsigned long long)r->ssize) : NULL;
        } else {
            PyObject *data = r->close ? Py_NewRef(Py_None)
                : PyBytes_FromStringAndSize(q->buf + r->off, (Py_ssize_t)r->len);
            item = data ? Py_BuildValue("(LN)", (long long)r->conn, data) : NULL;
        }
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    q->n = 0;
    q->used = 0;
    return list;
}

/* -- table operations for the rare paths ------------------------------------------ */

typedef struct { char *p; size_t n, cap; int failed; } sbuf;

static void sb_put(sbuf *b, const char *p, size_t n)
{
    if (b->failed)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        char *q = PyMem_Realloc(b->p, cap);
        if (q == NULL) { b->failed = 1; return; }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* A name as protocol/admin.py shown() writes it. */
static void sb_shown(sbuf *b, const blob *name)
{
    for (uint32_t i = 0; i < name->len; i++) {
        unsigned char ch = (unsigned char)name->p[i];
        if (ch < 0x20 || ch == 0x7f || ch == '\\') {
            char esc[5];
            snprintf(esc, sizeof(esc), "\\x%02x", ch);
            sb_put(b, esc, 4);
        } else {
            sb_put(b, (const char *)&ch, 1);
        }
    }
}

static PyObject *sb_finish(sbuf *b)
{
    sb_put(b, ".\n", 2);
    PyObject *r = b->failed ? PyErr_NoMemory() : PyBytes_FromStringAndSize(b->p, (Py_ssize_t)b->n);
    PyMem_Free(b->p);
    return r;
}

static PyObject *Core_status(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    (void)a; (void)n;
    table *t = &self->k.t;
    sbuf b = {0};
    char line[80];
    for (uint32_t i = 1; i < t->nfns; i++) {
        fn_rec *f = &t->fns[i];
        if (f->dropped)
            continue;
        sb_shown(&b, &f->name);
        int w = snprintf(line, sizeof(line), "\t%u\t%u\t%u\n", f->total, f->running, f->workers);
        sb_put(&b, line, (size_t)w);
    }
    return sb_finish(&b);
}

static PyObject *Core_show_jobs(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    (void)a; (void)n;
    table *t = &self->k.t;
    sbuf b = {0};
    char line[80];
    for (idx j = t->jhead; j; j = t->jobs[j].tnext) {
        job_rec *r = &t->jobs[j];
        sb_put(&b, r->handle.p, r->handle.len);
        int w = snprintf(line, sizeof(line), "\t%u\t%d\t%d\n", r->retries, r->ignore, r->bg);
        sb_put(&b, line, (size_t)w);
    }
    return sb_finish(&b);
}

static PyObject *Core_cancel(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    if (n != 1 || !PyBytes_Check(a[0])) {
        PyErr_SetString(PyExc_TypeError, "cancel(handle: bytes)");
        return NULL;
    }
    int ok = core_cancel(&self->k, PyBytes_AS_STRING(a[0]), (size_t)PyBytes_GET_SIZE(a[0]));
    return done(self, PyBool_FromLong(ok));
}

static PyObject *Core_maxqueue(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    int64_t lim[3];
    if (n != 4 || !PyBytes_Check(a[0])) {
        PyErr_SetString(PyExc_TypeError, "maxqueue(name: bytes, high, normal, low)");
        return NULL;
    }
    for (int i = 0; i < 3; i++)
        if (get_i64(a[i + 1], &lim[i]) < 0)
            return NULL;
    idx f = fn_get(&self->k, PyBytes_AS_STRING(a[0]), (size_t)PyBytes_GET_SIZE(a[0]), 0);
    if (f)
        memcpy(self->k.t.fns[f].maxq, lim, sizeof(lim));
    return PyBool_FromLong(f != NIL);
}

static PyObject *hist_list(const fn_rec *f, const hist *h)
{
    if (!f->has_hist)
        return Py_NewRef(Py_None);
    PyObject *list = PyList_New(HIST_BUCKETS + 1);
    if (list == NULL)
        return NULL;
    for (int i = 0; i < HIST_BUCKETS; i++)
        PyList_SET_ITEM(list, i, PyLong_FromUnsignedLongLong(h->n[i]));
    PyList_SET_ITEM(list, HIST_BUCKETS, PyFloat_FromDouble(h->sum));
    return list;
}

/* A function's figures, as coordinator/queues.py Function has them. */
static PyObject *Core_figures(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    if (n != 1 || !PyBytes_Check(a[0])) {
        PyErr_SetString(PyExc_TypeError, "figures(name: bytes)");
        return NULL;
    }
    core *k = &self->k;
    idx f = fn_get(k, PyBytes_AS_STRING(a[0]), (size_t)PyBytes_GET_SIZE(a[0]), 0);
    if (f == NIL)
        Py_RETURN_NONE;
    fn_rec *r = &k->t.fns[f];
    double oldest = 0;
    for (int p = 0; p < 3; p++)
        if (r->qh[p]) {
            double s = k->t.jobs[r->qh[p]].since;
            if (oldest == 0 || s < oldest)
                oldest = s;
        }
    return Py_BuildValue("{s(III)sIsIsIsIsKsKsKsKsKsdsNsN}",
        "queued", r->qn[0], r->qn[1] + r->waiting, r->qn[2], "total", r->total,
        "running", r->running, "workers", r->workers, "waiting", r->waiting,
        "submitted", (unsigned long long)r->submitted,
        "completed", (unsigned long long)r->completed,
        "failed", (unsigned long long)r->failed,
        "exceptions", (unsigned long long)r->exceptions,
        "requeued", (unsigned long long)r->requeued, "oldest", oldest,
        "waits", hist_list(r, &r->waits), "runs", hist_list(r, &r->runs));
}

static PyObject *Core_set_journal(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    if (n != 1) {
        PyErr_SetString(PyExc_TypeError, "set_journal(on)");
        return NULL;
    }
    int on = PyObject_IsTrue(a[0]);
    if (on < 0)
        return NULL;
    self->k.journal = on;
    Py_RETURN_NONE;
}

static PyObject *Core_take_journal(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    (void)a; (void)n;
    PyObject *out = PyBytes_FromStringAndSize(self->k.jbuf, (Py_ssize_t)self->k.jused);
    if (out != NULL)
        self->k.jused = 0;
    return out;
}

static PyObject *Core_counts(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    (void)a; (void)n;
    table *t = &self->k.t;
    uint32_t running = 0, workers = 0;
    for (uint32_t i = 1; i < t->nconns; i++) {
        conn_rec *c = &t->conns[i];
        if (!c->live)
            continue;
        workers += c->nregs > 0;
        for (idx j = c->rhead; j; j = t->jobs[j].rnext)
            running++;
    }
    return Py_BuildValue("(III)", t->live_conns, t->live_jobs - running, workers);
}

static PyObject *Core_functions(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    PyObject *which = n ? a[0] : Py_None;
    if (n > 1 || (which != Py_None && !PyList_Check(which))) {
        PyErr_SetString(PyExc_TypeError, "functions(indexes: list or None)");
        return NULL;
    }
    return rows_functions(&self->k, which);
}

static PyObject *Core_conns(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    (void)a; (void)n;
    return rows_conns(&self->k);
}

static PyObject *Core_conn(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    int64_t id;
    if (n != 1) {
        PyErr_SetString(PyExc_TypeError, "conn(id)");
        return NULL;
    }
    if (get_i64(a[0], &id) < 0)
        return NULL;
    return rows_conn(&self->k, id);
}

static PyObject *Core_jobs(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    (void)a; (void)n;
    return rows_jobs(&self->k);
}

static PyObject *Core_dirty(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    (void)a; (void)n;
    return rows_dirty(&self->k);
}

static PyObject *Core_function(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    if (n != 2 || !PyBytes_Check(a[0])) {
        PyErr_SetString(PyExc_TypeError, "function(name: bytes, create: bool)");
        return NULL;
    }
    int create = PyObject_IsTrue(a[1]);
    idx f = fn_get(&self->k, PyBytes_AS_STRING(a[0]), (size_t)PyBytes_GET_SIZE(a[0]), create);
    if (create && f == NIL)
        self->k.out.failed = 1;
    return done(self, f ? PyLong_FromUnsignedLong(f) : Py_NewRef(Py_None));
}

static PyObject *Core_drop(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    unsigned long f = n == 1 ? PyLong_AsUnsignedLong(a[0]) : 0;
    if (PyErr_Occurred())
        return NULL;
    if (f == 0 || f >= self->k.t.nfns || self->k.t.fns[f].dropped) {
        PyErr_SetString(PyExc_ValueError, "drop(index of a live function)");
        return NULL;
    }
    return done(self, rows_drop(&self->k, (idx)f));
}

static PyObject *Core_get_settings(CoreObject *self, void *closure)
{
    (void)closure;
    core *k = &self->k;
    return Py_BuildValue("(IIiKK)", k->wakeup, k->job_retries, k->round_robin,
                         (unsigned long long)k->max_spool,
                         (unsigned long long)k->spool_bytes);
}

static int Core_set_settings(CoreObject *self, PyObject *v, void *closure)
{
    (void)closure;
    unsigned int wakeup, retries;
    int rr;
    unsigned long long max_spool, held;
    if (v == NULL || !PyArg_ParseTuple(v, "IIiKK", &wakeup, &retries, &rr, &max_spool, &held))
        return -1;
    self->k.wakeup = wakeup;
    self->k.job_retries = retries;
    self->k.round_robin = rr;
    self->k.max_spool = max_spool;
    return 0;
}

static PyObject *Core_get_spool_bytes(CoreObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong(self->k.spool_bytes);
}

static PyObject *Core_get_live(CoreObject *self, void *closure)
{
    (void)closure;
    return Py_BuildValue("(II)", self->k.t.live_conns, self->k.t.live_jobs);
}

static PyObject *Core_get_journaled(CoreObject *self, void *closure)
{
    (void)closure;
    return Py_BuildValue("(KKK)", (unsigned long long)self->k.jjobs,
                         (unsigned long long)self->k.jlive, (unsigned long long)self->k.t.count);
}

static int Core_set_count(CoreObject *self, PyObject *v, void *closure)
{
    (void)closure;
    int64_t c;
    if (v == NULL || get_i64(v, &c) < 0 || c < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "count: a number >= 0");
        return -1;
    }
    self->k.t.count = (uint64_t)c;
    return 0;
}

static PyObject *Core_get_count(CoreObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong(self->k.t.count);
}

/* restore(no, handle, fname, unique, prio, when, data, spooled, size, runs) */
static PyObject *Core_restore(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    int64_t v[6];
    static const int num[6] = {0, 4, 5, 7, 8, 9};
    if (n != 10 || !PyBytes_Check(a[1]) || !PyBytes_Check(a[2]) || !PyBytes_Check(a[3]) ||
        !PyBytes_Check(a[6])) {
        PyErr_SetString(PyExc_TypeError, "restore(no, handle, fname, unique, prio, when, "
                        "data: bytes, spooled, size, runs)");
        return NULL;
    }
    for (int i = 0; i < 6; i++)
        if (get_i64(a[num[i]], &v[i]) < 0)
            return NULL;
    if (v[2] < 0 || v[2] > 2) {
        PyErr_SetString(PyExc_ValueError, "restore: priority 0..2");
        return NULL;
    }
#define B(i) PyBytes_AS_STRING(a[i]), (size_t)PyBytes_GET_SIZE(a[i])
    int rc = core_restore(&self->k, (uint64_t)v[0], B(1), B(2), B(3), B(6), (int)v[2], v[1],
                          v[3] != 0, (uint64_t)v[4], (uint32_t)v[5]);
#undef B
    if (rc < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *Core_snapshot(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    (void)a; (void)n;
    int64_t start = journal_snapshot(&self->k);
    if (start < 0)
        return PyErr_NoMemory();
    PyObject *out = PyBytes_FromStringAndSize(self->k.jbuf + start,
                                              (Py_ssize_t)(self->k.jused - (size_t)start));
    self->k.jused = (size_t)start;
    return out;
}

static PyObject *Core_take_acks(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    (void)a; (void)n;
    core *k = &self->k;
    PyObject *list = PyList_New(k->nacks);
    for (uint32_t i = 0; list != NULL && i < k->nacks; i++) {
        PyObject *t = Py_BuildValue("(IIK)", k->acks[i].out, k->acks[i].job,
                                    (unsigned long long)k->acks[i].no);
        if (t == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, i, t);
    }
    if (list != NULL)
        k->nacks = 0;
    return list;
}

static PyObject *Core_journal_failed(CoreObject *self, PyObject *const *a, Py_ssize_t n)
{
    int64_t j, no;
    if (n != 2 || get_i64(a[0], &j) < 0 || get_i64(a[1], &no) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "journal_failed(job, no)");
        return NULL;
    }
    journal_failed(&self->k, (idx)j, (uint64_t)no);
    return done(self, Py_NewRef(Py_None));
}

static PyObject *Core_get_journal_ok(CoreObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(!self->k.jfailed);
}

static int Core_set_journal_ok(CoreObject *self, PyObject *v, void *closure)
{
    (void)closure;
    int ok = v == NULL ? -1 : PyObject_IsTrue(v);
    if (ok < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "journal_ok: a bool");
        return -1;
    }
    self->k.jfailed = !ok;
    return 0;
}

static PyGetSetDef Core_getset[] = {
    {"journal_ok", (getter)Core_get_journal_ok, (setter)Core_set_journal_ok,
     "False after a failed journal write: background submissions are refused", NULL},
    {"journaled", (getter)Core_get_journaled, NULL,
     "(live journaled jobs, bytes of their SUBMIT records, highest handle number)", NULL},
    {"count", (getter)Core_get_count, (setter)Core_set_count,
     "the highest handle number given out (the next job gets count + 1)", NULL},
    {"settings", (getter)Core_get_settings, (setter)Core_set_settings,
     "(wakeup, job_retries, round_robin, max_spool_bytes, spool bytes held); "
     "set: the first four (the fifth is ignored)", NULL},
    {"spool_bytes", (getter)Core_get_spool_bytes, NULL,
     "bytes of the spooled payloads of live jobs", NULL},
    {"live", (getter)Core_get_live, NULL, "(connections, jobs)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Core_methods[] = {
    {"functions", (PyCFunction)(void (*)(void))Core_functions, METH_FASTCALL,
     "functions(indexes=None) -> rows of those functions, or of every live one"},
    {"conns", (PyCFunction)(void (*)(void))Core_conns, METH_FASTCALL,
     "conns() -> a row per live connection"},
    {"conn", (PyCFunction)(void (*)(void))Core_conn, METH_FASTCALL,
     "conn(id) -> the row of that connection, or None"},
    {"jobs", (PyCFunction)(void (*)(void))Core_jobs, METH_FASTCALL,
     "jobs() -> a row per live job, in creation order"},
    {"take_dirty", (PyCFunction)(void (*)(void))Core_dirty, METH_FASTCALL,
     "take_dirty() -> indexes of the functions whose figures changed since the last call"},
    {"function", (PyCFunction)(void (*)(void))Core_function, METH_FASTCALL,
     "function(name, create) -> its index, or None"},
    {"drop", (PyCFunction)(void (*)(void))Core_drop, METH_FASTCALL,
     "drop(index) -> 'ok', or 'queued' (a live job waits: nothing done)"},
    {"connect", (PyCFunction)(void (*)(void))Core_connect, METH_FASTCALL, "connect(conn, peer, fd)"},
    {"disconnect", (PyCFunction)(void (*)(void))Core_disconnect, METH_FASTCALL, "disconnect(conn)"},
    {"packet", (PyCFunction)(void (*)(void))Core_packet, METH_FASTCALL,
     "packet(conn, ptype, args): one parsed request (args: tuple of bytes)"},
    {"tick", (PyCFunction)(void (*)(void))Core_tick, METH_FASTCALL,
     "tick() -> seconds until the next timer, or None"},
    {"drain", (PyCFunction)(void (*)(void))Core_drain, METH_FASTCALL,
     "drain() -> [(conn, bytes or None for close), ...] since the last drain"},
    {"status", (PyCFunction)(void (*)(void))Core_status, METH_FASTCALL,
     "status() -> the admin `status` listing"},
    {"show_jobs", (PyCFunction)(void (*)(void))Core_show_jobs, METH_FASTCALL,
     "show_jobs() -> the admin `show jobs` listing"},
    {"cancel", (PyCFunction)(void (*)(void))Core_cancel, METH_FASTCALL,
     "cancel(handle) -> bool (admin `cancel job`)"},
    {"maxqueue", (PyCFunction)(void (*)(void))Core_maxqueue, METH_FASTCALL,
     "maxqueue(name, high, normal, low) -> bool (False: no such function)"},
    {"figures", (PyCFunction)(void (*)(void))Core_figures, METH_FASTCALL,
     "figures(name) -> dict of a function's counts, histograms and oldest queued time"},
    {"counts", (PyCFunction)(void (*)(void))Core_counts, METH_FASTCALL,
     "counts() -> (connections, queued jobs, workers)"},
    CORE_RINGS_METHODS
    {"set_journal", (PyCFunction)(void (*)(void))Core_set_journal, METH_FASTCALL,
     "set_journal(on): make journal records (durable/format.py) from now on"},
    {"restore", (PyCFunction)(void (*)(void))Core_restore, METH_FASTCALL,
     "restore(no, handle, fname, unique, prio, when, data, spooled, size, runs): "
     "a background job read back from the journal"},
    {"take_acks", (PyCFunction)(void (*)(void))Core_take_acks, METH_FASTCALL,
     "take_acks() -> [(index in the output batch, job, no)]: JOB_CREATED of journaled jobs "
     "since the last call"},
    {"journal_failed", (PyCFunction)(void (*)(void))Core_journal_failed, METH_FASTCALL,
     "journal_failed(job, no): that acknowledged job's journal write failed"},
    {"snapshot", (PyCFunction)(void (*)(void))Core_snapshot, METH_FASTCALL,
     "snapshot() -> bytes: the SUBMIT and RUN records that rebuild the journaled jobs"},
    {"take_journal", (PyCFunction)(void (*)(void))Core_take_journal, METH_FASTCALL,
     "take_journal() -> bytes: the records made since the last call"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mpgearman.native._core.Core",
    .tp_basicsize = sizeof(CoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The coordinator's job table and hot handlers in C.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Core_init,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_methods = Core_methods,
    .tp_getset = Core_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_core", "The coordinator's job table and hot handlers in C.",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    if (PyType_Ready(&CoreType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Core", (PyObject *)&CoreType) < 0 ||
        PyModule_AddIntConstant(m, "TABLE_VERSION", CT_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
