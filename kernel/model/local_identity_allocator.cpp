#include "model/local_identity_allocator.hpp"

#include <algorithm>
#include <limits>
#include <set>
#include <stdexcept>

#include <boost/asio/post.hpp>

#include "model/labels.hpp"
#include "state/state_file.hpp"

extern "C" {
#include "membrane/contract.h"
}

namespace membrane::kernel {
namespace {

constexpr int kIdentitiesFormat = 1;

}  // namespace

LocalIdentityAllocator::LocalIdentityAllocator(boost::asio::io_context& io, std::filesystem::path state_file,
                                               std::vector<std::string> excluded_label_keys)
    : io_(io),
      state_file_(std::move(state_file)),
      excluded_label_keys_(std::move(excluded_label_keys)),
      next_(MBR_IDENTITY_FIRST_ALLOCATED) {
    const auto document = read_state_file(state_file_);
    if (!document) return;
    try {
        expect_state_format(state_file_, *document, kIdentitiesFormat);
        const auto next = document->at("next").get<std::uint32_t>();
        std::set<std::uint32_t> seen;
        std::set<Labels> recorded;
        bool filtered = false;
        for (const auto& item : document->at("identities")) {
            const auto id = item.at("id").get<std::uint32_t>();
            auto labels = item.at("labels").get<Labels>();
            if (id < MBR_IDENTITY_FIRST_ALLOCATED || id >= next) {
                throw corrupt_record(state_file_, "identity " + std::to_string(id) +
                                                      " is outside the allocated range " +
                                                      std::to_string(MBR_IDENTITY_FIRST_ALLOCATED) + ".." +
                                                      std::to_string(next - 1));
            }
            if (!seen.insert(id).second) {
                throw corrupt_record(state_file_, "identity " + std::to_string(id) + " is listed twice");
            }
            if (!recorded.insert(labels).second) {
                throw corrupt_record(state_file_, "the labels of identity " + std::to_string(id) + " are listed twice");
            }
            // Brought in line with today's exclusions: the lowest number wins.
            Labels relevant = identity_labels(labels, excluded_label_keys_);
            filtered = filtered || relevant != labels;
            auto [it, added] = numbers_.emplace(std::move(relevant), id);
            if (!added) {
                retired_at_load_.push_back(std::max(it->second, id));
                it->second = std::min(it->second, id);
            }
        }
        next_ = next;
        std::sort(retired_at_load_.begin(), retired_at_load_.end());
        // Rewritten at once when anything changed, so the file says what the agent uses.
        if (filtered) persist(numbers_, next_);
        announce(numbers_);
    } catch (const nlohmann::json::exception& e) {
        throw corrupt_record(state_file_, std::string("not an identity record the agent wrote (") + e.what() + ")");
    }
}

void LocalIdentityAllocator::prepare(const Labels& labels, Prepared done) {
    std::optional<IdentityProblem> problem;
    if (auto why = label_problem(labels)) problem = IdentityProblem{false, std::move(*why)};
    boost::asio::post(io_, [done = std::move(done), problem = std::move(problem)] { done(problem); });
}

std::uint32_t LocalIdentityAllocator::acquire(const Labels& endpoint_labels) {
    if (auto problem = label_problem(endpoint_labels)) throw std::invalid_argument(*problem);
    const Labels labels = identity_labels(endpoint_labels, excluded_label_keys_);
    const std::lock_guard lock(mutex_);
    auto it = numbers_.find(labels);
    if (it == numbers_.end()) {
        if (next_ == std::numeric_limits<std::uint32_t>::max()) throw StateError("no identity numbers left");
        auto numbers = numbers_;
        numbers.emplace(labels, next_);
        persist(numbers, next_ + 1);  // before anyone sees the number
        numbers_ = std::move(numbers);
        it = numbers_.find(labels);
        ++next_;
        announce(numbers_);
    }
    ++endpoints_[it->second];
    return it->second;
}

void LocalIdentityAllocator::release(std::uint32_t id) {
    const std::lock_guard lock(mutex_);
    auto it = endpoints_.find(id);
    if (it == endpoints_.end()) return;
    if (--it->second == 0) endpoints_.erase(it);
}

std::optional<std::uint32_t> LocalIdentityAllocator::find(const Labels& endpoint_labels) const {
    const std::lock_guard lock(mutex_);
    auto it = numbers_.find(identity_labels(endpoint_labels, excluded_label_keys_));
    if (it == numbers_.end()) return std::nullopt;
    return it->second;
}

std::vector<IdentityInfo> LocalIdentityAllocator::list() const {
    const std::lock_guard lock(mutex_);
    return list_identities(numbers_, endpoints_);
}

void LocalIdentityAllocator::persist(const std::map<Labels, std::uint32_t>& numbers, std::uint32_t next) const {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& [labels, id] : numbers) items.push_back({{"id", id}, {"labels", labels}});
    write_state_file(state_file_, {{"format", kIdentitiesFormat}, {"next", next}, {"identities", items}});
}

}  // namespace membrane::kernel
