#include "cluster/pod_cidr_allocator.hpp"

#include <algorithm>
#include <memory>

#include "cluster/cluster_nodes.hpp"

namespace membrane::kernel {
namespace {

constexpr int kPodCidrRaceAttempts = 5;  // races lost in a row before giving up

struct Allocation {
    Store& store;
    ClusterKeys keys;
    PodCidrRequest request;
    std::function<void(std::optional<PodCidrProblem>, std::optional<Ipv4Cidr>)> done;
    int attempt = 0;
};

void try_once(const std::shared_ptr<Allocation>& a);

void fail(const std::shared_ptr<Allocation>& a, const std::string& problem, bool retry = false) {
    a->done(PodCidrProblem{retry, problem}, std::nullopt);
}

void choose(const std::shared_ptr<Allocation>& a, const TxnResult& read) {
    const auto& req = a->request;
    // gets: [0] nodes/<node>, [1] podcidrs/, [2] nodes/
    for (const auto& kv : read.gets[0]) {
        const auto self = node_of(req.node, kv.value);
        if (self && self->ip != req.node_ip) {
            return fail(a, "the node name '" + req.node + "' is held by a live agent at " + self->ip +
                               " (its record in the kvstore has not expired): give this node another "
                               "[agent] node_name, or stop the other agent and wait for its lease to end");
        }
    }
    std::vector<Ipv4Cidr> taken = req.reserved;
    for (const auto& kv : read.gets[1]) {
        const auto block = parse_ipv4_cidr(std::string_view(kv.key).substr(a->keys.pod_cidrs().size()));
        if (!block) continue;  // not ours to judge; it blocks nothing
        if (kv.value == req.node) return a->done(std::nullopt, *block);  // this node's, from before
        taken.push_back(*block);
    }
    for (const auto& kv : read.gets[2]) {
        const std::string name = kv.key.substr(a->keys.nodes().size());
        if (const auto node = node_of(name, kv.value); node && name != req.node) {
            if (const auto cidr = parse_ipv4_cidr(node->pod_cidr)) taken.push_back(*cidr);
        }
    }
    const std::uint64_t step = std::uint64_t{1} << (32 - req.block_prefix);
    const std::uint64_t blocks = std::uint64_t{1} << (req.block_prefix - req.pool.prefix_len);
    for (std::uint64_t i = 0; i < blocks; ++i) {
        const Ipv4Cidr block{static_cast<std::uint32_t>(req.pool.network + i * step),
                             static_cast<std::uint8_t>(req.block_prefix)};
        const bool free = std::none_of(taken.begin(), taken.end(), [&](const Ipv4Cidr& t) { return t.overlaps(block); });
        if (!free) continue;
        const std::string key = a->keys.pod_cidrs() + block.str();
        Txn txn;
        txn.compare.push_back(Compare::absent(key));
        txn.then.push_back(TxnOp::put(key, req.node));
        a->store.txn(std::move(txn), [a, block](StoreResult<TxnResult> result) {
            if (!result.ok()) return fail(a, "the kvstore did not answer: " + result.error->message, true);
            if (result.value.succeeded) return a->done(std::nullopt, block);
            if (++a->attempt == kPodCidrRaceAttempts) {
                return fail(a, "lost " + std::to_string(kPodCidrRaceAttempts) + " races for a block of the pod CIDR pool in a row",
                            true);
            }
            try_once(a);  // another node took it meanwhile: read again
        });
        return;
    }
    fail(a, "the pod CIDR pool " + req.pool.str() + " has no free /" + std::to_string(req.block_prefix) +
                " block left (" + std::to_string(taken.size()) + " taken or configured)");
}

void try_once(const std::shared_ptr<Allocation>& a) {
    // One read of everything that decides, at one revision.
    Txn read;
    read.then = {TxnOp::get(a->keys.node(a->request.node)), TxnOp::get_prefix(a->keys.pod_cidrs()),
                 TxnOp::get_prefix(a->keys.nodes())};
    a->store.txn(std::move(read), [a](StoreResult<TxnResult> result) {
        if (!result.ok()) return fail(a, "the kvstore did not answer: " + result.error->message, true);
        choose(a, result.value);
    });
}

}  // namespace

void allocate_pod_cidr(Store& store, const ClusterKeys& keys, PodCidrRequest request,
                       std::function<void(std::optional<PodCidrProblem> problem, std::optional<Ipv4Cidr> block)> done) {
    try_once(std::make_shared<Allocation>(Allocation{store, keys, std::move(request), std::move(done)}));
}

}  // namespace membrane::kernel
