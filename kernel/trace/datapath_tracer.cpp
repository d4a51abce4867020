#include "trace/datapath_tracer.hpp"

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <pthread.h>
#include <sched.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <fmt/format.h>

#include "bpf/bpf_error.hpp"
#include "bpf/pipeline_slots.hpp"
#include "bpf/unique_fd.hpp"

namespace membrane::kernel {
namespace {

// Room for what a stage may add in front (an encapsulation) and more.
constexpr std::size_t kFrameRoom = 4096;
// The kernel's bound on a chain of tail calls (MAX_TAIL_CALL_CNT): on the
// wire a pipeline cannot run longer, so neither does a trace.
constexpr std::size_t kMaxSteps = 33;

// Pins the calling thread to the CPU it is on until the end of the scope.
class PinnedToOneCpu {
public:
    PinnedToOneCpu() {
        pinned_ = pthread_getaffinity_np(pthread_self(), sizeof(before_), &before_) == 0;
        const int cpu = sched_getcpu();
        if (!pinned_ || cpu < 0) {
            pinned_ = false;
            return;
        }
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        pinned_ = pthread_setaffinity_np(pthread_self(), sizeof(one), &one) == 0;
    }
    ~PinnedToOneCpu() {
        if (pinned_) pthread_setaffinity_np(pthread_self(), sizeof(before_), &before_);
    }
    PinnedToOneCpu(const PinnedToOneCpu&) = delete;
    PinnedToOneCpu& operator=(const PinnedToOneCpu&) = delete;

private:
    cpu_set_t before_{};
    bool pinned_ = false;
};

TraceStep::Action action_of(std::int32_t retval) {
    switch (retval) {
        case MBR_TRACE_HANDED_ON: return TraceStep::Action::handed_on;
        case TC_ACT_OK:
        case TC_ACT_UNSPEC: return TraceStep::Action::passed;
        case TC_ACT_SHOT: return TraceStep::Action::dropped;
        case TC_ACT_REDIRECT: return TraceStep::Action::redirected;
        default: return TraceStep::Action::other;
    }
}

// What membrane_run_from() decides itself, where no program runs: an empty
// fail-closed slot, or the end of the pipeline.
TraceStep no_program_step(std::uint32_t stage, TraceStep::Action action, std::int32_t retval, std::uint32_t counted,
                          const membrane_ctx& context) {
    TraceStep step;
    step.stage = stage;
    step.action = action;
    step.retval = retval;
    step.counted = counted;
    step.context = context;
    return step;
}

std::string program_name(int program_fd, std::uint32_t& id) {
    bpf_prog_info info{};
    std::uint32_t length = sizeof(info);
    if (bpf_obj_get_info_by_fd(program_fd, &info, &length) != 0) return {};
    id = info.id;
    return info.name;
}

}  // namespace

const char* action_name(TraceStep::Action action) {
    switch (action) {
        case TraceStep::Action::handed_on: return "handed-on";
        case TraceStep::Action::passed: return "passed";
        case TraceStep::Action::dropped: return "dropped";
        case TraceStep::Action::redirected: return "redirected";
        case TraceStep::Action::other: return "other";
    }
    return "other";
}

DatapathTracer::DatapathTracer(int pipeline_fd, int verdicts_fd, int trace_fd)
    : pipeline_fd_(pipeline_fd), verdicts_fd_(verdicts_fd), trace_fd_(trace_fd) {
    while (token_ == 0) {
        if (getrandom(&token_, sizeof(token_), 0) != static_cast<ssize_t>(sizeof(token_))) {
            throw_bpf_error("cannot draw the trace token", -errno);
        }
    }
    const std::uint32_t zero = 0;
    mbr_trace_record record{};
    record.token = token_;
    if (const int err = bpf_map_update_elem(trace_fd_, &zero, &record, BPF_ANY); err) {
        throw_bpf_error("cannot write the trace token into " MBR_MAP_TRACE, err);
    }
}

std::vector<TraceStep> DatapathTracer::run(const TraceEntry& entry, std::span<const std::byte> frame) const {
    const PinnedToOneCpu pinned;
    std::vector<TraceStep> steps;
    std::vector<std::byte> packet(frame.begin(), frame.end());
    __sk_buff context{};
    context.cb[0] = static_cast<std::uint32_t>(token_);
    context.cb[1] = static_cast<std::uint32_t>(token_ >> 32);
    context.cb[2] = entry.vni;
    context.cb[3] = entry.outer_source;
    context.cb[4] = MBR_TRACE_REQUEST_MAGIC;

    // One program over the packet and context as they are now; both move on.
    const auto run_one = [&](int program_fd, TraceStep& step) {
        const std::uint32_t zero = 0;
        mbr_trace_record record{};
        record.token = token_;
        if (const int err = bpf_map_update_elem(trace_fd_, &zero, &record, BPF_ANY); err) {
            throw_bpf_error("cannot clear the trace record " MBR_MAP_TRACE, err);
        }
        __sk_buff in{};
        std::memcpy(in.cb, context.cb, sizeof(in.cb));
        in.mark = context.mark;
        in.priority = context.priority;
        in.ifindex = entry.ifindex;
        in.ingress_ifindex = entry.ifindex;
        __sk_buff out{};
        std::vector<std::byte> data_out(packet.size() + kFrameRoom);
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet.data(), .data_out = data_out.data(),
                    .data_size_in = static_cast<std::uint32_t>(packet.size()),
                    .data_size_out = static_cast<std::uint32_t>(data_out.size()), .ctx_in = &in, .ctx_out = &out,
                    .ctx_size_in = sizeof(in), .ctx_size_out = sizeof(out), .repeat = 1);
        if (const int err = bpf_prog_test_run_opts(program_fd, &opts); err) {
            throw_bpf_error(fmt::format("cannot run program {} of stage {} on the trace packet", step.program,
                                        step.stage == MBR_EVENT_STAGE_ENTRY ? "entry" : describe_stage(step.stage)),
                            err);
        }
        if (bpf_map_lookup_elem(trace_fd_, &zero, &record) != 0) {
            throw_bpf_error("cannot read the trace record " MBR_MAP_TRACE, -errno);
        }
        step.retval = static_cast<std::int32_t>(opts.retval);
        step.action = action_of(step.retval);
        if (record.counted) step.counted = record.counted - 1;
        step.reported = record.reported;
        if (record.reported) step.event = record.event;
        std::memcpy(&step.context, out.cb, sizeof(step.context));
        data_out.resize(opts.data_size_out);
        packet = std::move(data_out);
        context = out;
    };

