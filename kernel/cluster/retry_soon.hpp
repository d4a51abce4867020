// One more try of a reconciliation, a moment after a write failed (a
// timeout while connected: the reconnect that follows an outage is heard
// through the store's state instead). Any number of asks before it runs
// make one run.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace membrane::kernel {

class RetrySoon {
public:
    RetrySoon(boost::asio::io_context& io, std::function<void()> action,
              std::chrono::milliseconds delay = std::chrono::seconds(1))
        : timer_(io), action_(std::move(action)), delay_(delay) {}
    ~RetrySoon() { *alive_ = false; }
    RetrySoon(const RetrySoon&) = delete;
    RetrySoon& operator=(const RetrySoon&) = delete;

    void ask() {
        if (pending_) return;
        pending_ = true;
        timer_.expires_after(delay_);
        timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
            if (ec || alive.expired()) return;
            pending_ = false;
            action_();
        });
    }

private:
    boost::asio::steady_timer timer_;
    std::function<void()> action_;
    std::chrono::milliseconds delay_;
    bool pending_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace membrane::kernel
