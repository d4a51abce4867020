// Identities: the same labels give the same number, across restarts; the
// reserved ones are listed; endpoints are counted; a corrupt record is refused
// and a crash mid-write leaves the old one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

extern "C" {
#include "membrane/contract.h"
}
#include "config/agent_config.hpp"
#include "model/local_identity_allocator.hpp"
#include "state/crash_midway.hpp"
#include "state/state_file.hpp"
#include "support/state_folder.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;

boost::asio::io_context io;  // prepare() posts to it; these tests only acquire
const std::vector<std::string> kExcluded = IdentitySettings{}.exclude_labels;  // the defaults
const Labels kWeb{{"app", "web"}, {"tier", "front"}};
const Labels kDb{{"app", "db"}};

TEST(LocalIdentityAllocator, SameLabelsSameNumberFromTheFirstAllocated) {
    StateFolder state;
    LocalIdentityAllocator identities(io, state / "identities.json", kExcluded);
    const auto web = identities.acquire(kWeb);
    EXPECT_EQ(web, static_cast<std::uint32_t>(MBR_IDENTITY_FIRST_ALLOCATED));
    EXPECT_EQ(identities.acquire(Labels{{"tier", "front"}, {"app", "web"}}), web) << "order of insertion is irrelevant";
    const auto db = identities.acquire(kDb);
    EXPECT_EQ(db, web + 1);
    EXPECT_EQ(identities.find(kDb), db);
    EXPECT_FALSE(identities.find(Labels{{"app", "other"}}));
}

// Two replicas of a deployment, as membrane-cni labels them: only the pod
// name and the hash of their template tell them apart.
Labels replica(const std::string& name, const std::string& ns = "default") {
    return Labels{{"k8s:app", "web"},
                  {"k8s:io.kubernetes.pod.namespace", ns},
                  {"k8s:io.kubernetes.pod.name", name},
                  {"k8s:pod-template-hash", "5d4f" + name}};
}

TEST(LocalIdentityAllocator, ReplicasDifferingOnlyInPodNameAndHashShareOneIdentity) {
    StateFolder state;
    LocalIdentityAllocator identities(io, state / "identities.json", kExcluded);
    const auto web = identities.acquire(replica("web"));
    EXPECT_EQ(identities.acquire(replica("web2")), web);
    EXPECT_EQ(identities.find(replica("web3")), web) << "found by its identity-relevant labels";
    const auto list = identities.list();
    ASSERT_EQ(list.back().id, web);
    EXPECT_EQ(list.back().labels, (Labels{{"k8s:app", "web"}, {"k8s:io.kubernetes.pod.namespace", "default"}}))
        << "the identity holds the relevant labels only";
    EXPECT_EQ(list.back().endpoints, 2u);
}

TEST(LocalIdentityAllocator, EveryDefaultExclusionIsLeftOutWithOrWithoutASource) {
    StateFolder state;
    LocalIdentityAllocator identities(io, state / "identities.json", kExcluded);
    const auto web = identities.acquire(Labels{{"app", "web"}});
    for (const auto& key : kExcluded) {
        EXPECT_EQ(identities.acquire(Labels{{"app", "web"}, {key, "x"}}), web) << key;
        EXPECT_EQ(identities.acquire(Labels{{"app", "web"}, {"k8s:" + key, "x"}}), web) << "k8s:" << key;
    }
    EXPECT_NE(identities.acquire(Labels{{"app", "web"}, {"k8s:io.kubernetes.pod.name.other", "x"}}), web)
        << "a key that only starts like an excluded one stays";
}

TEST(LocalIdentityAllocator, ANamespaceDifferenceGivesTwoIdentities) {
    StateFolder state;
    LocalIdentityAllocator identities(io, state / "identities.json", kExcluded);
    EXPECT_NE(identities.acquire(replica("web", "default")), identities.acquire(replica("web", "prod")));
}

