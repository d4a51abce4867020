#include "sources/manifests_folder.hpp"

#include <sys/inotify.h>
#include <sys/stat.h>
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

nlohmann::json documents_json(const std::map<ObjectRef, std::string>& documents) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [ref, document] : documents) {
        out.push_back({{"kind", ref.kind}, {"namespace", ref.namespace_}, {"name", ref.name}, {"document", document}});
    }
    return out;
}

std::map<ObjectRef, std::string> documents_of(const nlohmann::json& items, const fs::path& record) {
    if (!items.is_array()) throw corrupt_record(record, "expected a list of objects, found " + items.dump());
    std::map<ObjectRef, std::string> out;
    for (const auto& item : items) {
        auto text = [&](const char* key) {
            if (!item.is_object() || !item.contains(key) || !item[key].is_string()) {
                throw corrupt_record(record, std::string("an object without '") + key + "': " + item.dump());
            }
            return item[key].get<std::string>();
        };
        out.emplace(ObjectRef{text("kind"), text("namespace"), text("name")}, text("document"));
    }
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
    std::ostringstream text;
    text << in.rdbuf();
    if (!in || in.bad()) {
        problem = std::string("cannot read it: ") + std::strerror(errno);
        return std::nullopt;
    }
    return text.str();
}

std::optional<std::pair<dev_t, ino_t>> identity_of(const fs::path& folder) {
    struct stat st {};
    if (::stat(folder.c_str(), &st) != 0) return std::nullopt;
    return std::make_pair(st.st_dev, st.st_ino);
}

}  // namespace

ManifestsFolder::ManifestsFolder(boost::asio::io_context& io, ClusterObjects& objects,
                                 ManifestsFolderOptions options, std::shared_ptr<spdlog::logger> log)
    : objects_(objects),
      options_(std::move(options)),
      log_(std::move(log)),
      inotify_(io),
      settle_timer_(io),
      timer_(io) {
    const auto record = read_state_file(options_.record_file);
    if (!record) return;
    if (!record->is_object() || !record->contains("files") || !(*record)["files"].is_object()) {
        throw corrupt_record(options_.record_file, "not a manifests folder record");
    }
    for (const auto& [path, item] : (*record)["files"].items()) {
        if (!item.is_object()) throw corrupt_record(options_.record_file, path + ": not a file record");
        FileState state;
        state.applied = documents_of(item.value("objects", nlohmann::json::array()), options_.record_file);
        state.to_remove = documents_of(item.value("to_remove", nlohmann::json::array()), options_.record_file);
        files_.emplace(path, std::move(state));
    }
    persisted_ = *record;
}

ManifestsFolder::~ManifestsFolder() {
    *alive_ = false;
    persist();  // what finished before the stop (an apply whose run was cut short)
}

void ManifestsFolder::start() {
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        // Not fatal: the periodic read still applies changes, only later.
        report("", std::string("inotify_init1: ") + std::strerror(errno) + "; read every " +
                       std::to_string(options_.rescan.count() / 1000) + " s instead");
    } else {
        inotify_.assign(fd);
        read_events();
    }
    schedule(std::chrono::milliseconds(0));
}

void ManifestsFolder::watch_folder() {
    const auto identity = identity_of(options_.folder);
    if (!inotify_.is_open() || !identity || identity == watched_) return;
    // A new folder at the path (created again, or a file system mounted over
    // it): the old watch sees nothing of it.
    if (watch_ >= 0) ::inotify_rm_watch(inotify_.native_handle(), watch_);
    watch_ = ::inotify_add_watch(inotify_.native_handle(), options_.folder.c_str(), kWatchMask);
    if (watch_ < 0) {
        log_->error("{}: inotify_add_watch: {}; read every {} s instead", options_.folder.string(),
                    std::strerror(errno), options_.rescan.count() / 1000);
        watched_.reset();
        return;
    }
    watched_ = identity;
}

void ManifestsFolder::read_events() {
    inotify_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                        [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
                            if (alive.expired() || ec == boost::asio::error::operation_aborted) return;
                            if (ec) {
                                log_->error("{}: inotify: {}; read every {} s instead", options_.folder.string(),
                                            ec.message(), options_.rescan.count() / 1000);
                                return;
                            }
                            alignas(inotify_event) std::array<char, 16 * 1024> buffer;
                            bool changed = false;
                            for (;;) {
                                const ssize_t n = ::read(inotify_.native_handle(), buffer.data(), buffer.size());
                                if (n <= 0) break;
                                for (ssize_t at = 0; at < n;) {
                                    const auto* event = reinterpret_cast<const inotify_event*>(buffer.data() + at);
                                    // The folder went (deleted, moved, unmounted): watched again once back.
                                    if (event->mask & IN_IGNORED) {
                                        watch_ = -1;
                                        watched_.reset();
                                    }
                                    changed = true;  // IN_Q_OVERFLOW too: the folder is read whole anyway
                                    at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
                                }
                            }
                            if (changed) settle();
                            read_events();
                        });
}

