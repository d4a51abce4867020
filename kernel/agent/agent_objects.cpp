// The agent's applied objects: the control plane's apply, delete and list,
// over ClusterObjects (the cluster store, or this node's own store).
#include "agent/agent.hpp"
#include "log/logging.hpp"
#include "objects/object_kinds.hpp"
#include "store/memory_store.hpp"

namespace membrane::kernel {
namespace {

ControlError control_error(const ObjectsProblem& problem) {
    switch (problem.kind) {
        case ObjectsProblemKind::Unavailable: return ControlError(ControlErrorKind::Unavailable, problem.message);
        case ObjectsProblemKind::NotFound: return ControlError(ControlErrorKind::NotFound, problem.message);
        case ObjectsProblemKind::Invalid: return ControlError(ControlErrorKind::InvalidArgument, problem.message);
        case ObjectsProblemKind::Changed:  // only a conditional delete (the manifests folder's)
        case ObjectsProblemKind::Failed: break;
    }
    return ControlError(ControlErrorKind::Failed, problem.message);
}

const ObjectKind& kind_named(const std::string& name) {
    const ObjectKind* kind = find_kind_by_name(name);
    if (!kind) {
        throw ControlError(ControlErrorKind::InvalidArgument,
                           "'" + name + "' is not a kind Membrane keeps (it keeps: " + known_kinds() + ")");
    }
    return *kind;
}

}  // namespace

void Agent::open_objects() {
    ClusterObjectsOptions options;
    Store* store = store_.get();
    if (store) {
        options.cache_file = config_.agent.state_dir / "cluster-objects.json";
    } else {
        local_store_ = std::make_unique<MemoryStore>(io_);
        local_store_->start();
        store = local_store_.get();
        options.cache_file = config_.agent.state_dir / "objects.json";
        options.local = true;
    }
    objects_ = std::make_unique<ClusterObjects>(io_, *store, ClusterKeys(config_.cluster.name), bus_,
                                                std::move(options), make_logger("objects"));
    objects_->start();
    if (config_.sources.manifests_dir.empty()) return;
    ManifestsFolderOptions folder;
    folder.folder = config_.sources.manifests_dir;
    folder.record_file = config_.agent.state_dir / "manifests-folder.json";
    manifests_folder_ = std::make_unique<ManifestsFolder>(io_, *objects_, std::move(folder), make_logger("manifests"));
    manifests_folder_->start();
    log_->info("manifests: keeping the files of {} applied", config_.sources.manifests_dir.string());
}

void Agent::apply_objects(const std::string& source, const std::string& text, ApplyDone done) {
    std::vector<Manifest> manifests;
    try {
        manifests = parse_apply(text, source.empty() ? "the manifests" : source);
    } catch (const ManifestError& e) {
        throw ControlError(ControlErrorKind::InvalidArgument, e.what());
    }
    objects_->apply(std::move(manifests), [done = std::move(done)](std::optional<ObjectsProblem> problem,
                                                                   std::vector<ApplyOutcome> outcomes) {
        if (problem) {
            done(control_error(*problem), {});
            return;
        }
        std::vector<ObjectOutcome> out;
        for (const auto& o : outcomes) out.push_back({o.ref.kind, o.ref.namespace_, o.ref.name, o.action});
        done(std::nullopt, std::move(out));
    });
}

void Agent::delete_object(const std::string& kind, const std::string& namespace_, const std::string& name,
                          std::function<void(std::optional<ControlError>)> done) {
    const ObjectKind& k = kind_named(kind);
    if (name.empty()) throw ControlError(ControlErrorKind::InvalidArgument, "give the name of the object to delete");
    if (!k.namespaced && !namespace_.empty()) {
        throw ControlError(ControlErrorKind::InvalidArgument,
                           std::string(k.kind) + " is cluster-scoped: it has no namespace");
    }
    const ObjectRef ref{std::string(k.kind), k.namespaced ? (namespace_.empty() ? "default" : namespace_) : "", name};
    objects_->remove(ref, [done = std::move(done)](std::optional<ObjectsProblem> problem) {
        done(problem ? std::optional<ControlError>(control_error(*problem)) : std::nullopt);
    });
}

std::vector<std::string> Agent::list_objects(const std::string& kind, const std::string& namespace_,
                                             const std::string& name) const {
    const std::string wanted = kind.empty() ? std::string() : std::string(kind_named(kind).kind);
    std::vector<std::string> out;
    for (const auto& manifest : objects_->list(wanted)) {
        if (!namespace_.empty() && manifest.ref.namespace_ != namespace_) continue;
        if (!name.empty() && manifest.ref.name != name) continue;
        out.push_back(manifest.document.dump());
    }
    if (!name.empty() && out.empty()) {
        throw ControlError(ControlErrorKind::NotFound, (kind.empty() ? std::string("object") : wanted) + " " +
                                                           (namespace_.empty() ? "" : namespace_ + "/") + name +
                                                           " does not exist");
    }
    return out;
}

}  // namespace membrane::kernel
