// The module host: loads module libraries (Boost.DLL), checks their ABI
// descriptor before calling anything, starts, stops, reconfigures and reloads
// them, and quarantines a module that throws, while the agent and the other
// modules keep running. Everything runs on the agent's loop thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <spdlog/logger.h>
#include <toml++/toml.h>

#include "agent/agent_control.hpp"
#include "bpf/registry.hpp"
#include "bus/event_bus.hpp"
#include "membrane/model.hpp"

namespace membrane::kernel {

struct HostOptions {
    std::filesystem::path module_dir;   // <name>.so files, root-owned
    std::filesystem::path runtime_dir;  // per-generation copies are made here
    std::filesystem::path state_dir;    // <state_dir>/<name>/ per module
    // Refuse module files or folders not owned by root or writable by others.
    bool require_root_owned = true;
    std::function<std::shared_ptr<spdlog::logger>(const std::string&)> make_logger;
};

// How often the host replaced or quarantined a module, for the life of the
// host: kept across an unload, so a module loaded again counts on (these are
// Prometheus counters, which must not go down while the agent runs).
struct ModuleCounters {
    std::uint64_t reloads = 0;      // a new generation replaced the running one (or a failed one)
    std::uint64_t quarantines = 0;  // stopped for throwing (a handler, reconfigure)
};

class ModuleHost {
public:
    ModuleHost(boost::asio::io_context& io, EventBus& bus, Registry& registry, const Model& model,
               ModuleMethodSink& methods, HostOptions options, std::shared_ptr<spdlog::logger> log);
    ~ModuleHost();
    ModuleHost(const ModuleHost&) = delete;
    ModuleHost& operator=(const ModuleHost&) = delete;

    // All throw ControlError. A failed start leaves the module listed as
    // failed (load) or the previous generation running (reload).
    void load(const std::string& name, const toml::table& config);
    // Refused (NeedsForce, naming the stages) if the running generation
    // holds a fail-closed stage, unless `force`.
    void unload(const std::string& name, bool force);
    void reload(const std::string& name, std::optional<toml::table> config = std::nullopt);
    // Applies a changed table live if the module can, else reloads with it.
    void reconfigure(const std::string& name, const toml::table& config);

    // Stops a module that misbehaved: its subscriptions, methods and slots
    // are gone, it is listed as failed with `reason`.
    void quarantine(const std::string& name, const std::string& reason);

    // Agent shutdown: stops every module but leaves its slots filled so the
    // datapath keeps working while the agent is down.
    void shutdown();

    std::vector<ModuleStatus> list() const;
    // Every module the host has loaded since it started, listed or not.
    const std::map<std::string, ModuleCounters>& counters() const { return counters_; }
    // The largest encapsulation overhead (bytes) a running module declared
    // (Context::declare_encapsulation); 0 when none. Pods get MTU minus this.
    std::uint32_t max_encapsulation_overhead() const;
    bool is_loaded(const std::string& name) const;

    struct Generation;
    struct Entry;

private:
    std::unique_ptr<Generation> open_generation(const std::string& name, const toml::table& config);
    void start_generation(Generation& generation);
    // The started generation is the module's running one: stages the module
    // declared fail-closed and no longer fills pass through again.
    void settle_empty_slots(Generation& generation);
    void retire(std::unique_ptr<Generation> generation, bool keep_slots);
    void set_state(Entry& entry, ModuleState state, const std::string& message);
    Entry& loaded_entry(const std::string& name);

    boost::asio::io_context& io_;
    EventBus& bus_;
    Registry& registry_;
    const Model& model_;
    ModuleMethodSink& methods_;
    HostOptions options_;
    std::shared_ptr<spdlog::logger> log_;
    std::map<std::string, std::unique_ptr<Entry>> entries_;
    std::map<std::string, ModuleCounters> counters_;
    std::uint64_t next_generation_ = 1;
    // Libraries whose code may still be referenced by queued events; unloaded
    // from a posted task, after the loop has drained what was queued before.
    std::vector<std::pair<std::uint64_t, std::unique_ptr<Generation>>> retired_;
    std::uint64_t retire_sequence_ = 0;
    // Posted tasks check this before touching the host.
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace membrane::kernel
