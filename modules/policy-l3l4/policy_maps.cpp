#include "policy_maps.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cstdio>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include <membrane/bpf.hpp>

namespace policy_l3l4 {
namespace {

policy_rule_key to_bpf(const RuleKey& key) {
    policy_rule_key out{};
    out.endpoint_id = key.endpoint;
    out.identity = key.identity;
    out.port = key.port;
    out.protocol = key.protocol;
    out.direction = key.direction;
    return out;
}

RuleKey from_bpf(const policy_rule_key& key) {
    return {key.endpoint_id, key.direction, key.identity, key.protocol, key.port};
}

[[noreturn]] void fail(const std::string& what) {
    throw membrane::BpfError(what + ": " + std::strerror(errno));
}

template <class Key>
std::vector<Key> all_keys(int fd) {
    std::vector<Key> keys;
    Key key{};
    Key next{};
    const void* previous = nullptr;
    while (bpf_map_get_next_key(fd, previous, &next) == 0) {
        keys.push_back(next);
        key = next;
        previous = &key;
    }
    return keys;
}

policy_cidr_key cidr_key(const std::string& prefix) {
    unsigned a = 0, b = 0, c = 0, d = 0, length = 0;
    std::sscanf(prefix.c_str(), "%u.%u.%u.%u/%u", &a, &b, &c, &d, &length);
    policy_cidr_key key{};
    key.prefixlen = length;
    key.ip4 = htonl(a << 24 | b << 16 | c << 8 | d);
    return key;
}

std::string cidr_text(const policy_cidr_key& key) {
    const std::uint32_t address = ntohl(key.ip4);
    return std::to_string(address >> 24) + "." + std::to_string((address >> 16) & 0xff) + "." +
           std::to_string((address >> 8) & 0xff) + "." + std::to_string(address & 0xff) + "/" + std::to_string(key.prefixlen);
}

}  // namespace

PolicyMaps::PolicyMaps(int endpoints_fd, int rules_fd, int cidrs_fd)
    : endpoints_fd_(endpoints_fd), rules_fd_(rules_fd), cidrs_fd_(cidrs_fd) {
    for (const auto& key : all_keys<policy_cidr_key>(cidrs_fd_)) {
        policy_cidr_value value{};
        if (bpf_map_lookup_elem(cidrs_fd_, &key, &value) == 0) cidrs_[cidr_text(key)] = {value.world_identity, value.any_identity};
    }
    for (const auto& key : all_keys<policy_rule_key>(rules_fd_)) {
        policy_rule_value value{};
        if (bpf_map_lookup_elem(rules_fd_, &key, &value) == 0) rules_[from_bpf(key)] = {value.deny != 0, value.rule_id};
    }
    for (const auto& key : all_keys<policy_endpoint_key>(endpoints_fd_)) {
        policy_endpoint_value value{};
        if (bpf_map_lookup_elem(endpoints_fd_, &key, &value) == 0)
            endpoints_[key.endpoint_id] = {value.ingress_enforced != 0, value.egress_enforced != 0};
    }
}

PolicyMaps::Written PolicyMaps::apply(const Compiled& wanted) {
    if (wanted.rules.size() > POLICY_RULES_MAX) {
        throw membrane::BpfError("the policies need " + std::to_string(wanted.rules.size()) +
                                 " datapath rules, more than the map's " + std::to_string(POLICY_RULES_MAX) +
                                 " (port ranges count one rule per port and peer identity)");
    }
    if (wanted.cidrs.size() > POLICY_CIDRS_MAX) {
        throw membrane::BpfError("the policies name " + std::to_string(wanted.cidrs.size()) + " CIDR prefixes, more than the map's " +
                                 std::to_string(POLICY_CIDRS_MAX));
    }
    Written written;
    // Denies first, then allows from the most specific: a write that fails
    // half-way leaves no allow in place without the denies that cut it.
    std::vector<std::pair<RuleKey, RuleVerdict>> changed;
    for (const auto& [key, verdict] : wanted.rules) {
        if (const auto it = rules_.find(key); it == rules_.end() || !(it->second == verdict)) changed.emplace_back(key, verdict);
    }
    const auto rank = [](const std::pair<RuleKey, RuleVerdict>& entry) {
        const auto& key = entry.first;
        return std::tuple{entry.second.deny ? 0 : 1, -(int{key.identity != 0} + int{key.protocol != 0} + int{key.port != 0})};
    };
    std::stable_sort(changed.begin(), changed.end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
    for (const auto& [key, verdict] : changed) {
        const policy_rule_key bpf_key = to_bpf(key);
        const policy_rule_value value{static_cast<__u8>(verdict.deny ? 1 : 0), {}, verdict.rule_id};
        if (bpf_map_update_elem(rules_fd_, &bpf_key, &value, BPF_ANY) != 0) fail("cannot write a policy rule");
        rules_[key] = verdict;
        ++written.rules_written;
    }
    // A prefix's identities after their rules, before the endpoints need them.
    for (const auto& [prefix, ids] : wanted.cidrs) {
        if (const auto it = cidrs_.find(prefix); it != cidrs_.end() && it->second == ids) continue;
        const policy_cidr_key key = cidr_key(prefix);
        const policy_cidr_value value{ids.world, ids.any};
        if (bpf_map_update_elem(cidrs_fd_, &key, &value, BPF_ANY) != 0) fail("cannot write the CIDR " + prefix);
        cidrs_[prefix] = ids;
    }
    // Enforcement on (or changed) once its rules are in; off before they go.
    for (const auto& [id, enforcement] : wanted.endpoints) {
        if (const auto it = endpoints_.find(id); it != endpoints_.end() && it->second == enforcement) continue;
        const policy_endpoint_key key{id};
        const policy_endpoint_value value{static_cast<__u8>(enforcement.ingress), static_cast<__u8>(enforcement.egress), 0, 0};
        if (bpf_map_update_elem(endpoints_fd_, &key, &value, BPF_ANY) != 0) fail("cannot write a policy endpoint");
        endpoints_[id] = enforcement;
        ++written.endpoints_changed;
    }
    for (auto it = endpoints_.begin(); it != endpoints_.end();) {
        if (wanted.endpoints.contains(it->first)) {
            ++it;
            continue;
        }
        const policy_endpoint_key key{it->first};
        if (bpf_map_delete_elem(endpoints_fd_, &key) != 0 && errno != ENOENT) fail("cannot delete a policy endpoint");
        it = endpoints_.erase(it);
        ++written.endpoints_changed;
    }
    for (auto it = cidrs_.begin(); it != cidrs_.end();) {
        if (wanted.cidrs.contains(it->first)) {
            ++it;
            continue;
        }
        const policy_cidr_key key = cidr_key(it->first);
        if (bpf_map_delete_elem(cidrs_fd_, &key) != 0 && errno != ENOENT) fail("cannot delete the CIDR " + it->first);
        it = cidrs_.erase(it);
    }
    for (auto it = rules_.begin(); it != rules_.end();) {
        if (wanted.rules.contains(it->first)) {
            ++it;
            continue;
        }
        const policy_rule_key key = to_bpf(it->first);
        if (bpf_map_delete_elem(rules_fd_, &key) != 0 && errno != ENOENT) fail("cannot delete a policy rule");
        it = rules_.erase(it);
        ++written.rules_deleted;
    }
    return written;
}

std::map<std::string, std::uint32_t> PolicyMaps::cidr_numbers() const {
    std::map<std::string, std::uint32_t> out;
    for (const auto& [prefix, ids] : cidrs_) out[prefix] = cidr_number(ids.world);
    return out;
}

void PolicyMaps::fail_closed(const std::vector<std::uint32_t>& endpoints) {
    for (const auto id : endpoints) {
        const policy_endpoint_key key{id};
        const policy_endpoint_value value{1, 1, 0, 0};
        if (bpf_map_update_elem(endpoints_fd_, &key, &value, BPF_ANY) == 0) endpoints_[id] = {true, true};
    }
}

}  // namespace policy_l3l4
