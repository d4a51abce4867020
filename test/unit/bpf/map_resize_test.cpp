// Map sizes set at load (SDK 1.9 BpfMapSize) and the resize of a pinned map
// whose size changed: real maps in a private bpffs, filled by the test, then
// loaded again by the module's next generation with other sizes.
#include <arpa/inet.h>

#include <map>

#include "bpf/map_shape.hpp"
#include "registry_fixture.hpp"

MEMBRANE_EMBEDDED_BPF(resizable_maps_bpf)
MEMBRANE_EMBEDDED_BPF(resizable_rejected_bpf)

namespace membrane::kernel::test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kHash = "mbr_test_resize_hash_v1";
constexpr const char* kPerCpu = "mbr_test_resize_percpu_v1";
constexpr const char* kLru = "mbr_test_resize_lru_v1";
constexpr const char* kOuter = "mbr_test_resize_outer_v1";
constexpr const char* kProgs = "mbr_test_resize_progs_v1";
constexpr const char* kArray = "mbr_test_resize_array_v1";
constexpr const char* kLpm = "mbr_test_resize_lpm_v1";

BpfObjectSpec resizable_spec() { return BpfObjectSpec{.name = "resizable", .elf = resizable_maps_bpf()}; }

class MapResizeTest : public RegistryTest {
protected:
    // Generation `generation` of module "sized" loads the object with `sizes`
    // and starts (as the host has it: the resized maps take their pins).
    BpfObject& load(std::uint64_t generation, const std::vector<BpfMapSize>& sizes = {}) {
        generations_.push_back(registry_->for_module("sized", generation));
        auto& object = generations_.back()->load(resizable_spec(), sizes);
        generations_.back()->commit_resized_pins();
        return object;
    }
    std::string load_refusal(std::uint64_t generation, const std::vector<BpfMapSize>& sizes) {
        try {
            load(generation, sizes);
        } catch (const BpfError& error) {
            return error.what();
        }
        return "(loaded)";
    }
    MapShape pinned_shape(const char* map) const {
        const UniqueFd fd(bpf_obj_get(pin(map).c_str()));
        if (!fd) throw std::runtime_error("no pin of " + std::string(map));
        return shape_of_fd(fd.get());
    }
    // key -> value of a pinned map of __u32 keys and __u64 values.
    std::map<std::uint32_t, std::uint64_t> pinned_entries(const char* map) const {
        const UniqueFd fd(bpf_obj_get(pin(map).c_str()));
        std::map<std::uint32_t, std::uint64_t> entries;
        std::uint32_t key = 0;
        const void* previous = nullptr;
        while (bpf_map_get_next_key(fd.get(), previous, &key) == 0) {
            std::uint64_t value = 0;
            EXPECT_EQ(bpf_map_lookup_elem(fd.get(), &key, &value), 0);
            entries[key] = value;
            previous = &key;
        }
        return entries;
    }
    void fill(const BpfObject& object, const char* map, std::uint32_t count) {
        for (std::uint32_t key = 0; key < count; ++key) {
            const std::uint64_t value = 1000 + key;
            ASSERT_EQ(bpf_map_update_elem(object.map_fd(map), &key, &value, BPF_ANY), 0) << map << " " << key;
        }
    }

    std::unique_ptr<Registry> registry_ = make_registry();
    std::vector<std::unique_ptr<ModuleBpf>> generations_;
};

std::map<std::uint32_t, std::uint64_t> numbered(std::uint32_t count) {
    std::map<std::uint32_t, std::uint64_t> entries;
    for (std::uint32_t key = 0; key < count; ++key) entries[key] = 1000 + key;
    return entries;
}

TEST_F(MapResizeTest, SizesSetAtLoadAreTheMapsMaxEntries) {
    const auto& object = load(1, {{kHash, 1000}, {kLru, 4096}});
    EXPECT_EQ(shape_of_fd(object.map_fd(kHash)).max_entries, 1000u);
    EXPECT_EQ(pinned_shape(kHash).max_entries, 1000u);
    EXPECT_EQ(pinned_shape(kLru).max_entries, 4096u);
    EXPECT_EQ(pinned_shape(kPerCpu).max_entries, 64u) << "a map not named keeps its declared size";
}

