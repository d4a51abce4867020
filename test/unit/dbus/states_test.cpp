// The names of the states are published (D-Bus, membranectl, the
// ModuleStateChanged event, EndpointInfo::state): they must never change.
#include <gtest/gtest.h>

#include "agent/states.hpp"
#include "membrane/model.hpp"

namespace membrane::kernel::test {
namespace {

TEST(States, AgentStateNames) {
    EXPECT_EQ(agent_state_name(AgentState::starting), "starting");
    EXPECT_EQ(agent_state_name(AgentState::running), "running");
    EXPECT_EQ(agent_state_name(AgentState::stopping), "stopping");
}

TEST(States, ModuleStateNames) {
    EXPECT_EQ(module_state_name(ModuleState::loading), "loading");
    EXPECT_EQ(module_state_name(ModuleState::running), "running");
    EXPECT_EQ(module_state_name(ModuleState::stopped), "stopped");
    EXPECT_EQ(module_state_name(ModuleState::failed), "failed");
    EXPECT_EQ(module_state_name(ModuleState::unloaded), "unloaded");
}

TEST(States, EndpointStateNamesAndTheirParse) {
    EXPECT_EQ(endpoint_state_name(EndpointState::ready), "ready");
    EXPECT_EQ(endpoint_state_name(EndpointState::disconnected), "disconnected");
    EXPECT_EQ(parse_endpoint_state("ready"), EndpointState::ready);
    EXPECT_EQ(parse_endpoint_state("disconnected"), EndpointState::disconnected);
    EXPECT_EQ(parse_endpoint_state("Ready"), std::nullopt) << "names are exact";
    EXPECT_EQ(parse_endpoint_state("draining"), std::nullopt) << "a name this SDK does not know";
    EXPECT_EQ(parse_endpoint_state(""), std::nullopt);
}

}  // namespace
}  // namespace membrane::kernel::test
