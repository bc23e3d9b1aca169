/* The one SWIG interface of fsc: common part here, one include per language. */
%module fsc
