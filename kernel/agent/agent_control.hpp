// What the control plane (D-Bus service) may ask of the agent. The D-Bus
// layer depends only on this, so it is tested against a fake.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/states.hpp"
#include "model/identity_allocator.hpp"
#include "monitor/flow_event.hpp"
#include "trace/datapath_tracer.hpp"
#include "trace/trace_peer.hpp"

namespace membrane::kernel {

// Failure classes that map one-to-one onto D-Bus error names
// org.membrane.Error.<Name>.
enum class ControlErrorKind {
    NotFound,         // no such module file / module not loaded
    AlreadyLoaded,    // load of a module that is loaded
    AbiMismatch,      // descriptor refused
    StartFailed,      // start() threw; old generation (if any) still running
    InvalidArgument,  // bad name or request
    NeedsForce,       // would drop traffic (a fail-closed stage left empty); repeat with force
    Unavailable,      // needs the cluster store, which is away or did not answer; try again later
    Failed,           // anything else
};

class ControlError : public std::runtime_error {
public:
    ControlError(ControlErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    ControlErrorKind kind() const { return kind_; }

private:
    ControlErrorKind kind_;
};

const char* control_error_name(ControlErrorKind kind);  // "NotFound" etc.

struct ModuleStatus {
    std::string name;
    ModuleState state = ModuleState::loading;
    std::uint64_t generation = 0;
    std::string path;     // the library it was loaded from
    std::string sdk;      // "1.0"
    std::string message;  // last error, if any
    std::vector<std::uint32_t> stages;  // pipeline slots it holds
    std::uint32_t sdk_major = 0;  // `sdk` as numbers (0.0 while no generation runs)
    std::uint32_t sdk_minor = 0;
};

// One datapath counter (enum membrane_stat), summed over CPUs.
struct StatCounter {
    std::string name;  // membrane/stat_names.hpp, e.g. "drop_invalid"
    std::uint64_t packets = 0;
};

// A page of the flow monitor's history (membranectl monitor).
struct FlowPage {
    std::vector<FlowEvent> events;  // seq > the cursor asked for, oldest first
    std::uint64_t last = 0;         // the newest seq read so far
    std::uint64_t lost = 0;         // events the datapath could not report (full buffer), every type
};

// `membranectl policy trace`: one packet to run through this node's datapath.
struct TraceRequest {
    std::string from;      // "namespace/pod" or an IPv4 address
    std::string to;        // the same
    std::string protocol;  // "tcp", "udp" or "icmp"
    std::uint16_t port = 0;  // the destination port (tcp, udp)
};

// What the trace ran and what each program did with it.
struct PacketTrace {
    TracePeer source;
    TracePeer destination;
    std::uint16_t source_port = 0;  // of the ephemeral range, one no tracked connection has (8 draws at most)
    std::string entry_program;      // MBR_ENTRY_*
    std::string entry_device;       // where the packet arrives
    std::vector<TraceStep> steps;
};

struct AgentStatus {
    std::string node;
    std::string version;
    AgentState state = AgentState::starting;
    std::uint64_t uptime_seconds = 0;
    std::string pin_dir;
    std::string config_path;
    std::vector<std::string> devices;  // interfaces with the entry program
    std::uint32_t modules_running = 0;
    std::uint32_t modules_failed = 0;
    std::uint32_t pod_mtu = 1500;  // what pods get now: [agent] mtu minus the encapsulation
    // The cluster store ([kvstore]): "off" without one, else connecting,
    // connected, disconnected or closed; the endpoint in use or being
    // tried, the newest revision seen, and the latest connection error.
    std::string kvstore_state = "off";
    std::string kvstore_endpoint;
    std::int64_t kvstore_revision = 0;
    std::string kvstore_error;
    std::string cluster_name;             // [cluster] name and id (with a store)
    std::uint32_t cluster_id = 0;
    std::int64_t kvstore_since = 0;       // unix seconds when kvstore_state began
    std::uint64_t kvstore_connects = 0;   // successful connections (1 + reconnects)
    // Milliseconds since the store last answered anything (a keep-alive too):
    // how stale this node's view of the cluster may be. -1: it never has.
    std::int64_t kvstore_lag_ms = -1;
    std::string kvstore_lease;            // this node's lease, hex ("" while it has none)
    std::uint32_t kvstore_lease_ttl = 0;  // seconds
    std::map<std::string, std::int64_t> kvstore_watches;  // prefix -> revision delivered up to
    // [sources] manifests_dir ("" without one): files applied as they are
    // now, and what is wrong with the others (file path, or "" for the folder).
    std::string manifests_dir;
    std::uint32_t manifests_files = 0;
    std::map<std::string, std::string> manifests_problems;
};

// What an apply did to one object (kubectl's words).
struct ObjectOutcome {
    std::string kind;
    std::string namespace_;  // "" for a cluster-scoped kind
    std::string name;
    std::string action;      // "created", "configured" or "unchanged"
};

class AgentControl {
public:
    virtual ~AgentControl() = default;
    virtual AgentStatus status() const = 0;
    virtual std::vector<ModuleStatus> modules() const = 0;
    // Every named counter in reason order, then any other that is not zero.
    // Throws ControlError(Failed) when the map cannot be read.
    virtual std::vector<StatCounter> stats() const = 0;
    // The flow monitor's events after seq `after` (0: from the oldest kept), at most `max`.
    virtual FlowPage flows(std::uint64_t after, std::uint32_t max) const = 0;
    // Runs one packet through this node's loaded datapath without side
    // effects (kernel/trace). InvalidArgument for an unknown pod, a bad
    // address or protocol, or a source whose packets meet no Membrane
    // program here (this node's own stack); Failed when a stage's module
    // was built against an SDK before 1.6 (no trace runs).
    virtual PacketTrace trace_packet(const TraceRequest& request) const = 0;
    // All throw ControlError.
    virtual void load_module(const std::string& name) = 0;
    // Refused (NeedsForce) if the module holds a fail-closed stage, whose
    // packets would then be dropped, unless `force`.
    virtual void unload_module(const std::string& name, bool force) = 0;
    virtual void reload_module(const std::string& name) = 0;

