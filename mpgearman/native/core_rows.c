/* The C core's table as Python rows (core_rows.h). Each row is a tuple in
 * the order coordinator/ccore.py reads it; nothing here changes a job. */
#include "core_rows.h"

#define J(i) (&k->t.jobs[i])
#define F(i) (&k->t.fns[i])
#define C(i) (&k->t.conns[i])
#define R(i) (&k->t.regs[i])

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

/* When its longest-waiting queued job was queued, 0 when none is. */
static double oldest(core *k, const fn_rec *r)
{
    double o = 0;
    for (int p = 0; p < 3; p++)
        if (r->qh[p]) {
            double s = J(r->qh[p])->since;
            if (o == 0 || s < o)
                o = s;
        }
    return o;
}

/* (index, name, total, running, workers, (high, normal, low), waiting,
 *  oldest, [maxqueue high, normal, low], submitted, completed, failed,
 *  exceptions, requeued, waits, runs) */
static PyObject *fn_row(core *k, idx f)
{
    fn_rec *r = F(f);
    return Py_BuildValue("(Iy#III(III)Id[LLL]KKKKKNN)", f, r->name.p, (Py_ssize_t)r->name.len,
        r->total, r->running, r->workers, r->qn[0], r->qn[1] + r->waiting, r->qn[2],
        r->waiting, oldest(k, r), (long long)r->maxq[0], (long long)r->maxq[1],
        (long long)r->maxq[2], (unsigned long long)r->submitted,
        (unsigned long long)r->completed, (unsigned long long)r->failed,
        (unsigned long long)r->exceptions, (unsigned long long)r->requeued,
        hist_list(r, &r->waits), hist_list(r, &r->runs));
}

/* Rows of the functions `which` names (a list of indexes), or of every
 * live one in listing order when it is None. */
PyObject *rows_functions(core *k, PyObject *which)
{
    PyObject *list = PyList_New(0);
    if (list == NULL)
        return NULL;
    Py_ssize_t n = which == Py_None ? (Py_ssize_t)k->t.nfns : PyList_GET_SIZE(which);
    for (Py_ssize_t i = which == Py_None ? 1 : 0; i < n; i++) {
        idx f = (idx)i;
        if (which != Py_None) {
            unsigned long v = PyLong_AsUnsignedLong(PyList_GET_ITEM(which, i));
            if (PyErr_Occurred() || v == 0 || v >= k->t.nfns) {
                Py_DECREF(list);
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_IndexError, "no such function");
                return NULL;
            }
            f = (idx)v;
        } else if (F(f)->dropped) {
            continue;
        }
        PyObject *row = fn_row(k, f);
        if (row == NULL || PyList_Append(list, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(row);
    }
    return list;
}

typedef struct { int64_t key; idx fn; } keyed;

static int by_key_desc(const void *a, const void *b)
{
    int64_t x = ((const keyed *)a)->key, y = ((const keyed *)b)->key;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* A connection's registrations, newest first, duplicates kept: a list of
 * function indexes. */
static PyObject *registrations(core *k, conn_rec *c)
{
    size_t total = 0;
    for (uint32_t i = 0; i < c->nregs; i++)
        total += R(c->regs[i])->n;
    keyed *all = PyMem_Malloc((total ? total : 1) * sizeof(keyed));
    if (all == NULL)
        return PyErr_NoMemory();
    size_t m = 0;
    for (uint32_t i = 0; i < c->nregs; i++) {
        reg_rec *g = R(c->regs[i]);
        for (uint32_t x = 0; x < g->n; x++)
            all[m++] = (keyed){g->keys[x], g->fn};
    }
    qsort(all, m, sizeof(keyed), by_key_desc);
    PyObject *list = PyList_New((Py_ssize_t)m);
    for (size_t i = 0; list && i < m; i++) {
        PyObject *v = PyLong_FromUnsignedLong(all[i].fn);
        if (v == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, v);
    }
    PyMem_Free(all);
    return list;
}

/* (seq, id, fd, peer, client_id, exceptions, jobs running, registrations) of a
 * connection; seq gives the order they connected. */
static PyObject *conn_row(core *k, conn_rec *c)
{
    uint32_t running = 0;
    for (idx j = c->rhead; j; j = J(j)->rnext)
        running++;
    return Py_BuildValue("(KLLy#y#NIN)", (unsigned long long)c->seq, (long long)c->id,
                         (long long)c->fd, c->peer.p, (Py_ssize_t)c->peer.len, c->client_id.p,
                         (Py_ssize_t)c->client_id.len, PyBool_FromLong(c->exceptions),
                         running, registrations(k, c));
}

/* The row of connection `id`, or None. */
PyObject *rows_conn(core *k, int64_t id)
{
    idx c = conn_find(k, id);
    return c ? conn_row(k, C(c)) : Py_NewRef(Py_None);
}

/* A row per live connection. */
PyObject *rows_conns(core *k)
{
    PyObject *list = PyList_New(0);
    if (list == NULL)
        return NULL;
    for (uint32_t i = 1; i < k->t.nconns; i++) {
        conn_rec *c = C(i);
        if (!c->live || !c->alive)
            continue;
        PyObject *row = conn_row(k, c);
        if (row == NULL || PyList_Append(list, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(row);
    }
    return list;
}

/* (handle, retries, ignore, bg, unique) per live job, in creation order. */
PyObject *rows_jobs(core *k)
{
    PyObject *list = PyList_New(k->t.live_jobs);
    if (list == NULL)
        return NULL;
    Py_ssize_t i = 0;
    for (idx j = k->t.jhead; j && i < (Py_ssize_t)k->t.live_jobs; j = J(j)->tnext) {
        job_rec *r = J(j);
        PyObject *row = Py_BuildValue("(y#Iiiy#)", r->handle.p, (Py_ssize_t)r->handle.len,
                                      r->retries, (int)r->ignore, (int)r->bg, r->unique.p,
                                      (Py_ssize_t)r->unique.len);
        if (row == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i++, row);
    }
    return list;
}

/* The functions whose figures changed since the last call (indexes, in
 * the order they first changed); the list starts again empty. */
PyObject *rows_dirty(core *k)
{
    PyObject *list = PyList_New(k->ndirty);
    if (list == NULL)
        return NULL;
    for (uint32_t i = 0; i < k->ndirty; i++) {
        PyObject *v = PyLong_FromUnsignedLong(k->dirty[i]);
        if (v == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, v);
    }
    for (uint32_t i = 0; i < k->ndirty; i++)
        F(k->dirty[i])->dirty = 0;
    k->ndirty = 0;
    return list;
}

/* Admin `drop function` after its checks: the ignored jobs left in its
 * queues are freed and the function goes; "queued" (nothing done) when a
 * live job waits in a queue or for its epoch. */
PyObject *rows_drop(core *k, idx f)
{
    fn_rec *r = F(f);
    if (r->waiting)
        return PyUnicode_FromString("queued");
    for (int p = 0; p < 3; p++)
        for (idx j = r->qh[p]; j; j = J(j)->qnext)
            if (!J(j)->ignore)
                return PyUnicode_FromString("queued");
    for (int p = 0; p < 3; p++)
        while (F(f)->qh[p]) {
            idx j = F(f)->qh[p];
            F(f)->qh[p] = J(j)->qnext;
            if (!F(f)->qh[p])
                F(f)->qt[p] = NIL;
            J(j)->qnext = NIL;
            F(f)->qn[p]--;
            F(f)->queued--;
            core_free_job(k, j);
        }
    mark_dirty(k, f);
    fn_drop(k, f);
    return PyUnicode_FromString("ok");
}
