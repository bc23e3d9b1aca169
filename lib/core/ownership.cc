#include "ownership.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include "error.h"

namespace fsc {

namespace {

std::string octal(mode_t mode) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", unsigned(mode & 07777));
    return buf;
}

[[noreturn]] void refuse(const std::string &shown, const std::string &why) {
    fail(Status::acces, "'" + shown + "' " + why +
                            ": refusing a cache that another user could have planted or may change"
                            " (a cache shared by a group needs fsc_options.shared_group)");
}

} // namespace

void enforce_mode(int fd, mode_t mode, const std::string &shown) {
    if ((mode & 070) != 0 && fchmod(fd, mode) != 0)
        throw_errno(errno, "chmod '" + shown + "'");
}

void check_membership(const Sharing &s) {
    if (!s.shared())
        return;
    const gid_t g = gid_t(s.group);
    if (geteuid() == 0 || getegid() == g)
        return;
    int n = getgroups(0, nullptr);
    std::vector<gid_t> groups(n > 0 ? size_t(n) : 0);
    n = getgroups(int(groups.size()), groups.data());
    for (int i = 0; i < n; i++)
        if (groups[size_t(i)] == g)
            return;
    fail(Status::acces, "shared_group " + std::to_string(s.group) + ": this user (uid " +
                            std::to_string(geteuid()) + ") is not a member of that group");
}

void secure(int fd, const char *name, const Sharing &s, const std::string &shown) {
    struct stat st;
    if ((name ? fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) : fstat(fd, &st)) != 0) {
        if (name && errno == ENOENT)
            return; // the cache creates it
        throw_errno(errno, "stat '" + shown + "'");
    }
    const uid_t me = geteuid();
    const bool in_group = s.shared() && st.st_gid == gid_t(s.group);
    // A symbolic link's own mode means nothing (and fsc never follows one).
    const bool link = S_ISLNK(st.st_mode);
    if (st.st_uid != me && st.st_uid != 0 && !in_group)
        refuse(shown, "is owned by uid " + std::to_string(st.st_uid) + ", not by this user (uid " +
                          std::to_string(me) + ")" +
                          (s.shared() ? " and is not in group " + std::to_string(s.group) : ""));
    if (!link && (st.st_mode & S_IWOTH))
        refuse(shown, "is writable by others (mode " + octal(st.st_mode) + ")");
    if (!link && (st.st_mode & S_IWGRP) && !in_group)
        refuse(shown, "is writable by group " + std::to_string(st.st_gid) + " (mode " + octal(st.st_mode) + ")");
    if (!s.shared() || st.st_uid != me || link)
        return;
    // Ours: give it the sharing group and mode.
    const mode_t want = S_ISDIR(st.st_mode) ? s.dir_mode() : s.file_mode();
    if (!in_group && (name ? fchownat(fd, name, uid_t(-1), gid_t(s.group), AT_SYMLINK_NOFOLLOW)
                           : fchown(fd, uid_t(-1), gid_t(s.group))) != 0)
        throw_errno(errno, "chgrp '" + shown + "'");
    // chgrp may have cleared the setgid bit: set the mode after it.
    if ((!in_group || (st.st_mode & 07777) != want) &&
        (name ? fchmodat(fd, name, want, 0) : fchmod(fd, want)) != 0)
        throw_errno(errno, "chmod '" + shown + "'");
}

} // namespace fsc
