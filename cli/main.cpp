// membranectl: inspect and steer membraned over D-Bus.
//
//   membranectl [--bus system|session|ADDRESS] [-o table|json] status
//   membranectl module list | load NAME | unload NAME | reload NAME
//   membranectl module call NAME METHOD [JSON]
//
// Exit status: 0 done, 1 the agent or the bus said no, 2 wrong usage.
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "agent_client.hpp"
#include "membrane/dbus/bus_spec.hpp"
#include "membrane/dbus/names.hpp"
#include "render.hpp"

namespace {

using membrane::cli::AgentClient;
using membrane::cli::CommandFailure;
using membrane::cli::OutputFormat;

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

struct Options {
    std::string bus = "system";
    std::string output = "table";
    std::string module;
    std::string method;
    std::string request = "{}";
};

int usage_error(const std::string& message) {
    std::cerr << "membranectl: " << message << "\n";
    return kExitUsage;
}

void print_done(const std::string& verb, const std::string& module, OutputFormat format) {
    if (format == OutputFormat::Json)
        std::cout << nlohmann::json{{"module", module}, {"action", verb}, {"ok", true}}.dump() << '\n';
    else
        std::cout << "module " << module << ": " << verb << "ed\n";
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    CLI::App app{"membranectl: inspect and steer membraned, the Membrane agent, over D-Bus"};
    app.require_subcommand(1);
    app.add_option("--bus", opt.bus,
                   "Bus of the agent: system, session, or a D-Bus address (unix:path=...); default: $" +
                       std::string(membrane::dbus::kBusAddressEnv) + ", else system")
        ->envname(membrane::dbus::kBusAddressEnv);
    app.add_option("-o,--output", opt.output, "Output format: table (for people) or json (for scripts)")
        ->check(CLI::IsMember({"table", "json"}));

    auto* status = app.add_subcommand("status", "Show the agent's state, node, devices and module counts");
    auto* module = app.add_subcommand("module", "List, load, unload, reload modules; call their methods");
    module->require_subcommand(1);
    auto* list = module->add_subcommand("list", "List modules with state, generation, SDK, pipeline stages");
    std::map<CLI::App*, std::string> lifecycle;
    for (const auto& [verb, help] : std::map<std::string, std::string>{
             {"load", "Load a module from the module directory and start it"},
             {"unload", "Stop a module and remove its programs (persistent maps stay)"},
             {"reload", "Load a new generation of a module and swap it in without dropping traffic"}}) {
        auto* sub = module->add_subcommand(verb, help);
        sub->add_option("NAME", opt.module, "Module name")->required();
        lifecycle[sub] = verb;
    }
    auto* call = module->add_subcommand("call", "Call a module's D-Bus method with a JSON request; print its JSON reply");
    call->add_option("NAME", opt.module, "Module name")->required();
    call->add_option("METHOD", opt.method, "Method name, as the module registered it")->required();
    call->add_option("JSON", opt.request, "Request (JSON text); default: {}");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : kExitUsage;
    }

    const OutputFormat format = opt.output == "json" ? OutputFormat::Json : OutputFormat::Table;
    if (call->parsed()) {
        if (membrane::dbus::module_object_path(opt.module).empty())
            return usage_error("module call: '" + opt.module + "' is not a module name ([A-Za-z0-9_-])");
        if (!membrane::dbus::is_valid_member_name(opt.method))
            return usage_error("module call: '" + opt.method + "' is not a D-Bus method name");
        if (!nlohmann::json::accept(opt.request))
            return usage_error("module call: the request is not valid JSON: " + opt.request);
    }

    try {
        AgentClient agent(opt.bus);
        if (status->parsed()) {
            membrane::cli::print_status(std::cout, agent.status(), format);
        } else if (list->parsed()) {
            membrane::cli::print_modules(std::cout, agent.modules(), format);
        } else if (call->parsed()) {
            const std::string reply = agent.call(opt.module, opt.method, opt.request);
            // Pretty for people when the reply is JSON; as sent otherwise.
            if (format == OutputFormat::Table && nlohmann::json::accept(reply))
                std::cout << nlohmann::json::parse(reply).dump(2) << '\n';
            else
                std::cout << reply << '\n';
        } else {
            for (const auto& [sub, verb] : lifecycle) {
                if (!sub->parsed()) continue;
                if (verb == "load") agent.load(opt.module);
                if (verb == "unload") agent.unload(opt.module);
                if (verb == "reload") agent.reload(opt.module);
                print_done(verb, opt.module, format);
            }
        }
    } catch (const CommandFailure& e) {
        std::cerr << "membranectl: " << e.what() << '\n';
        return kExitFailed;
    } catch (const std::exception& e) {
        std::cerr << "membranectl: " << e.what() << '\n';
        return kExitFailed;
    }
    return 0;
}
