// Security identities: one set of identity-relevant labels, one number. An
// endpoint's labels minus [identity] exclude_labels (identity_labels) make
// its identity, so replicas that differ only in pod name or hash labels share
// one. The reserved identities (contract.h) are the same everywhere; the
// others come from an allocator:
//   LocalIdentityAllocator   this node alone, numbers kept in its state directory;
//   ClusterIdentityAllocator the cluster, numbers agreed in the store (kernel/cluster).
//
// Allocating may need the store, which answers later; the endpoint path does
// not wait inside a map update for it. So a caller first prepares the label
// set (asynchronously), then acquires it (synchronously, from what prepare
// made known). All calls and callbacks are on the agent's loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "membrane/model.hpp"

namespace membrane::kernel {

// Why a label set cannot have a number now.
struct IdentityProblem {
    // The store is away, slow or busy (lost allocation races): the same
    // request may succeed later (CNI: "try again later"). Else it will not
    // (bad labels, no numbers left, a corrupt record in the store).
    bool transient = false;
    std::string message;
};

class IdentityAllocator {
public:
    // nullopt: acquire() of those labels will not wait; else why it cannot have a number now.
    using Prepared = std::function<void(std::optional<IdentityProblem> problem)>;

    virtual ~IdentityAllocator() = default;

    // Makes sure identity_labels(labels) has a number. `done` runs on the loop,
    // never inside this call.
    virtual void prepare(const Labels& labels, Prepared done) = 0;
    // The number of identity_labels(labels), with one more local endpoint
    // counted on it. Throws std::invalid_argument for labels an endpoint may
    // not have (label_problem), StateError when the number cannot be had
    // without waiting (not prepared, store away) or not recorded.
    virtual std::uint32_t acquire(const Labels& labels) = 0;
    // One local endpoint fewer on `id`; nothing for an unknown or unused id.
    virtual void release(std::uint32_t id) = 0;

    virtual std::optional<std::uint32_t> find(const Labels& labels) const = 0;
    // Reserved identities first, then the others by number (for a cluster:
    // every identity of the cluster, with this node's endpoints counted).
    virtual std::vector<IdentityInfo> list() const = 0;

    // Told of each allocated identity that becomes known or is forgotten
    // after this call (events::IdentityAdded/IdentityRemoved); what is known
    // already, list() tells. Called on the agent's loop.
    using Observer = std::function<void(const IdentityInfo& identity, bool known)>;
    void observe(Observer observer) { observer_ = std::move(observer); }

protected:
    // An implementation calls this whenever its numbers may have changed;
    // the observer hears the difference from the last call. True if there was one.
    bool announce(const std::map<Labels, std::uint32_t>& numbers);

private:
    Observer observer_;
    std::map<std::uint32_t, Labels> announced_;
};

// What list() shows: the reserved identities, then `numbers` by number,
// each with its local endpoints counted in `uses` (id -> endpoints).
std::vector<IdentityInfo> list_identities(const std::map<Labels, std::uint32_t>& numbers,
                                          const std::map<std::uint32_t, std::uint32_t>& uses);

}  // namespace membrane::kernel
