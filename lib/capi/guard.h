// The one error guard of the C boundary: runs a body, turns every exception
// into a status and stores its message in the calling thread's last error.
#pragma once

#include <new>
#include <string>

#include "../core/error.h"
#include "fsc.h"

namespace fsc::capi {

void set_error(const char *message) noexcept;

template <typename F> int guard(F &&body) noexcept {
    try {
        return body();
    } catch (const fsc::Error &e) {
        set_error(e.what());
        return int(e.status());
    } catch (const std::bad_alloc &) {
        set_error("out of memory");
        return FSC_ENOMEM;
    } catch (const std::exception &e) {
        set_error(e.what());
        return FSC_EIO;
    } catch (...) {
        set_error("unknown internal error");
        return FSC_EIO;
    }
}

} // namespace fsc::capi
