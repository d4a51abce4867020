// The registry's own set-up: the bpf filesystem, the core object's pins, and
// re-adopting them after a restart.
#include <fstream>

#include "registry_fixture.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;

TEST(RegistryMount, MountsABpffsOnAnEmptyFolderAndSaysSo) {
    BpffsSandbox sandbox(/*mount=*/false);
    CapturedLog log;
    ASSERT_FALSE(is_bpffs(sandbox.bpffs()));

    Registry registry(sandbox.bpffs(), sandbox.pin_dir(), sandbox.state_dir(), log.logger);

    EXPECT_TRUE(is_bpffs(sandbox.bpffs()));
    EXPECT_TRUE(std::filesystem::is_directory(sandbox.pin_dir()));
    EXPECT_THAT(log.text(), HasSubstr("mounted a bpf filesystem on " + sandbox.bpffs().string()));
}

TEST(RegistryMount, RefusesToMountOverAFolderWithFiles) {
    BpffsSandbox sandbox(/*mount=*/false);
    CapturedLog log;
    std::ofstream(sandbox.bpffs() / "precious") << "data";

    try {
        Registry registry(sandbox.bpffs(), sandbox.pin_dir(), sandbox.state_dir(), log.logger);
        FAIL() << "expected a BpfError";
    } catch (const BpfError& error) {
        EXPECT_THAT(error.what(), HasSubstr("not a bpf filesystem and not an empty folder"));
    }
    EXPECT_TRUE(std::filesystem::exists(sandbox.bpffs() / "precious"));
}

TEST_F(RegistryTest, CoreLoadCreatesThePins) {
    auto registry = make_core_registry();

    EXPECT_TRUE(std::filesystem::exists(pin(MBR_MAP_PIPELINE)));
    EXPECT_TRUE(std::filesystem::exists(pin(MBR_MAP_STATS)));
    EXPECT_TRUE(std::filesystem::exists(pin(MBR_MAP_CT)));
    EXPECT_TRUE(std::filesystem::exists(pin(MBR_MAP_ENDPOINTS)));
    EXPECT_TRUE(std::filesystem::exists(pin(MBR_MAP_IPCACHE)));
    EXPECT_EQ(registry->pin_dir(), sandbox.pin_dir());
    EXPECT_THAT(log.text(),
                HasSubstr("pins reused [], created [mbr_ct_v1,mbr_endpoints_v1,mbr_event_budget_v1,"
                          "mbr_event_limit_v1,mbr_event_sampling_v1,mbr_events_lost_v1,mbr_events_v1,mbr_ipcache_v1,"
                          "mbr_overlay_v1,mbr_pipe_v1,mbr_policy_verdicts_v1,mbr_stage_verdicts_v1,mbr_stats_v1,mbr_trace_v1]"));
    // The kernel's delivery program is the only filled slot.
    const auto slots = registry->slots();
    ASSERT_EQ(slots.size(), 1u);
    EXPECT_EQ(slots[0].stage, static_cast<std::uint32_t>(MBR_STAGE_DELIVERY));
    EXPECT_EQ(slots[0].module, kKernelHolder);
    EXPECT_EQ(slots[0].program, "mbr_deliver_local");
    EXPECT_NE(slot_id(pin(MBR_MAP_PIPELINE), MBR_STAGE_DELIVERY), 0u);
}

TEST_F(RegistryTest, ASecondRegistryReadoptsThePinnedMaps) {
    std::uint32_t pipeline_id = 0;
    std::uint32_t stats_id = 0;
    {
        auto first = make_core_registry();
        pipeline_id = pinned_map_id(pin(MBR_MAP_PIPELINE));
        stats_id = pinned_map_id(pin(MBR_MAP_STATS));
    }
    auto second = make_core_registry();

    EXPECT_EQ(pinned_map_id(pin(MBR_MAP_PIPELINE)), pipeline_id);
    EXPECT_EQ(pinned_map_id(pin(MBR_MAP_STATS)), stats_id);
    EXPECT_THAT(log.text(),
                HasSubstr("pins reused [mbr_ct_v1,mbr_endpoints_v1,mbr_event_budget_v1,mbr_event_limit_v1,"
                          "mbr_event_sampling_v1,mbr_events_lost_v1,mbr_events_v1,mbr_ipcache_v1,mbr_overlay_v1,mbr_pipe_v1,"
                          "mbr_policy_verdicts_v1,mbr_stage_verdicts_v1,mbr_stats_v1,mbr_trace_v1], created []"));
}

TEST_F(RegistryTest, OpeningTheCoreTwiceIsRefused) {
    auto registry = make_core_registry();
    EXPECT_THROW(registry->open_core(membrane_core_bpf()), BpfError);
}

TEST_F(RegistryTest, AGarbageCoreObjectIsRefusedReadably) {
    auto registry = make_registry();
    const std::array<std::byte, 4> garbage{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
    try {
        registry->open_core(garbage);
        FAIL() << "expected a BpfError";
    } catch (const BpfError& error) {
        EXPECT_THAT(error.what(), HasSubstr("cannot open BPF object membrane_core"));
    }
}

TEST_F(RegistryTest, SlotsLeftFilledAtShutdownAreKnownAfterARestart) {
    std::uint32_t program_id = 0;
    {
        auto registry = make_core_registry();
        auto module = registry->for_module("counter", 1);
        auto& object = module->load(counter_spec());
        module->attach_stage(kCountStage, object, "count_packets");
        program_id = program_id_of(object.program_fd("count_packets"));
        module->close(/*keep_slots=*/true);
    }
    auto restarted = make_core_registry();

    const auto slots = module_slots(*restarted);
    ASSERT_EQ(slots.size(), 1u);
    EXPECT_EQ(slots[0], (SlotInfo{kCountStage, "counter", 1, "count_packets", program_id}));
    EXPECT_EQ(slot_id(pin(MBR_MAP_PIPELINE), kCountStage), program_id);
}

}  // namespace
}  // namespace membrane::kernel::test
