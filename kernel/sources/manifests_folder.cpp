#include "sources/manifests_folder.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "state/state_file.hpp"

namespace membrane::kernel {
namespace fs = std::filesystem;

namespace {

constexpr std::uintmax_t kMaxFileBytes = 1024 * 1024;  // parse_apply's limit; larger files are not read whole

// What changes a folder's set of files or a file's text: a write closed, a
// file (or a ConfigMap-style "..data" symlink) moved in or out, created or
// deleted, made readable; and the folder itself going away.
constexpr std::uint32_t kWatchMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                                     IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

bool is_manifest_name(const std::string& name) {
    if (name.empty() || name.front() == '.') return false;  // hidden, editors' swap files, "..data"
    for (const char* ext : {".yaml", ".yml", ".json"}) {
        if (name.ends_with(ext) && name.size() > std::strlen(ext)) return true;
    }
    return false;
}

nlohmann::json ref_json(const ObjectRef& ref) {
    return {{"kind", ref.kind}, {"namespace", ref.namespace_}, {"name", ref.name}};
}

ObjectRef ref_of(const nlohmann::json& item, const fs::path& record) {
    if (!item.is_object() || !item.contains("kind") || !item["kind"].is_string() || !item.contains("namespace") ||
        !item["namespace"].is_string() || !item.contains("name") || !item["name"].is_string()) {
        throw corrupt_record(record, "not an object reference: " + item.dump());
    }
    return {item["kind"].get<std::string>(), item["namespace"].get<std::string>(), item["name"].get<std::string>()};
}

std::set<ObjectRef> refs_of(const nlohmann::json& items, const fs::path& record) {
    if (!items.is_array()) throw corrupt_record(record, "expected a list of objects, found " + items.dump());
    std::set<ObjectRef> out;
    for (const auto& item : items) out.insert(ref_of(item, record));
    return out;
}

nlohmann::json refs_json(const std::set<ObjectRef>& refs) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& ref : refs) out.push_back(ref_json(ref));
    return out;
}

// The text of a file, or why it cannot be had.
std::optional<std::string> read_text(const fs::path& path, std::string& problem) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec) {
        problem = "cannot read it: " + ec.message();
        return std::nullopt;
    }
    if (size > kMaxFileBytes) {
        problem = std::to_string(size) + " bytes; one file is one apply, which takes at most 1 MiB: split it";
        return std::nullopt;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        problem = std::string("cannot read it: ") + std::strerror(errno);
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        problem = std::string("cannot read it: ") + std::strerror(errno);
        return std::nullopt;
    }
    return text.str();
}

std::string annotation_of(const Manifest& manifest) {
    const auto& meta = manifest.document["metadata"];
    if (!meta.contains("annotations")) return {};
    const auto& annotations = meta["annotations"];
    const auto it = annotations.find(kManifestsFileAnnotation);
    return it != annotations.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

ManifestsFolder::ManifestsFolder(boost::asio::io_context& io, ClusterObjects& objects,
                                 ManifestsFolderOptions options, std::shared_ptr<spdlog::logger> log)
    : objects_(objects), options_(std::move(options)), log_(std::move(log)), inotify_(io), timer_(io) {
    const auto record = read_state_file(options_.record_file);
    if (!record) return;
    if (!record->is_object() || !record->contains("files") || !(*record)["files"].is_object()) {
        throw corrupt_record(options_.record_file, "not a manifests folder record");
    }
    for (const auto& [path, item] : (*record)["files"].items()) {
        if (!item.is_object()) throw corrupt_record(options_.record_file, path + ": not a file record");
        FileState state;
        state.objects = refs_of(item.value("objects", nlohmann::json::array()), options_.record_file);
        state.to_remove = refs_of(item.value("to_remove", nlohmann::json::array()), options_.record_file);
        files_.emplace(path, std::move(state));
    }
}

ManifestsFolder::~ManifestsFolder() { *alive_ = false; }

void ManifestsFolder::start() {
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        // Not fatal: the periodic read still applies changes, only later.
        log_->error("inotify_init1: {}; {} is read every {} s instead", std::strerror(errno),
                    options_.folder.string(), options_.rescan.count() / 1000);
    } else {
        inotify_.assign(fd);
        read_events();
    }
    schedule(std::chrono::milliseconds(0));
}

void ManifestsFolder::watch_folder() {
    if (!inotify_.is_open()) return;
    if (::inotify_add_watch(inotify_.native_handle(), options_.folder.c_str(), kWatchMask) < 0) {
        // The folder is reported by the reconciliation that follows.
        return;
    }
    watching_ = true;
}

