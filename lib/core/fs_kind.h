// Which kind of filesystem holds the cache: fsc_open reports a network or FUSE
// filesystem (fsc_statistics.network_fs), where the directory may be shared
// between hosts, which the cache does not support (docs/MULTIHOST.md).
#pragma once

namespace fsc {

struct FsKind {
    bool network = false;       // network or FUSE: other hosts may share it
    const char *name = "local"; // "nfs", "cifs", "fuse", ... or "local"
};

// The kind of f_type, a statfs(2) magic number.
FsKind fs_kind_of_magic(unsigned long f_type);

// The kind of the filesystem that holds the open file fd; "local" when
// fstatfs fails (nothing detected).
FsKind fs_kind_of_fd(int fd);

} // namespace fsc
