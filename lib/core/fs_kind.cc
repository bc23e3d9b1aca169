#include "fs_kind.h"

#include <sys/vfs.h>

namespace fsc {

namespace {

struct Magic {
    unsigned long f_type;
    const char *name;
};

// statfs(2) f_type of the filesystems whose files other hosts can share.
// FUSE covers every user-space client (GlusterFS, ceph-fuse, sshfs, ...).
constexpr Magic network_magics[] = {
    {0x6969, "nfs"},          // NFS_SUPER_MAGIC
    {0x517B, "smb"},          // SMB_SUPER_MAGIC
    {0xFF534D42, "cifs"},     // CIFS_SUPER_MAGIC
    {0xFE534D42, "smb2"},     // SMB2_SUPER_MAGIC
    {0x65735546, "fuse"},     // FUSE_SUPER_MAGIC
    {0x00C36400, "ceph"},     // CEPH_SUPER_MAGIC
    {0x0BD00BD0, "lustre"},   // LL_SUPER_MAGIC
    {0x47504653, "gpfs"},     // GPFS_SUPER_MAGIC ("GPFS")
    {0x5346414F, "afs"},      // AFS_SUPER_MAGIC (OpenAFS)
    {0x6B414653, "afs"},      // AFS_FS_MAGIC (kAFS)
    {0x01021997, "9p"},       // V9FS_MAGIC
};

} // namespace

FsKind fs_kind_of_magic(unsigned long f_type) {
    // f_type is a signed word on some ABIs: compare its low 32 bits.
    f_type &= 0xFFFFFFFFUL;
    for (const Magic &m : network_magics)
        if (m.f_type == f_type)
            return FsKind{true, m.name};
    return FsKind{};
}

FsKind fs_kind_of_fd(int fd) {
    struct statfs st;
    if (fstatfs(fd, &st) != 0)
        return FsKind{};
    return fs_kind_of_magic(static_cast<unsigned long>(st.f_type));
}

} // namespace fsc
