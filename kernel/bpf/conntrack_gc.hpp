// The agent's half of connection tracking (sdk/bpf/membrane/conntrack.h):
// the datapath refreshes and reads entries, the agent deletes the dead ones.
// "Dead" is only ever an entry whose lifetime ran out by the datapath's own
// clock (CLOCK_MONOTONIC_COARSE, which bpf_ktime_get_coarse_ns reads), so a sweep at start
// finds what a killed agent left and deletes nothing that is live. The LRU
// table evicts its least recently used entry when full; a sweep that finds
// it nearly full says so, since an evicted entry turns its connection's
// replies into new connections.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/logger.h>

namespace membrane::kernel {

struct ConntrackSweep {
    std::uint64_t live = 0;     // entries left
    std::uint64_t deleted = 0;  // expired entries deleted
};

// One pass over the CT map `map_fd` at time `now_ns` (conntrack_now_ns()).
ConntrackSweep sweep_conntrack(int map_fd, std::uint64_t now_ns);
// CLOCK_MONOTONIC_COARSE now, in nanoseconds: the datapath's conntrack clock
// (membrane_ct_now(): bpf_ktime_get_coarse_ns()).
std::uint64_t conntrack_now_ns();

struct ConntrackStatus {
    std::uint64_t entries = 0;  // live after the last sweep
    std::uint64_t capacity = 0;
    std::uint64_t deleted_total = 0;
    std::uint64_t full_sweeps = 0;  // sweeps that found the table at least 90% full
};

// Sweeps every `interval` on the agent's loop, the first time at once.
class ConntrackGc {
public:
    ConntrackGc(boost::asio::io_context& io, int map_fd, std::shared_ptr<spdlog::logger> log,
                std::chrono::milliseconds interval = std::chrono::seconds(30));
    ConntrackGc(const ConntrackGc&) = delete;
    ConntrackGc& operator=(const ConntrackGc&) = delete;

    void sweep_now();
    const ConntrackStatus& status() const { return status_; }

private:
    void schedule();

    int map_fd_;
    std::shared_ptr<spdlog::logger> log_;
    std::chrono::milliseconds interval_;
    boost::asio::steady_timer timer_;
    ConntrackStatus status_;
};

}  // namespace membrane::kernel
