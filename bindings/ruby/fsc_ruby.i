/* Ruby typemaps and helpers for fsc.i. The extension SWIG generates from this
 * (fsc_native.so, module Fsc::Native) is internal: every fallible function
 * returns its status code, out-parameters come back after it as
 * [status, out], and lib/fsc.rb turns statuses into exceptions.
 *
 * Calls that can wait for a lock (fsc_rb_lock, fsc_rb_get_or_create) release
 * the GVL; a creator block runs with the GVL taken back, under rb_protect, and
 * its exception is re-raised once the C call has returned, so no longjmp ever
 * crosses the library's C++ frames. */

%{
#include <ruby/thread.h>
#include <fcntl.h>
%}

/* Binary-safe (pointer, length) inputs: any String (its bytes, NULs included). */
%define FSC_RB_BUFFER(PTR, LEN)
%typemap(in) (PTR, LEN) {
    StringValue($input);
    $1 = ($1_ltype)RSTRING_PTR($input);
    $2 = ($2_ltype)RSTRING_LEN($input);
}
%enddef
FSC_RB_BUFFER(const void *key, size_t key_len)
FSC_RB_BUFFER(const void *data, size_t len)

/* Statistics and verify reports: [status, Hash]. */
%typemap(in, numinputs=0) fsc_statistics *out (fsc_statistics stats) {
    memset(&stats, 0, sizeof stats);
    stats.size = sizeof stats;
    $1 = &stats;
}
%typemap(argout) fsc_statistics *out {
    VALUE h = rb_hash_new();
    rb_hash_aset(h, ID2SYM(rb_intern("entries")), ULL2NUM(stats$argnum.entries));
    rb_hash_aset(h, ID2SYM(rb_intern("bytes")), ULL2NUM(stats$argnum.bytes));
    rb_hash_aset(h, ID2SYM(rb_intern("cache_size")), ULL2NUM(stats$argnum.cache_size));
    rb_hash_aset(h, ID2SYM(rb_intern("hits")), ULL2NUM(stats$argnum.hits));
    rb_hash_aset(h, ID2SYM(rb_intern("misses")), ULL2NUM(stats$argnum.misses));
    rb_hash_aset(h, ID2SYM(rb_intern("sets")), ULL2NUM(stats$argnum.sets));
    rb_hash_aset(h, ID2SYM(rb_intern("evictions")), ULL2NUM(stats$argnum.evictions));
    rb_hash_aset(h, ID2SYM(rb_intern("expirations")), ULL2NUM(stats$argnum.expirations));
    rb_hash_aset(h, ID2SYM(rb_intern("network_fs")), stats$argnum.network_fs ? Qtrue : Qfalse);
    rb_hash_aset(h, ID2SYM(rb_intern("network_mode")), stats$argnum.network_mode ? Qtrue : Qfalse);
    $result = SWIG_Ruby_AppendOutput($result, h);
}
%typemap(in, numinputs=0) fsc_verify_report *out (fsc_verify_report report) {
    memset(&report, 0, sizeof report);
    report.size = sizeof report;
    $1 = &report;
}
%typemap(argout) fsc_verify_report *out {
    VALUE h = rb_hash_new();
    rb_hash_aset(h, ID2SYM(rb_intern("checked")), ULL2NUM(report$argnum.checked));
    rb_hash_aset(h, ID2SYM(rb_intern("problems")), ULL2NUM(report$argnum.problems));
    rb_hash_aset(h, ID2SYM(rb_intern("repaired")), ULL2NUM(report$argnum.repaired));
    $result = SWIG_Ruby_AppendOutput($result, h);
}

/* Replaced by the helpers below: fsc_lock without the GVL, and (ignored in
 * ../fsc.i) fsc_get_or_create likewise, callbacks as procs, reads straight
 * into a String. */
%ignore fsc_lock;

%rename(Options) fsc_options;
%rename(Statistics) fsc_statistics;
%rename(VerifyReport) fsc_verify_report;

