#include "live_locks.h"

#include <pthread.h>

#include <mutex>
#include <unordered_set>

namespace fsc::capi {

namespace {

struct Registry {
    std::mutex mu;
    std::unordered_set<const void *> live;
};

// Never destroyed: a handle may be released from a static destructor.
Registry &registry() {
    static Registry *reg = [] {
        auto *r = new Registry;
        // A fork while another thread holds the mutex must not leave it locked in the child.
        pthread_atfork([] { registry().mu.lock(); }, [] { registry().mu.unlock(); },
                       [] { registry().mu.unlock(); });
        return r;
    }();
    return *reg;
}

} // namespace

void add_live_lock(const void *handle) {
    Registry &reg = registry();
    std::lock_guard<std::mutex> g(reg.mu);
    reg.live.insert(handle);
}

bool take_live_lock(const void *handle) {
    Registry &reg = registry();
    std::lock_guard<std::mutex> g(reg.mu);
    return reg.live.erase(handle) == 1;
}

} // namespace fsc::capi
