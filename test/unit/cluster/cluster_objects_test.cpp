// Applied objects shared through the store, over the in-memory store: all or
// nothing, seen by every node with events, kept across a restart; without a
// cluster store, on disk when answered, at the cost of the change.
#include <gmock/gmock.h>
#include <gtest/gtest.h>


#include <sys/wait.h>
#include <unistd.h>

#include "bus/event_bus.hpp"
#include "cluster/cluster_objects.hpp"
#include "cluster/objects_file.hpp"
#include "state/crash_midway.hpp"
#include "state/state_file.hpp"
#include "membrane/events.hpp"
#include "store/memory_store.hpp"
#include "store/store_test_support.hpp"
#include "support/state_folder.hpp"
#include "support/quiet_logger.hpp"
#include "support/test_cluster_keys.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using testing::run_until;
using testing::SyncStore;

std::vector<Manifest> namespaces(const std::string& yaml) { return parse_manifests(yaml, "t.yaml"); }

const char* kShop = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: a}}\n";
const char* kBank = "apiVersion: v1\nkind: Namespace\nmetadata: {name: bank}\n";

class ClusterObjectsTest : public ::testing::Test {
protected:
    // A node's view: its own ClusterObjects and bus, recording the events.
    struct Node {
        Node(boost::asio::io_context& io, Store& store, const std::filesystem::path& cache, bool local)
            : bus(io), objects(io, store, kKeys, bus, {cache, local}, quiet_logger()) {
            subscriptions.push_back(bus.subscribe<events::ObjectApplied>("test", [this](const events::ObjectApplied& e) {
                seen.push_back("applied " + e.kind + " " + e.name);
            }));
            subscriptions.push_back(bus.subscribe<events::ObjectDeleted>("test", [this](const events::ObjectDeleted& e) {
                seen.push_back("deleted " + e.kind + " " + e.name);
            }));
            objects.start();
        }
        EventBus bus;
        ClusterObjects objects;
        std::vector<Subscription> subscriptions;
        std::vector<std::string> seen;
    };

    ClusterObjectsTest() { store.start(); }

    std::unique_ptr<Node> node(const std::string& name, bool local = false) {
        return std::make_unique<Node>(io, store, state / (name + ".json"), local);
    }

    // Runs an apply to its end: the problem's kind and message, or the outcomes as "<action> <object>".
    std::vector<std::string> apply(Node& n, const std::string& yaml) {
        std::optional<std::vector<std::string>> result;
        n.objects.apply(namespaces(yaml), [&](std::optional<ObjectsProblem> problem, std::vector<ApplyOutcome> done) {
            result.emplace();
            if (problem) {
                const char* kind = problem->kind == ObjectsProblemKind::Unavailable ? "unavailable"
                                   : problem->kind == ObjectsProblemKind::NotFound  ? "not found"
                                                                                    : "failed";
                result->push_back(std::string("problem (") + kind + "): " + problem->message);
            }
            for (const auto& o : done) result->push_back(o.action + " " + o.ref.str());
        });
        EXPECT_TRUE(run_until(io, [&] { return result.has_value(); }));
        return result.value_or(std::vector<std::string>{});
    }

    std::optional<ObjectsProblem> remove(Node& n, const ObjectRef& ref,
                                         std::optional<nlohmann::json> only_if = std::nullopt) {
        bool finished = false;
        std::optional<ObjectsProblem> out;
        n.objects.remove(
            ref,
            [&](std::optional<ObjectsProblem> problem) {
                out = std::move(problem);
                finished = true;
            },
            std::move(only_if));
        EXPECT_TRUE(run_until(io, [&] { return finished; }));
        return out;
    }

    static std::vector<std::string> names(const Node& n) {
        std::vector<std::string> out;
        for (const auto& m : n.objects.list("Namespace")) out.push_back(m.ref.name);
        return out;
    }

    StateFolder state;
    boost::asio::io_context io;
    MemoryStore store{io};
    SyncStore sync{io, store};
};

