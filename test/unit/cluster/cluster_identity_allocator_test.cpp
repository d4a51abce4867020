// Cluster-wide identities over the in-memory store (the etcd semantics;
// test/integration/etcd runs the races against a real etcd): several nodes,
// each with its own lease and allocator, on one store.
#include <gmock/gmock.h>
#include <gtest/gtest.h>


#include "cluster/cluster_identity_allocator.hpp"
#include "config/agent_config.hpp"
#include "state/state_file.hpp"
#include "store/memory_store.hpp"
#include "store/store_test_support.hpp"
#include "support/state_folder.hpp"
#include "support/quiet_logger.hpp"
#include "support/test_cluster_keys.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;
using testing::run_until;
using testing::SyncStore;
using namespace std::chrono_literals;

constexpr std::uint32_t kFirst = 1u << 16 | 256;  // cluster id 1, first allocated
const Labels kWeb{{"k8s:app", "web"}, {"k8s:io.kubernetes.pod.namespace", "default"}};
const Labels kDb{{"k8s:app", "db"}, {"k8s:io.kubernetes.pod.namespace", "default"}};

class ClusterIdentityTest : public ::testing::Test {
protected:
    struct Node {
        Node(boost::asio::io_context& io, Store& store, const std::string& name, const std::filesystem::path& cache,
             std::chrono::milliseconds grace)
            : lease(io, store, 30s, quiet_logger()),
              identities(io, store, lease, kKeys,
                         ClusterIdentityOptions{name, 1, IdentitySettings{}.exclude_labels, cache, grace, 20ms},
                         quiet_logger()) {}
        // As the agent does, after the endpoints took their identities again.
        void start() {
            identities.start();
            lease.start();
        }
        NodeLease lease;
        ClusterIdentityAllocator identities;
    };

    ClusterIdentityTest() { store.start(); }

    std::unique_ptr<Node> node(const std::string& name, std::chrono::milliseconds grace = 15min) {
        auto made = std::make_unique<Node>(io, store, name, state / (name + "-identities.json"), grace);
        made->start();
        EXPECT_TRUE(run_until(io, [&] { return made->lease.id() != 0; })) << name << " got no lease";
        return made;
    }

    std::optional<IdentityProblem> prepare(Node& n, const Labels& labels) {
        std::optional<std::optional<IdentityProblem>> answer;
        n.identities.prepare(labels, [&](std::optional<IdentityProblem> problem) { answer = std::move(problem); });
        EXPECT_TRUE(run_until(io, [&] { return answer.has_value(); })) << "prepare never answered";
        return answer.value_or(IdentityProblem{false, "no answer"});
    }

    std::uint32_t take(Node& n, const Labels& labels) {
        EXPECT_FALSE(prepare(n, labels).has_value());
        return n.identities.acquire(labels);
    }

    bool has(const std::string& key) { return !sync.get(key).value.kvs.empty(); }
    LeaseId lease_of(const std::string& key) {
        const auto kvs = sync.get(key).value.kvs;
        return kvs.empty() ? 0 : kvs.front().lease;
    }

    StateFolder state;
    boost::asio::io_context io;
    MemoryStore store{io};
    SyncStore sync{io, store};
};

TEST_F(ClusterIdentityTest, SameLabelsSameNumberOnEveryNodeWhateverTheOrder) {
    auto n1 = node("n1");
    auto n2 = node("n2");
    const auto web = take(*n1, kWeb);
    const auto db = take(*n1, kDb);
    EXPECT_EQ(web, kFirst) << "cluster id 1 in the top bits, the first allocated number below";
    EXPECT_EQ(db, kFirst + 1);
    EXPECT_EQ(take(*n2, kDb), db) << "n2 asks in the other order";
    EXPECT_EQ(take(*n2, kWeb), web);
    EXPECT_EQ(sync.get(kKeys.identity_by_labels(kWeb)).value.kvs.at(0).value, std::to_string(web));
    EXPECT_THAT(sync.get(kKeys.identity(web)).value.kvs.at(0).value, HasSubstr("\"k8s:app\":\"web\""));
}