TEST_F(MapResizeTest, AnUnknownMapZeroOrTwiceIsRefusedNamingTheObjectAndTheMap) {
    EXPECT_THAT(load_refusal(1, {{"mbr_test_nope_v1", 10}}),
                HasSubstr("object resizable has no map mbr_test_nope_v1 to size (it has: mbr_test_resize_hash_v1, "));
    EXPECT_EQ(load_refusal(2, {{kHash, 0}}), "object resizable: map mbr_test_resize_hash_v1 cannot be sized to 0 entries");
    EXPECT_EQ(load_refusal(3, {{kHash, 10}, {kHash, 20}}), "object resizable: map mbr_test_resize_hash_v1 is sized twice");
    EXPECT_FALSE(std::filesystem::exists(pin(kHash))) << "nothing was loaded";
}

TEST_F(MapResizeTest, APinnedHashGrowsKeepingEveryEntry) {
    fill(load(1), kHash, 50);
    const auto old_id = pinned_map_id(pin(kHash));

    const auto& next = load(2, {{kHash, 1000}});
    EXPECT_EQ(pinned_shape(kHash), (MapShape{BPF_MAP_TYPE_HASH, 4, 8, 1000, 0}));
    EXPECT_EQ(pinned_entries(kHash), numbered(50));
    EXPECT_NE(pinned_map_id(pin(kHash)), old_id) << "a new map took the pin";
    EXPECT_EQ(map_id(next.map_fd(kHash)), pinned_map_id(pin(kHash))) << "the load reused the resized pin";
    EXPECT_THAT(log.text(), HasSubstr("map mbr_test_resize_hash_v1 resized from 64 to 1000 entries for module "
                                      "sized gen 2: 50 entries copied, pinned at " + pin(kHash).string()));
    EXPECT_FALSE(std::filesystem::exists(sandbox.pin_dir() / "resizing-mbr_test_resize_hash_v1"));
}

TEST_F(MapResizeTest, AGenerationThatFailsToLoadAfterTheResizeLeavesTheOldPinToTheOneRunning) {
    const auto& running = load(1);
    fill(running, kHash, 50);
    const auto old_id = pinned_map_id(pin(kHash));

    generations_.push_back(registry_->for_module("sized", 2));
    try {
        generations_.back()->load(BpfObjectSpec{.name = "resizable_rejected", .elf = resizable_rejected_bpf()},
                                  {{kHash, 1000}});
        FAIL() << "the verifier passed an unchecked packet read";
    } catch (const BpfError& error) {
        EXPECT_THAT(error.what(), HasSubstr("cannot load BPF object resizable_rejected"));
    }
    EXPECT_EQ(pinned_map_id(pin(kHash)), old_id) << "the pin moved to a map no generation uses";
    EXPECT_EQ(map_id(running.map_fd(kHash)), old_id);
    EXPECT_EQ(pinned_shape(kHash).max_entries, 64u);
    EXPECT_EQ(pinned_entries(kHash), numbered(50));
    EXPECT_FALSE(std::filesystem::exists(sandbox.pin_dir() / "resizing-mbr_test_resize_hash_v1"));
    EXPECT_THAT(log.text(), Not(HasSubstr("map mbr_test_resize_hash_v1 resized")));

    // A generation whose first object resized the map but whose second failed to load: it never
    // starts, so its staged copy goes when it closes, and the old pin stays.
    generations_.push_back(registry_->for_module("sized", 3));
    generations_.back()->load(resizable_spec(), {{kHash, 1000}});
    EXPECT_TRUE(std::filesystem::exists(sandbox.pin_dir() / "resizing-mbr_test_resize_hash_v1"));
    EXPECT_THROW(generations_.back()->load(BpfObjectSpec{.name = "resizable_rejected", .elf = resizable_rejected_bpf()},
                                           {{kHash, 1000}}),
                 BpfError);
    generations_.back()->close(false);
    EXPECT_EQ(pinned_map_id(pin(kHash)), old_id) << "the pin moved to a generation that never started";
    EXPECT_EQ(pinned_shape(kHash).max_entries, 64u);
    EXPECT_FALSE(std::filesystem::exists(sandbox.pin_dir() / "resizing-mbr_test_resize_hash_v1"));

    // What the running generation writes now is what the next, loading, copies.
    const std::uint32_t key = 60;
    const std::uint64_t value = 1060;
    ASSERT_EQ(bpf_map_update_elem(running.map_fd(kHash), &key, &value, BPF_ANY), 0);
    load(4, {{kHash, 1000}});
    EXPECT_EQ(pinned_shape(kHash).max_entries, 1000u);
    EXPECT_EQ(pinned_entries(kHash).size(), 51u);
}

