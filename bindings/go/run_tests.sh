#!/bin/sh
# Runs `go vet` and `go test -v` on a copy of the package in the build tree,
# with the SWIG output Meson generated, so the source tree stays clean.
# usage: run_tests.sh GO SRCDIR WORKDIR GENERATED_GO GENERATED_C [go test flags]
set -eu
go=$1 src=$2 work=$3 gen_go=$4 gen_c=$5
shift 5

mod="$work/module"
rm -rf "$mod"
mkdir -p "$mod"
(cd "$src" && tar cf - --exclude=internal/swigfsc/fsc.go --exclude=internal/swigfsc/fsc_wrap.c \
    go.mod ./*.go internal) | (cd "$mod" && tar xf -)
cp "$gen_go" "$gen_c" "$mod/internal/swigfsc/"

# Everything Go writes stays in the build tree; no network, no modules.
export GOCACHE="$work/gocache" GOPATH="$work/gopath" GOPROXY=off GOFLAGS= \
    GO111MODULE=on CGO_ENABLED=1 GOTOOLCHAIN=local
export HOME="${HOME:-$work}"

cd "$mod"
# SWIG's generated code turns uintptr into unsafe.Pointer on purpose.
echo "# go vet . && go vet -unsafeptr=false ./internal/..."
"$go" vet .
"$go" vet -unsafeptr=false ./internal/...
echo "# go test -v -count=1 $* ./..."
exec "$go" test -v -count=1 "$@" ./...
