// fsc run and fsc lock: commands run under the cache's per-key locks.
#include "cli.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cli {

namespace {

// ---------------------------------------------------------------------------
// Child processes

volatile sig_atomic_t g_child = 0;

void forward_signal(int sig) {
    if (g_child > 0)
        kill(pid_t(g_child), sig);
}

// While alive, SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to fsc go to the child.
class ForwardSignals {
public:
    explicit ForwardSignals(pid_t child) {
        g_child = child;
        struct sigaction sa = {};
        sa.sa_handler = forward_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        for (int i = 0; i < 4; i++)
            sigaction(sigs_[i], &sa, &old_[i]);
    }
    ~ForwardSignals() {
        for (int i = 0; i < 4; i++)
            sigaction(sigs_[i], &old_[i], nullptr);
        g_child = 0;
    }

private:
    const int sigs_[4] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    struct sigaction old_[4];
};

struct ChildResult {
    bool exec_failed = false; // the command could not be started
    int exec_errno = 0;
    bool signaled = false;
    int code = 0; // exit code, or 128 + signal
};

// Runs argv with the given descriptors as stdin/stdout/stderr (-1: inherit)
// and waits for it.
ChildResult run_child(const std::vector<std::string> &args, int in_fd, int out_fd, int err_fd) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0)
        fail_errno("pipe", errno);
    std::vector<char *> argv;
    for (const auto &a : args)
        argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);

    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(report[0]);
        close(report[1]);
        fail_errno("fork", err);
    }
    if (pid == 0) {
        if ((in_fd >= 0 && dup2(in_fd, 0) < 0) || (out_fd >= 0 && dup2(out_fd, 1) < 0) ||
            (err_fd >= 0 && dup2(err_fd, 2) < 0)) {
            int err = errno;
            ssize_t ignored = write(report[1], &err, sizeof err);
            (void)ignored;
            _exit(127);
        }
        execvp(argv[0], argv.data());
        int err = errno;
        ssize_t ignored = write(report[1], &err, sizeof err);
        (void)ignored;
        _exit(err == ENOENT ? 127 : 126);
    }
    close(report[1]);
    ForwardSignals fw(pid);
    ChildResult r;
    int err = 0;
    ssize_t n;
    do
        n = read(report[0], &err, sizeof err);
    while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == ssize_t(sizeof err)) {
        r.exec_failed = true;
        r.exec_errno = err;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            fail_errno("waitpid", errno);
    }
    if (WIFSIGNALED(status)) {
        r.signaled = true;
        r.code = 128 + WTERMSIG(status);
    } else {
        r.code = WEXITSTATUS(status);
    }
    if (r.exec_failed)
        r.code = err == ENOENT ? 127 : 126;
    return r;
}

std::string exec_message(const std::string &prog, int err) {
    return "cannot run '" + prog + "': " + std::strerror(err);
}

// ---------------------------------------------------------------------------
// The stored value of fsc run: a 32-byte header, then stdout, then stderr.

constexpr char run_magic[8] = {'F', 'S', 'C', 'R', 'U', 'N', '1', '\n'};
constexpr size_t header_size = 32;

void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= uint64_t(p[i]) << (8 * i);
    return v;
}

// Reads at most cap bytes; 0 at the end. Throws on error.
using Reader = std::function<size_t(void *, size_t)>;

void read_exact(const Reader &rd, void *buf, size_t len) {
    char *p = static_cast<char *>(buf);
    while (len > 0) {
        size_t n = rd(p, len);
        if (n == 0)
            throw Failure("the cached output is truncated");
        p += n;
        len -= n;
    }
}

