// Who owns which pin: forgetting a module removes exactly the pins it created
// and did not declare persistent; the record survives a restart.
#include <fstream>

#include <nlohmann/json.hpp>

#include "registry_fixture.hpp"
#include "state/state_file.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;

const char* const kCount = "mbr_test_count_v1";
const char* const kScratch = "mbr_test_scratch_v1";

TEST_F(RegistryTest, ForgetModuleUnpinsItsMapsButKeepsPersistentAndKernelOnes) {
    auto registry = make_core_registry();
    auto module = registry->for_module("counter", 1);
    module->load(counter_spec({kCount}));
    ASSERT_TRUE(std::filesystem::exists(pin(kCount)));
    ASSERT_TRUE(std::filesystem::exists(pin(kScratch)));
    module->close(false);

    registry->forget_module("counter");

    EXPECT_TRUE(std::filesystem::exists(pin(kCount)));
    EXPECT_FALSE(std::filesystem::exists(pin(kScratch)));
    EXPECT_TRUE(std::filesystem::exists(pin(MBR_MAP_PIPELINE)));
    EXPECT_TRUE(std::filesystem::exists(pin(MBR_MAP_STATS)));
    EXPECT_THAT(log.text(), HasSubstr("unpinned [mbr_test_scratch_v1], kept [mbr_test_count_v1]"));
}

TEST_F(RegistryTest, PinsThatExistedBeforeALoadAreNotTheLoadersOwn) {
    auto registry = make_core_registry();
    auto creator = registry->for_module("creator", 1);
    creator->load(counter_spec());
    auto reuser = registry->for_module("reuser", 1);
    reuser->load(counter_spec());
    creator->close(false);
    reuser->close(false);

    registry->forget_module("reuser");
    EXPECT_TRUE(std::filesystem::exists(pin(kCount)));
    EXPECT_TRUE(std::filesystem::exists(pin(kScratch)));

    registry->forget_module("creator");
    EXPECT_FALSE(std::filesystem::exists(pin(kCount)));
    EXPECT_FALSE(std::filesystem::exists(pin(kScratch)));
}

TEST_F(RegistryTest, OwnershipSurvivesARestart) {
    {
        auto registry = make_core_registry();
        auto module = registry->for_module("counter", 1);
        module->load(counter_spec({kCount}));
        module->close(false);
    }
    const auto record = nlohmann::json::parse(std::ifstream(sandbox.state_dir() / "bpf-ownership.json"));
    EXPECT_EQ(record["modules"]["counter"]["created"], nlohmann::json({kCount, kScratch}));
    EXPECT_EQ(record["modules"]["counter"]["persistent"], nlohmann::json({kCount}));

    auto restarted = make_core_registry();
    restarted->forget_module("counter");
    EXPECT_TRUE(std::filesystem::exists(pin(kCount)));
    EXPECT_FALSE(std::filesystem::exists(pin(kScratch)));
}

TEST_F(RegistryTest, APersistentMapKeepsItsContentAcrossAReload) {
    auto registry = make_core_registry();
    const std::uint32_t zero = 0;
    const std::uint64_t value = 4242;
    auto gen1 = registry->for_module("counter", 1);
    auto& object1 = gen1->load(counter_spec({kCount}));
    ASSERT_EQ(bpf_map_update_elem(object1.map_fd(kCount), &zero, &value, BPF_ANY), 0);
    const auto id = map_id(object1.map_fd(kCount));
    gen1->close(false);

    auto gen2 = registry->for_module("counter", 2);
    auto& object2 = gen2->load(counter_spec({kCount}));
    EXPECT_EQ(map_id(object2.map_fd(kCount)), id);
    EXPECT_EQ(read_u64(pin(kCount), 0), value);
    EXPECT_THAT(log.text(), HasSubstr("pins reused [mbr_ct_v1,mbr_event_budget_v1,mbr_event_limit_v1,"
                                      "mbr_event_sampling_v1,mbr_events_lost_v1,mbr_events_v1,mbr_pipe_v1,"
                                      "mbr_policy_verdicts_v1,mbr_stage_verdicts_v1,mbr_stats_v1,mbr_test_count_v1,"
                                      "mbr_test_scratch_v1,mbr_trace_v1]"));
}

TEST_F(RegistryTest, APersistentMapThatIsNotPinnedIsRefused) {
    auto registry = make_core_registry();
    auto module = registry->for_module("counter", 1);
    try {
        module->load(counter_spec({"mbr_no_such_map"}));
        FAIL() << "expected a BpfError";
    } catch (const BpfError& error) {
        EXPECT_THAT(error.what(), HasSubstr("lists mbr_no_such_map as persistent"));
    }
    EXPECT_FALSE(std::filesystem::exists(pin(kCount))) << "nothing was loaded";
}

