/* Plumbing of the multihost tests: the two mounts run.sh passes, a cache
 * directory per test under both, self-describing values, and "agents":
 * processes that each open the cache through one host's mount with a handle
 * of their own and run the commands the test sends them through a pipe
 * (open, set, get, get_or_create, invalidate, verify), answering each
 * through another pipe. Sending one command to several agents releases them
 * together (each is blocked on its pipe); a reply read with a bound fails the
 * test when the agent waits past it. */
#ifndef FSC_MH_TEST_H
#define FSC_MH_TEST_H

#include "lock/lock_test.h"

#include <poll.h>

enum { MH_A, MH_B };

static const char *mh_mount[2];

/* Takes the two mounts run.sh appends to the program's arguments (the last
 * two); *extra is the first argument before them, if any. 0, or 2 with a
 * usage line. */
static inline int mh_args(int argc, char **argv, int extra_args, const char **extra) {
    if (argc != 3 + extra_args) {
        fprintf(stderr, "usage: %s%s MOUNT_A MOUNT_B (tests/multihost/run.sh passes the mounts)\n", argv[0],
                extra_args ? " ARG" : "");
        return 2;
    }
    if (extra)
        *extra = argv[1];
    mh_mount[MH_A] = argv[argc - 2];
    mh_mount[MH_B] = argv[argc - 1];
    /* A write to a process that died fails the test, not the program. */
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* ------------------------------------------------------------------ */
/* A cache directory per test                                          */
/* ------------------------------------------------------------------ */

/* The same path under both mounts: dir[MH_A], dir[MH_B]. */
struct mh_dirs {
    char *dir[2];
    char name[64];
};

/* The test process's own alarm (a test that hangs dies instead), and the
 * bound on its agents' lives. */
static unsigned mh_test_seconds = LT_TEST_SECONDS;

static inline int mh_setup(void **state) {
    static unsigned n;
    alarm(mh_test_seconds);
    struct mh_dirs *d = calloc(1, sizeof *d);
    snprintf(d->name, sizeof d->name, "cache-%d-%u", (int)getpid(), n++);
    for (int h = MH_A; h <= MH_B; h++)
        d->dir[h] = lt_path(mh_mount[h], d->name);
    *state = d;
    return 0;
}

static inline void mh_kill_agents(void);

/* Kills the agents a failed test left, and removes the directory through
 * B's mount (a test may have cut A off). */
static inline int mh_teardown(void **state) {
    struct mh_dirs *d = *state;
    alarm(0);
    mh_kill_agents();
    tb_rmtree(d->dir[MH_B]);
    free(d->dir[MH_A]);
    free(d->dir[MH_B]);
    free(d);
    return 0;
}

#define MH_TEST(f) cmocka_unit_test_setup_teardown(f, mh_setup, mh_teardown)

/* ------------------------------------------------------------------ */
/* Self-describing values                                              */
/* ------------------------------------------------------------------ */

/* A value carries its version, its length and a checksum of both and of
 * its bytes: a reader tells a whole value of some version from torn,
 * mixed or cut bytes without knowing what was written. */
struct mh_value_head {
    uint64_t magic, version, len, sum;
};
#define MH_VALUE_MAGIC 0x6673632d6d682d76ull
#define MH_VALUE_MIN sizeof(struct mh_value_head)

static inline uint64_t mh_value_sum(const struct mh_value_head *h, const unsigned char *body, size_t n) {
    uint64_t s = tb_fnv(TB_FNV_INIT, &h->version, sizeof h->version);
    s = tb_fnv(s, &h->len, sizeof h->len);
    return tb_fnv(s, body, n);
}

/* len >= MH_VALUE_MIN bytes of version's value, in a malloc'ed buffer. */
static inline unsigned char *mh_value_new(uint64_t version, size_t len) {
    unsigned char *buf = malloc(len);
    if (!buf)
        return NULL;
    struct mh_value_head h = {MH_VALUE_MAGIC, version, len, 0};
    tb_fill(buf + sizeof h, len - sizeof h, version * 1000003u + len);
    h.sum = mh_value_sum(&h, buf + sizeof h, len - sizeof h);
    memcpy(buf, &h, sizeof h);
    return buf;
}

/* 1 and *version when buf[0..len) is a whole value; 0 otherwise. */
static inline int mh_value_check(const unsigned char *buf, size_t len, uint64_t *version) {
    struct mh_value_head h;
    if (len < sizeof h)
        return 0;
    memcpy(&h, buf, sizeof h);
    if (h.magic != MH_VALUE_MAGIC || h.len != len || h.sum != mh_value_sum(&h, buf + sizeof h, len - sizeof h))
        return 0;
    *version = h.version;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Processes                                                           */
/* ------------------------------------------------------------------ */

/* The parent's ends of the pipes to its live children (agents, readers): a
 * child forked later closes them, so that a child sees the end of its input
 * when the parent closes its pipe, not when the last child holding a copy
 * exits; mh_teardown closes those a failed test left. */
#define MH_MAX_FDS 64
static int mh_parent_fds[MH_MAX_FDS];
static int mh_parent_fd_count;

static inline void mh_keep_fd(int fd) {
    if (mh_parent_fd_count == MH_MAX_FDS)
        fail_msg("more than %d pipe ends", MH_MAX_FDS);
    mh_parent_fds[mh_parent_fd_count++] = fd;
}

static inline void mh_drop_fd(int fd) {
    for (int i = 0; i < mh_parent_fd_count; i++)
        if (mh_parent_fds[i] == fd) {
            mh_parent_fds[i] = mh_parent_fds[--mh_parent_fd_count];
            break;
        }
    close(fd);
}

/* Every live agent: a test that fails midway leaves its agents to
 * mh_teardown, which kills them. */
#define MH_MAX_AGENTS 16
static pid_t mh_agent_pids[MH_MAX_AGENTS];
static int mh_agent_count;

static inline void mh_forget_agent(pid_t pid) {
    for (int i = 0; i < mh_agent_count; i++)
        if (mh_agent_pids[i] == pid) {
            mh_agent_pids[i] = mh_agent_pids[--mh_agent_count];
            break;
        }
}

/* fork() for a process of one host: a life bounded to `seconds` (tb_fork),
 * and in the child none of the parent's pipe ends kept above. */
static inline pid_t mh_fork(unsigned seconds) {
    pid_t pid = tb_fork(seconds);
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        for (int i = 0; i < mh_parent_fd_count; i++)
            close(mh_parent_fds[i]);
        mh_parent_fd_count = 0;
        mh_agent_count = 0;
    }
    return pid;
}

/* Waits at most ms for fd to have something to read (or its writers to be
 * gone): 1, or 0 when the time ran out. */
static inline int mh_readable_within(int fd, int64_t ms) {
    int64_t end = tb_mono_ms() + ms;
    for (;;) {
        int64_t left = end - tb_mono_ms();
        if (left < 0)
            left = 0;
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 1;
        if (n == 0 || (n < 0 && errno != EINTR))
            return 0;
    }
}

/* ------------------------------------------------------------------ */
/* Agents                                                              */
/* ------------------------------------------------------------------ */

enum mh_op {
    MH_OPEN,       /* fsc_open with the agent's options; reply: network_mode */
    MH_SET,        /* fsc_set of the value (version, len) */
    MH_GET,        /* fsc_get and a whole read; reply: version, intact */
    MH_GOC,        /* fsc_get_or_create; a creator sets the value (version, len) */
    MH_INVALIDATE, /* fsc_invalidate, soft */
    MH_VERIFY,     /* fsc_verify without repair; reply: problems */
    MH_STATS,      /* fsc_stats; reply: entries, bytes */
    MH_FINISH,     /* lets a creator that paused (MH_GOC with pause) go on */
};

struct mh_cmd {
    int op;
    int pause; /* MH_GOC: the creator replies "creating" and waits for MH_FINISH */
    char key[32];
    uint64_t version, len;
    int64_t expiration_ms; /* MH_GOC */
};

struct mh_reply {
    int status;        /* the call's status (a get's or the whole read's) */
    int intact;        /* a value was read whole and was one of ours */
    uint64_t version;  /* that value's version */
    int created;       /* MH_GOC: this agent's creator ran */
    int create_status; /* MH_GOC: the status of the creator's fsc_set */
    uint32_t network_mode;
    uint64_t problems; /* MH_VERIFY */
    uint64_t entries, bytes; /* MH_STATS */
};

struct mh_agent {
    pid_t pid;
    int cmd_w, reply_r;
};

/* How long a reply may take before the test fails: far above what any
 * command takes (a 4 MiB set, a verify), so it only trips on an agent that
 * waits for something that never comes (an open waiting on another
 * opener's close, a lock never granted). */
#define MH_REPLY_MS 30000

/* Reads a value whole through an entry: FSC_OK with *version and *intact,
 * or the read's status (FSC_ECORRUPT when the checksum fails: the read that
 * reaches the end checks it). */
static inline int mh_entry_version(fsc_entry *e, uint64_t *version, int *intact) {
    size_t len = (size_t)fsc_entry_size(e), at = 0, got = 0;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf)
        return FSC_ENOMEM;
    int st;
    do {
        st = fsc_entry_read(e, buf + at, len - at, &got);
        at += got;
    } while (st == FSC_OK && got > 0 && at < len);
    *intact = st == FSC_OK && at == len && mh_value_check(buf, len, version);
    free(buf);
    return st;
}

