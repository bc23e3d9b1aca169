/* The one SWIG interface of fsc. The common part comes first; each language's
 * typemaps and idiomatic glue live in its own file, included below. */
%module fsc

%{
#include "fsc.h"
%}

#if defined(SWIGPYTHON)
%include "python/fsc_python.i"
#elif defined(SWIGRUBY)
%include "ruby/fsc_ruby.i"
#elif defined(SWIGLUA)
%include "lua/fsc_lua.i"
#elif defined(SWIGGO)
%include "go/fsc_go.i"
#endif
