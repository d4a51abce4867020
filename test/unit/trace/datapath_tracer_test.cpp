// The datapath tracer on a real kernel: the core's entry program and probe
// stages run one by one with BPF_PROG_TEST_RUN as `membranectl policy
// trace` runs them. What each did is read back; nothing is counted, tracked
// or reported; a run without the agent's token is a packet like any other.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>

#include "../bpf/registry_fixture.hpp"
#include "bpf/pipeline_slots.hpp"
#include "bpf/stats_map.hpp"
#include "config/ipv4.hpp"
#include "trace/datapath_tracer.hpp"
#include "trace/trace_frame.hpp"

MEMBRANE_EMBEDDED_BPF(trace_probe_bpf)

namespace membrane::kernel::test {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;

class DatapathTracerTest : public RegistryTest {
protected:
    void SetUp() override {
        registry = make_core_registry();
        probe = registry->for_module("probe", 1);
        object = &probe->load(BpfObjectSpec{.name = "probe", .elf = trace_probe_bpf(), .persistent_maps = {}});
        // Every event type reported, so a report that escaped would be seen.
        for (std::uint32_t type = 0; type < MBR_EVENT_TYPES; ++type) {
            const std::uint32_t every = 1;
            ASSERT_EQ(bpf_map_update_elem(registry->core_map_fd(MBR_MAP_EVENT_SAMPLING), &type, &every, BPF_ANY), 0);
        }
        tracer = std::make_unique<DatapathTracer>(registry->core_map_fd(MBR_MAP_PIPELINE),
                                                  registry->core_map_fd(MBR_MAP_STAGE_VERDICTS),
                                                  registry->core_map_fd(MBR_MAP_TRACE));
        entry = TraceEntry{.program = MBR_ENTRY_FROM_NETDEV,
                           .program_fd = registry->core_program_fd(MBR_ENTRY_FROM_NETDEV),
                           .device = "lo",
                           .ifindex = 1};
    }

    // A TCP SYN from the world to 10.1.2.3:5432, as it arrives on a node device.
    std::vector<std::byte> syn() const {
        return build_trace_frame({.source_ip = *parse_ipv4("203.0.113.9"),
                                  .destination_ip = *parse_ipv4("10.1.2.3"),
                                  .protocol = 6,
                                  .source_port = 43210,
                                  .destination_port = 5432});
    }

    std::uint64_t counted() const {
        std::uint64_t sum = 0;
        for (const auto count : read_percpu_counters(registry->core_map_fd(MBR_MAP_STATS), MBR_STAT_MAX)) sum += count;
        return sum;
    }

    bool tracked_anything() const {
        mbr_ct_key key{};
        return bpf_map_get_next_key(registry->core_map_fd(MBR_MAP_CT), nullptr, &key) == 0;
    }

    std::size_t events_reported() const {
        std::size_t events = 0;
        ring_buffer* ring = ring_buffer__new(
            registry->core_map_fd(MBR_MAP_EVENTS),
            [](void* count, void*, std::size_t) {
                ++*static_cast<std::size_t*>(count);
                return 0;
            },
            &events, nullptr);
        EXPECT_NE(ring, nullptr);
        if (ring) {
            ring_buffer__consume(ring);
            ring_buffer__free(ring);
        }
        return events;
    }

    std::unique_ptr<Registry> registry;
    std::unique_ptr<ModuleBpf> probe;
    BpfObject* object = nullptr;
    const TraceEntry& entry_point() const { return entry; }

