// EtcdStore against a real etcd-server: KV and transactions (two clients
// racing a create-if-absent), watches in order, a watch resuming across an
// etcd restart without losing events, compaction forcing a resync that
// reports vanished keys, lease expiry, and TLS with client certificates.
// Each test starts its own etcd on free 127.0.0.1 ports.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "etcd/etcd_store.hpp"
#include "etcd_process.hpp"
#include "log/logging.hpp"
#include "store_test_support.hpp"

namespace membrane::kernel {
namespace {

using namespace std::chrono_literals;
using testing::EtcdProcess;
using testing::Recorder;
using testing::run_until;
using testing::SyncStore;
using testing::TempDir;
using testing::TestCerts;

KvstoreSettings settings_for(const std::string& url) {
    KvstoreSettings kv;
    kv.endpoints = {url};
    kv.dial_timeout = 2s;
    kv.request_timeout = 3s;
    return kv;
}

struct Client {
    Client(const KvstoreSettings& settings, const std::string& name)
        : store(io, settings, make_logger("etcd-" + name)), sync{io, store} {
        store.start();
    }
    bool connected(std::chrono::milliseconds limit = 10s) {
        return run_until(io, [&] { return store.status().state == StoreState::Connected; }, limit);
    }
    boost::asio::io_context io;
    EtcdStore store;
    SyncStore sync;
};

class EtcdStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (testing::etcd_binary().empty()) GTEST_SKIP() << "etcd is not installed (apt-get install etcd-server)";
        etcd = std::make_unique<EtcdProcess>(dir.path / "etcd");
    }
    std::unique_ptr<Client> client(const std::string& name) {
        auto c = std::make_unique<Client>(settings_for(etcd->url()), name);
        EXPECT_TRUE(c->connected()) << c->store.status().last_error;
        return c;
    }

    TempDir dir;
    std::unique_ptr<EtcdProcess> etcd;
};

TEST_F(EtcdStoreTest, PutGetRangeAndRevisions) {
    auto c = client("a");
    const auto first = c->sync.put("membrane/t/a", "1");
    ASSERT_TRUE(first.ok()) << first.error->message;
    ASSERT_TRUE(c->sync.put("membrane/t/a", "2").ok());
    ASSERT_TRUE(c->sync.put("membrane/t/b", "3").ok());
    ASSERT_TRUE(c->sync.put("membrane/u/c", "4").ok());
    const auto got = c->sync.get("membrane/t/a");
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got.value.kvs.size(), 1u);
    EXPECT_EQ(got.value.kvs[0].value, "2");
    EXPECT_EQ(got.value.kvs[0].create_revision, first.value.revision);
    EXPECT_EQ(got.value.kvs[0].mod_revision, first.value.revision + 1);
    EXPECT_EQ(got.value.kvs[0].version, 2);
    const auto range = c->sync.range("membrane/t/");
    ASSERT_EQ(range.value.kvs.size(), 2u);
    EXPECT_EQ(range.value.kvs[1].key, "membrane/t/b");
    EXPECT_EQ(range.value.revision, first.value.revision + 3);
    EXPECT_EQ(c->store.status().revision, range.value.revision);
    const auto erased = testing::wait_for<WriteResult>(c->io, [&](auto cb) { c->store.erase_prefix("membrane/t/", std::move(cb)); });
    EXPECT_EQ(erased.value.deleted, 2);
}

