#include "monitor/flow_monitor.hpp"

#include <bpf/bpf.h>
#include <boost/asio/post.hpp>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "bpf/bpf_error.hpp"
#include "bpf/stats_map.hpp"
#include "membrane/events.hpp"

namespace membrane::kernel {
namespace {

// Events read per loop turn: under a flood the loop still answers D-Bus,
// CNI and the store's keep-alives between two batches.
constexpr std::size_t kDrainBudget = 2048;
constexpr int kBudgetSpent = -EAGAIN;
// Names kept for (address, identity) pairs; more are forgotten all at once.
constexpr std::size_t kPeerCacheSize = 65536;

std::int64_t clock_ns(clockid_t clock) {
    timespec now{};
    clock_gettime(clock, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

}  // namespace

FlowMonitor::FlowMonitor(boost::asio::io_context& io, MonitorMaps maps, const MonitorSettings& settings,
                         Resolve resolve, EventBus& bus, std::shared_ptr<spdlog::logger> log)
    : maps_(maps), history_size_(settings.history), resolve_(std::move(resolve)), log_(std::move(log)), readable_(io) {
    const std::array<std::uint32_t, MBR_EVENT_TYPES> sampling{settings.drop_sampling, settings.verdict_sampling,
                                                               settings.trace_sampling};
    for (std::uint32_t type = 0; type < MBR_EVENT_TYPES; ++type) {
        if (bpf_map_update_elem(maps_.sampling, &type, &sampling[type], BPF_ANY) != 0) {
            throw_bpf_error("cannot set the sampling of event type " + std::to_string(type) + " in " MBR_MAP_EVENT_SAMPLING,
                            -errno);
        }
    }
    const std::uint32_t zero = 0;
    const mbr_event_limit limit{.events_per_second = settings.rate_limit, .burst = settings.rate_limit};
    if (bpf_map_update_elem(maps_.limit, &zero, &limit, BPF_ANY) != 0)
        throw_bpf_error("cannot set the event rate limit in " MBR_MAP_EVENT_LIMIT, -errno);
    ring_ = ring_buffer__new(maps_.events, &FlowMonitor::on_event, this, nullptr);
    if (!ring_) throw_bpf_error("cannot read the event ring buffer " MBR_MAP_EVENTS, -errno);
    readable_.assign(ring_buffer__epoll_fd(ring_));
    // Whatever may change who is behind an address: asked again on the next event.
    auto forget = [this](const auto&) { peers_.clear(); };
    subscriptions_.push_back(bus.subscribe<events::EndpointCreated>("monitor", forget));
    subscriptions_.push_back(bus.subscribe<events::EndpointUpdated>("monitor", forget));
    subscriptions_.push_back(bus.subscribe<events::EndpointDeleted>("monitor", forget));
    subscriptions_.push_back(bus.subscribe<events::RemoteEndpointUpdated>("monitor", forget));
    subscriptions_.push_back(bus.subscribe<events::RemoteEndpointRemoved>("monitor", forget));
    subscriptions_.push_back(bus.subscribe<events::IdentityAdded>("monitor", forget));
    subscriptions_.push_back(bus.subscribe<events::IdentityRemoved>("monitor", forget));
    wait();
}

FlowMonitor::~FlowMonitor() {
    *alive_ = false;
    boost::system::error_code ignored;
    readable_.cancel(ignored);
    readable_.release();  // the epoll fd is the ring buffer's: ring_buffer__free closes it
    ring_buffer__free(ring_);
}

void FlowMonitor::wait() {
    readable_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                         [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& error) {
                             if (alive.expired() || error == boost::asio::error::operation_aborted) return;
                             if (error) {
                                 log_->error("the event ring buffer cannot be waited on ({}): the monitor stops",
                                             error.message());
                                 return;
                             }
                             drain();
                             wait();
                         });
}

void FlowMonitor::drain() {
    // Poll, not consume: epoll_wait on the ring buffer's own epoll set takes
    // the drained ring off its ready list, so the next event makes the set
    // readable anew (the loop's epoll watches it edge-triggered).
    read_this_turn_ = 0;
    // One offset for the batch: the clocks do not drift apart within a turn.
    monotonic_to_wall_ = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
    const int read = ring_buffer__poll(ring_, 0);
    if (read == kBudgetSpent) {
        // More is waiting, and no new edge will say so: the next turn reads on.
        boost::asio::post(readable_.get_executor(), [this, alive = std::weak_ptr<bool>(alive_)] {
            if (!alive.expired()) drain();
        });
    } else if (read < 0) {
        log_->warn("reading the event ring buffer: {}", std::strerror(-read));
    }
}

// A C callback of libbpf: nothing may unwind through it.
int FlowMonitor::on_event(void* self, void* data, std::size_t size) {
    auto& monitor = *static_cast<FlowMonitor*>(self);
    try {
        if (size >= sizeof(mbr_event)) monitor.keep(*static_cast<const mbr_event*>(data));
    } catch (const std::exception& e) {
        monitor.log_->warn("an event was not kept: {}", e.what());
    }
    return ++monitor.read_this_turn_ >= kDrainBudget ? kBudgetSpent : 0;
}

void FlowMonitor::keep(const mbr_event& raw) {
    FlowEvent event = decode_flow_event(raw, ++last_seq_, monotonic_to_wall_);
    if (raw.protocol != 0) {
        event.source_peer = peer(ntohl(raw.saddr), raw.src_identity);
        event.destination_peer = peer(ntohl(raw.daddr), raw.dst_identity);
    }
    history_.push_back(std::move(event));
    while (history_.size() > history_size_) history_.pop_front();
}

FlowPeer FlowMonitor::peer(std::uint32_t ipv4, std::uint32_t identity) {
    // Only an allocated identity is a pod's. An address with no identity
    // (a spoofed source, the world) is not named after whoever owns it.
    if (identity < MBR_IDENTITY_FIRST_ALLOCATED) return {};
    const std::uint64_t key = (std::uint64_t{ipv4} << 32) | identity;
    if (auto found = peers_.find(key); found != peers_.end()) return found->second;
    if (peers_.size() >= kPeerCacheSize) peers_.clear();
    return peers_.emplace(key, resolve_(ipv4, identity)).first->second;
}

FlowMonitor::Page FlowMonitor::events_after(std::uint64_t after, std::size_t max) const {
    Page page;
    page.last = last_seq_;
    // Numbered without gaps: the first kept event tells where `after` lies.
    auto from = history_.begin();
    if (!history_.empty() && after >= history_.front().seq) {
        from += static_cast<std::ptrdiff_t>(std::min<std::uint64_t>(after - history_.front().seq + 1, history_.size()));
    }
    for (auto it = from; it != history_.end() && page.events.size() < max; ++it) page.events.push_back(*it);
    return page;
}

std::array<std::uint64_t, MBR_EVENT_TYPES> FlowMonitor::lost() const {
    const auto counts = read_percpu_counters(maps_.lost, MBR_EVENT_TYPES);
    std::array<std::uint64_t, MBR_EVENT_TYPES> out{};
    std::copy_n(counts.begin(), std::min(counts.size(), out.size()), out.begin());
    return out;
}

}  // namespace membrane::kernel
