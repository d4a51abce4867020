// Security identities: one set of identity-relevant labels, one number. An
// endpoint's labels minus [identity] exclude_labels (identity_labels) make
// its identity, so replicas that differ only in pod name or hash labels
// share one. The reserved identities
// (contract.h) are fixed; every other label set gets the next free number
// from MBR_IDENTITY_FIRST_ALLOCATED on, the first time it is seen, and keeps
// it for good: the mapping is persisted (atomically) before the number is
// handed out, so the same labels give the same number after any restart.
//
// An identity no endpoint uses any more is kept, not freed: numbers are never
// reused for another label set, so a number in a flow log, a policy map or a
// peer's tunnel key always means the same labels. (A node's label sets are
// few; if that ever matters, garbage collection belongs here.)
//
// A record written under other exclusions (before this filter existed, the
// pod name made identities too) is brought in line when it is loaded: each
// label set is filtered, and when several give the same set, it keeps the
// lowest of their numbers; the others are retired (dropped from the record,
// never handed out again, as `next` stays). The record is rewritten at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "membrane/model.hpp"

namespace membrane::kernel {

class IdentityAllocator {
public:
    // Loads `state_file` if it exists; throws StateError if it is corrupt.
    // `excluded_label_keys`: [identity] exclude_labels.
    IdentityAllocator(std::filesystem::path state_file, std::vector<std::string> excluded_label_keys);

    // The number of identity_labels(labels) (allocated and persisted if new), with one more
    // endpoint counted on it. Throws std::invalid_argument for labels an
    // endpoint may not have (label_problem) and StateError when the new
    // mapping cannot be persisted (then nothing changed).
    std::uint32_t acquire(const Labels& labels);
    // One endpoint fewer on `id`; nothing for an unknown or unused id.
    void release(std::uint32_t id);

    std::optional<std::uint32_t> find(const Labels& labels) const;
    // Reserved identities first, then allocated ones by number.
    std::vector<IdentityInfo> list() const;
    // Numbers retired when the record was loaded (see above), lowest first.
    const std::vector<std::uint32_t>& retired_at_load() const { return retired_at_load_; }

private:
    void persist(const std::map<Labels, std::uint32_t>& numbers, std::uint32_t next) const;

    std::filesystem::path state_file_;
    std::vector<std::string> excluded_label_keys_;
    std::vector<std::uint32_t> retired_at_load_;
    mutable std::mutex mutex_;
    std::map<Labels, std::uint32_t> numbers_;
    std::map<std::uint32_t, std::uint32_t> endpoints_;  // id -> endpoints using it
    std::uint32_t next_;
};

}  // namespace membrane::kernel
