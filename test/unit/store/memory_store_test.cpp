// MemoryStore: etcd's semantics kept in this process (revisions, prefix
// ranges, transactions, watches with history and resync, leases), which the
// static mode and the model's tests rely on.
#include <gtest/gtest.h>

#include "store/memory_store.hpp"
#include "store_test_support.hpp"

namespace membrane::kernel {
namespace {

using namespace std::chrono_literals;
using testing::Recorder;
using testing::run_until;
using testing::SyncStore;

struct MemoryStoreTest : ::testing::Test {
    MemoryStoreTest() { store.start(); }
    boost::asio::io_context io;
    MemoryStore store{io};
    SyncStore sync{io, store};
};

TEST(PrefixRangeEnd, RaisesTheLastByte) {
    EXPECT_EQ(prefix_range_end("a/"), "a0");
    EXPECT_EQ(prefix_range_end("a\xff"), "b");
    EXPECT_EQ(prefix_range_end("\xff\xff"), std::string(1, '\0'));
    EXPECT_EQ(prefix_range_end(""), std::string(1, '\0'));
}

TEST_F(MemoryStoreTest, PutRaisesOneRevisionAndKeepsCreateRevision) {
    EXPECT_EQ(store.status().state, StoreState::Connected);
    const auto first = sync.put("k", "1");
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first.value.revision, 2);
    ASSERT_TRUE(sync.put("k", "2").ok());
    const auto got = sync.get("k");
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got.value.kvs.size(), 1u);
    EXPECT_EQ(got.value.kvs[0], (KeyValue{"k", "2", 2, 3, 2, 0}));
    EXPECT_EQ(got.value.revision, 3);
    EXPECT_TRUE(sync.get("missing").value.kvs.empty());
}

TEST_F(MemoryStoreTest, RangeTakesThePrefixOnlySortedByKey) {
    sync.put("a/2", "x");
    sync.put("a/1", "y");
    sync.put("ab", "z");
    sync.put("b/1", "w");
    const auto all = sync.range("a/");
    ASSERT_EQ(all.value.kvs.size(), 2u);
    EXPECT_EQ(all.value.kvs[0].key, "a/1");
    EXPECT_EQ(all.value.kvs[1].key, "a/2");
    EXPECT_EQ(sync.range("").value.kvs.size(), 4u);
    const auto erased = testing::wait_for<WriteResult>(io, [&](auto cb) { store.erase_prefix("a/", std::move(cb)); });
    EXPECT_EQ(erased.value.deleted, 2);
    EXPECT_EQ(sync.range("").value.kvs.size(), 2u);
}

TEST_F(MemoryStoreTest, CreateIfAbsentLetsOneOfTwoWin) {
    auto claim = [&](const std::string& who) {
        return Txn{{Compare::absent("id/labels")}, {TxnOp::put("id/labels", who)}, {TxnOp::get("id/labels")}};
    };
    std::optional<StoreResult<TxnResult>> a;
    std::optional<StoreResult<TxnResult>> b;
    store.txn(claim("a"), [&](auto r) { a = std::move(r); });
    store.txn(claim("b"), [&](auto r) { b = std::move(r); });
    ASSERT_TRUE(run_until(io, [&] { return a && b; }));
    EXPECT_TRUE(a->value.succeeded);
    EXPECT_FALSE(b->value.succeeded);
    ASSERT_EQ(b->value.gets.size(), 1u);
    ASSERT_EQ(b->value.gets[0].size(), 1u);
    EXPECT_EQ(b->value.gets[0][0].value, "a");
}

TEST_F(MemoryStoreTest, CompareAndSwapOnModRevision) {
    const auto written = sync.put("counter", "1").value.revision;
    const auto stale = sync.txn(Txn{{Compare::mod_revision_is("counter", written - 1)}, {TxnOp::put("counter", "2")}, {}});
    EXPECT_FALSE(stale.value.succeeded);
    EXPECT_EQ(stale.value.revision, written);  // nothing written
    const auto fresh = sync.txn(Txn{{Compare::mod_revision_is("counter", written)}, {TxnOp::put("counter", "2")}, {}});
    EXPECT_TRUE(fresh.value.succeeded);
    EXPECT_EQ(fresh.value.revision, written + 1);
    EXPECT_EQ(sync.get("counter").value.kvs[0].value, "2");
    EXPECT_TRUE(sync.txn(Txn{{Compare::value_is("counter", "2")}, {TxnOp::erase("counter")}, {}}).value.succeeded);
    EXPECT_TRUE(sync.get("counter").value.kvs.empty());
}

