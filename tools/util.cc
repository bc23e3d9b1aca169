#include "cli.h"

#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

namespace cli {

std::string fsc_error(const std::string &what, int status) {
    std::string detail = fsc_errmsg();
    std::string msg = what + ": ";
    if (status == FSC_ENOTSUP)
        msg += "not supported by this build of the library";
    else if (!detail.empty())
        msg += detail;
    else if (status == FSC_MISS)
        msg += "no such key";
    else
        msg += "failed";
    msg += " (" + std::string(fsc_strerror(status)) + ")";
    return msg;
}

void fail_fsc(const std::string &what, int status) { throw Failure(fsc_error(what, status)); }

void fail_errno(const std::string &what, int err) { throw Failure(what + ": " + std::strerror(err)); }

Cache::Cache(const Global &g) : dir_(g.dir) {
    if (dir_.empty())
        throw Failure("no cache directory: pass -d DIR or set FSC_DIR, XDG_CACHE_HOME or HOME");
    fsc_options opts;
    fsc_options_init(&opts);
    if (g.size_set)
        opts.cache_size = g.cache_size;
    opts.shared_group = g.shared_group;
    opts.network_mode = g.network_mode;
    int rc = fsc_open(dir_.c_str(), &opts, &c_);
    if (rc != FSC_OK)
        fail_fsc("cannot open cache '" + dir_ + "'", rc);
}

Cache::~Cache() { fsc_close(c_); }

bool parse_duration_ms(const std::string &text, int64_t *out) {
    if (text.empty())
        return false;
    const char *s = text.c_str();
    char *end = nullptr;
    errno = 0;
    double v = std::strtod(s, &end);
    if (end == s || errno != 0 || !std::isfinite(v) || v < 0 || *s == '-' || *s == '+' || std::isspace(*s))
        return false;
    std::string unit(end);
    double scale;
    if (unit.empty() || unit == "s")
        scale = 1000;
    else if (unit == "ms")
        scale = 1;
    else if (unit == "m")
        scale = 60e3;
    else if (unit == "h")
        scale = 3600e3;
    else if (unit == "d")
        scale = 86400e3;
    else if (unit == "w")
        scale = 7 * 86400e3;
    else
        return false;
    double ms = v * scale;
    if (ms > 9.0e15)
        return false;
    *out = int64_t(std::llround(ms));
    return true;
}

bool parse_group(const std::string &text, int64_t *out) {
    if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() < 11) {
        *out = std::stoll(text);
        return *out < int64_t(gid_t(-1));
    }
    struct group *g = getgrnam(text.c_str());
    if (!g)
        return false;
    *out = g->gr_gid;
    return true;
}

bool parse_network_mode(const std::string &text, int *out) {
    if (text == "auto")
        *out = FSC_NETWORK_AUTO;
    else if (text == "on")
        *out = FSC_NETWORK_ON;
    else if (text == "off")
        *out = FSC_NETWORK_OFF;
    else
        return false;
    return true;
}

bool parse_size(const std::string &text, uint64_t *out) {
    if (text.empty() || text[0] == '-' || text[0] == '+')
        return false;
    const char *s = text.c_str();
    char *end = nullptr;
    errno = 0;
    double v = std::strtod(s, &end);
    if (end == s || errno != 0 || !std::isfinite(v) || v < 0)
        return false;
    std::string unit(end);
    if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b'))
        unit.pop_back();
    if (unit.size() == 2 && (unit[1] == 'i'))
        unit.pop_back();
    double scale = 1;
    if (unit.empty())
        scale = 1;
    else if (unit == "K" || unit == "k")
        scale = 1024.0;
    else if (unit == "M" || unit == "m")
        scale = 1024.0 * 1024;
    else if (unit == "G" || unit == "g")
        scale = 1024.0 * 1024 * 1024;
    else if (unit == "T" || unit == "t")
        scale = 1024.0 * 1024 * 1024 * 1024;
    else
        return false;
    double bytes = v * scale;
    if (bytes > 1.8e19)
        return false;
    *out = uint64_t(std::llround(bytes));
    return true;
}

std::string human_size(uint64_t bytes) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024)
        return std::to_string(bytes) + " B";
    double v = double(bytes);
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

std::string human_age(int64_t ms) {
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (s < 60)
        return std::to_string(s) + "s";
    if (s < 3600)
        return std::to_string(s / 60) + "m";
    if (s < 86400)
        return std::to_string(s / 3600) + "h";
    return std::to_string(s / 86400) + "d";
}

std::string escape_key(const std::string &key) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(key.size());
    for (unsigned char ch : key) {
        if (ch == '\\') {
            out += "\\\\";
        } else if (ch >= 0x20 && ch < 0x7f) {
            out += char(ch);
        } else {
            out += "\\x";
            out += digits[ch >> 4];
            out += digits[ch & 15];
        }
    }
    return out;
}

static int hex_value(char ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

bool unescape_key(const std::string &text, std::string *out) {
    std::string r;
    for (size_t i = 0; i < text.size(); i++) {
        if (text[i] != '\\') {
            r += text[i];
            continue;
        }
        if (++i == text.size())
            return false;
        switch (text[i]) {
        case '\\': r += '\\'; break;
        case 'n': r += '\n'; break;
        case 't': r += '\t'; break;
        case 'r': r += '\r'; break;
        case '0': r += '\0'; break;
        case 'x': {
            if (i + 2 >= text.size())
                return false;
            int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            r += char(hi * 16 + lo);
            i += 2;
            break;
        }
        default: return false;
        }
    }
    *out = std::move(r);
    return true;
}

std::string json_string(const std::string &text) {
    static const char digits[] = "0123456789abcdef";
    std::string out = "\"";
    for (unsigned char ch : text) {
        switch (ch) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        default:
            if (ch < 0x20 || ch >= 0x7f) {
                out += "\\u00";
                out += digits[ch >> 4];
                out += digits[ch & 15];
            } else {
                out += char(ch);
            }
        }
    }
    return out + "\"";
}

