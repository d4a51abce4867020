#include "retry_timer.hpp"

#include <algorithm>
#include <utility>

namespace membrane::service_lb {

RetryTimer::RetryTimer(std::function<void()> fire, Clock::duration first, Clock::duration longest)
    : fire_(std::move(fire)), first_(first), longest_(std::max(first, longest)), next_delay_(first) {}

RetryTimer::~RetryTimer() { stop(); }

RetryTimer::Clock::duration RetryTimer::arm() {
    std::lock_guard lock(mutex_);
    if (stopping_) return Clock::duration::zero();
    if (due_) return pending_delay_;
    pending_delay_ = next_delay_;
    due_ = Clock::now() + pending_delay_;
    next_delay_ = std::min(next_delay_ * 2, longest_);
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    changed_.notify_all();
    return pending_delay_;
}

void RetryTimer::succeeded() {
    std::lock_guard lock(mutex_);
    due_.reset();
    next_delay_ = first_;
    changed_.notify_all();
}

void RetryTimer::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        due_.reset();
        changed_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
}

void RetryTimer::run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        if (!due_) {
            changed_.wait(lock);
            continue;
        }
        const auto due = *due_;
        if (changed_.wait_until(lock, due) == std::cv_status::no_timeout) continue;  // re-read: cancelled, or stopping
        if (!due_ || *due_ != due) continue;
        due_.reset();
        // Called with the lock held: stop() cannot return while `fire` runs,
        // and `fire` only publishes, which never calls back into the timer.
        fire_();
    }
}

}  // namespace membrane::service_lb