    TraceStep first;
    first.program = entry.program;
    program_name(entry.program_fd, first.program_id);
    run_one(entry.program_fd, first);
    steps.push_back(first);

    std::uint32_t stage = steps.back().context.stage;
    while (steps.back().action == TraceStep::Action::handed_on && stage < MBR_STAGE_MAX) {
        // Stages run in increasing order: a program that hands back to its own
        // stage or an earlier one, or a chain past the kernel's tail-call
        // bound, ends the trace instead of looping on the agent's thread.
        const std::uint32_t ran = steps.back().stage;
        if ((ran != MBR_EVENT_STAGE_ENTRY && stage <= ran) || steps.size() >= kMaxSteps) {
            steps.back().action = TraceStep::Action::other;
            return steps;
        }
        const auto id = slot_program_id(pipeline_fd_, stage);
        if (!id) {
            if (empty_slot_verdict(verdicts_fd_, stage) == EmptySlot::drop) {
                steps.push_back(no_program_step(stage, TraceStep::Action::dropped, TC_ACT_SHOT,
                                                MBR_STAT_DROP_STAGE_MISSING, steps.back().context));
                steps.back().empty_slot = true;
                return steps;
            }
            ++stage;
            continue;
        }
        const UniqueFd program(bpf_prog_get_fd_by_id(*id));
        if (program.get() < 0) {
            // Replaced since the lookup (a reload): run what the slot holds now.
            if (errno == ENOENT) continue;
            throw_bpf_error(fmt::format("cannot open the program of stage {}", describe_stage(stage)), -errno);
        }
        // As membrane_run_from() does before each tail call: the stage that runs is in the context.
        context.cb[3] = (context.cb[3] & 0xffff) | (stage << 16);
        TraceStep step;
        step.stage = stage;
        step.program = program_name(program.get(), step.program_id);
        run_one(program.get(), step);
        steps.push_back(step);
        stage = steps.back().context.stage;
    }
    if (steps.back().action == TraceStep::Action::handed_on) {
        // Past the last slot: the default verdict (pipeline.h), counted there as pipeline_done.
        steps.push_back(no_program_step(MBR_STAGE_MAX, TraceStep::Action::passed, TC_ACT_OK, MBR_STAT_PIPELINE_DONE,
                                        steps.back().context));
    }
    return steps;
}

}  // namespace membrane::kernel
