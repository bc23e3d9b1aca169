// Errors of the core: one exception type carrying a status and a message.
#pragma once

#include <stdexcept>
#include <string>

namespace fsc {

// Mirrors the public status codes (checked against fsc.h in the C layer).
enum class Status : int {
    ok = 0,
    miss = 1,
    stale = 2,
    inval = -1,
    nomem = -2,
    io = -3,
    nospc = -4,
    acces = -5,
    busy = -6,
    timedout = -7,
    deadlk = -8,
    corrupt = -9,
    toobig = -10,
    xdev = -11,
    format = -12,
    creator = -13,
    notsup = -14,
    lost = -15,
};

class Error : public std::runtime_error {
public:
    Error(Status status, const std::string &message) : std::runtime_error(message), status_(status) {}
    Status status() const noexcept { return status_; }

private:
    Status status_;
};

// ESTALE (as Error(io)): a file another host replaced after this one looked
// it up; the read is worth making again from the table (FSC_NETWORK).
class StaleFileError : public Error {
public:
    using Error::Error;
};

// The status an errno value maps to (ENOSPC/EDQUOT -> nospc, EACCES/EPERM/EROFS -> acces, ...).
Status status_from_errno(int err) noexcept;

// Throws Error(status_from_errno(err), "<what>: <strerror(err)>").
[[noreturn]] void throw_errno(int err, const std::string &what);

[[noreturn]] inline void fail(Status status, const std::string &message) { throw Error(status, message); }

} // namespace fsc