void ManifestsFolder::settle() {
    // Quiet for `settle`, or `settle_limit` after the burst began: a checkout
    // writing many files is read once it is done, not half-way.
    const auto now = std::chrono::steady_clock::now();
    if (!burst_start_) burst_start_ = now;
    settle_timer_.expires_at(std::min(now + options_.settle, *burst_start_ + options_.settle_limit));
    settle_timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        burst_start_.reset();
        reconcile();
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
    watch_folder();
    auto applies = plan();
    if (!applies) {
        finish();
        return;
    }
    run_applies(std::move(*applies), 0);
}

std::optional<std::vector<ManifestsFolder::Apply>> ManifestsFolder::plan() {
    std::error_code ec;
    std::map<std::string, std::string> listed;  // path -> "" or why it cannot be read; in name order
    fs::directory_iterator it(options_.folder, ec);
    for (const fs::directory_iterator end; !ec && it != end; it.increment(ec)) {
        if (!is_manifest_name(it->path().filename().string())) continue;
        std::error_code file_ec;
        if (fs::is_regular_file(it->path(), file_ec)) {
            listed.emplace(it->path().string(), "");
        } else if (file_ec && file_ec != std::errc::no_such_file_or_directory) {
            // Unreadable is not gone: what it applied stays.
            listed.emplace(it->path().string(), "cannot read it: " + file_ec.message());
        }  // else a subfolder, a dangling link, or gone since the listing
    }
    if (ec) {
        // What it applied is not taken as gone: a folder that is away for a
        // moment (a remount, a checkout) must not delete the cluster's objects.
        report("", "cannot read the folder: " + ec.message() + "; what it applied stays");
        schedule(options_.retry);  // and watched again as soon as it is back
        return std::nullopt;
    }
    const bool had_objects = std::any_of(files_.begin(), files_.end(),
                                         [](const auto& file) { return !file.second.applied.empty(); });
    if (listed.empty() && had_objects) {
        const auto now = std::chrono::steady_clock::now();
        if (!empty_since_) empty_since_ = now;
        const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - *empty_since_);
        if (waited < options_.empty_grace) {
            report("", "has no manifest files; what it applied is deleted if it stays so for " +
                           std::to_string(options_.empty_grace.count() / 1000) + " s");
            schedule(options_.empty_grace - waited);
            return std::nullopt;
        }
        log_->warn("{} has stayed empty for {} s: deleting what it applied", options_.folder.string(),
                   waited.count() / 1000);
    }
    empty_since_.reset();
    resolved("");

    // Who declares what, in name order: the first file keeps an object.
    std::vector<Apply> applies;
    std::map<ObjectRef, std::string> claims;
    // A file with a problem keeps what it applied, except what an earlier
    // file now declares: that file's apply takes it over, and this one
    // applies it again once it may have it back.
    auto keep_what_it_applied = [&](const std::string& path, FileState& state) {
        state.current = false;
        std::erase_if(state.applied, [&](const auto& item) {
            const auto [claim, added] = claims.emplace(item.first, path);
            return !added && claim->second != path;
        });
    };
    auto refuse = [&](const std::string& path, FileState& state, const std::string& problem) {
        report(path, problem);
        keep_what_it_applied(path, state);
    };
    for (const auto& [path, unreadable] : listed) {
        FileState& state = files_[path];
        std::string problem = unreadable;
        if (!problem.empty()) {
            refuse(path, state, problem);
            continue;
        }
        const auto text = read_text(path, problem);
        if (!text) {
            refuse(path, state, problem);
            continue;
        }
        std::vector<Manifest> manifests;
        try {
            manifests = parse_apply(*text, path);
        } catch (const ManifestError& e) {
            refuse(path, state, e.what());
            continue;
        }
        Documents declared;
        std::string clash;
        for (auto& manifest : manifests) {
            if (const auto other = claims.find(manifest.ref); other != claims.end() && clash.empty()) {
                clash = manifest.ref.str() + " is also in " + other->second + ", which keeps it (files apply in name order)";
            }
            manifest.document["metadata"]["annotations"][kManifestsFileAnnotation] = path;
            declared.emplace(manifest.ref, manifest.document.dump());
        }
        if (!clash.empty()) {
            refuse(path, state, clash);
            continue;
        }
        for (const auto& [ref, document] : declared) claims.emplace(ref, path);
        if (declared == state.applied) {
            state.current = true;
            resolved(path);
        } else {
            applies.push_back(Apply{path, std::move(manifests), std::move(declared)});
        }
    }
    // What a file no longer declares goes to its to_remove, unless another
    // file now declares it (its apply takes the object over): a gone file
    // at once, a changed one once its new version is applied (run_applies).
    for (auto& [path, state] : files_) {
        if (listed.contains(path)) continue;
        state.current = false;
        state.to_remove.merge(state.applied);
        state.applied.clear();
        resolved(path);
    }
    claims_ = std::move(claims);
    return applies;
}

