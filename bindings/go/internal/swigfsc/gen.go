package swigfsc

// The SWIG output (fsc.go, fsc_wrap.c) is committed, so that `go build` in
// another module needs no SWIG. After a change to include/fsc.h,
// ../../../fsc.i or ../../fsc_go.i, run `go generate ./...` in bindings/go and commit the result:
// the Meson tests go_swig_fsc.go and go_swig_fsc_wrap.c fail until then.
//go:generate swig -go -cgo -intgosize 64 -package swigfsc -I../../../../include -I../../.. -o fsc_wrap.c -outdir . ../../../fsc.i
