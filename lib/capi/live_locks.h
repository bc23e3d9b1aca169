// The lock handles fsc_lock gave out and fsc_unlock has not yet released:
// fsc_unlock looks a handle up here before it touches it, so a handle
// released twice (memory already freed) is refused instead of read.
#pragma once

namespace fsc::capi {

void add_live_lock(const void *handle);
// Removes the handle; false when it is not live (released, or never given).
bool take_live_lock(const void *handle);

} // namespace fsc::capi
