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
    // maps are pinned (or re-adopted), the entry programs are loaded. Before
    // any object loads (core or module), each map it pins is compared with
    // the pin on disk; a mismatch is refused naming the map, the pin path and
    // both shapes. Slot records left by an earlier run are checked against
    // the prog array. Once only.
    void open_core(std::span<const std::byte> core_elf);

    // tc clsact ingress of `ifname` (in the caller's network namespace) gets
    // the core's from-netdev entry program, at a fixed handle and priority
    // (tc_attach.hpp); replaces an earlier attachment (ours) atomically, e.g.
    // after a restart. An unknown device is refused by name. detach_device
    // ignores a device that is gone.
    void attach_device(const std::string& ifname);
    void detach_device(const std::string& ifname);
    std::vector<std::string> attached_devices() const;

    // The facade one module generation works through (implements the SDK's
    // BpfRegistry). Its objects and slots are released by ModuleBpf::close().
    // One open facade per (module, generation); the Registry should outlive it.
    std::unique_ptr<ModuleBpf> for_module(const std::string& module, std::uint64_t generation);

    // The module is gone for good (unload, not reload): unpin the maps it
    // created (pins that existed before its loads are not its), except those
    // it declared persistent; never the kernel's. Also empties slots it still
    // holds from an earlier run or a close(keep_slots = true).
    void forget_module(const std::string& module);

    // Filled slots as the prog array has them, with their holders; a slot
    // filled by a program no record names is listed with an empty module.
    std::vector<SlotInfo> slots() const;
    const std::filesystem::path& pin_dir() const;

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
    // One prog array update. Refuses stage >= MBR_STAGE_MAX, a non-tc
    // program, an object this generation did not load, and a slot held by
    // another module that is open in this run (the error names the holder).
    // The module's next generation takes its slots over; a slot left by an
    // earlier run of the agent may be taken by anyone.
    void attach_stage(std::uint32_t stage, const BpfObject& object, std::string_view program) override;
    // Empties the slot if this module (any generation) holds it; refuses if
    // another module does; nothing to do if it is empty.
    void detach_stage(std::uint32_t stage) override;

    // Releases this generation's objects. Slots it still holds are emptied
    // (keep_slots = false: unload, quarantine, failed start) or left filled
    // so the datapath keeps working while the agent is down (keep_slots =
    // true: agent shutdown; the next start replaces them). Only the slots
    // this very generation filled: after a reload the next generation holds
    // them and they stay. The destructor closes with keep_slots = false if
    // the host did not close.
    void close(bool keep_slots);

    // The stages this generation filled (and still holds) in this run.
    std::vector<std::uint32_t> held_stages() const;

    // Puts this generation's programs back into the slots it filled and a
    // newer generation of the module has taken since (a reload whose new
    // generation failed to start: the old one goes on as before).
    void reclaim_stages();

private:
    friend class Registry;
    ModuleBpf(Registry::Impl& registry, std::string module, std::uint64_t generation);
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace membrane::kernel
