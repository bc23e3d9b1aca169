#include "directory.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "error.h"
#include "fd.h"
#include "file_ops.h"
#include "fs_kind.h"
#include "hash.h"
#include "ownership.h"

namespace fsc {

namespace {

const char format_name[] = "FSC-FORMAT";
const char format_text[] = "fsc-cache-format 3\n";
const char marker_prefix[] = ".FSC-FORMAT."; // a marker being written by an opener

} // namespace

void make_dirs(const std::string &dir, const Sharing &s) {
    for (size_t pos = 1; pos <= dir.size(); pos++) {
        if (pos != dir.size() && dir[pos] != '/')
            continue;
        std::string prefix = dir.substr(0, pos);
        if (mkdir(prefix.c_str(), s.dir_mode() & 0777) == 0) {
            if (s.shared())
                secure(AT_FDCWD, prefix.c_str(), s, prefix); // the group's mode despite the umask
            continue;
        }
        if (errno == EEXIST)
            continue;
        if (errno == ENOTDIR)
            fail(Status::inval, "cannot create '" + dir + "': '" + prefix + "' is not a directory");
        throw_errno(errno, "mkdir '" + prefix + "'");
    }
}

void init_format(int base, const std::string &path) {
    for (int attempt = 0; attempt < name_tries; attempt++) {
        Fd marker(open_owned(base, format_name, O_RDONLY));
        if (!marker && foreign_file(errno))
            fail(Status::format, "'" + path + "/" + format_name + "' is not a regular file, so not an fsc format marker");
        if (marker) {
            char buf[64] = {};
            size_t n = pread_full(marker.get(), buf, sizeof buf - 1, 0, "'" + path + "/" + format_name + "'");
            if (n == sizeof format_text - 1 && std::memcmp(buf, format_text, n) == 0)
                return;
            // Read before the bytes reached this client (another host's
            // opener made it just now, on a network filesystem): again.
            if (n < sizeof format_text - 1 && std::memcmp(buf, format_text, n) == 0 && attempt + 1 < name_tries) {
                wait_for_name(attempt);
                continue;
            }
            if (std::strncmp(buf, "fsc-cache-format ", 17) == 0)
                fail(Status::format, "'" + path + "' is an fsc cache of format " +
                                         std::string(buf + 17, std::strcspn(buf + 17, "\n")) +
                                         "; this library reads format 3");
            fail(Status::format, "'" + path + "/" + format_name + "' is not an fsc format marker");
        }
        if (errno != ENOENT)
            throw_errno(errno, "open '" + path + "/" + format_name + "'");

        std::string foreign;
        for_each_name(base, path, [&](const char *name) {
            if (std::strncmp(name, marker_prefix, sizeof marker_prefix - 1) != 0 && foreign.empty())
                foreign = name;
        });
        if (!foreign.empty()) {
            // Another opener may have made the cache since we looked for the marker.
            if (faccessat(base, format_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                continue;
            fail(Status::format, "'" + path + "' is not empty (it holds '" + foreign + "') and is not an fsc cache");
        }

        // Write the marker under a private name, then link it into place:
        // of several openers racing here exactly one link wins.
        std::string temp = marker_prefix + std::to_string(getpid()) + "." + hex64(random64());
        Fd fd(openat(base, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!fd)
            throw_errno(errno, "create '" + path + "/" + temp + "'");
        struct iovec iov = {const_cast<char *>(format_text), sizeof format_text - 1};
        try {
            write_all(fd.get(), &iov, 1, "'" + path + "/" + temp + "'");
        } catch (...) {
            unlinkat(base, temp.c_str(), 0);
            throw;
        }
        // Closed before it is named: a network filesystem's client may hold
        // the bytes back until then, and another host's opener must never
        // find the marker empty.
        if (::close(fd.release()) != 0) {
            const int err = errno;
            unlinkat(base, temp.c_str(), 0);
            throw_errno(err, "write '" + path + "/" + temp + "'");
        }
        int rc = linkat(base, temp.c_str(), base, format_name, 0);
        int err = errno;
        unlinkat(base, temp.c_str(), 0);
        if (rc != 0 && err != EEXIST)
            throw_errno(err, "link '" + path + "/" + format_name + "'");
    }
    fail(Status::format, "'" + path + "' has no readable format marker");
}

void make_subdir(int base, const std::string &path, const char *name) {
    if (mkdirat(base, name, 0700) != 0 && errno != EEXIST)
        throw_errno(errno, "mkdir '" + path + "/" + name + "'");
}

} // namespace fsc
