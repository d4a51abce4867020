// membranectl policy trace's comparison of the datapath's run with the
// control plane's answer, case by case, and its option parsing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>

#include "policy_trace.hpp"

namespace membrane::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using nlohmann::json;

json step(const std::string& stage, const std::string& action, const std::string& counted = "",
          const std::string& event = "", unsigned rule = 0) {
    return {{"stage_name", stage}, {"program", stage + "_prog"}, {"action", action}, {"counted", counted},
            {"event_type", event},  {"rule_id", rule},            {"empty_slot", false}};
}

// A trace from a pod of this node to one of `destination_kind`.
json datapath(std::vector<json> steps, const std::string& destination_kind = "pod-of-this-node",
              const std::string& source_kind = "pod-of-this-node") {
    return {{"trace", {{"source_kind", source_kind}, {"destination_kind", destination_kind}}}, {"steps", steps}};
}

json side(bool enforced, const std::string& verdict, unsigned rule) {
    return {{"enforced", enforced}, {"verdict", verdict}, {"rule_id", rule}};
}

json control(json egress, json ingress) { return {{"egress", egress}, {"ingress", ingress}}; }

const json kEntry = step("entry", "handed-on", "entry_from_endpoint");
const json kOpen = side(false, "allowed", 0);

TEST(TraceDisagreements, AgreeingAllowAndDeny) {
    const auto allowed = datapath({kEntry, step("egress-policy", "handed-on"),
                                   step("ingress-policy", "handed-on", "", "verdict", 3),
                                   step("delivery", "redirected", "delivered_local")});
    EXPECT_THAT(trace_disagreements(allowed, control(kOpen, side(true, "allowed", 3))), IsEmpty());
    const auto denied = datapath({kEntry, step("egress-policy", "handed-on"),
                                  step("ingress-policy", "dropped", "drop_policy", "drop", 0)});
    EXPECT_THAT(trace_disagreements(denied, control(kOpen, side(true, "denied", 0))), IsEmpty());
}

TEST(TraceDisagreements, ADropThePoliciesDoNotAskFor) {
    const auto broken = datapath({kEntry, step("observe", "dropped", "drop_invalid")});
    EXPECT_THAT(trace_disagreements(broken, control(kOpen, side(true, "allowed", 3))),
                ElementsAre(HasSubstr("lets the packet through here, but the datapath drops it at observe")));
}

TEST(TraceDisagreements, ADenialTheDatapathDoesNotMake) {
    const auto through = datapath({kEntry, step("egress-policy", "handed-on"), step("ingress-policy", "handed-on"),
                                   step("delivery", "redirected", "delivered_local")});
    EXPECT_THAT(trace_disagreements(through, control(kOpen, side(true, "denied", 0))),
                ElementsAre(HasSubstr("denies at ingress")));
    const auto other_rule = datapath({kEntry, step("ingress-policy", "dropped", "drop_policy", "drop", 4)});
    EXPECT_THAT(trace_disagreements(other_rule, control(kOpen, side(true, "denied", 2))),
                ElementsAre(HasSubstr("by rule 4 in the datapath and rule 2")));
}

// An allowed egress with another rule is seen even when ingress then denies.
TEST(TraceDisagreements, TheAllowingRuleOfEachSide) {
    const auto trace = datapath({kEntry, step("egress-policy", "handed-on", "", "verdict", 4),
                                 step("ingress-policy", "dropped", "drop_policy", "drop", 0)});
    EXPECT_THAT(trace_disagreements(trace, control(side(true, "allowed", 3), side(true, "denied", 0))),
                ElementsAre(HasSubstr("allows egress by rule 3, the datapath by rule 4")));
    const auto unreported = datapath({kEntry, step("egress-policy", "handed-on"), step("delivery", "redirected")});
    EXPECT_THAT(trace_disagreements(unreported, control(side(true, "allowed", 3), nullptr)),
                ElementsAre(HasSubstr("without a rule")));
    const auto unasked = datapath({kEntry, step("egress-policy", "handed-on", "", "verdict", 5), step("delivery", "redirected")});
    EXPECT_THAT(trace_disagreements(unasked, control(kOpen, nullptr)),
                ElementsAre(HasSubstr("enforces no egress policy here, but the datapath allowed by rule 5")));
    const auto skipped = datapath({kEntry, step("delivery", "redirected", "delivered_local")});
    EXPECT_THAT(trace_disagreements(skipped, control(kOpen, side(true, "allowed", 3))),
                ElementsAre(HasSubstr("no program ran in stage ingress-policy")));
}

// What another node judges is not compared here.
TEST(TraceDisagreements, OnlyTheSidesThisNodeJudges) {
    const auto leaves = datapath({kEntry, step("egress-policy", "handed-on"), step("routing", "redirected", "to_overlay")},
                                 "pod-of-another-node");
    EXPECT_THAT(trace_disagreements(leaves, control(kOpen, side(true, "denied", 0))), IsEmpty());
    const auto arrives = datapath({step("entry", "handed-on", "entry_from_overlay"),
                                   step("ingress-policy", "dropped", "drop_policy", "drop", 0)},
                                  "pod-of-this-node", "pod-of-another-node");
    EXPECT_THAT(trace_disagreements(arrives, control(side(true, "denied", 0), side(true, "denied", 0))), IsEmpty());
}

TEST(TraceDisagreements, WithoutPolicyL3l4OnlyAnEmptyFailClosedPolicySlotMayDrop) {
    auto missing = step("ingress-policy", "dropped", "drop_stage_missing");
    missing["empty_slot"] = true;
    EXPECT_THAT(trace_disagreements(datapath({kEntry, missing}), nullptr), IsEmpty());
    EXPECT_THAT(trace_disagreements(datapath({kEntry, step("observe", "dropped", "drop_invalid")}), nullptr),
                ElementsAre(HasSubstr("no policy module judges the packet")));
}

TEST(TraceOptions, PortsAndPrefixes) {
    EXPECT_EQ(parse_trace_port("80/tcp").port, 80);
    EXPECT_EQ(parse_trace_port("53/udp").number, 17);
    EXPECT_EQ(parse_trace_port("8080").protocol, "tcp");
    EXPECT_EQ(parse_trace_port("icmp").number, 1);
    for (const char* bad : {"", "0/tcp", "70000/tcp", "80/sctp", "http", "80/", "-1"}) {
        EXPECT_THROW(parse_trace_port(bad), std::invalid_argument) << bad;
    }
    EXPECT_EQ(cidr_trace_address("10.0.0.0/8"), "10.0.0.1");
    EXPECT_EQ(cidr_trace_address("203.0.113.7/32"), "203.0.113.7");
    EXPECT_EQ(cidr_trace_address("203.0.113.7"), "203.0.113.7");
    for (const char* bad : {"10.0.0/8", "10.0.0.0/33", "10.0.0.0/x"}) {
        EXPECT_THROW(cidr_trace_address(bad), std::invalid_argument) << bad;
    }
}

}  // namespace
}  // namespace membrane::cli
