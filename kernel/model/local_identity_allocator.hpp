// The identities of a node that runs alone (no [kvstore]). Every label set
// gets the next free number from MBR_IDENTITY_FIRST_ALLOCATED on, the first
// time it is seen, and keeps it for good: the mapping is persisted
// (atomically) before the number is handed out, so the same labels give the
// same number after any restart. prepare() has nothing to wait for.
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

#include <boost/asio/io_context.hpp>

#include "membrane/model.hpp"
#include "model/identity_allocator.hpp"

namespace membrane::kernel {

class LocalIdentityAllocator final : public IdentityAllocator {
public:
    // Loads `state_file` if it exists; throws StateError if it is corrupt.
    // `excluded_label_keys`: [identity] exclude_labels.
    LocalIdentityAllocator(boost::asio::io_context& io, std::filesystem::path state_file,
                           std::vector<std::string> excluded_label_keys);

    void prepare(const Labels& labels, Prepared done) override;
    // Allocates and persists a new label set's number here; StateError when
    // it cannot be persisted (then nothing changed).
    std::uint32_t acquire(const Labels& labels) override;
    void release(std::uint32_t id) override;
    std::optional<std::uint32_t> find(const Labels& labels) const override;
    std::vector<IdentityInfo> list() const override;
    // Numbers retired when the record was loaded (see above), lowest first.
    const std::vector<std::uint32_t>& retired_at_load() const { return retired_at_load_; }

private:
    void persist(const std::map<Labels, std::uint32_t>& numbers, std::uint32_t next) const;

    boost::asio::io_context& io_;
    std::filesystem::path state_file_;
    std::vector<std::string> excluded_label_keys_;
    std::vector<std::uint32_t> retired_at_load_;
    mutable std::mutex mutex_;
    std::map<Labels, std::uint32_t> numbers_;
    std::map<std::uint32_t, std::uint32_t> endpoints_;  // id -> endpoints using it
    std::uint32_t next_;
};

}  // namespace membrane::kernel
