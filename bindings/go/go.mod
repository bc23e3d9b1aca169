module github.com/fsc-cache/fsc/bindings/go

go 1.19
