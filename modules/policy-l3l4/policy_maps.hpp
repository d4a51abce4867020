// policy-l3l4's two pinned maps (bpf/policy_maps.h) as the C++ half writes
// them: it remembers what the maps hold (read back at start, so a restart
// or reload diffs against the truth) and writes only the difference.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "policy_compiler.hpp"

namespace policy_l3l4 {

class PolicyMaps {
public:
    PolicyMaps(int endpoints_fd, int rules_fd, int cidrs_fd);

    struct Written {
        std::size_t rules_written = 0;
        std::size_t rules_deleted = 0;
        std::size_t endpoints_changed = 0;
    };
    // Makes the maps hold `wanted`. Order matters while packets flow: denies
    // before allows, new rules before an endpoint becomes enforced, an
    // endpoint unenforced before its rules go. Throws membrane::BpfError when
    // `wanted` does not fit or a write fails; what was written stays known,
    // so the next apply finishes the job.
    Written apply(const Compiled& wanted);

    // After a failed apply: these endpoints enforced both ways, whatever
    // their rules, so a half-written policy denies more, never allows more.
    void fail_closed(const std::vector<std::uint32_t>& endpoints);

    std::size_t rule_count() const { return rules_.size(); }
    // The prefixes' numbers the maps hold: a restarted module keeps them.
    std::map<std::string, std::uint32_t> cidr_numbers() const;

private:
    int endpoints_fd_;
    int rules_fd_;
    int cidrs_fd_;
    std::map<std::string, CidrIdentities> cidrs_;
    std::map<RuleKey, RuleVerdict> rules_;
    std::map<std::uint32_t, EndpointEnforcement> endpoints_;
};

}  // namespace policy_l3l4