TEST_F(MapResizeTest, APinnedHashShrinksToASizeItsEntriesFit) {
    fill(load(1), kHash, 50);
    load(2, {{kHash, 50}});
    EXPECT_EQ(pinned_shape(kHash).max_entries, 50u);
    EXPECT_EQ(pinned_entries(kHash), numbered(50));
}

TEST_F(MapResizeTest, AShrinkBelowTheEntryCountIsRefusedAndThePinKeepsTheOldMap) {
    fill(load(1), kHash, 50);
    const auto old_id = pinned_map_id(pin(kHash));

    EXPECT_EQ(load_refusal(2, {{kHash, 49}}),
              "map mbr_test_resize_hash_v1 pinned at " + pin(kHash).string() +
                  " holds 50 entries, more than the 49 object resizable sizes it to; nothing was changed (the pin "
                  "keeps its 64 entries)");
    EXPECT_EQ(pinned_map_id(pin(kHash)), old_id);
    EXPECT_EQ(pinned_shape(kHash).max_entries, 64u);
    EXPECT_EQ(pinned_entries(kHash), numbered(50));
}

TEST_F(MapResizeTest, ARefusalOfOneMapLeavesTheObjectsOtherPinsAsTheyWere) {
    auto& first = load(1);
    fill(first, kHash, 10);
    fill(first, kLru, 100);
    const auto hash_id = pinned_map_id(pin(kHash));

    EXPECT_THAT(load_refusal(2, {{kHash, 1000}, {kLru, 99}}), HasSubstr("is an LRU holding 100 entries"));
    EXPECT_EQ(pinned_map_id(pin(kHash)), hash_id) << "the hash, which fitted, was not resized either";
    EXPECT_EQ(pinned_shape(kHash).max_entries, 64u);
}

TEST_F(MapResizeTest, AHashOfManyBatchesIsCopiedWhole) {
    fill(load(1, {{kHash, 16384}}), kHash, 10000);  // the copy reads 4,096 entries a batch
    load(2, {{kHash, 20000}});
    EXPECT_EQ(pinned_shape(kHash).max_entries, 20000u);
    EXPECT_EQ(pinned_entries(kHash), numbered(10000));
    EXPECT_THAT(log.text(), HasSubstr("10000 entries copied"));
}

