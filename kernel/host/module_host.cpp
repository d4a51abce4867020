#include "host/module_host.hpp"

#include "membrane/names.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <boost/asio/post.hpp>
#include <boost/dll/shared_library.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bpf/pipeline_slots.hpp"
#include "host/abi_check.hpp"
#include "host/module_context.hpp"
#include "membrane/events.hpp"
#include "membrane/module.hpp"

namespace membrane::kernel {

using CreateFn = membrane::Module*();
using DestroyFn = void(membrane::Module*);

struct ModuleHost::Generation {
    std::string name;
    std::uint64_t number = 0;
    std::filesystem::path source;
    AbiDescriptor abi{};
    boost::dll::shared_library library;
    DestroyFn* destroy = nullptr;
    membrane::Module* instance = nullptr;
    std::unique_ptr<ModuleContext> context;

    // Order matters: what the module registered (so nothing calls into it),
    // then the module object, and only later the library holding the code.
    void release(bool keep_slots) {
        if (context) context->close(keep_slots);
        if (instance != nullptr) {
            destroy(instance);
            instance = nullptr;
        }
    }
    ~Generation() {
        release(false);
        context.reset();
        if (library.is_loaded()) library.unload();
    }
};

struct ModuleHost::Entry {
    std::string name;
    ModuleState state = ModuleState::loading;
    std::string message;
    toml::table config;
    std::unique_ptr<Generation> current;
    std::uint64_t last_generation = 0;
};

namespace {

// A module runs as root inside the agent: only root may have written it.
void check_root_owned(const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        throw ControlError(ControlErrorKind::NotFound, path.string() + ": " + std::strerror(errno));
    }
    if (st.st_uid != 0) {
        throw ControlError(ControlErrorKind::InvalidArgument,
                           "refusing " + path.string() + ": owned by uid " + std::to_string(st.st_uid) +
                               ", modules must be owned by root");
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        throw ControlError(ControlErrorKind::InvalidArgument,
                           "refusing " + path.string() + ": writable by group or others, modules must not be");
    }
}

std::string sdk_version(const AbiDescriptor& abi) {
    return std::to_string(abi.sdk_major) + "." + std::to_string(abi.sdk_minor);
}

}  // namespace

ModuleHost::ModuleHost(boost::asio::io_context& io, EventBus& bus, Registry& registry, const Model& model,
                       ModuleMethodSink& methods, HostOptions options, std::shared_ptr<spdlog::logger> log)
    : io_(io),
      bus_(bus),
      registry_(registry),
      model_(model),
      methods_(methods),
      options_(std::move(options)),
      log_(std::move(log)) {
    std::filesystem::create_directories(options_.runtime_dir);
    std::filesystem::create_directories(options_.state_dir);
    bus_.set_error_handler([this](const std::string& owner, std::string_view topic, const std::string& what) {
        if (entries_.count(owner) != 0) {
            log_->error("module {} threw in its handler for '{}': {}", owner, topic, what);
            quarantine(owner, "handler for '" + std::string(topic) + "' threw: " + what);
        } else {
            log_->error("{} threw in its handler for '{}': {}", owner, topic, what);
        }
    });
}

ModuleHost::~ModuleHost() {
    bus_.set_error_handler(nullptr);
    shutdown();
    retired_.clear();
}