/* The agent's fsc_get_or_create creator and what it did. */
struct mh_creation {
    const struct mh_cmd *cmd;
    int cmd_r, reply_w;
    int created, create_status;
};

static inline int mh_set_value(fsc_cache *c, const char *key, uint64_t version, uint64_t len) {
    unsigned char *v = mh_value_new(version, (size_t)len);
    if (!v)
        return FSC_ENOMEM;
    int st = fsc_set(c, LT_KEY(key), v, (size_t)len);
    free(v);
    return st;
}

static inline int mh_creator(void *ctx, fsc_cache *c, const void *key, size_t key_len) {
    (void)key;
    (void)key_len;
    struct mh_creation *cr = ctx;
    cr->created = 1;
    if (cr->cmd->pause) {
        struct mh_reply creating = {.status = FSC_OK, .created = 1};
        struct mh_cmd finish;
        child_check(tb_write_full(cr->reply_w, &creating, sizeof creating) == 0, 3);
        child_check(tb_read_full(cr->cmd_r, &finish, sizeof finish) == 1 && finish.op == MH_FINISH, 4);
    }
    cr->create_status = mh_set_value(c, cr->cmd->key, cr->cmd->version, cr->cmd->len);
    return cr->create_status == FSC_OK ? 0 : 1;
}