%{
/* A proc called from a C callback, and the rb_protect state it ended with. */
typedef struct {
    VALUE proc;
    VALUE args; /* an Array of arguments, or Qnil */
    VALUE result;
    int state;
} fsc_rb_callback;

static VALUE fsc_rb_call(VALUE p) {
    fsc_rb_callback *cb = (fsc_rb_callback *)p;
    if (NIL_P(cb->args))
        return rb_funcall(cb->proc, rb_intern("call"), 0);
    return rb_funcallv(cb->proc, rb_intern("call"), (int)RARRAY_LEN(cb->args), RARRAY_CONST_PTR(cb->args));
}

static void *fsc_rb_call_protected(void *p) {
    fsc_rb_callback *cb = (fsc_rb_callback *)p;
    cb->result = rb_protect(fsc_rb_call, (VALUE)cb, &cb->state);
    return NULL;
}

static int fsc_rb_creator(void *ctx, fsc_cache *c, const void *key, size_t key_len) {
    fsc_rb_callback *cb = (fsc_rb_callback *)ctx;
    rb_thread_call_with_gvl(fsc_rb_call_protected, cb);
    return cb->state != 0;
}

/* Runs with the GVL held (fsc_foreach is called without releasing it). */
static int fsc_rb_visitor(void *ctx, const void *key, size_t key_len, uint64_t size, int64_t created_ms) {
    fsc_rb_callback *cb = (fsc_rb_callback *)ctx;
    cb->args = rb_ary_new_from_args(3, rb_str_new((const char *)key, (long)key_len), ULL2NUM(size),
                                    LL2NUM(created_ms));
    fsc_rb_call_protected(cb);
    if (cb->state)
        return 1;
    return RTEST(cb->result) ? 1 : 0;
}

typedef struct {
    fsc_cache *c;
    void *key;
    size_t key_len;
    int64_t timeout_ms;
    fsc_creator create;
    void *ctx;
    fsc_lock_handle **lock_out;
    fsc_entry **entry_out;
    int rc;
} fsc_rb_blocking_call;

static void *fsc_rb_lock_nogvl(void *p) {
    fsc_rb_blocking_call *a = (fsc_rb_blocking_call *)p;
    a->rc = fsc_lock(a->c, a->key, a->key_len, a->timeout_ms, a->lock_out);
    return NULL;
}

static void *fsc_rb_get_or_create_nogvl(void *p) {
    fsc_rb_blocking_call *a = (fsc_rb_blocking_call *)p;
    a->rc = fsc_get_or_create(a->c, a->key, a->key_len, a->timeout_ms, a->create, a->ctx, a->entry_out);
    return NULL;
}

/* The key is copied: another thread may change the String while the GVL is
 * released. */
static void *fsc_rb_copy_key(const void *key, size_t key_len) {
    void *copy = malloc(key_len ? key_len : 1);
    if (copy == NULL)
        rb_raise(rb_eNoMemError, "fsc: cannot copy a key of %lu bytes", (unsigned long)key_len);
    memcpy(copy, key, key_len);
    return copy;
}
%}

%inline %{
/* fsc_lock without the GVL: [status, handle]. A lock wait cannot be
 * interrupted; give a timeout to bound it. */
int fsc_rb_lock(fsc_cache *c, const void *key, size_t key_len, int64_t timeout_ms, fsc_lock_handle **out) {
    fsc_rb_blocking_call a;
    memset(&a, 0, sizeof a);
    a.c = c;
    a.key = fsc_rb_copy_key(key, key_len);
    a.key_len = key_len;
    a.timeout_ms = timeout_ms;
    a.lock_out = out;
    rb_thread_call_without_gvl(fsc_rb_lock_nogvl, &a, NULL, NULL);
    free(a.key);
    return a.rc;
}

/* fsc_get_or_create without the GVL; creator is a proc that stores the value
 * itself. [status, entry]; the proc's exception (or throw) is re-raised. */
int fsc_rb_get_or_create(fsc_cache *c, const void *key, size_t key_len, int64_t expiration_ms, VALUE creator,
                         fsc_entry **out) {
    fsc_rb_callback cb;
    fsc_rb_blocking_call a;
    cb.proc = creator;
    cb.args = Qnil;
    cb.result = Qnil;
    cb.state = 0;
    memset(&a, 0, sizeof a);
    a.c = c;
    a.key = fsc_rb_copy_key(key, key_len);
    a.key_len = key_len;
    a.timeout_ms = expiration_ms;
    a.create = fsc_rb_creator;
    a.ctx = &cb;
    a.entry_out = out;
    rb_thread_call_without_gvl(fsc_rb_get_or_create_nogvl, &a, NULL, NULL);
    free(a.key);
    RB_GC_GUARD(creator);
    if (cb.state) {
        if (a.rc >= 0 && *out != NULL) { /* cannot happen: a failed creator stores nothing */
            fsc_entry_free(*out);
            *out = NULL;
        }
        rb_jump_tag(cb.state);
    }
    return a.rc;
}

/* fsc_foreach with a proc called as visitor.call(key, size, created_ms); a
 * truthy result stops the walk. Returns the status (> 0 when stopped). */
int fsc_rb_foreach(fsc_cache *c, VALUE visitor) {
    fsc_rb_callback cb;
    cb.proc = visitor;
    cb.args = Qnil;
    cb.result = Qnil;
    cb.state = 0;
    int rc = fsc_foreach(c, fsc_rb_visitor, &cb);
    RB_GC_GUARD(visitor);
    if (cb.state)
        rb_jump_tag(cb.state);
    return rc;
}

/* The value from the entry's cursor to its end: [status, String or nil]
 * (ASCII-8BIT); the checksum is verified when the read reaches the end. */
VALUE fsc_rb_entry_read_all(fsc_entry *e) {
    if (e == NULL)
        rb_raise(rb_eArgError, "entry is nil");
    uint64_t want = fsc_entry_size(e) - fsc_entry_offset(e);
    VALUE str = rb_str_buf_new((long)want);
    char *p = RSTRING_PTR(str);
    uint64_t have = 0;
    int rc = FSC_OK;
    while (have < want) {
        size_t got = 0;
        rc = fsc_entry_read(e, p + have, (size_t)(want - have), &got);
        if (rc != FSC_OK || got == 0)
            break;
        have += got;
    }
    if (rc == FSC_OK && have != want)
        rc = FSC_ECORRUPT;
    if (rc != FSC_OK)
        return rb_ary_new_from_args(2, INT2NUM(rc), Qnil);
    rb_str_set_len(str, (long)want);
    return rb_ary_new_from_args(2, INT2NUM(rc), str);
}

/* A descriptor of the entry's file sharing its offset (the caller owns it), or -1. */
int fsc_rb_entry_dup_fd(fsc_entry *e) {
    int fd = fsc_entry_fd(e);
    return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);
}
%}
