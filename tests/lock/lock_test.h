/* Plumbing of the lock and dogpile tests: pipes that say "go", statuses
 * carried in children's exit codes, probes that try a key's lock from another
 * thread or process, and a wait for "this process is blocked on a record
 * lock" read from the kernel instead of guessed with a delay. Children are
 * forked with fsc_test_fork (fsc_test.h). */
#ifndef FSC_LOCK_TEST_H
#define FSC_LOCK_TEST_H

#include "fsc_test.h"

#include <pthread.h>

/* The same safety net for the test process itself (default action: die). */
#define LT_TEST_SECONDS 60

#define LT_KEY(s) (s), strlen(s)

/* ------------------------------------------------------------------ */
/* Pipes                                                               */
/* ------------------------------------------------------------------ */

typedef struct lt_pipe {
    int r, w;
} lt_pipe;

static inline lt_pipe lt_pipe_new(void) {
    int fds[2];
    if (pipe(fds) != 0)
        fail_msg("pipe: %s", strerror(errno));
    return (lt_pipe){fds[0], fds[1]};
}

static inline void lt_close(int *fd) {
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static inline void lt_pipe_close(lt_pipe *p) {
    lt_close(&p->r);
    lt_close(&p->w);
}

/* Sends one byte ("go", "I hold it", ...). Returns 1 on success. */
static inline int lt_send(int fd) {
    char b = 'x';
    ssize_t n;
    do
        n = write(fd, &b, 1);
    while (n < 0 && errno == EINTR);
    return n == 1;
}

/* Blocks until one byte arrives: 1, or 0 when every writer has gone (a
 * crashed peer therefore never leaves the reader hanging). */
static inline int lt_recv(int fd) {
    char b;
    ssize_t n;
    do
        n = read(fd, &b, 1);
    while (n < 0 && errno == EINTR);
    return n == 1;
}

/* ------------------------------------------------------------------ */
/* Processes                                                           */
/* ------------------------------------------------------------------ */

/* A child's status travels in its exit code as 100 + status. */
#define LT_STATUS_BASE 100

static inline int lt_decode_status(int code) {
    if (code < LT_STATUS_BASE - 20 || code > LT_STATUS_BASE + 5)
        fail_msg("child failed with exit code %d", code);
    return code - LT_STATUS_BASE;
}

/* In a forked child, tries the key's lock with timeout_ms (through the
 * inherited handle c, or through a handle of its own on dir when dir is
 * non-NULL) and returns the status it got; a hold taken is released. */
static inline int lt_child_lock(fsc_cache *c, const char *dir, const void *key, size_t key_len,
                                int64_t timeout_ms) {
    pid_t pid = fsc_test_fork();
    if (pid == 0) {
        fsc_cache *own = NULL;
        if (dir) {
            child_check(fsc_open(dir, NULL, &own) == FSC_OK, 2);
            c = own;
        }
        fsc_lock_handle *l = NULL;
        int st = fsc_lock(c, key, key_len, timeout_ms, &l);
        if (st == FSC_OK)
            child_check(fsc_unlock(l) == FSC_OK, 3);
        fsc_close(own);
        _exit(LT_STATUS_BASE + st);
    }
    return lt_decode_status(tb_wait(pid));
}

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

struct lt_try {
    fsc_cache *c;
    const void *key;
    size_t key_len;
    int64_t timeout_ms;
    int status;
};

static inline void *lt_try_body(void *arg) {
    struct lt_try *t = arg;
    fsc_lock_handle *l = NULL;
    t->status = fsc_lock(t->c, t->key, t->key_len, t->timeout_ms, &l);
    if (t->status == FSC_OK && fsc_unlock(l) != FSC_OK)
        t->status = FSC_EIO;
    return NULL;
}

/* Like lt_child_lock, from another thread of this process. */
static inline int lt_thread_lock(fsc_cache *c, const void *key, size_t key_len, int64_t timeout_ms) {
    struct lt_try t = {c, key, key_len, timeout_ms, FSC_EIO};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, lt_try_body, &t), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    return t.status;
}

/* ------------------------------------------------------------------ */
/* Kernel view of blocked lock waiters                                 */
/* ------------------------------------------------------------------ */

/* 1 when /proc/locks lists pid as blocked on a record lock ("->" lines). */
static inline int lt_is_blocked(pid_t pid) {
    FILE *f = fopen("/proc/locks", "r");
    if (!f)
        return -1;
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        const char *arrow = strstr(line, "->");
        int p = 0;
        if (arrow && sscanf(arrow + 2, " %*s %*s %*s %d", &p) == 1 && p == (int)pid)
            found = 1;
    }
    fclose(f);
    return found;
}

/* Waits until pid is blocked on a record lock. A condition read from the
 * kernel, polled: the waiter is proven to wait, no delay is guessed. Returns
 * 1, or 0 if /proc/locks is unreadable; the alarm bounds it. Usable in a
 * child (no cmocka calls). */
static inline int lt_wait_blocked(pid_t pid) {
    for (;;) {
        int r = lt_is_blocked(pid);
        if (r != 0)
            return r > 0;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Forks a process that sends one byte on fd once pid is blocked on a record
 * lock: lets a process ask for a lock and have it released only after it
 * really waits. Wait for the returned pid (exit 0). */
static inline pid_t lt_send_when_blocked(pid_t pid, int fd) {
    pid_t w = fsc_test_fork();
    if (w == 0) {
        child_check(lt_wait_blocked(pid), 2);
        child_check(lt_send(fd), 3);
        _exit(0);
    }
    return w;
}

/* ------------------------------------------------------------------ */
/* Values and files                                                    */
/* ------------------------------------------------------------------ */

/* 1 when the entry's value is exactly the string s. */
static inline int lt_entry_is(fsc_entry *e, const char *s) {
    if (!e || fsc_entry_size(e) != strlen(s))
        return 0;
    const void *d = fsc_entry_data(e);
    return d && memcmp(d, s, strlen(s)) == 0;
}

/* Appends one byte with O_APPEND: concurrent writers in any process never
 * lose a byte, so the file's size counts calls. */
static inline int lt_append_byte(const char *path) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return 0;
    int ok = lt_send(fd);
    close(fd);
    return ok;
}

/* The file's size, 0 when it does not exist. */
static inline long lt_file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* A path inside the test's directory; free() it. */
static inline char *lt_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* ------------------------------------------------------------------ */
/* Fixtures                                                            */
/* ------------------------------------------------------------------ */

/* fsc_test_setup plus the test process's own alarm. */
static inline int lt_setup(void **state) {
    alarm(LT_TEST_SECONDS);
    return fsc_test_setup(state);
}

static inline int lt_teardown(void **state) {
    alarm(0);
    return fsc_test_teardown(state);
}

#define LT_TEST(f) cmocka_unit_test_setup_teardown(f, lt_setup, lt_teardown)

#endif