    // Applied objects (kernel/objects). `text` is checked whole first: a
    // problem throws ControlError(InvalidArgument) with the parser's message
    // and nothing is applied. Then every object is written, or none; `done`
    // runs on the loop, with Unavailable when the cluster store is away.
    using ApplyDone = std::function<void(std::optional<ControlError>, std::vector<ObjectOutcome>)>;
    virtual void apply_objects(const std::string& source, const std::string& text, ApplyDone done) = 0;
    // `kind` as a user types it (Namespace, namespaces, ns); InvalidArgument
    // for a kind Membrane does not keep, NotFound (through done) for an absent object.
    virtual void delete_object(const std::string& kind, const std::string& namespace_, const std::string& name,
                               std::function<void(std::optional<ControlError>)> done) = 0;
    // The objects as JSON documents, sorted; an empty kind, namespace or name matches all.
    virtual std::vector<std::string> list_objects(const std::string& kind, const std::string& namespace_,
                                                  const std::string& name) const = 0;
};

}  // namespace membrane::kernel

#include <map>

#include "membrane/context.hpp"
#include "membrane/model.hpp"

namespace membrane::kernel {

// Where the module host publishes the D-Bus methods a module added through
// its Context. Implemented by the D-Bus service: object
// /org/membrane/Agent1/modules/<module>, interface org.membrane.Module1.
class ModuleMethodSink {
public:
    virtual ~ModuleMethodSink() = default;
    // Replaces the module's methods (an empty map removes its object).
    virtual void set_module_methods(const std::string& module, std::map<std::string, MethodHandler> methods) = 0;
};

}  // namespace membrane::kernel

namespace membrane::kernel {

// What membrane-cni gets before it configures the pod's interface.
struct AddressLease {
    std::string ipv4;             // "10.10.1.5"
    std::uint8_t prefix_len = 32;  // the pod's address is a /32
    std::string gateway;          // first address of the pod CIDR, answered by the datapath's ARP
    std::string pod_cidr;         // "10.10.1.0/24"
    std::uint32_t mtu = 1500;     // agent MTU minus the routing mode's encapsulation
};

struct EndpointRequest {
    std::string container_id;
    std::string ifname;       // CNI_IFNAME
    std::string netns;        // CNI_NETNS
    std::string host_ifname;  // host side of the veth (exists already)
    std::string ipv4;         // leased by allocate_address, or (chained) from prevResult
    std::string mac;          // pod side
    membrane::Labels labels;
    std::vector<membrane::ContainerPort> ports;  // named container ports (policies' named ports)
};

// The endpoint, identity and node operations of the control plane. Kept
// apart from AgentControl so each side can grow and be faked on its own.
class EndpointControl {
public:
    virtual ~EndpointControl() = default;
    // All throw ControlError (InvalidArgument for a bad request, NotFound...).
    // Same (container_id, ifname) -> same lease, until released.
    virtual AddressLease allocate_address(const std::string& container_id, const std::string& ifname) = 0;
    virtual void release_address(const std::string& container_id, const std::string& ifname) = 0;  // idempotent
    // Writes the maps, attaches the entry program to host_ifname, publishes
    // EndpointCreated. A repeated request for the same (container, ifname)
    // returns the existing endpoint if it matches, else InvalidArgument.
    virtual membrane::EndpointInfo create_endpoint(const EndpointRequest& request) = 0;
    // Runs `ready` on the loop once an endpoint with `labels` can take its
    // identity without waiting (at once for a node alone; after an
    // allocation in the kvstore in a cluster), or with why it cannot. The
    // D-Bus methods that create or relabel an endpoint ask this first.
    // Throws InvalidArgument (at once) for labels an endpoint may not have.
    virtual void prepare_identity(const membrane::Labels& labels,
                                  std::function<void(std::optional<IdentityProblem> problem)> ready) = 0;
    // Idempotent: succeeds when already gone. Releases the address too.
    virtual void delete_endpoint(const std::string& container_id, const std::string& ifname) = 0;
    virtual std::vector<membrane::EndpointInfo> list_endpoints() const = 0;
    virtual membrane::EndpointInfo get_endpoint(std::uint64_t id) const = 0;  // NotFound
    virtual membrane::EndpointInfo find_endpoint(const std::string& container_id,
                                                 const std::string& ifname) const = 0;  // NotFound
    // Replaces the labels; the identity follows. Publishes EndpointUpdated.
    virtual membrane::EndpointInfo set_endpoint_labels(std::uint64_t id, const membrane::Labels& labels) = 0;
    virtual std::vector<membrane::IdentityInfo> list_identities() const = 0;
    virtual std::vector<membrane::NodeInfo> list_nodes() const = 0;
};

}  // namespace membrane::kernel
