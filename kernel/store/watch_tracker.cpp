#include "store/watch_tracker.hpp"

#include <algorithm>

namespace membrane::kernel {

std::string prefix_range_end(std::string_view prefix) {
    std::string end(prefix);
    while (!end.empty()) {
        auto& last = reinterpret_cast<unsigned char&>(end.back());
        if (last < 0xff) {
            ++last;
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');  // every key
}

const char* store_error_name(StoreErrorKind kind) {
    switch (kind) {
        case StoreErrorKind::Unavailable: return "unavailable";
        case StoreErrorKind::Timeout: return "timeout";
        case StoreErrorKind::Refused: return "refused";
        case StoreErrorKind::LeaseNotFound: return "lease not found";
        case StoreErrorKind::Compacted: return "compacted";
        case StoreErrorKind::Invalid: return "invalid";
        case StoreErrorKind::Closed: return "closed";
        case StoreErrorKind::Failed: break;
    }
    return "failed";
}

const char* store_state_name(StoreState state) {
    switch (state) {
        case StoreState::Connecting: return "connecting";
        case StoreState::Connected: return "connected";
        case StoreState::Disconnected: return "disconnected";
        case StoreState::Closed: break;
    }
    return "closed";
}

WatchTracker::WatchTracker(std::string prefix, const WatchOptions& options)
    : prefix_(std::move(prefix)), next_revision_(std::max<Revision>(options.from_revision, 0)) {
    if (next_revision_ > 0) known_ = options.known;
}

WatchBatch WatchTracker::events(std::vector<WatchEvent> events, Revision revision) {
    for (const auto& event : events) {
        if (event.type == WatchEvent::Type::Put) {
            known_[event.kv.key] = event.kv.mod_revision;
        } else {
            known_.erase(event.kv.key);
        }
    }
    next_revision_ = std::max(next_revision_, revision + 1);
    return WatchBatch{WatchBatchKind::Events, std::move(events), revision};
}

WatchBatch WatchTracker::snapshot(const RangeResult& current) {
    WatchBatch batch{WatchBatchKind::Snapshot, {}, current.revision};
    known_.clear();
    for (const auto& kv : current.kvs) {
        known_[kv.key] = kv.mod_revision;
        batch.events.push_back(WatchEvent{WatchEvent::Type::Put, kv});
    }
    next_revision_ = current.revision + 1;
    return batch;
}

WatchBatch WatchTracker::resync(const RangeResult& current) {
    WatchBatch batch{WatchBatchKind::Resync, {}, current.revision};
    std::map<std::string, Revision> now;
    for (const auto& kv : current.kvs) now[kv.key] = kv.mod_revision;
    for (const auto& [key, revision] : known_) {
        if (!now.contains(key)) {
            KeyValue gone;
            gone.key = key;
            gone.mod_revision = current.revision;  // the delete's own revision is lost with the history
            batch.events.push_back(WatchEvent{WatchEvent::Type::Delete, std::move(gone)});
        }
    }
    for (const auto& kv : current.kvs) {
        auto it = known_.find(kv.key);
        if (it == known_.end() || it->second != kv.mod_revision) {
            batch.events.push_back(WatchEvent{WatchEvent::Type::Put, kv});
        }
    }
    known_ = std::move(now);
    next_revision_ = current.revision + 1;
    return batch;
}

}  // namespace membrane::kernel
