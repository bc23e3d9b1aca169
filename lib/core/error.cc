#include "error.h"

#include <cerrno>
#include <cstring>

namespace fsc {

Status status_from_errno(int err) noexcept {
    switch (err) {
    case ENOSPC:
    case EDQUOT:
        return Status::nospc;
    case EACCES:
    case EPERM:
    case EROFS:
        return Status::acces;
    case ENOMEM:
        return Status::nomem;
    case EXDEV:
        return Status::xdev;
    case EDEADLK:
        return Status::deadlk;
    // A network filesystem's connection went away (EBADFD: GlusterFS with
    // client.strict-locks, on a descriptor whose locks did not survive a
    // reconnect).
    case ENOTCONN:
    case EBADFD:
    case ESHUTDOWN:
    case ECONNABORTED:
    case ECONNRESET:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case ENETDOWN:
    case ENETUNREACH:
    case ENETRESET:
        return Status::lost;
    default:
        return Status::io;
    }
}

void throw_errno(int err, const std::string &what) {
    if (err == ESTALE)
        throw StaleFileError(Status::io, what + ": " + std::strerror(err));
    throw Error(status_from_errno(err), what + ": " + std::strerror(err));
}

} // namespace fsc
