// membraned: the Membrane agent.
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "agent/agent.hpp"
#include "config/agent_config.hpp"
#include "log/logging.hpp"

namespace {

constexpr const char* kDefaultConfig = MEMBRANE_DEFAULT_CONFIG;

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
    return out.empty() ? "none" : out;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "membraned: the Membrane eBPF networking agent.\n"
        "Loads the core BPF datapath and the modules named in the configuration, serves\n"
        "org.membrane.Agent1 on D-Bus (see membranectl) and reports readiness to systemd.\n"
        "SIGHUP re-reads the configuration; SIGTERM stops and leaves the datapath running."};
    std::string config_path = kDefaultConfig;
    std::string check_path;
    bool do_uninstall = false;
    bool show_version = false;
    app.add_option("-c,--config", config_path, "Configuration file")->capture_default_str();
    app.add_option("--check-config", check_path, "Validate FILE and exit (0 valid, 1 invalid)")
        ->option_text("FILE");
    app.add_flag("--uninstall", do_uninstall,
                 "Detach every entry program and remove every pin this node's agent made, then exit");
    app.add_flag("-V,--version", show_version, "Print the version and exit");
    CLI11_PARSE(app, argc, argv);

    if (show_version) {
        std::cout << "membraned " << MEMBRANE_VERSION << " (SDK " << MEMBRANE_SDK_MAJOR << "." << MEMBRANE_SDK_MINOR
                  << ")\n";
        return 0;
    }
    if (!check_path.empty()) {
        try {
            auto config = membrane::kernel::load_config(check_path);
            std::cout << check_path << ": ok (node " << config.agent.node_name << ", modules: "
                      << join(config.modules) << ")\n";
            return 0;
        } catch (const std::exception& e) {
            std::cerr << e.what() << "\n";
            return 1;
        }
    }

    membrane::kernel::AgentConfig config;
    try {
        config = membrane::kernel::load_config(config_path);
    } catch (const std::exception& e) {
        std::cerr << "membraned: " << e.what() << "\n";
        return 1;
    }
    membrane::kernel::setup_logging(config.agent.log_level);
    auto log = membrane::kernel::make_logger("agent");

    if (do_uninstall) {
        try {
            membrane::kernel::uninstall(config);
            log->info("uninstalled: pins under {} removed, entry programs detached", config.agent.pin_dir().string());
            return 0;
        } catch (const std::exception& e) {
            log->error("uninstall failed: {}", e.what());
            return 1;
        }
    }

    try {
        membrane::kernel::Agent agent(std::move(config));
        return agent.run();
    } catch (const std::exception& e) {
        log->critical("cannot start: {}", e.what());
        return 1;
    }
}
