package swigfsc

// The SWIG output (fsc.go, fsc_wrap.c) is not committed: Meson generates it
// into the build tree, or run `go generate ./...` in bindings/go to write it
// here for a plain `go build`.
//go:generate swig -go -cgo -intgosize 64 -package swigfsc -I../../../../include -I../../.. -o fsc_wrap.c -outdir . ../../../fsc.i
