#include "model/identity_allocator.hpp"

#include "model/labels.hpp"

extern "C" {
#include "membrane/contract.h"
}

namespace membrane::kernel {

std::vector<IdentityInfo> reserved_identities() {
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
    return out;
}

}  // namespace membrane::kernel