TEST(LocalIdentityAllocator, AConfiguredExclusionListReplacesTheDefaults) {
    StateFolder state;
    LocalIdentityAllocator identities(io, state / "identities.json", {"k8s:version"});
    const Labels v1{{"k8s:app", "web"}, {"k8s:version", "1"}, {"pod-template-hash", "a"}};
    const Labels v2{{"k8s:app", "web"}, {"k8s:version", "2"}, {"pod-template-hash", "a"}};
    const Labels other_hash{{"k8s:app", "web"}, {"k8s:version", "2"}, {"pod-template-hash", "b"}};
    const Labels other_source{{"k8s:app", "web"}, {"version", "2"}, {"pod-template-hash", "a"}};
    const auto web = identities.acquire(v1);
    EXPECT_EQ(identities.acquire(v2), web) << "k8s:version is excluded";
    EXPECT_NE(identities.acquire(other_hash), web) << "pod-template-hash is no longer excluded";
    EXPECT_NE(identities.acquire(other_source), web) << "a sourced entry does not match another source";
    LocalIdentityAllocator nothing_excluded(io, state / "other.json", {});
    EXPECT_NE(nothing_excluded.acquire(replica("web")), nothing_excluded.acquire(replica("web2")));
}

TEST(LocalIdentityAllocator, ARecordKeyedByFullLabelSetsIsBroughtInLineOnLoad) {
    // What an agent before the filter wrote for web and web2 (and an unrelated db).
    StateFolder state;
    {
        LocalIdentityAllocator before(io, state / "identities.json", {});
        ASSERT_EQ(before.acquire(replica("web")), 256u);
        ASSERT_EQ(before.acquire(Labels{{"k8s:app", "db"}}), 257u);
        ASSERT_EQ(before.acquire(replica("web2")), 258u);
    }
    LocalIdentityAllocator upgraded(io, state / "identities.json", kExcluded);
    EXPECT_EQ(upgraded.acquire(replica("web2")), 256u) << "the lowest number of the merged label sets";
    EXPECT_EQ(upgraded.acquire(replica("web")), 256u);
    EXPECT_EQ(upgraded.acquire(Labels{{"k8s:app", "db"}}), 257u);
    EXPECT_THAT(upgraded.retired_at_load(), ::testing::ElementsAre(258u));
    EXPECT_EQ(upgraded.acquire(Labels{{"k8s:app", "new"}}), 259u) << "a retired number is never handed out again";
    LocalIdentityAllocator again(io, state / "identities.json", kExcluded);
    EXPECT_TRUE(again.retired_at_load().empty()) << "the record was rewritten in line";
    EXPECT_EQ(again.list().size(), 4u + 3u);
}

TEST(LocalIdentityAllocator, NumbersSurviveARestartAndAreNeverReused) {
    StateFolder state;
    std::uint32_t web = 0;
    std::uint32_t db = 0;
    {
        LocalIdentityAllocator identities(io, state / "identities.json", kExcluded);
        web = identities.acquire(kWeb);
        db = identities.acquire(kDb);
        identities.release(web);  // unused now, but kept
    }
    LocalIdentityAllocator restarted(io, state / "identities.json", kExcluded);
    EXPECT_EQ(restarted.acquire(kDb), db);
    EXPECT_EQ(restarted.acquire(kWeb), web);
    EXPECT_EQ(restarted.acquire(Labels{{"app", "new"}}), db + 1);
}

TEST(LocalIdentityAllocator, ReservedIdentitiesAreListedAndCannotBeAcquired) {
    StateFolder state;
    LocalIdentityAllocator identities(io, state / "identities.json", kExcluded);
    const auto list = identities.list();
    ASSERT_GE(list.size(), 4u);
    EXPECT_EQ(list[0].id, static_cast<std::uint32_t>(MBR_IDENTITY_HOST));
    EXPECT_EQ(list[0].labels, (Labels{{"reserved", "host"}}));
    EXPECT_TRUE(list[0].reserved);
    EXPECT_EQ(list[1].labels, (Labels{{"reserved", "world"}}));
    EXPECT_EQ(list[2].labels, (Labels{{"reserved", "unmanaged"}}));
    EXPECT_EQ(list[3].id, static_cast<std::uint32_t>(MBR_IDENTITY_REMOTE_NODE));
    EXPECT_EQ(list[3].labels, (Labels{{"reserved", "remote-node"}}));
    EXPECT_THROW(identities.acquire(Labels{{"reserved", "host"}}), std::invalid_argument);
    EXPECT_THROW(identities.acquire(Labels{{"bad key", "x"}}), std::invalid_argument);
    EXPECT_THROW(identities.acquire(Labels{{"k", "a,b"}}), std::invalid_argument);
    EXPECT_GE(identities.acquire(Labels{{"k8s:io.kubernetes.pod.namespace", "default"}}),
              static_cast<std::uint32_t>(MBR_IDENTITY_FIRST_ALLOCATED))
        << "source-prefixed keys, as membrane-cni sends them";
}

