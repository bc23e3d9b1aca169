#include "fork_locks.h"

#include <pthread.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace fsc {

struct ForkLocksRegistry {
    std::mutex mu;
    std::vector<ForkLocks *> all;

    static ForkLocksRegistry &get() {
        // Never freed: a handle may be closed from a static destructor.
        static ForkLocksRegistry *r = new ForkLocksRegistry;
        return *r;
    }
    static void prepare() {
        ForkLocksRegistry &r = get();
        r.mu.lock();
        for (ForkLocks *l : r.all)
            l->lock_();
    }
    static void release() {
        ForkLocksRegistry &r = get();
        for (auto it = r.all.rbegin(); it != r.all.rend(); ++it)
            (*it)->unlock_();
        r.mu.unlock();
    }
};

ForkLocks::ForkLocks(std::function<void()> lock, std::function<void()> unlock)
    : lock_(std::move(lock)), unlock_(std::move(unlock)) {
    static std::once_flag once;
    std::call_once(once, [] {
        pthread_atfork(ForkLocksRegistry::prepare, ForkLocksRegistry::release, ForkLocksRegistry::release);
    });
    ForkLocksRegistry &r = ForkLocksRegistry::get();
    std::lock_guard<std::mutex> g(r.mu);
    r.all.push_back(this);
}

ForkLocks::~ForkLocks() {
    ForkLocksRegistry &r = ForkLocksRegistry::get();
    std::lock_guard<std::mutex> g(r.mu);
    r.all.erase(std::find(r.all.begin(), r.all.end(), this));
}

} // namespace fsc
