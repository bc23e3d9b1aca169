// Whether the cache's directory is on a network or FUSE filesystem, where
// other hosts may share it (fsc_statistics.network_fs, FSC_NETWORK), and
// how long network mode waits for a name another host changed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "clock.h"

namespace fsc {

// Network mode: a client may name a file another host replaced (ESTALE, or
// the old file) or miss one it created (ENOENT) until its metadata cache
// expires (GlusterFS: 1 s). What the (coherent) table names is looked for
// again this many times, waiting 1 ms, then twice as long each time up to
// 250 ms: about 2 s in all.
constexpr int name_tries = 14;
inline void wait_for_name(int attempt) { sleep_us(std::min<int64_t>(int64_t(1000) << std::min(attempt, 20), 250000)); }
// Calls attempt(last) until it returns true: in network mode (`network`)
// name_tries times at most, waiting for a name between tries; else once.
// last: no try follows, so attempt gives up (or throws) as it sees fit.
template <typename F> void retry_for_names(bool network, F &&attempt) {
    for (int n = 0;; n++) {
        const bool last = !network || n + 1 >= name_tries;
        if (attempt(last) || last)
            return;
        wait_for_name(n);
    }
}

// Whether f_type, a statfs(2) magic number, is one of a network or FUSE filesystem.
bool is_network_fs_magic(unsigned long f_type);

// Whether the open file fd is on a network or FUSE filesystem; false when
// fstatfs fails (nothing detected).
bool is_network_fs(int fd);

// The type of a translator in the GlusterFS client graph of the mount that
// holds directory dir which serves file contents from a cache of its own:
// "performance/quick-read". It keeps the whole of each small file it looked
// up and serves reads from it for a second, O_DIRECT ones included, and
// another host's writes do not drop it, so no read through that mount is
// coherent (docs/MULTIHOST.md, "Running fsc on a shared filesystem").
// Found in the graph the client shows under its mount's root,
// .meta/graphs/active/*/type. Empty when there is none, or no such graph to
// read (not GlusterFS).
std::string content_caching_translator(int dir);

} // namespace fsc
