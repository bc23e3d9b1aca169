#include "fs_kind.h"

#include <sys/vfs.h>

namespace fsc {

namespace {

// statfs(2) f_type of the filesystems whose files other hosts can share.
// FUSE covers every user-space client (GlusterFS, ceph-fuse, sshfs, ...).
constexpr unsigned long network_magics[] = {
    0x6969,     // NFS_SUPER_MAGIC
    0x517B,     // SMB_SUPER_MAGIC
    0xFF534D42, // CIFS_SUPER_MAGIC
    0xFE534D42, // SMB2_SUPER_MAGIC
    0x65735546, // FUSE_SUPER_MAGIC
    0x00C36400, // CEPH_SUPER_MAGIC
    0x0BD00BD0, // LL_SUPER_MAGIC (Lustre)
    0x47504653, // GPFS_SUPER_MAGIC
    0x5346414F, // AFS_SUPER_MAGIC (OpenAFS)
    0x6B414653, // AFS_FS_MAGIC (kAFS)
    0x01021997, // V9FS_MAGIC (9p)
};

} // namespace

bool is_network_fs_magic(unsigned long f_type) {
    // f_type is a signed word on some ABIs: compare its low 32 bits.
    f_type &= 0xFFFFFFFFUL;
    for (unsigned long m : network_magics)
        if (m == f_type)
            return true;
    return false;
}

bool is_network_fs(int fd) {
    struct statfs st;
    return fstatfs(fd, &st) == 0 && is_network_fs_magic(static_cast<unsigned long>(st.f_type));
}

} // namespace fsc
