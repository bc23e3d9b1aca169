// The extern "C" layer: handle structs, argument checks, and one guard per call.
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>

#include "../core/cache.h"
#include "guard.h"
#include "live_locks.h"

static_assert(FSC_OK == int(fsc::Status::ok) && FSC_MISS == int(fsc::Status::miss) &&
                  FSC_STALE == int(fsc::Status::stale) && FSC_EINVAL == int(fsc::Status::inval) &&
                  FSC_ENOMEM == int(fsc::Status::nomem) && FSC_EIO == int(fsc::Status::io) &&
                  FSC_ENOSPC == int(fsc::Status::nospc) && FSC_EACCES == int(fsc::Status::acces) &&
                  FSC_EBUSY == int(fsc::Status::busy) && FSC_ETIMEDOUT == int(fsc::Status::timedout) &&
                  FSC_EDEADLK == int(fsc::Status::deadlk) && FSC_ECORRUPT == int(fsc::Status::corrupt) &&
                  FSC_ETOOBIG == int(fsc::Status::toobig) && FSC_EXDEV == int(fsc::Status::xdev) &&
                  FSC_EFORMAT == int(fsc::Status::format) && FSC_ECREATOR == int(fsc::Status::creator) &&
                  FSC_ENOTSUP == int(fsc::Status::notsup) && FSC_ELOST == int(fsc::Status::lost),
              "status codes of fsc.h and the core differ");

struct fsc_cache {
    std::unique_ptr<fsc::Cache> impl;
};

struct fsc_entry {
    std::unique_ptr<fsc::Entry> impl;
};

struct fsc_lock_handle {
    std::unique_ptr<fsc::KeyHold> impl;
};

namespace fsc::capi {

namespace {

thread_local std::string last_error;

using fsc::fail;
using fsc::Status;

void check_key(const void *key, size_t key_len) {
    if (!key)
        fail(Status::inval, "key is NULL");
    if (key_len == 0)
        fail(Status::inval, "key is empty");
    if (key_len > FSC_MAX_KEY)
        fail(Status::inval, "key is " + std::to_string(key_len) + " bytes, more than " +
                                std::to_string(FSC_MAX_KEY));
}

void check_cache(const fsc_cache *c) {
    if (!c)
        fail(Status::inval, "cache handle is NULL");
}

template <typename T> void check_out(T *out) {
    if (!out)
        fail(Status::inval, "out is NULL");
}

int give_entry(std::unique_ptr<fsc::Entry> e, fsc_entry **out) {
    if (!e)
        return FSC_MISS;
    *out = new fsc_entry{std::move(e)};
    return FSC_OK;
}

} // namespace

void set_error(const char *message) noexcept {
    try {
        last_error = message;
    } catch (...) {
        last_error.clear();
    }
}

} // namespace fsc::capi

using fsc::fail;
using fsc::Status;
using fsc::capi::check_cache;
using fsc::capi::check_key;
using fsc::capi::check_out;
using fsc::capi::guard;

namespace {

// Versioned result structs: a caller built against an older header passes a
// smaller struct, so each field is written only when out->size covers it.
template <typename Struct> class Filler {
public:
    Filler(Struct *out, const char *name) : out_(out) {
        if (out->size < sizeof out->size + sizeof(uint64_t))
            fsc::fail(fsc::Status::inval, std::string("out->size must be set to sizeof(") + name + ")");
    }
    template <typename T, typename V> void put(T Struct::*field, V value) {
        auto *p = &(out_->*field);
        if (reinterpret_cast<char *>(p + 1) - reinterpret_cast<char *>(out_) <= std::ptrdiff_t(out_->size))
            *p = T(value);
    }

private:
    Struct *out_;
};

} // namespace

