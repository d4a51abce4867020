// An action run once, a moment after it was asked for, however many times
// it was asked meanwhile: one more try of a reconciliation after a failed
// write (a timeout while connected; the reconnect after an outage is heard
// through the store's state instead), or one cache write for a burst of
// changes.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace membrane::kernel {

class RunSoon {
public:
    RunSoon(boost::asio::io_context& io, std::function<void()> action,
              std::chrono::milliseconds delay = std::chrono::seconds(1))
        : timer_(io), action_(std::move(action)), delay_(delay) {}
    ~RunSoon() { *alive_ = false; }
    RunSoon(const RunSoon&) = delete;
    RunSoon& operator=(const RunSoon&) = delete;

    bool pending() const { return pending_; }
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
