/* A configurable creator for the fsc_get_or_create tests: it counts its
 * calls (in this process, and across processes in a file), can announce
 * itself and wait for "go" on pipes, be slow, fail, store nothing, or die. */
#ifndef FSC_DOGPILE_TEST_H
#define FSC_DOGPILE_TEST_H

#include "lock_test.h"

#include <stdatomic.h>

struct lt_creator {
    const char *value;   /* stored with fsc_set under the key; NULL: store nothing */
    int result;          /* what the creator returns */
    const char *counter; /* gets one byte per call, from any process; NULL: none */
    int64_t work_ms;     /* how long the work takes */
    int entered_fd;      /* a byte is sent here on entry; -1: none */
    int proceed_fd;      /* then a byte (or EOF) is awaited here; -1: none */
    int die;             /* SIGKILL the calling process instead of returning */
    atomic_int calls;    /* calls in this process */
};

static inline void lt_creator_init(struct lt_creator *cr, const char *value) {
    memset(cr, 0, sizeof *cr);
    cr->value = value;
    cr->entered_fd = -1;
    cr->proceed_fd = -1;
    atomic_init(&cr->calls, 0);
}

static inline int lt_create(void *ctx, fsc_cache *c, const void *key, size_t key_len) {
    struct lt_creator *cr = ctx;
    atomic_fetch_add(&cr->calls, 1);
    if (cr->counter && !lt_append_byte(cr->counter))
        return -100;
    if (cr->entered_fd >= 0 && !lt_send(cr->entered_fd))
        return -101;
    if (cr->proceed_fd >= 0)
        lt_recv(cr->proceed_fd);
    if (cr->work_ms > 0)
        tb_sleep_ms(cr->work_ms); /* the slow work itself, not synchronisation */
    if (cr->die)
        kill(getpid(), SIGKILL);
    if (cr->value && cr->result == 0 && fsc_set(c, key, key_len, cr->value, strlen(cr->value)) != FSC_OK)
        return -102;
    return cr->result;
}

/* The value currently returned by fsc_get, checked against s (NULL: a miss). */
#define assert_get_is(c, key, s)                                                                   \
    do {                                                                                           \
        fsc_entry *lt_e_ = NULL;                                                                   \
        const char *lt_want_ = (s);                                                                \
        if (lt_want_) {                                                                            \
            assert_fsc_ok(fsc_get((c), LT_KEY(key), &lt_e_));                                      \
            assert_true(lt_entry_is(lt_e_, lt_want_));                                             \
            fsc_entry_free(lt_e_);                                                                 \
        } else {                                                                                   \
            assert_fsc_status(fsc_get((c), LT_KEY(key), &lt_e_), FSC_MISS);                        \
        }                                                                                          \
    } while (0)

/* fsc_get_or_create of key with the creator cr gives the value want; cr has
 * then been called n_calls times in this process. */
#define assert_goc_gives(c, key, cr, want, n_calls)                                                \
    do {                                                                                           \
        fsc_entry *lt_e_ = NULL;                                                                   \
        assert_fsc_ok(fsc_get_or_create((c), LT_KEY(key), -1, lt_create, (cr), &lt_e_));          \
        assert_true(lt_entry_is(lt_e_, (want)));                                                   \
        fsc_entry_free(lt_e_);                                                                     \
        assert_int_equal(atomic_load(&(cr)->calls), (n_calls));                                    \
    } while (0)

/* fsc_get_or_create of key in a thread (pthread_create with
 * lt_goc_thread_body): status is what it returned, right_value whether it
 * gave the creator's value. */
struct lt_goc_thread {
    fsc_cache *c;
    const char *key;
    struct lt_creator cr;
    int status;
    int right_value;
};

static inline void *lt_goc_thread_body(void *arg) {
    struct lt_goc_thread *g = arg;
    fsc_entry *e = NULL;
    g->status = fsc_get_or_create(g->c, LT_KEY(g->key), -1, lt_create, &g->cr, &e);
    g->right_value = g->cr.value && lt_entry_is(e, g->cr.value);
    fsc_entry_free(e);
    return NULL;
}

#endif