std::string hex(const std::string &bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char ch : bytes) {
        out += digits[ch >> 4];
        out += digits[ch & 15];
    }
    return out;
}

void write_all(int fd, const void *buf, size_t len, const char *what) {
    const char *p = static_cast<const char *>(buf);
    while (len > 0) {
        ssize_t n = ::write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail_errno(std::string("write ") + what, errno);
        }
        p += n;
        len -= size_t(n);
    }
}

int make_temp_file(const char *tag) {
    const char *dir = std::getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    std::string path = std::string(dir) + "/fsc-" + tag + ".XXXXXX";
    std::vector<char> buf(path.begin(), path.end());
    buf.push_back('\0');
    int fd = mkostemp(buf.data(), O_CLOEXEC);
    if (fd < 0)
        fail_errno("cannot create a temp file in '" + std::string(dir) + "'", errno);
    unlink(buf.data());
    return fd;
}

struct Progress::Impl {
    std::string label;
    std::atomic<uint64_t> count{0};
    std::atomic<bool> counting{false};
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::thread th;
};

Progress::Progress(std::string label) : impl_(nullptr) {
    if (!isatty(STDERR_FILENO))
        return;
    impl_ = new Impl;
    impl_->label = std::move(label);
    impl_->th = std::thread([p = impl_] {
        static const char frames[] = "|/-\\";
        auto start = std::chrono::steady_clock::now();
        std::unique_lock<std::mutex> lk(p->m);
        bool drawn = false;
        for (int i = 0;; i++) {
            // Draw only after a short while: quick operations stay quiet.
            if (p->cv.wait_for(lk, std::chrono::milliseconds(100), [p] { return p->done; }))
                break;
            double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (secs < 0.3)
                continue;
            char line[256];
            if (p->counting)
                std::snprintf(line, sizeof line, "\r%s %c %llu  %.1fs ", p->label.c_str(), frames[i % 4],
                              (unsigned long long)p->count.load(), secs);
            else
                std::snprintf(line, sizeof line, "\r%s %c %.1fs ", p->label.c_str(), frames[i % 4], secs);
            ssize_t ignored = ::write(STDERR_FILENO, line, std::strlen(line));
            (void)ignored;
            drawn = true;
        }
        if (!drawn)
            return;
        const char clear[] = "\r\033[K";
        ssize_t ignored = ::write(STDERR_FILENO, clear, sizeof clear - 1);
        (void)ignored;
    });
}

void Progress::set_count(uint64_t n) {
    if (impl_) {
        impl_->counting = true;
        impl_->count = n;
    }
}

void Progress::stop() {
    if (!impl_)
        return;
    {
        std::lock_guard<std::mutex> lk(impl_->m);
        impl_->done = true;
    }
    impl_->cv.notify_all();
    impl_->th.join();
    delete impl_;
    impl_ = nullptr;
}

Progress::~Progress() { stop(); }

std::vector<ParsedOpt> parse_options(const std::string &cmd, const std::vector<std::string> &args,
                                     const std::vector<OptSpec> &specs, bool stop_at_first,
                                     std::vector<std::string> *operands) {
    std::vector<char *> argv;
    std::string prog = "fsc " + cmd;
    argv.push_back(const_cast<char *>(prog.c_str()));
    for (const auto &a : args)
        argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);

    std::string shorts = stop_at_first ? "+:h" : ":h";
    std::vector<option> longs;
    longs.push_back({"help", no_argument, nullptr, 'h'});
    for (const auto &s : specs) {
        if (s.short_name) {
            shorts += s.short_name;
            if (s.has_arg)
                shorts += ':';
        }
        if (s.long_name)
            longs.push_back({s.long_name, s.has_arg ? required_argument : no_argument, nullptr, 1000 + s.id});
    }
    longs.push_back({nullptr, 0, nullptr, 0});

    std::vector<ParsedOpt> out;
    optind = 0; // re-initialise getopt for this vector
    opterr = 0;
    int argc = int(argv.size()) - 1;
    for (;;) {
        int longindex = -1;
        int c = getopt_long(argc, argv.data(), shorts.c_str(), longs.data(), &longindex);
        if (c == -1)
            break;
        if (c == '?' || c == ':') {
            std::string name = optopt >= 1000 ? std::string() : std::string(1, char(optopt));
            std::string given = argv[optind - 1];
            if (c == ':')
                throw UsageError(cmd, "option '" + (optopt && optopt < 1000 ? "-" + name : given) +
                                          "' needs an argument");
            if (optopt && optopt < 1000)
                throw UsageError(cmd, "unknown option '-" + name + "'");
            throw UsageError(cmd, "unknown option '" + given + "'");
        }
        if (c == 'h') {
            out.push_back({'h', ""});
            continue;
        }
        int id = -1;
        if (c >= 1000) {
            id = c - 1000;
        } else {
            for (const auto &s : specs)
                if (s.short_name == c)
                    id = s.id;
        }
        out.push_back({id, optarg ? optarg : ""});
    }
    for (int i = optind; i < argc; i++)
        operands->push_back(argv[size_t(i)]);
    return out;
}

} // namespace cli