// Writes the recorded stdout and stderr to fds 1 and 2; returns the exit code.
int replay(const Reader &rd) {
    unsigned char h[header_size];
    read_exact(rd, h, sizeof h);
    if (std::memcmp(h, run_magic, sizeof run_magic) != 0)
        throw Failure("the cached value was not stored by 'fsc run'");
    int code = int(get_u64(h + 8) & 0xff);
    uint64_t lens[2] = {get_u64(h + 16), get_u64(h + 24)};
    static char buf[1 << 16];
    for (int stream = 0; stream < 2; stream++) {
        uint64_t left = lens[stream];
        while (left > 0) {
            size_t want = left < sizeof buf ? size_t(left) : sizeof buf;
            size_t n = rd(buf, want);
            if (n == 0)
                throw Failure("the cached output is truncated");
            write_all(stream == 0 ? 1 : 2, buf, n, stream == 0 ? "stdout" : "stderr");
            left -= n;
        }
    }
    return code;
}

int replay_entry(fsc_entry *e) {
    return replay([e](void *buf, size_t cap) {
        size_t got = 0;
        int rc = fsc_entry_read(e, buf, cap, &got);
        if (rc != FSC_OK)
            fail_fsc("read the cached output", rc);
        return got;
    });
}

int replay_file(int fd) {
    uint64_t pos = 0;
    return replay([fd, &pos](void *buf, size_t cap) {
        for (;;) {
            ssize_t n = pread(fd, buf, cap, off_t(pos));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                fail_errno("read the command's output", errno);
            pos += uint64_t(n);
            return size_t(n);
        }
    });
}

