#include "cluster/node_lease.hpp"

namespace membrane::kernel {

NodeLease::NodeLease(boost::asio::io_context& io, Store& store, std::chrono::seconds ttl,
                     std::shared_ptr<spdlog::logger> log)
    : io_(io), store_(store), ttl_(ttl), log_(std::move(log)), retry_(io) {}

NodeLease::~NodeLease() {
    *alive_ = false;
    if (id_ != 0) store_.stop_keep_alive(id_);
}

void NodeLease::start() {
    store_.on_state_change([this, alive = std::weak_ptr<bool>(alive_)](const StoreStatus& status) {
        if (alive.expired()) return;
        if (status.state == StoreState::Connected && id_ == 0) grant();
    });
    if (store_.status().state == StoreState::Connected) grant();
}

void NodeLease::on_granted(std::function<void(LeaseId)> listener) { listeners_.push_back(std::move(listener)); }

void NodeLease::grant() {
    if (granting_) return;
    granting_ = true;
    store_.grant_lease(ttl_, [this, alive = std::weak_ptr<bool>(alive_)](StoreResult<LeaseGrant> result) {
        if (alive.expired()) return;
        granting_ = false;
        if (!result.ok()) {
            log_->warn("cannot take a lease for this node's keys: {}", result.error->message);
            retry_later();
            return;
        }
        id_ = result.value.id;
        backoff_ = std::chrono::seconds(1);
        log_->info("this node's keys live under lease {:x} (TTL {} s)", id_, result.value.ttl.count());
        store_.keep_alive(id_, [this, alive](LeaseId lost) {
            if (alive.expired() || lost != id_) return;
            log_->warn("lease {:x} expired while this node was cut off: its keys are gone; writing them again "
                       "under a new lease", lost);
            id_ = 0;
            if (store_.status().state == StoreState::Connected) grant();
        });
        for (const auto& listener : listeners_) listener(id_);
    });
}

void NodeLease::retry_later() {
    retry_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, std::chrono::seconds(30));
    retry_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        if (id_ == 0 && store_.status().state == StoreState::Connected) grant();
    });
}

}  // namespace membrane::kernel