TEST_F(ClusterObjectsTest, AnApplyIsSeenByEveryNodeAndSaysWhatItDid) {
    auto n1 = node("n1");
    auto n2 = node("n2");
    EXPECT_THAT(apply(*n1, std::string(kShop) + "---\n" + kBank),
                ElementsAre("created Namespace shop", "created Namespace bank"));
    EXPECT_THAT(names(*n1), ElementsAre("bank", "shop")) << "known at once on the applying node";
    ASSERT_TRUE(run_until(io, [&] { return names(*n2).size() == 2; }));
    EXPECT_EQ(n2->objects.find({"Namespace", "", "shop"})->labels, (Labels{{"team", "a"}}));
    ASSERT_TRUE(run_until(io, [&] { return n2->seen.size() == 2; })) << "bus delivery is posted to the loop";
    EXPECT_THAT(n2->seen, UnorderedElementsAre("applied Namespace bank", "applied Namespace shop"));

    // Again: unchanged (nothing written); changed labels: configured, and n2 hears of it.
    const auto revision = store.revision();
    EXPECT_THAT(apply(*n1, kShop), ElementsAre("unchanged Namespace shop"));
    EXPECT_EQ(store.revision(), revision);
    EXPECT_THAT(apply(*n1, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: b}}\n"),
                ElementsAre("configured Namespace shop"));
    ASSERT_TRUE(run_until(io, [&] { return n2->objects.find({"Namespace", "", "shop"})->labels.at("team") == "b"; }));
    ASSERT_TRUE(run_until(io, [&] { return n2->seen.size() == 3; }));
    EXPECT_EQ(n2->seen.back(), "applied Namespace shop");
}

TEST_F(ClusterObjectsTest, AnApplyWhileTheStoreIsAwayChangesNothingAndSaysTryAgain) {
    auto n1 = node("n1");
    EXPECT_THAT(apply(*n1, kShop), ElementsAre("created Namespace shop"));
    store.set_available(false);
    const auto outcome = apply(*n1, std::string(kBank) + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");
    ASSERT_EQ(outcome.size(), 1u);
    EXPECT_THAT(outcome[0], HasSubstr("problem (unavailable): the kvstore did not take it (unavailable"));
    // Nothing to write as far as this node knows: the store is still asked (it is the judge).
    const auto unchanged = apply(*n1, kShop);
    ASSERT_EQ(unchanged.size(), 1u);
    EXPECT_THAT(unchanged[0], HasSubstr("problem (unavailable)"));
    store.set_available(true);
    EXPECT_THAT(names(*n1), ElementsAre("shop"));
    EXPECT_EQ(n1->objects.find({"Namespace", "", "shop"})->labels, (Labels{{"team", "a"}})) << "not half-applied";
    EXPECT_TRUE(sync.range(kKeys.objects()).value.kvs.size() == 1);
}

TEST_F(ClusterObjectsTest, ADeleteIsSeenByEveryNodeAndAMissingObjectIsNotFound) {
    auto n1 = node("n1");
    auto n2 = node("n2");
    apply(*n1, std::string(kShop) + "---\n" + kBank);
    ASSERT_TRUE(run_until(io, [&] { return names(*n2).size() == 2; }));
    EXPECT_EQ(remove(*n2, {"Namespace", "", "shop"}), std::nullopt);
    EXPECT_THAT(names(*n2), ElementsAre("bank"));
    ASSERT_TRUE(run_until(io, [&] { return names(*n1).size() == 1; }));
    ASSERT_TRUE(run_until(io, [&] { return !n1->seen.empty() && n1->seen.back() == "deleted Namespace shop"; }))
        << (n1->seen.empty() ? "(nothing)" : n1->seen.back());
    const auto missing = remove(*n1, {"Namespace", "", "shop"});
    ASSERT_TRUE(missing.has_value());
    EXPECT_EQ(missing->kind, ObjectsProblemKind::NotFound);
    EXPECT_EQ(missing->message, "Namespace shop does not exist");
}

TEST_F(ClusterObjectsTest, AConditionalDeleteLeavesAnObjectThatChangedSince) {
    auto n1 = node("n1");
    auto n2 = node("n2");
    EXPECT_THAT(apply(*n1, kShop), ElementsAre("created Namespace shop"));
    const nlohmann::json seen_by_n1 = n1->objects.find({"Namespace", "", "shop"})->document;
    ASSERT_TRUE(run_until(io, [&] { return n2->objects.find({"Namespace", "", "shop"}).has_value(); }));
    EXPECT_THAT(apply(*n2, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: b}}\n"),
                ElementsAre("configured Namespace shop"));
    const auto changed = remove(*n1, {"Namespace", "", "shop"}, seen_by_n1);
    ASSERT_TRUE(changed.has_value());
    EXPECT_EQ(changed->kind, ObjectsProblemKind::Changed);
    EXPECT_EQ(sync.range(kKeys.objects()).value.kvs.size(), 1u);

    ASSERT_TRUE(run_until(io, [&] { return n1->objects.find({"Namespace", "", "shop"})->labels.at("team") == "b"; }));
    EXPECT_FALSE(remove(*n1, {"Namespace", "", "shop"}, n1->objects.find({"Namespace", "", "shop"})->document));
    EXPECT_TRUE(sync.range(kKeys.objects()).value.kvs.empty());
}

