// The BPF object registry: loads the kernel's core object and the modules'
// objects with libbpf, pins maps under <bpffs>/membrane/<node>/, owns the
// pipeline prog array and its slots, attaches entry programs with tc clsact,
// and records which module owns every object.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "bpf/map_shape.hpp"
#include "bpf/ownership_store.hpp"
#include "membrane/bpf.hpp"

namespace membrane::kernel {

// MapShape (map_shape.hpp) and SlotInfo (ownership_store.hpp) are part of this API.
// Every failure is a membrane::BpfError with a message fit for an operator.
// The methods lock one mutex, so any thread may call them.

class ModuleBpf;

class Registry {
public:
    // pin_dir: <bpffs_root>/membrane/<node>; created if missing. bpffs_root
    // must be a bpf filesystem (it is mounted, mode 0700, if it is an empty
    // or missing folder; a folder with files is refused). state_dir: where the
    // ownership record (bpf-ownership.json: which module created which pin,
    // slot holders, attached devices) is kept across restarts.
    Registry(std::filesystem::path bpffs_root, std::filesystem::path pin_dir, std::filesystem::path state_dir,
             std::shared_ptr<spdlog::logger> log);
    // Closes the core object; pins, slots and tc filters stay (the datapath
    // runs on while the agent is down). ModuleBpf facades still open are cut
    // loose (their later calls throw) rather than left dangling.
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Loads the core object (bpf/): the pipeline prog array and the shared
    // maps (stats, endpoints, ipcache) are pinned (or re-adopted), the entry
    // programs are loaded, and the kernel's delivery program fills slot
    // MBR_STAGE_DELIVERY (holder "kernel": no module may take it). Before
    // any object loads (core or module), each map it pins is compared with
    // the pin on disk; a mismatch is refused naming the map, the pin path and
    // both shapes. Slot records left by an earlier run are checked against
    // the prog array. Once only.
    void open_core(std::span<const std::byte> core_elf);

    // tc clsact ingress of `ifname` (in the caller's network namespace) gets
    // one of the core's entry programs (MBR_ENTRY_* of contract.h: from-netdev
    // for agent.devices, from-endpoint for a pod's host veth), at a fixed
    // handle and priority (tc_attach.hpp); replaces an earlier attachment
    // (ours) atomically, e.g. after a restart. The device is then the
    // kernel's: refused if a module running in this run holds it (naming
    // it). An unknown device or program is refused by name. detach_device
    // removes whatever entry program of ours is there and ignores a device
    // that is gone.
    void attach_device(const std::string& ifname, const std::string& entry_program = MBR_ENTRY_FROM_NETDEV);
    void detach_device(const std::string& ifname);
    std::vector<std::string> attached_devices() const;
    // The same with the program and holder of each, as recorded (a restart
    // or an uninstall knows what is where).
    std::vector<DeviceAttachment> attachments() const;

    // The fd of one of the core object's maps (MBR_MAP_ENDPOINTS,
    // MBR_MAP_IPCACHE, MBR_MAP_STATS, ...), for the kernel's model to read
    // and write. Owned by the registry: valid until uninstall() or the
    // registry's end; never close it. Throws BpfError before open_core and
    // for a map the core does not have.
    int core_map_fd(const std::string& map_name) const;
    // The fd of one of the core object's programs (MBR_ENTRY_*), owned like
    // core_map_fd's: for the datapath trace, which runs what is attached.
    int core_program_fd(const std::string& program_name) const;

    // The facade one module generation works through (implements the SDK's
    // BpfRegistry). Its objects, slots and devices are released by
    // ModuleBpf::close(). One open facade per (module, generation); the
    // Registry should outlive it. The name "kernel" is reserved.
    std::unique_ptr<ModuleBpf> for_module(const std::string& module, std::uint64_t generation);

    // The module is gone for good (unload, not reload): unpin the maps it
    // created (pins that existed before its loads are not its), except those
    // it declared persistent; never the kernel's. Also empties slots and
    // detaches devices it still holds from an earlier run or a
    // close(keep_slots = true).
    void forget_module(const std::string& module);

    // The stages whose empty slot drops (declared with EmptySlot::drop by the
    // module that last filled them; pinned, so from any earlier run too),
    // filled or not. Throws BpfError before open_core.
    std::vector<std::uint32_t> fail_closed_stages() const;

    // Filled slots as the prog array has them, with their holders; a slot
    // filled by a program no record names is listed with an empty module.
    std::vector<SlotInfo> slots() const;
    const std::filesystem::path& pin_dir() const;

