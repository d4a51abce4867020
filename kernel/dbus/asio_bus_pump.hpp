// Runs an sdbus-c++ connection on a Boost.Asio loop, without a thread of its
// own: watch the bus fd and sd-bus's timeout, then let sd-bus process what is
// pending. Every D-Bus callback therefore runs on the loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <sdbus-c++/IConnection.h>

namespace membrane::kernel {

class AsioBusPump : public std::enable_shared_from_this<AsioBusPump> {
public:
    // `on_lost` runs (posted to the loop, never inside sd-bus) once the
    // connection is gone, e.g. the bus daemon died; the pump has stopped.
    AsioBusPump(boost::asio::io_context& io, sdbus::IConnection& connection,
                std::function<void(const std::string& why)> on_lost = {});
    ~AsioBusPump();
    AsioBusPump(const AsioBusPump&) = delete;
    AsioBusPump& operator=(const AsioBusPump&) = delete;

    // Starts watching (call once the pump is owned by a shared_ptr).
    void start();
    // Schedules a processing round soon, e.g. after sending a signal outside
    // a callback: sd-bus may have queued output that needs POLLOUT.
    void kick();
    // Stops watching; sd-bus keeps its fd (never closed here).
    void stop();

private:
    void process_round();
    void arm();
    void lost(const std::string& why);

    boost::asio::io_context& io_;
    sdbus::IConnection& connection_;
    std::function<void(const std::string&)> on_lost_;
    boost::asio::posix::stream_descriptor fd_watch_;
    boost::asio::steady_timer timeout_;
    // Each arm() starts a new round; completions of older rounds are ignored.
    std::uint64_t round_ = 0;
    bool stopped_ = false;
    bool kick_posted_ = false;
};

}  // namespace membrane::kernel
