#include "file_ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>

#include "error.h"
#include "hash.h"
#include "ownership.h"

namespace fsc {

void write_all(int fd, struct iovec *iov, int iovcnt, const std::string &what) {
    while (iovcnt > 0) {
        ssize_t n = writev(fd, iov, iovcnt);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw_errno(errno, "write " + what);
        size_t done = size_t(n);
        while (iovcnt > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = static_cast<char *>(iov->iov_base) + done;
            iov->iov_len -= done;
        }
    }
}

size_t pread_full(int fd, void *buf, size_t len, uint64_t off, const std::string &what, size_t unit) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, static_cast<char *>(buf) + got, len - got, off_t(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw_errno(errno, "read " + what);
        got += size_t(n);
        if (n == 0 || size_t(n) % unit != 0)
            break;
    }
    return got;
}

namespace {

// Whether copy_file_range refused this pair of files rather than failed:
// across filesystems, kernels without it, files it cannot copy.
bool kernel_copy_refused(int err) {
    return err == EXDEV || err == ENOSYS || err == EINVAL || err == EOPNOTSUPP || err == EBADF;
}

} // namespace

uint64_t copy_contents(int src, int dst, uint64_t len, const std::string &what) {
    // The bytes are checksummed a piece at a time, each just after it was
    // written: read back while the CPU cache still holds it (256 KiB pieces
    // took the least CPU time, against 128 KiB to 4 MiB: bench/RESULTS.md).
    const size_t piece = 256 * 1024;
    std::unique_ptr<char[]> buf(new char[piece]);
    StreamChecksum sum;
    auto sum_written = [&](uint64_t from, uint64_t to) {
        while (from < to) {
            size_t got = pread_full(dst, buf.get(), size_t(std::min<uint64_t>(piece, to - from)), from, what);
            if (got == 0)
                fail(Status::io, "copy " + what + ": the copy shrank while it was checksummed");
            sum.update(buf.get(), got);
            from += got;
        }
    };
    // A reflink shares the source's blocks (btrfs, XFS): no data is copied.
    // Exactly len bytes: of a source grown since it was measured, the first
    // len, or (len off a block boundary) the clone is refused and the bytes
    // copied below.
    struct file_clone_range range = {src, 0, len, 0};
    if (len > 0 && ioctl(dst, FICLONERANGE, &range) == 0) {
        sum_written(0, len);
        return sum.final();
    }
    uint64_t done = 0;
    while (done < len) {
        loff_t in = loff_t(done);
        ssize_t n = copy_file_range(src, &in, dst, nullptr, size_t(std::min<uint64_t>(piece, len - done)), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && kernel_copy_refused(errno))
            break;
        if (n < 0)
            throw_errno(errno, "copy " + what);
        if (n == 0)
            break; // the source ended, or is one (procfs, sysfs) copy_file_range sees as empty: read() tells
        sum_written(done, done + uint64_t(n));
        done += uint64_t(n);
    }
    while (done < len) {
        size_t got = pread_full(src, buf.get(), size_t(std::min<uint64_t>(piece, len - done)), done, what);
        if (got == 0)
            fail(Status::io, "copy " + what + ": the source shrank while it was copied");
        struct iovec iov = {buf.get(), got};
        write_all(dst, &iov, 1, what);
        sum.update(buf.get(), got);
        done += got;
    }
    return sum.final();
}

std::optional<uint64_t> checksum_file(int fd, uint64_t len, const std::string &what) {
    const size_t piece = 4 * StreamChecksum::block;
    std::unique_ptr<char[]> buf(new char[piece]);
    StreamChecksum sum;
    for (uint64_t done = 0; done < len;) {
        size_t got = pread_full(fd, buf.get(), size_t(std::min<uint64_t>(piece, len - done)), done, what);
        if (got == 0)
            return std::nullopt;
        sum.update(buf.get(), got);
        done += got;
    }
    return sum.final();
}

void sync_fd(int fd, const std::string &what) {
    if (fsync(fd) != 0)
        throw_errno(errno, "fsync " + what);
}

void for_each_name(int dirfd, const std::string &shown, const std::function<void(const char *)> &f) {
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        throw_errno(errno, "open directory '" + shown + "'");
    DIR *d = fdopendir(fd);
    if (!d) {
        int err = errno;
        ::close(fd);
        throw_errno(err, "open directory '" + shown + "'");
    }
    std::unique_ptr<DIR, int (*)(DIR *)> owner(d, closedir);
    while (struct dirent *e = readdir(d)) {
        if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0)))
            continue;
        f(e->d_name);
    }
}

uint64_t random64() {
    sodium_ready();
    uint64_t v;
    randombytes_buf(&v, sizeof v);
    return v;
}

namespace {

std::atomic<pid_t> name_pid{0};
std::atomic<uint64_t> name_prefix{0};
std::atomic<uint64_t> name_counter{0};

void new_name_prefix() {
    name_pid.store(getpid());
    name_prefix.store(random64());
}

// "<pid>.<random>.<counter>": unique across processes and threads, with one
// random draw per process (a forked child draws its own).
std::string temp_name() {
    static std::once_flag once;
    std::call_once(once, [] {
        new_name_prefix();
        pthread_atfork(nullptr, nullptr, [] { name_pid.store(0); });
    });
    if (name_pid.load() == 0)
        new_name_prefix();
    return std::to_string(name_pid.load()) + "." + hex64(name_prefix.load()) + "." + std::to_string(name_counter++);
}

} // namespace