TEST_F(EtcdStoreTest, CreateIfAbsentRaceHasOneWinner) {
    auto a = client("a");
    auto b = client("b");
    auto claim = [](const std::string& who) {
        return Txn{{Compare::absent("membrane/t/id/app=web")},
                   {TxnOp::put("membrane/t/id/app=web", who)},
                   {TxnOp::get("membrane/t/id/app=web")}};
    };
    for (int round = 0; round < 5; ++round) {
        std::optional<StoreResult<TxnResult>> ra;
        std::optional<StoreResult<TxnResult>> rb;
        a->store.txn(claim("a"), [&](auto r) { ra = std::move(r); });
        b->store.txn(claim("b"), [&](auto r) { rb = std::move(r); });
        ASSERT_TRUE(run_until(a->io, [&] { return ra.has_value(); }));
        ASSERT_TRUE(run_until(b->io, [&] { return rb.has_value(); }));
        ASSERT_TRUE(ra->ok() && rb->ok());
        EXPECT_NE(ra->value.succeeded, rb->value.succeeded) << "exactly one create wins";
        const auto& loser = ra->value.succeeded ? *rb : *ra;
        ASSERT_EQ(loser.value.gets.size(), 1u);
        ASSERT_EQ(loser.value.gets[0].size(), 1u);
        EXPECT_EQ(loser.value.gets[0][0].value, ra->value.succeeded ? "a" : "b");
        ASSERT_TRUE(a->sync.erase("membrane/t/id/app=web").ok());
    }
    // Compare-and-swap on mod_revision.
    const auto rev = a->sync.put("membrane/t/counter", "1").value.revision;
    EXPECT_FALSE(b->sync.txn(Txn{{Compare::mod_revision_is("membrane/t/counter", rev - 1)}, {TxnOp::put("membrane/t/counter", "2")}, {}})
                     .value.succeeded);
    EXPECT_TRUE(b->sync.txn(Txn{{Compare::mod_revision_is("membrane/t/counter", rev)}, {TxnOp::put("membrane/t/counter", "2")}, {}})
                    .value.succeeded);    // A condition over a whole prefix (range_end): no key under it.
    const Txn release{{Compare::none_under("membrane/t/refs/7/")}, {TxnOp::erase("membrane/t/id/7")}, {}};
    ASSERT_TRUE(a->sync.put("membrane/t/id/7", "x").ok());
    ASSERT_TRUE(a->sync.put("membrane/t/refs/7/n1", "").ok());
    ASSERT_TRUE(a->sync.put("membrane/t/refs/70/n1", "").ok());
    EXPECT_FALSE(b->sync.txn(release).value.succeeded) << "n1 still refers to 7";
    ASSERT_TRUE(a->sync.erase("membrane/t/refs/7/n1").ok());
    EXPECT_TRUE(b->sync.txn(release).value.succeeded);
    EXPECT_TRUE(b->sync.get("membrane/t/id/7").value.kvs.empty());
}

TEST_F(EtcdStoreTest, WatchSeesEventsInOrder) {
    auto c = client("a");
    c->sync.put("membrane/t/w/before", "0");
    Recorder seen;
    auto handle = c->store.watch("membrane/t/w/", {}, seen.handler());
    ASSERT_TRUE(run_until(c->io, [&] { return !seen.batches.empty(); }));
    EXPECT_EQ(seen.batches[0].kind, WatchBatchKind::Snapshot);
    ASSERT_EQ(seen.batches[0].events.size(), 1u);
    // One at a time: requests in flight together may be applied in any order.
    for (int i = 0; i < 20; ++i) {
        ASSERT_TRUE(c->sync.put("membrane/t/w/k" + std::to_string(i % 5), std::to_string(i)).ok());
        if (i % 7 == 6) {
            ASSERT_TRUE(c->sync.erase("membrane/t/w/k" + std::to_string(i % 5)).ok());
        }
        ASSERT_TRUE(c->sync.put("membrane/t/other", "x").ok());
    }
    ASSERT_TRUE(run_until(c->io, [&] { return seen.events().size() == 1 + 20 + 2; })) << seen.events().size();
    const auto events = seen.events();
    Revision last = 0;
    int put = 0;
    for (std::size_t i = 1; i < events.size(); ++i) {
        EXPECT_GT(events[i].kv.mod_revision, last);
        last = events[i].kv.mod_revision;
        if (events[i].type == WatchEvent::Type::Put) {
            EXPECT_EQ(events[i].kv.value, std::to_string(put));
            ++put;
        }
    }
    EXPECT_EQ(put, 20);
}

TEST_F(EtcdStoreTest, AnEndpointThatDoesNotAnswerIsPassedOverForTheNext) {
    // Nothing listens on `dead` (a port just free): the client moves on to the live member.
    const std::string dead = "http://127.0.0.1:" + std::to_string(testing::free_port());
    KvstoreSettings settings = settings_for(etcd->url());
    settings.endpoints = {dead, etcd->url()};
    Client c(settings, "failover");
    ASSERT_TRUE(c.connected(20s)) << c.store.status().last_error;
    EXPECT_EQ(c.store.status().endpoint, etcd->url());
    EXPECT_TRUE(c.sync.put("membrane/t/f/a", "1").ok());
}

