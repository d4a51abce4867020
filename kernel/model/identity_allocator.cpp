#include "model/identity_allocator.hpp"

#include "model/labels.hpp"

extern "C" {
#include "membrane/contract.h"
}

namespace membrane::kernel {

std::vector<IdentityInfo> list_identities(const std::map<Labels, std::uint32_t>& numbers,
                                          const std::map<std::uint32_t, std::uint32_t>& uses) {
    struct Reserved {
        std::uint32_t id;
        const char* name;
    };
    static constexpr Reserved kReserved[] = {
        {MBR_IDENTITY_HOST, "host"},
        {MBR_IDENTITY_WORLD, "world"},
        {MBR_IDENTITY_UNMANAGED, "unmanaged"},
        {MBR_IDENTITY_REMOTE_NODE, "remote-node"},
    };
    std::vector<IdentityInfo> out;
    for (const auto& reserved : kReserved) {
        out.push_back(IdentityInfo{reserved.id, Labels{{kReservedLabelKey, reserved.name}}, true, 0});
    }
    std::map<std::uint32_t, const Labels*> by_number;
    for (const auto& [labels, id] : numbers) by_number.emplace(id, &labels);
    for (const auto& [id, labels] : by_number) {
        auto used = uses.find(id);
        out.push_back(IdentityInfo{id, *labels, false, used == uses.end() ? 0 : used->second});
    }
    return out;
}

bool IdentityAllocator::announce(const std::map<Labels, std::uint32_t>& numbers) {
    std::map<std::uint32_t, Labels> now;
    for (const auto& [labels, id] : numbers) now.emplace(id, labels);
    if (now == announced_) return false;
    if (observer_) {
        for (const auto& [id, labels] : announced_) {
            if (const auto it = now.find(id); it == now.end() || it->second != labels)
                observer_(IdentityInfo{.id = id, .labels = labels}, false);
        }
        for (const auto& [id, labels] : now) {
            if (const auto it = announced_.find(id); it == announced_.end() || it->second != labels)
                observer_(IdentityInfo{.id = id, .labels = labels}, true);
        }
    }
    announced_ = std::move(now);
    return true;
}

}  // namespace membrane::kernel