std::unique_ptr<ModuleHost::Generation> ModuleHost::open_generation(const std::string& name,
                                                                    const toml::table& config) {
    if (!is_module_name(name)) {
        throw ControlError(ControlErrorKind::InvalidArgument,
                           "'" + name + "' is not a module name (1 to 48 lower-case letters, digits and '-')");
    }
    const auto source = options_.module_dir / (name + ".so");
    if (!std::filesystem::exists(source)) {
        throw ControlError(ControlErrorKind::NotFound,
                           "no module '" + name + "': " + source.string() + " does not exist");
    }
    if (options_.require_root_owned) {
        check_root_owned(options_.module_dir);
        check_root_owned(source);
    }

    auto generation = std::make_unique<Generation>();
    generation->name = name;
    generation->number = next_generation_++;
    generation->source = source;

    // dlopen of a path already loaded returns the old copy, so each
    // generation is loaded from its own file. The copy is unlinked once
    // mapped: nothing is left behind, whatever happens later.
    const auto copy = options_.runtime_dir / (name + "." + std::to_string(generation->number) + ".so");
    std::error_code ec;
    std::filesystem::copy_file(source, copy, std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) {
        throw ControlError(ControlErrorKind::Failed, "cannot copy " + source.string() + " to " + copy.string() +
                                                         ": " + ec.message());
    }
    // The descriptor is read from the file and checked before dlopen, which
    // runs the library's static constructors: a refused module runs nothing.
    // It is read from the copy, the very bytes that would be loaded.
    try {
        generation->abi = read_abi_descriptor(copy);
    } catch (const AbiReadError& e) {
        std::filesystem::remove(copy, ec);
        throw ControlError(ControlErrorKind::AbiMismatch, "refusing module '" + name + "' (" + source.string() + "): " + e.what());
    }
    if (auto why = check_abi(host_abi_descriptor(), generation->abi, name)) {
        std::filesystem::remove(copy, ec);
        throw ControlError(ControlErrorKind::AbiMismatch, "refusing module '" + name + "': " + *why);
    }
    try {
        // rtld_now: a missing symbol fails here, not under traffic.
        generation->library.load(copy.string(),
                                 boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    } catch (const std::exception& e) {
        std::filesystem::remove(copy, ec);
        throw ControlError(ControlErrorKind::Failed, "cannot load " + source.string() + ": " + e.what());
    }
    std::filesystem::remove(copy, ec);

    auto& library = generation->library;
    if (!library.has("membrane_create_module") || !library.has("membrane_destroy_module")) {
        throw ControlError(ControlErrorKind::AbiMismatch,
                           "refusing module '" + name + "': it lacks membrane_create_module/membrane_destroy_module");
    }
    generation->destroy = &library.get<DestroyFn>("membrane_destroy_module");

    auto state_dir = options_.state_dir / name;
    std::filesystem::create_directories(state_dir);
    auto logger = options_.make_logger ? options_.make_logger(name) : log_;
    generation->context = std::make_unique<ModuleContext>(
        name, bus_, registry_.for_module(name, generation->number), model_, config, std::move(logger), state_dir);

    try {
        generation->instance = library.get<CreateFn>("membrane_create_module")();
    } catch (const std::exception& e) {
        throw ControlError(ControlErrorKind::StartFailed, "module '" + name + "' failed to construct: " + e.what());
    } catch (...) {
        throw ControlError(ControlErrorKind::StartFailed,
                           "module '" + name + "' failed to construct: an exception that is not a std::exception");
    }
    if (generation->instance == nullptr) {
        throw ControlError(ControlErrorKind::StartFailed, "module '" + name + "' factory returned nothing");
    }
    return generation;
}

void ModuleHost::start_generation(Generation& generation) {
    try {
        generation.instance->start(*generation.context);
        // Only a started generation moves the pins of the maps it resized.
        generation.context->commit_resized_pins();
    } catch (const std::exception& e) {
        throw ControlError(ControlErrorKind::StartFailed, "module '" + generation.name + "' failed to start: " +
                                                              e.what());
    } catch (...) {
        throw ControlError(ControlErrorKind::StartFailed,
                           "module '" + generation.name +
                                                              "' failed to start: an exception that is not a std::exception");
    }
}

void ModuleHost::settle_empty_slots(Generation& generation) {
    try {
        generation.context->settle_empty_slots();
    } catch (const std::exception& e) {
        // The verdict stays as it was (drop at worst): safe, so the module runs.
        log_->error("module {} generation {}: cannot settle its empty-slot verdicts: {}", generation.name,
                    generation.number, e.what());
    }
}

void ModuleHost::retire(std::unique_ptr<Generation> generation, bool keep_slots) {
    if (!generation) return;
    if (generation->instance != nullptr) {
        try {
            generation->instance->stop();
        } catch (const std::exception& e) {
            log_->warn("module {} generation {} threw in stop(): {}", generation->name, generation->number, e.what());
        } catch (...) {
            log_->warn("module {} generation {} threw in stop()", generation->name, generation->number);
        }
    }
    generation->release(keep_slots);
    // Events the module published may still sit in the loop's queue, and
    // their payloads' destructors live in the library: unload after them.
    const std::uint64_t sequence = ++retire_sequence_;
    retired_.emplace_back(sequence, std::move(generation));
    boost::asio::post(io_, [this, alive = std::weak_ptr<int>(alive_), sequence] {
        if (alive.expired()) return;
        std::erase_if(retired_, [sequence](const auto& r) { return r.first <= sequence; });
    });
}

void ModuleHost::set_state(Entry& entry, ModuleState state, const std::string& message) {
    entry.state = state;
    entry.message = message;
    bus_.publish(events::ModuleStateChanged{entry.name, std::string(module_state_name(state)), message});
}

ModuleHost::Entry& ModuleHost::loaded_entry(const std::string& name) {
    auto it = entries_.find(name);
    if (it == entries_.end()) {
        throw ControlError(ControlErrorKind::NotFound, "module '" + name + "' is not loaded");
    }
    return *it->second;
}

void ModuleHost::load(const std::string& name, const toml::table& config) {
    auto it = entries_.find(name);
    if (it != entries_.end() && it->second->current) {
        throw ControlError(ControlErrorKind::AlreadyLoaded,
                           "module '" + name + "' is already loaded (generation " +
                               std::to_string(it->second->current->number) + "); use reload");
    }
    std::unique_ptr<Generation> generation;
    try {
        generation = open_generation(name, config);
    } catch (const ControlError& e) {
        log_->error("{}", e.what());
        // A module that exists but cannot run stays listed as failed, so
        // `membranectl module list` shows why; a bad name or path does not.
        if (e.kind() != ControlErrorKind::NotFound && e.kind() != ControlErrorKind::InvalidArgument) {
            auto& entry = entries_[name];
            if (!entry) entry = std::make_unique<Entry>();
            entry->name = name;
            entry->config = config;
            counters_.try_emplace(name);
            set_state(*entry, ModuleState::failed, e.what());
        }
        throw;
    }
    auto& slot = entries_[name];
    if (!slot) slot = std::make_unique<Entry>();
    Entry& entry = *slot;
    entry.name = name;
    entry.config = config;
    counters_.try_emplace(name);  // listed at 0 from its first load
    entry.last_generation = generation->number;
    set_state(entry, ModuleState::loading, "");
    try {
        start_generation(*generation);
    } catch (const ControlError& e) {
        log_->error("{}", e.what());
        retire(std::move(generation), false);
        set_state(entry, ModuleState::failed, e.what());
        throw;
    }
    settle_empty_slots(*generation);
    methods_.set_module_methods(name, generation->context->methods());
    log_->info("module {} generation {} running (SDK {}, {}, {})", name, generation->number,
               sdk_version(generation->abi),
               descriptor_field(generation->abi.compiler, sizeof generation->abi.compiler),
               descriptor_field(generation->abi.stdlib, sizeof generation->abi.stdlib));
    entry.current = std::move(generation);
    set_state(entry, ModuleState::running, "");
}

void ModuleHost::reload(const std::string& name, std::optional<toml::table> config) {
    Entry& entry = loaded_entry(name);
    const toml::table& table = config ? *config : entry.config;
    auto next = open_generation(name, table);
    entry.last_generation = next->number;
    try {
        start_generation(*next);
    } catch (const ControlError& e) {
        // The new generation may have taken slots from the running one
        // before it failed: the running one takes them back first (one map
        // update each), so no slot is ever empty (a fail-closed one would
        // drop); retiring the new one then releases nothing it gave back.
        if (entry.current) entry.current->context->reclaim_stages();
        retire(std::move(next), false);
        if (entry.current) {
            const std::string message = std::string(e.what()) + "; generation " +
                                        std::to_string(entry.current->number) + " keeps running";
            log_->error("{}", message);
            entry.message = message;
            throw ControlError(ControlErrorKind::StartFailed, message);
        }
        set_state(entry, ModuleState::failed, e.what());
        throw;
    }
    // Swap: the new generation holds its slots already (one map update
    // each); the old one now stops and releases what it still holds, after
    // the stages the module no longer fills stopped being fail-closed.
    settle_empty_slots(*next);
    methods_.set_module_methods(name, next->context->methods());
    auto old = std::move(entry.current);
    entry.current = std::move(next);
    if (config) entry.config = *config;
    const auto old_number = old ? old->number : 0;
    retire(std::move(old), false);
    log_->info("module {} reloaded: generation {} replaced {}", name, entry.current->number, old_number);
    ++counters_[name].reloads;
    set_state(entry, ModuleState::running, "");
}

void ModuleHost::reconfigure(const std::string& name, const toml::table& config) {
    Entry& entry = loaded_entry(name);
    if (!entry.current) {
        // Not running (failed earlier): a new table is a reason to try again.
        entry.config = config;
        reload(name);
        return;
    }
    bool applied = false;
    try {
        applied = entry.current->instance->reconfigure(config);
    } catch (const std::exception& e) {
        quarantine(name, std::string("reconfigure threw: ") + e.what());
        throw ControlError(ControlErrorKind::Failed, "module '" + name + "' failed to reconfigure: " + e.what());
    } catch (...) {
        const std::string what = "an exception that is not a std::exception";
        quarantine(name, "reconfigure threw " + what);
        throw ControlError(ControlErrorKind::Failed, "module '" + name + "' failed to reconfigure: " + what);
    }
    if (applied) {
        entry.config = config;
        entry.current->context->set_config(config);
        log_->info("module {} applied its new configuration live", name);
        return;
    }
    log_->info("module {} cannot apply its configuration live; reloading it", name);
    reload(name, config);
}

void ModuleHost::quarantine(const std::string& name, const std::string& reason) {
    auto it = entries_.find(name);
    if (it == entries_.end() || !it->second->current) return;
    Entry& entry = *it->second;
    log_->error("quarantining module {}: {}", name, reason);
    ++counters_[name].quarantines;
    methods_.set_module_methods(name, {});
    retire(std::move(entry.current), false);
    set_state(entry, ModuleState::failed, reason);
}

void ModuleHost::unload(const std::string& name, bool force) {
    Entry& entry = loaded_entry(name);
    // A quarantined or failed module holds no slot: nothing more to warn about.
    if (entry.current) {
        const auto fail_closed = registry_.fail_closed_stages();
        std::vector<std::string> dropping;
        for (const auto stage : entry.current->context->held_stages()) {
            if (std::ranges::find(fail_closed, stage) != fail_closed.end()) {
                dropping.push_back(fmt::format("stage {} is fail-closed: packets through it will be dropped until "
                                               "a module fills it",
                                               describe_stage(stage)));
            }
        }
        const std::string consequence = fmt::format("{}", fmt::join(dropping, "; "));
        if (!dropping.empty() && !force) {
            throw ControlError(ControlErrorKind::NeedsForce,
                               fmt::format("module {} not unloaded: {}. Unload with --force to do it anyway", name,
                                           consequence));
        }
        if (!dropping.empty()) log_->warn("module {} unloaded with force: {}", name, consequence);
    }
    methods_.set_module_methods(name, {});
    retire(std::move(entry.current), false);
    registry_.forget_module(name);
    entries_.erase(name);
    bus_.publish(events::ModuleStateChanged{name, std::string(module_state_name(ModuleState::unloaded)), ""});
    log_->info("module {} unloaded", name);
}

void ModuleHost::shutdown() {
    for (auto& [name, entry] : entries_) {
        if (!entry->current) continue;
        methods_.set_module_methods(name, {});
        retire(std::move(entry->current), true);
        entry->state = ModuleState::stopped;
    }
}

std::vector<ModuleStatus> ModuleHost::list() const {
    std::vector<ModuleStatus> out;
    for (const auto& [name, entry] : entries_) {
        ModuleStatus status;
        status.name = name;
        status.state = entry->state;
        status.message = entry->message;
        status.generation = entry->current ? entry->current->number : entry->last_generation;
        if (entry->current) {
            status.path = entry->current->source.string();
            status.sdk = sdk_version(entry->current->abi);
            status.sdk_major = entry->current->abi.sdk_major;
            status.sdk_minor = entry->current->abi.sdk_minor;
            status.stages = entry->current->context->held_stages();
        }
        out.push_back(std::move(status));
    }
    return out;
}

std::uint32_t ModuleHost::max_encapsulation_overhead() const {
    std::uint32_t largest = 0;
    for (const auto& [name, entry] : entries_) {
        if (entry->current && entry->current->context) {
            largest = std::max(largest, entry->current->context->encapsulation_overhead());
        }
    }
    return largest;
}

bool ModuleHost::is_loaded(const std::string& name) const {
    auto it = entries_.find(name);
    return it != entries_.end() && it->second->current != nullptr;
}

}  // namespace membrane::kernel