// Appends the whole of src to dst at offset at; returns the bytes copied.
uint64_t append_file(int dst, uint64_t at, int src) {
    static char buf[1 << 16];
    uint64_t done = 0;
    for (;;) {
        ssize_t n = pread(src, buf, sizeof buf, off_t(done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail_errno("read the command's stderr", errno);
        if (n == 0)
            return done;
        const char *p = buf;
        size_t left = size_t(n);
        while (left > 0) {
            ssize_t w = pwrite(dst, p, left, off_t(at + done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                fail_errno("write the command's output to a temp file", errno);
            p += w;
            left -= size_t(w);
            done += uint64_t(w);
        }
    }
}

struct RunContext {
    std::vector<std::string> command;
    bool discard_failures = false;
    int stdin_fd = -1; // -1: inherit

    // Filled by the creator.
    bool ran = false;
    ChildResult result;
    int value_fd = -1; // header + stdout + stderr of the run
    bool store_failed = false;
    std::string store_error;
    std::string error; // a failure before the command could run

    ~RunContext() {
        if (value_fd >= 0)
            close(value_fd);
    }
};

// The creator of fsc_get_or_create: runs the command with its outputs going
// to temp files, then stores them as one value with fsc_set_file.
int run_creator(void *ctx_ptr, fsc_cache *c, const void *key, size_t key_len) {
    auto *ctx = static_cast<RunContext *>(ctx_ptr);
    try {
        if (ctx->value_fd >= 0) {
            close(ctx->value_fd);
            ctx->value_fd = -1;
        }
        ctx->value_fd = make_temp_file("run-out");
        int err_fd = make_temp_file("run-err");
        struct CloseFd {
            int fd;
            ~CloseFd() { close(fd); }
        } err_closer{err_fd};

        unsigned char h[header_size] = {};
        if (pwrite(ctx->value_fd, h, sizeof h, 0) != ssize_t(sizeof h) ||
            lseek(ctx->value_fd, off_t(header_size), SEEK_SET) < 0)
            fail_errno("write a temp file", errno);

        ctx->result = run_child(ctx->command, ctx->stdin_fd, ctx->value_fd, err_fd);
        ctx->ran = !ctx->result.exec_failed;
        if (ctx->result.exec_failed) {
            ctx->error = exec_message(ctx->command[0], ctx->result.exec_errno);
            return 1;
        }

        struct stat st;
        if (fstat(ctx->value_fd, &st) != 0)
            fail_errno("fstat a temp file", errno);
        uint64_t out_len = uint64_t(st.st_size) - header_size;
        uint64_t err_len = append_file(ctx->value_fd, uint64_t(st.st_size), err_fd);

        std::memcpy(h, run_magic, sizeof run_magic);
        put_u64(h + 8, uint64_t(ctx->result.code));
        put_u64(h + 16, out_len);
        put_u64(h + 24, err_len);
        if (pwrite(ctx->value_fd, h, sizeof h, 0) != ssize_t(sizeof h))
            fail_errno("write a temp file", errno);
        if (ftruncate(ctx->value_fd, off_t(header_size + out_len + err_len)) != 0)
            fail_errno("truncate a temp file", errno);

        // A command killed by a signal was interrupted, not answered.
        if (ctx->result.signaled || (ctx->discard_failures && ctx->result.code != 0))
            return 1;
        if (lseek(ctx->value_fd, 0, SEEK_SET) < 0)
            fail_errno("seek a temp file", errno);
        int rc = fsc_set_file(c, key, key_len, ctx->value_fd, nullptr, 0);
        if (rc != FSC_OK) {
            ctx->store_failed = true;
            ctx->store_error = fsc_error("output not cached", rc);
            return 1;
        }
        return 0;
    } catch (const std::exception &e) {
        ctx->error = e.what();
        return 1;
    }
}

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Regenerates the value in a detached process that holds the key's lock for
// the whole refresh. Returns once that process holds the lock (or found it
// taken by another refresher), so that it never outlives its purpose.
void refresh_in_background(fsc_cache *c, const std::string &key, int64_t ttl_ms, RunContext &ctx) {
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0)
        return;
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid < 0) {
        close(ready[0]);
        close(ready[1]);
        return;
    }
    if (pid == 0) {
        // First child: a new session, so the terminal's hangup and job
        // control signals do not reach the refresher; then fork again so
        // that the refresher is reparented at once and leaves no zombie.
        setsid();
        pid_t grand = fork();
        if (grand != 0)
            _exit(0);
        close(ready[0]);
        signal(SIGHUP, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        signal(SIGPIPE, SIG_DFL);
        // Nothing may keep the caller's pipes open: a shell reading our
        // output would wait for the refresh otherwise.
        int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd >= 0) {
            dup2(null_fd, 0);
            dup2(null_fd, 1);
            dup2(null_fd, 2);
        }
        fsc_lock_handle *hold = nullptr;
        if (fsc_lock(c, key.data(), key.size(), 0, &hold) != FSC_OK)
            _exit(0); // someone else is refreshing
        char one = 'L';
        ssize_t ignored = write(ready[1], &one, 1);
        (void)ignored;
        close(ready[1]);
        ctx.stdin_fd = null_fd;
        fsc_entry *e = nullptr;
        // The hold is re-entrant: get_or_create regenerates under it.
        int rc = fsc_get_or_create(c, key.data(), key.size(), ttl_ms, run_creator, &ctx, &e);
        if (rc == FSC_OK || rc == FSC_STALE)
            fsc_entry_free(e);
        fsc_unlock(hold);
        _exit(0);
    }
    close(ready[1]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    // Bounded: the refresher answers as soon as fsc_lock returns.
    struct pollfd pfd = {ready[0], POLLIN, 0};
    while (poll(&pfd, 1, 5000) < 0 && errno == EINTR) {
    }
    close(ready[0]);
}

// The option argument arg as milliseconds; else a usage error of cmd:
// "bad <noun> '<arg>' <hint>".
int64_t duration_arg(const char *cmd, const std::string &arg, const char *noun, const char *hint) {
    int64_t ms;
    if (!parse_duration_ms(arg, &ms))
        throw UsageError(cmd, std::string("bad ") + noun + " '" + arg + "' " + hint);
    return ms;
}

} // namespace

int cmd_run(const Global &g, std::vector<std::string> args) {
    enum { o_ttl = 300, o_stale, o_discard, o_key, o_env, o_cwd };
    const std::vector<OptSpec> specs = {
        {"ttl", 't', true, o_ttl},        {"stale", 's', true, o_stale}, {"discard-failures", 'D', false, o_discard},
        {"key", 'k', true, o_key},        {"env", 'e', true, o_env},     {"cwd", 'C', false, o_cwd},
    };
    std::vector<std::string> command;
    std::vector<ParsedOpt> opts = parse_options("run", args, specs, true, &command);
    int64_t ttl_ms = -1, stale_ms = -1;
    bool discard = false, use_cwd = false, has_key = false;
    std::string key_text;
    std::vector<std::string> env_names;
    for (const auto &o : opts) {
        switch (o.id) {
        case 'h': print_help("run"); return exit_ok;
        case o_ttl: ttl_ms = duration_arg("run", o.arg, "duration", "for --ttl (try 30s, 5m, 2h, 1d)"); break;
        case o_stale: stale_ms = duration_arg("run", o.arg, "duration", "for --stale (try 30s, 5m, 2h, 1d)"); break;
        case o_discard: discard = true; break;
        case o_key:
            if (o.arg.empty())
                throw UsageError("run", "--key needs a non-empty key");
            has_key = true;
            key_text = o.arg;
            break;
        case o_env:
            if (o.arg.empty() || o.arg.find('=') != std::string::npos)
                throw UsageError("run", "--env takes a variable name, not '" + o.arg + "'");
            env_names.push_back(o.arg);
            break;
        case o_cwd: use_cwd = true; break;
        }
    }
    if (command.empty())
        throw UsageError("run", "no command given");
    if (stale_ms >= 0 && ttl_ms < 0)
        throw UsageError("run", "--stale needs --ttl");

    // The key: the argv joined by NUL bytes (or --key), then the named
    // variables and the working directory, each after a NUL and a 0x01 tag.
    std::string key;
    if (has_key) {
        key = key_text;
    } else {
        for (size_t i = 0; i < command.size(); i++) {
            if (i)
                key += '\0';
            key += command[i];
        }
    }
    for (const auto &name : env_names) {
        const char *v = std::getenv(name.c_str());
        key += std::string("\0\x01", 2);
        key += v ? "env " + name + "=" + v : "unset " + name;
    }
    if (use_cwd) {
        char *cwd = getcwd(nullptr, 0);
        if (!cwd)
            fail_errno("getcwd", errno);
        key += std::string("\0\x01", 2);
        key += std::string("cwd ") + cwd;
        std::free(cwd);
    }
    if (key.size() > FSC_MAX_KEY)
        throw UsageError("run", "the command line is too long to be a key (use --key)");

    Cache cache(g);
    fsc_cache *c = cache.get();
    RunContext ctx;
    ctx.command = command;
    ctx.discard_failures = discard;

    // An expired value inside the stale window is served at once while a
    // background process regenerates it.
    if (stale_ms >= 0) {
        fsc_entry *raw = nullptr;
        int rc = fsc_get(c, key.data(), key.size(), &raw);
        if (rc == FSC_OK) {
            EntryPtr e(raw);
            int64_t age = now_ms() - fsc_entry_created_ms(raw);
            if (age < ttl_ms)
                return replay_entry(raw);
            if (age < ttl_ms + stale_ms) {
                int code = replay_entry(raw);
                refresh_in_background(c, key, ttl_ms, ctx);
                return code;
            }
        } else if (rc < 0) {
            fail_fsc("look up the cached output", rc);
        }
    }

    fsc_entry *raw = nullptr;
    int rc = fsc_get_or_create(c, key.data(), key.size(), ttl_ms, run_creator, &ctx, &raw);
    if (rc == FSC_STALE) {
        // Somebody is regenerating an expired value. Serve it only inside
        // the stale window; otherwise wait for the new value.
        int64_t age = now_ms() - fsc_entry_created_ms(raw);
        if (stale_ms >= 0 && age < ttl_ms + stale_ms) {
            EntryPtr e(raw);
            return replay_entry(raw);
        }
        fsc_entry_free(raw);
        raw = nullptr;
        fsc_lock_handle *hold = nullptr;
        int lrc = fsc_lock(c, key.data(), key.size(), -1, &hold);
        if (lrc != FSC_OK)
            fail_fsc("lock the key", lrc);
        rc = fsc_get_or_create(c, key.data(), key.size(), ttl_ms, run_creator, &ctx, &raw);
        fsc_unlock(hold);
    }
    if (rc == FSC_OK || rc == FSC_STALE) {
        EntryPtr e(raw);
        return replay_entry(raw);
    }
    if (ctx.ran) {
        // The command ran but its result was not stored: show it anyway.
        if (ctx.store_failed)
            std::fprintf(stderr, "fsc: run: %s\n", ctx.store_error.c_str());
        int code = replay_file(ctx.value_fd);
        return ctx.result.code != 0 ? ctx.result.code : code;
    }
    if (!ctx.error.empty()) {
        std::fprintf(stderr, "fsc: run: %s\n", ctx.error.c_str());
        return ctx.result.exec_failed ? ctx.result.code : exit_fail;
    }
    fail_fsc("run", rc);
}

int cmd_lock(const Global &g, std::vector<std::string> args) {
    enum { o_wait = 300, o_nowait, o_escaped };
    const std::vector<OptSpec> specs = {
        {"wait", 'w', true, o_wait}, {"timeout", 0, true, o_wait}, {"nonblock", 'n', false, o_nowait},
        {"no-wait", 0, false, o_nowait}, {"escaped", 'e', false, o_escaped},
    };
    // Options may come before or after KEY; the command follows "--".
    std::vector<std::string> before, command;
    bool has_dashes = false;
    for (size_t i = 0; i < args.size(); i++) {
        if (args[i] == "--" && !has_dashes) {
            has_dashes = true;
            command.assign(args.begin() + long(i) + 1, args.end());
            break;
        }
        before.push_back(args[i]);
    }
    std::vector<std::string> operands;
    std::vector<ParsedOpt> opts = parse_options("lock", before, specs, !has_dashes, &operands);
    int64_t timeout_ms = -1;
    bool escaped = false;
    for (const auto &o : opts) {
        switch (o.id) {
        case 'h': print_help("lock"); return exit_ok;
        case o_wait: timeout_ms = duration_arg("lock", o.arg, "timeout", "for -w (seconds, or 500ms, 2m...)"); break;
        case o_nowait: timeout_ms = 0; break;
        case o_escaped: escaped = true; break;
        }
    }
    if (operands.empty())
        throw UsageError("lock", "no key given");
    std::string key = operands[0];
    if (!has_dashes)
        command.assign(operands.begin() + 1, operands.end());
    else if (operands.size() > 1)
        throw UsageError("lock", "unexpected '" + operands[1] + "' before '--'");
    if (command.empty())
        throw UsageError("lock", "no command given");
    if (escaped && !unescape_key(operands[0], &key))
        throw UsageError("lock", "bad escape in key '" + operands[0] + "'");
    if (key.empty())
        throw UsageError("lock", "the key is empty");

    Cache cache(g);
    fsc_lock_handle *hold = nullptr;
    int rc = fsc_lock(cache.get(), key.data(), key.size(), timeout_ms, &hold);
    if (rc == FSC_EBUSY || rc == FSC_ETIMEDOUT) {
        int64_t pid = 0;
        std::string who;
        if (fsc_lock_holder(cache.get(), key.data(), key.size(), &pid) == FSC_OK && pid > 0)
            who = " by process " + std::to_string(pid);
        std::fprintf(stderr, "fsc: lock: '%s' is locked%s%s\n", escape_key(key).c_str(), who.c_str(),
                     rc == FSC_ETIMEDOUT ? " (timed out)" : "");
        return exit_fail;
    }
    if (rc != FSC_OK)
        fail_fsc("lock '" + escape_key(key) + "'", rc);
    ChildResult r;
    try {
        r = run_child(command, -1, -1, -1);
    } catch (...) {
        fsc_unlock(hold);
        throw;
    }
    fsc_unlock(hold);
    if (r.exec_failed)
        std::fprintf(stderr, "fsc: lock: %s\n", exec_message(command[0], r.exec_errno).c_str());
    return r.code;
}

} // namespace cli
