// SDK 1.1 on the host side: a module generation's declared encapsulation
// (recorded, bounded, forgotten when it stops) and the Model modules read.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "bpf/sandbox.hpp"
#include "host/agent_model.hpp"
#include "host/module_context.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::IsEmpty;

class ModuleContextTest : public ::testing::Test {
protected:
    std::unique_ptr<ModuleContext> make_context(const std::string& module) {
        return std::make_unique<ModuleContext>(module, bus, registry.for_module(module, ++generation), model,
                                               toml::table{}, log.logger, sandbox.state_dir() / module);
    }

    BpffsSandbox sandbox;
    CapturedLog log;
    Registry registry{sandbox.bpffs(), sandbox.pin_dir(), sandbox.state_dir(), log.logger};
    boost::asio::io_context io;
    EventBus bus{io};
    AgentModel model{"node-a", "/sys/fs/bpf/membrane/node-a"};
    std::uint64_t generation = 0;
};

TEST_F(ModuleContextTest, EncapsulationIsRecordedAndForgottenWhenTheModuleStops) {
    auto context = make_context("routing-vxlan");
    EXPECT_EQ(context->encapsulation_overhead(), 0u);
    context->declare_encapsulation(50);
    EXPECT_EQ(context->encapsulation_overhead(), 50u);
    context->declare_encapsulation(54);  // the last word counts
    EXPECT_EQ(context->encapsulation_overhead(), 54u);
    context->close(false);
    EXPECT_EQ(context->encapsulation_overhead(), 0u);
    EXPECT_THROW(context->declare_encapsulation(50), std::logic_error);
}

TEST_F(ModuleContextTest, AnImplausibleOverheadIsRefused) {
    auto context = make_context("routing-vxlan");
    EXPECT_THROW(context->declare_encapsulation(4000), std::invalid_argument);
    EXPECT_EQ(context->encapsulation_overhead(), 0u);
}

TEST(AgentModel, ReadsTheModelThroughItsSources) {
    AgentModel model("node-a", "/pins");
    EXPECT_THAT(model.nodes(), IsEmpty());
    EXPECT_THAT(model.endpoints(), IsEmpty());
    EXPECT_FALSE(model.endpoint(1));
    EXPECT_THAT(model.objects(""), IsEmpty());

    EndpointInfo web;
    web.id = 7;
    web.ipv4 = "10.10.1.2";
    model.set_sources(ModelSources{
        .nodes = [] { return std::vector<NodeInfo>{{"node-a", "192.168.50.1", "10.10.1.0/24", true}}; },
        .endpoints = [web] { return std::vector<EndpointInfo>{web}; },
        .identities = [] { return std::vector<IdentityInfo>{{256, {{"app", "web"}}, false, 1}}; },
        .objects = [](const std::string& kind) {
            std::vector<ObjectInfo> all{{"Namespace", "", "shop", R"({"kind":"Namespace"})"}};
            return kind.empty() || kind == "Namespace" ? all : std::vector<ObjectInfo>{};
        },
    });
    EXPECT_EQ(model.objects("Namespace").at(0).name, "shop");
    EXPECT_THAT(model.objects("NetworkPolicy"), IsEmpty());
    ASSERT_EQ(model.nodes().size(), 1u);
    EXPECT_TRUE(model.nodes()[0].local);
    EXPECT_EQ(model.endpoint(7), web);
    EXPECT_FALSE(model.endpoint(8));
    EXPECT_EQ(model.identities().at(0).id, 256u);
    EXPECT_EQ(model.node_name(), "node-a");
}

}  // namespace
}  // namespace membrane::kernel::test
