// Driving a Store from a test: run the loop until a callback has run.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <optional>

#include "store/store.hpp"

namespace membrane::kernel::testing {

// Runs the loop until `done()` holds or `limit` passes.
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        io.restart();
        io.run_for(std::chrono::milliseconds(10));
    }
    return true;
}

// Calls `start(callback)` and runs the loop until the callback ran; returns its result.
template <class T>
StoreResult<T> wait_for(boost::asio::io_context& io, const std::function<void(StoreCallback<T>)>& start,
                        std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
    std::optional<StoreResult<T>> out;
    start([&](StoreResult<T> result) { out = std::move(result); });
    if (!run_until(io, [&] { return out.has_value(); }, limit)) {
        ADD_FAILURE() << "no answer from the store";
        return StoreResult<T>{StoreError{StoreErrorKind::Timeout, "test: no answer"}, {}};
    }
    return std::move(*out);
}

// Synchronous helpers for tests only.
struct SyncStore {
    boost::asio::io_context& io;
    Store& store;

    StoreResult<WriteResult> put(const std::string& key, const std::string& value, LeaseId lease = 0) {
        return wait_for<WriteResult>(io, [&](auto cb) { store.put(key, value, lease, std::move(cb)); });
    }
    StoreResult<WriteResult> erase(const std::string& key) {
        return wait_for<WriteResult>(io, [&](auto cb) { store.erase(key, std::move(cb)); });
    }
    StoreResult<RangeResult> get(const std::string& key) {
        return wait_for<RangeResult>(io, [&](auto cb) { store.get(key, std::move(cb)); });
    }
    StoreResult<RangeResult> range(const std::string& prefix) {
        return wait_for<RangeResult>(io, [&](auto cb) { store.range(prefix, std::move(cb)); });
    }
    StoreResult<TxnResult> txn(const Txn& txn) {
        return wait_for<TxnResult>(io, [&](auto cb) { store.txn(txn, std::move(cb)); });
    }
    StoreResult<WriteResult> compact(Revision revision) {
        return wait_for<WriteResult>(io, [&](auto cb) { store.compact(revision, std::move(cb)); });
    }
    StoreResult<LeaseGrant> grant(std::chrono::seconds ttl) {
        return wait_for<LeaseGrant>(io, [&](auto cb) { store.grant_lease(ttl, std::move(cb)); });
    }
};

// Collects a watch's batches.
struct Recorder {
    std::vector<WatchBatch> batches;
    WatchHandler handler() {
        return [this](const WatchBatch& batch) { batches.push_back(batch); };
    }
    std::vector<WatchEvent> events() const {
        std::vector<WatchEvent> out;
        for (const auto& b : batches) out.insert(out.end(), b.events.begin(), b.events.end());
        return out;
    }
};

}  // namespace membrane::kernel::testing
