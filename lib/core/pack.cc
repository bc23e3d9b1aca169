#include "pack.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "codec.h"
#include "error.h"
#include "file_ops.h"
#include "hash.h"
#include "ownership.h"

namespace fsc {

namespace {

const unsigned char pack_magic[4] = {'F', 'S', 'C', 'P'};
const unsigned char live_magic[4] = {'F', 'S', 'C', 'E'};
const unsigned char dead_magic[4] = {'F', 'S', 'C', 'X'};
constexpr uint16_t pack_version = 1;
constexpr size_t head_sum_at = 56;

std::shared_ptr<PackFile> start(Fd fd, uint64_t gen, uint64_t seq, const std::string &shown) {
    unsigned char b[PackFile::header_size] = {};
    std::memcpy(b, pack_magic, 4);
    store_le16(b + 4, pack_version);
    store_le64(b + 8, seq);
    store_le64(b + 16, gen);
    store_le64(b + head_sum_at, checksum64(b, head_sum_at));
    // A write, not a pwrite: a new file's records follow from its offset.
    if (write(fd.get(), b, sizeof b) != ssize_t(sizeof b))
        throw_errno(errno ? errno : EIO, "write '" + shown + "'");
    auto p = std::make_shared<PackFile>();
    p->gen = gen;
    p->seq = seq;
    p->fd = std::move(fd);
    return p;
}

} // namespace

std::string PackFile::name(uint64_t gen) { return "pack." + hex64(gen); }

bool PackFile::parse_name(const char *name, uint64_t *gen) {
    if (std::strncmp(name, "pack.", 5) != 0 || std::strlen(name) != 5 + 16)
        return false;
    uint64_t v = 0;
    for (const char *c = name + 5; *c; c++) {
        int d = (*c >= '0' && *c <= '9') ? *c - '0' : (*c >= 'a' && *c <= 'f') ? *c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | uint64_t(d);
    }
    *gen = v;
    return v != 0;
}

std::shared_ptr<PackFile> PackFile::create(int dir, uint64_t gen, uint64_t seq, const std::string &shown,
                                           mode_t mode) {
    Fd fd(openat(dir, name(gen).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd)
        throw_errno(errno, "create '" + shown + "'");
    try {
        enforce_mode(fd.get(), mode, shown);
        return start(std::move(fd), gen, seq, shown);
    } catch (...) {
        unlinkat(dir, name(gen).c_str(), 0); // a full disk, say: leave no headless pack
        throw;
    }
}

std::shared_ptr<PackFile> PackFile::create_in(Fd fd, uint64_t gen, uint64_t seq, const std::string &shown) {
    // Readers keep this descriptor: their reads should not dirty the inode
    // (open_owned's O_NOATIME). Only the owner may set it; ours just made it.
    fcntl(fd.get(), F_SETFL, O_NOATIME);
    return start(std::move(fd), gen, seq, shown);
}

std::shared_ptr<PackFile> PackFile::open(int dir, uint64_t gen, const std::string &shown, bool direct) {
    Fd fd(open_owned(dir, name(gen).c_str(), O_RDWR, 0, true));
    if (!fd) {
        if (errno == ENOENT || foreign_file(errno))
            return nullptr;
        throw_errno(errno, "open '" + shown + "'");
    }
    Fd direct_fd(direct ? reopen_direct(fd.get(), "'" + shown + "'") : -1);
    unsigned char b[header_size];
    if (pread_coherent(fd.get(), direct_fd.get(), b, sizeof b, 0, "'" + shown + "'") != sizeof b ||
        std::memcmp(b, pack_magic, 4) != 0 ||
        load_le16(b + 4) != pack_version || load_le64(b + head_sum_at) != checksum64(b, head_sum_at) ||
        load_le64(b + 16) != gen)
        return nullptr;
    auto p = std::make_shared<PackFile>();
    p->gen = gen;
    p->seq = load_le64(b + 8);
    p->fd = std::move(fd);
    p->direct = std::move(direct_fd);
    return p;
}

bool PackFile::is_live_record(const char *bytes) { return std::memcmp(bytes, live_magic, 4) == 0; }

void PackFile::kill(uint64_t offset, const std::string &shown) const {
    if (pwrite(fd.get(), dead_magic, 4, off_t(offset)) != 4)
        throw_errno(errno ? errno : EIO, "write '" + shown + "'");
}

uint64_t PackFile::scan(const std::function<void(const Record &)> &visit, const std::string &shown) const {
    // Read in large pieces; a record that straddles a piece is read again whole.
    constexpr size_t piece = 1 << 20;
    std::vector<char> buf;
    uint64_t at = header_size, buf_at = 0;
    size_t have = 0;
    for (;;) {
        auto need = [&](uint64_t len) -> const char * {
            if (at >= buf_at && at + len <= buf_at + have)
                return buf.data() + (at - buf_at);
            buf.resize(std::max<size_t>(piece, size_t(len)));
            buf_at = at;
            have = read(buf.data(), buf.size(), at, "'" + shown + "'");
            return at + len <= buf_at + have ? buf.data() : nullptr;
        };
        const char *p = need(EntryHeader::size);
        if (!p)
            return at;
        const bool live = std::memcmp(p, live_magic, 4) == 0;
        if (!live && std::memcmp(p, dead_magic, 4) != 0)
            return at;
        const uint32_t key_len = load_le32(reinterpret_cast<const unsigned char *>(p) + 8);
        if (key_len == 0 || key_len > max_key_len || !(p = need(EntryHeader::size + key_len)))
            return at;
        // A dead record is checked as it was written, before its magic changed.
        std::string head(p, EntryHeader::size + key_len);
        std::memcpy(&head[0], live_magic, 4);
        std::string why;
        auto h = EntryHeader::decode(head.data(), head.size(), &why);
        if (!h || h->external() || h->offset != 0 || h->value_size > max_packed_value)
            return at;
        const uint64_t len = EntryHeader::size + key_len + h->value_size;
        if (!(p = need(len)))
            return at;
        bool damaged = false;
        if (live) {
            StreamChecksum sum;
            sum.update(p + EntryHeader::size + key_len, size_t(h->value_size));
            damaged = sum.final() != h->value_sum;
        }
        visit(Record{at, *h, head.substr(EntryHeader::size), live && !damaged, damaged});
        at += len;
    }
}

namespace {

// Checks a packed record read whole into buf (len bytes) against the key
// asked for and its slot's creation time: its header when the record is live
// and whole; nullopt with *why otherwise, *other_key when it is a whole
// record of another key with the same digest.
std::optional<EntryHeader> check_record(const char *buf, size_t len, const void *key, size_t key_len,
                                        int64_t created_us, bool *other_key, std::string *why) {
    *other_key = false;
    auto h = EntryHeader::decode(buf, len, why);
    if (!h)
        return std::nullopt;
    if (h->external() || h->offset != 0 || EntryHeader::size + h->key_len + h->value_size != len) {
        *why = "record length does not match its slot";
        return std::nullopt;
    }
    if (h->key_len != key_len || std::memcmp(buf + EntryHeader::size, key, key_len) != 0) {
        *other_key = true;
        *why = "another key's record";
        return std::nullopt;
    }
    if (h->created_us != created_us) {
        *why = "record is not the one its slot names";
        return std::nullopt;
    }
    StreamChecksum sum;
    sum.update(buf + EntryHeader::size + key_len, size_t(h->value_size));
    if (sum.final() != h->value_sum) {
        *why = "value checksum mismatch";
        return std::nullopt;
    }
    return h;
}

} // namespace

std::optional<EntryHeader> PackFile::read_record(uint64_t offset, uint64_t len, const void *key, size_t key_len,
                                                 int64_t created_us, std::string *buf, bool *other_key,
                                                 std::string *why) const {
    *other_key = false;
    buf->resize(size_t(len)); // bounded by the slot's decoding (max_record_len)
    if (read(&(*buf)[0], buf->size(), offset, "pack record") != buf->size()) {
        *why = "its record is truncated";
        return std::nullopt;
    }
    return check_record(buf->data(), buf->size(), key, key_len, created_us, other_key, why);
}

std::optional<PackFile::Record> PackFile::read_at(uint64_t offset, uint64_t len, const std::string &shown) const {
    if (len <= EntryHeader::size || len > max_record_len)
        return std::nullopt;
    std::string buf(size_t(len), '\0');
    if (read(&buf[0], buf.size(), offset, "'" + shown + "'") != buf.size())
        return std::nullopt;
    const bool live = std::memcmp(buf.data(), live_magic, 4) == 0;
    if (!live && std::memcmp(buf.data(), dead_magic, 4) != 0)
        return std::nullopt;
    std::memcpy(&buf[0], live_magic, 4);
    std::string why;
    auto h = EntryHeader::decode(buf.data(), buf.size(), &why);
    if (!h || h->external() || h->offset != 0 || EntryHeader::size + h->key_len + h->value_size != len)
        return std::nullopt;
    if (live) {
        StreamChecksum sum;
        sum.update(buf.data() + EntryHeader::size + h->key_len, size_t(h->value_size));
        if (sum.final() != h->value_sum)
            return std::nullopt;
    }
    return Record{offset, *h, buf.substr(EntryHeader::size, h->key_len), live, false};
}

std::string pack_record(const void *key, size_t key_len, const void *data, size_t len, int64_t created_us) {
    EntryHeader h;
    h.key_len = uint32_t(key_len);
    h.value_size = len;
    h.created_us = created_us;
    StreamChecksum sum;
    sum.update(data, len);
    h.value_sum = sum.final();
    auto head = h.encode(key);
    std::string r;
    r.reserve(head.size() + key_len + len);
    r.append(reinterpret_cast<const char *>(head.data()), head.size());
    r.append(static_cast<const char *>(key), key_len);
    r.append(static_cast<const char *>(data), len);
    return r;
}


} // namespace fsc
