// Wall-clock time, the one clock rule of the cache: microseconds since the Unix epoch.
#pragma once

#include <chrono>
#include <cstdint>

namespace fsc {

inline int64_t now_us() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

inline int64_t steady_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

} // namespace fsc
