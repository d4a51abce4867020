// The Prometheus endpoint ([metrics] address): prometheus-cpp's Exposer
// (civetweb, its own HTTP threads) serving GET /metrics.
//
// Threading: the HTTP threads never touch agent state. They read a snapshot
// of metric families, a copy under its own mutex, which the agent's loop
// replaces every second from `gather`. This is simpler than a Collect() that
// posts to the loop and waits for it: nothing on an HTTP thread can wait on
// the loop (so a busy or stopping loop never blocks a scrape, and a scrape
// never blocks the agent's shutdown), and no agent object has to outlive the
// HTTP threads. The price is that values are up to a second old, which is
// below any scrape interval; membrane_metrics_snapshot_timestamp_seconds says
// when they were taken, so a stuck loop shows.
//
// Shutdown: the destructor stops the Exposer first, which closes the socket
// and joins its threads (a scrape in flight finishes on the snapshot it
// holds), then cancels the timer. Destroy it on the loop thread, before the
// io_context.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/logger.h>

#include "metrics/agent_figures.hpp"

namespace prometheus {
class Exposer;
}

namespace membrane::kernel {

class MetricsSnapshot;

// The endpoint could not listen (the port is taken, the address is not this
// host's); the message names the address.
class MetricsError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class MetricsServer {
public:
    using Gather = std::function<AgentFigures()>;

    // Takes the first figures now (call it on the loop thread), then listens
    // on `address` ("IPv4:port"; port 0 picks a free one, for tests) and
    // refreshes every `period` on `io`. Throws MetricsError.
    MetricsServer(boost::asio::io_context& io, const std::string& address, Gather gather,
                  std::shared_ptr<spdlog::logger> log, std::chrono::milliseconds period = std::chrono::seconds(1));
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    // The port it listens on.
    std::uint16_t port() const { return port_; }
    // Takes the figures again now (the timer does it every period).
    void refresh();

private:
    void arm();

    Gather gather_;
    std::shared_ptr<spdlog::logger> log_;
    std::chrono::milliseconds period_;
    std::shared_ptr<MetricsSnapshot> snapshot_;
    std::unique_ptr<prometheus::Exposer> exposer_;
    boost::asio::steady_timer timer_;
    std::uint16_t port_ = 0;
    std::string last_problem_;  // logged once, until it changes
};

}  // namespace membrane::kernel
