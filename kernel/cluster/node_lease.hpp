// This node's lease in the store. Every key only this node writes (its
// identity references; later its node record and endpoints) is bound to it,
// so the keys of a node that is gone expire [kvstore] lease_ttl after its
// last keep-alive. The lease is granted once the store is connected, kept
// alive, and granted anew when the store says it was lost (the node was cut
// off for longer than the TTL, and its keys are gone): whoever writes keys
// under it hears of each new lease and writes them again.
//
// The agent never revokes it: a restarting agent's pods keep running, so
// their keys must outlive it. The new run writes them under its own lease
// within the TTL, and the old lease then expires with nothing left on it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/logger.h>

#include "store/store.hpp"

namespace membrane::kernel {

class NodeLease {
public:
    NodeLease(boost::asio::io_context& io, Store& store, std::chrono::seconds ttl, std::shared_ptr<spdlog::logger> log);
    ~NodeLease();
    NodeLease(const NodeLease&) = delete;
    NodeLease& operator=(const NodeLease&) = delete;

    // Grants as soon as the store is connected, and again whenever it is lost.
    void start();
    LeaseId id() const { return id_; }  // 0 while there is none
    // Runs with every new lease, on the loop.
    void on_granted(std::function<void(LeaseId)> listener);

private:
    void grant();
    void retry_later();

    boost::asio::io_context& io_;
    Store& store_;
    std::chrono::seconds ttl_;
    std::shared_ptr<spdlog::logger> log_;
    boost::asio::steady_timer retry_;
    std::chrono::seconds backoff_{1};
    LeaseId id_ = 0;
    bool granting_ = false;
    std::vector<std::function<void(LeaseId)>> listeners_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace membrane::kernel