TempFile::TempFile(int dirfd, const std::string &shown_dir, mode_t mode) : dirfd_(dirfd) {
    for (int attempt = 0;; attempt++) {
        name_ = temp_name();
        int fd = openat(dirfd, name_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd >= 0) {
            fd_.reset(fd);
            try {
                enforce_mode(fd, mode, shown_dir + "/" + name_);
            } catch (...) {
                unlinkat(dirfd, name_.c_str(), 0); // no destructor runs for a throwing constructor
                throw;
            }
            return;
        }
        if (errno != EEXIST || attempt > 3)
            throw_errno(errno, "create temp file in '" + shown_dir + "'");
    }
}

TempFile::~TempFile() {
    fd_.reset();
    if (!committed_)
        unlinkat(dirfd_, name_.c_str(), 0);
}

int open_noatime(int dirfd, const char *name, int flags, mode_t mode) {
    int fd = openat(dirfd, name, flags | O_NOATIME, mode);
    if (fd < 0 && errno == EPERM)
        fd = openat(dirfd, name, flags, mode);
    return fd;
}

int open_owned(int dirfd, const char *name, int flags, mode_t mode, bool sole_link, struct stat *st_out) {
    Fd fd(open_noatime(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode));
    if (!fd) {
        if (errno == EISDIR || errno == ENXIO) // a directory opened for writing; a socket
            errno = not_owned_errno;
        return -1;
    }
    struct stat st;
    if (fstat(fd.get(), &st) != 0)
        return -1;
    if (!S_ISREG(st.st_mode) || (sole_link && st.st_nlink > 1)) {
        errno = not_owned_errno;
        return -1;
    }
    if (st_out)
        *st_out = st;
    return fd.release();
}

int reopen_direct(int fd, const std::string &what) {
    // Through /proc: the same file, whatever its name is now.
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    const int direct = open_noatime(AT_FDCWD, path, O_RDONLY | O_DIRECT | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (direct < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOMEM))
        throw_errno(errno, "open " + what + " again for reads past the client's caches (" + path + ")");
    return direct;
}

bool learn_size(int fd) {
    // The fallocate only marks the size this client caches as out of date;
    // the fstat asks the server for it, before the next read is cut at it.
    struct stat st;
    return fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1) == 0 && fstat(fd, &st) == 0;
}

namespace {

constexpr uint64_t direct_block = 4096;

// An aligned buffer for a direct read of span bytes: the calling thread's own,
// kept between reads (a get makes several), or for a larger span one of its
// own, freed with `owned`.
char *bounce_buffer(size_t span, std::unique_ptr<void, void (*)(void *)> &owned) {
    constexpr size_t kept = 64 * 1024;
    struct Kept {
        void *p = nullptr;
        ~Kept() { free(p); }
    };
    thread_local Kept mine;
    if (span <= kept && mine.p)
        return static_cast<char *>(mine.p);
    void *raw = nullptr;
    if (posix_memalign(&raw, direct_block, std::max(span, kept)) != 0)
        throw std::bad_alloc();
    if (span <= kept)
        mine.p = raw;
    else
        owned.reset(raw);
    return static_cast<char *>(raw);
}

} // namespace

size_t pread_coherent(int fd, int direct, void *buf, size_t len, uint64_t off, const std::string &what) {
    if (direct < 0)
        return pread_full(fd, buf, len, off, what);
    constexpr uint64_t block = direct_block;
    const uint64_t start = off & ~(block - 1);
    const uint64_t span = ((off + len + block - 1) & ~(block - 1)) - start;
    std::unique_ptr<void, void (*)(void *)> owned(nullptr, free);
    char *raw = bounce_buffer(size_t(span), owned);
    // A direct read that the server ends before the size this client
    // caches (another host cut the file) is completed by the kernel from
    // the page cache, which may hold what this host read or wrote before
    // the cut: those pages go first, so that it reads the server's.
    // GlusterFS hands O_DIRECT on to the brick's disk: an unaligned read
    // there is EINVAL.
    auto read_blocks = [&] {
        posix_fadvise(direct, off_t(start), off_t(span), POSIX_FADV_DONTNEED);
        return pread_full(direct, raw, size_t(span), start, what, block);
    };
    size_t got = read_blocks();
    if (got < (off - start) + len && learn_size(fd))
        got = read_blocks();
    if (got <= off - start)
        return 0;
    const size_t n = std::min<size_t>(len, got - size_t(off - start));
    std::memcpy(buf, raw + (off - start), n);
    return n;
}

void remove_foreign(int dirfd, const char *name) {
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return;
    if (S_ISREG(st.st_mode) && st.st_nlink == 1)
        return; // another process put a file of its own there meanwhile
    if (unlinkat(dirfd, name, 0) != 0 && errno == EISDIR)
        unlinkat(dirfd, name, AT_REMOVEDIR);
}

} // namespace fsc