void ManifestsFolder::run_applies(std::vector<Apply> applies, std::size_t index) {
    if (index == applies.size()) {
        run_deletes();
        return;
    }
    std::vector<Manifest> manifests = std::move(applies[index].manifests);
    std::string file = applies[index].file;
    Documents declared = std::move(applies[index].declared);
    objects_.apply(std::move(manifests),
                   [this, applies = std::move(applies), index, file = std::move(file), declared = std::move(declared),
                    alive = std::weak_ptr<bool>(alive_)](std::optional<ObjectsProblem> problem,
                                                         std::vector<ApplyOutcome> outcomes) mutable {
                       if (alive.expired()) return;
                       FileState& state = files_[file];
                       if (problem) {
                           if (problem->kind == ObjectsProblemKind::Unavailable) {
                               report(file, "not applied yet, tried again in a moment: " + problem->message);
                               schedule(options_.retry);
                           } else {
                               report(file, problem->message);
                           }
                           state.current = false;
                       } else {
                           for (auto& [ref, document] : state.applied) {
                               if (!declared.contains(ref)) state.to_remove.insert_or_assign(ref, std::move(document));
                           }
                           for (const auto& [ref, document] : declared) state.to_remove.erase(ref);
                           state.applied = std::move(declared);
                           state.current = true;
                           resolved(file);
                           std::size_t changed = 0;
                           for (const auto& outcome : outcomes) changed += outcome.action != "unchanged";
                           log_->info("{} applied ({} of {} object(s) changed)", file, changed, outcomes.size());
                       }
                       run_applies(std::move(applies), index + 1);
                   });
}

void ManifestsFolder::run_deletes() {
    // One at a time, in file and object order; each only while the stored
    // object is still what this folder applied.
    for (auto& [path, state] : files_) {
        for (auto it = state.to_remove.begin(); it != state.to_remove.end();) {
            const auto claim = claims_.find(it->first);
            if (claim != claims_.end() && claim->second != path) {
                it = state.to_remove.erase(it);  // another file declares it now: its to keep
                continue;
            }
            const ObjectRef ref = it->first;
            nlohmann::json document = nlohmann::json::parse(it->second, nullptr, false);
            objects_.remove(
                ref,
                [this, path, ref, alive = std::weak_ptr<bool>(alive_)](std::optional<ObjectsProblem> problem) {
                    if (alive.expired()) return;
                    if (problem && problem->kind != ObjectsProblemKind::NotFound &&
                        problem->kind != ObjectsProblemKind::Changed) {
                        // Kept in to_remove: the next reconciliation tries again.
                        report(path + " (deletes)", ref.str() + ", which " + path +
                                                        " no longer declares, is not deleted yet: " + problem->message);
                        schedule(options_.retry);
                        finish();
                        return;
                    }
                    if (!problem) log_->info("{} deleted: {} no longer declares it", ref.str(), path);
                    if (problem && problem->kind == ObjectsProblemKind::Changed) {
                        log_->info("{} left in place: it changed since {} applied it", ref.str(), path);
                    }
                    FileState& state = files_[path];
                    state.to_remove.erase(ref);
                    if (state.to_remove.empty()) resolved(path + " (deletes)");
                    run_deletes();
                },
                document.is_discarded() ? std::nullopt : std::optional<nlohmann::json>(std::move(document)));
            return;
        }
    }
    finish();
}

void ManifestsFolder::finish() {
    for (auto it = files_.begin(); it != files_.end();) {
        const bool empty = it->second.applied.empty() && it->second.to_remove.empty();
        it = empty && !it->second.current && !problems_.contains(it->first) ? files_.erase(it) : std::next(it);
    }
    persist();
    busy_ = false;
    if (again_) {
        again_ = false;
        schedule(options_.settle);
    } else {
        schedule(options_.rescan);
    }
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

void ManifestsFolder::persist() {
    nlohmann::json files = nlohmann::json::object();
    for (const auto& [path, state] : files_) {
        if (state.applied.empty() && state.to_remove.empty()) continue;
        files[path] = {{"objects", documents_json(state.applied)}, {"to_remove", documents_json(state.to_remove)}};
    }
    nlohmann::json record = {{"folder", options_.folder.string()}, {"files", std::move(files)}};
    if (record == persisted_) return;
    try {
        write_state_file(options_.record_file, record);
        persisted_ = std::move(record);
    } catch (const StateError& e) {
        log_->error("{}", e.what());
    }
}

ManifestsFolderStatus ManifestsFolder::status() const {
    ManifestsFolderStatus out;
    out.folder = options_.folder;
    for (const auto& [path, state] : files_) out.files_applied += state.current && !problems_.contains(path);
    out.problems = problems_;
    return out;
}

}  // namespace membrane::kernel