/* One command, run in the agent. */
static inline struct mh_reply mh_agent_run(fsc_cache **c, const char *dir, const fsc_options *opts,
                                           const struct mh_cmd *cmd, int cmd_r, int reply_w) {
    struct mh_reply r = {0};
    fsc_entry *e = NULL;
    switch (cmd->op) {
    case MH_OPEN: {
        r.status = fsc_open(dir, opts, c);
        fsc_statistics st = {.size = sizeof st};
        if (r.status == FSC_OK && fsc_stats(*c, &st) == FSC_OK)
            r.network_mode = st.network_mode;
        break;
    }
    case MH_SET:
        r.status = mh_set_value(*c, cmd->key, cmd->version, cmd->len);
        break;
    case MH_GET:
        r.status = fsc_get(*c, LT_KEY(cmd->key), &e);
        break;
    case MH_GOC: {
        struct mh_creation cr = {cmd, cmd_r, reply_w, 0, 0};
        r.status = fsc_get_or_create(*c, LT_KEY(cmd->key), cmd->expiration_ms, mh_creator, &cr, &e);
        r.created = cr.created;
        r.create_status = cr.create_status;
        break;
    }
    case MH_INVALIDATE:
        r.status = fsc_invalidate(*c, 0);
        break;
    case MH_VERIFY: {
        fsc_verify_report rep = {sizeof rep, 0, 0, 0};
        r.status = fsc_verify(*c, 0, &rep);
        r.problems = rep.problems;
        break;
    }
    case MH_STATS: {
        fsc_statistics st = {.size = sizeof st};
        r.status = fsc_stats(*c, &st);
        r.entries = st.entries;
        r.bytes = st.bytes;
        break;
    }
    default:
        child_check(!"a known command", 5);
    }
    if (e) {
        int st = mh_entry_version(e, &r.version, &r.intact);
        if (st != FSC_OK)
            r.status = st;
        fsc_entry_free(e);
    }
    if (r.status != FSC_OK && r.status != FSC_MISS && r.status != FSC_STALE)
        fprintf(stderr, "agent %d: op %d on '%s': %s (%s)\n", (int)getpid(), cmd->op, cmd->key,
                fsc_strerror(r.status), fsc_errmsg());
    return r;
}

/* Forks an agent for the cache in dir (opts NULL: defaults). It opens the
 * cache when it gets MH_OPEN (mh_agent_spawn does that unless asked not to),
 * and closes it and exits 0 when its command pipe closes (mh_agent_end).
 * `seconds` bounds its life. */
