// Mutexes that a forked child must find unlocked, with the state they guard
// whole, and descriptors a child must find open: around every fork() the
// parent takes each registered object's mutexes (so no other thread is
// inside them, and none is publishing a descriptor it just opened), and
// releases them after it, in the parent and in the child.
//
// Why the descriptors: fork() copies the descriptor table before the memory,
// so a descriptor another thread opens and stores in between is in the
// child's memory but not in its table (EBADF, or another file reusing the
// number). Publishing cached descriptors under a registered mutex closes
// that gap.
#pragma once

#include <functional>

namespace fsc {

class ForkLocks {
public:
    // lock() runs in the forking thread before fork(); unlock() after it,
    // in the parent and in the child. Register once the object is whole.
    ForkLocks(std::function<void()> lock, std::function<void()> unlock);
    ~ForkLocks();
    ForkLocks(const ForkLocks &) = delete;
    ForkLocks &operator=(const ForkLocks &) = delete;

private:
    std::function<void()> lock_, unlock_;
    friend struct ForkLocksRegistry;
};

} // namespace fsc
