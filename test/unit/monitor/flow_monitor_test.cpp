// The flow monitor on a real kernel: a stage's report (membrane/monitor.h)
// goes through the core's pinned ring buffer and comes out of FlowMonitor
// decoded and named; sampling, a full buffer and the history behave as
// documented. The probe stage is run with BPF_PROG_TEST_RUN, with the
// context an entry program would have left in skb->cb.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <chrono>
#include <limits>
#include <thread>

#include "../bpf/pod_frames.hpp"
#include "../bpf/registry_fixture.hpp"
#include "bpf/stats_map.hpp"
#include "membrane/events.hpp"
#include "membrane/stage_names.hpp"
#include "monitor/flow_monitor.hpp"

MEMBRANE_EMBEDDED_BPF(report_probe_bpf)

namespace membrane::kernel::test {
namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t kWeb = MBR_IDENTITY_FIRST_ALLOCATED + 1;
constexpr std::uint32_t kDb = MBR_IDENTITY_FIRST_ALLOCATED + 2;

// A TCP SYN from 10.1.1.2:43210 to 10.1.2.3:5432.
Frame tcp_syn() {
    using namespace frame_detail;
    Frame frame = ethernet(Mac{2, 0, 0, 0, 0, 2}, Mac{2, 0, 0, 0, 0, 1}, kEtherIpv4);
    const std::size_t ip = frame.size();
    put16(frame, 0x4500);
    put16(frame, 20 + 20);
    put16(frame, 0x1234);
    put16(frame, 0x4000);
    put16(frame, 0x4006);  // TTL 64, TCP
    put16(frame, 0);
    put_ipv4(frame, ipv4_be("10.1.1.2"));
    put_ipv4(frame, ipv4_be("10.1.2.3"));
    put_checksum(frame, ip, 20, ip + 10);
    put16(frame, 43210);
    put16(frame, 5432);
    for (int i = 0; i < 8; ++i) frame.push_back(0);  // sequence, acknowledgement
    put16(frame, 0x5002);                            // 20-byte header, SYN
    put16(frame, 64240);
    put16(frame, 0);  // checksum: not read
    put16(frame, 0);
    return frame;
}

class FlowMonitorTest : public RegistryTest {
protected:
    void SetUp() override {
        registry = make_core_registry();
        probe = registry->for_module("probe", 1);
        auto& object = probe->load(BpfObjectSpec{.name = "probe", .elf = report_probe_bpf(), .persistent_maps = {}});
        program = object.program_fd("report_drop");
        forward_program = object.program_fd("report_forward");
        maps = {registry->core_map_fd(MBR_MAP_EVENTS), registry->core_map_fd(MBR_MAP_EVENT_SAMPLING),
                registry->core_map_fd(MBR_MAP_EVENTS_LOST), registry->core_map_fd(MBR_MAP_EVENT_LIMIT)};
    }

    std::unique_ptr<FlowMonitor> monitor(MonitorSettings settings = {}) {
        return std::make_unique<FlowMonitor>(
            io, maps, settings,
            [this](std::uint32_t ipv4, std::uint32_t identity) {
                ++resolved;
                FlowPeer peer;
                if (ipv4 == ntohl(ipv4_be("10.1.2.3"))) peer = {"shop", "db-1", "node2", {{"app", "db"}}};
                if (identity == kWeb) peer = {"shop", "web-1", "", {{"app", "web"}}};
                return peer;
            },
            bus, log.logger);
    }

    // Runs the probe `times` over the SYN, with the context of a packet a pod
    // sent, in the egress policy stage.
    void run_probe(std::uint32_t times) { run(program, times, TC_ACT_SHOT); }

    void run(int probe_program, std::uint32_t times, int verdict) {
        const Frame frame = tcp_syn();
        __sk_buff context{};
        const membrane_ctx ctx{.src_identity = kWeb,
                               .dst_identity = kDb,
                               .flags = MBR_DIR_FROM_ENDPOINT,
                               .proxy_port = 0,
                               .stage = MBR_STAGE_EGRESS_POLICY,
                               .magic = MBR_CTX_MAGIC};
        std::memcpy(context.cb, &ctx, sizeof(ctx));
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = static_cast<__u32>(frame.size()),
                    .ctx_in = &context, .ctx_size_in = sizeof(context), .repeat = static_cast<int>(times));
        ASSERT_EQ(bpf_prog_test_run_opts(probe_program, &opts), 0) << std::strerror(errno);
        EXPECT_EQ(opts.retval, static_cast<__u32>(verdict));
    }

    std::uint64_t policy_drops() const {
        return read_percpu_counters(registry->core_map_fd(MBR_MAP_STATS), MBR_STAT_MAX).at(MBR_STAT_DROP_POLICY);
    }