TEST_F(ClusterObjectsTest, WithoutAClusterStoreTheFileIsTheTruthAcrossARestart) {
    {
        auto alone = node("alone", /*local=*/true);
        apply(*alone, std::string(kShop) + "---\n" + kBank);
        EXPECT_EQ(remove(*alone, {"Namespace", "", "bank"}), std::nullopt);
    }
    // A new agent: a new, empty in-process store; the file brings the objects back.
    MemoryStore fresh(io);
    fresh.start();
    Node again(io, fresh, state / "alone.json", true);
    EXPECT_THAT(names(again), ElementsAre("shop"));
    ASSERT_TRUE(run_until(io, [&] { return !again.seen.empty(); }));
    EXPECT_THAT(again.seen, ElementsAre("applied Namespace shop")) << "modules hear of what is known at start";
    SyncStore fresh_sync(io, fresh);
    ASSERT_TRUE(run_until(io, [&] { return fresh_sync.range(kKeys.objects()).value.kvs.size() == 1; }))
        << "the file's objects are put into the local store";
    EXPECT_THAT(apply(again, kShop), ElementsAre("unchanged Namespace shop"));
}

TEST_F(ClusterObjectsTest, WithoutAClusterStoreAFileThatCannotBeWrittenAppliesNothing) {
    // Folders where the journal and the writer's temporary file should go: every write fails.
    std::filesystem::create_directories(state / "blocked.json.journal" / "x");
    std::filesystem::create_directories(state / "blocked.json.tmp" / "x");
    auto alone = node("blocked", /*local=*/true);
    const auto outcome = apply(*alone, kShop);
    ASSERT_EQ(outcome.size(), 1u);
    EXPECT_THAT(outcome[0], HasSubstr("problem (failed)"));
    EXPECT_TRUE(names(*alone).empty());
    EXPECT_TRUE(sync.range(kKeys.objects()).value.kvs.empty()) << "the file is written first";
    io.run_for(std::chrono::milliseconds(20));
    EXPECT_TRUE(alone->seen.empty()) << "modules heard of nothing";
}

// Namespaces "<prefix>-0".."<prefix>-<count - 1>", each with `padding` bytes of labels.
std::string many_namespaces(const std::string& prefix, int count, int padding = 0) {
    std::string yaml;
    for (int i = 0; i < count; ++i) {
        yaml += "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + prefix + "-" + std::to_string(i) + "\n";
        if (padding > 0) yaml += "  labels:\n";
        for (int l = 0; l * 60 < padding; ++l) yaml += "    l" + std::to_string(l) + ": " + std::string(60, 'x') + "\n";
    }
    return yaml;
}

// What a restarted agent would find in the file, read apart from any ClusterObjects.
std::set<std::string> names_on_disk(const std::filesystem::path& file) {
    std::set<std::string> out;
    for (const auto& [key, document] : ObjectsFile(file, kKeys, "objects").read().documents) {
        out.insert(document["metadata"]["name"].get<std::string>());
    }
    return out;
}

TEST_F(ClusterObjectsTest, WithoutAClusterStoreAnAnsweredApplyIsOnDiskAndCostsItsOwnObjectsOnly) {
    auto alone = node("alone", /*local=*/true);
    const auto file = state / "alone.json";
    apply(*alone, many_namespaces("base", 50));
    // Every apply from now on: none rewrites the whole file (no rename of a
    // temporary file over it), and each is on disk when answered.
    std::vector<std::string> renames;
    set_state_file_calls({{}, {}, [&](const char* from, const char* to) {
                              renames.push_back(from);
                              return std::rename(from, to);
                          }});
    for (int i = 0; i < 20; ++i) {
        const auto name = "ns-" + std::to_string(i);
        ASSERT_THAT(apply(*alone, "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + name + "}\n"),
                    ElementsAre("created Namespace " + name));
        ASSERT_TRUE(names_on_disk(file).contains(name)) << "answered, so on disk";
    }
    EXPECT_EQ(remove(*alone, {"Namespace", "", "ns-3"}), std::nullopt);
    EXPECT_FALSE(names_on_disk(file).contains("ns-3")) << "a delete too";
    set_state_file_calls({});
    EXPECT_THAT(renames, ElementsAre()) << "no apply rewrote the whole file";
    EXPECT_EQ(names_on_disk(file).size(), 50u + 19u);
}

