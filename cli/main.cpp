// membranectl: inspect and steer membraned over D-Bus.
//
//   membranectl [--bus system|session|ADDRESS] [-o table|json] status
//   membranectl module list | load NAME | unload NAME [--force] | reload NAME
//   membranectl module call NAME METHOD [JSON]
//   membranectl endpoint list | get ID | find CONTAINER IFNAME   (get: with its policy enforcement)
//   membranectl endpoint labels ID KEY=VALUE... | labels ID --clear
//   membranectl identity list
//   membranectl node list
//   membranectl stats
//   membranectl monitor [--type T] [--from-pod P] [--to-pod P] [--namespace NS] [--verdict V]
//                       [--port N] [--since D] [--count N] [--timeout S]
//   membranectl kvstore status
//   membranectl policy list | get NAME
//   membranectl policy trace --from NS/POD|IP --to NS/POD|IP|--to-cidr PREFIX --dport 80/tcp|53/udp|icmp
//   membranectl service list | get [NAMESPACE/]NAME
//   membranectl lb list
//   membranectl apply -f FILE|-
//   membranectl get KIND [NAME] [-n NAMESPACE]
//   membranectl delete KIND NAME [-n NAMESPACE]
//
// Exit status: 0 done, 1 the agent or the bus said no, 2 wrong usage,
// 3 policy trace: the datapath disagrees with the control plane.
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "agent_client.hpp"
#include "membrane/dbus/bus_spec.hpp"
#include "membrane/dbus/names.hpp"
#include "monitor.hpp"
#include "policy_trace.hpp"
#include "service_view.hpp"
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
    std::uint64_t endpoint_id = 0;
    std::string container_id;
    std::string ifname;
    std::vector<std::string> labels;  // KEY=VALUE
    bool clear_labels = false;
    bool force = false;  // module unload
    std::string file;      // apply -f
    std::string kind;      // get, delete
    std::string name;
    std::string namespace_;
    membrane::cli::MonitorOptions monitor;
    membrane::cli::TraceOptions trace;
};

// The manifests to apply: the file's text, or stdin for "-".
std::string read_manifests(const std::string& file) {
    std::stringstream text;
    if (file == "-") {
        text << std::cin.rdbuf();
        return text.str();
    }
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec)) throw std::runtime_error("apply: " + file + " is a folder; give a file");
    std::ifstream in(file);
    if (!in) throw std::runtime_error("apply: cannot read " + file + ": " + std::strerror(errno));
    text << in.rdbuf();
    return text.str();
}

// D-Bus carries only UTF-8 strings: a file that is not would fail in sd-bus
// with a message that names neither the file nor the byte.
void check_utf8(const std::string& text, const std::string& source) {
    try {
        (void)nlohmann::json(text).dump();
    } catch (const nlohmann::json::type_error& e) {
        const std::string why = e.what();
        const auto at = why.find("invalid UTF-8");
        throw std::runtime_error("apply: " + source + " is not UTF-8 text (" +
                                 (at == std::string::npos ? why : why.substr(at)) + ")");
    }
}

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

// KEY=VALUE arguments as labels; nullopt (after printing why) when one is
// malformed or a key repeats. A label may have an empty value ("KEY=").
std::optional<membrane::Labels> parse_labels(const std::vector<std::string>& args) {
    membrane::Labels labels;
    for (const auto& arg : args) {
        const auto eq = arg.find('=');
        if (eq == std::string::npos || eq == 0) {
            std::cerr << "membranectl: endpoint labels: '" << arg << "' is not KEY=VALUE\n";
            return std::nullopt;
        }
        if (!labels.emplace(arg.substr(0, eq), arg.substr(eq + 1)).second) {
            std::cerr << "membranectl: endpoint labels: label '" << arg.substr(0, eq) << "' is given twice\n";
            return std::nullopt;
        }
    }
    return labels;
}

