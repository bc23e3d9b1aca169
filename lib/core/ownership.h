// Who may change a cache directory: its owner alone (the default), or the
// members of one group (fsc_options.shared_group). fsc_open refuses a
// directory that anyone else could have planted or may change, and a shared
// cache gets group modes on everything it creates, whatever the umask.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>

namespace fsc {

struct Sharing {
    int64_t group = -1; // -1: private to its owner; else the gid sharing it

    bool shared() const noexcept { return group >= 0; }
    mode_t file_mode() const noexcept { return shared() ? 0660 : 0600; }
    mode_t dir_mode() const noexcept { return shared() ? 02770 : 0700; }
};

// Gives fd, just created by this process with mode (file_mode or dir_mode),
// that exact mode: the umask may have cleared group bits. A no-op for the
// private modes, which no usual umask narrows.
void enforce_mode(int fd, mode_t mode, const std::string &shown);

// Error(access) when this process cannot join the sharing group.
void check_membership(const Sharing &s);

// Checks base_dir itself (name nullptr) or its entry `name` (absent: fine)
// before the cache relies on it. Private: it must belong to this user or to
// root and be writable by neither group nor others. Shared: it may also
// belong to another user if its group is the sharing group, and must not be
// writable by others nor by another group; what this user owns gets the
// sharing group and mode. Anything else is refused with Error(access).
void secure(int dirfd, const char *name, const Sharing &s, const std::string &shown);

} // namespace fsc
