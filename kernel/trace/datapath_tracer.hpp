// The datapath half of `membranectl policy trace`: one packet run through
// this node's loaded programs with BPF_PROG_TEST_RUN, as KatranSimulator
// runs one through Katran's. The entry program first, then each filled
// pipeline slot in stage order, every run given the packet and the context
// the previous one left; an empty slot meets its empty-slot verdict, as a
// packet on the wire would. A trace run has no side effects (SDK 1.6,
// membrane/trace.h): stages hand on instead of tail-calling, and what they
// would count or report lands in the trace record, read after each run.
// All runs are on one CPU (the calling thread is pinned meanwhile), so
// per-CPU maps read the same in every stage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

extern "C" {
#include "membrane/contract.h"
}

namespace membrane::kernel {

// Where the packet enters and what a test run cannot carry.
struct TraceEntry {
    std::string program;  // MBR_ENTRY_* (contract.h)
    int program_fd = -1;
    std::string device;         // the device it arrives on
    std::uint32_t ifindex = 0;
    // mbr_from_overlay: the VNI and outer source (host order) the sending node's tunnel key holds.
    std::uint32_t vni = 0;
    std::uint32_t outer_source = 0;
};

// What one program did with the packet.
struct TraceStep {
    enum class Action {
        handed_on,   // to the next stage (MBR_TRACE_HANDED_ON)
        passed,      // to the kernel's stack (TC_ACT_OK, TC_ACT_UNSPEC)
        dropped,     // TC_ACT_SHOT, or an empty fail-closed slot
        redirected,  // TC_ACT_REDIRECT: to another device (counted says why: delivered, overlay...)
        other,       // any other verdict (retval says which)
    };
    std::uint32_t stage = MBR_EVENT_STAGE_ENTRY;  // MBR_EVENT_STAGE_ENTRY: the entry program
    std::string program;      // the program's name; "" for an empty slot
    std::uint32_t program_id = 0;
    bool empty_slot = false;  // the slot was empty and fail-closed
    Action action = Action::other;
    std::int32_t retval = 0;
    std::optional<std::uint32_t> counted;  // enum membrane_stat it would have counted last
    std::uint32_t reported = 0;            // events it would have reported
    std::optional<mbr_event> event;        // the last of them
    membrane_ctx context{};                // the context it left
};

const char* action_name(TraceStep::Action action);  // "handed-on", "passed", "dropped", ...

class DatapathTracer {
public:
    // The pinned pipeline prog array, stage-verdict map and trace record
    // (MBR_MAP_PIPELINE, MBR_MAP_STAGE_VERDICTS, MBR_MAP_TRACE). Writes a
    // fresh random token into the record: only runs that carry it are traces.
    DatapathTracer(int pipeline_fd, int verdicts_fd, int trace_fd);

    // Runs `frame` from `entry` until a program ends it (or every stage
    // handed on: then it passes to the stack, as past the last slot). A
    // program that hands on to its own stage or an earlier one, or a chain
    // longer than the kernel's 33 tail calls, ends it with Action::other.
    // Throws BpfError when a run fails (not when the packet is dropped).
    std::vector<TraceStep> run(const TraceEntry& entry, std::span<const std::byte> frame) const;

private:
    int pipeline_fd_;
    int verdicts_fd_;
    int trace_fd_;
    std::uint64_t token_ = 0;
};

}  // namespace membrane::kernel
