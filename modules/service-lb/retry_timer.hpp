// A retry with exponential backoff, for a sync that failed with nothing
// changed since: a map the kernel could not grow (memory), a pin someone else
// filled. Without it, a node would keep missing services until the next
// object change, which may never come.
//
// arm() after a failure schedules `fire` once, after the current delay (the
// first `first`, then doubled up to `longest`); arm() while one is pending
// does nothing. succeeded() cancels a pending one and starts the backoff over.
// `fire` runs on the timer's own thread: it must only hand over (publish an
// event to the module's loop), never touch the module's state.
//
// One thread, started at the first arm(). Destroying the timer (or stop())
// cancels and joins it, so a module must do it in stop(), before its code is
// unloaded; once stop() returns, `fire` is never called again.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace membrane::service_lb {

class RetryTimer {
public:
    using Clock = std::chrono::steady_clock;

    RetryTimer(std::function<void()> fire, Clock::duration first, Clock::duration longest);
    ~RetryTimer();
    RetryTimer(const RetryTimer&) = delete;
    RetryTimer& operator=(const RetryTimer&) = delete;

    // Schedules `fire` after the current delay; returns that delay. A pending
    // retry stays as it is (its delay is returned).
    Clock::duration arm();
    void succeeded();
    void stop();

private:
    void run();

    std::function<void()> fire_;
    const Clock::duration first_;
    const Clock::duration longest_;
    std::mutex mutex_;
    std::condition_variable changed_;
    Clock::duration next_delay_;
    Clock::duration pending_delay_{};
    std::optional<Clock::time_point> due_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace membrane::service_lb