// Every node hears of an identity once, wherever it was allocated, and of
// its removal from the store (events::IdentityAdded/IdentityRemoved).
TEST_F(ClusterIdentityTest, EveryNodeIsToldOfEachIdentityOnceAndOfItsRemoval) {
    auto n1 = node("n1");
    auto n2 = node("n2");
    std::vector<std::pair<std::uint32_t, bool>> told;
    n2->identities.observe([&](const IdentityInfo& identity, bool known) {
        told.emplace_back(identity.id, known);
        EXPECT_EQ(identity.labels, identity.id == kFirst ? kWeb : kDb);
    });
    const auto web = take(*n1, kWeb);
    ASSERT_TRUE(run_until(io, [&] { return !told.empty(); })) << "n2 was not told of n1's identity";
    EXPECT_EQ(take(*n2, kWeb), web);
    take(*n1, kDb);
    ASSERT_TRUE(run_until(io, [&] { return told.size() == 2; }));
    EXPECT_EQ(told, (std::vector<std::pair<std::uint32_t, bool>>{{web, true}, {web + 1, true}})) << "once each";
    sync.erase(kKeys.identity(web + 1));
    ASSERT_TRUE(run_until(io, [&] { return told.size() == 3; })) << "n2 was not told of the removal";
    EXPECT_EQ(told.back(), std::make_pair(web + 1, false));
}

// A restarted node knows the cluster's identities from its cache before the
// store answers (policy peers do not vanish meanwhile); the store's view
// then replaces the cache's.
TEST_F(ClusterIdentityTest, ARestartedNodeKnowsTheClustersIdentitiesBeforeTheStoreAnswers) {
    auto n1 = node("n1");
    auto n2 = node("n2");
    const auto web = take(*n1, kWeb);
    ASSERT_TRUE(run_until(io, [&] { return n2->identities.find(kWeb).has_value(); }));
    const auto db = take(*n2, kDb);
    n2.reset();
    // Not started: no watch, nothing asked of the store yet.
    NodeLease lease(io, store, 30s, quiet_logger());
    ClusterIdentityAllocator restarted(io, store, lease, kKeys,
                                       ClusterIdentityOptions{"n2", 1, IdentitySettings{}.exclude_labels,
                                                              state / "n2-identities.json", 15min, 20ms},
                                       quiet_logger());
    EXPECT_EQ(restarted.find(kWeb), web) << "n1's identity, known to n2 before its restart";
    EXPECT_EQ(restarted.find(kDb), db);
    // n1's identity is not n2's to hold: it takes no reference for it.
    sync.erase(kKeys.identity(web));
    restarted.start();
    lease.start();
    ASSERT_TRUE(run_until(io, [&] { return !restarted.find(kWeb).has_value(); }))
        << "the store's view did not replace the cache's";
    EXPECT_EQ(restarted.find(kDb), db);
}

TEST_F(ClusterIdentityTest, NodesRacingForOneLabelSetAgreeOnOneNumber) {
    auto n1 = node("n1");
    auto n2 = node("n2");
    auto n3 = node("n3");
    std::vector<std::optional<IdentityProblem>> answers;
    for (Node* n : {n1.get(), n2.get(), n3.get()}) {
        n->identities.prepare(kWeb, [&](std::optional<IdentityProblem> problem) { answers.push_back(problem); });
    }
    ASSERT_TRUE(run_until(io, [&] { return answers.size() == 3; }));
    for (const auto& answer : answers) EXPECT_FALSE(answer.has_value());
    const auto web = n1->identities.acquire(kWeb);
    EXPECT_EQ(n2->identities.acquire(kWeb), web);
    EXPECT_EQ(n3->identities.acquire(kWeb), web);
    EXPECT_EQ(sync.range(kKeys.identity_ids()).value.kvs.size(), 1u) << "one identity record, not three";
}

