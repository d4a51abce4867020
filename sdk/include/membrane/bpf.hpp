// What a module may do with BPF: load the objects it carries, fill pipeline
// slots with their programs, and reach their maps. Everything is owned by the
// module's host and released when the module stops, even if it forgets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

extern "C" {
#include "membrane/contract.h"
}
#include "membrane/api.hpp"

namespace membrane {

class MEMBRANE_SDK_API BpfError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct BpfObjectSpec {
    // Unique within the module; names the object in logs and status.
    std::string name;
    // The ELF object, usually embedded with MEMBRANE_BPF_OBJECT().
    std::span<const std::byte> elf;
    // Maps with `pinning = LIBBPF_PIN_BY_NAME` are pinned under the node's pin
    // folder and reused by the next generation of the module, so a reload keeps
    // their contents. Named here, they also survive the module's unload.
    std::vector<std::string> persistent_maps;
};

// A loaded object. Valid until the module stops (or the registry closes it).
class MEMBRANE_SDK_API BpfObject {
public:
    virtual ~BpfObject() = default;
    virtual const std::string& name() const = 0;
    // File descriptors owned by the object; throw BpfError if absent.
    virtual int map_fd(std::string_view map) const = 0;
    virtual int program_fd(std::string_view program) const = 0;
};

// SDK 1.2. What the datapath does with a packet whose next stage's slot is
// empty (the module unloaded, quarantined, or its start failed), kept in a
// pinned map (contract.h: enum membrane_stage_verdict) so it also holds while
// the agent is down.
enum class EmptySlot : std::uint32_t {
    // Skip the stage: for stages whose absence loses nothing the next stages
    // cannot do (observe, routing-like stages).
    pass_through = MBR_STAGE_PASS_THROUGH,
    // Fail closed: drop and count MBR_STAT_DROP_STAGE_MISSING. For security
    // stages (policy): without it, an unloaded policy would allow everything.
    // `membranectl module unload` of the holder then needs --force.
    drop = MBR_STAGE_FAIL_CLOSED,
};

class MEMBRANE_SDK_API BpfRegistry {
public:
    virtual ~BpfRegistry() = default;

    // Opens and loads the object; pinned maps are checked for compatibility
    // (type, key and value size, max entries, flags) before reuse and a
    // mismatch is refused with a message naming both shapes.
    virtual BpfObject& load(const BpfObjectSpec& spec) = 0;

    // Puts `program` of `object` into pipeline slot `stage` (one atomic map
    // update: packets see the old or the new program, never none). The stage
    // is pass-through when empty; see the SDK 1.2 overload below to make it
    // fail-closed.
    virtual void attach_stage(std::uint32_t stage, const BpfObject& object, std::string_view program) = 0;
    // Empties the slot if this module holds it; packets then get the stage's
    // empty-slot verdict (pass through, or dropped if it is fail-closed).
    virtual void detach_stage(std::uint32_t stage) = 0;

    // SDK 1.1. Attaches one of the core's entry programs (MBR_ENTRY_* in
    // contract.h) to tc ingress of `ifname` in the agent's network namespace,
    // e.g. a routing module's overlay device. Owned like a slot: the module's
    // next generation takes it over on reload, it stays while the agent is
    // down, and it is detached when the module is unloaded or quarantined.
    virtual void attach_entry(std::string_view ifname, std::string_view entry_program) = 0;

    // SDK 1.2. attach_stage that also declares what the datapath does while
    // the slot is empty. Every fill restates it (the holder decides), so the
    // three-argument form above means EmptySlot::pass_through. The verdict is
    // written after the program is in the slot, and it stays after the module
    // is gone: a fail-closed stage drops from the module's unload (also with
    // --force), quarantine or failed start until a module fills the slot
    // again. A reload loses nothing: the old program stays in the slot until
    // the new one replaces it. The verdict follows the module that declared
    // it: once a generation of that module that does not fill the stage has
    // started (a reload with a new config, a load after an unload, also after
    // a restart), the stage passes through again, since nobody declares it.
    // Another module that fills the slot later restates the verdict; filling
    // the slot already decides what its packets meet, so that widens nothing.
    //
    //     ctx.bpf().attach_stage(MBR_STAGE_EGRESS_POLICY, object, "egress_policy",
    //                            membrane::EmptySlot::drop);
    virtual void attach_stage(std::uint32_t stage, const BpfObject& object, std::string_view program,
                              EmptySlot when_empty) = 0;

    // SDK 1.7. Attaches a cgroup socket program of `object` (SEC("cgroup/
    // connect4"), sendmsg4, recvmsg4, getpeername4, bind4, sock_create,
    // sock_release: the hook is the program's section) to the agent's cgroup
    // v2 root ([agent] cgroup_root), where it sees the sockets of every
    // process below. Owned like a slot: the module's next generation swaps
    // its program in atomically (no socket call is missed across a reload),
    // it stays attached while the agent is down, and it is detached when the
    // module is unloaded, quarantined or fails to start. One holder per hook.
    // Not pure, so a module's own test double built for 1.6 still compiles.
    virtual void attach_socket_hook(const BpfObject& object, std::string_view program) {
        (void)object;
        throw BpfError("attach_socket_hook(" + std::string(program) + "): this agent has no socket hooks (SDK < 1.7)");
    }
};

}  // namespace membrane
