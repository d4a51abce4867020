// Real packets between two network namespaces: the entry program on tc
// ingress, the pipeline with and without a stage, and a clean uninstall.
#include "registry_fixture.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

class TrafficTest : public RegistryTest {
protected:
    std::uint64_t entries() const { return sum_percpu_u64(pin(MBR_MAP_STATS), MBR_STAT_ENTRY_FROM_NETDEV); }
    std::uint64_t fell_through() const { return sum_percpu_u64(pin(MBR_MAP_STATS), MBR_STAT_PIPELINE_DONE); }
    std::uint64_t stage_missing() const {
        return sum_percpu_u64(pin(MBR_MAP_STATS), MBR_STAT_DROP_STAGE_MISSING);
    }
    std::uint64_t counted() const { return read_u64(pin("mbr_test_count_v1"), 0); }
    std::string ingress_filters() const {
        std::string output;
        run("ip netns exec " + lab.a() + " tc filter show dev veth0 ingress", &output);
        return output;
    }

    NetnsPair lab;
    std::unique_ptr<Registry> registry = make_core_registry();
};

TEST_F(TrafficTest, PacketsPassTheEmptyPipelineAndTheCountingStage) {
    {
        EnterNetns inside(lab.a());
        registry->attach_device("veth0");
    }
    EXPECT_EQ(registry->attached_devices(), std::vector<std::string>{"veth0"});
    EXPECT_THAT(ingress_filters(), HasSubstr("mbr_from_netdev"));

    // Empty pipeline: every packet falls through to the stack.
    std::string ping;
    const auto entries_before = entries();
    EXPECT_TRUE(lab.ping_a_from_b(5, &ping)) << ping;
    EXPECT_GE(entries() - entries_before, 5u);
    EXPECT_GE(fell_through(), 5u);

    // A counting stage in a slot sees the packets and hands them on.
    auto module = registry->for_module("counter", 1);
    auto& object = module->load(counter_spec({"mbr_test_count_v1"}));
    module->attach_stage(kCountStage, object, "count_packets");
    const auto counted_before = read_u64(pin("mbr_test_count_v1"), 0);
    const auto fell_through_before = fell_through();
    EXPECT_TRUE(lab.ping_a_from_b(5, &ping)) << ping;
    EXPECT_GE(read_u64(pin("mbr_test_count_v1"), 0) - counted_before, 5u);
    EXPECT_GE(fell_through() - fell_through_before, 5u) << "the stage's next-stage hand-over reaches the end";

    // Unload: the slot falls through and traffic still flows.
    module->close(false);
    const auto counted_after_unload = read_u64(pin("mbr_test_count_v1"), 0);
    EXPECT_TRUE(lab.ping_a_from_b(3, &ping)) << ping;
    EXPECT_EQ(read_u64(pin("mbr_test_count_v1"), 0), counted_after_unload);

    {
        EnterNetns inside(lab.a());
        registry->uninstall();
    }
    EXPECT_THAT(ingress_filters(), Not(HasSubstr("mbr_from_netdev")));
    EXPECT_THAT(ingress_filters(), IsEmpty());
    EXPECT_FALSE(std::filesystem::exists(sandbox.pin_dir()));
    EXPECT_FALSE(std::filesystem::exists(sandbox.pin_dir().parent_path()));
    EXPECT_TRUE(registry->attached_devices().empty());
    EXPECT_TRUE(lab.ping_a_from_b(2, &ping)) << ping;
}

TEST_F(TrafficTest, ARestartedAgentReplacesItsFilterInsteadOfAddingOne) {
    {
        EnterNetns inside(lab.a());
        registry->attach_device("veth0");
        registry.reset();  // agent stops: the filter stays
    }
    EXPECT_THAT(ingress_filters(), HasSubstr("mbr_from_netdev"));
    std::string ping;
    const auto entries_while_down = entries();
    EXPECT_TRUE(lab.ping_a_from_b(3, &ping)) << ping;
    EXPECT_GE(entries() - entries_while_down, 3u) << "the datapath runs while the agent is down";

    registry = make_core_registry();
    {
        EnterNetns inside(lab.a());
        registry->attach_device("veth0");
    }
    const auto filters = ingress_filters();
    const auto first = filters.find("handle 0x4d42");
    ASSERT_NE(first, std::string::npos) << filters;
    EXPECT_EQ(filters.find("handle 0x4d42", first + 1), std::string::npos) << filters;
    EXPECT_THAT(log.text(), HasSubstr("replacing our earlier filter"));
    EXPECT_TRUE(lab.ping_a_from_b(3, &ping)) << ping;

    {
        EnterNetns inside(lab.a());
        registry->uninstall();
    }
    EXPECT_THAT(ingress_filters(), IsEmpty());
}