void ManifestsFolder::read_events() {
    inotify_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                        [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
                            if (ec || alive.expired()) return;
                            alignas(inotify_event) std::array<char, 16 * 1024> buffer;
                            bool changed = false;
                            for (;;) {
                                const ssize_t n = ::read(inotify_.native_handle(), buffer.data(), buffer.size());
                                if (n <= 0) break;
                                for (ssize_t at = 0; at < n;) {
                                    const auto* event = reinterpret_cast<const inotify_event*>(buffer.data() + at);
                                    // The folder was deleted or moved away: watched again when it is back.
                                    if (event->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) watching_ = false;
                                    changed = true;
                                    at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
                                }
                            }
                            if (changed) schedule(options_.settle);
                            read_events();
                        });
}

void ManifestsFolder::schedule(std::chrono::milliseconds delay) {
    const auto when = std::chrono::steady_clock::now() + delay;
    if (due_ && *due_ <= when) return;  // sooner already
    due_ = when;
    timer_.expires_at(when);
    timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        due_.reset();
        reconcile();
    });
}

void ManifestsFolder::reconcile() {
    if (busy_) {
        again_ = true;
        return;
    }
    busy_ = true;
    if (!watching_) watch_folder();
    run(plan(), 0);
}

std::vector<ManifestsFolder::Step> ManifestsFolder::plan() {
    std::error_code ec;
    std::map<std::string, fs::path> listed;  // by path, so files apply in name order
    fs::directory_iterator it(options_.folder, ec);
    if (ec) {
        // The files it had are not taken as gone: a folder that vanished for
        // a moment (a remount, a checkout) must not delete the cluster's objects.
        report("", "cannot read the folder: " + ec.message() + "; what it applied stays");
        schedule(options_.retry);  // and watched again as soon as it is back
        return {};
    }
    resolved("");
    for (const auto& entry : it) {
        const std::string name = entry.path().filename().string();
        if (!is_manifest_name(name)) continue;
        if (!fs::is_regular_file(entry.path(), ec)) continue;  // a subfolder, a dangling link
        listed.emplace(entry.path().string(), entry.path());
    }

    std::vector<Step> steps;
    std::map<ObjectRef, std::string> declared;  // object -> the file (path) that keeps it
    auto keep_declared = [&](const std::string& path, const std::set<ObjectRef>& refs) {
        for (const auto& ref : refs) declared.emplace(ref, path);
    };
    for (const auto& [path, file] : listed) {
        FileState& state = files_[path];
        std::string problem;
        const auto text = read_text(file, problem);
        if (!text) {
            report(path, problem);
            keep_declared(path, state.objects);
            continue;
        }
        if (state.applied && *text == state.applied_text) {
            keep_declared(path, state.objects);
            if (!state.to_remove.empty()) steps.push_back(Step{path, *text, {}, false, false});
            continue;
        }
        std::vector<Manifest> manifests;
        try {
            manifests = parse_apply(*text, path);
        } catch (const ManifestError& e) {
            report(path, e.what());
            keep_declared(path, state.objects);
            continue;
        }
        std::string clash;
        for (const auto& manifest : manifests) {
            const auto other = declared.find(manifest.ref);
            if (other != declared.end()) {
                clash = manifest.ref.str() + " is also in " + other->second + ", which keeps it (files apply in name order)";
                break;
            }
        }
        if (!clash.empty()) {
            report(path, clash);
            keep_declared(path, state.objects);
            continue;
        }
        for (auto& manifest : manifests) {
            manifest.document["metadata"]["annotations"][kManifestsFileAnnotation] = path;
            declared.emplace(manifest.ref, path);
        }
        steps.push_back(Step{path, *text, std::move(manifests), true, false});
    }
    for (const auto& [path, state] : files_) {
        if (!listed.contains(path)) steps.push_back(Step{path, {}, {}, false, true});
    }
    return steps;
}

