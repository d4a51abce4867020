// The agent's side of Type=notify (sd_notify(3)): READY=1 once the configured
// modules run, STATUS= lines, RELOADING=1/STOPPING=1, and WATCHDOG=1 pings
// from the event loop, so a stuck loop (not just a dead process) gets the
// service restarted. Every call is a no-op when NOTIFY_SOCKET is unset.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string_view>

#include <boost/asio/io_context.hpp>

namespace membrane::kernel {

class SystemdNotifier {
public:
    explicit SystemdNotifier(boost::asio::io_context& io);
    ~SystemdNotifier();  // stops the watchdog

    SystemdNotifier(const SystemdNotifier&) = delete;
    SystemdNotifier& operator=(const SystemdNotifier&) = delete;

    // NOTIFY_SOCKET is set: systemd (or a test) listens.
    bool enabled() const;

    void ready();                     // READY=1 (also ends a reload)
    void status(std::string_view text);  // STATUS=<text>, shown by systemctl status
    void stopping();                  // STOPPING=1
    // RELOADING=1 with MONOTONIC_USEC (systemd 253+ wants both); call ready()
    // when the reload is done.
    void reloading();
    // EXTEND_TIMEOUT_USEC: a start, reload or stop that legitimately takes
    // longer asks for more time before systemd gives up on it.
    void extend_timeout(std::chrono::microseconds more);

    // The period systemd expects pings within (WATCHDOG_USEC, honouring
    // WATCHDOG_PID), or nothing when the watchdog is off.
    std::optional<std::chrono::microseconds> watchdog_period() const;

    // When the watchdog is on: pings now, then every half period from a timer
    // on the io_context. Does nothing when it is off or already running.
    void start_watchdog();
    void stop_watchdog();
    void watchdog_ping();  // WATCHDOG=1, e.g. between long blocking start-up steps

private:
    void send(const std::string& message) const;

    struct WatchdogLoop;
    boost::asio::io_context& io_;
    std::shared_ptr<WatchdogLoop> watchdog_;
};

}  // namespace membrane::kernel
