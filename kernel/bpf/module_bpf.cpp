#include <algorithm>
#include <iterator>
#include <map>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bpf/bpf_error.hpp"
#include "bpf/cgroup_attach.hpp"
#include "bpf/pipeline_slots.hpp"
#include "bpf/registry.hpp"
#include "bpf/registry_impl.hpp"
#include "membrane/contract.h"

namespace membrane::kernel {

struct ModuleBpf::State {
    Registry::Impl* registry;  // null once the registry is gone (see ~Registry)
    std::string module;
    std::uint64_t generation;
    std::vector<std::unique_ptr<LoadedObject>> objects;
    // What this generation put in which slot, so it can take the slots back
    // after a newer generation failed to start (ModuleBpf::reclaim_stages).
    struct Attached {
        const LoadedObject* object;
        std::string program;
        EmptySlot when_empty;
    };
    std::map<std::uint32_t, Attached> attached;
    // Likewise the devices it put an entry program on: ifname -> program.
    std::map<std::string, std::string> entries;
    // And the socket hooks: hook -> (object, program).
    std::map<std::string, std::pair<const LoadedObject*, std::string>> socket_hooks;
    // Pinned maps this generation's objects resized, pinned beside the old
    // pins until the generation started (commit_resized_pins); a generation
    // that fails to load or start leaves the old pins to the one running.
    std::vector<MapResize> staged_resizes;
    bool closed = false;

    std::string who() const { return fmt::format("module {} gen {}", module, generation); }

    // `object` as this generation loaded it; another's is refused.
    const LoadedObject* own(const BpfObject& object) const {
        const auto* loaded = dynamic_cast<const LoadedObject*>(&object);
        if (!loaded || loaded->owner != this) {
            throw BpfError(fmt::format("{}: object {} was not loaded through this module generation", who(),
                                       object.name()));
        }
        return loaded;
    }

