// The flow monitor: reads the datapath's event ring buffer (mbr_events_v1,
// membrane/monitor.h) on the agent's loop, with no thread of its own (the
// ring buffer's epoll fd is waited on like any socket), names each event's
// pods and keeps the last [monitor] history events in memory, numbered, for
// `membranectl monitor` (D-Bus GetFlows: a cursor over that history).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <spdlog/logger.h>

#include "bus/event_bus.hpp"
#include "config/agent_config.hpp"
#include "monitor/flow_event.hpp"

struct ring_buffer;

namespace membrane::kernel {

// The pinned maps of membrane/monitor.h, as the core object holds them.
struct MonitorMaps {
    int events = -1;    // MBR_MAP_EVENTS (ring buffer)
    int sampling = -1;  // MBR_MAP_EVENT_SAMPLING
    int lost = -1;      // MBR_MAP_EVENTS_LOST (per CPU)
    int limit = -1;     // MBR_MAP_EVENT_LIMIT
};

class FlowMonitor {
public:
    // Who is behind an address (host order) with that identity: asked once
    // per (address, identity) until an endpoint, remote endpoint or identity
    // event says the answer may have changed.
    using Resolve = std::function<FlowPeer(std::uint32_t ipv4, std::uint32_t identity)>;

    // Writes the sampling of `settings` into the datapath; throws BpfError
    // if the maps cannot be read or written.
    FlowMonitor(boost::asio::io_context& io, MonitorMaps maps, const MonitorSettings& settings, Resolve resolve,
                EventBus& bus, std::shared_ptr<spdlog::logger> log);
    ~FlowMonitor();
    FlowMonitor(const FlowMonitor&) = delete;
    FlowMonitor& operator=(const FlowMonitor&) = delete;

    struct Page {
        std::vector<FlowEvent> events;  // seq > after, oldest first, at most `max`
        std::uint64_t last = 0;         // the newest seq read so far (0: none yet)
    };
    // The kept events after `after` (0: the oldest kept).
    Page events_after(std::uint64_t after, std::size_t max) const;
    // Events the datapath could not report (full buffer), by type, summed over CPUs.
    std::array<std::uint64_t, MBR_EVENT_TYPES> lost() const;
    // Reads what the ring buffer holds now, up to a budget per loop turn (the
    // loop does it when the buffer is readable, and again while more waits).
    void drain();

private:
    static int on_event(void* self, void* data, std::size_t size);
    void keep(const mbr_event& raw);
    void wait();
    FlowPeer peer(std::uint32_t ipv4, std::uint32_t identity);

    MonitorMaps maps_;
    std::size_t history_size_;
    Resolve resolve_;
    std::shared_ptr<spdlog::logger> log_;
    ring_buffer* ring_ = nullptr;
    boost::asio::posix::stream_descriptor readable_;
    std::deque<FlowEvent> history_;
    std::uint64_t last_seq_ = 0;
    std::size_t read_this_turn_ = 0;
    std::int64_t monotonic_to_wall_ = 0;  // this drain's: wall-clock ns - CLOCK_MONOTONIC ns
    std::unordered_map<std::uint64_t, FlowPeer> peers_;  // (ipv4 << 32 | identity) -> who
    std::vector<Subscription> subscriptions_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace membrane::kernel