TEST_F(MapResizeTest, AnLpmTrieWithoutBatchOpsIsCopiedKeyByKey) {
    struct Prefix {
        std::uint32_t prefixlen;
        std::uint32_t address;
    };
    const auto& first = load(1);
    for (std::uint32_t i = 0; i < 50; ++i) {
        const Prefix key{24 + i % 9, htonl(0x0a000000U + (i << 8))};
        const std::uint64_t value = 1000 + i;
        ASSERT_EQ(bpf_map_update_elem(first.map_fd(kLpm), &key, &value, BPF_ANY), 0) << i;
    }
    load(2, {{kLpm, 1000}});
    EXPECT_EQ(pinned_shape(kLpm).max_entries, 1000u);
    const UniqueFd fd(bpf_obj_get(pin(kLpm).c_str()));
    for (std::uint32_t i = 0; i < 50; ++i) {
        const Prefix key{24 + i % 9, htonl(0x0a000000U + (i << 8))};
        std::uint64_t value = 0;
        EXPECT_EQ(bpf_map_lookup_elem(fd.get(), &key, &value), 0) << i;
        EXPECT_EQ(value, 1000u + i) << i;
    }
    EXPECT_THAT(log.text(), HasSubstr("map mbr_test_resize_lpm_v1 resized from 64 to 1000 entries for module "
                                      "sized gen 2: 50 entries copied"));
}

TEST_F(MapResizeTest, AnLruIsCopiedAsItIs) {
    // Room for the per-CPU free lists of any machine up to 60 CPUs: the copy evicts none.
    fill(load(1), kLru, 100);
    load(2, {{kLru, 16384}});
    EXPECT_EQ(pinned_shape(kLru), (MapShape{BPF_MAP_TYPE_LRU_HASH, 4, 8, 16384, 0}));
    EXPECT_EQ(pinned_entries(kLru), numbered(100));
}

TEST_F(MapResizeTest, AnLruShrunkBelowItsFreeListsRoomIsRefused) {
    // 120 would hold the 100 entries, but an LRU evicts before it is full: the copy would lose some unseen.
    fill(load(1), kLru, 100);
    const auto old_id = pinned_map_id(pin(kLru));
    EXPECT_THAT(load_refusal(2, {{kLru, 120}}),
                AllOf(HasSubstr("is an LRU holding 100 entries"), HasSubstr("evicts before it is full"),
                      HasSubstr("nothing was changed")));
    EXPECT_EQ(pinned_map_id(pin(kLru)), old_id);
    EXPECT_EQ(pinned_entries(kLru), numbered(100));
}

TEST_F(MapResizeTest, AModuleCannotSizeTheCoresMaps) {
    // Every module's objects share them; the core declares their size.
    std::uint64_t generation = 0;
    for (const char* core : {MBR_MAP_STATS, MBR_MAP_CT}) {
        EXPECT_THAT(load_refusal(++generation, {{core, 4096}}),
                    AllOf(HasSubstr("cannot size map " + std::string(core)), HasSubstr("the agent's core maps")));
    }
}

TEST_F(MapResizeTest, OnlyTheMapsTheLoadSizesAreResized) {
    fill(load(1, {{kHash, 100}}), kHash, 10);
    const auto old_id = pinned_map_id(pin(kHash));
    // Declared 64, pinned 100, and this load does not size it (as a core map whose declared size a new SDK
    // changed): refused as before, not migrated unasked.
    EXPECT_THAT(load_refusal(2, {}), HasSubstr("max=100"));
    EXPECT_EQ(pinned_map_id(pin(kHash)), old_id);
    EXPECT_EQ(pinned_entries(kHash), numbered(10));
}

TEST_F(MapResizeTest, PerCpuValuesAreCopiedForEveryCpu) {
    const auto& first = load(1);
    const auto cpus = static_cast<std::size_t>(libbpf_num_possible_cpus());
    // A 4-byte value takes 8 per CPU in user space's buffer.
    std::vector<std::uint64_t> values(cpus);
    for (std::uint32_t key = 0; key < 20; ++key) {
        for (std::size_t cpu = 0; cpu < cpus; ++cpu) values[cpu] = key * 100 + cpu;
        ASSERT_EQ(bpf_map_update_elem(first.map_fd(kPerCpu), &key, values.data(), BPF_ANY), 0);
    }
    load(2, {{kPerCpu, 20}});
    EXPECT_EQ(pinned_shape(kPerCpu), (MapShape{BPF_MAP_TYPE_PERCPU_HASH, 4, 4, 20, 0}));
    const UniqueFd pinned(bpf_obj_get(pin(kPerCpu).c_str()));
    for (std::uint32_t key = 0; key < 20; ++key) {
        std::vector<std::uint64_t> read(cpus, ~0ULL);
        ASSERT_EQ(bpf_map_lookup_elem(pinned.get(), &key, read.data()), 0) << key;
        for (std::size_t cpu = 0; cpu < cpus; ++cpu) EXPECT_EQ(read[cpu], key * 100 + cpu) << key << " cpu " << cpu;
    }
}

