#include "bpf/conntrack_gc.hpp"

#include <bpf/bpf.h>

#include <cerrno>
#include <ctime>
#include <vector>

#include "bpf/bpf_error.hpp"
extern "C" {
#include "membrane/contract.h"
}

namespace membrane::kernel {

std::uint64_t conntrack_now_ns() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(now.tv_nsec);
}

ConntrackSweep sweep_conntrack(int map_fd, std::uint64_t now_ns) {
    // Keys first, then deletes: deleting while walking with get_next_key
    // restarts the walk from the start of the bucket list.
    std::vector<mbr_ct_key> dead;
    ConntrackSweep sweep;
    mbr_ct_key key{};
    mbr_ct_key next{};
    const void* previous = nullptr;
    // A key the LRU evicted under the walk restarts it from the first key:
    // bounded, so a busy table cannot hold the agent's loop.
    std::uint64_t steps = 0;
    while (steps++ < 2ull * MBR_CT_MAX && bpf_map_get_next_key(map_fd, previous, &next) == 0) {
        key = next;
        previous = &key;
        mbr_ct_value value{};
        if (bpf_map_lookup_elem(map_fd, &key, &value) != 0) continue;  // evicted meanwhile
        if (value.expires_ns < now_ns) {
            dead.push_back(key);
        } else {
            ++sweep.live;
        }
    }
    for (const auto& gone : dead) {
        // Renewed since it was read (a packet, or a stage re-created it): keep it.
        mbr_ct_value value{};
        if (bpf_map_lookup_elem(map_fd, &gone, &value) != 0) continue;
        if (value.expires_ns >= now_ns) {
            ++sweep.live;
            continue;
        }
        if (bpf_map_delete_elem(map_fd, &gone) == 0) ++sweep.deleted;
    }
    return sweep;
}

ConntrackGc::ConntrackGc(boost::asio::io_context& io, int map_fd, std::shared_ptr<spdlog::logger> log,
                         std::chrono::milliseconds interval)
    : map_fd_(map_fd), log_(std::move(log)), interval_(interval), timer_(io) {
    status_.capacity = MBR_CT_MAX;
    sweep_now();
    schedule();
}

void ConntrackGc::sweep_now() {
    const ConntrackSweep sweep = sweep_conntrack(map_fd_, conntrack_now_ns());
    status_.entries = sweep.live;
    status_.deleted_total += sweep.deleted;
    if (sweep.live * 10 >= status_.capacity * 9) {
        ++status_.full_sweeps;
        log_->warn("connection tracking: {} of {} entries live: the table evicts its least recently used "
                   "connections, whose replies then count as new connections",
                   sweep.live, status_.capacity);
    }
    if (sweep.deleted > 0) log_->debug("connection tracking: {} expired entries deleted, {} live", sweep.deleted, sweep.live);
}

void ConntrackGc::schedule() {
    timer_.expires_after(interval_);
    timer_.async_wait([this](const boost::system::error_code& error) {
        if (error) return;
        sweep_now();
        schedule();
    });
}

}  // namespace membrane::kernel