    Registry::Impl& usable_registry() const {
        if (closed) throw BpfError(fmt::format("{}: its BPF is closed", who()));
        if (!registry) throw BpfError(fmt::format("{}: the BPF registry is gone", who()));
        return *registry;
    }
};

ModuleBpf::ModuleBpf(Registry::Impl& registry, std::string module, std::uint64_t generation)
    : state_(std::make_unique<State>(State{&registry, std::move(module), generation, {}})) {
    // Called by Registry::for_module with the registry's mutex held.
    registry.live[{state_->module, state_->generation}] = [state = state_.get()] { state->registry = nullptr; };
}

ModuleBpf::~ModuleBpf() {
    if (state_->closed) return;
    // Forgotten by the host: release like an unload rather than leak slots
    // that point at programs nobody owns.
    try {
        close(false);
    } catch (const std::exception& error) {
        if (state_->registry) state_->registry->log->error("{}: closing its BPF failed: {}", state_->who(), error.what());
    }
}

BpfObject& ModuleBpf::load(const BpfObjectSpec& spec) { return load(spec, {}); }

BpfObject& ModuleBpf::load(const BpfObjectSpec& spec, const std::vector<BpfMapSize>& map_sizes) {
    auto& registry = state_->usable_registry();
    const std::lock_guard lock(registry.mutex);
    auto& log = *registry.log;

    if (spec.name.empty()) throw BpfError(fmt::format("{}: a BPF object needs a name", state_->who()));
    const bool duplicate = std::ranges::any_of(state_->objects, [&](const auto& object) {
        return object->name() == spec.name;
    });
    if (duplicate) throw BpfError(fmt::format("{}: object {} is already loaded", state_->who(), spec.name));

    for (const auto& size : map_sizes) {
        // The core's maps keep the size the core declares: every object of every module shares them.
        if (registry.is_kernel_pin(size.map)) {
            throw BpfError(fmt::format("{}: object {} cannot size map {}: it is one of the agent's core maps, "
                                       "shared by every module", state_->who(), spec.name, size.map));
        }
    }
    auto object = LoadedObject::open(spec.elf, spec.name, registry.pin_dir, log, map_sizes, state_->staged_resizes);
    for (const auto& persistent : spec.persistent_maps) {
        const bool pinned = std::ranges::any_of(object->pinned_maps(), [&](const auto& map) {
            return map.name == persistent;
        });
        if (!pinned) {
            throw BpfError(fmt::format("{}: object {} lists {} as persistent, but it declares no map of that name "
                                       "with pinning = LIBBPF_PIN_BY_NAME, so it could not survive a reload",
                                       state_->who(), spec.name, persistent));
        }
    }
    object->load(log);
    std::ranges::move(object->take_staged_resizes(), std::back_inserter(state_->staged_resizes));
    object->owner = state_.get();
    registry.record_module_pins(state_->module, *object, spec.persistent_maps);
    log.info("{}: loaded object {} (pins reused [{}], created [{}])", state_->who(), spec.name,
             fmt::join(object->reused_pins(), ","), fmt::join(object->created_pins(), ","));

    state_->objects.push_back(std::move(object));
    return *state_->objects.back();
}

void ModuleBpf::attach_stage(std::uint32_t stage, const BpfObject& object, std::string_view program) {
    attach_stage(stage, object, program, EmptySlot::pass_through);
}

void ModuleBpf::attach_stage(std::uint32_t stage, const BpfObject& object, std::string_view program,
                             EmptySlot when_empty) {
    auto& registry = state_->usable_registry();
    const std::lock_guard lock(registry.mutex);

    if (stage >= MBR_STAGE_MAX) {
        throw BpfError(fmt::format("{}: pipeline stage {} does not exist (stages are 0..{})", state_->who(), stage,
                                   MBR_STAGE_MAX - 1));
    }
    const LoadedObject* loaded = state_->own(object);
    auto* bpf_prog = loaded->program(program);
    if (bpf_program__type(bpf_prog) != BPF_PROG_TYPE_SCHED_CLS) {
        throw BpfError(fmt::format("{}: program {} of object {} is not a tc program (SEC(\"tc\")), so it cannot "
                                   "be a pipeline stage",
                                   state_->who(), program, object.name()));
    }
    const int program_fd = loaded->program_fd(program);
    registry.take_slot(SlotInfo{.stage = stage,
                                .module = state_->module,
                                .generation = state_->generation,
                                .program = std::string(program),
                                .program_id = program_id(program_fd)},
                       program_fd, when_empty);
    state_->attached[stage] = {loaded, std::string(program), when_empty};
}

void ModuleBpf::attach_entry(std::string_view ifname, std::string_view entry_program) {
    auto& registry = state_->usable_registry();
    const std::lock_guard lock(registry.mutex);
    if (ifname.empty()) throw BpfError(fmt::format("{}: attach_entry needs a device name", state_->who()));
    try {
        registry.take_device(DeviceAttachment{.ifname = std::string(ifname),
                                              .program = std::string(entry_program),
                                              .module = state_->module,
                                              .generation = state_->generation});
    } catch (const BpfError& error) {
        throw BpfError(fmt::format("{}: {}", state_->who(), error.what()));
    }
    state_->entries[std::string(ifname)] = std::string(entry_program);
}

void ModuleBpf::attach_socket_hook(const BpfObject& object, std::string_view program) {
    auto& registry = state_->usable_registry();
    const std::lock_guard lock(registry.mutex);
    const LoadedObject* loaded = state_->own(object);
    auto* bpf_prog = loaded->program(program);
    const auto type = bpf_program__expected_attach_type(bpf_prog);
    const auto hook = socket_hook_name(type);
    const auto prog_type = bpf_program__type(bpf_prog);
    if (hook.empty() || (prog_type != BPF_PROG_TYPE_CGROUP_SOCK_ADDR && prog_type != BPF_PROG_TYPE_CGROUP_SOCK)) {
        throw BpfError(fmt::format("{}: program {} of object {} is not a cgroup socket program (SEC(\"cgroup/"
                                   "connect4\"), sendmsg4, recvmsg4, getpeername4, bind4, sock_create, sock_release)",
                                   state_->who(), program, object.name()));
    }
    try {
        registry.take_socket_hook(SocketHookAttachment{.hook = hook,
                                                       .program = std::string(program),
                                                       .module = state_->module,
                                                       .generation = state_->generation},
                                  type, loaded->program_fd(program));
    } catch (const BpfError& error) {
        throw BpfError(fmt::format("{}: {}", state_->who(), error.what()));
    }
    state_->socket_hooks[hook] = {loaded, std::string(program)};
}

void ModuleBpf::reclaim_stages() {
    const auto attached = state_->attached;
    const auto held = held_stages();
    for (const auto& [stage, what] : attached) {
        if (std::ranges::find(held, stage) != held.end()) continue;
        attach_stage(stage, *what.object, what.program, what.when_empty);
        state_->registry->log->info("{}: took stage {} back", state_->who(), stage);
    }
    const auto entries = state_->entries;
    const auto held_ifnames = held_devices();
    for (const auto& [ifname, program] : entries) {
        if (std::ranges::find(held_ifnames, ifname) != held_ifnames.end()) continue;
        attach_entry(ifname, program);
        state_->registry->log->info("{}: took device {} back", state_->who(), ifname);
    }
    const auto hooks = state_->socket_hooks;
    const auto held_hooks = held_socket_hooks();
    for (const auto& [hook, what] : hooks) {
        if (std::ranges::find(held_hooks, hook) != held_hooks.end()) continue;
        attach_socket_hook(*what.first, what.second);
        state_->registry->log->info("{}: took socket hook {} back", state_->who(), hook);
    }
}

void ModuleBpf::settle_empty_slots() {
    auto& registry = state_->usable_registry();
    const std::lock_guard lock(registry.mutex);
    registry.settle_verdicts(state_->module, state_->generation);
}

void ModuleBpf::detach_stage(std::uint32_t stage) {
    auto& registry = state_->usable_registry();
    const std::lock_guard lock(registry.mutex);
    const auto& slots = registry.store.record().slots;
    const auto held = slots.find(stage);
    if (held == slots.end()) {
        registry.log->debug("{}: stage {} is not held, nothing to detach", state_->who(), describe_stage(stage));
        return;
    }
    if (held->second.module != state_->module) {
        throw BpfError(fmt::format("{}: cannot empty stage {}, it is held by module {} (generation {})",
                                   state_->who(), describe_stage(stage), held->second.module,
                                   held->second.generation));
    }
    registry.release_slot(stage, "detached");
    state_->attached.erase(stage);
}

void ModuleBpf::commit_resized_pins() {
    auto& registry = state_->usable_registry();
    const std::lock_guard lock(registry.mutex);
    const auto resizes = std::exchange(state_->staged_resizes, {});
    try {
        kernel::commit_resized_pins(state_->who(), resizes, *registry.log);
    } catch (...) {
        discard_resized_pins(resizes);
        throw;
    }
    for (const auto& object : state_->objects) object->repoint_pins(resizes);
}

void ModuleBpf::close(bool keep_slots) {
    if (state_->closed) return;
    discard_resized_pins(std::exchange(state_->staged_resizes, {}));
    auto* registry = state_->registry;
    if (registry) {
        const std::lock_guard lock(registry->mutex);
        // Only the slots this very generation holds: after a reload the next
        // generation has taken them over and they must stay filled.
        const auto stages = registry->stages_held_by(state_->module, state_->generation);
        const auto devices = registry->devices_held_by(state_->module, state_->generation);
        const auto hooks = registry->socket_hooks_held_by(state_->module, state_->generation);
        std::string failures;
        if (keep_slots) {
            if (!stages.empty() || !devices.empty() || !hooks.empty()) {
                registry->log->info("{}: closing, its {} slot(s) stay filled, {} device(s) and {} socket hook(s) "
                                    "attached for the next start",
                                    state_->who(), stages.size(), devices.size(), hooks.size());
            }
        } else {
            for (const auto& hook : hooks) {
                try {
                    registry->release_socket_hook(hook, "closed");
                } catch (const BpfError& error) {
                    failures += fmt::format("\n  {}", error.what());
                }
            }
            for (const auto stage : stages) {
                try {
                    registry->release_slot(stage, "closed");
                } catch (const BpfError& error) {
                    failures += fmt::format("\n  {}", error.what());
                }
            }
            for (const auto& ifname : devices) {
                try {
                    registry->release_device(ifname, "closed");
                } catch (const BpfError& error) {
                    failures += fmt::format("\n  {}", error.what());
                }
            }
        }
        registry->live.erase({state_->module, state_->generation});
        state_->closed = true;
        // A filled slot keeps its program alive through the prog array, so
        // the objects (fds) can go either way.
        state_->objects.clear();
        registry->log->debug("{}: BPF closed", state_->who());
        if (!failures.empty()) throw BpfError(fmt::format("{}: closing left slots filled:{}", state_->who(), failures));
        return;
    }
    state_->closed = true;
    state_->objects.clear();
}

std::vector<std::uint32_t> ModuleBpf::held_stages() const {
    auto* registry = state_->registry;
    if (!registry || state_->closed) return {};
    const std::lock_guard lock(registry->mutex);
    return registry->stages_held_by(state_->module, state_->generation);
}

std::vector<std::string> ModuleBpf::held_socket_hooks() const {
    auto* registry = state_->registry;
    if (!registry || state_->closed) return {};
    const std::lock_guard lock(registry->mutex);
    return registry->socket_hooks_held_by(state_->module, state_->generation);
}

std::vector<std::string> ModuleBpf::held_devices() const {
    auto* registry = state_->registry;
    if (!registry || state_->closed) return {};
    const std::lock_guard lock(registry->mutex);
    return registry->devices_held_by(state_->module, state_->generation);
}

}  // namespace membrane::kernel