TEST(LocalIdentityAllocator, PrepareAnswersOnTheLoopAndNamesBadLabels) {
    StateFolder state;
    boost::asio::io_context loop;
    LocalIdentityAllocator identities(loop, state / "identities.json", kExcluded);
    std::vector<std::optional<IdentityProblem>> answers;
    identities.prepare(kWeb, [&](std::optional<IdentityProblem> problem) { answers.push_back(std::move(problem)); });
    identities.prepare(Labels{{"reserved", "host"}}, [&](std::optional<IdentityProblem> problem) {
        answers.push_back(std::move(problem));
    });
    EXPECT_TRUE(answers.empty()) << "never inside the call";
    loop.run();
    ASSERT_EQ(answers.size(), 2u);
    EXPECT_FALSE(answers[0].has_value());
    ASSERT_TRUE(answers[1].has_value());
    EXPECT_FALSE(answers[1]->transient) << "bad labels stay bad";
    EXPECT_THAT(answers[1]->message, HasSubstr("'reserved'"));
}

TEST(LocalIdentityAllocator, CountsTheEndpointsOfEachIdentity) {
    StateFolder state;
    LocalIdentityAllocator identities(io, state / "identities.json", kExcluded);
    const auto web = identities.acquire(kWeb);
    identities.acquire(kWeb);
    const auto db = identities.acquire(kDb);
    auto count = [&](std::uint32_t id) {
        for (const auto& identity : identities.list()) {
            if (identity.id == id) return identity.endpoints;
        }
        return 999u;
    };
    EXPECT_EQ(count(web), 2u);
    EXPECT_EQ(count(db), 1u);
    identities.release(web);
    identities.release(db);
    identities.release(db);  // no underflow
    EXPECT_EQ(count(web), 1u);
    EXPECT_EQ(count(db), 0u) << "unused, still listed";
    identities.release(12345);  // unknown: nothing
}

TEST(LocalIdentityAllocator, ACorruptRecordIsRefusedByName) {
    StateFolder state;
    state.write("identities.json", "{\"format\": 1, \"next\": 2");
    try {
        LocalIdentityAllocator identities(io, state / "identities.json", kExcluded);
        FAIL() << "no StateError";
    } catch (const StateError& e) {
        EXPECT_THAT(e.what(), HasSubstr((state / "identities.json").string() + ": not valid JSON"));
    }
    state.write("identities.json", R"({"format": 1, "next": 300, "identities": [{"id": 7, "labels": {}}]})");
    EXPECT_THROW({ LocalIdentityAllocator identities(io, state / "identities.json", kExcluded); }, StateError);
    state.write("identities.json", R"({"format": 1, "next": 300, "identities": [{"id": "x"}]})");
    EXPECT_THROW({ LocalIdentityAllocator identities(io, state / "identities.json", kExcluded); }, StateError);
}

TEST(LocalIdentityAllocator, ACrashWhileANewIdentityIsRecordedLeavesTheOldRecord) {
    StateFolder state;
    LocalIdentityAllocator identities(io, state / "identities.json", kExcluded);
    const auto web = identities.acquire(kWeb);

    ASSERT_EQ(crash_midway([&] { identities.acquire(kDb); }), kCrashedMidway) << "the agent died mid-write";

    LocalIdentityAllocator restarted(io, state / "identities.json", kExcluded);  // no StateError: the old record is whole
    EXPECT_EQ(restarted.find(kWeb), web);
    EXPECT_FALSE(restarted.find(kDb)) << "the number was never handed out";
    EXPECT_EQ(restarted.acquire(kDb), web + 1);
}

}  // namespace
}  // namespace membrane::kernel::test
