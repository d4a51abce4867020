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

// SDK 1.9. How many entries one map of an object is made with, in place of
// the max_entries its BPF source declares (e.g. a size from the module's
// config). Handed to the two-argument BpfRegistry::load, not kept in
// BpfObjectSpec: the spec crosses the module boundary by reference, and an
// agent reading a field that a module built against 1.8 never had would read
// past its object.
struct BpfMapSize {
    std::string map;
    std::uint32_t max_entries = 0;
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
    // mismatch is refused with a message naming both shapes. Since SDK 1.9 a
    // pinned map that differs from its declaration in max entries alone is
    // resized instead (see the two-argument load below).
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

    // SDK 1.9. load() with the max_entries of some of the object's maps set
    // first. A map the object does not declare, a size of 0 or a map named
    // twice is a BpfError naming the object and the map. A pinned map of
    // another size (the last generation's, an earlier run's) is resized when
    // the object loads: a new map of the declared shape gets a copy of every
    // entry and takes the pin over in one rename, so the next generation
    // starts with the old contents; the previous generation goes on with the
    // old map until it stops (what it writes meanwhile is not carried over).
    // Refused, with the pin left as it was, when the entries do not fit the
    // new size or the map's type cannot be copied faithfully (a prog array, a
    // ring buffer, a socket map, ...). Every object that declares a shared
    // pinned map must be given the same size for it, or each load resizes it
    // back. Not pure, so a module's own test double built for 1.8 compiles.
    //
    //     ctx.bpf().load({.name = "lb", .elf = lb_bpf()}, {{"lb_nat_v1", settings.nat_map_size}});
    virtual BpfObject& load(const BpfObjectSpec& spec, const std::vector<BpfMapSize>& map_sizes) {
        (void)map_sizes;
        throw BpfError("load(" + spec.name + ") with map sizes: this agent cannot size maps (SDK < 1.9)");
    }
};

}  // namespace membrane
