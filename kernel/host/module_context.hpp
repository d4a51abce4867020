// The Context one module generation works through. Everything the module
// registers goes through here, so close() can release all of it.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <spdlog/logger.h>
#include <toml++/toml.h>

#include "bpf/registry.hpp"
#include "bus/event_bus.hpp"
#include "membrane/context.hpp"

namespace membrane::kernel {

class ModuleContext final : public membrane::Context {
public:
    ModuleContext(std::string module, EventBus& bus, std::unique_ptr<ModuleBpf> bpf, const Model& model,
                  toml::table config, std::shared_ptr<spdlog::logger> log, std::filesystem::path state_dir);
    ~ModuleContext() override;

    const std::string& module_name() const override { return module_; }
    Bus& bus() override { return bus_; }
    const Model& model() const override { return model_; }
    BpfRegistry& bpf() override { return *bpf_; }
    const toml::table& config() const override { return config_; }
    spdlog::logger& log() override { return *log_; }
    const std::filesystem::path& state_dir() const override { return state_dir_; }
    void add_method(std::string name, MethodHandler handler) override;
    // Recorded for this generation; forgotten when it closes.
    void declare_encapsulation(std::uint32_t overhead_bytes) override;

    // What this generation declared (0: none, or it stopped).
    std::uint32_t encapsulation_overhead() const { return closed_ ? 0 : encapsulation_overhead_; }

    const std::map<std::string, MethodHandler>& methods() const { return methods_; }
    std::vector<std::uint32_t> held_stages() const { return bpf_->held_stages(); }
    // After a failed reload: take back the slots a newer generation took.
    void reclaim_stages() { bpf_->reclaim_stages(); }
    // Started: the maps its objects resized take their pins (ModuleBpf::commit_resized_pins).
    void commit_resized_pins() { bpf_->commit_resized_pins(); }
    // Started and now the running generation (see ModuleBpf::settle_empty_slots).
    void settle_empty_slots() { bpf_->settle_empty_slots(); }
    void set_config(toml::table config) { config_ = std::move(config); }

    // Drops subscriptions, method handlers and BPF objects (see ModuleBpf::close).
    void close(bool keep_slots);

private:
    std::string module_;
    ModuleBus bus_;
    std::unique_ptr<ModuleBpf> bpf_;
    const Model& model_;
    toml::table config_;
    std::shared_ptr<spdlog::logger> log_;
    std::filesystem::path state_dir_;
    std::map<std::string, MethodHandler> methods_;
    std::uint32_t encapsulation_overhead_ = 0;
    bool closed_ = false;
};

// True for a valid D-Bus member name: [A-Za-z_][A-Za-z0-9_]*, at most 255.
bool valid_dbus_member(const std::string& name);

}  // namespace membrane::kernel