    std::unique_ptr<Registry> registry;
    std::unique_ptr<ModuleBpf> probe;
    int program = -1;
    int forward_program = -1;
    MonitorMaps maps;
    boost::asio::io_context io;
    EventBus bus{io};
    int resolved = 0;
};

TEST_F(FlowMonitorTest, ADropReadsWithoutThePacket) {
    auto flows = monitor();
    run_probe(1);
    flows->drain();
    const auto page = flows->events_after(0, 10);
    ASSERT_EQ(page.events.size(), 1u);
    const FlowEvent& event = page.events[0];
    EXPECT_EQ(event.seq, 1u);
    EXPECT_EQ(page.last, 1u);
    EXPECT_EQ(event.type, "drop");
    EXPECT_EQ(event.verdict, "dropped");
    EXPECT_EQ(event.reason, "drop_policy");
    EXPECT_EQ(event.rule_id, 7u);
    EXPECT_EQ(event.stage, "egress-policy");
    EXPECT_EQ(event.direction, "from-endpoint");
    EXPECT_EQ(event.protocol, "TCP");
    EXPECT_EQ(event.tcp_flags, "SYN");
    EXPECT_EQ(event.source, "10.1.1.2");
    EXPECT_EQ(event.source_port, 43210);
    EXPECT_EQ(event.destination, "10.1.2.3");
    EXPECT_EQ(event.destination_port, 5432);
    EXPECT_EQ(event.source_identity, kWeb);
    EXPECT_EQ(event.destination_identity, kDb);
    EXPECT_EQ(event.source_peer.pod, "web-1");
    EXPECT_EQ(event.destination_peer.node, "node2");
    const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    EXPECT_LT(std::abs(now - event.time_ns), std::chrono::nanoseconds(5s).count()) << "a time of day";
    EXPECT_EQ(policy_drops(), 1u) << "counted as well as reported";
}

// A forwarded packet is a trace point: off by default, shown once asked for.
TEST_F(FlowMonitorTest, TracePointsSayWhereAPacketWasForwarded) {
    const auto delivered = [&] {
        return read_percpu_counters(registry->core_map_fd(MBR_MAP_STATS), MBR_STAT_MAX).at(MBR_STAT_DELIVERED_LOCAL);
    };
    {
        auto flows = monitor();  // trace_sampling 0
        run(forward_program, 3, TC_ACT_REDIRECT);
        flows->drain();
        EXPECT_TRUE(flows->events_after(0, 10).events.empty());
        EXPECT_EQ(delivered(), 3u) << "counted all the same";
    }
    MonitorSettings settings;
    settings.trace_sampling = 1;
    auto flows = monitor(settings);
    run(forward_program, 1, TC_ACT_REDIRECT);
    flows->drain();
    const auto page = flows->events_after(0, 10);
    ASSERT_EQ(page.events.size(), 1u);
    EXPECT_EQ(page.events[0].type, "trace");
    EXPECT_EQ(page.events[0].verdict, "forwarded");
    EXPECT_EQ(page.events[0].reason, "delivered_local");
    EXPECT_EQ(page.events[0].destination, "10.1.2.3");
    EXPECT_EQ(delivered(), 4u);
}

// The loop reads the ring buffer when it becomes readable, on its own.
TEST_F(FlowMonitorTest, TheLoopReadsWhatArrives) {
    auto flows = monitor();
    run_probe(3);
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (flows->events_after(0, 10).events.size() < 3 && std::chrono::steady_clock::now() < deadline) {
        io.run_for(20ms);
    }
    EXPECT_EQ(flows->events_after(0, 10).events.size(), 3u);
    EXPECT_EQ(resolved, 2) << "each (address, identity) resolved once";
    bus.publish(events::EndpointDeleted{});
    io.restart();
    io.run_for(50ms);  // the bus delivers on the loop
    run_probe(1);
    flows->drain();
    EXPECT_EQ(resolved, 4) << "an endpoint event forgets the names";
}

TEST_F(FlowMonitorTest, ASamplingOfZeroReportsNothingButTheDropIsCounted) {
    MonitorSettings settings;
    settings.drop_sampling = 0;
    auto flows = monitor(settings);
    run_probe(10);
    flows->drain();
    EXPECT_TRUE(flows->events_after(0, 10).events.empty());
    EXPECT_EQ(policy_drops(), 10u);
    EXPECT_EQ(flows->lost()[MBR_EVENT_DROP], 0u);
}

