#include "fs_kind.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "fd.h"

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

// The root of the mount that holds directory dir: its topmost ancestor on
// the same device. An ancestor that cannot be opened ends the climb there.
Fd mount_root(int dir) {
    Fd at(openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat st;
    if (!at || fstat(at.get(), &st) != 0)
        return Fd();
    for (;;) {
        Fd up(openat(at.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        struct stat ust;
        if (!up || fstat(up.get(), &ust) != 0 || ust.st_dev != st.st_dev || ust.st_ino == st.st_ino)
            return at;
        at = std::move(up);
        st = ust;
    }
}

// The first line of the small file `name` in directory dir; empty when unreadable.
std::string first_line(int dir, const std::string &name) {
    Fd f(openat(dir, name.c_str(), O_RDONLY | O_CLOEXEC));
    char buf[256];
    const ssize_t n = f ? read(f.get(), buf, sizeof buf) : -1;
    if (n <= 0)
        return {};
    std::string s(buf, size_t(n));
    return s.substr(0, s.find('\n'));
}

constexpr const char *content_caching_types[] = {"performance/quick-read"};

} // namespace

std::string content_caching_translator(int dir) {
    const Fd root = mount_root(dir);
    Fd graph(root ? openat(root.get(), ".meta/graphs/active", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1);
    if (!graph)
        return {};
    DIR *d = fdopendir(graph.get());
    if (!d)
        return {};
    graph.release(); // closedir closes it
    std::string found;
    while (const dirent *e = readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        const std::string type = first_line(::dirfd(d), std::string(e->d_name) + "/type");
        for (const char *t : content_caching_types)
            if (type == t)
                found = type;
    }
    closedir(d);
    return found;
}

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