    std::unique_ptr<DatapathTracer> tracer;
    TraceEntry entry;
};

TEST_F(DatapathTracerTest, RunsTheEntryThenEachFilledStageAndChangesNothing) {
    probe->attach_stage(MBR_STAGE_EGRESS_POLICY, *object, "probe_allow");
    const auto steps = tracer->run(entry, syn());

    ASSERT_EQ(steps.size(), 4u);
    EXPECT_EQ(steps[0].stage, MBR_EVENT_STAGE_ENTRY);
    EXPECT_EQ(steps[0].action, TraceStep::Action::handed_on);
    EXPECT_EQ(steps[0].counted, MBR_STAT_ENTRY_FROM_NETDEV);
    EXPECT_EQ(steps[0].context.src_identity, MBR_IDENTITY_WORLD);
    EXPECT_EQ(steps[0].context.flags & 0xff, MBR_DIR_FROM_NETDEV);
    EXPECT_EQ((steps[0].context.flags >> MBR_CTX_CT_SHIFT) & 0xff, MBR_CT_NEW);
    EXPECT_EQ(steps[0].context.stage, 0);  // where the agent goes on

    EXPECT_EQ(steps[1].stage, MBR_STAGE_EGRESS_POLICY);
    EXPECT_EQ(steps[1].program, "probe_allow");
    EXPECT_EQ(steps[1].action, TraceStep::Action::handed_on);
    EXPECT_EQ(steps[1].counted, MBR_STAT_DROP_INVALID);
    ASSERT_TRUE(steps[1].event.has_value());
    EXPECT_EQ(steps[1].event->type, MBR_EVENT_VERDICT);
    EXPECT_EQ(steps[1].event->rule_id, 9u);
    EXPECT_EQ(steps[1].event->stage, MBR_STAGE_EGRESS_POLICY);

    EXPECT_EQ(steps[2].stage, MBR_STAGE_DELIVERY);  // the kernel's: not for a local pod, on
    EXPECT_EQ(steps[2].action, TraceStep::Action::handed_on);
    EXPECT_EQ(steps[3].stage, MBR_STAGE_MAX);  // past the last slot
    EXPECT_EQ(steps[3].action, TraceStep::Action::passed);
    EXPECT_EQ(steps[3].counted, MBR_STAT_PIPELINE_DONE);

    EXPECT_EQ(counted(), 0u);
    EXPECT_FALSE(tracked_anything());
    EXPECT_EQ(events_reported(), 0u);
}

TEST_F(DatapathTracerTest, ADropEndsTheTraceWithItsReasonAndRule) {
    probe->attach_stage(MBR_STAGE_EGRESS_POLICY, *object, "probe_drop");
    const auto steps = tracer->run(entry, syn());
    ASSERT_EQ(steps.size(), 2u);
    EXPECT_EQ(steps[1].action, TraceStep::Action::dropped);
    EXPECT_EQ(steps[1].retval, TC_ACT_SHOT);
    EXPECT_EQ(steps[1].counted, MBR_STAT_DROP_POLICY);
    ASSERT_TRUE(steps[1].event.has_value());
    EXPECT_EQ(steps[1].event->type, MBR_EVENT_DROP);
    EXPECT_EQ(steps[1].event->rule_id, 7u);
    EXPECT_EQ(counted(), 0u);
    EXPECT_EQ(events_reported(), 0u);
}

TEST_F(DatapathTracerTest, AnEmptyFailClosedSlotDropsAsOnTheWire) {
    set_empty_slot_verdict(registry->core_map_fd(MBR_MAP_STAGE_VERDICTS), MBR_STAGE_INGRESS_POLICY, EmptySlot::drop);
    const auto steps = tracer->run(entry, syn());
    ASSERT_EQ(steps.size(), 2u);
    EXPECT_EQ(steps[1].stage, MBR_STAGE_INGRESS_POLICY);
    EXPECT_TRUE(steps[1].empty_slot);
    EXPECT_EQ(steps[1].action, TraceStep::Action::dropped);
    EXPECT_EQ(steps[1].counted, MBR_STAT_DROP_STAGE_MISSING);
}

// A connection the trace's packet belongs to is looked up, not refreshed:
// its entry's lifetime and flags stay as they were.
TEST_F(DatapathTracerTest, ATrackedConnectionIsSeenNotRefreshed) {
    mbr_ct_key key{};
    key.saddr = htonl(*parse_ipv4("203.0.113.9"));
    key.daddr = htonl(*parse_ipv4("10.1.2.3"));
    key.sport = htons(43210);
    key.dport = htons(5432);
    key.protocol = 6;
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const mbr_ct_value entry{.expires_ns = static_cast<__u64>(now.tv_sec + 30) * 1000000000ull, .flags = 0, .reserved = 0};
    const int ct = registry->core_map_fd(MBR_MAP_CT);
    ASSERT_EQ(bpf_map_update_elem(ct, &key, &entry, BPF_ANY), 0);
    const auto steps = tracer->run(entry_point(), syn());
    EXPECT_EQ((steps[0].context.flags >> MBR_CTX_CT_SHIFT) & 0xff, MBR_CT_ESTABLISHED);
    mbr_ct_value after{};
    ASSERT_EQ(bpf_map_lookup_elem(ct, &key, &after), 0);
    EXPECT_EQ(after.expires_ns, entry.expires_ns) << "refreshed by a trace";
    EXPECT_EQ(after.flags, entry.flags);
}

// The proof that the checks above can fail: the same run without the
// agent's token is a packet like any other, counted, tracked and reported.
TEST_F(DatapathTracerTest, ARunWithoutTheTokenIsNoTrace) {
    probe->attach_stage(MBR_STAGE_EGRESS_POLICY, *object, "probe_allow");
    const auto frame = syn();
    __sk_buff context{};
    context.cb[0] = 0x12345678;  // a guess
    context.cb[1] = 0x9abcdef0;
    context.cb[4] = MBR_TRACE_REQUEST_MAGIC;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = static_cast<__u32>(frame.size()),
                .ctx_in = &context, .ctx_size_in = sizeof(context), .repeat = 1);
    ASSERT_EQ(bpf_prog_test_run_opts(entry.program_fd, &opts), 0) << std::strerror(errno);
    EXPECT_NE(opts.retval, static_cast<__u32>(MBR_TRACE_HANDED_ON));
    EXPECT_GE(counted(), 3u);  // entry, probe, pipeline done
    EXPECT_TRUE(tracked_anything());
    EXPECT_EQ(events_reported(), 1u);
}

}  // namespace
}  // namespace membrane::kernel::test
