// The manifests folder over a real folder and inotify, with the in-memory
// store: files applied one apply each, changes followed, broken files
// reported while the rest works, deletions only of what the folder applied,
// and what vanished while the agent was down deleted at start.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>


#include "bus/event_bus.hpp"
#include "membrane/events.hpp"
#include "cluster/cluster_objects.hpp"
#include "sources/manifests_folder.hpp"
#include "store/memory_store.hpp"
#include "store/store_test_support.hpp"
#include "support/state_folder.hpp"
#include "support/quiet_logger.hpp"
#include "support/test_cluster_keys.hpp"

namespace membrane::kernel::test {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::run_until;

std::string ns(const std::string& name, const std::string& team = "a") {
    return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n  labels: {team: " + team + "}\n";
}

ObjectRef ref(const std::string& name) { return {"Namespace", "", name}; }

class ManifestsFolderTest : public ::testing::Test {
protected:
    ManifestsFolderTest() : bus(io), objects(io, store, kKeys, bus, {state / "objects.json", false}, quiet_logger()) {
        fs::create_directories(folder());
        store.start();
        objects.start();
        subscriptions.push_back(bus.subscribe<events::ObjectDeleted>(
            "test", [this](const events::ObjectDeleted& e) { deleted.push_back(e.name); }));
    }

    // Applies `yaml` as membranectl apply would.
    void apply_over(const std::string& yaml) {
        std::optional<std::optional<ObjectsProblem>> applied;
        objects.apply(parse_manifests(yaml, "cli"),
                      [&](std::optional<ObjectsProblem> p, std::vector<ApplyOutcome>) { applied = p; });
        ASSERT_TRUE(run_until(io, [&] { return applied.has_value(); }));
        ASSERT_FALSE(applied->has_value());
    }

    fs::path folder() const { return state / "manifests"; }

    // Written as an editor or a checkout would: a temporary name, then renamed in.
    void put(const std::string& name, const std::string& text) {
        const fs::path tmp = state / ".writing";
        std::ofstream(tmp) << text;
        fs::rename(tmp, folder() / name);
    }

    void start_folder() {
        ManifestsFolderOptions options;
        options.folder = folder();
        options.record_file = state / "manifests-folder.json";
        options.settle = std::chrono::milliseconds(20);
        options.settle_limit = std::chrono::milliseconds(200);
        options.rescan = std::chrono::hours(1);  // only inotify tells of a change
        options.retry = std::chrono::milliseconds(100);
        options.empty_grace = std::chrono::milliseconds(600);
        manifests = std::make_unique<ManifestsFolder>(io, objects, std::move(options), quiet_logger());
        manifests->start();
    }

    bool has(const std::string& name, const std::string& team = "") {
        const auto found = objects.find(ref(name));
        if (!found) return false;
        return team.empty() || found->labels.at("team") == team;
    }

    std::map<std::string, std::string> problems() { return manifests->status().problems; }

    StateFolder state;
    boost::asio::io_context io;
    MemoryStore store{io};
    EventBus bus;
    ClusterObjects objects;
    std::unique_ptr<ManifestsFolder> manifests;
    std::vector<Subscription> subscriptions;
    std::vector<std::string> deleted;  // ObjectDeleted, by name
};

TEST_F(ManifestsFolderTest, AppliesEachManifestFileAndIgnoresOthers) {
    put("shop.yaml", ns("shop") + "---\n" + ns("bank"));
    put("tools.json", R"({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tools"}})");
    put("notes.txt", ns("notes"));
    put(".hidden.yaml", ns("hidden"));
    fs::create_directories(folder() / "sub");
    std::ofstream(folder() / "sub" / "deep.yaml") << ns("deep");
    start_folder();

    ASSERT_TRUE(run_until(io, [&] { return has("shop") && has("bank") && has("tools"); }));
    ASSERT_TRUE(run_until(io, [&] { return manifests->status().files_applied == 2; }));
    EXPECT_FALSE(has("notes"));
    EXPECT_FALSE(has("hidden"));
    EXPECT_FALSE(has("deep"));
    EXPECT_THAT(problems(), IsEmpty());
    // Each object names the file it came from.
    EXPECT_EQ(objects.find(ref("bank"))->document["metadata"]["annotations"][kManifestsFileAnnotation],
              (folder() / "shop.yaml").string());
}

TEST_F(ManifestsFolderTest, FollowsNewChangedAndShrunkFiles) {
    put("shop.yaml", ns("shop") + "---\n" + ns("bank"));
    start_folder();
    ASSERT_TRUE(run_until(io, [&] { return has("shop") && has("bank"); }));

    put("more.yaml", ns("more"));
    EXPECT_TRUE(run_until(io, [&] { return has("more"); }, std::chrono::seconds(2)));

    put("shop.yaml", ns("shop", "b"));  // bank no longer declared, shop changed
    EXPECT_TRUE(run_until(io, [&] { return has("shop", "b") && !has("bank"); }, std::chrono::seconds(2)));

    // Written in place, not renamed in: the closed write is heard too.
    std::ofstream(folder() / "more.yaml") << ns("more", "c");
    EXPECT_TRUE(run_until(io, [&] { return has("more", "c"); }, std::chrono::seconds(2)));

    fs::remove(folder() / "more.yaml");
    EXPECT_TRUE(run_until(io, [&] { return !has("more"); }, std::chrono::seconds(2)));
    EXPECT_TRUE(has("shop", "b"));
}