// The empty-slot verdict: a stage declared fail-closed drops (and counts)
// whenever its slot is empty, after the module is gone, while the agent is
// down and after a restart, until a module fills the slot again.
TEST_F(TrafficTest, AFailClosedStageDropsWhileItsSlotIsEmpty) {
    {
        EnterNetns inside(lab.a());
        registry->attach_device("veth0");
    }
    std::string ping;
    auto guard = registry->for_module("guard", 1);
    guard->attach_stage(kCountStage, guard->load(counter_spec({"mbr_test_count_v1"})), "count_packets",
                        EmptySlot::drop);
    EXPECT_EQ(registry->fail_closed_stages(), std::vector<std::uint32_t>{kCountStage});
    const auto counted_before = counted();
    EXPECT_TRUE(lab.ping_a_from_b(3, &ping)) << ping;
    EXPECT_GE(counted() - counted_before, 3u) << "filled, the stage runs and hands on";

    // The next generation takes the slot over and the old one closes: the
    // slot is never empty, nothing is dropped.
    auto guard2 = registry->for_module("guard", 2);
    guard2->attach_stage(kCountStage, guard2->load(counter_spec({"mbr_test_count_v1"})), "count_packets",
                         EmptySlot::drop);
    guard->close(false);
    const auto missing_at_reload = stage_missing();
    EXPECT_TRUE(lab.ping_a_from_b(3, &ping)) << ping;
    EXPECT_EQ(stage_missing(), missing_at_reload);

    // Gone (unload, quarantine): every packet that must pass the stage drops.
    guard2->close(false);
    const auto missing_before = stage_missing();
    EXPECT_FALSE(lab.ping_a_from_b(3, &ping)) << ping;
    EXPECT_GE(stage_missing() - missing_before, 3u);

    // The verdict is pinned: it holds while the agent is down and after a restart.
    registry.reset();
    const auto missing_while_down = stage_missing();
    EXPECT_FALSE(lab.ping_a_from_b(2, &ping)) << ping;
    EXPECT_GE(stage_missing() - missing_while_down, 2u);
    registry = make_core_registry();
    EXPECT_EQ(registry->fail_closed_stages(), std::vector<std::uint32_t>{kCountStage});
    EXPECT_FALSE(lab.ping_a_from_b(2, &ping)) << ping;
    EXPECT_THAT(log.text(), HasSubstr("fail-closed and empty"));

    // Filled again, traffic flows; filled without a verdict, the stage is
    // pass-through (the holder decides), so emptying it no longer drops.
    auto other = registry->for_module("other", 1);
    other->attach_stage(kCountStage, other->load(counter_spec()), "count_packets");
    EXPECT_TRUE(registry->fail_closed_stages().empty());
    EXPECT_TRUE(lab.ping_a_from_b(3, &ping)) << ping;
    other->close(false);
    const auto missing_after = stage_missing();
    EXPECT_TRUE(lab.ping_a_from_b(3, &ping)) << ping;
    EXPECT_EQ(stage_missing(), missing_after);
}

TEST_F(TrafficTest, AnUnknownDeviceIsRefusedByName) {
    EnterNetns inside(lab.a());
    try {
        registry->attach_device("nosuchdev0");
        FAIL() << "expected a BpfError";
    } catch (const BpfError& error) {
        EXPECT_THAT(error.what(), HasSubstr("nosuchdev0"));
    }
    EXPECT_TRUE(registry->attached_devices().empty());
}

TEST_F(TrafficTest, UninstallIgnoresDevicesThatAreGone) {
    {
        EnterNetns inside(lab.a());
        registry->attach_device("veth0");
    }
    run("ip -n " + lab.a() + " link del veth0");
    EnterNetns inside(lab.a());
    EXPECT_NO_THROW(registry->uninstall());
    EXPECT_FALSE(std::filesystem::exists(sandbox.pin_dir()));
}

}  // namespace
}  // namespace membrane::kernel::test
