// An EndpointControl over an in-memory list: two endpoints, three identities
// (two reserved), two nodes. Records calls and the thread they ran on; the
// failures are what the agent's would be (NotFound, InvalidArgument).
#pragma once

#include <algorithm>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_control.hpp"

namespace membrane::test {

class FakeEndpointControl final : public kernel::EndpointControl {
public:
    struct Call {
        std::string what;  // "allocate c1/eth0", "create c3/eth0", "labels 1"...
        std::thread::id thread;
    };

    static constexpr std::uint64_t kMissingId = 99;
    static constexpr const char* kConflictingContainer = "conflicting";

    FakeEndpointControl() {
        endpoints_.push_back(endpoint(1, "4f1c2a9b7d3e8f6a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a", "eth0",
                                      "/var/run/netns/cni-1", "mbr1a2b3c4d5e6", 11, "10.10.1.2", "0a:58:0a:0a:01:02",
                                      {{"app", "web"}, {"k8s:namespace", "default"}}, 4096));
        endpoints_.push_back(endpoint(2, "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc", "net1",
                                      "/var/run/netns/cni-2", "mbr99887766554", 12, "10.10.1.3", "0a:58:0a:0a:01:03", {},
                                      4097));
    }

    kernel::AddressLease allocate_address(const std::string& container_id, const std::string& ifname) override {
        record("allocate " + container_id + "/" + ifname);
        if (container_id.empty()) throw kernel::ControlError(kernel::ControlErrorKind::InvalidArgument, "empty container id");
        return kernel::AddressLease{"10.10.1.5", 32, "10.10.1.1", "10.10.1.0/24", 1450};
    }

    void release_address(const std::string& container_id, const std::string& ifname) override {
        record("release " + container_id + "/" + ifname);
    }

    // Answers at once with identity_problem (as a store that is away would).
    void prepare_identity(const Labels& labels, std::function<void(std::optional<kernel::IdentityProblem>)> ready) override {
        record("prepare " + std::to_string(labels.size()) + " labels");
        ready(identity_problem);
    }
    std::optional<kernel::IdentityProblem> identity_problem;

    EndpointInfo create_endpoint(const kernel::EndpointRequest& request) override {
        record("create " + request.container_id + "/" + request.ifname);
        if (request.container_id == kConflictingContainer)
            throw kernel::ControlError(kernel::ControlErrorKind::InvalidArgument,
                                       "endpoint conflicting/eth0 exists with another address");
        std::lock_guard lock(mutex_);
        last_request_ = request;
        auto created = endpoint(3, request.container_id, request.ifname, request.netns, request.host_ifname, 13,
                                request.ipv4, request.mac, request.labels, 4098);
        endpoints_.push_back(created);
        return created;
    }

    void delete_endpoint(const std::string& container_id, const std::string& ifname) override {
        record("delete " + container_id + "/" + ifname);
    }

    std::vector<EndpointInfo> list_endpoints() const override {
        record("list");
        std::lock_guard lock(mutex_);
        return endpoints_;
    }

    EndpointInfo get_endpoint(std::uint64_t id) const override {
        record("get " + std::to_string(id));
        std::lock_guard lock(mutex_);
        for (const auto& e : endpoints_)
            if (e.id == id) return e;
        throw kernel::ControlError(kernel::ControlErrorKind::NotFound, "no endpoint " + std::to_string(id));
    }

    EndpointInfo find_endpoint(const std::string& container_id, const std::string& ifname) const override {
        record("find " + container_id + "/" + ifname);
        std::lock_guard lock(mutex_);
        for (const auto& e : endpoints_)
            if (e.container_id == container_id && e.ifname == ifname) return e;
        throw kernel::ControlError(kernel::ControlErrorKind::NotFound,
                                   "no endpoint for container " + container_id + " interface " + ifname);
    }

    EndpointInfo set_endpoint_labels(std::uint64_t id, const Labels& labels) override {
        record("labels " + std::to_string(id));
        std::lock_guard lock(mutex_);
        for (auto& e : endpoints_) {
            if (e.id != id) continue;
            e.labels = labels;
            e.identity = 5000;  // the identity follows the labels
            return e;
        }
        throw kernel::ControlError(kernel::ControlErrorKind::NotFound, "no endpoint " + std::to_string(id));
    }

    std::vector<IdentityInfo> list_identities() const override {
        record("identities");
        return {
            {1, {{"reserved:host", ""}}, true, 0},
            {2, {{"reserved:world", ""}}, true, 0},
            {4096, {{"app", "web"}, {"k8s:namespace", "default"}}, false, 1},
        };
    }

    std::vector<NodeInfo> list_nodes() const override {
        record("nodes");
        return {
            {"node-a", "192.168.50.2", "10.10.1.0/24", true},
            {"node-b", "192.168.50.3", "10.10.2.0/24", false},
        };
    }

    std::vector<Call> calls() const {
        std::lock_guard lock(mutex_);
        return calls_;
    }
    std::optional<kernel::EndpointRequest> last_request() const {
        std::lock_guard lock(mutex_);
        return last_request_;
    }

private:
    static EndpointInfo endpoint(std::uint64_t id, std::string container, std::string ifname, std::string netns,
                                 std::string host_ifname, std::uint32_t host_ifindex, std::string ipv4, std::string mac,
                                 Labels labels, std::uint32_t identity) {
        EndpointInfo e;
        e.id = id;
        e.container_id = std::move(container);
        e.ifname = std::move(ifname);
        e.netns = std::move(netns);
        e.host_ifname = std::move(host_ifname);
        e.host_ifindex = host_ifindex;
        e.ipv4 = std::move(ipv4);
        e.mac = std::move(mac);
        e.labels = std::move(labels);
        e.identity = identity;
        e.state = "ready";
        return e;
    }

    void record(std::string what) const {
        std::lock_guard lock(mutex_);
        calls_.push_back({std::move(what), std::this_thread::get_id()});
    }

    mutable std::mutex mutex_;
    mutable std::vector<Call> calls_;
    std::vector<EndpointInfo> endpoints_;
    std::optional<kernel::EndpointRequest> last_request_;
};

}  // namespace membrane::test
