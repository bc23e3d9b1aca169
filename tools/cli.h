// Shared pieces of the fsc command line: errors, argument helpers, I/O.
#pragma once

#include <fsc.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace cli {

// Exit codes of the tool (the command's own code for run and lock).
constexpr int exit_ok = 0;
constexpr int exit_fail = 1;
constexpr int exit_usage = 2;

// Thrown for bad arguments: main prints it with a hint and exits 2.
struct UsageError : std::runtime_error {
    std::string command;
    UsageError(std::string cmd, const std::string &msg) : std::runtime_error(msg), command(std::move(cmd)) {}
};

// Thrown for a failure that has a message: main prints it and exits 1.
struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// "what: detail (FSC_X)" for a failed library call, detail from fsc_errmsg().
std::string fsc_error(const std::string &what, int status);
[[noreturn]] void fail_fsc(const std::string &what, int status);
[[noreturn]] void fail_errno(const std::string &what, int err);

// The global settings every subcommand gets.
struct Global {
    std::string dir;         // the cache directory
    uint64_t cache_size = 0; // 0: the library's default
    bool size_set = false;
    int64_t shared_group = -1; // fsc_options.shared_group
    int network_mode = FSC_NETWORK_AUTO; // fsc_options.network_mode
};

// Owns an open cache.
class Cache {
public:
    explicit Cache(const Global &g);
    ~Cache();
    Cache(const Cache &) = delete;
    Cache &operator=(const Cache &) = delete;
    fsc_cache *get() const { return c_; }
    const std::string &dir() const { return dir_; }

private:
    fsc_cache *c_ = nullptr;
    std::string dir_;
};

// Owns an entry.
struct EntryPtr {
    fsc_entry *e = nullptr;
    EntryPtr() = default;
    explicit EntryPtr(fsc_entry *p) : e(p) {}
    ~EntryPtr() { fsc_entry_free(e); }
    EntryPtr(const EntryPtr &) = delete;
    EntryPtr &operator=(const EntryPtr &) = delete;
};

// Durations: "90", "90s", "1.5m", "2h", "1d", "1w", "250ms" -> milliseconds.
// Returns false for anything else (negative included).
bool parse_duration_ms(const std::string &text, int64_t *out);
// Sizes: "1024", "64K", "10M", "2G", "1T" (binary units) -> bytes.
bool parse_size(const std::string &text, uint64_t *out);
// A group's name or number -> its gid; false for an unknown name.
bool parse_group(const std::string &text, int64_t *out);
// "auto", "on", "off" -> FSC_NETWORK_AUTO, _ON, _OFF; false for anything else.
bool parse_network_mode(const std::string &text, int *out);

std::string human_size(uint64_t bytes);  // "1.5 KiB"
std::string human_age(int64_t ms);       // "42s", "5m", "3h", "2d"

// Keys: printable bytes as text, the rest as \xHH (and a backslash as \\).
std::string escape_key(const std::string &key);
// The inverse of escape_key (also \n, \t, \r, \0); false on a bad escape.
bool unescape_key(const std::string &text, std::string *out);
std::string json_string(const std::string &text); // a quoted JSON string
std::string hex(const std::string &bytes);

// I/O that retries on EINTR and short counts; throws Failure.
void write_all(int fd, const void *buf, size_t len, const char *what);
// An unlinked temp file in $TMPDIR (default /tmp), opened read-write.
int make_temp_file(const char *tag);

// Shows a spinner with elapsed time on stderr while alive, only when
// stderr is a terminal. set_count() adds a counter to the line.
class Progress {
public:
    explicit Progress(std::string label);
    ~Progress();
    void set_count(uint64_t n);
    void stop();

private:
    struct Impl;
    Impl *impl_;
};

// Subcommands: args excludes the subcommand's name.
int cmd_run(const Global &g, std::vector<std::string> args);
int cmd_lock(const Global &g, std::vector<std::string> args);

// getopt_long over a vector, with our own messages.
struct OptSpec {
    const char *long_name; // may be nullptr
    char short_name;       // 0 if none
    bool has_arg;
    int id;
};
struct ParsedOpt {
    int id;
    std::string arg;
};
// Parses options out of args. stop_at_first: options end at the first
// operand (for commands that take a command line). Returns the options in
// order and leaves the operands in *operands. "--help"/"-h" gives id 'h'.
std::vector<ParsedOpt> parse_options(const std::string &cmd, const std::vector<std::string> &args,
                                     const std::vector<OptSpec> &specs, bool stop_at_first,
                                     std::vector<std::string> *operands);

// Prints the subcommand's help to stdout; false if unknown.
bool print_help(const std::string &cmd);

} // namespace cli
