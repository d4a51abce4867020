// The names of the pipeline's stages, of the context's directions and
// connection tracking states, and of the event types (enum membrane_stage,
// membrane_direction, membrane_ct_state, membrane_event_type in
// membrane/contract.h): what logs, `membranectl module list`, the flow
// monitor and the trace print. The one number -> name table of each, like
// stat_names.hpp.
#pragma once

#include <cstdint>
#include <string>

#include "membrane/contract.h"

namespace membrane {

// "egress-policy", ...; "custom-<n>" for a third party's stage (8..15),
// "stage-<n>" for a number past them.
inline std::string stage_name(std::uint32_t stage) {
    switch (stage) {
        case MBR_STAGE_OBSERVE: return "observe";
        case MBR_STAGE_SERVICE: return "service";
        case MBR_STAGE_EGRESS_POLICY: return "egress-policy";
        case MBR_STAGE_L7_REDIRECT: return "l7-redirect";
        case MBR_STAGE_ROUTING: return "routing";
        case MBR_STAGE_INGRESS_POLICY: return "ingress-policy";
        case MBR_STAGE_DELIVERY: return "delivery";
        default:
            return (stage >= MBR_STAGE_CUSTOM_FIRST && stage < MBR_STAGE_MAX ? "custom-" : "stage-") +
                   std::to_string(stage);
    }
}

// "from-endpoint", ...; "" for a number that is no direction (0: not known).
inline std::string direction_name(std::uint32_t direction) {
    switch (direction) {
        case MBR_DIR_FROM_NETDEV: return "from-netdev";
        case MBR_DIR_TO_NETDEV: return "to-netdev";
        case MBR_DIR_FROM_ENDPOINT: return "from-endpoint";
        case MBR_DIR_TO_ENDPOINT: return "to-endpoint";
        case MBR_DIR_FROM_OVERLAY: return "from-overlay";
        default: return "";
    }
}

// "new", "reply", ...; "state-<n>" for a number that is no state.
inline std::string ct_state_name(std::uint32_t state) {
    switch (state) {
        case MBR_CT_UNTRACKED: return "untracked";
        case MBR_CT_NEW: return "new";
        case MBR_CT_ESTABLISHED: return "established";
        case MBR_CT_REPLY: return "reply";
        case MBR_CT_RELATED: return "related";
        default: return "state-" + std::to_string(state);
    }
}

// "drop", "verdict", "trace"; "type-<n>" for a number that is no type.
inline std::string event_type_name(std::uint32_t type) {
    switch (type) {
        case MBR_EVENT_DROP: return "drop";
        case MBR_EVENT_VERDICT: return "verdict";
        case MBR_EVENT_TRACE: return "trace";
        default: return "type-" + std::to_string(type);
    }
}

}  // namespace membrane
