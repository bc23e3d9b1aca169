// Wall-clock time, the one clock rule of the cache: microseconds since the Unix epoch.
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>
#include <thread>

namespace fsc {

inline int64_t now_us() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

inline void sleep_us(int64_t us) { std::this_thread::sleep_for(std::chrono::microseconds(us)); }

inline int64_t steady_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// Whether a value aged age_us is older than expiration_ms (-1: never). An
// expiration too long for microseconds in 64 bits (about 292,000 years) is
// never. A negative age (stamped by a host whose clock is ahead) counts as 0:
// with expiration 0 nothing is fresh.
inline bool older_than(int64_t age_us, int64_t expiration_ms) {
    return expiration_ms >= 0 && expiration_ms <= INT64_MAX / 1000 && (age_us < 0 ? 0 : age_us) >= expiration_ms * 1000;
}

} // namespace fsc