TEST_F(MapResizeTest, AHashOfMapsKeepsItsInnerMaps) {
    const auto& first = load(1);
    std::vector<UniqueFd> inner;
    std::vector<std::uint32_t> inner_ids;
    for (std::uint32_t key = 0; key < 3; ++key) {
        bpf_map_create_opts opts{};
        opts.sz = sizeof(opts);
        opts.map_flags = BPF_F_INNER_MAP;
        // Each of another size: the template's BPF_F_INNER_MAP lets them differ.
        inner.emplace_back(bpf_map_create(BPF_MAP_TYPE_ARRAY, "inner", 4, 4, 4 + key, &opts));
        ASSERT_TRUE(inner.back());
        const std::uint32_t index = 0;
        const std::uint32_t value = 7 + key;
        ASSERT_EQ(bpf_map_update_elem(inner.back().get(), &index, &value, BPF_ANY), 0);
        const int fd = inner.back().get();
        ASSERT_EQ(bpf_map_update_elem(first.map_fd(kOuter), &key, &fd, BPF_ANY), 0);
        inner_ids.push_back(map_id(fd));
    }
    inner.clear();  // the outer map holds them

    load(2, {{kOuter, 100}});
    EXPECT_EQ(pinned_shape(kOuter), (MapShape{BPF_MAP_TYPE_HASH_OF_MAPS, 4, 4, 100, BPF_F_NO_PREALLOC}));
    const UniqueFd outer(bpf_obj_get(pin(kOuter).c_str()));
    for (std::uint32_t key = 0; key < 3; ++key) {
        std::uint32_t id = 0;
        ASSERT_EQ(bpf_map_lookup_elem(outer.get(), &key, &id), 0) << key;
        EXPECT_EQ(id, inner_ids[key]) << "the same inner map";
        const UniqueFd table(bpf_map_get_fd_by_id(id));
        const std::uint32_t index = 0;
        std::uint32_t value = 0;
        ASSERT_EQ(bpf_map_lookup_elem(table.get(), &index, &value), 0);
        EXPECT_EQ(value, 7 + key);
    }
}

TEST_F(MapResizeTest, AProgArrayOrAnArrayShrinkIsRefused) {
    load(1);
    const auto progs_id = pinned_map_id(pin(kProgs));
    EXPECT_THAT(load_refusal(2, {{kProgs, 8}}),
                HasSubstr("map mbr_test_resize_progs_v1 pinned at " + pin(kProgs).string() +
                          " has max 4 entries but object resizable wants 8: a prog_array map cannot be resized by "
                          "copying its entries"));
    EXPECT_EQ(pinned_map_id(pin(kProgs)), progs_id);
    EXPECT_THAT(load_refusal(3, {{kArray, 4}}),
                HasSubstr("is an array of 8 entries and object resizable wants 4: an array keeps every index"));
    // Growing an array keeps its values.
    const UniqueFd array(bpf_obj_get(pin(kArray).c_str()));
    const std::uint32_t seven = 7;
    const std::uint64_t value = 77;
    ASSERT_EQ(bpf_map_update_elem(array.get(), &seven, &value, BPF_ANY), 0);
    load(4, {{kArray, 16}});
    EXPECT_EQ(pinned_shape(kArray).max_entries, 16u);
    EXPECT_EQ(pinned_entries(kArray).at(7), 77u);
}

}  // namespace
}  // namespace membrane::kernel::test
