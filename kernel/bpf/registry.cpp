#include "bpf/registry.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include <bpf/bpf.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bpf/bpf_error.hpp"
#include "bpf/bpffs.hpp"
#include "bpf/cgroup_attach.hpp"
#include "bpf/pipeline_slots.hpp"
#include "bpf/registry_impl.hpp"
#include "bpf/tc_attach.hpp"
#include "bpf/unique_fd.hpp"
#include "membrane/contract.h"

namespace membrane::kernel {

namespace {

std::filesystem::path ownership_file(const std::filesystem::path& state_dir) {
    std::error_code error;
    std::filesystem::create_directories(state_dir, error);
    if (error) throw BpfError(fmt::format("cannot create state folder {}: {}", state_dir.string(), error.message()));
    return state_dir / "bpf-ownership.json";
}

}  // namespace

bool is_entry_program(std::string_view program) {
    return program == MBR_ENTRY_FROM_NETDEV || program == MBR_ENTRY_FROM_ENDPOINT ||
           program == MBR_ENTRY_FROM_OVERLAY;
}

std::string entry_program_names() {
    return fmt::format("{}, {}, {}", MBR_ENTRY_FROM_NETDEV, MBR_ENTRY_FROM_ENDPOINT, MBR_ENTRY_FROM_OVERLAY);
}

// ---- Registry::Impl helpers -------------------------------------------------

Registry::Impl::Impl(std::filesystem::path bpffs_root_, std::filesystem::path pin_dir_,
                     std::filesystem::path state_dir_, std::shared_ptr<spdlog::logger> log_)
    : bpffs_root(std::move(bpffs_root_)),
      pin_dir(std::move(pin_dir_)),
      state_dir(std::move(state_dir_)),
      log(std::move(log_)),
      store(ownership_file(state_dir), *log) {}

int Registry::Impl::pipeline_fd() const {
    if (!core) throw BpfError("the core BPF object is not loaded (open_core first): no pipeline yet");
    return core->map_fd(MBR_MAP_PIPELINE);
}

int Registry::Impl::stage_verdicts_fd() const {
    if (!core) throw BpfError("the core BPF object is not loaded (open_core first): no stage verdicts yet");
    return core->map_fd(MBR_MAP_STAGE_VERDICTS);
}

bool Registry::Impl::module_is_live(const std::string& module) const {
    const auto first = live.lower_bound({module, 0});
    return first != live.end() && first->first.first == module;
}

bool Registry::Impl::is_kernel_pin(const std::string& pin) const {
    // The contract's shared maps belong to the kernel even if a module object
    // happened to create them before the core was loaded.
    return pin == MBR_MAP_PIPELINE || pin == MBR_MAP_STATS || pin == MBR_MAP_STAGE_VERDICTS || pin == MBR_MAP_CT ||
           store.record().kernel_pins.contains(pin);
}

void Registry::Impl::record_module_pins(const std::string& module, const LoadedObject& object,
                                        const std::vector<std::string>& persistent_maps) {
    auto& record = store.record();
    const auto before = record;
    auto& pins = record.modules[module];
    for (const auto& map : object.pinned_maps()) {
        if (!map.pin_exists && !is_kernel_pin(map.name)) pins.created.insert(map.name);
        // Each load restates which of its maps are persistent.
        if (std::ranges::find(persistent_maps, map.name) != persistent_maps.end()) {
            pins.persistent.insert(map.name);
        } else {
            pins.persistent.erase(map.name);
        }
    }
    if (pins.created.empty() && pins.persistent.empty()) record.modules.erase(module);
    if (record != before) store.save();
}

void Registry::Impl::take_slot(const SlotInfo& holder, int program_fd, EmptySlot when_empty) {
    const int pipeline = pipeline_fd();
    auto& slots = store.record().slots;
    const auto held = slots.find(holder.stage);
    const bool by_kernel = holder.module == kKernelHolder;
    if (!by_kernel && held != slots.end() && held->second.module == kKernelHolder) {
        throw BpfError(fmt::format("pipeline stage {} is a kernel slot (program {}); module {} cannot take it",
                                   describe_stage(holder.stage), held->second.program, holder.module));
    }
    if (!by_kernel && held != slots.end() && held->second.module != holder.module &&
        module_is_live(held->second.module)) {
        throw BpfError(fmt::format("pipeline stage {} is held by module {} (generation {}, program {}); "
                                   "module {} cannot take it",
                                   describe_stage(holder.stage), held->second.module, held->second.generation,
                                   held->second.program, holder.module));
    }
    fill_slot(pipeline, holder.stage, program_fd);
    // Only now: a fail-closed stage that was empty dropped until this instant,
    // and one turning pass-through never skips while it is empty.
    set_empty_slot_verdict(stage_verdicts_fd(), holder.stage, when_empty);
    // The holder decides, and is the one to take it back (settle_verdicts).
    auto& declared = store.record().fail_closed_by;
    if (when_empty == EmptySlot::drop) {
        declared[holder.stage] = holder.module;
    } else {
        declared.erase(holder.stage);
    }

    if (held == slots.end()) {
        log->info("stage {}: {} gen {} program {} (id {}) fills the empty slot; when empty, packets are {}",
                  describe_stage(holder.stage), holder.module, holder.generation, holder.program, holder.program_id,
                  describe_empty_slot(when_empty));
    } else {
        const auto& old = held->second;
        log->info("stage {}: {} gen {} program {} (id {}) replaces {} gen {} program {} (id {}){}; when empty, "
                  "packets are {}",
                  describe_stage(holder.stage), holder.module, holder.generation, holder.program, holder.program_id,
                  old.module, old.generation, old.program, old.program_id,
                  inherited_slots.contains(holder.stage) ? ", left by an earlier run" : "",
                  describe_empty_slot(when_empty));
    }
    slots[holder.stage] = holder;
    inherited_slots.erase(holder.stage);
    store.save();
}

std::vector<std::uint32_t> Registry::Impl::stages_held_by(const std::string& module, std::uint64_t generation) const {
    std::vector<std::uint32_t> stages;
    for (const auto& [stage, holder] : store.record().slots) {
        if (holder.module == module && holder.generation == generation && !inherited_slots.contains(stage)) {
            stages.push_back(stage);
        }
    }
    return stages;
}

void Registry::Impl::take_device(const DeviceAttachment& holder) {
    if (!core) {
        throw BpfError(fmt::format("cannot attach to device {}: the core BPF object is not loaded", holder.ifname));
    }
    if (!is_entry_program(holder.program)) {
        throw BpfError(fmt::format("cannot attach {} to device {}: not an entry program of the core (those are {})",
                                   holder.program, holder.ifname, entry_program_names()));
    }
    auto& devices = store.record().devices;
    const auto held = devices.find(holder.ifname);
    const bool inherited = inherited_devices.contains(holder.ifname);
    if (held != devices.end() && !inherited && held->second.module != holder.module) {
        const auto& current = held->second;
        const bool kernel_holds = current.module == kKernelHolder;
        if (kernel_holds || module_is_live(current.module)) {
            throw BpfError(fmt::format(
                "device {} carries {} held by {}{}; {} cannot take it", holder.ifname, current.program,
                kernel_holds ? "the kernel (agent.devices or an endpoint)" : "module " + current.module,
                kernel_holds ? "" : fmt::format(" (generation {})", current.generation),
                holder.module == kKernelHolder ? "the kernel" : "module " + holder.module));
        }
    }
    attach_tc_ingress(holder.ifname, core->program_fd(holder.program));

    const auto who = [](const DeviceAttachment& device) {
        return device.module == kKernelHolder ? std::string(kKernelHolder)
                                              : fmt::format("{} gen {}", device.module, device.generation);
    };
    if (held == devices.end()) {
        log->info("device {}: {} on tc ingress (handle {:#x} prio {}) for {}", holder.ifname, holder.program,
                  kTcHandle, kTcPriority, who(holder));
    } else {
        log->info("device {}: {} on tc ingress (handle {:#x} prio {}) for {}, replacing our earlier filter "
                  "({} of {}{})",
                  holder.ifname, holder.program, kTcHandle, kTcPriority, who(holder), held->second.program,
                  who(held->second), inherited ? ", left by an earlier run" : "");
    }
    devices[holder.ifname] = holder;
    inherited_devices.erase(holder.ifname);
    store.save();
}

void Registry::Impl::release_device(const std::string& ifname, const char* why) {
    const bool removed = detach_tc_ingress(ifname);
    inherited_devices.erase(ifname);
    auto& devices = store.record().devices;
    const auto held = devices.find(ifname);
    if (held == devices.end()) {
        log->info("device {}: {} ({})", ifname, removed ? "tc ingress filter removed" : "no filter of ours", why);
        return;
    }
    log->info("device {}: {} of {}{} {} ({})", ifname, held->second.program, held->second.module,
              held->second.module == kKernelHolder ? "" : fmt::format(" gen {}", held->second.generation),
              removed ? "removed from tc ingress" : "already gone (device gone?)", why);
    devices.erase(held);
    store.save();
}

std::vector<std::string> Registry::Impl::devices_held_by(const std::string& module, std::uint64_t generation) const {
    std::vector<std::string> held;
    for (const auto& [ifname, device] : store.record().devices) {
        if (device.module == module && device.generation == generation && !inherited_devices.contains(ifname)) {
            held.push_back(ifname);
        }
    }
    return held;
}

void Registry::Impl::release_slot(std::uint32_t stage, const char* why) {
    auto& slots = store.record().slots;
    const auto held = slots.find(stage);
    if (core) {
        empty_slot(pipeline_fd(), stage);
    } else if (const UniqueFd pinned(bpf_obj_get((pin_dir / MBR_MAP_PIPELINE).c_str())); pinned) {
        empty_slot(pinned.get(), stage);  // forget_module before open_core
    }
    inherited_slots.erase(stage);
    if (held != slots.end()) {
        const auto verdict = core ? empty_slot_verdict(stage_verdicts_fd(), stage) : EmptySlot::pass_through;
        const auto log_level = verdict == EmptySlot::drop ? spdlog::level::warn : spdlog::level::info;
        log->log(log_level, "stage {}: emptied ({} gen {} program {}: {}); packets are {} until a module fills it",
                 describe_stage(stage), held->second.module, held->second.generation, held->second.program, why,
                 describe_empty_slot(verdict));
        slots.erase(held);
        store.save();
    }
}

void Registry::Impl::settle_verdicts(const std::string& module, std::uint64_t generation) {
    // Only the declaring module's own running generation relaxes a verdict:
    // a fail-closed stage whose module is gone (unload, also forced;
    // quarantine; failed start) keeps dropping, which is its point.
    const auto held = stages_held_by(module, generation);
    auto& declared = store.record().fail_closed_by;
    std::vector<std::uint32_t> relaxed;
    for (const auto& [stage, declarer] : declared) {
        if (declarer == module && std::ranges::find(held, stage) == held.end()) relaxed.push_back(stage);
    }
    for (const auto stage : relaxed) {
        // Set while the old generation may still fill the slot (a reload):
        // its close then empties a slot that passes, never one that drops.
        set_empty_slot_verdict(stage_verdicts_fd(), stage, EmptySlot::pass_through);
        declared.erase(stage);
        log->info("stage {}: no longer fail-closed: {} gen {} does not fill it (the module no longer declares it)",
                  describe_stage(stage), module, generation);
    }
    if (!relaxed.empty()) store.save();
    // A slot an earlier run of the agent left filled for this module, which
    // its first generation of this run did not take again: the module no
    // longer runs that stage, so the old program must not go on running it.
    // Emptied after the relaxing above, so it meets the verdict the module
    // declares now.
    std::vector<std::uint32_t> stale;
    for (const auto stage : inherited_slots) {
        const auto holder = store.record().slots.find(stage);
        if (holder != store.record().slots.end() && holder->second.module == module) stale.push_back(stage);
    }
    const auto why = fmt::format("{} gen {} no longer fills it", module, generation);
    for (const auto stage : stale) release_slot(stage, why.c_str());
    // Likewise a socket hook an earlier run left attached for the module.
    std::vector<std::string> stale_hooks;
    for (const auto& hook : inherited_socket_hooks) {
        const auto holder = store.record().socket_hooks.find(hook);
        if (holder != store.record().socket_hooks.end() && holder->second.module == module) stale_hooks.push_back(hook);
    }
    const auto hook_why = fmt::format("{} gen {} no longer attaches it", module, generation);
    for (const auto& hook : stale_hooks) release_socket_hook(hook, hook_why.c_str());
}

namespace {

// Where a hook's link is pinned: <pin_dir>/links/cgroup_connect4.
std::filesystem::path socket_hook_pin(const std::filesystem::path& pin_dir, std::string_view hook) {
    std::string name(hook);
    std::ranges::replace(name, '/', '_');
    return pin_dir / "links" / name;
}

}  // namespace

void Registry::Impl::take_socket_hook(SocketHookAttachment holder, bpf_attach_type type, int program_fd) {
    auto& hooks = store.record().socket_hooks;
    const auto held = hooks.find(holder.hook);
    const bool inherited = inherited_socket_hooks.contains(holder.hook);
    if (held != hooks.end() && !inherited && held->second.module != holder.module &&
        module_is_live(held->second.module)) {
        throw BpfError(fmt::format("socket hook {} carries {} of module {} (generation {}); module {} cannot take it",
                                   holder.hook, held->second.program, held->second.module, held->second.generation,
                                   holder.module));
    }
    const auto cgroup = resolve_cgroup_root(cgroup_root);
    holder.cgroup = cgroup.string();
    holder.pin = socket_hook_pin(pin_dir, holder.hook).string();
    attach_cgroup_link(cgroup, type, program_fd, holder.pin);
    // A link recorded elsewhere (another pin folder in an earlier run) would
    // go on running the old program: it goes once the new one runs.
    if (held != hooks.end() && held->second.pin != holder.pin) detach_cgroup_link(held->second.pin);
    if (held == hooks.end()) {
        log->info("socket hook {} on cgroup {}: {} of {} gen {}", holder.hook, holder.cgroup, holder.program,
                  holder.module, holder.generation);
    } else {
        log->info("socket hook {} on cgroup {}: {} of {} gen {}, replacing {} of {} gen {}{}", holder.hook,
                  holder.cgroup, holder.program, holder.module, holder.generation, held->second.program,
                  held->second.module, held->second.generation, inherited ? " (left by an earlier run)" : "");
    }
    hooks[holder.hook] = holder;
    inherited_socket_hooks.erase(holder.hook);
    store.save();
}

void Registry::Impl::release_socket_hook(const std::string& hook, const char* why) {
    inherited_socket_hooks.erase(hook);
    auto& hooks = store.record().socket_hooks;
    const auto held = hooks.find(hook);
    const auto pin = held == hooks.end() ? socket_hook_pin(pin_dir, hook) : std::filesystem::path(held->second.pin);
    const bool removed = detach_cgroup_link(pin);
    if (held == hooks.end()) {
        log->info("socket hook {}: {} ({})", hook, removed ? "detached" : "nothing of ours", why);
        return;
    }
    log->info("socket hook {}: {} of {} gen {} {} from cgroup {} ({})", hook, held->second.program,
              held->second.module, held->second.generation, removed ? "detached" : "already gone",
              held->second.cgroup, why);
    hooks.erase(held);
    store.save();
}

std::vector<std::string> Registry::Impl::socket_hooks_held_by(const std::string& module,
                                                              std::uint64_t generation) const {
    std::vector<std::string> held;
    for (const auto& [hook, holder] : store.record().socket_hooks) {
        if (holder.module == module && holder.generation == generation && !inherited_socket_hooks.contains(hook)) {
            held.push_back(hook);
        }
    }
    return held;
}

// ---- Registry ---------------------------------------------------------------

Registry::Registry(std::filesystem::path bpffs_root, std::filesystem::path pin_dir, std::filesystem::path state_dir,
                   std::shared_ptr<spdlog::logger> log) {
    if (!log) throw BpfError("Registry needs a logger");
    // "/x/membrane/node/" and "/x/membrane/node" are the same folder; uninstall
    // relies on parent_path() being <bpffs>/membrane.
    pin_dir = pin_dir.lexically_normal();
    if (!pin_dir.has_filename()) pin_dir = pin_dir.parent_path();
    ensure_bpffs(bpffs_root, *log);
    std::error_code error;
    std::filesystem::create_directories(pin_dir, error);
    if (error) throw BpfError(fmt::format("cannot create pin folder {}: {}", pin_dir.string(), error.message()));
    impl_ = std::make_unique<Impl>(std::move(bpffs_root), std::move(pin_dir), std::move(state_dir), std::move(log));
    // Attachments recorded by an earlier run: their holders' generation
    // numbers mean nothing in this run (see Impl::inherited_devices).
    for (const auto& [ifname, device] : impl_->store.record().devices) impl_->inherited_devices.insert(ifname);
    for (const auto& [hook, holder] : impl_->store.record().socket_hooks) impl_->inherited_socket_hooks.insert(hook);
    impl_->log->debug("BPF registry: pins in {}, ownership record {}", impl_->pin_dir.string(),
                      impl_->store.file().string());
}

Registry::~Registry() {
    const std::lock_guard lock(impl_->mutex);
    for (auto& [generation, orphan] : impl_->live) {
        impl_->log->warn("module {} gen {} still has its BPF open while the registry closes; its slots stay filled",
                         generation.first, generation.second);
        orphan();
    }
    // The core object closes here; its maps stay pinned and its entry program
    // stays attached to the devices (tc holds it), so traffic keeps flowing.
}

void Registry::open_core(std::span<const std::byte> core_elf) {
    const std::lock_guard lock(impl_->mutex);
    auto& impl = *impl_;
    if (impl.core) throw BpfError("the core BPF object is already loaded");

    std::error_code error;
    std::filesystem::create_directories(impl.pin_dir, error);  // again, in case uninstall() removed it
    auto core = LoadedObject::open(core_elf, kCoreObjectName, impl.pin_dir, *impl.log);
    core->owner = &impl;
    core->load(*impl.log);
    // The contract: each of these throws if missing.
    for (const char* program : {MBR_ENTRY_FROM_NETDEV, MBR_ENTRY_FROM_ENDPOINT, MBR_ENTRY_FROM_OVERLAY, kDeliveryProgram}) {
        core->program(program);
    }
    for (const char* map :
         {MBR_MAP_PIPELINE, MBR_MAP_STATS, MBR_MAP_ENDPOINTS, MBR_MAP_IPCACHE, MBR_MAP_STAGE_VERDICTS, MBR_MAP_CT}) {
        core->map_fd(map);
    }

    auto& record = impl.store.record();
    for (const auto& map : core->pinned_maps()) {
        record.kernel_pins.insert(map.name);
        for (auto& [module, pins] : record.modules) pins.created.erase(map.name);
    }
    impl.log->info("core BPF loaded in {}: pins reused [{}], created [{}]", impl.pin_dir.string(),
                   fmt::join(core->reused_pins(), ","), fmt::join(core->created_pins(), ","));
    impl.core = std::move(core);

    // Why the pipeline is pinned: the kernel empties a prog array as soon as
    // its last user reference (fd or pin) goes, to break program<->array
    // reference cycles; references held by programs (the tc filter's entry
    // program) do not count. The pin keeps every slot filled while the agent
    // is down or restarting.
    //
    // A restarted agent finds the slots as the previous run left them: keep
    // the records that still match the prog array, drop the others.
    const int pipeline = impl.pipeline_fd();
    for (auto it = record.slots.begin(); it != record.slots.end();) {
        const auto id = slot_program_id(pipeline, it->first);
        if (id && *id == it->second.program_id) {
            impl.inherited_slots.insert(it->first);
            impl.log->info("stage {}: still held by {} gen {} program {} (id {}) from an earlier run",
                           describe_stage(it->first), it->second.module, it->second.generation, it->second.program,
                           *id);
            ++it;
        } else {
            impl.log->info("stage {}: record of {} gen {} dropped, the slot {}", describe_stage(it->first),
                           it->second.module, it->second.generation,
                           id ? fmt::format("holds another program (id {})", *id) : std::string("is empty"));
            it = record.slots.erase(it);
        }
    }
    impl.store.save();
    // The verdicts are pinned: what an earlier run declared still holds.
    const int verdicts = impl.stage_verdicts_fd();
    for (std::uint32_t stage = 0; stage < MBR_STAGE_MAX; ++stage) {
        if (empty_slot_verdict(verdicts, stage) == EmptySlot::drop && !slot_program_id(pipeline, stage)) {
            impl.log->warn("stage {}: fail-closed and empty: packets through it are dropped until a module fills it",
                           describe_stage(stage));
        }
    }

    // Local delivery is the kernel's own stage: this core's program replaces
    // an earlier run's in one map update.
    const int delivery = impl.core->program_fd(kDeliveryProgram);
    impl.take_slot(SlotInfo{.stage = MBR_STAGE_DELIVERY,
                            .module = kKernelHolder,
                            .generation = 0,
                            .program = kDeliveryProgram,
                            .program_id = program_id(delivery)},
                   delivery, EmptySlot::pass_through);
}

void Registry::attach_device(const std::string& ifname, const std::string& entry_program) {
    const std::lock_guard lock(impl_->mutex);
    impl_->take_device(DeviceAttachment{.ifname = ifname, .program = entry_program});
}

void Registry::detach_device(const std::string& ifname) {
    const std::lock_guard lock(impl_->mutex);
    impl_->release_device(ifname, "detached by the kernel");
}

std::vector<std::string> Registry::attached_devices() const {
    const std::lock_guard lock(impl_->mutex);
    std::vector<std::string> names;
    for (const auto& [ifname, device] : impl_->store.record().devices) names.push_back(ifname);
    return names;
}

std::vector<DeviceAttachment> Registry::attachments() const {
    const std::lock_guard lock(impl_->mutex);
    std::vector<DeviceAttachment> list;
    for (const auto& [ifname, device] : impl_->store.record().devices) list.push_back(device);
    return list;
}

int Registry::core_map_fd(const std::string& map_name) const {
    const std::lock_guard lock(impl_->mutex);
    if (!impl_->core) {
        throw BpfError(fmt::format("no core map {}: the core BPF object is not loaded (open_core first)", map_name));
    }
    return impl_->core->map_fd(map_name);
}

int Registry::core_program_fd(const std::string& program_name) const {
    const std::lock_guard lock(impl_->mutex);
    if (!impl_->core) {
        throw BpfError(fmt::format("no core program {}: the core BPF object is not loaded (open_core first)", program_name));
    }
    return impl_->core->program_fd(program_name);
}

std::unique_ptr<ModuleBpf> Registry::for_module(const std::string& module, std::uint64_t generation) {
    const std::lock_guard lock(impl_->mutex);
    if (module.empty()) throw BpfError("a module needs a name to use BPF");
    if (module == kKernelHolder) {
        throw BpfError(fmt::format("the module name \"{}\" is reserved for the kernel's own BPF", kKernelHolder));
    }
    if (impl_->live.contains({module, generation})) {
        throw BpfError(fmt::format("module {} generation {} already has its BPF facade open", module, generation));
    }
    return std::unique_ptr<ModuleBpf>(new ModuleBpf(*impl_, module, generation));
}

void Registry::forget_module(const std::string& module) {
    const std::lock_guard lock(impl_->mutex);
    auto& impl = *impl_;
    if (impl.module_is_live(module)) {
        impl.log->warn("forgetting module {} while a generation of it is still open", module);
    }
    auto& record = impl.store.record();

    // Slots it still holds from an earlier run or a close(keep_slots) (an
    // unload's close() emptied the others).
    std::vector<std::uint32_t> stages;
    for (const auto& [stage, holder] : record.slots) {
        const bool held_by_open_generation =
            impl.live.contains({module, holder.generation}) && !impl.inherited_slots.contains(stage);
        if (holder.module == module && !held_by_open_generation) stages.push_back(stage);
    }
    for (const auto stage : stages) impl.release_slot(stage, "module forgotten");

    // Likewise its devices.
    std::vector<std::string> devices;
    for (const auto& [ifname, device] : record.devices) {
        const bool held_by_open_generation =
            impl.live.contains({module, device.generation}) && !impl.inherited_devices.contains(ifname);
        if (device.module == module && !held_by_open_generation) devices.push_back(ifname);
    }
    for (const auto& ifname : devices) {
        try {
            impl.release_device(ifname, "module forgotten");
        } catch (const BpfError& error) {
            impl.log->warn("module {} forgotten, but {}", module, error.what());
        }
    }

    // Likewise its socket hooks.
    std::vector<std::string> hooks;
    for (const auto& [hook, holder] : record.socket_hooks) {
        const bool held_by_open_generation =
            impl.live.contains({module, holder.generation}) && !impl.inherited_socket_hooks.contains(hook);
        if (holder.module == module && !held_by_open_generation) hooks.push_back(hook);
    }
    for (const auto& hook : hooks) {
        try {
            impl.release_socket_hook(hook, "module forgotten");
        } catch (const BpfError& error) {
            impl.log->warn("module {} forgotten, but {}", module, error.what());
        }
    }

    const auto found = record.modules.find(module);
    if (found == record.modules.end()) {
        impl.log->info("module {} forgotten: it created no pins", module);
        return;
    }
    auto& pins = found->second;
    std::vector<std::string> removed;
    for (auto it = pins.created.begin(); it != pins.created.end();) {
        if (pins.persistent.contains(*it) || impl.is_kernel_pin(*it)) {
            ++it;
            continue;
        }
        const auto path = impl.pin_dir / *it;
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
            impl.log->warn("{}", with_errno(fmt::format("cannot unpin {}", path.string()), errno));
            ++it;
            continue;
        }
        removed.push_back(*it);
        it = pins.created.erase(it);
    }
    // The persistent pins stay its own, so a later unload of a new version
    // that no longer marks them persistent can still remove them.
    const std::vector<std::string> kept(pins.created.begin(), pins.created.end());
    if (pins.created.empty()) record.modules.erase(found);
    impl.store.save();
    impl.log->info("module {} forgotten: unpinned [{}], kept [{}]", module, fmt::join(removed, ","),
                   fmt::join(kept, ","));
}

