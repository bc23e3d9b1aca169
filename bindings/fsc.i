/* The one SWIG interface of fsc. What every language shares is here: the
 * out-parameters, the constructors of the structs with a size field and the
 * functions no language wraps as they are. Each language's typemaps and
 * idiomatic glue live in its own file, included last, before fsc.h. */
%module fsc

%{
#include <stdlib.h>
#include <string.h>

#include "fsc.h"
%}

%include <stdint.i>

/* Out-parameter handles (fsc_open, fsc_get, fsc_lock, ...) and the process
 * id of fsc_lock_holder. Python, Ruby and Lua return what one receives as
 * one more result after the status; FSC_APPEND_HANDLE(PTR, DESCRIPTOR) and
 * FSC_APPEND_INT64(VALUE) say how each appends one. Go passes the address of
 * a Go variable instead. These come before the language files, whose own
 * functions take such out-parameters too. */
#if defined(SWIGPYTHON)
%define FSC_APPEND_HANDLE(PTR, DESC)
$result = SWIG_Python_AppendOutput($result, SWIG_NewPointerObj(SWIG_as_voidptr(PTR), DESC, 0));
%enddef
%define FSC_APPEND_INT64(VALUE)
$result = SWIG_Python_AppendOutput($result, PyLong_FromLongLong((long long)(VALUE)));
%enddef
#elif defined(SWIGRUBY)
%define FSC_APPEND_HANDLE(PTR, DESC)
$result = SWIG_Ruby_AppendOutput($result, SWIG_NewPointerObj(SWIG_as_voidptr(PTR), DESC, 0));
%enddef
%define FSC_APPEND_INT64(VALUE)
$result = SWIG_Ruby_AppendOutput($result, LL2NUM(VALUE));
%enddef
#elif defined(SWIGLUA)
%define FSC_APPEND_HANDLE(PTR, DESC)
if (PTR)
    SWIG_NewPointerObj(L, PTR, DESC, 0);
else
    lua_pushnil(L); /* nil when not written */
SWIG_arg++;
%enddef
%define FSC_APPEND_INT64(VALUE)
lua_pushinteger(L, (lua_Integer)(VALUE));
SWIG_arg++;
%enddef
#endif

#if defined(SWIGGO)
%define FSC_OUT_HANDLE(TYPE)
%typemap(gotype) TYPE **out "*uintptr"
%typemap(in) TYPE **out %{ $1 = (TYPE **)$input; %}
%enddef
%typemap(gotype) int64_t *pid "*int64"
%typemap(in) int64_t *pid %{ $1 = (int64_t *)$input; %}
#else
%define FSC_OUT_HANDLE(TYPE)
%typemap(in, numinputs=0) TYPE **out (TYPE *handle = NULL) %{ $1 = &handle; %}
%typemap(argout) TYPE **out { FSC_APPEND_HANDLE(handle$argnum, $*1_descriptor) }
%enddef
%typemap(in, numinputs=0) int64_t *pid (int64_t pid_value = 0) %{ $1 = &pid_value; %}
%typemap(argout) int64_t *pid { FSC_APPEND_INT64(pid_value$argnum) }
#endif
FSC_OUT_HANDLE(fsc_cache)
FSC_OUT_HANDLE(fsc_entry)
FSC_OUT_HANDLE(fsc_lock_handle)

/* Structs with a size field: the constructor fills it (and the defaults). */
%extend fsc_options {
    fsc_options() {
        fsc_options *o = (fsc_options *)calloc(1, sizeof *o);
        if (o)
            fsc_options_init(o);
        return o;
    }
}
%extend fsc_statistics {
    fsc_statistics() {
        fsc_statistics *s = (fsc_statistics *)calloc(1, sizeof *s);
        if (s)
            s->size = sizeof *s;
        return s;
    }
}
%extend fsc_verify_report {
    fsc_verify_report() {
        fsc_verify_report *r = (fsc_verify_report *)calloc(1, sizeof *r);
        if (r)
            r->size = sizeof *r;
        return r;
    }
}

/* Callbacks cross into the language through its own glue (a cgo handle, a
 * Lua function, a Ruby proc); Python's typemaps take a callable directly. */
#if !defined(SWIGPYTHON)
%ignore fsc_get_or_create;
%ignore fsc_foreach;
#endif
/* A value is read whole into the language's own string type by a helper of
 * its file; Go reads through fsc_entry_read into a []byte. */
#if !defined(SWIGGO)
%ignore fsc_entry_read;
%ignore fsc_entry_data;
#endif

/* Each language's typemaps and glue. */
#if defined(SWIGPYTHON)
%include "python/fsc_python.i"
#elif defined(SWIGRUBY)
%include "ruby/fsc_ruby.i"
#elif defined(SWIGLUA)
%include "lua/fsc_lua.i"
#elif defined(SWIGGO)
%include "go/fsc_go.i"
#endif

%include "fsc.h"
