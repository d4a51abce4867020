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

class ModuleBpf;

class Registry {
public:
    // pin_dir: <bpffs_root>/membrane/<node>; created if missing. bpffs_root
    // must be a bpf filesystem (it is mounted if it is an empty folder).
    // state_dir: where the ownership record (which module created which pin)
    // is kept across restarts.
    Registry(std::filesystem::path bpffs_root, std::filesystem::path pin_dir, std::filesystem::path state_dir,
             std::shared_ptr<spdlog::logger> log);
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Loads the core object (bpf/): the pipeline prog array and the shared
    // maps are pinned (or re-adopted), the entry programs are loaded.
    void open_core(std::span<const std::byte> core_elf);

    // tc clsact ingress of `ifname` gets the core's from-netdev entry program;
    // replaces an earlier attachment (ours) atomically, e.g. after a restart.
    void attach_device(const std::string& ifname);
    void detach_device(const std::string& ifname);
    std::vector<std::string> attached_devices() const;

    // The facade one module generation works through (implements the SDK's
    // BpfRegistry). Its objects and slots are released by ModuleBpf::close().
    std::unique_ptr<ModuleBpf> for_module(const std::string& module, std::uint64_t generation);

    // The module is gone for good (unload, not reload): unpin the maps it
    // created, except those it declared persistent.
    void forget_module(const std::string& module);

    std::vector<SlotInfo> slots() const;
    const std::filesystem::path& pin_dir() const;

    // Detaches every entry program Membrane attached and removes the pin
    // folder: `membraned --uninstall`.
    void uninstall();

    struct Impl;

private:
    friend class ModuleBpf;
    std::unique_ptr<Impl> impl_;
};

class ModuleBpf final : public membrane::BpfRegistry {
public:
    ~ModuleBpf() override;

    BpfObject& load(const BpfObjectSpec& spec) override;
    void attach_stage(std::uint32_t stage, const BpfObject& object, std::string_view program) override;
    void detach_stage(std::uint32_t stage) override;

    // Releases this generation's objects. Slots it still holds are emptied
    // (keep_slots = false: unload, quarantine, failed start) or left filled
    // so the datapath keeps working while the agent is down (keep_slots =
    // true: agent shutdown; the next start replaces them).
    void close(bool keep_slots);

    std::vector<std::uint32_t> held_stages() const;

private:
    friend class Registry;
    ModuleBpf(Registry::Impl& registry, std::string module, std::uint64_t generation);
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace membrane::kernel
