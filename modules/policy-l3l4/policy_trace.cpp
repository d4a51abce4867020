#include "policy_trace.hpp"

#include <algorithm>
#include <arpa/inet.h>

namespace policy_l3l4 {
namespace {

struct MatchedPrefix {
    std::uint32_t address = 0;
    int length = -1;
    CidrIdentities identities;
};

// The CIDR map's longest prefix holding `address` (policy_l3l4_cidrs_v1 is an LPM trie).
std::optional<MatchedPrefix> longest_prefix(const Compiled& compiled, std::uint32_t address) {
    std::optional<MatchedPrefix> best;
    for (const auto& [text, identities] : compiled.cidrs) {
        const auto slash = text.find('/');
        in_addr parsed{};
        if (slash == std::string::npos || inet_pton(AF_INET, text.substr(0, slash).c_str(), &parsed) != 1) continue;
        const int length = std::stoi(text.substr(slash + 1));
        const std::uint32_t mask = length == 0 ? 0 : ~std::uint32_t{0} << (32 - length);
        if ((ntohl(parsed.s_addr) & mask) != (address & mask)) continue;
        if (!best || length > best->length) best = MatchedPrefix{ntohl(parsed.s_addr), length, identities};
    }
    return best;
}

// bpf/policy_l3l4.bpf.c decide(): the most specific entry first.
std::optional<RuleVerdict> lookup_rule(const Compiled& compiled, std::uint32_t endpoint, std::uint8_t direction,
                                  std::uint32_t identity, std::uint8_t protocol, std::uint16_t port) {
    const auto at = [&](std::uint32_t id, std::uint8_t proto, std::uint16_t number) -> std::optional<RuleVerdict> {
        const auto found = compiled.rules.find(RuleKey{endpoint, direction, id, proto, number});
        if (found == compiled.rules.end()) return std::nullopt;
        return found->second;
    };
    std::optional<RuleVerdict> found;
    if (identity != 0) {
        if (port != 0 && (found = at(identity, protocol, port))) return found;
        if ((found = at(identity, protocol, 0))) return found;
        if ((found = at(identity, 0, 0))) return found;
    }
    if (port != 0 && (found = at(0, protocol, port))) return found;
    if ((found = at(0, protocol, 0))) return found;
    return at(0, 0, 0);
}

// bpf/policy_l3l4.bpf.c judge() for the first packet of a new connection.
SideVerdict judge_side(const Compiled& compiled, std::uint64_t endpoint_id, std::uint8_t direction,
                  const TraceSubject& remote, std::uint8_t protocol, std::uint16_t port) {
    SideVerdict out;
    if (endpoint_id > 0xffffffffu) return SideVerdict{.enforced = true, .allowed = false};
    const auto endpoint = static_cast<std::uint32_t>(endpoint_id);
    const auto enforcement = compiled.endpoints.find(endpoint);
    out.enforced = enforcement != compiled.endpoints.end() &&
                   (direction == POLICY_INGRESS ? enforcement->second.ingress : enforcement->second.egress);
    if (!out.enforced) return out;
    std::uint32_t identity = remote.identity == MBR_IDENTITY_UNKNOWN ? std::uint32_t{MBR_IDENTITY_WORLD} : remote.identity;
    const auto cidr = longest_prefix(compiled, remote.address);
    if (identity == MBR_IDENTITY_WORLD && cidr) identity = cidr->identities.world;
    const bool uses_ports = protocol == 6 || protocol == 17 || protocol == 132;
    const std::uint16_t number = uses_ports ? port : 0;
    auto rule = lookup_rule(compiled, endpoint, direction, identity, protocol, number);
    if (!rule && identity != MBR_IDENTITY_WORLD && identity < POLICY_CIDR_IDENTITY_BASE && cidr && cidr->identities.any)
        rule = lookup_rule(compiled, endpoint, direction, cidr->identities.any, protocol, number);
    out.allowed = rule && !rule->deny;
    out.rule_id = rule ? rule->rule_id : 0;
    if (out.rule_id > 0 && out.rule_id <= compiled.origins.size()) out.origin = compiled.origins[out.rule_id - 1];
    return out;
}

// The pod's endpoint id in `inputs`: its own for a pod of this node; for
// another node's, an id no endpoint of this node has, with its ports.
std::uint64_t place_pod(Inputs& inputs, const membrane::EndpointInfo& pod, const std::vector<membrane::ContainerPort>& ports) {
    for (const auto& endpoint : inputs.endpoints)
        if (endpoint.ipv4 == pod.ipv4) return endpoint.id;
    std::uint64_t id = 1;
    for (const auto& endpoint : inputs.endpoints) id = std::max(id, endpoint.id + 1);
    membrane::EndpointInfo placed = pod;
    placed.id = id;
    inputs.endpoints.push_back(placed);
    if (!ports.empty()) inputs.endpoint_ports[id] = ports;
    return id;
}

}  // namespace

PolicyTrace trace_policy(Inputs inputs, const TraceSubject& source, const TraceSubject& destination,
                         std::uint8_t protocol, std::uint16_t port) {
    const std::optional<std::uint64_t> source_id =
        source.pod ? std::optional(place_pod(inputs, *source.pod, source.ports)) : std::nullopt;
    const std::optional<std::uint64_t> destination_id =
        destination.pod ? std::optional(place_pod(inputs, *destination.pod, destination.ports)) : std::nullopt;
    const Compiled compiled = compile(inputs);
    PolicyTrace out;
    if (source_id) out.egress = judge_side(compiled, *source_id, POLICY_EGRESS, destination, protocol, port);
    if (destination_id) out.ingress = judge_side(compiled, *destination_id, POLICY_INGRESS, source, protocol, port);
    return out;
}

}  // namespace policy_l3l4
