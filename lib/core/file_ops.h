// Small POSIX helpers: whole writes and reads, streaming copies, temp files
// that delete themselves unless committed.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "fd.h"

namespace fsc {

// Writes every byte of the iovecs (retrying short writes and EINTR).
void write_all(int fd, struct iovec *iov, int iovcnt, const std::string &what);
// Reads up to len bytes at off, stopping early only at end of file: where a
// read returns 0 or, with unit > 1, a length that is not a multiple of unit
// (an O_DIRECT read ends inside a block only at the end of the file, and
// reading on from there would be unaligned).
size_t pread_full(int fd, void *buf, size_t len, uint64_t off, const std::string &what, size_t unit = 1);
// Copies len bytes from src (from byte 0, src's offset untouched) to the
// start of dst (open for reading and writing) and returns the value
// checksum (StreamChecksum) of what dst then holds. In the kernel where it
// can: a reflink (FICLONERANGE), else copy_file_range in 256 KiB pieces,
// each read back to be checksummed; else pread/write of 256 KiB pieces,
// checksummed as written. Never holds more than 256 KiB of it in memory.
uint64_t copy_contents(int src, int dst, uint64_t len, const std::string &what);
// The value checksum (StreamChecksum) of the first len bytes of fd, read
// in pieces; nullopt when the file ends before len.
std::optional<uint64_t> checksum_file(int fd, uint64_t len, const std::string &what);
// fsync, mapping failure to an Error.
void sync_fd(int fd, const std::string &what);

// A uniquely named file in a temp directory, open for reading and writing
// (a copy is read back to be checksummed), removed on destruction unless
// commit() was called (after it was renamed away).
class TempFile {
public:
    TempFile(int dirfd, const std::string &shown_dir, mode_t mode = 0600);
    ~TempFile();
    TempFile(const TempFile &) = delete;
    TempFile &operator=(const TempFile &) = delete;

    int fd() const noexcept { return fd_.get(); }
    const std::string &name() const noexcept { return name_; }
    void close_fd() { fd_.reset(); }
    // The descriptor, for its new owner (the name is still removed unless committed).
    Fd release_fd() noexcept { return std::move(fd_); }
    void commit() noexcept { committed_ = true; }

private:
    int dirfd_;
    std::string name_;
    Fd fd_;
    bool committed_ = false;
};

// openat with O_NOATIME (reads of files read on every get then cost no
// access-time update), falling back without it where the caller does not
// own the file (EPERM).
int open_noatime(int dirfd, const char *name, int flags, mode_t mode = 0);

// errno of open_owned for a file that is there but is not one the cache
// may read or write: not a regular file, or (sole_link) linked elsewhere too.
constexpr int not_owned_errno = EMEDIUMTYPE;

// Opens a file of the cache: never through a symbolic link (ELOOP), never
// blocking (O_NONBLOCK: a FIFO planted there opens at once) and only a
// regular file. With sole_link, only one no other name links to: a file
// written in place must not write through to a file outside the cache.
// Else -1 with errno not_owned_errno. O_CLOEXEC, O_NOCTTY and O_NOATIME are added.
// st, when given, receives the status the check read.
int open_owned(int dirfd, const char *name, int flags, mode_t mode = 0, bool sole_link = false,
               struct stat *st = nullptr);
// open_owned for reading, with the file's status from the check (no second fstat).
inline int open_owned_read(int dirfd, const char *name, struct stat *st) {
    return open_owned(dirfd, name, O_RDONLY, 0, false, st);
}
// Whether an open_owned errno means something foreign stands at the name.
inline bool foreign_file(int err) { return err == ELOOP || err == not_owned_errno; }
// Removes a foreign thing (symbolic link, FIFO, hard link...) at name,
// unless it was replaced meanwhile by a regular file of the cache's own.
void remove_foreign(int dirfd, const char *name);

// Calls f(name) for every entry of directory dirfd but "." and "..".
void for_each_name(int dirfd, const std::string &shown, const std::function<void(const char *)> &f);

// Network mode: the file of descriptor fd opened again, read-only, with
// O_DIRECT, for pread_coherent: its reads go past the client's caches to the
// server (another host changes the file in place). Writes stay on fd (a
// server may hand O_DIRECT on to a disk that takes only whole blocks).
// -1 when that fails for the file (a filesystem that refuses O_DIRECT, a
// file another host removed meanwhile); out of descriptors or memory, it
// throws, naming `what`: a handle that read past nothing would read stale
// tables without a word.
int reopen_direct(int fd, const std::string &what);
// Network mode: makes a FUSE client, which keeps a file's size for a while,
// learn it again from the server (fd open for writing): a write that
// changes nothing, keeping the size and preallocating the first byte, marks
// the cached size out of date, and a stat then fetches it. False when the
// filesystem refuses it.
bool learn_size(int fd);
// pread_full through `direct` (from reopen_direct; < 0: through fd), in
// whole 4 KiB blocks read into an aligned buffer. A direct read cut short by
// the size the client last knew (another host grew the file) is made again
// after learn_size(fd); the range's cached pages are dropped before each
// read (see pread_coherent in file_ops.cc).
size_t pread_coherent(int fd, int direct, void *buf, size_t len, uint64_t off, const std::string &what);

// A random 64-bit number (libsodium), for unique names.
uint64_t random64();

} // namespace fsc