TEST_F(MemoryStoreTest, NoneUnderHoldsOnlyForAnEmptyPrefix) {
    const Txn release{{Compare::none_under("refs/7/")}, {TxnOp::erase("id/7")}, {}};
    sync.put("id/7", "x");
    sync.put("refs/7/n1", "");
    sync.put("refs/70/n1", "");  // another number: not under "refs/7/"
    EXPECT_FALSE(sync.txn(release).value.succeeded) << "n1 still refers to 7";
    sync.erase("refs/7/n1");
    EXPECT_TRUE(sync.txn(release).value.succeeded);
    EXPECT_TRUE(sync.get("id/7").value.kvs.empty());
}

TEST_F(MemoryStoreTest, WatchListsThenReportsInOrder) {
    sync.put("p/old", "1");
    sync.put("q/other", "1");
    Recorder seen;
    auto handle = store.watch("p/", {}, seen.handler());
    ASSERT_TRUE(run_until(io, [&] { return seen.batches.size() == 1; }));
    EXPECT_EQ(seen.batches[0].kind, WatchBatchKind::Snapshot);
    ASSERT_EQ(seen.batches[0].events.size(), 1u);
    EXPECT_EQ(seen.batches[0].events[0].kv.key, "p/old");
    sync.put("p/a", "1");
    sync.put("q/skip", "1");
    sync.erase("p/old");
    sync.put("p/a", "2");
    ASSERT_TRUE(run_until(io, [&] { return seen.batches.size() == 4; }));
    const auto events = seen.events();
    ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(events[1].kv.key, "p/a");
    EXPECT_EQ(events[2].type, WatchEvent::Type::Delete);
    EXPECT_EQ(events[2].kv.key, "p/old");
    EXPECT_EQ(events[3].kv.value, "2");
    EXPECT_LT(events[1].kv.mod_revision, events[2].kv.mod_revision);
    EXPECT_LT(events[2].kv.mod_revision, events[3].kv.mod_revision);
    handle.cancel();
    sync.put("p/after", "1");
    io.restart();
    io.poll();
    EXPECT_EQ(seen.batches.size(), 4u);
}

TEST_F(MemoryStoreTest, WatchFromARevisionReplaysHistory) {
    const auto from = sync.put("p/a", "1").value.revision;
    sync.put("p/b", "1");
    Recorder seen;
    auto handle = store.watch("p/", WatchOptions{from, {}}, seen.handler());
    ASSERT_TRUE(run_until(io, [&] { return seen.events().size() == 2; }));
    EXPECT_EQ(seen.batches[0].kind, WatchBatchKind::Events);
    EXPECT_EQ(seen.events()[0].kv.key, "p/a");
    EXPECT_EQ(seen.events()[1].kv.key, "p/b");
}

TEST_F(MemoryStoreTest, AWatchBehindACompactionResyncs) {
    sync.put("p/gone", "1");
    sync.put("p/changed", "1");
    const auto seen_up_to = sync.put("p/same", "1").value.revision;
    std::map<std::string, Revision> known;
    for (const auto& kv : sync.range("p/").value.kvs) known[kv.key] = kv.mod_revision;
    sync.erase("p/gone");
    sync.put("p/changed", "2");
    sync.put("p/new", "1");
    ASSERT_TRUE(sync.compact(store.revision()).ok());
    EXPECT_EQ(store.status().resyncs, 0u);
    Recorder seen;
    auto handle = store.watch("p/", WatchOptions{seen_up_to + 1, known}, seen.handler());
    ASSERT_TRUE(run_until(io, [&] { return !seen.batches.empty(); }));
    ASSERT_EQ(seen.batches[0].kind, WatchBatchKind::Resync);
    EXPECT_EQ(store.status().resyncs, 1u) << "membrane_kvstore_watch_resyncs_total counts it";
    const auto& events = seen.batches[0].events;
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0].type, WatchEvent::Type::Delete);
    EXPECT_EQ(events[0].kv.key, "p/gone");
    EXPECT_EQ(events[1].kv.key, "p/changed");
    EXPECT_EQ(events[2].kv.key, "p/new");
    // And it goes on watching.
    sync.put("p/later", "1");
    ASSERT_TRUE(run_until(io, [&] { return seen.batches.size() == 2; }));
    EXPECT_EQ(seen.batches[1].events[0].kv.key, "p/later");
}