TEST_F(ManifestsFolderTest, ABrokenFileIsReportedAndKeepsItsLastGoodVersionWhileTheRestWorks) {
    put("shop.yaml", ns("shop"));
    put("bank.yaml", ns("bank"));
    start_folder();
    ASSERT_TRUE(run_until(io, [&] { return has("shop") && has("bank"); }));

    put("shop.yaml", ns("shop", "b") + "colour: red\n---\n" + ns("extra"));
    const std::string shop = (folder() / "shop.yaml").string();
    ASSERT_TRUE(run_until(io, [&] { return problems().contains(shop); }, std::chrono::seconds(2)));
    EXPECT_THAT(problems()[shop], HasSubstr("shop.yaml: document 1 (line 6): colour: unknown field"));
    EXPECT_TRUE(has("shop", "a"));  // the last good version, all of it
    EXPECT_FALSE(has("extra"));     // nothing of the broken one
    EXPECT_EQ(manifests->status().files_applied, 1u);

    put("other.yaml", ns("other"));  // the rest keeps working
    EXPECT_TRUE(run_until(io, [&] { return has("other"); }, std::chrono::seconds(2)));

    put("shop.yaml", ns("shop", "b"));
    EXPECT_TRUE(run_until(io, [&] { return has("shop", "b") && problems().empty(); }, std::chrono::seconds(2)));
}

TEST_F(ManifestsFolderTest, AnObjectInTwoFilesIsKeptByTheFirstByName) {
    put("a.yaml", ns("shop"));
    put("b.yaml", ns("shop", "b") + "---\n" + ns("bank"));
    start_folder();
    const std::string b = (folder() / "b.yaml").string();
    ASSERT_TRUE(run_until(io, [&] { return problems().contains(b) && has("shop", "a"); }));
    EXPECT_THAT(problems()[b], HasSubstr("Namespace shop is also in " + (folder() / "a.yaml").string()));
    io.run_for(std::chrono::milliseconds(100));
    EXPECT_FALSE(has("bank"));  // b.yaml is one apply: none of it
}

TEST_F(ManifestsFolderTest, ARemovedFileDeletesOnlyWhatItStillOwns) {
    put("shop.yaml", ns("shop") + "---\n" + ns("bank"));
    start_folder();
    ASSERT_TRUE(run_until(io, [&] { return has("shop") && has("bank"); }));

    // Someone applies bank over it (membranectl apply): no longer the file's.
    apply_over(ns("bank", "z"));
    // And shop too, from `get -o json`, edited, annotation and all: still changed since.
    auto edited = objects.find(ref("shop"))->document;
    edited["metadata"]["labels"]["team"] = "y";
    apply_over(edited.dump());

    put("other.yaml", ns("other"));
    fs::remove(folder() / "shop.yaml");
    ASSERT_TRUE(run_until(io, [&] { return has("other"); }, std::chrono::seconds(2)));
    io.run_for(std::chrono::milliseconds(300));
    EXPECT_TRUE(has("bank", "z"));
    EXPECT_TRUE(has("shop", "y"));
    EXPECT_THAT(deleted, IsEmpty());
}

TEST_F(ManifestsFolderTest, AnObjectMovedToAnotherFileIsNeverDeleted) {
    put("a.yaml", ns("shop") + "---\n" + ns("bank"));
    start_folder();
    ASSERT_TRUE(run_until(io, [&] { return has("shop") && has("bank"); }));
    // In one checkout: bank leaves a.yaml for b.yaml.
    put("b.yaml", ns("bank", "b"));
    put("a.yaml", ns("shop"));
    ASSERT_TRUE(run_until(io, [&] { return has("bank", "b"); }, std::chrono::seconds(2)));
    io.run_for(std::chrono::milliseconds(300));
    EXPECT_TRUE(has("bank", "b"));
    EXPECT_THAT(deleted, IsEmpty());
    EXPECT_EQ(objects.find(ref("bank"))->document["metadata"]["annotations"][kManifestsFileAnnotation],
              (folder() / "b.yaml").string());
    // Gone with b.yaml now.
    fs::remove(folder() / "b.yaml");
    EXPECT_TRUE(run_until(io, [&] { return !has("bank"); }, std::chrono::seconds(2)));
}