std::vector<std::uint32_t> Registry::fail_closed_stages() const {
    const std::lock_guard lock(impl_->mutex);
    const int verdicts = impl_->stage_verdicts_fd();
    std::vector<std::uint32_t> stages;
    for (std::uint32_t stage = 0; stage < MBR_STAGE_MAX; ++stage) {
        if (empty_slot_verdict(verdicts, stage) == EmptySlot::drop) stages.push_back(stage);
    }
    return stages;
}

std::vector<SlotInfo> Registry::slots() const {
    const std::lock_guard lock(impl_->mutex);
    const auto& impl = *impl_;
    const auto& records = impl.store.record().slots;
    if (!impl.core) return [&] {
        std::vector<SlotInfo> list;
        for (const auto& [stage, holder] : records) list.push_back(holder);
        return list;
    }();

    // The prog array is the truth; the record names the holders.
    std::vector<SlotInfo> list;
    const int pipeline = impl.pipeline_fd();
    for (std::uint32_t stage = 0; stage < MBR_STAGE_MAX; ++stage) {
        const auto id = slot_program_id(pipeline, stage);
        if (!id) continue;
        const auto held = records.find(stage);
        if (held != records.end() && held->second.program_id == *id) {
            list.push_back(held->second);
        } else {
            list.push_back(SlotInfo{.stage = stage, .module = "", .program_id = *id});  // holder unknown
        }
    }
    return list;
}

