/* Go part of the fsc SWIG interface (included by ../fsc.i under SWIGGO).
 *
 * The generated package (internal/swigfsc) is the raw C API with Go types:
 * byte buffers are []byte, out-parameters are *uintptr / *int64 / *uint64,
 * every fallible function returns its int status. The idiomatic API is the
 * hand-written package fsc one directory up. */

/* (pointer, length) pairs are []byte; nothing is kept after the call. */
%typemap(gotype) (const void *key, size_t key_len), (const void *data, size_t len),
                 (void *buf, size_t cap) "[]byte"
%typemap(in) (const void *key, size_t key_len), (const void *data, size_t len),
             (void *buf, size_t cap)
%{ $1 = ($1_ltype)$input.array; $2 = ($2_ltype)$input.len; %}

/* An empty Go string is a NULL path ("no path"). */
%typemap(in) const char *path
%{ $1 = NULL;
   if ($input.n > 0) {
       $1 = (char *)malloc($input.n + 1);
       if ($1) {
           memcpy($1, $input.p, $input.n);
           $1[$input.n] = '\0';
       }
   } %}
%typemap(freearg) const char *path %{ free($1); %}

%typemap(gotype) size_t *got "*uint64"
%typemap(in) size_t *got %{ $1 = (size_t *)$input; %}

/* Callbacks: the Go function travels as a cgo.Handle in ctx; the C side
 * calls the functions exported by callback.go. */
%{
extern int fscGoCreate(uintptr_t handle, fsc_cache *c, void *key, size_t key_len);
extern int fscGoVisit(uintptr_t handle, void *key, size_t key_len, uint64_t size, int64_t created_ms);

static int fsc_go_creator(void *ctx, fsc_cache *c, const void *key, size_t key_len) {
    return fscGoCreate((uintptr_t)ctx, c, (void *)key, key_len);
}

static int fsc_go_visitor(void *ctx, const void *key, size_t key_len, uint64_t size,
                          int64_t created_ms) {
    return fscGoVisit((uintptr_t)ctx, (void *)key, key_len, size, created_ms);
}
%}

%inline %{
/* fsc_get_or_create with the Go function behind handle as the creator. */
int fsc_go_get_or_create(fsc_cache *c, const void *key, size_t key_len, int64_t expiration_ms,
                         uintptr_t handle, fsc_entry **out) {
    return fsc_get_or_create(c, key, key_len, expiration_ms, fsc_go_creator, (void *)handle, out);
}

/* fsc_foreach with the Go function behind handle as the visitor. */
int fsc_go_foreach(fsc_cache *c, uintptr_t handle) {
    return fsc_foreach(c, fsc_go_visitor, (void *)handle);
}
%}