TEST_F(RegistryTest, AProgramTheVerifierRefusesFailsWithItsWordsAndLeavesNoPin) {
    auto registry = make_core_registry();
    auto module = registry->for_module("rejected", 1);
    try {
        module->load(BpfObjectSpec{.name = "rejected", .elf = rejected_stage_bpf()});
        FAIL() << "expected a BpfError";
    } catch (const BpfError& error) {
        EXPECT_THAT(error.what(), HasSubstr("cannot load BPF object rejected"));
        EXPECT_THAT(error.what(), HasSubstr("unchecked_read"));
        EXPECT_THAT(error.what(), HasSubstr("invalid access to packet"));
    }
    EXPECT_FALSE(std::filesystem::exists(pin("mbr_test_rejected_v1")));
    module->close(false);
    registry->forget_module("rejected");
}

TEST_F(RegistryTest, ForgettingAModuleEmptiesTheSlotsAnEarlierRunLeftIt) {
    {
        auto registry = make_core_registry();
        auto module = registry->for_module("counter", 1);
        module->attach_stage(kCountStage, module->load(counter_spec()), "count_packets");
        module->close(/*keep_slots=*/true);
    }
    auto restarted = make_core_registry();
    ASSERT_NE(slot_id(pin(MBR_MAP_PIPELINE), kCountStage), 0u);

    restarted->forget_module("counter");
    EXPECT_EQ(slot_id(pin(MBR_MAP_PIPELINE), kCountStage), 0u);
    EXPECT_TRUE(module_slots(*restarted).empty());
}

TEST_F(RegistryTest, AGenerationOnlyReleasesSlotsItFilledInThisRun) {
    {
        auto registry = make_core_registry();
        auto module = registry->for_module("counter", 1);
        module->attach_stage(kCountStage, module->load(counter_spec()), "count_packets");
        module->close(/*keep_slots=*/true);
    }
    auto restarted = make_core_registry();
    const auto left = slot_id(pin(MBR_MAP_PIPELINE), kCountStage);
    // The host numbers generations afresh: "counter 1" again, not the same one.
    auto module = restarted->for_module("counter", 1);
    EXPECT_TRUE(module->held_stages().empty());
    module->close(/*keep_slots=*/false);
    EXPECT_EQ(slot_id(pin(MBR_MAP_PIPELINE), kCountStage), left);
}

TEST_F(RegistryTest, AnotherModuleMayTakeASlotLeftByAnEarlierRun) {
    {
        auto registry = make_core_registry();
        auto module = registry->for_module("old", 1);
        module->attach_stage(kCountStage, module->load(counter_spec()), "count_packets");
        module->close(/*keep_slots=*/true);
    }
    auto restarted = make_core_registry();
    auto module = restarted->for_module("new", 1);
    EXPECT_NO_THROW(module->attach_stage(kCountStage, module->load(counter_spec()), "count_packets"));
    EXPECT_THAT(log.text(), HasSubstr("left by an earlier run"));
}

TEST_F(RegistryTest, AnUnreadableRecordStopsTheStartNamingTheFile) {
    // The corrupt-record policy of every state file (state/state_file.hpp).
    const auto file = sandbox.state_dir() / "bpf-ownership.json";
    std::ofstream(file) << "{ not json";
    try {
        make_core_registry();
        FAIL() << "no StateError";
    } catch (const StateError& e) {
        EXPECT_THAT(e.what(), ::testing::StartsWith(file.string() + ": not valid JSON"));
    }
    std::ofstream(file) << R"({"format": 99})";
    EXPECT_THROW(make_core_registry(), StateError);
    EXPECT_EQ(std::filesystem::file_size(file), std::string(R"({"format": 99})").size()) << "left as it was";
}

TEST_F(RegistryTest, ARecordOfTheFirstFormatIsRead) {
    // Format 1 listed device names only; they all carried the kernel's from-netdev program.
    std::ofstream(sandbox.state_dir() / "bpf-ownership.json")
        << R"({"format": 1, "kernel_pins": [], "modules": {}, "devices": ["eth9"], "slots": []})";

    auto registry = make_registry();

    EXPECT_THAT(registry->attachments(), ::testing::ElementsAre(DeviceAttachment{"eth9", MBR_ENTRY_FROM_NETDEV}));
    EXPECT_THAT(log.text(), Not(HasSubstr("is unreadable")));
}

}  // namespace
}  // namespace membrane::kernel::test