extern "C" {

const char *fsc_version(void) { return FSC_VERSION_STRING; }

int fsc_version_number(void) { return FSC_VERSION_NUMBER; }

const char *fsc_strerror(int status) {
    switch (status) {
    case FSC_OK: return "FSC_OK";
    case FSC_MISS: return "FSC_MISS";
    case FSC_STALE: return "FSC_STALE";
    case FSC_STOPPED: return "FSC_STOPPED";
    case FSC_EINVAL: return "FSC_EINVAL";
    case FSC_ENOMEM: return "FSC_ENOMEM";
    case FSC_EIO: return "FSC_EIO";
    case FSC_ENOSPC: return "FSC_ENOSPC";
    case FSC_EACCES: return "FSC_EACCES";
    case FSC_EBUSY: return "FSC_EBUSY";
    case FSC_ETIMEDOUT: return "FSC_ETIMEDOUT";
    case FSC_EDEADLK: return "FSC_EDEADLK";
    case FSC_ECORRUPT: return "FSC_ECORRUPT";
    case FSC_ETOOBIG: return "FSC_ETOOBIG";
    case FSC_EXDEV: return "FSC_EXDEV";
    case FSC_EFORMAT: return "FSC_EFORMAT";
    case FSC_ECREATOR: return "FSC_ECREATOR";
    case FSC_ENOTSUP: return "FSC_ENOTSUP";
    case FSC_ELOST: return "FSC_ELOST";
    default: return "FSC_E?";
    }
}

const char *fsc_errmsg(void) { return fsc::capi::last_error.c_str(); }

void fsc_options_init(fsc_options *opts) {
    if (!opts)
        return;
    std::memset(opts, 0, sizeof *opts);
    fsc::Options d;
    opts->size = sizeof *opts;
    opts->cache_size = d.cache_size;
    opts->max_entries = d.max_entries;
    opts->expiration_ms = d.expiration_ms;
    opts->distributed_lock = d.distributed_lock;
    opts->file_movable = d.file_movable;
    opts->durable = d.durable;
    opts->pack_limit = d.pack_limit;
    opts->shared_group = d.sharing.group;
    opts->verify_payloads = d.verify_payloads;
}

int fsc_open(const char *base_dir, const fsc_options *opts, fsc_cache **out) {
    return guard([&] {
        if (!base_dir)
            fail(Status::inval, "base_dir is NULL");
        check_out(out);
        fsc::Options o;
        if (opts) {
            // Callers built against an older fsc.h pass a shorter struct:
            // the fields it lacks keep their defaults.
            if (opts->size < offsetof(fsc_options, pack_limit))
                fail(Status::inval, "opts->size is " + std::to_string(opts->size) +
                                        "; call fsc_options_init first");
            o.cache_size = opts->cache_size;
            o.max_entries = opts->max_entries;
            o.expiration_ms = opts->expiration_ms;
            o.distributed_lock = opts->distributed_lock != 0;
            o.file_movable = opts->file_movable != 0;
            o.durable = opts->durable != 0;
            if (opts->size >= offsetof(fsc_options, pack_limit) + sizeof opts->pack_limit)
                o.pack_limit = opts->pack_limit;
            if (opts->size >= offsetof(fsc_options, shared_group) + sizeof opts->shared_group) {
                if (opts->shared_group < -1 || opts->shared_group >= int64_t(gid_t(-1)))
                    fail(Status::inval, "shared_group must be -1 (private) or a gid");
                o.sharing.group = opts->shared_group;
            }
            if (opts->size >= offsetof(fsc_options, verify_payloads) + sizeof opts->verify_payloads)
                o.verify_payloads = opts->verify_payloads != 0;
            if (opts->size >= offsetof(fsc_options, network_mode) + sizeof opts->network_mode) {
                if (opts->network_mode < FSC_NETWORK_AUTO || opts->network_mode > FSC_NETWORK_OFF)
                    fail(Status::inval, "network_mode must be FSC_NETWORK_AUTO, FSC_NETWORK_ON or FSC_NETWORK_OFF");
                o.network = opts->network_mode == FSC_NETWORK_ON    ? fsc::NetworkMode::on
                            : opts->network_mode == FSC_NETWORK_OFF ? fsc::NetworkMode::off
                                                                    : fsc::NetworkMode::automatic;
            }
        }
        auto cache = fsc::Cache::open(base_dir, o);
        *out = new fsc_cache{std::move(cache)};
        return FSC_OK;
    });
}

int fsc_close(fsc_cache *cache) {
    delete cache;
    return FSC_OK;
}

int fsc_set(fsc_cache *c, const void *key, size_t key_len, const void *data, size_t len) {
    return guard([&] {
        check_cache(c);
        check_key(key, key_len);
        if (!data && len > 0)
            fail(Status::inval, "data is NULL");
        c->impl->set(key, key_len, data, len);
        return FSC_OK;
    });
}

int fsc_set_file(fsc_cache *c, const void *key, size_t key_len, int fd, const char *path, unsigned flags) {
    return guard([&] {
        check_cache(c);
        check_key(key, key_len);
        if (flags & ~FSC_MOVE)
            fail(Status::inval, "unknown flags");
        if ((flags & FSC_MOVE) && !path)
            fail(Status::inval, "FSC_MOVE needs a path");
        c->impl->set_file(key, key_len, fd, path, flags & FSC_MOVE);
        return FSC_OK;
    });
}

int fsc_get(fsc_cache *c, const void *key, size_t key_len, fsc_entry **out) {
    return guard([&] {
        check_cache(c);
        check_key(key, key_len);
        check_out(out);
        return fsc::capi::give_entry(c->impl->get(key, key_len), out);
    });
}

int fsc_delete(fsc_cache *c, const void *key, size_t key_len) {
    return guard([&] {
        check_cache(c);
        check_key(key, key_len);
        return c->impl->remove(key, key_len) ? FSC_OK : FSC_MISS;
    });
}

uint64_t fsc_entry_size(const fsc_entry *e) { return e ? e->impl->size() : 0; }

uint64_t fsc_entry_offset(const fsc_entry *e) { return e ? e->impl->offset() : 0; }

int fsc_entry_fd(fsc_entry *e) {
    if (!e)
        return -1;
    int fd = -1;
    guard([&] {
        fd = e->impl->fd();
        return FSC_OK;
    });
    return fd;
}

int fsc_entry_read(fsc_entry *e, void *buf, size_t cap, size_t *got) {
    return guard([&] {
        if (!e)
            fail(Status::inval, "entry is NULL");
        check_out(got);
        if (!buf && cap > 0)
            fail(Status::inval, "buf is NULL");
        *got = e->impl->read(buf, cap);
        return FSC_OK;
    });
}

const void *fsc_entry_data(fsc_entry *e) {
    const void *data = nullptr;
    guard([&] {
        if (!e)
            fail(Status::inval, "entry is NULL");
        data = e->impl->data().data();
        return FSC_OK;
    });
    return data;
}

int64_t fsc_entry_created_ms(const fsc_entry *e) { return e ? e->impl->created_us() / 1000 : 0; }

void fsc_entry_free(fsc_entry *e) { delete e; }

int fsc_lock(fsc_cache *c, const void *key, size_t key_len, int64_t timeout_ms, fsc_lock_handle **out) {
    return guard([&] {
        check_cache(c);
        check_key(key, key_len);
        check_out(out);
        if (timeout_ms < -1)
            fail(Status::inval, "timeout_ms must be -1, 0 or positive");
        auto hold = std::make_unique<fsc_lock_handle>(fsc_lock_handle{c->impl->lock(key, key_len, timeout_ms)});
        fsc::capi::add_live_lock(hold.get());
        *out = hold.release();
        return FSC_OK;
    });
}

int fsc_unlock(fsc_lock_handle *l) {
    return guard([&] {
        if (!l)
            fail(Status::inval, "lock handle is NULL");
        if (!fsc::capi::take_live_lock(l))
            fail(Status::inval, "the lock handle was already released (or never given by fsc_lock)");
        std::unique_ptr<fsc_lock_handle> owner(l);
        owner->impl->release();
        return FSC_OK;
    });
}

int fsc_lock_holder(fsc_cache *c, const void *key, size_t key_len, int64_t *pid) {
    return guard([&] {
        check_cache(c);
        check_key(key, key_len);
        check_out(pid);
        *pid = c->impl->lock_holder(key, key_len);
        return FSC_OK;
    });
}

int fsc_get_or_create(fsc_cache *c, const void *key, size_t key_len, int64_t expiration_ms, fsc_creator create,
                      void *ctx, fsc_entry **out) {
    return guard([&] {
        check_cache(c);
        check_key(key, key_len);
        check_out(out);
        if (!create)
            fail(Status::inval, "creator is NULL");
        std::unique_ptr<fsc::Entry> e;
        Status s = c->impl->get_or_create(
            key, key_len, expiration_ms, [&] { return create(ctx, c, key, key_len) == 0; }, &e);
        *out = new fsc_entry{std::move(e)};
        return int(s);
    });
}

int fsc_invalidate(fsc_cache *c, int hard) {
    return guard([&] {
        check_cache(c);
        c->impl->invalidate(hard != 0);
        return FSC_OK;
    });
}

int fsc_prune(fsc_cache *c) {
    return guard([&] {
        check_cache(c);
        c->impl->prune();
        return FSC_OK;
    });
}

int fsc_clear(fsc_cache *c) {
    return guard([&] {
        check_cache(c);
        c->impl->clear();
        return FSC_OK;
    });
}

int fsc_stats(fsc_cache *c, fsc_statistics *out) {
    return guard([&] {
        check_cache(c);
        check_out(out);
        Filler<fsc_statistics> f(out, "fsc_statistics");
        fsc::Totals t = c->impl->stats();
        f.put(&fsc_statistics::entries, t.entries);
        f.put(&fsc_statistics::bytes, t.bytes);
        f.put(&fsc_statistics::cache_size, c->impl->options().cache_size);
        f.put(&fsc_statistics::hits, t.hits);
        f.put(&fsc_statistics::misses, t.misses);
        f.put(&fsc_statistics::sets, t.sets);
        f.put(&fsc_statistics::evictions, t.evictions);
        f.put(&fsc_statistics::expirations, t.expirations);
        f.put(&fsc_statistics::network_fs, uint32_t(c->impl->network_fs()));
        f.put(&fsc_statistics::network_mode, uint32_t(c->impl->network_mode()));
        return FSC_OK;
    });
}

int fsc_verify(fsc_cache *c, int repair, fsc_verify_report *out) {
    return guard([&] {
        check_cache(c);
        std::optional<Filler<fsc_verify_report>> f;
        if (out)
            f.emplace(out, "fsc_verify_report");
        fsc::VerifyCounts n = c->impl->verify(repair != 0);
        if (f) {
            f->put(&fsc_verify_report::checked, n.checked);
            f->put(&fsc_verify_report::problems, n.problems);
            f->put(&fsc_verify_report::repaired, n.repaired);
        }
        return FSC_OK;
    });
}

int fsc_foreach(fsc_cache *c, fsc_visitor visit, void *ctx) {
    return guard([&] {
        check_cache(c);
        if (!visit)
            fail(Status::inval, "visitor is NULL");
        bool stopped = false;
        c->impl->foreach([&](const std::string &key, uint64_t size, int64_t created_us) {
            stopped = visit(ctx, key.data(), key.size(), size, created_us / 1000) != 0;
            return !stopped;
        });
        return stopped ? FSC_STOPPED : FSC_OK;
    });
}

} // extern "C"