// `endpoint get`: the endpoint, then its policy state from policy-l3l4. A
// module that is not running is a state of the node, not a failure; a Status that cannot be read is: the endpoint still prints, then
// the failure (exit 1).
void print_endpoint_with_policy(AgentClient& agent, std::uint64_t id, OutputFormat format) {
    nlohmann::json endpoint = agent.endpoint(id);
    try {
        endpoint["policy"] = membrane::cli::endpoint_policy(agent.policy_status("endpoint get " + std::to_string(id)), id);
    } catch (const membrane::cli::ModuleNotRunning& e) {
        endpoint["policy"] = membrane::cli::endpoint_policy_not_running(e.message());
    } catch (const CommandFailure& e) {
        endpoint["policy"] = membrane::cli::endpoint_policy_unknown(e.message());
        membrane::cli::print_endpoint(std::cout, endpoint, format);
        throw;
    }
    membrane::cli::print_endpoint(std::cout, endpoint, format);
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    CLI::App app{"membranectl: inspect and steer membraned, the Membrane agent, over D-Bus"};
    app.require_subcommand(1);
    // -o and --bus also after the command (`get ns -o json`, as kubectl users type it).
    app.fallthrough();
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
        if (verb == "unload") {
            sub->add_flag("--force", opt.force,
                          "Unload even if the module holds a fail-closed stage: packets through that stage are "
                          "then dropped until a module fills it");
        }
    }
    auto* call = module->add_subcommand("call", "Call a module's D-Bus method with a JSON request; print its JSON reply");
    call->add_option("NAME", opt.module, "Module name")->required();
    call->add_option("METHOD", opt.method, "Method name, as the module registered it")->required();
    call->add_option("JSON", opt.request, "Request (JSON text); default: {}");

    auto* endpoint = app.add_subcommand("endpoint", "List and inspect the pods' endpoints; set their labels");
    endpoint->require_subcommand(1);
    auto* endpoint_list = endpoint->add_subcommand(
        "list", "List endpoints: id, container (first 12 characters), interface, address, identity, labels, state");
    auto* endpoint_get = endpoint->add_subcommand(
        "get", "Show one endpoint with every field and its network-policy enforcement (from policy-l3l4)");
    endpoint_get->add_option("ID", opt.endpoint_id, "Endpoint id (the ID column of endpoint list)")->required();
    endpoint_get->footer("Policy: the enforcement mode, whether ingress and egress are enforced, the policies\n"
                         "selecting the endpoint and its rules in the datapath, as `policy list` shows them;\n"
                         "\"policy-l3l4 is not running\" when it is not loaded: never loaded, nothing is enforced;\n"
                         "unloaded or quarantined, its fail-closed stages drop every packet. -o json puts it\n"
                         "under \"policy\" (\"module\": running, not running or unknown).");
    auto* endpoint_find =
        endpoint->add_subcommand("find", "Show the endpoint of a container's interface, as the CNI plugin names them");
    endpoint_find->add_option("CONTAINER", opt.container_id, "Full container id (CNI_CONTAINERID)")->required();
    endpoint_find->add_option("IFNAME", opt.ifname, "Interface inside the pod (CNI_IFNAME), e.g. eth0")->required();
    auto* endpoint_labels = endpoint->add_subcommand(
        "labels", "Replace an endpoint's labels (the identity follows); prints the endpoint");
    endpoint_labels->add_option("ID", opt.endpoint_id, "Endpoint id")->required();
    endpoint_labels->add_option("LABELS", opt.labels,
                                "The new labels, KEY=VALUE each; labels not given are removed");
    endpoint_labels->add_flag("--clear", opt.clear_labels, "Remove every label (instead of giving none)");
    endpoint_labels->footer("Example: membranectl endpoint labels 7 app=web k8s:namespace=default");

    auto* identity = app.add_subcommand("identity", "Security identities: a label set and its number");
    identity->require_subcommand(1);
    auto* identity_list =
        identity->add_subcommand("list", "List identities: id, reserved or not, local endpoints, labels");
    auto* stats = app.add_subcommand(
        "stats", "The datapath's per-reason packet counters of this node (summed over CPUs); see README, Counters");
    auto* monitor = app.add_subcommand(
        "monitor", "The datapath's events, live: drops with their reason, policy verdicts with their rule");
    monitor->add_option("--type", opt.monitor.type, "Only drop, verdict or trace events");
    monitor->add_option("--from-pod", opt.monitor.from_pod, "Only from this pod (NAMESPACE/POD, or POD)");
    monitor->add_option("--to-pod", opt.monitor.to_pod, "Only to this pod (NAMESPACE/POD, or POD)");
    monitor->add_option("--namespace", opt.monitor.namespace_, "Only where either side is in this namespace");
    monitor->add_option("--verdict", opt.monitor.verdict, "Only allowed, or dropped (denied) events");
    monitor->add_option("--port", opt.monitor.port, "Only where either side has this port");
    monitor->add_option("--since", opt.monitor.since,
                        "First the events of the agent's history this old or newer (30s, 5m, 2h), then live");
    monitor->add_option("--count", opt.monitor.count, "Stop after this many events");
    monitor->add_option("--timeout", opt.monitor.timeout, "Stop after this many seconds");
    monitor->footer("One line per event (-o json: one object per line, after Hubble's flow JSON). Live: new\n"
                    "events every 100 ms from the agent's history ([monitor] history events); for root and\n"
                    "[dbus] admin_group only. Example: membranectl monitor --verdict dropped --namespace shop");
    auto* node = app.add_subcommand("node", "Nodes of the cluster");
    node->require_subcommand(1);
    auto* node_list = node->add_subcommand("list", "List nodes: name, node IP, pod CIDR, whether it is this node");
    auto* apply = app.add_subcommand(
        "apply", "Apply Kubernetes-style manifests (YAML, several documents): all of them or none");
    apply->add_option("-f,--filename", opt.file, "The manifest file, or - for stdin")->required();
    apply->footer("Kinds: Namespace, NetworkPolicy, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, Service,\n"
                  "EndpointSlice. Each object is created, configured or unchanged; a problem anywhere in\n"
                  "the file is refused naming the document, line and field, and nothing is applied.");
    const std::string kinds = "The kind: Namespace (ns), NetworkPolicy (netpol), CiliumNetworkPolicy (cnp), "
                              "CiliumClusterwideNetworkPolicy (ccnp), Service (svc), EndpointSlice, or its plural";
    auto* get = app.add_subcommand("get", "List applied objects of a kind (ns, netpol, cnp, ccnp, svc, endpointslice), "
                                          "or one");
    get->add_option("KIND", opt.kind, kinds)->required();
    get->add_option("NAME", opt.name, "One object's name; default: all");
    get->add_option("-n,--namespace", opt.namespace_, "Only this namespace (namespaced kinds)");
    auto* remove = app.add_subcommand("delete", "Delete an applied object");
    remove->add_option("KIND", opt.kind, kinds)->required();
    remove->add_option("NAME", opt.name, "The object's name")->required();
    remove->add_option("-n,--namespace", opt.namespace_, "Its namespace (namespaced kinds; default: default)");
    auto* kvstore = app.add_subcommand("kvstore", "The cluster store (etcd) as this node sees it");
    kvstore->require_subcommand(1);
    auto* kvstore_status = kvstore->add_subcommand(
        "status", "Connection, since when, newest revision, lag (time since etcd last answered), lease, watches");
    auto* policy = app.add_subcommand(
        "policy", "Network policy as this node enforces it, from the policy-l3l4 module (`get cnp` lists applied ones)");
    policy->require_subcommand(1);
    auto* policy_list = policy->add_subcommand(
        "list", "One row per endpoint of this node: address, identity, enforced directions, rules, selecting policies");
    policy_list->footer("Before the table: the enforcement mode and the rules in the datapath. After it: what the\n"
                        "policies ask that is not enforced yet (warning: ...) and a datapath that does not hold\n"
                        "the rules (error: ...). -o json prints the module's Status reply as is.");
    auto* policy_get = policy->add_subcommand(
        "get", "One policy: the endpoints of this node it selects and its rules (ids as in the datapath)");
    policy_get->add_option("NAME", opt.name,
                           "The policy: NAME, NAMESPACE/NAME, or \"KIND NAMESPACE/NAME\" when a name is shared")
        ->required();
    policy_get->footer("Examples: membranectl policy get allow-web\n"
                       "          membranectl policy get shop/allow-web\n"
                       "          membranectl -o json policy get 'CiliumNetworkPolicy shop/allow-web'");

    auto* policy_trace = policy->add_subcommand(
        "trace", "Would this packet get through? The policies' answer, checked against this node's loaded datapath");
    auto* trace_from = policy_trace->add_option("--from", opt.trace.from, "The source: NAMESPACE/POD or an IPv4 address");
    policy_trace->add_option("--from-labels", opt.trace.from_labels,
                             "Instead of --from: a pod with these labels (KEY=VALUE,...; this node's first)")
        ->excludes(trace_from);
    policy_trace->add_option("--to", opt.trace.to, "The destination: NAMESPACE/POD or an IPv4 address");
    policy_trace->add_option("--to-cidr", opt.trace.to_cidr, "Instead of --to: a prefix (its first address is used)");
    policy_trace->add_option("--dport", opt.trace.dport, "The destination port and protocol: 80/tcp, 53/udp, or icmp")
        ->required();
    policy_trace->footer(
        "First policy-l3l4's answer (the policies compiled afresh): allowed or denied, by which rule or the default\n"
        "deny, for the source pod's egress and the destination pod's ingress. Then the packet (a TCP SYN, a UDP\n"
        "datagram, an ICMP echo request) is run through this node's loaded entry program and each filled stage\n"
        "with BPF_PROG_TEST_RUN: nothing is counted, tracked or reported. Each node checks its own half: a packet\n"
        "that leaves for another node is judged at ingress there (run the trace on that node too).\n"
        "Exit status 3 when the datapath does not do what the control plane says. For root and [dbus] admin_group.\n"
        "Examples: membranectl policy trace --from shop/web --to shop/db --dport 5432/tcp\n"
        "          membranectl policy trace --from-labels app=web --to-cidr 203.0.113.0/24 --dport 443/tcp");

    auto* service = app.add_subcommand(
        "service", "Kubernetes services as this node serves them, from the service-lb module (`get svc` lists applied ones)");
    service->require_subcommand(1);
    auto* service_list = service->add_subcommand(
        "list", "One row per frontend (ClusterIP, NodePort, ExternalIP, LoadBalancer) with the backends it chooses from");
    service_list->footer("A frontend without backends says what a client meets: refused (ECONNREFUSED), or dropped\n"
                         "under a Local traffic policy. Warnings after the table: frontends not served (a NodePort\n"
                         "outside node_port_range, an address and port two services claim). -o json: the module's reply.");
    auto* service_get = service->add_subcommand("get", "One service's frontends and backends");
    service_get->add_option("NAME", opt.name, "The service: NAMESPACE/NAME, or NAME in namespace default")->required();
    auto* lb = app.add_subcommand("lb", "The service-lb BPF maps as the datapath reads them");
    lb->require_subcommand(1);
    auto* lb_list = lb->add_subcommand(
        "list", "One row per frontend in the map: service number, flags, affinity, backends in slot order");

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

    std::optional<membrane::Labels> new_labels;
    if (endpoint_labels->parsed()) {
        if (opt.clear_labels && !opt.labels.empty())
            return usage_error("endpoint labels: give KEY=VALUE labels or --clear, not both");
        if (!opt.clear_labels && opt.labels.empty())
            return usage_error("endpoint labels: give the new labels as KEY=VALUE, or --clear to remove them all");
        new_labels = parse_labels(opt.labels);
        if (!new_labels) return kExitUsage;
    }
    if (policy_trace->parsed()) {
        try {
            membrane::cli::check_trace_options(opt.trace);
        } catch (const std::invalid_argument& e) {
            return usage_error(std::string("policy trace: ") + e.what());
        }
    }
    if (monitor->parsed()) {
        try {
            membrane::cli::check_monitor_options(opt.monitor);
        } catch (const std::invalid_argument& e) {
            return usage_error(std::string("monitor: ") + e.what());
        }
    }

    try {
        AgentClient agent(opt.bus);
        if (status->parsed()) {
            membrane::cli::print_status(std::cout, agent.status(), format);
        } else if (list->parsed()) {
            membrane::cli::print_modules(std::cout, agent.modules(), format);
        } else if (endpoint_list->parsed()) {
            membrane::cli::print_endpoints(std::cout, agent.endpoints(), format);
        } else if (endpoint_get->parsed()) {
            print_endpoint_with_policy(agent, opt.endpoint_id, format);
        } else if (endpoint_find->parsed()) {
            membrane::cli::print_endpoint(std::cout, agent.find_endpoint(opt.container_id, opt.ifname), format);
        } else if (endpoint_labels->parsed()) {
            membrane::cli::print_endpoint(std::cout, agent.set_endpoint_labels(opt.endpoint_id, *new_labels), format);
        } else if (identity_list->parsed()) {
            membrane::cli::print_identities(std::cout, agent.identities(), format);
        } else if (stats->parsed()) {
            membrane::cli::print_stats(std::cout, agent.stats(), format);
        } else if (monitor->parsed()) {
            return membrane::cli::run_monitor(agent, opt.monitor, format, std::cout);
        } else if (node_list->parsed()) {
            membrane::cli::print_nodes(std::cout, agent.nodes(), format);
        } else if (apply->parsed()) {
            const std::string source = opt.file == "-" ? "stdin" : opt.file;
            const std::string text = read_manifests(opt.file);
            check_utf8(text, source);
            membrane::cli::print_applied(std::cout, agent.apply(source, text), format);
        } else if (get->parsed()) {
            membrane::cli::print_objects(std::cout, agent.objects(opt.kind, opt.namespace_, opt.name), format);
        } else if (remove->parsed()) {
            agent.delete_object(opt.kind, opt.namespace_, opt.name);
            if (format == OutputFormat::Json) {
                std::cout << nlohmann::json{{"kind", opt.kind}, {"name", opt.name}, {"action", "deleted"}}.dump() << '\n';
            } else {
                std::cout << opt.kind << "/" << opt.name << " deleted\n";
            }
        } else if (kvstore_status->parsed()) {
            membrane::cli::print_kvstore(std::cout, agent.status(), format);
        } else if (policy_list->parsed()) {
            membrane::cli::print_policy_list(std::cout, agent.policy_status("policy list"), format);
        } else if (policy_get->parsed()) {
            const auto status = agent.policy_status("policy get " + opt.name);
            membrane::cli::print_policy(std::cout, membrane::cli::select_policy(status, opt.name), format);
        } else if (policy_trace->parsed()) {
            return membrane::cli::run_policy_trace(agent, opt.trace, format, std::cout);
        } else if (service_list->parsed()) {
            membrane::cli::print_services(std::cout, agent.module_call("service-lb", "Services", "{}", "service list"),
                                          format);
        } else if (service_get->parsed()) {
            const auto reply = agent.module_call("service-lb", "Services", "{}", "service get " + opt.name);
            membrane::cli::print_services(std::cout, membrane::cli::select_service(reply, opt.name), format);
        } else if (lb_list->parsed()) {
            membrane::cli::print_lb_maps(std::cout, agent.module_call("service-lb", "Maps", "{}", "lb list"), format);
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
                if (verb == "unload") agent.unload(opt.module, opt.force);
                if (verb == "reload") agent.reload(opt.module);
                print_done(verb, opt.module, format);
            }
        }
    } catch (const CommandFailure& e) {
        std::cerr << "membranectl: " << e.what() << '\n';
        return kExitFailed;
    } catch (const membrane::cli::ServiceNotFound& e) {
        std::cerr << "membranectl: service get: " << e.what() << '\n';
        return kExitFailed;
    } catch (const membrane::cli::PolicyNotFound& e) {
        std::cerr << "membranectl: policy get: " << e.what() << '\n';
        return kExitFailed;
    } catch (const std::exception& e) {
        std::cerr << "membranectl: " << e.what() << '\n';
        return kExitFailed;
    }
    return 0;
}
