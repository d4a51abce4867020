// ObjectsFile (cluster/objects_file.hpp): the objects on disk are the
// snapshot with the journal's changes on top, however the writes were cut.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "cluster/objects_file.hpp"
#include "state/crash_midway.hpp"
#include "state/state_file.hpp"
#include "support/state_folder.hpp"
#include "support/test_cluster_keys.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;

nlohmann::json doc(const std::string& name, int version = 1) { return {{"name", name}, {"version", version}}; }

std::string key(const std::string& name) { return kKeys.objects() + "Namespace/" + name; }

// rewrite() with the documents given as JSON values.
void rewrite(ObjectsFile& file, const std::map<std::string, nlohmann::json>& documents) {
    std::vector<std::string> texts;
    for (const auto& [key, document] : documents) texts.push_back(document.dump());
    std::vector<std::pair<std::string_view, std::string_view>> views;
    std::size_t i = 0;
    for (const auto& [key, document] : documents) views.emplace_back(key, texts[i++]);
    file.rewrite(views);
}

std::map<std::string, nlohmann::json> on_disk(const std::filesystem::path& file) {
    return ObjectsFile(file, kKeys, "objects").read().documents;
}

TEST(ObjectsFile, TheJournalsChangesComeOnTopOfTheSnapshot) {
    StateFolder state;
    const auto file = state / "objects.json";
    ObjectsFile objects(file, kKeys, "objects");
    EXPECT_FALSE(objects.read().found);
    const auto a = doc("a");
    const auto b = doc("b");
    rewrite(objects, {{key("a"), a}, {key("b"), b}});
    const auto a2 = doc("a", 2);
    const auto c = doc("c");
    objects.append({{key("a"), &a2}, {key("c"), &c}}, {});
    objects.append({}, {key("b")});
    EXPECT_TRUE(std::filesystem::exists(objects.journal_path()));
    const auto read = ObjectsFile(file, kKeys, "objects").read();
    EXPECT_TRUE(read.found);
    EXPECT_FALSE(read.torn_tail);
    EXPECT_EQ(read.documents, (std::map<std::string, nlohmann::json>{{key("a"), a2}, {key("c"), c}}));

    // A rewrite takes all into the snapshot and empties the journal.
    rewrite(objects, {{key("a"), a2}, {key("c"), c}});
    EXPECT_FALSE(std::filesystem::exists(objects.journal_path()));
    EXPECT_EQ(objects.journal_bytes(), 0u);
    EXPECT_EQ(on_disk(file), read.documents);
}

TEST(ObjectsFile, ACrashBetweenTheSnapshotAndTheJournalsRemovalChangesNothing) {
    StateFolder state;
    const auto file = state / "objects.json";
    ObjectsFile objects(file, kKeys, "objects");
    const auto a = doc("a");
    const auto a2 = doc("a", 2);
    const auto b = doc("b");
    objects.append({{key("a"), &a}, {key("b"), &b}}, {});
    objects.append({{key("a"), &a2}}, {key("b")});
    const auto journal = objects.journal_path();
    const auto kept = journal.string() + ".kept";
    std::filesystem::copy_file(journal, kept);
    rewrite(objects, {{key("a"), a2}});
    // As if the agent died after the snapshot's rename, before the unlink.
    std::filesystem::rename(kept, journal);
    EXPECT_EQ(on_disk(file), (std::map<std::string, nlohmann::json>{{key("a"), a2}})) << "the old lines change nothing";
}

TEST(ObjectsFile, ACrashMidAppendDropsThatChangeOnlyAndSaysSo) {
    StateFolder state;
    const auto file = state / "objects.json";
    ObjectsFile objects(file, kKeys, "objects");
    const auto a = doc("a");
    objects.append({{key("a"), &a}}, {});
    nlohmann::json big = doc("b");
    for (int i = 0; i < 1000; ++i) big["padding"].push_back(i);
    ASSERT_EQ(crash_midway([&] { objects.append({{key("b"), &big}}, {}); }), kCrashedMidway);
    const auto read = ObjectsFile(file, kKeys, "objects").read();
    EXPECT_TRUE(read.torn_tail);
    EXPECT_EQ(read.documents, (std::map<std::string, nlohmann::json>{{key("a"), a}}));
}

TEST(ObjectsFile, AJournalOfAnotherClusterIsACorruptRecord) {
    StateFolder state;
    const auto file = state / "objects.json";
    const auto a = doc("a");
    ObjectsFile(file, ClusterKeys("other"), "objects").append({{key("a"), &a}}, {});
    try {
        ObjectsFile(file, kKeys, "objects").read();
        FAIL() << "no StateError";
    } catch (const StateError& e) {
        EXPECT_THAT(e.what(), HasSubstr("objects.json.journal: line 1: not a change of " + kKeys.root()));
    }
}

TEST(ObjectsFile, TheJournalAsksForARewriteOnceItOutgrowsTheSnapshot) {
    StateFolder state;
    const auto file = state / "objects.json";
    ObjectsFile objects(file, kKeys, "objects");
    nlohmann::json big = doc("big");
    big["padding"] = std::string(100 * 1024, 'x');
    rewrite(objects, {{key("big"), big}});
    int appends = 0;
    while (!objects.needs_rewrite() && appends < 100) {
        objects.append({{key("big"), &big}}, {});
        ++appends;
    }
    // A floor of 256 KiB: the third 100 KiB change asks (the snapshot is smaller).
    EXPECT_EQ(appends, 3);
    rewrite(objects, {{key("big"), big}});
    EXPECT_FALSE(objects.needs_rewrite());
}

}  // namespace
}  // namespace membrane::kernel::test
