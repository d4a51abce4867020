#include "host/module_context.hpp"

#include <stdexcept>

namespace membrane::kernel {

bool valid_dbus_member(const std::string& name) {
    if (name.empty() || name.size() > 255) return false;
    auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
    if (!alpha(name[0])) return false;
    for (char c : name) {
        if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
    }
    return true;
}

ModuleContext::ModuleContext(std::string module, EventBus& bus, std::unique_ptr<ModuleBpf> bpf, const Model& model,
                             toml::table config, std::shared_ptr<spdlog::logger> log, std::filesystem::path state_dir)
    : module_(std::move(module)),
      bus_(bus, module_),
      bpf_(std::move(bpf)),
      model_(model),
      config_(std::move(config)),
      log_(std::move(log)),
      state_dir_(std::move(state_dir)) {}

ModuleContext::~ModuleContext() { close(false); }

void ModuleContext::add_method(std::string name, MethodHandler handler) {
    if (closed_) throw std::logic_error("add_method after the module stopped");
    if (!valid_dbus_member(name)) {
        throw std::invalid_argument("'" + name + "' is not a valid D-Bus method name ([A-Za-z_][A-Za-z0-9_]*)");
    }
    if (!handler) throw std::invalid_argument("method '" + name + "' has no handler");
    methods_[std::move(name)] = std::move(handler);
}

void ModuleContext::declare_encapsulation(std::uint32_t overhead_bytes) {
    if (closed_) throw std::logic_error("declare_encapsulation after the module stopped");
    // More than any real encapsulation: a typo, not a header.
    constexpr std::uint32_t kMaxOverhead = 512;
    if (overhead_bytes > kMaxOverhead) {
        throw std::invalid_argument("an encapsulation overhead of " + std::to_string(overhead_bytes) +
                                    " bytes is implausible (at most " + std::to_string(kMaxOverhead) + ")");
    }
    encapsulation_overhead_ = overhead_bytes;
}

void ModuleContext::close(bool keep_slots) {
    if (closed_) return;
    closed_ = true;
    encapsulation_overhead_ = 0;
    bus_.close();
    methods_.clear();
    bpf_->close(keep_slots);
}

}  // namespace membrane::kernel