void ManifestsFolder::run(std::vector<Step> steps, std::size_t index) {
    if (index == steps.size()) {
        busy_ = false;
        persist();
        if (again_) {
            again_ = false;
            schedule(options_.settle);
        } else {
            schedule(options_.rescan);
        }
        return;
    }
    Step step = std::move(steps[index]);
    auto next = [this, steps = std::move(steps), index, path = step.file, gone = step.gone]() mutable {
        const auto it = files_.find(path);
        if (gone && it != files_.end() && it->second.objects.empty() && it->second.to_remove.empty()) {
            files_.erase(it);
            resolved(path);
        }
        run(std::move(steps), index + 1);
    };
    FileState& state = files_[step.file];
    if (step.gone) {
        log_->info("{} is gone: deleting the {} object(s) it applied", step.file, state.objects.size());
        state.to_remove.insert(state.objects.begin(), state.objects.end());
        state.objects.clear();
        state.applied = false;
        remove_objects(step.file, std::move(next));
        return;
    }
    if (!step.apply) {
        remove_objects(step.file, std::move(next));
        return;
    }
    std::set<ObjectRef> now;
    for (const auto& manifest : step.manifests) now.insert(manifest.ref);
    std::vector<Manifest> manifests = std::move(step.manifests);
    objects_.apply(std::move(manifests), [this, path = step.file, text = std::move(step.text), now = std::move(now),
                                          next = std::move(next), alive = std::weak_ptr<bool>(alive_)](
                                             std::optional<ObjectsProblem> problem,
                                             std::vector<ApplyOutcome> outcomes) mutable {
        if (alive.expired()) return;
        if (problem) {
            if (problem->kind == ObjectsProblemKind::Unavailable) {
                report(path, "not applied yet, tried again in a moment: " + problem->message);
                schedule(options_.retry);
            } else {
                report(path, problem->message);
            }
            next();
            return;
        }
        FileState& state = files_[path];
        for (const auto& ref : state.objects) {
            if (!now.contains(ref)) state.to_remove.insert(ref);
        }
        for (const auto& ref : now) state.to_remove.erase(ref);
        state.objects = std::move(now);
        state.applied_text = std::move(text);
        state.applied = true;
        resolved(path);
        std::size_t changed = 0;
        for (const auto& outcome : outcomes) changed += outcome.action != "unchanged";
        if (changed > 0) log_->info("{} applied ({} of {} object(s) changed)", path, changed, outcomes.size());
        remove_objects(path, std::move(next));
    });
}

void ManifestsFolder::remove_objects(std::string file, std::function<void()> next) {
    FileState& state = files_[file];
    if (state.to_remove.empty()) {
        next();
        return;
    }
    const ObjectRef ref = *state.to_remove.begin();
    const auto current = objects_.find(ref);
    if (!current || annotation_of(*current) != file) {
        // Gone already, or applied since from elsewhere (membranectl apply,
        // another file): no longer this file's to delete.
        if (current) log_->info("{} left in place: it was applied since from elsewhere", ref.str());
        state.to_remove.erase(ref);
        remove_objects(std::move(file), std::move(next));
        return;
    }
    objects_.remove(
        ref,
        [this, file, ref, next = std::move(next), alive = std::weak_ptr<bool>(alive_)](
            std::optional<ObjectsProblem> problem) mutable {
            if (alive.expired()) return;
            if (problem && problem->kind != ObjectsProblemKind::NotFound &&
                problem->kind != ObjectsProblemKind::Changed) {
                // Kept in to_remove: the next reconciliation tries again.
                log_->warn("{} (no longer in {}) not deleted yet: {}", ref.str(), file, problem->message);
                schedule(options_.retry);
                next();
                return;
            }
            if (problem && problem->kind == ObjectsProblemKind::Changed) {
                log_->info("{} left in place: it changed since {} applied it", ref.str(), file);
            }
            files_[file].to_remove.erase(ref);
            remove_objects(std::move(file), std::move(next));
        },
        current->document);
}

void ManifestsFolder::report(const std::string& file, const std::string& problem) {
    auto& known = problems_[file];
    if (known == problem) return;
    known = problem;
    if (file.empty()) {
        log_->error("{}: {}", options_.folder.string(), problem);
    } else {
        log_->error("{}", problem.starts_with(file) ? problem : file + ": " + problem);
    }
}

void ManifestsFolder::resolved(const std::string& file) {
    if (problems_.erase(file) == 0) return;
    log_->info("{}: fine again", file.empty() ? options_.folder.string() : file);
}

void ManifestsFolder::persist() const {
    nlohmann::json files = nlohmann::json::object();
    for (const auto& [path, state] : files_) {
        if (state.objects.empty() && state.to_remove.empty()) continue;
        files[path] = {{"objects", refs_json(state.objects)}, {"to_remove", refs_json(state.to_remove)}};
    }
    try {
        write_state_file(options_.record_file, {{"folder", options_.folder.string()}, {"files", std::move(files)}});
    } catch (const StateError& e) {
        log_->error("{}", e.what());
    }
}

ManifestsFolderStatus ManifestsFolder::status() const {
    ManifestsFolderStatus out;
    out.folder = options_.folder;
    for (const auto& [path, state] : files_) out.files_applied += state.applied && !problems_.contains(path);
    out.problems = problems_;
    return out;
}

}  // namespace membrane::kernel
