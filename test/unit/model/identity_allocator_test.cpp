// Identities: the same labels give the same number, across restarts; the
// reserved ones are listed; endpoints are counted; a corrupt record is refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

extern "C" {
#include "membrane/contract.h"
}
#include "model/identity_allocator.hpp"
#include "model/state_file.hpp"
#include "state_folder.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;

const Labels kWeb{{"app", "web"}, {"tier", "front"}};
const Labels kDb{{"app", "db"}};

TEST(IdentityAllocator, SameLabelsSameNumberFromTheFirstAllocated) {
    StateFolder state;
    IdentityAllocator identities(state / "identities.json");
    const auto web = identities.acquire(kWeb);
    EXPECT_EQ(web, static_cast<std::uint32_t>(MBR_IDENTITY_FIRST_ALLOCATED));
    EXPECT_EQ(identities.acquire(Labels{{"tier", "front"}, {"app", "web"}}), web) << "order of insertion is irrelevant";
    const auto db = identities.acquire(kDb);
    EXPECT_EQ(db, web + 1);
    EXPECT_EQ(identities.find(kDb), db);
    EXPECT_FALSE(identities.find(Labels{{"app", "other"}}));
}

TEST(IdentityAllocator, NumbersSurviveARestartAndAreNeverReused) {
    StateFolder state;
    std::uint32_t web = 0;
    std::uint32_t db = 0;
    {
        IdentityAllocator identities(state / "identities.json");
        web = identities.acquire(kWeb);
        db = identities.acquire(kDb);
        identities.release(web);  // unused now, but kept
    }
    IdentityAllocator restarted(state / "identities.json");
    EXPECT_EQ(restarted.acquire(kDb), db);
    EXPECT_EQ(restarted.acquire(kWeb), web);
    EXPECT_EQ(restarted.acquire(Labels{{"app", "new"}}), db + 1);
}

TEST(IdentityAllocator, ReservedIdentitiesAreListedAndCannotBeAcquired) {
    StateFolder state;
    IdentityAllocator identities(state / "identities.json");
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

TEST(IdentityAllocator, CountsTheEndpointsOfEachIdentity) {
    StateFolder state;
    IdentityAllocator identities(state / "identities.json");
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

TEST(IdentityAllocator, ACorruptRecordIsRefusedByName) {
    StateFolder state;
    state.write("identities.json", "{\"format\": 1, \"next\": 2");
    try {
        IdentityAllocator identities(state / "identities.json");
        FAIL() << "no StateError";
    } catch (const StateError& e) {
        EXPECT_THAT(e.what(), HasSubstr((state / "identities.json").string() + ": not valid JSON"));
    }
    state.write("identities.json", R"({"format": 1, "next": 300, "identities": [{"id": 7, "labels": {}}]})");
    EXPECT_THROW({ IdentityAllocator identities(state / "identities.json"); }, StateError);
    state.write("identities.json", R"({"format": 1, "next": 300, "identities": [{"id": "x"}]})");
    EXPECT_THROW({ IdentityAllocator identities(state / "identities.json"); }, StateError);
}

TEST(IdentityAllocator, TheRecordIsReplacedAtomically) {
    StateFolder state;
    IdentityAllocator identities(state / "identities.json");
    identities.acquire(kWeb);
    EXPECT_TRUE(std::filesystem::exists(state / "identities.json"));
    EXPECT_FALSE(std::filesystem::exists(state / "identities.json.tmp")) << "no temporary file left behind";
}

}  // namespace
}  // namespace membrane::kernel::test