TEST_F(ClusterObjectsTest, WithoutAClusterStoreTwoAppliesInFlightTogetherAreBothOnDiskWhenAnswered) {
    auto alone = node("alone", /*local=*/true);
    int answered = 0;
    const auto done = [&](std::optional<ObjectsProblem> problem, std::vector<ApplyOutcome>) {
        EXPECT_FALSE(problem.has_value());
        ++answered;
    };
    // The second is asked before the first is answered (two membranectl at once).
    alone->objects.apply(namespaces(kShop), done);
    alone->objects.apply(namespaces(kBank), done);
    ASSERT_TRUE(run_until(io, [&] { return answered == 2; }));
    EXPECT_EQ(names_on_disk(state / "alone.json"), (std::set<std::string>{"bank", "shop"}));
}

TEST_F(ClusterObjectsTest, WithoutAClusterStoreTheFileIsRewrittenOnceItsJournalOutgrowsIt) {
    auto alone = node("alone", /*local=*/true);
    const auto file = state / "alone.json";
    // About 100 KiB an apply: the journal passes its 256 KiB floor at the third.
    for (int i = 0; i < 4; ++i) apply(*alone, many_namespaces("big" + std::to_string(i), 100, 900));
    ASSERT_TRUE(std::filesystem::exists(file.string() + ".journal"));
    ASSERT_TRUE(run_until(io, [&] { return !std::filesystem::exists(file.string() + ".journal"); }))
        << "rewritten a moment later";
    EXPECT_EQ(names_on_disk(file).size(), 400u);
    EXPECT_EQ(ObjectsFile(file, kKeys, "objects").read().documents.size(), 400u) << "all in the snapshot";
}

TEST_F(ClusterObjectsTest, WithoutAClusterStoreACrashMidApplyLosesThatApplyOnlyAndTheFileStaysUsable) {
    const auto file = state / "alone.json";
    {
        auto alone = node("alone", /*local=*/true);
        apply(*alone, kShop);
    }
    // A child process dies halfway through writing the next apply's change.
    const int crashed = crash_midway([&] {
        MemoryStore store(io);
        store.start();
        Node alone(io, store, file, true);
        alone.objects.apply(namespaces(many_namespaces("cut", 20)), [](auto, auto) {});
    });
    ASSERT_EQ(crashed, kCrashedMidway);
    {
        MemoryStore fresh(io);
        fresh.start();
        Node again(io, fresh, file, true);
        EXPECT_THAT(names(again), ElementsAre("shop")) << "the cut apply was never answered: gone whole";
        EXPECT_THAT(apply(again, kBank), ElementsAre("created Namespace bank"));
        // Read as a crash now would leave it (a clean stop folds the journal in).
        EXPECT_EQ(names_on_disk(file), (std::set<std::string>{"bank", "shop"}))
            << "the apply after the cut line is readable";
    }
    EXPECT_EQ(names_on_disk(file), (std::set<std::string>{"bank", "shop"}));
}

TEST_F(ClusterObjectsTest, TheWatchsFirstBatchRemovesWhatVanishedWhileTheNodeWasAway) {
    {
        auto n1 = node("n1");
        apply(*n1, std::string(kShop) + "---\n" + kBank);
    }
    sync.erase(kKeys.objects() + "Namespace/bank");
    auto again = node("n1");  // its cache (written as it stopped) still has bank
    EXPECT_THAT(names(*again), ElementsAre("bank", "shop"));
    ASSERT_TRUE(run_until(io, [&] { return names(*again).size() == 1; }));
    EXPECT_THAT(names(*again), ElementsAre("shop"));
    ASSERT_TRUE(run_until(io, [&] { return !again->seen.empty() && again->seen.back() == "deleted Namespace bank"; }))
        << (again->seen.empty() ? "(nothing)" : again->seen.back());
}

TEST_F(ClusterObjectsTest, ABrokenRecordInTheStoreIsIgnoredNotHalfUsed) {
    auto n1 = node("n1");
    sync.put(kKeys.objects() + "Namespace/odd", R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"Odd"}})");
    sync.put(kKeys.objects() + "Namespace/elsewhere",
             R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"other"}})");
    apply(*n1, kShop);
    ASSERT_TRUE(run_until(io, [&] { return sync.range(kKeys.objects()).value.kvs.size() == 3; }));
    io.run_for(std::chrono::milliseconds(50));
    EXPECT_THAT(names(*n1), ElementsAre("shop"));
}

}  // namespace
}  // namespace membrane::kernel::test
