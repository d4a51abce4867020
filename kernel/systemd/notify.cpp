#include "systemd/notify.hpp"

#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include <boost/asio/steady_timer.hpp>

namespace membrane::kernel {

// Owned by the notifier; the timer's handler holds only a weak reference, so
// a handler that was already queued when the notifier died finds nothing.
struct SystemdNotifier::WatchdogLoop : std::enable_shared_from_this<WatchdogLoop> {
    WatchdogLoop(boost::asio::io_context& io, std::chrono::microseconds interval) : timer(io), interval(interval) {}

    void arm() {
        timer.expires_after(interval);
        timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self) return;  // stopped, or the notifier is gone
            (void)sd_notify(0, "WATCHDOG=1");
            self->arm();
        });
    }

    boost::asio::steady_timer timer;
    std::chrono::microseconds interval;
};

SystemdNotifier::SystemdNotifier(boost::asio::io_context& io) : io_(io) {}

SystemdNotifier::~SystemdNotifier() { stop_watchdog(); }

bool SystemdNotifier::enabled() const {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    return socket != nullptr && *socket != '\0';
}

void SystemdNotifier::send(const std::string& message) const {
    if (!enabled()) return;
    // A lost notification is not worth stopping the agent for; systemd
    // reports a missing READY=1 or WATCHDOG=1 on its own.
    (void)sd_notify(0, message.c_str());
}

void SystemdNotifier::ready() { send("READY=1"); }

void SystemdNotifier::status(std::string_view text) {
    // One line: a newline would start a new (unknown) assignment.
    std::string line(text);
    for (char& c : line) {
        if (c == '\n') c = ' ';
    }
    send("STATUS=" + line);
}

void SystemdNotifier::stopping() { send("STOPPING=1"); }

void SystemdNotifier::reloading() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1'000'000ULL +
                      static_cast<unsigned long long>(now.tv_nsec) / 1'000ULL;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void SystemdNotifier::extend_timeout(std::chrono::microseconds more) {
    send("EXTEND_TIMEOUT_USEC=" + std::to_string(more.count()));
}

std::optional<std::chrono::microseconds> SystemdNotifier::watchdog_period() const {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
    return std::chrono::microseconds(usec);
}

void SystemdNotifier::watchdog_ping() { send("WATCHDOG=1"); }

void SystemdNotifier::start_watchdog() {
    if (watchdog_ || !enabled()) return;
    const auto period = watchdog_period();
    if (!period) return;
    watchdog_ = std::make_shared<WatchdogLoop>(io_, *period / 2);
    watchdog_ping();
    watchdog_->arm();
}

void SystemdNotifier::stop_watchdog() {
    if (!watchdog_) return;
    watchdog_->timer.cancel();
    watchdog_.reset();
}

}  // namespace membrane::kernel
