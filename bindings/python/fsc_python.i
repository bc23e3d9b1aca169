/* Python typemaps and helpers for fsc.i. The module SWIG generates from this
 * (_fsc_swig) is internal: every fallible function returns its status code,
 * out-parameters come back after it as [status, out], and the package fsc
 * (fsc/__init__.py) turns statuses into exceptions.
 *
 * Built with -threads: the GIL is released around every C call, so a thread
 * waiting in fsc_lock or fsc_get_or_create does not stop the interpreter.
 * Typemaps run with the GIL held; the callbacks below take it back. */

%{
/* A Python callable passed through a C callback's ctx, and the exception it
 * raised (re-raised once the C call has returned). */
typedef struct {
    PyObject *callable;
    PyObject *type, *value, *traceback;
} fsc_py_callback;

static int fsc_py_creator(void *ctx, fsc_cache *c, const void *key, size_t key_len) {
    fsc_py_callback *cb = (fsc_py_callback *)ctx;
    int rc = 0;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *r = PyObject_CallNoArgs(cb->callable);
    if (r == NULL) {
        PyErr_Fetch(&cb->type, &cb->value, &cb->traceback);
        rc = 1;
    } else {
        Py_DECREF(r);
    }
    PyGILState_Release(gil);
    return rc;
}

/* The visitor's truthy result stops the walk, as does an exception. */
static int fsc_py_visitor(void *ctx, const void *key, size_t key_len, uint64_t size, int64_t created_ms) {
    fsc_py_callback *cb = (fsc_py_callback *)ctx;
    int rc = 0;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *r = PyObject_CallFunction(cb->callable, "y#KL", (const char *)key, (Py_ssize_t)key_len,
                                        (unsigned long long)size, (long long)created_ms);
    if (r == NULL) {
        PyErr_Fetch(&cb->type, &cb->value, &cb->traceback);
        rc = 1;
    } else {
        rc = PyObject_IsTrue(r) ? 1 : 0;
        Py_DECREF(r);
    }
    PyGILState_Release(gil);
    return rc;
}
%}

/* Binary-safe (pointer, length) inputs from any contiguous buffer (bytes,
 * bytearray, memoryview, mmap). The buffer is held until the call returns, so
 * another thread cannot resize it while the GIL is released. */
%define FSC_PY_BUFFER(PTR, LEN)
%typemap(in) (PTR, LEN) (Py_buffer view, int have_view = 0) {
    if (PyObject_GetBuffer($input, &view, PyBUF_SIMPLE) != 0)
        SWIG_fail;
    have_view = 1;
    $1 = ($1_ltype)view.buf;
    $2 = ($2_ltype)view.len;
}
%typemap(freearg) (PTR, LEN) {
    if (have_view$argnum)
        PyBuffer_Release(&view$argnum);
}
%enddef
FSC_PY_BUFFER(const void *key, size_t key_len)
FSC_PY_BUFFER(const void *data, size_t len)

/* Statistics and verify reports: [status, dict]. */
%typemap(in, numinputs=0) fsc_statistics *out (fsc_statistics stats) {
    memset(&stats, 0, sizeof stats);
    stats.size = sizeof stats;
    $1 = &stats;
}
%typemap(argout) fsc_statistics *out {
    $result = SWIG_Python_AppendOutput($result, Py_BuildValue(
        "{sKsKsKsKsKsKsKsKsOsO}", "entries", (unsigned long long)stats$argnum.entries,
        "bytes", (unsigned long long)stats$argnum.bytes, "cache_size", (unsigned long long)stats$argnum.cache_size,
        "hits", (unsigned long long)stats$argnum.hits, "misses", (unsigned long long)stats$argnum.misses,
        "sets", (unsigned long long)stats$argnum.sets, "evictions", (unsigned long long)stats$argnum.evictions,
        "expirations", (unsigned long long)stats$argnum.expirations,
        "network_fs", stats$argnum.network_fs ? Py_True : Py_False,
        "network_mode", stats$argnum.network_mode ? Py_True : Py_False));
}
%typemap(in, numinputs=0) fsc_verify_report *out (fsc_verify_report report) {
    memset(&report, 0, sizeof report);
    report.size = sizeof report;
    $1 = &report;
}
%typemap(argout) fsc_verify_report *out {
    $result = SWIG_Python_AppendOutput($result, Py_BuildValue(
        "{sKsKsK}", "checked", (unsigned long long)report$argnum.checked,
        "problems", (unsigned long long)report$argnum.problems,
        "repaired", (unsigned long long)report$argnum.repaired));
}

/* Callbacks: a Python callable; its exception is raised by the wrapper. */
%define FSC_PY_CALLBACK(FUNCTYPE, TRAMPOLINE)
%typemap(in) (FUNCTYPE, void *ctx) (fsc_py_callback cb) {
    if (!PyCallable_Check($input)) {
        PyErr_SetString(PyExc_TypeError, "a callable is required");
        SWIG_fail;
    }
    cb.callable = $input;
    cb.type = cb.value = cb.traceback = NULL;
    $1 = TRAMPOLINE;
    $2 = &cb;
}
%typemap(argout) (FUNCTYPE, void *ctx) {
    if (cb$argnum.type != NULL) {
        PyErr_Restore(cb$argnum.type, cb$argnum.value, cb$argnum.traceback);
        SWIG_fail;
    }
}
%enddef
FSC_PY_CALLBACK(fsc_creator create, fsc_py_creator)
FSC_PY_CALLBACK(fsc_visitor visit, fsc_py_visitor)

/* An entry a creator failed to make is never set, so nothing leaks when the
 * argout above raises. fsc_entry_read/fsc_entry_data (ignored in ../fsc.i)
 * are replaced by fsc_py_entry_read_all (one copy, straight into a bytes
 * object). */
%nothread fsc_py_entry_read_all;
%inline %{
/* The value from the entry's cursor to its end as [status, bytes or None];
 * the checksum is verified when the read reaches the end. */
PyObject *fsc_py_entry_read_all(fsc_entry *e) {
    if (e == NULL) {
        PyErr_SetString(PyExc_ValueError, "entry is None");
        return NULL;
    }
    uint64_t size = fsc_entry_size(e), offset = fsc_entry_offset(e);
    Py_ssize_t want = (Py_ssize_t)(size - offset);
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, want);
    if (bytes == NULL)
        return NULL;
    char *p = PyBytes_AS_STRING(bytes);
    Py_ssize_t have = 0;
    int rc = FSC_OK;
    Py_BEGIN_ALLOW_THREADS
    while (have < want) {
        size_t got = 0;
        rc = fsc_entry_read(e, p + have, (size_t)(want - have), &got);
        if (rc != FSC_OK || got == 0)
            break;
        have += (Py_ssize_t)got;
    }
    Py_END_ALLOW_THREADS
    if (rc == FSC_OK && have != want)
        rc = FSC_ECORRUPT;
    if (rc != FSC_OK) {
        Py_DECREF(bytes);
        return Py_BuildValue("[iO]", rc, Py_None);
    }
    return Py_BuildValue("[iN]", rc, bytes);
}
%}
