// What the store's units (store*.cc, shard_txn.cc) share: the names and
// checks of a shard's files, and a shard's line in the ledger.
#pragma once

#include <string>

#include "shard_meta.h"
#include "store.h"

namespace fsc {

// Why an entry's name stands for no entry of ours.
extern const char not_an_entry[];

// Whether fd is still the file `name` in dir (not replaced meanwhile).
bool same_file(int fd, int dir, const std::string &name);

// A shard's line in the ledger: what its table says it holds, the table
// and the pack's overhead included.
Change line_of(const MetaHeader &head);

// Whether name is an entry file's: a key hash's 32 hex digits.
bool is_entry_name(const char *name);

} // namespace fsc
