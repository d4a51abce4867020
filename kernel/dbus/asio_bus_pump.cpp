#include "dbus/asio_bus_pump.hpp"

#include <poll.h>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace membrane::kernel {

AsioBusPump::AsioBusPump(boost::asio::io_context& io, sdbus::IConnection& connection,
                         std::function<void(const std::string&)> on_lost)
    : io_(io), connection_(connection), on_lost_(std::move(on_lost)), fd_watch_(io), timeout_(io) {}

AsioBusPump::~AsioBusPump() { stop(); }

void AsioBusPump::start() {
    // sd-bus may hold messages read during a synchronous call (RequestName),
    // which no fd readiness would announce: begin with a round.
    kick();
}

void AsioBusPump::stop() {
    if (stopped_) return;
    stopped_ = true;
    ++round_;
    timeout_.cancel();
    if (fd_watch_.is_open()) {
        fd_watch_.cancel();
        fd_watch_.release();  // the fd belongs to sd-bus
    }
}

void AsioBusPump::kick() {
    if (stopped_ || kick_posted_) return;
    kick_posted_ = true;
    boost::asio::post(io_, [weak = weak_from_this()] {
        if (auto self = weak.lock()) {
            self->kick_posted_ = false;
            self->process_round();
        }
    });
}

void AsioBusPump::process_round() {
    if (stopped_) return;
    ++round_;  // waits armed before this round are stale now
    bool more = false;
    try {
        more = connection_.processPendingRequest();
    } catch (const std::exception& e) {
        lost(e.what());
        return;
    }
    if (stopped_) return;
    // One message per round, then back to the loop: work a handler posted
    // (bus events, deferred object changes) runs before the next message,
    // and a flood of calls cannot starve the rest of the agent.
    if (more) {
        kick();
        return;
    }
    try {
        arm();
    } catch (const std::exception& e) {
        lost(e.what());  // sd-bus has no fd to give once the connection closed
    }
}

void AsioBusPump::lost(const std::string& why) {
    // The connection is gone (bus daemon died); nothing more to watch.
    spdlog::error("D-Bus: connection lost: {}", why);
    stop();
    if (on_lost_) boost::asio::post(io_, [on_lost = on_lost_, why] { on_lost(why); });
}

void AsioBusPump::arm() {
    const auto round = ++round_;
    const auto poll = connection_.getEventLoopPollData();

    if (!fd_watch_.is_open()) {
        fd_watch_.assign(poll.fd);
    } else if (fd_watch_.native_handle() != poll.fd) {
        fd_watch_.cancel();
        fd_watch_.release();
        fd_watch_.assign(poll.fd);
    }

    auto on_ready = [weak = weak_from_this(), round](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!self || ec == boost::asio::error::operation_aborted || self->round_ != round) return;
        self->process_round();
    };
    // Cancel the previous round's waits: one pending wait per direction.
    fd_watch_.cancel();
    if (poll.events & POLLIN) fd_watch_.async_wait(boost::asio::posix::stream_descriptor::wait_read, on_ready);
    if (poll.events & POLLOUT) fd_watch_.async_wait(boost::asio::posix::stream_descriptor::wait_write, on_ready);

    timeout_.cancel();
    if (const auto relative = poll.getRelativeTimeout()) {
        timeout_.expires_after(*relative);
        timeout_.async_wait(on_ready);
    }
}

}  // namespace membrane::kernel
