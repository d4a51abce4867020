// Map shapes and the refusal of an incompatible pinned map.
#include "registry_fixture.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;

TEST(MapShape, DescribesItselfReadably) {
    EXPECT_EQ((MapShape{BPF_MAP_TYPE_HASH, 4, 8, 1024, 0}).describe(), "hash key=4 value=8 max=1024 flags=0x0");
    EXPECT_EQ((MapShape{BPF_MAP_TYPE_LPM_TRIE, 8, 4, 16, 1}).describe(), "lpm_trie key=8 value=4 max=16 flags=0x1");
}

TEST_F(RegistryTest, AnIncompatiblePinnedMapIsRefusedNamingBothShapes) {
    auto registry = make_core_registry();
    auto old_module = registry->for_module("counter", 1);
    old_module->load(counter_spec());
    const auto id_before = pinned_map_id(pin("mbr_test_count_v1"));

    auto new_module = registry->for_module("counter", 2);
    try {
        new_module->load(BpfObjectSpec{.name = "counter", .elf = counter_stage_wide_bpf()});
        FAIL() << "expected a BpfError";
    } catch (const BpfError& error) {
        const std::string message = error.what();
        EXPECT_THAT(message, HasSubstr("map mbr_test_count_v1 pinned at " + pin("mbr_test_count_v1").string()));
        EXPECT_THAT(message, HasSubstr("has array key=4 value=8 max=1 flags=0x0"));
        EXPECT_THAT(message, HasSubstr("object counter wants array key=4 value=16 max=1 flags=0x0"));
        EXPECT_THAT(message, HasSubstr("bump the version suffix in the map name or remove the pin"));
    }
    EXPECT_EQ(pinned_map_id(pin("mbr_test_count_v1")), id_before) << "the pin is left alone";
}

TEST_F(RegistryTest, CoreMapsAreCheckedToo) {
    // A foreign map squatting on the pipeline's pin name.
    const int squatter = bpf_map_create(BPF_MAP_TYPE_ARRAY, "squatter", 4, 4, 1, nullptr);
    ASSERT_GE(squatter, 0);
    const UniqueFd owner(squatter);
    std::filesystem::create_directories(sandbox.pin_dir());
    ASSERT_EQ(bpf_obj_pin(squatter, pin(MBR_MAP_PIPELINE).c_str()), 0);

    auto registry = make_registry();
    try {
        registry->open_core(membrane_core_bpf());
        FAIL() << "expected a BpfError";
    } catch (const BpfError& error) {
        EXPECT_THAT(error.what(), HasSubstr("has array key=4 value=4 max=1 flags=0x0 but object membrane_core wants "
                                            "prog_array key=4 value=4 max=16 flags=0x0"));
    }
}

}  // namespace
}  // namespace membrane::kernel::test