TEST_F(EtcdStoreTest, WatchResumesAfterEtcdRestartWithoutLosingEvents) {
    auto watcher = client("watcher");
    auto writer = client("writer");
    Recorder seen;
    auto handle = watcher->store.watch("membrane/t/r/", {}, seen.handler());
    ASSERT_TRUE(writer->sync.put("membrane/t/r/a", "1").ok());
    ASSERT_TRUE(run_until(watcher->io, [&] { return seen.events().size() == 1; }));

    etcd->stop();
    ASSERT_TRUE(run_until(watcher->io, [&] { return watcher->store.status().state == StoreState::Disconnected; }));
    etcd->start();
    // The watcher's loop stands still while the writer writes: these events
    // happen while it is cut off, and it must fetch them on resuming.
    ASSERT_TRUE(writer->connected());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(writer->sync.put("membrane/t/r/k" + std::to_string(i), std::to_string(i)).ok());
    ASSERT_TRUE(writer->sync.erase("membrane/t/r/a").ok());

    ASSERT_TRUE(run_until(watcher->io, [&] { return seen.events().size() == 7; })) << seen.events().size();
    const auto events = seen.events();
    for (int i = 0; i < 5; ++i) EXPECT_EQ(events[1 + i].kv.key, "membrane/t/r/k" + std::to_string(i));
    EXPECT_EQ(events[6].type, WatchEvent::Type::Delete);
    EXPECT_EQ(seen.batches.back().kind, WatchBatchKind::Events);  // resumed, no resync needed
    EXPECT_EQ(watcher->store.status().connects, 2u);
    run_until(watcher->io, [] { return false; }, 300ms);
    EXPECT_EQ(seen.events().size(), 7u) << "no event twice";
}

TEST_F(EtcdStoreTest, CompactionForcesAResyncThatReportsVanishedKeys) {
    auto watcher = client("watcher");
    auto writer = client("writer");
    Recorder seen;
    auto handle = watcher->store.watch("membrane/t/c/", {}, seen.handler());
    writer->sync.put("membrane/t/c/gone", "1");
    writer->sync.put("membrane/t/c/kept", "1");
    writer->sync.put("membrane/t/c/changed", "1");
    ASSERT_TRUE(run_until(watcher->io, [&] { return seen.events().size() == 3; }));

    etcd->stop();
    ASSERT_TRUE(run_until(watcher->io, [&] { return watcher->store.status().state == StoreState::Disconnected; }));
    etcd->start();
    ASSERT_TRUE(writer->connected());
    ASSERT_TRUE(writer->sync.erase("membrane/t/c/gone").ok());
    ASSERT_TRUE(writer->sync.put("membrane/t/c/changed", "2").ok());
    const auto now = writer->sync.put("membrane/t/c/new", "1").value.revision;
    ASSERT_TRUE(writer->sync.compact(now).ok());

    ASSERT_TRUE(run_until(watcher->io, [&] { return seen.batches.back().kind == WatchBatchKind::Resync; }));
    EXPECT_EQ(watcher->store.status().resyncs, 1u) << "membrane_kvstore_watch_resyncs_total counts it";
    EXPECT_EQ(writer->store.status().resyncs, 0u);
    const auto& resync = seen.batches.back();
    ASSERT_EQ(resync.events.size(), 3u);
    EXPECT_EQ(resync.events[0].type, WatchEvent::Type::Delete);
    EXPECT_EQ(resync.events[0].kv.key, "membrane/t/c/gone");
    EXPECT_EQ(resync.events[1].kv.key, "membrane/t/c/changed");
    EXPECT_EQ(resync.events[1].kv.value, "2");
    EXPECT_EQ(resync.events[2].kv.key, "membrane/t/c/new");
    EXPECT_EQ(resync.revision, now);
    // And the watch goes on from there.
    writer->sync.put("membrane/t/c/after", "1");
    ASSERT_TRUE(run_until(watcher->io, [&] { return seen.events().back().kv.key == "membrane/t/c/after"; }));
}

