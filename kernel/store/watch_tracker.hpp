// What a watch remembers so that it can resume and resync: the keys it has
// reported under its prefix (with their mod_revision) and the next revision
// it needs. Shared by EtcdStore and MemoryStore so both resync alike.
#pragma once

#include <map>
#include <string>

#include "store/store.hpp"

namespace membrane::kernel {

class WatchTracker {
public:
    WatchTracker(std::string prefix, const WatchOptions& options);

    const std::string& prefix() const { return prefix_; }
    // Where the watch goes on from: 0 = list first (no revision delivered yet).
    Revision next_revision() const { return next_revision_; }
    // The revision the handler has seen everything up to (0: nothing yet).
    Revision delivered_revision() const { return next_revision_ > 0 ? next_revision_ - 1 : 0; }
    const std::map<std::string, Revision>& known() const { return known_; }

    // Events as they arrive (revision order); returns the batch to deliver.
    WatchBatch events(std::vector<WatchEvent> events, Revision revision);
    // The first batch of a list-and-watch: every key read at `current.revision`.
    WatchBatch snapshot(const RangeResult& current);
    // After a compaction: Deletes for known keys missing from `current`,
    // Puts for keys new or changed since; known becomes `current`.
    WatchBatch resync(const RangeResult& current);

private:
    std::string prefix_;
    Revision next_revision_ = 0;
    std::map<std::string, Revision> known_;
};

}  // namespace membrane::kernel
