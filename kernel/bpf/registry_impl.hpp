// The registry's state, shared by Registry (registry.cpp) and the ModuleBpf
// facades (module_bpf.cpp). Every member is guarded by `mutex`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include <bpf/bpf.h>

#include "bpf/loaded_object.hpp"
#include "bpf/ownership_store.hpp"
#include "bpf/registry.hpp"

namespace membrane::kernel {

inline constexpr const char* kCoreObjectName = "membrane_core";
// The kernel's program in slot MBR_STAGE_DELIVERY (bpf/core.bpf.c).
inline constexpr const char* kDeliveryProgram = "mbr_deliver_local";

// The core's programs that may go on a device (contract.h: MBR_ENTRY_*).
bool is_entry_program(std::string_view program);
// "mbr_from_netdev, mbr_from_endpoint, mbr_from_overlay", for errors.
std::string entry_program_names();

struct Registry::Impl {
    Impl(std::filesystem::path bpffs_root, std::filesystem::path pin_dir, std::filesystem::path state_dir,
         std::shared_ptr<spdlog::logger> log);

    std::filesystem::path bpffs_root;
    std::filesystem::path pin_dir;
    std::filesystem::path state_dir;
    std::shared_ptr<spdlog::logger> log;

    mutable std::mutex mutex;
    OwnershipStore store;
    std::unique_ptr<LoadedObject> core;
    // Module generations with an open ModuleBpf. The callback detaches the
    // facade when the registry goes first, so it never reaches a dead registry.
    std::map<std::pair<std::string, std::uint64_t>, std::function<void()>> live;
    // Slots whose holder record comes from an earlier run of the agent. Their
    // generation numbers may collide with this run's, so close() and
    // held_stages() ignore them; a new attach or forget_module() settles them.
    std::set<std::uint32_t> inherited_slots;
    // Likewise for devices: attachments recorded by an earlier run, which
    // nobody in this run has attached again yet.
    std::set<std::string> inherited_devices;
    // Likewise for socket hooks, by hook name.
    std::set<std::string> inherited_socket_hooks;
    // [agent] cgroup_root as configured ("" = the cgroup v2 mount).
    std::filesystem::path cgroup_root;

    // The helpers below expect `mutex` to be held.
    int pipeline_fd() const;  // throws BpfError until open_core
    int stage_verdicts_fd() const;  // likewise
    bool module_is_live(const std::string& module) const;
    bool is_kernel_pin(const std::string& pin) const;

    // Notes which pins `object` created for `module` and which of its maps the
    // module declared persistent, and saves the record.
    void record_module_pins(const std::string& module, const LoadedObject& object,
                            const std::vector<std::string>& persistent_maps);

    // Puts the program in the slot for `holder` (refusing a slot another live
    // module holds), then sets the stage's empty-slot verdict (while the slot
    // is filled it is never read), and records the holder.
    void take_slot(const SlotInfo& holder, int program_fd, EmptySlot when_empty);
    // Empties the slot and drops its record.
    void release_slot(std::uint32_t stage, const char* why);
    // (module, generation) is now the module's running generation: a stage
    // the module declared fail-closed that this generation does not fill is
    // no longer declared by anyone, and passes through again.
    void settle_verdicts(const std::string& module, std::uint64_t generation);
    // The stages whose slot this run's generation (module, generation) filled.
    std::vector<std::uint32_t> stages_held_by(const std::string& module, std::uint64_t generation) const;

    // Puts the core's entry program on tc ingress of the device for `holder`
    // (refusing a device the kernel or another live module holds in this
    // run) and records the holder.
    void take_device(const DeviceAttachment& holder);
    // Removes our tc filter (if the device is still there) and the record.
    void release_device(const std::string& ifname, const char* why);
    // The devices this run's generation (module, generation) attached.
    std::vector<std::string> devices_held_by(const std::string& module, std::uint64_t generation) const;

    // Puts `program_fd` (of holder.program, whose attach type is `type`) on
    // the cgroup root for `holder`, refusing a hook another live module
    // holds, and records the holder (cgroup and pin are filled in here).
    void take_socket_hook(SocketHookAttachment holder, bpf_attach_type type, int program_fd);
    // Unpins the hook's link (the program detaches) and drops the record.
    void release_socket_hook(const std::string& hook, const char* why);
    // The hooks this run's generation (module, generation) holds.
    std::vector<std::string> socket_hooks_held_by(const std::string& module, std::uint64_t generation) const;
};

}  // namespace membrane::kernel