TEST_F(EtcdStoreTest, LeaseKeepsKeysWhileKeptAliveAndExpiryRemovesThem) {
    auto owner = client("owner");
    auto other = client("other");
    const auto grant = owner->sync.grant(2s);
    ASSERT_TRUE(grant.ok()) << grant.error->message;
    const LeaseId lease = grant.value.id;
    ASSERT_TRUE(owner->sync.put("membrane/t/n/node-1", "up", lease).ok());
    LeaseId lost = 0;
    owner->store.keep_alive(lease, [&](LeaseId id) { lost = id; });
    Recorder seen;
    auto handle = other->store.watch("membrane/t/n/", {}, seen.handler());
    run_until(owner->io, [] { return false; }, 3500ms);  // past the TTL, refreshed
    ASSERT_TRUE(run_until(other->io, [&] { return !seen.batches.empty(); }));
    EXPECT_EQ(other->sync.get("membrane/t/n/node-1").value.kvs.size(), 1u) << "kept alive past its TTL";
    EXPECT_EQ(lost, 0);

    owner->store.stop_keep_alive(lease);
    const auto stopped = std::chrono::steady_clock::now();
    ASSERT_TRUE(run_until(other->io, [&] {
        const auto events = seen.events();
        return !events.empty() && events.back().type == WatchEvent::Type::Delete;
    }, 8s));
    EXPECT_LT(std::chrono::steady_clock::now() - stopped, 5s);
    EXPECT_TRUE(other->sync.get("membrane/t/n/node-1").value.kvs.empty());
    // Keeping a lease that is gone says so.
    owner->store.keep_alive(lease, [&](LeaseId id) { lost = id; });
    ASSERT_TRUE(run_until(owner->io, [&] { return lost == lease; }));
    EXPECT_EQ(owner->sync.put("membrane/t/n/again", "1", lease).error->kind, StoreErrorKind::LeaseNotFound);
}

class EtcdTlsTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (testing::etcd_binary().empty()) GTEST_SKIP() << "etcd is not installed (apt-get install etcd-server)";
        certs = TestCerts::make(dir.path / "certs");
        etcd = std::make_unique<EtcdProcess>(dir.path / "etcd", &certs);
    }
    KvstoreSettings tls(const std::filesystem::path& ca, const std::filesystem::path& cert, const std::filesystem::path& key) {
        auto kv = settings_for(etcd->url());
        kv.ca = ca;
        kv.cert = cert;
        kv.key = key;
        return kv;
    }

    TempDir dir;
    TestCerts certs;
    std::unique_ptr<EtcdProcess> etcd;
};

TEST_F(EtcdTlsTest, ClientCertificateWorks) {
    Client c(tls(certs.ca(), certs.client_cert(), certs.client_key()), "tls");
    ASSERT_TRUE(c.connected()) << c.store.status().last_error;
    ASSERT_TRUE(c.sync.put("membrane/t/tls", "1").ok());
    EXPECT_EQ(c.sync.get("membrane/t/tls").value.kvs.size(), 1u);
}

TEST_F(EtcdTlsTest, AWrongCaIsRefusedWithAClearError) {
    Client c(tls(certs.other_ca(), certs.client_cert(), certs.client_key()), "wrong-ca");
    EXPECT_FALSE(c.connected(1500ms));
    const auto status = c.store.status();
    EXPECT_NE(status.state, StoreState::Connected);
    EXPECT_NE(status.last_error.find(etcd->url()), std::string::npos) << status.last_error;
    EXPECT_NE(status.last_error.find("TLS"), std::string::npos) << status.last_error;
    const auto put = c.sync.put("membrane/t/x", "1");
    ASSERT_FALSE(put.ok());
    EXPECT_EQ(put.error->kind, StoreErrorKind::Unavailable);
}

TEST_F(EtcdTlsTest, AClientCertificateEtcdDoesNotTrustIsRefused) {
    Client c(tls(certs.ca(), certs.stranger_cert(), certs.stranger_key()), "stranger");
    EXPECT_FALSE(c.connected(1500ms));
    const auto error = c.store.status().last_error;
    EXPECT_NE(error.find("client certificate"), std::string::npos) << error;
}

}  // namespace
}  // namespace membrane::kernel