    // [agent] cgroup_root: where modules' socket programs attach ("" = the
    // cgroup v2 mount; checked at the first attach_socket_hook). Hooks
    // already attached stay where they are until their next attach.
    void set_cgroup_root(std::filesystem::path cgroup_root);
    // The socket programs on the cgroup root, with their holders.
    std::vector<SocketHookAttachment> socket_hooks() const;

    // Detaches every entry program Membrane attached (recorded devices, even
    // if the config changed since; devices that are gone are skipped),
    // removes the pin folder (and <bpffs>/membrane if it is then empty) and
    // the ownership record: `membraned --uninstall`. The core is closed;
    // open_core() may follow.
    void uninstall();

    struct Impl;

private:
    friend class ModuleBpf;
    std::unique_ptr<Impl> impl_;
};

class ModuleBpf final : public membrane::BpfRegistry {
public:
    ~ModuleBpf() override;

    // Refuses a duplicate object name and a persistent map that is not
    // pinned by name. Pins this load creates become the module's.
    BpfObject& load(const BpfObjectSpec& spec) override;
    // The same with the max entries of some maps set first; a pinned map of
    // another size is resized, keeping its entries (map_resize.hpp).
    BpfObject& load(const BpfObjectSpec& spec, const std::vector<BpfMapSize>& map_sizes) override;
    // One prog array update, then the stage's empty-slot verdict (the
    // three-argument form: pass-through). Refuses stage >= MBR_STAGE_MAX, a
    // non-tc program, an object this generation did not load, and a slot held
    // by another module that is open in this run (the error names the
    // holder). The module's next generation takes its slots over; a slot left
    // by an earlier run of the agent may be taken by anyone.
    void attach_stage(std::uint32_t stage, const BpfObject& object, std::string_view program) override;
    void attach_stage(std::uint32_t stage, const BpfObject& object, std::string_view program,
                      EmptySlot when_empty) override;
    // Empties the slot if this module (any generation) holds it; refuses if
    // another module does; nothing to do if it is empty.
    void detach_stage(std::uint32_t stage) override;

    // Puts a core entry program on tc ingress of `ifname` in the calling
    // thread's network namespace (the agent's). Owned like a slot: the
    // module's next generation takes it over by attaching it again; a device
    // the kernel holds (agent.devices, an endpoint's veth) or another module
    // running in this run holds is refused naming the holder; one left by an
    // earlier run of the agent may be taken by anyone.
    void attach_entry(std::string_view ifname, std::string_view entry_program) override;

    // Puts a cgroup socket program on the agent's cgroup root through a
    // pinned bpf_link (cgroup_attach.hpp). Owned like a slot: the module's
    // next generation swaps its program in atomically, it stays while the
    // agent is down, and it is detached when the module is unloaded,
    // quarantined or fails to start. Refuses a program that is no cgroup
    // socket program and a hook another module running in this run holds.
    void attach_socket_hook(const BpfObject& object, std::string_view program) override;

    // This generation started: the pinned maps its objects resized take
    // their pins (each staged copy renamed over the old pin), so the maps
    // the running generation used are unpinned only now. Until then, and for
    // good when the generation fails to load or start (close), the old pins
    // stay. Logs one line per map resized.
    void commit_resized_pins();

    // Releases this generation's objects. Slots and devices it still holds
    // are emptied/detached (keep_slots = false: unload, quarantine, failed
    // start) or left in place so the datapath keeps working while the agent
    // is down (keep_slots = true: agent shutdown; the next start replaces
    // them). Only what this very generation holds: after a reload the next
    // generation holds them and they stay. The destructor closes with
    // keep_slots = false if the host did not close.
    void close(bool keep_slots);

    // The stages this generation filled (and still holds) in this run.
    std::vector<std::uint32_t> held_stages() const;
    // The devices this generation attached (and still holds) in this run.
    std::vector<std::string> held_devices() const;
    // The socket hooks this generation attached (and still holds) in this run.
    std::vector<std::string> held_socket_hooks() const;

    // Puts this generation's programs back into the slots it filled, and on
    // the devices it attached, that a newer generation of the module has
    // taken since (a reload whose new generation failed to start: the old
    // one goes on as before).
    void reclaim_stages();

    // This generation started and is now its module's running one (load,
    // reload): a stage the module declared fail-closed (any earlier
    // generation or run) that this one does not fill goes back to
    // pass-through, since the module no longer declares it. Called before
    // the previous generation closes, so emptying its slots drops nothing.
    // Unload, quarantine and a failed start never call it: their fail-closed
    // stages keep dropping. Slots an earlier run of the agent left filled
    // for the module, which this generation did not take again, are
    // emptied then too (the old run's program must not go on running).
    void settle_empty_slots();

private:
    friend class Registry;
    ModuleBpf(Registry::Impl& registry, std::string module, std::uint64_t generation);
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace membrane::kernel
