/* The C core's table as Python rows, for the admin commands and the
 * monitoring figures (coordinator/ccore.py turns them into the views
 * admin.py and figures.py read). Part of the _core binding. */
#ifndef MPG_CORE_ROWS_H
#define MPG_CORE_ROWS_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core.h"

PyObject *rows_functions(core *k, PyObject *which);
PyObject *rows_conns(core *k);
PyObject *rows_conn(core *k, int64_t id);
PyObject *rows_jobs(core *k);
PyObject *rows_dirty(core *k);
PyObject *rows_drop(core *k, idx f);

#endif