TEST_F(ClusterIdentityTest, NodesRacingForDifferentLabelSetsGetDifferentNumbers) {
    auto n1 = node("n1");
    auto n2 = node("n2");
    int answered = 0;
    n1->identities.prepare(kWeb, [&](std::optional<IdentityProblem> problem) { answered += !problem; });
    n2->identities.prepare(kDb, [&](std::optional<IdentityProblem> problem) { answered += !problem; });
    ASSERT_TRUE(run_until(io, [&] { return answered == 2; }));
    const auto web = n1->identities.acquire(kWeb);
    const auto db = n2->identities.acquire(kDb);
    EXPECT_NE(web, db) << "both read the same counter; the loser must read again";
    EXPECT_EQ(sync.get(kKeys.identity_by_labels(kWeb)).value.kvs.at(0).value, std::to_string(web));
    EXPECT_EQ(sync.get(kKeys.identity_by_labels(kDb)).value.kvs.at(0).value, std::to_string(db));
    EXPECT_EQ(sync.range(kKeys.identity_ids()).value.kvs.size(), 2u);
}

TEST_F(ClusterIdentityTest, PodNameAndHashLabelsDoNotMakeAnIdentity) {
    auto n1 = node("n1");
    auto n2 = node("n2");
    Labels a = kWeb;
    a["k8s:io.kubernetes.pod.name"] = "web-1";
    a["k8s:pod-template-hash"] = "abc";
    Labels b = kWeb;
    b["k8s:io.kubernetes.pod.name"] = "web-2";
    EXPECT_EQ(take(*n1, a), take(*n2, b));
    EXPECT_FALSE(has(kKeys.identity_by_labels(a)));
    EXPECT_TRUE(has(kKeys.identity_by_labels(kWeb)));
}

TEST_F(ClusterIdentityTest, EachUsingNodeHoldsAReferenceUnderItsLease) {
    auto n1 = node("n1");
    auto n2 = node("n2");
    const auto web = take(*n1, kWeb);
    take(*n2, kWeb);
    take(*n1, kWeb);  // a second endpoint: still one reference
    ASSERT_TRUE(run_until(io, [&] { return has(kKeys.identity_ref(web, "n1")) && has(kKeys.identity_ref(web, "n2")); }));
    EXPECT_EQ(lease_of(kKeys.identity_ref(web, "n1")), n1->lease.id());
    EXPECT_EQ(lease_of(kKeys.identity_ref(web, "n2")), n2->lease.id());
    n1->identities.release(web);
    io.restart();
    io.run_for(100ms);
    EXPECT_TRUE(has(kKeys.identity_ref(web, "n1"))) << "n1 has one endpoint left on it";
    n1->identities.release(web);
    EXPECT_TRUE(run_until(io, [&] { return !has(kKeys.identity_ref(web, "n1")); }));
    EXPECT_TRUE(has(kKeys.identity_ref(web, "n2")));
}

TEST_F(ClusterIdentityTest, AnIdentityNobodyUsesIsReleasedAfterTheGraceAndItsNumberNotReused) {
    auto n1 = node("n1", 300ms);
    auto n2 = node("n2", 300ms);
    const auto web = take(*n1, kWeb);
    const auto db = take(*n2, kDb);
    n1->identities.release(web);
    ASSERT_TRUE(run_until(io, [&] { return !has(kKeys.identity(web)); }, 3s)) << "never released";
    EXPECT_FALSE(has(kKeys.identity_by_labels(kWeb)));
    EXPECT_TRUE(has(kKeys.identity(db))) << "n2 still uses db";
    io.restart();
    io.run_for(400ms);  // past the grace again
    EXPECT_TRUE(has(kKeys.identity(db)));
    // The counter goes on: the released number is not handed out again.
    EXPECT_EQ(take(*n1, kWeb), db + 1);
}

TEST_F(ClusterIdentityTest, AnIdentityUsedAgainWithinTheGraceIsKept) {
    auto n1 = node("n1", 500ms);
    const auto web = take(*n1, kWeb);
    n1->identities.release(web);
    io.restart();
    io.run_for(200ms);
    EXPECT_EQ(take(*n1, kWeb), web);
    io.restart();
    io.run_for(700ms);
    EXPECT_TRUE(has(kKeys.identity(web)));
}