TEST_F(FlowMonitorTest, OneInNIsAboutOneInN) {
    MonitorSettings settings;
    settings.drop_sampling = 10;
    auto flows = monitor(settings);
    run_probe(5000);
    flows->drain();
    const auto kept = flows->events_after(0, 10000).events.size();
    EXPECT_GT(kept, 350u);
    EXPECT_LT(kept, 650u);
}

// The report never waits: with nobody reading, a full buffer loses events,
// counts them, and every packet is still dropped and counted.
TEST_F(FlowMonitorTest, AFullRingBufferIsCountedNotWaitedFor) {
    MonitorSettings settings;
    settings.history = 100000;
    settings.rate_limit = 0;  // the buffer, not the rate, is the limit here
    auto flows = monitor(settings);
    constexpr std::uint32_t kRuns = 30000;
    run_probe(kRuns);
    EXPECT_EQ(policy_drops(), kRuns);
    const auto lost = flows->lost()[MBR_EVENT_DROP];
    // One read takes a loop turn's budget, then hands the loop back.
    flows->drain();
    EXPECT_EQ(flows->events_after(0, 100000).events.size(), 2048u);
    // Generous (a loaded sanitizer build is slow): the loop ends when every event is read.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    std::size_t kept = 0;
    while (kept + lost < kRuns && std::chrono::steady_clock::now() < deadline) {
        io.restart();
        io.run_for(10ms);  // the rest, a budget per turn
        kept = flows->events_after(0, 100000).events.size();
    }
    EXPECT_GT(lost, 0u);
    EXPECT_EQ(kept + lost, kRuns);
    // Each record has an 8-byte header in the ring.
    EXPECT_EQ(kept, (std::size_t{1} << 20) / (sizeof(mbr_event) + 8)) << "the buffer full, no more";
}

// A flood's events stop at the CPU's budget (rate_limit, also its burst);
// the rest are counted as lost; the budget refills with time.
TEST_F(FlowMonitorTest, EachCpuReportsAtMostItsRateLimit) {
    MonitorSettings settings;
    settings.history = 100000;
    settings.rate_limit = 1000;
    auto flows = monitor(settings);
    const auto began = std::chrono::steady_clock::now();
    run_probe(5000);  // one CPU (the test run's)
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    flows->drain();
    const auto kept = flows->events_after(0, 100000).events.size();
    EXPECT_GE(kept, 1000u) << "the burst";
    EXPECT_LE(kept, 1000u + static_cast<std::size_t>(seconds * 1000) + 1) << "the burst and the refill";
    EXPECT_EQ(kept + flows->lost()[MBR_EVENT_DROP], 5000u);
    EXPECT_EQ(policy_drops(), 5000u) << "every packet dropped and counted";
    std::this_thread::sleep_for(1100ms);
    run_probe(10);
    flows->drain();
    EXPECT_EQ(flows->events_after(0, 100000).events.size(), kept + 10) << "refilled";
}

TEST_F(FlowMonitorTest, TheHistoryKeepsTheNewestAndPagesByNumber) {
    MonitorSettings settings;
    settings.history = 100;
    auto flows = monitor(settings);
    run_probe(150);
    flows->drain();
    auto page = flows->events_after(0, 1000);
    ASSERT_EQ(page.events.size(), 100u);
    EXPECT_EQ(page.events.front().seq, 51u);
    EXPECT_EQ(page.last, 150u);
    page = flows->events_after(120, 10);
    ASSERT_EQ(page.events.size(), 10u);
    EXPECT_EQ(page.events.front().seq, 121u);
    EXPECT_EQ(page.events.back().seq, 130u);
    EXPECT_TRUE(flows->events_after(150, 10).events.empty());
    EXPECT_TRUE(flows->events_after(std::numeric_limits<std::uint64_t>::max(), 10).events.empty());
    EXPECT_EQ(flows->events_after(7, 1).events.at(0).seq, 51u) << "past the oldest: from the oldest kept";
}

TEST(FlowEventNames, TcpFlagsAndStages) {
    EXPECT_EQ(tcp_flags_text(0x12), "SYN ACK");
    EXPECT_EQ(tcp_flags_text(0x11), "ACK FIN");
    EXPECT_EQ(tcp_flags_text(0), "");
    EXPECT_EQ(event_stage_name(MBR_EVENT_STAGE_ENTRY), "entry");
    EXPECT_EQ(event_stage_name(MBR_STAGE_INGRESS_POLICY), "ingress-policy");
    EXPECT_EQ(event_stage_name(9), "custom-9");
    EXPECT_EQ(membrane::direction_name(MBR_DIR_FROM_OVERLAY), "from-overlay");
    EXPECT_EQ(membrane::direction_name(0), "");
}

}  // namespace
}  // namespace membrane::kernel::test
