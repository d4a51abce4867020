// Who owns what, kept in <state_dir>/bpf-ownership.json so that it survives a
// daemon restart: which module created which pin (and which of those it
// declared persistent), which pins belong to the kernel, which devices carry
// an entry program (which one, and who holds it), which module holds
// which pipeline slot, and which module declared which stage fail-closed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include <spdlog/logger.h>

namespace membrane::kernel {

// The holder name of what the kernel itself attaches: the delivery slot, the
// entry programs of agent.devices and of endpoints. No module may bear it.
inline constexpr const char* kKernelHolder = "kernel";

struct SlotInfo {
    std::uint32_t stage = 0;
    std::string module;  // owner (kKernelHolder for the kernel's own slots)
    std::uint64_t generation = 0;
    std::string program;  // program name
    std::uint32_t program_id = 0;
    bool operator==(const SlotInfo&) const = default;
};

struct ModulePins {
    std::set<std::string> created;     // pin names (= map names) this module's loads created
    std::set<std::string> persistent;  // of those, the ones kept when the module is forgotten
    bool operator==(const ModulePins&) const = default;
};

// One of the core's entry programs on tc ingress of a device.
struct DeviceAttachment {
    std::string ifname;
    std::string program;                 // MBR_ENTRY_* of contract.h
    std::string module = kKernelHolder;  // holder: the kernel or a module (attach_entry)
    std::uint64_t generation = 0;        // the module's generation; 0 for the kernel
    bool operator==(const DeviceAttachment&) const = default;
};

// SDK 1.7. A module's cgroup socket program (cgroup/connect4, ...) on the
// agent's cgroup root, through a bpf_link pinned at `pin`: the pin keeps it
// attached while the agent is down, the next generation swaps the program
// in the link (atomic), and removing the pin detaches it.
struct SocketHookAttachment {
    std::string hook;     // the attach type's name: "cgroup/connect4"
    std::string program;  // program name
    std::string module;
    std::uint64_t generation = 0;
    std::string cgroup;   // the cgroup v2 folder it is attached to
    std::string pin;      // the link's pin path
    bool operator==(const SocketHookAttachment&) const = default;
};

struct OwnershipRecord {
    std::set<std::string> kernel_pins;
    std::map<std::string, ModulePins> modules;
    std::map<std::string, DeviceAttachment> devices;  // by ifname: devices with our tc filter
    std::map<std::uint32_t, SlotInfo> slots;
    // Stage -> the module whose fill declared it fail-closed (EmptySlot::drop).
    // Outlives the slot and the module: only that module relaxes it
    // (Registry::Impl::settle_verdicts), or a later fill restates it.
    std::map<std::uint32_t, std::string> fail_closed_by;
    std::map<std::string, SocketHookAttachment> socket_hooks;  // by hook
    bool operator==(const OwnershipRecord&) const = default;
};

class OwnershipStore {
public:
    // Loads the record if the file exists. A file that is not a record the
    // agent wrote throws StateError (state/state_file.hpp: a corrupt record
    // stops the start, naming the file).
    OwnershipStore(std::filesystem::path file, spdlog::logger& log);

    OwnershipRecord& record() { return record_; }
    const OwnershipRecord& record() const { return record_; }

    // Atomic (write_state_file): a crash leaves the old or the new record,
    // never half of one. Throws BpfError.
    void save() const;
    // Forgets everything and deletes the file (uninstall).
    void erase();

    const std::filesystem::path& file() const { return file_; }

private:
    std::filesystem::path file_;
    spdlog::logger& log_;
    OwnershipRecord record_;
};

}  // namespace membrane::kernel