TEST_F(ClusterIdentityTest, WhileTheStoreIsAwayKnownIdentitiesStayAndNewOnesWaitWithTheReason) {
    auto n1 = node("n1");
    const auto web = take(*n1, kWeb);
    store.set_available(false);
    EXPECT_FALSE(prepare(*n1, kWeb).has_value());
    EXPECT_EQ(n1->identities.acquire(kWeb), web);
    const auto problem = prepare(*n1, kDb);
    ASSERT_TRUE(problem.has_value());
    EXPECT_TRUE(problem->transient) << "the store away: try again later";
    EXPECT_THAT(problem->message, HasSubstr("no cluster-wide identity for k8s:app=db"));
    EXPECT_THAT(problem->message, HasSubstr("the kvstore did not answer"));
    EXPECT_THROW(n1->identities.acquire(kDb), StateError);
}

TEST_F(ClusterIdentityTest, ARestartWithTheStoreAwayKeepsTheNumbersFromTheCache) {
    std::uint32_t web = 0;
    {
        auto n1 = node("n1");
        web = take(*n1, kWeb);
        take(*n1, kDb);
        n1->identities.release(web + 1);  // db: no longer used here, still the cluster's
    }
    store.set_available(false);
    Node again(io, store, "n1", state / "n1-identities.json", 15min);
    EXPECT_EQ(again.identities.acquire(kWeb), web) << "without a store, from the cache";
    EXPECT_EQ(again.identities.acquire(kDb), web + 1) << "the cluster's identities are cached too";
    EXPECT_THROW(again.identities.acquire(Labels{{"k8s:app", "new"}}), StateError) << "never seen: needs the store";
    again.start();
    store.set_available(true);
    EXPECT_EQ(again.identities.acquire(kWeb), web);
}

TEST_F(ClusterIdentityTest, AnExpiredLeaseIsReplacedAndTheReferencesWrittenAgain) {
    auto n1 = node("n1");
    const auto web = take(*n1, kWeb);
    ASSERT_TRUE(run_until(io, [&] { return has(kKeys.identity_ref(web, "n1")); }));
    const auto first = n1->lease.id();
    store.expire_lease(first);
    ASSERT_TRUE(run_until(io, [&] { return n1->lease.id() != 0 && n1->lease.id() != first; }));
    ASSERT_TRUE(run_until(io, [&] { return lease_of(kKeys.identity_ref(web, "n1")) == n1->lease.id(); }));
}

TEST_F(ClusterIdentityTest, AnIdentityDeletedWhileInUseIsTakenBackWithItsNumber) {
    auto n1 = node("n1");
    const auto web = take(*n1, kWeb);
    ASSERT_TRUE(run_until(io, [&] { return has(kKeys.identity_ref(web, "n1")); }));
    sync.txn(Txn{{}, {TxnOp::erase_prefix(kKeys.identities())}, {}});  // an operator's mistake
    ASSERT_TRUE(run_until(io, [&] { return has(kKeys.identity(web)) && has(kKeys.identity_ref(web, "n1")); }));
    EXPECT_EQ(sync.get(kKeys.identity_by_labels(kWeb)).value.kvs.at(0).value, std::to_string(web));
}

TEST_F(ClusterIdentityTest, TheCounterWrapsAndSkipsNumbersInUse) {
    auto n1 = node("n1");
    EXPECT_EQ(take(*n1, kWeb), kFirst);
    sync.put(kKeys.identity_counter(), std::to_string(1u << 16 | 0xFFFF));
    EXPECT_EQ(take(*n1, kDb), 1u << 16 | 0xFFFF);
    EXPECT_EQ(take(*n1, Labels{{"k8s:app", "cache"}}), kFirst + 1) << "after the last number, the first free one";
}

TEST_F(ClusterIdentityTest, ACacheOfAnotherClusterIsRefusedByName) {
    state.write("n1-identities.json", R"({"format":1,"root":"membrane/v1/other/","identities":[]})");
    MemoryStore other(io);
    NodeLease lease(io, other, 30s, quiet_logger());
    EXPECT_THROW(
        {
            try {
                ClusterIdentityAllocator ids(io, other, lease, kKeys,
                                             ClusterIdentityOptions{"n1", 1, {}, state / "n1-identities.json"}, quiet_logger());
            } catch (const StateError& e) {
                EXPECT_THAT(e.what(), HasSubstr("membrane/v1/other/"));
                throw;
            }
        },
        StateError);
}

}  // namespace
}  // namespace membrane::kernel::test
