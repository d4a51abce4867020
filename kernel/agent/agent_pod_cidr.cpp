// A node that [[nodes]] does not list, in a cluster with [cluster]
// pod_cidr_pool: its pod CIDR comes from the store (pod_cidr_allocator.hpp)
// before the model opens, since the address pool is fixed for the agent's
// life. The block is kept in state_dir, so a restart needs no store.
#include <ifaddrs.h>
#include <netinet/in.h>

#include <chrono>
#include <csignal>
#include <memory>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>

#include "agent/agent.hpp"
#include "cluster/cluster_cache.hpp"
#include "cluster/pod_cidr_allocator.hpp"
#include "config/ipv4.hpp"
#include "etcd/etcd_store.hpp"
#include "log/logging.hpp"
#include "state/state_file.hpp"

namespace membrane::kernel {
namespace {

constexpr const char* kCacheField = "pod_cidr";
// Long enough for etcd to come up beside the agent; systemd restarts an agent that gives up.
constexpr auto kPatience = std::chrono::minutes(5);

// The first IPv4 address of `device`, "" if it has none.
std::string first_ipv4(const std::string& device) {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return {};
    std::unique_ptr<ifaddrs, void (*)(ifaddrs*)> owned(list, ::freeifaddrs);
    for (const ifaddrs* a = list; a; a = a->ifa_next) {
        if (a->ifa_addr && a->ifa_addr->sa_family == AF_INET && device == a->ifa_name) {
            return format_ipv4(ntohl(reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr));
        }
    }
    return {};
}

}  // namespace

void Agent::take_pod_cidr() {
    if (config_.local_node() || config_.cluster.pod_cidr_pool.empty() || !config_.kvstore) return;
    const auto& agent = config_.agent;
    std::string ip = agent.node_ip;
    if (ip.empty() && !agent.devices.empty()) ip = first_ipv4(agent.devices.front());
    if (ip.empty()) {
        throw std::runtime_error("this node is not in [[nodes]], so it takes a pod CIDR from [cluster] pod_cidr_pool, "
                                 "but it has no address to publish: set [agent] node_ip, or list a device with an "
                                 "IPv4 address first in [agent] devices");
    }
    const ClusterKeys keys(config_.cluster.name);
    const auto cache = agent.state_dir / "cluster-pod-cidr.json";
    std::optional<Ipv4Cidr> block;
    if (const auto items = read_cluster_cache(cache, keys, kCacheField); items && !items->empty()) {
        const auto& item = items->front();
        if (item.is_object() && item.value("node", "") == agent.node_name) block = parse_ipv4_cidr(item.value("cidr", ""));
        if (!block) throw corrupt_record(cache, "not this node's pod CIDR: " + item.dump());
        log_->info("pod CIDR {} (from [cluster] pod_cidr_pool, kept in {})", block->str(), cache.string());
    } else {
        block = allocate_pod_cidr_now(ip);
        write_cluster_cache(cache, keys, kCacheField,
                            nlohmann::json::array({{{"node", agent.node_name}, {"cidr", block->str()}}}));
        log_->info("pod CIDR {} taken from [cluster] pod_cidr_pool {}", block->str(), config_.cluster.pod_cidr_pool);
    }
    allocated_self_ = NodeSettings{agent.node_name, ip, block->str()};
    config_.nodes.push_back(*allocated_self_);
}

Ipv4Cidr Agent::allocate_pod_cidr_now(const std::string& ip) {
    PodCidrRequest request{config_.agent.node_name, ip, *parse_ipv4_cidr(config_.cluster.pod_cidr_pool),
                           config_.cluster.pod_cidr_size, {}};
    for (const auto& node : config_.nodes) {
        if (auto cidr = parse_ipv4_cidr(node.pod_cidr)) request.reserved.push_back(*cidr);
    }
    // Its own loop and connection: the agent's loop runs nothing before start() is done.
    boost::asio::io_context io;
    auto work = boost::asio::make_work_guard(io);  // idle between tries, not stopped
    EtcdStore store(io, *config_.kvstore, make_logger("kvstore"));
    store.start();
    // SIGTERM while waiting ends the wait (the agent's own signal set is not served yet).
    bool stopping = false;
    boost::asio::signal_set stop(io, SIGTERM, SIGINT);
    stop.async_wait([&](const boost::system::error_code& ec, int) { stopping = !ec; });
    const ClusterKeys keys(config_.cluster.name);
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    auto next_note = std::chrono::steady_clock::now();
    while (true) {
        std::optional<PodCidrProblem> problem;
        std::optional<Ipv4Cidr> block;
        bool answered = false;
        allocate_pod_cidr(store, keys, request, [&](std::optional<PodCidrProblem> p, std::optional<Ipv4Cidr> b) {
            problem = std::move(p);
            block = b;
            answered = true;
        });
        while (!answered && !stopping) io.run_one_for(std::chrono::milliseconds(100));
        if (stopping) throw std::runtime_error("stopped by a signal while waiting for a pod CIDR from the kvstore");
        if (block) {
            store.close();
            io.poll();
            return *block;
        }
        if (!problem->retry) throw std::runtime_error("no pod CIDR for this node: " + problem->message);
        const auto now = std::chrono::steady_clock::now();
        if (now > deadline) {
            throw std::runtime_error("no pod CIDR for this node after " + std::to_string(kPatience.count()) +
                                     " minutes: " + problem->message);
        }
        if (now >= next_note) {
            log_->warn("waiting for the kvstore to hand out a pod CIDR: {}", problem->message);
            next_note = now + std::chrono::seconds(10);
        }
        io.run_for(std::chrono::seconds(1));
        if (stopping) throw std::runtime_error("stopped by a signal while waiting for a pod CIDR from the kvstore");
    }
}

}  // namespace membrane::kernel
