// Whether the cache's directory is on a network or FUSE filesystem, where
// other hosts may share it: fsc_open reports it (fsc_statistics.network_fs);
// sharing between hosts is not supported (docs/MULTIHOST.md).
#pragma once

namespace fsc {

// Whether f_type, a statfs(2) magic number, is one of a network or FUSE filesystem.
bool is_network_fs_magic(unsigned long f_type);

// Whether the open file fd is on a network or FUSE filesystem; false when
// fstatfs fails (nothing detected).
bool is_network_fs(int fd);

} // namespace fsc
