// The cache directory itself: creating it, its format marker, its subdirectories.
#pragma once

#include <string>

namespace fsc {

struct Sharing;

// Creates dir and its missing parents with the sharing's directory mode.
void make_dirs(const std::string &dir, const Sharing &s);
// Checks the format marker, writing it into an empty directory; Error(format)
// for a non-empty directory that is not an fsc cache or one of another format.
void init_format(int base, const std::string &path);
// mkdir base/name (0700) unless it exists.
void make_subdir(int base, const std::string &path, const char *name);

} // namespace fsc