TEST_F(MemoryStoreTest, AWatchResumesAfterAnOutageWithoutLosingEvents) {
    Recorder seen;
    auto handle = store.watch("p/", {}, seen.handler());
    auto lease = sync.grant(60s).value.id;
    sync.put("p/leased", "1", lease);
    ASSERT_TRUE(run_until(io, [&] { return seen.events().size() == 1; }));
    store.set_available(false);
    EXPECT_EQ(store.status().state, StoreState::Disconnected);
    EXPECT_EQ(sync.put("p/x", "1").error->kind, StoreErrorKind::Unavailable);
    store.expire_lease(lease);  // happens while this watcher is cut off
    io.restart();
    io.poll();
    EXPECT_EQ(seen.events().size(), 1u);
    store.set_available(true);
    ASSERT_TRUE(run_until(io, [&] { return seen.events().size() == 2; }));
    EXPECT_EQ(seen.events()[1].type, WatchEvent::Type::Delete);
    EXPECT_EQ(seen.batches.back().kind, WatchBatchKind::Events);
}

TEST_F(MemoryStoreTest, AnOutageAcrossACompactionResyncsTheVanishedKeys) {
    Recorder seen;
    auto handle = store.watch("p/", {}, seen.handler());
    auto lease = sync.grant(60s).value.id;
    sync.put("p/leased", "1", lease);
    sync.put("p/kept", "1");
    ASSERT_TRUE(run_until(io, [&] { return seen.events().size() == 2; }));
    store.set_available(false);
    store.expire_lease(lease);
    store.compact_history(store.revision());
    store.set_available(true);
    ASSERT_TRUE(run_until(io, [&] { return seen.batches.size() == 4; }));  // snapshot, 2 puts, then:
    EXPECT_EQ(seen.batches[3].kind, WatchBatchKind::Resync);
    EXPECT_EQ(store.status().resyncs, 1u);
    ASSERT_EQ(seen.batches[3].events.size(), 1u);
    EXPECT_EQ(seen.batches[3].events[0].type, WatchEvent::Type::Delete);
    EXPECT_EQ(seen.batches[3].events[0].kv.key, "p/leased");
}

TEST_F(MemoryStoreTest, LeaseExpiryDeletesItsKeysAndTellsTheKeeper) {
    const auto lease = sync.grant(60s).value.id;
    ASSERT_TRUE(sync.put("n/mine", "1", lease).ok());
    ASSERT_TRUE(sync.put("n/other", "1").ok());
    LeaseId lost = 0;
    store.keep_alive(lease, [&](LeaseId id) { lost = id; });
    store.expire_lease(lease);
    ASSERT_TRUE(run_until(io, [&] { return lost == lease; }));
    const auto left = sync.range("n/").value.kvs;
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0].key, "n/other");
    EXPECT_EQ(sync.put("n/again", "1", lease).error->kind, StoreErrorKind::LeaseNotFound);
}

TEST_F(MemoryStoreTest, AKeptLeaseLivesAndOneLeftAloneExpires) {
    const auto lease = sync.grant(1s).value.id;
    ASSERT_TRUE(sync.put("n/mine", "1", lease).ok());
    store.keep_alive(lease, nullptr);
    run_until(io, [] { return false; }, 1500ms);
    EXPECT_EQ(sync.get("n/mine").value.kvs.size(), 1u);
    store.stop_keep_alive(lease);
    ASSERT_TRUE(run_until(io, [&] { return sync.get("n/mine").value.kvs.empty(); }, 2500ms));
}

TEST_F(MemoryStoreTest, RevokeDeletesNow) {
    const auto lease = sync.grant(60s).value.id;
    sync.put("n/mine", "1", lease);
    ASSERT_TRUE(testing::wait_for<WriteResult>(io, [&](auto cb) { store.revoke_lease(lease, std::move(cb)); }).ok());
    EXPECT_TRUE(sync.get("n/mine").value.kvs.empty());
}

TEST_F(MemoryStoreTest, ClosedRefusesAndStateListenersHear) {
    std::vector<StoreState> states;
    store.on_state_change([&](const StoreStatus& s) { states.push_back(s.state); });
    store.set_available(false);
    store.set_available(true);
    store.close();
    EXPECT_EQ(sync.put("k", "v").error->kind, StoreErrorKind::Closed);
    EXPECT_EQ(states, (std::vector<StoreState>{StoreState::Disconnected, StoreState::Connected, StoreState::Closed}));
}

}  // namespace
}  // namespace membrane::kernel
