#include "entry.h"

#include <sys/mman.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "clock.h"
#include "error.h"
#include "file_ops.h"

namespace fsc {

Entry::Entry(Fd fd, const EntryInfo &info, std::optional<std::string> loaded)
    : fd_(std::move(fd)), info_(info), data_(std::move(loaded)) {}

bool Entry::expired(int64_t expiration_ms, int64_t now) const noexcept {
    return older_than(now - info_.created_us, expiration_ms);
}

int Entry::fd() {
    if (!fd_ && data_) {
        // A packed value has no file of its own: hand out one in memory.
        Fd mem(memfd_create("fsc-value", MFD_CLOEXEC));
        if (!mem)
            throw_errno(errno, "memfd_create for a cached value");
        struct iovec iov = {&(*data_)[0], data_->size()};
        write_all(mem.get(), &iov, 1, "a cached value's memory file");
        fd_ = std::move(mem);
    }
    if (!positioned_) {
        if (lseek(fd_.get(), off_t(info_.data_start + info_.offset), SEEK_SET) < 0)
            throw_errno(errno, "lseek on a cached value");
        positioned_ = true;
    }
    return fd_.get();
}

size_t Entry::read_exactly(void *buf, size_t len, uint64_t off) const {
    if (pread_full(fd_.get(), buf, len, off, "of a cached value") != len)
        fail(Status::corrupt, "cached value is shorter than its entry says");
    return len;
}

void Entry::verify(uint64_t sum) const {
    if (info_.value_sum && *info_.value_sum != sum)
        fail(Status::corrupt, "cached value failed its checksum");
}

size_t Entry::read(void *buf, size_t cap) {
    const uint64_t left = info_.size - info_.offset - cursor_;
    size_t want = size_t(std::min<uint64_t>(cap, left));
    if (want == 0)
        return 0;
    size_t got = 0;
    if (data_) {
        std::memcpy(buf, data_->data() + info_.offset + cursor_, want);
        got = want;
    } else {
        got = read_exactly(buf, want, info_.data_start + info_.offset + cursor_);
        if (info_.value_sum && info_.offset == 0) {
            running_.update(buf, got);
            if (cursor_ + got == info_.size)
                verify(running_.final());
        }
    }
    cursor_ += got;
    return got;
}

const std::string &Entry::data() {
    if (data_)
        return *data_;
    std::string all(size_t(info_.size), '\0');
    read_exactly(&all[0], all.size(), info_.data_start);
    if (info_.value_sum) {
        StreamChecksum sum;
        sum.update(all.data(), all.size());
        verify(sum.final());
    }
    data_ = std::move(all);
    return *data_;
}

} // namespace fsc