static inline struct mh_agent mh_agent_fork(const char *dir, const fsc_options *opts, unsigned seconds) {
    int cmd[2], reply[2];
    if (pipe(cmd) != 0 || pipe(reply) != 0)
        fail_msg("pipe: %s", strerror(errno));
    pid_t pid = mh_fork(seconds);
    if (pid == 0) {
        close(cmd[1]);
        close(reply[0]);
        fsc_cache *c = NULL;
        struct mh_cmd m;
        while (tb_read_full(cmd[0], &m, sizeof m) == 1) {
            struct mh_reply r = mh_agent_run(&c, dir, opts, &m, cmd[0], reply[1]);
            child_check(tb_write_full(reply[1], &r, sizeof r) == 0, 2);
        }
        fsc_close(c);
        _exit(0);
    }
    close(cmd[0]);
    close(reply[1]);
    if (mh_agent_count == MH_MAX_AGENTS)
        fail_msg("more than %d agents", MH_MAX_AGENTS);
    mh_agent_pids[mh_agent_count++] = pid;
    mh_keep_fd(cmd[1]);
    mh_keep_fd(reply[0]);
    return (struct mh_agent){pid, cmd[1], reply[0]};
}

static inline void mh_agent_send(const struct mh_agent *a, struct mh_cmd cmd) {
    if (tb_write_full(a->cmd_w, &cmd, sizeof cmd) != 0)
        fail_msg("agent %d: command not sent: %s", (int)a->pid, strerror(errno));
}

/* The agent's next reply, failing the test when none comes within ms. */
static inline struct mh_reply mh_agent_reply_within(const struct mh_agent *a, int64_t ms) {
    struct mh_reply r;
    if (!mh_readable_within(a->reply_r, ms))
        fail_msg("agent %d: no reply within %lld ms", (int)a->pid, (long long)ms);
    if (tb_read_full(a->reply_r, &r, sizeof r) != 1)
        fail_msg("agent %d ended without replying (exit code %d)", (int)a->pid, tb_wait(a->pid));
    return r;
}

static inline struct mh_reply mh_agent_reply(const struct mh_agent *a) {
    return mh_agent_reply_within(a, MH_REPLY_MS);
}

static inline struct mh_reply mh_agent_call(const struct mh_agent *a, struct mh_cmd cmd) {
    mh_agent_send(a, cmd);
    return mh_agent_reply(a);
}

/* An agent with the cache open (asserted, in network mode as default
 * options on the mount give). */
static inline struct mh_agent mh_agent_spawn(const char *dir, const fsc_options *opts) {
    struct mh_agent a = mh_agent_fork(dir, opts, mh_test_seconds);
    struct mh_reply r = mh_agent_call(&a, (struct mh_cmd){.op = MH_OPEN});
    assert_fsc_ok(r.status);
    assert_int_equal(r.network_mode, 1);
    return a;
}

/* Closes the agent's command pipe: it closes its handle and must exit 0. */
static inline void mh_agent_end(struct mh_agent *a) {
    mh_drop_fd(a->cmd_w);
    mh_drop_fd(a->reply_r);
    mh_forget_agent(a->pid);
    assert_child_exit(a->pid, 0);
}

static inline void mh_kill_agents(void) {
    while (mh_agent_count > 0)
        tb_kill(mh_agent_pids[--mh_agent_count]);
    while (mh_parent_fd_count > 0)
        close(mh_parent_fds[--mh_parent_fd_count]);
}

static inline struct mh_cmd mh_cmd_key(int op, const char *key, uint64_t version, uint64_t len) {
    struct mh_cmd c = {.op = op, .version = version, .len = len, .expiration_ms = -1};
    snprintf(c.key, sizeof c.key, "%s", key);
    return c;
}

static inline int mh_agent_set(const struct mh_agent *a, const char *key, uint64_t version, uint64_t len) {
    return mh_agent_call(a, mh_cmd_key(MH_SET, key, version, len)).status;
}

static inline struct mh_reply mh_agent_get(const struct mh_agent *a, const char *key) {
    return mh_agent_call(a, mh_cmd_key(MH_GET, key, 0, 0));
}

/* Asserts that the agent reads the key's value of that version, whole
 * (a failure names the caller's line). */
#define mh_assert_reads(a, key, want) mh_assert_reads_at(a, key, want, __FILE__, __LINE__)

static inline void mh_assert_reads_at(const struct mh_agent *a, const char *key, uint64_t want, const char *file,
                                      int line) {
    struct mh_reply r = mh_agent_get(a, key);
    if (r.status == FSC_OK && r.intact && r.version == want)
        return;
    print_error("ERROR: agent %d read '%s': %s, %s, version %llu; want version %llu\n", (int)a->pid, key,
                fsc_strerror(r.status), r.intact ? "whole" : "not whole", (unsigned long long)r.version,
                (unsigned long long)want);
    _fail(file, line);
}

#endif