void Registry::set_cgroup_root(std::filesystem::path cgroup_root) {
    const std::lock_guard lock(impl_->mutex);
    impl_->cgroup_root = std::move(cgroup_root);
}

std::vector<SocketHookAttachment> Registry::socket_hooks() const {
    const std::lock_guard lock(impl_->mutex);
    std::vector<SocketHookAttachment> list;
    for (const auto& [hook, holder] : impl_->store.record().socket_hooks) list.push_back(holder);
    return list;
}

const std::filesystem::path& Registry::pin_dir() const { return impl_->pin_dir; }

void Registry::uninstall() {
    const std::lock_guard lock(impl_->mutex);
    auto& impl = *impl_;
    if (!impl.live.empty()) impl.log->warn("uninstalling while {} module generation(s) are open", impl.live.size());

    std::string failures;
    for (const auto& [device, attachment] : impl.store.record().devices) {
        try {
            const bool removed = detach_tc_ingress(device);
            impl.log->info("device {}: {}", device, removed ? "tc ingress filter removed" : "already gone");
        } catch (const BpfError& error) {
            failures += fmt::format("\n  {}", error.what());
        }
    }
    impl.core.reset();
    impl.inherited_slots.clear();
    impl.inherited_devices.clear();
    // The socket hooks' links are pinned in the pin folder: removing it detaches them.
    impl.inherited_socket_hooks.clear();

    std::error_code error;
    const auto removed = std::filesystem::remove_all(impl.pin_dir, error);
    if (error) failures += fmt::format("\n  cannot remove {}: {}", impl.pin_dir.string(), error.message());
    // <bpffs>/membrane goes too once no other node's folder is in it.
    if (const auto parent = impl.pin_dir.parent_path(); parent != impl.bpffs_root && is_bpffs(parent)) {
        std::filesystem::remove(parent, error);  // fails (and stays) if not empty
    }
    impl.store.erase();
    impl.log->info("uninstalled: pin folder {} removed ({} entries)", impl.pin_dir.string(),
                   removed == static_cast<std::uintmax_t>(-1) ? 0 : removed);
    if (!failures.empty()) throw BpfError("uninstall left something behind:" + failures);
}

}  // namespace membrane::kernel