TEST_F(ManifestsFolderTest, AnEarlierFileTakesAnObjectOverAndGivesItBack) {
    put("b.yaml", ns("shop", "b"));
    start_folder();
    ASSERT_TRUE(run_until(io, [&] { return has("shop", "b"); }));
    put("a.yaml", ns("shop", "a"));  // a comes first by name: it keeps shop, b is reported
    const std::string b = (folder() / "b.yaml").string();
    ASSERT_TRUE(run_until(io, [&] { return has("shop", "a") && problems().contains(b); }, std::chrono::seconds(2)));
    EXPECT_THAT(problems()[b], HasSubstr("Namespace shop is also in " + (folder() / "a.yaml").string()));
    fs::remove(folder() / "a.yaml");  // b's again, not deleted
    EXPECT_TRUE(run_until(io, [&] { return has("shop", "b") && problems().empty(); }, std::chrono::seconds(2)));
    EXPECT_THAT(deleted, IsEmpty());
}

TEST_F(ManifestsFolderTest, AnEmptiedFolderDeletesOnlyAfterItStaysEmpty) {
    put("shop.yaml", ns("shop"));
    start_folder();
    ASSERT_TRUE(run_until(io, [&] { return has("shop"); }));
    fs::remove(folder() / "shop.yaml");  // a sync tool emptying the folder before writing it again
    ASSERT_TRUE(run_until(io, [&] { return problems().contains(""); }, std::chrono::seconds(2)));
    EXPECT_THAT(problems()[""], HasSubstr("has no manifest files"));
    put("shop.yaml", ns("shop"));
    EXPECT_TRUE(run_until(io, [&] { return problems().empty(); }, std::chrono::seconds(2)));
    io.run_for(std::chrono::milliseconds(800));  // past the grace
    EXPECT_TRUE(has("shop"));
    EXPECT_THAT(deleted, IsEmpty());

    fs::remove(folder() / "shop.yaml");  // and for good
    EXPECT_TRUE(run_until(io, [&] { return !has("shop"); }, std::chrono::seconds(3)));
}

TEST_F(ManifestsFolderTest, AnUnchangedFileIsNotAppliedAgainAfterARestart) {
    put("shop.yaml", ns("shop"));
    start_folder();
    ASSERT_TRUE(run_until(io, [&] { return has("shop"); }));
    manifests.reset();
    apply_over(ns("shop", "z"));  // while the agent was down, or between changes
    start_folder();
    io.run_for(std::chrono::milliseconds(300));
    EXPECT_TRUE(has("shop", "z"));
    EXPECT_EQ(manifests->status().files_applied, 1u);
    put("shop.yaml", ns("shop", "c"));  // the file changes: applied
    EXPECT_TRUE(run_until(io, [&] { return has("shop", "c"); }, std::chrono::seconds(10)));
}

TEST_F(ManifestsFolderTest, WhatVanishedWhileDownIsDeletedAtStart) {
    put("shop.yaml", ns("shop"));
    put("bank.yaml", ns("bank"));
    start_folder();
    ASSERT_TRUE(run_until(io, [&] { return has("shop") && has("bank"); }));
    manifests.reset();  // the agent stops

    fs::remove(folder() / "bank.yaml");
    start_folder();
    EXPECT_TRUE(run_until(io, [&] { return !has("bank"); }));
    EXPECT_TRUE(has("shop"));
}

TEST_F(ManifestsFolderTest, TheStoreAwayDelaysTheApplyAndItIsTriedAgain) {
    start_folder();
    io.run_for(std::chrono::milliseconds(50));
    store.set_available(false);
    put("shop.yaml", ns("shop"));
    const std::string shop = (folder() / "shop.yaml").string();
    ASSERT_TRUE(run_until(io, [&] { return problems().contains(shop); }, std::chrono::seconds(2)));
    EXPECT_THAT(problems()[shop], HasSubstr("not applied yet"));
    EXPECT_FALSE(has("shop"));

    store.set_available(true);
    EXPECT_TRUE(run_until(io, [&] { return has("shop") && problems().empty(); }, std::chrono::seconds(2)));
}

TEST_F(ManifestsFolderTest, AVanishedFolderDeletesNothingAndIsWatchedAgainWhenBack) {
    put("shop.yaml", ns("shop"));
    start_folder();
    ASSERT_TRUE(run_until(io, [&] { return has("shop"); }));

    // Removed (a remount, a checkout being replaced): its objects stay.
    fs::remove_all(folder());
    ASSERT_TRUE(run_until(io, [&] { return problems().contains(""); }, std::chrono::seconds(2)));
    EXPECT_THAT(problems()[""], HasSubstr("cannot read the folder"));
    io.run_for(std::chrono::milliseconds(300));
    EXPECT_TRUE(has("shop"));

    // Back: no event tells (the watch went with the old folder); it is read
    // again every retry period while missing, and watched again.
    fs::create_directories(folder());
    put("shop.yaml", ns("shop"));
    put("bank.yaml", ns("bank"));
    ASSERT_TRUE(run_until(io, [&] { return has("bank") && problems().empty(); }, std::chrono::seconds(3)));
    put("more.yaml", ns("more"));
    EXPECT_TRUE(run_until(io, [&] { return has("more"); }, std::chrono::seconds(2)));
    EXPECT_TRUE(has("shop"));
}

}  // namespace
}  // namespace membrane::kernel::test
