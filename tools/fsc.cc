// fsc: the command line of the fsc cache library.
#include "cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

namespace cli {

namespace {

const char main_help[] =
    "Usage: fsc [-d DIR] [-s SIZE] [--shared-group GROUP] [--network-mode MODE]\n"
    "           COMMAND [ARGS...]\n"
    "\n"
    "A persistent, size-bounded filesystem cache shared by processes.\n"
    "\n"
    "Commands:\n"
    "  run [OPTIONS] -- CMD...   run CMD once and replay its output and exit code\n"
    "  get KEY [-o FILE]         write a value to stdout or FILE\n"
    "  put KEY [FILE|-]          store FILE (or stdin) as the key's value\n"
    "  rm KEY...                 remove values\n"
    "  ls [--json]               list keys with sizes and ages\n"
    "  stats [--json]            show sizes, counters and the hit rate\n"
    "  lock KEY -- CMD...        run CMD while holding the key's lock\n"
    "  prune                     drop expired values and evict down to the size limit\n"
    "  verify [--repair]         check (and repair) every file of the cache\n"
    "  clear                     remove every value\n"
    "  help [COMMAND]            show this help or a command's help\n"
    "\n"
    "Options:\n"
    "  -d, --dir DIR     the cache directory; default $FSC_DIR, else\n"
    "                    $XDG_CACHE_HOME/fsc, else ~/.cache/fsc\n"
    "  -s, --size SIZE   the cache's size limit for this process (64M, 10G;\n"
    "                    0 = unbounded); default 1 GiB\n"
    "  --shared-group GROUP  share the cache with GROUP (a name or gid): its\n"
    "                    members may use it; without it, a cache another user\n"
    "                    owns or others may write is refused\n"
    "  --network-mode auto|on|off  network mode, for a cache that hosts share\n"
    "                    over a network filesystem: auto (the default) turns it\n"
    "                    on when the cache is on a network or FUSE filesystem\n"
    "  -h, --help        show this help\n"
    "  -V, --version     show the versions of fsc and of the library\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  a miss (get), a busy lock (lock), or a failure\n"
    "  2  bad usage\n"
    "  run and lock exit with the command's own code (127: not found,\n"
    "  126: not executable, 128+N: killed by signal N).\n"
    "\n"
    "Run 'fsc help COMMAND' or 'fsc COMMAND --help' for a command's options.\n";

const std::map<std::string, const char *> command_help = {
    {"run",
     "Usage: fsc run [OPTIONS] [--] CMD [ARGS...]\n"
     "\n"
     "Runs CMD once and caches its stdout, its stderr and its exit code;\n"
     "later runs replay the same bytes and exit with the same code without\n"
     "running CMD. Concurrent identical runs wait for the one that runs CMD.\n"
     "The key is CMD's argv joined by NUL bytes, plus what --env and --cwd add.\n"
     "\n"
     "Options:\n"
     "  -t, --ttl DURATION      the output expires after DURATION (30s, 5m, 2h,\n"
     "                          1d, 1w, 250ms; a plain number is seconds);\n"
     "                          default: never\n"
     "  -s, --stale DURATION    an expired output younger than ttl + DURATION is\n"
     "                          replayed at once while a background process runs\n"
     "                          CMD again (needs --ttl)\n"
     "  -D, --discard-failures  do not cache a non-zero exit (output still shown)\n"
     "  -k, --key KEY           use KEY instead of the argv as the key\n"
     "  -e, --env VAR           add the value of the environment variable VAR to\n"
     "                          the key (repeatable)\n"
     "  -C, --cwd               add the working directory to the key\n"
     "  -h, --help              show this help\n"
     "\n"
     "stdout is replayed before stderr. A command killed by a signal is not\n"
     "cached. If storing the output fails (e.g. it exceeds the size limit) the\n"
     "output is still shown, with a warning.\n"
     "\n"
     "Exit status: the command's (127: not found, 126: not executable,\n"
     "128+N: killed by signal N); 1 if fsc itself fails; 2 on bad usage.\n"},
    {"get",
     "Usage: fsc get [-e] [-o FILE] KEY\n"
     "\n"
     "Writes the key's value to stdout (or FILE), streaming it.\n"
     "\n"
     "Options:\n"
     "  -o, --output FILE   write to FILE instead of stdout\n"
     "  -e, --escaped       KEY uses the escapes that 'fsc ls' prints (\\x00, \\\\)\n"
     "  -h, --help          show this help\n"
     "\n"
     "Exit status: 0 found, 1 missing (message on stderr) or failure, 2 bad usage.\n"},
    {"put",
     "Usage: fsc put [-e] KEY [FILE|-]\n"
     "\n"
     "Stores a copy of FILE as the key's value. Without FILE, or with '-',\n"
     "stdin is stored; stdin, a pipe or a device is first spooled to a temp\n"
     "file in $TMPDIR (default /tmp), never held whole in memory.\n"
     "\n"
     "Options:\n"
     "  -e, --escaped   KEY uses the escapes that 'fsc ls' prints\n"
     "  -h, --help      show this help\n"
     "\n"
     "Exit status: 0 stored, 1 failure, 2 bad usage.\n"},
    {"rm",
     "Usage: fsc rm [-f] [-e] KEY...\n"
     "\n"
     "Removes the keys' values.\n"
     "\n"
     "Options:\n"
     "  -f, --force     a missing key is not an error\n"
     "  -e, --escaped   keys use the escapes that 'fsc ls' prints\n"
     "  -h, --help      show this help\n"
     "\n"
     "Exit status: 0 all removed, 1 a key was missing (without -f) or a\n"
     "failure, 2 bad usage.\n"},
    {"ls",
     "Usage: fsc ls [--json]\n"
     "\n"
     "Lists the stored values: size, age and key, sorted by key. Printable\n"
     "keys are shown as text; other bytes as \\xHH and a backslash as \\\\.\n"
     "\n"
     "Options:\n"
     "  -j, --json      one JSON array of {key, key_hex, size, created_ms, age_ms}\n"
     "  -l, --bytes     sizes in bytes instead of KiB/MiB\n"
     "  -h, --help      show this help\n"
     "\n"
     "Exit status: 0 ok, 1 failure, 2 bad usage.\n"},
    {"stats",
     "Usage: fsc stats [--json]\n"
     "\n"
     "Shows the number of values, the bytes on disk, the size limit, and the\n"
     "hits, misses, sets, evictions and expirations counted since the cache\n"
     "was created, with the hit rate, whether the cache is on a network or\n"
     "FUSE filesystem, and whether this process uses it in network mode\n"
     "(--network-mode).\n"
     "\n"
     "Options:\n"
     "  -j, --json      one JSON object\n"
     "  -h, --help      show this help\n"
     "\n"
     "Exit status: 0 ok, 1 failure (also when the library does not support\n"
     "statistics), 2 bad usage.\n"},
    {"lock",
     "Usage: fsc lock [-w SECONDS | -n] [-e] KEY -- CMD [ARGS...]\n"
     "\n"
     "Runs CMD while holding the key's lock: the same lock that guards the\n"
     "key's regeneration in 'fsc run' and in every program using the cache.\n"
     "\n"
     "Options:\n"
     "  -w, --wait SECONDS  give up after SECONDS (also 500ms, 2m...)\n"
     "  -n, --nonblock      give up at once if the lock is held\n"
     "  -e, --escaped       KEY uses the escapes that 'fsc ls' prints\n"
     "  -h, --help          show this help\n"
     "\n"
     "Exit status: the command's (127: not found, 126: not executable);\n"
     "1 if the lock is held (with -n or -w) or fsc fails; 2 on bad usage.\n"},
    {"prune",
     "Usage: fsc prune\n"
     "\n"
     "Drops expired values, then evicts the least recently used ones down to\n"
     "the size limit (-s). Shows progress on a terminal.\n"
     "\n"
     "Exit status: 0 ok, 1 failure (also when the library does not support\n"
     "it), 2 bad usage.\n"},
    {"verify",
     "Usage: fsc verify [--repair]\n"
     "\n"
     "Checks every file of the cache. Shows progress on a terminal.\n"
     "\n"
     "Options:\n"
     "  -r, --repair    fix what a crash or a hand edit left behind\n"
     "  -h, --help      show this help\n"
     "\n"
     "Exit status: 0 no problem left, 1 problems left or failure (also when\n"
     "the library does not support it), 2 bad usage.\n"},
    {"clear",
     "Usage: fsc clear\n"
     "\n"
     "Removes every value (statistics and locks are kept). Shows progress on\n"
     "a terminal.\n"
     "\n"
     "Exit status: 0 ok, 1 failure, 2 bad usage.\n"},
    {"help",
     "Usage: fsc help [COMMAND]\n"
     "\n"
     "Shows the tool's help or a command's help.\n"},
};

// A command's arguments, parsed: whether --help was asked for, the options
// given (each with its last argument) and the operands.
struct CommandLine {
    bool help = false;
    std::map<int, std::string> given;
    std::vector<std::string> operands;
    bool has(int id) const { return given.count(id) != 0; }
};

// Parses a command's arguments; more than max_operands operands is a usage
// error. --help prints the command's help (and nothing is checked further).
CommandLine parse_command(const std::string &cmd, const std::vector<std::string> &args,
                          const std::vector<OptSpec> &specs, size_t max_operands) {
    CommandLine line;
    for (const auto &o : parse_options(cmd, args, specs, false, &line.operands)) {
        if (o.id == 'h') {
            line.help = true;
            print_help(cmd);
            return line;
        }
        line.given[o.id] = o.arg;
    }
    if (line.operands.size() > max_operands)
        throw UsageError(cmd, "unexpected argument '" + line.operands[max_operands] + "'");
    return line;
}

const size_t any_operands = SIZE_MAX;

std::string key_arg(const std::string &cmd, const std::string &text, bool escaped) {
    std::string key = text;
    if (escaped && !unescape_key(text, &key))
        throw UsageError(cmd, "bad escape in key '" + text + "'");
    if (key.empty())
        throw UsageError(cmd, "the key is empty");
    if (key.size() > FSC_MAX_KEY)
        throw UsageError(cmd, "the key is longer than " + std::to_string(FSC_MAX_KEY) + " bytes");
    return key;
}

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

int cmd_get(const Global &g, const std::vector<std::string> &args) {
    CommandLine line =
        parse_command("get", args, {{"output", 'o', true, 'o'}, {"escaped", 'e', false, 'e'}}, any_operands);
    if (line.help)
        return exit_ok;
    const std::vector<std::string> &operands = line.operands;
    std::string output = line.has('o') ? line.given['o'] : std::string();
    bool escaped = line.has('e');
    if (operands.size() != 1)
        throw UsageError("get", operands.empty() ? "no key given" : "only one key, please");
    std::string key = key_arg("get", operands[0], escaped);

    Cache cache(g);
    fsc_entry *raw = nullptr;
    int rc = fsc_get(cache.get(), key.data(), key.size(), &raw);
    if (rc == FSC_MISS) {
        std::fprintf(stderr, "fsc: get: no value for key '%s' in '%s'\n", escape_key(key).c_str(),
                     cache.dir().c_str());
        return exit_fail;
    }
    if (rc != FSC_OK)
        fail_fsc("get '" + escape_key(key) + "'", rc);
    EntryPtr e(raw);

    int fd = STDOUT_FILENO;
    std::string shown = "stdout";
    if (!output.empty() && output != "-") {
        fd = open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0)
            fail_errno("get: cannot write '" + output + "'", errno);
        shown = "'" + output + "'";
    }
    struct CloseOut {
        int fd;
        ~CloseOut() {
            if (fd != STDOUT_FILENO)
                close(fd);
        }
    } closer{fd};
    static char buf[1 << 16];
    for (;;) {
        size_t got = 0;
        rc = fsc_entry_read(raw, buf, sizeof buf, &got);
        if (rc != FSC_OK)
            fail_fsc("get: read '" + escape_key(key) + "'", rc);
        if (got == 0)
            break;
        write_all(fd, buf, got, shown.c_str());
    }
    if (fd != STDOUT_FILENO) {
        closer.fd = STDOUT_FILENO;
        if (close(fd) != 0)
            fail_errno("get: cannot write '" + output + "'", errno);
    }
    return exit_ok;
}

int cmd_put(const Global &g, const std::vector<std::string> &args) {
    CommandLine line = parse_command("put", args, {{"escaped", 'e', false, 'e'}}, 2);
    if (line.help)
        return exit_ok;
    const std::vector<std::string> &operands = line.operands;
    bool escaped = line.has('e');
    if (operands.empty())
        throw UsageError("put", "no key given");
    std::string key = key_arg("put", operands[0], escaped);
    std::string file = operands.size() == 2 ? operands[1] : "-";

    int rc;
    int in_fd = STDIN_FILENO;
    std::string shown = "stdin";
    struct CloseIn {
        int fd;
        ~CloseIn() {
            if (fd != STDIN_FILENO)
                close(fd);
        }
    } in_closer{STDIN_FILENO};
    if (file != "-") {
        in_fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
        if (in_fd < 0)
            fail_errno("put: cannot read '" + file + "'", errno);
        in_closer.fd = in_fd;
        shown = "'" + file + "'";
        struct stat st;
        if (fstat(in_fd, &st) != 0)
            fail_errno("put: cannot read '" + file + "'", errno);
        if (S_ISDIR(st.st_mode))
            throw Failure("put: '" + file + "' is a directory");
        if (S_ISREG(st.st_mode)) {
            Cache cache(g);
            // The descriptor already checked, not the name again: it may have been replaced since.
            rc = fsc_set_file(cache.get(), key.data(), key.size(), in_fd, nullptr, 0);
            if (rc != FSC_OK)
                fail_fsc("put '" + file + "' into '" + cache.dir() + "'", rc);
            return exit_ok;
        }
    }
    // stdin, a pipe or a device: spool it in chunks, never whole in memory.
    int fd = make_temp_file("put");
    struct CloseFd {
        int fd;
        ~CloseFd() { close(fd); }
    } closer{fd};
    static char buf[1 << 16];
    for (;;) {
        ssize_t n = read(in_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail_errno("put: read " + shown, errno);
        if (n == 0)
            break;
        write_all(fd, buf, size_t(n), "a temp file");
    }
    if (lseek(fd, 0, SEEK_SET) < 0)
        fail_errno("put: seek a temp file", errno);
    Cache cache(g);
    rc = fsc_set_file(cache.get(), key.data(), key.size(), fd, nullptr, 0);
    if (rc != FSC_OK)
        fail_fsc("put " + shown + " into '" + cache.dir() + "'", rc);
    return exit_ok;
}

int cmd_rm(const Global &g, const std::vector<std::string> &args) {
    CommandLine line =
        parse_command("rm", args, {{"force", 'f', false, 'f'}, {"escaped", 'e', false, 'e'}}, any_operands);
    if (line.help)
        return exit_ok;
    const std::vector<std::string> &operands = line.operands;
    bool escaped = line.has('e'), force = line.has('f');
    if (operands.empty())
        throw UsageError("rm", "no key given");
    std::vector<std::string> keys;
    for (const auto &k : operands)
        keys.push_back(key_arg("rm", k, escaped));
    Cache cache(g);
    int result = exit_ok;
    for (const auto &key : keys) {
        int rc = fsc_delete(cache.get(), key.data(), key.size());
        if (rc == FSC_MISS) {
            if (!force) {
                std::fprintf(stderr, "fsc: rm: no value for key '%s'\n", escape_key(key).c_str());
                result = exit_fail;
            }
        } else if (rc != FSC_OK) {
            std::fprintf(stderr, "fsc: %s\n", fsc_error("rm '" + escape_key(key) + "'", rc).c_str());
            result = exit_fail;
        }
    }
    return result;
}

struct Listed {
    std::string key;
    uint64_t size;
    int64_t created_ms;
};

int collect(void *ctx, const void *key, size_t key_len, uint64_t size, int64_t created_ms) {
    auto *out = static_cast<std::vector<Listed> *>(ctx);
    out->push_back({std::string(static_cast<const char *>(key), key_len), size, created_ms});
    return 0;
}

int cmd_ls(const Global &g, const std::vector<std::string> &args) {
    CommandLine line = parse_command("ls", args, {{"json", 'j', false, 'j'}, {"bytes", 'l', false, 'l'}}, 0);
    if (line.help)
        return exit_ok;
    bool json = line.has('j'), bytes = line.has('l');
    Cache cache(g);
    std::vector<Listed> items;
    int rc = fsc_foreach(cache.get(), collect, &items);
    if (rc != FSC_OK)
        fail_fsc("ls '" + cache.dir() + "'", rc);
    std::sort(items.begin(), items.end(), [](const Listed &a, const Listed &b) { return a.key < b.key; });
    int64_t now = now_ms();
    if (json) {
        std::printf("[");
        for (size_t i = 0; i < items.size(); i++) {
            const auto &it = items[i];
            std::printf("%s\n  {\"key\": %s, \"key_hex\": \"%s\", \"size\": %" PRIu64 ", \"created_ms\": %" PRId64
                        ", \"age_ms\": %" PRId64 "}",
                        i ? "," : "", json_string(escape_key(it.key)).c_str(), hex(it.key).c_str(), it.size,
                        it.created_ms, std::max<int64_t>(0, now - it.created_ms));
        }
        std::printf("%s]\n", items.empty() ? "" : "\n");
        return exit_ok;
    }
    for (const auto &it : items) {
        std::string size = bytes ? std::to_string(it.size) : human_size(it.size);
        std::printf("%10s %5s  %s\n", size.c_str(), human_age(now - it.created_ms).c_str(),
                    escape_key(it.key).c_str());
    }
    return exit_ok;
}

int cmd_stats(const Global &g, const std::vector<std::string> &args) {
    CommandLine line = parse_command("stats", args, {{"json", 'j', false, 'j'}}, 0);
    if (line.help)
        return exit_ok;
    bool json = line.has('j');
    Cache cache(g);
    fsc_statistics st;
    std::memset(&st, 0, sizeof st);
    st.size = sizeof st;
    int rc = fsc_stats(cache.get(), &st);
    if (rc != FSC_OK)
        fail_fsc("stats of '" + cache.dir() + "'", rc);
    uint64_t lookups = st.hits + st.misses;
    double rate = lookups ? 100.0 * double(st.hits) / double(lookups) : 0.0;
    if (json) {
        std::printf("{\"dir\": %s, \"entries\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"cache_size\": %" PRIu64
                    ", \"hits\": %" PRIu64 ", \"misses\": %" PRIu64 ", \"sets\": %" PRIu64
                    ", \"evictions\": %" PRIu64 ", \"expirations\": %" PRIu64 ", \"hit_rate\": %s"
                    ", \"network_fs\": %s, \"network_mode\": %s}\n",
                    json_string(cache.dir()).c_str(), st.entries, st.bytes, st.cache_size, st.hits, st.misses,
                    st.sets, st.evictions, st.expirations,
                    lookups ? std::to_string(rate / 100.0).c_str() : "null", st.network_fs ? "true" : "false",
                    st.network_mode ? "true" : "false");
        return exit_ok;
    }
    std::printf("cache:       %s\n", cache.dir().c_str());
    std::printf("entries:     %" PRIu64 "\n", st.entries);
    if (st.cache_size)
        std::printf("size:        %s of %s (%.1f%%)\n", human_size(st.bytes).c_str(), human_size(st.cache_size).c_str(),
                    100.0 * double(st.bytes) / double(st.cache_size));
    else
        std::printf("size:        %s (unbounded)\n", human_size(st.bytes).c_str());
    std::printf("hits:        %" PRIu64 "\n", st.hits);
    std::printf("misses:      %" PRIu64 "\n", st.misses);
    if (lookups)
        std::printf("hit rate:    %.1f%%\n", rate);
    else
        std::printf("hit rate:    - (no lookups yet)\n");
    std::printf("sets:        %" PRIu64 "\n", st.sets);
    std::printf("evictions:   %" PRIu64 "\n", st.evictions);
    std::printf("expirations: %" PRIu64 "\n", st.expirations);
    std::printf("filesystem:  %s\n", st.network_fs ? "network or FUSE" : "local");
    std::printf("network mode: %s\n", st.network_mode ? "on" : "off");
    return exit_ok;
}

struct CountCtx {
    Progress *progress;
    uint64_t n = 0;
};

int count_one(void *ctx, const void *, size_t, uint64_t, int64_t) {
    auto *c = static_cast<CountCtx *>(ctx);
    c->n++;
    if ((c->n & 255) == 0)
        c->progress->set_count(c->n);
    return 0;
}

// Counts the values, with a counter on a terminal. -1 if the walk failed.
int64_t count_values(fsc_cache *c, const char *label) {
    Progress p(label);
    CountCtx ctx{&p};
    if (fsc_foreach(c, count_one, &ctx) != FSC_OK)
        return -1;
    return int64_t(ctx.n);
}

int cmd_prune(const Global &g, const std::vector<std::string> &args) {
    if (parse_command("prune", args, {}, 0).help)
        return exit_ok;
    Cache cache(g);
    int64_t before = count_values(cache.get(), "counting");
    int rc;
    {
        Progress p("pruning");
        rc = fsc_prune(cache.get());
    }
    if (rc != FSC_OK)
        fail_fsc("prune '" + cache.dir() + "'", rc);
    int64_t after = count_values(cache.get(), "counting");
    if (before >= 0 && after >= 0)
        std::printf("pruned %" PRId64 " values, %" PRId64 " left\n", std::max<int64_t>(0, before - after), after);
    return exit_ok;
}

int cmd_clear(const Global &g, const std::vector<std::string> &args) {
    if (parse_command("clear", args, {}, 0).help)
        return exit_ok;
    Cache cache(g);
    int64_t before = count_values(cache.get(), "counting");
    int rc;
    {
        Progress p("clearing");
        rc = fsc_clear(cache.get());
    }
    if (rc != FSC_OK)
        fail_fsc("clear '" + cache.dir() + "'", rc);
    if (before >= 0)
        std::printf("removed %" PRId64 " values\n", before);
    return exit_ok;
}

int cmd_verify(const Global &g, const std::vector<std::string> &args) {
    CommandLine line = parse_command("verify", args, {{"repair", 'r', false, 'r'}}, 0);
    if (line.help)
        return exit_ok;
    bool repair = line.has('r');
    Cache cache(g);
    fsc_verify_report rep;
    std::memset(&rep, 0, sizeof rep);
    rep.size = sizeof rep;
    int rc;
    {
        Progress p(repair ? "verifying and repairing" : "verifying");
        rc = fsc_verify(cache.get(), repair ? 1 : 0, &rep);
    }
    if (rc != FSC_OK)
        fail_fsc("verify '" + cache.dir() + "'", rc);
    std::printf("checked %" PRIu64 " files: %" PRIu64 " problems, %" PRIu64 " repaired\n", rep.checked, rep.problems,
                rep.repaired);
    return rep.problems > rep.repaired ? exit_fail : exit_ok;
}

std::string default_dir() {
    const char *v = std::getenv("FSC_DIR");
    if (v && *v)
        return v;
    v = std::getenv("XDG_CACHE_HOME");
    if (v && *v == '/')
        return std::string(v) + "/fsc";
    v = std::getenv("HOME");
    if (v && *v)
        return std::string(v) + "/.cache/fsc";
    return std::string();
}

} // namespace

bool print_help(const std::string &cmd) {
    auto it = command_help.find(cmd);
    if (it == command_help.end())
        return false;
    std::fputs(it->second, stdout);
    return true;
}

int run_main(int argc, char **argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    // Global options end at the command's name.
    size_t i = 0;
    Global g;
    bool dir_set = false;
    for (; i < args.size(); i++) {
        const std::string &a = args[i];
        auto value = [&](const char *name) -> std::string {
            size_t eq = a.find('=');
            if (a.rfind("--", 0) == 0 && eq != std::string::npos)
                return a.substr(eq + 1);
            if (a.size() > 2 && a[1] != '-')
                return a.substr(2);
            if (i + 1 >= args.size())
                throw UsageError("", std::string("option '") + name + "' needs an argument");
            return args[++i];
        };
        if (a == "-h" || a == "--help") {
            std::fputs(main_help, stdout);
            return exit_ok;
        } else if (a == "-V" || a == "--version") {
            std::printf("fsc %s (library %s)\n", FSC_TOOL_VERSION, fsc_version());
            return exit_ok;
        } else if (a.rfind("-d", 0) == 0 || a == "--dir" || a.rfind("--dir=", 0) == 0) {
            g.dir = value("-d");
            if (g.dir.empty())
                throw UsageError("", "the cache directory is empty");
            dir_set = true;
        } else if (a.rfind("-s", 0) == 0 || a == "--size" || a.rfind("--size=", 0) == 0) {
            std::string v = value("-s");
            if (!parse_size(v, &g.cache_size))
                throw UsageError("", "bad size '" + v + "' (try 512M, 10G or 0)");
            g.size_set = true;
        } else if (a == "--shared-group" || a.rfind("--shared-group=", 0) == 0) {
            std::string v = value("--shared-group");
            if (!parse_group(v, &g.shared_group))
                throw UsageError("", "unknown group '" + v + "'");
        } else if (a == "--network-mode" || a.rfind("--network-mode=", 0) == 0) {
            std::string v = value("--network-mode");
            if (!parse_network_mode(v, &g.network_mode))
                throw UsageError("", "bad network mode '" + v + "' (auto, on or off)");
        } else if (a == "--") {
            i++;
            break;
        } else if (!a.empty() && a[0] == '-') {
            throw UsageError("", "unknown option '" + a + "'");
        } else {
            break;
        }
    }
    if (i >= args.size())
        throw UsageError("", "no command given");
    std::string cmd = args[i];
    std::vector<std::string> rest(args.begin() + long(i) + 1, args.end());

    if (cmd == "help" || cmd == "--help") {
        if (rest.empty()) {
            std::fputs(main_help, stdout);
            return exit_ok;
        }
        if (!print_help(rest[0]))
            throw UsageError("", "unknown command '" + rest[0] + "'");
        return exit_ok;
    }
    using Fn = int (*)(const Global &, const std::vector<std::string> &);
    static const std::map<std::string, Fn> table = {
        {"get", cmd_get},     {"put", cmd_put},     {"rm", cmd_rm},         {"ls", cmd_ls},
        {"stats", cmd_stats}, {"prune", cmd_prune}, {"verify", cmd_verify}, {"clear", cmd_clear},
    };
    auto it = table.find(cmd);
    if (it == table.end() && cmd != "run" && cmd != "lock")
        throw UsageError("", "unknown command '" + cmd + "'");
    // Asking for help needs no cache directory: a missing one is reported
    // when the cache is opened.
    if (!dir_set)
        g.dir = default_dir();
    if (cmd == "run")
        return cmd_run(g, rest);
    if (cmd == "lock")
        return cmd_lock(g, rest);
    return it->second(g, rest);
}

} // namespace cli

int main(int argc, char **argv) {
    try {
        return cli::run_main(argc, argv);
    } catch (const cli::UsageError &e) {
        std::string cmd = e.command.empty() ? "fsc" : "fsc " + e.command;
        std::fprintf(stderr, "%s: %s\nTry '%s --help'.\n", cmd.c_str(), e.what(), cmd.c_str());
        return cli::exit_usage;
    } catch (const cli::Failure &e) {
        std::fprintf(stderr, "fsc: %s\n", e.what());
        return cli::exit_fail;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "fsc: %s\n", e.what());
        return cli::exit_fail;
    }
}
