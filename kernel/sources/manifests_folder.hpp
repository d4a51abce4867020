// [sources] manifests_dir: a folder of manifest files, watched with inotify,
// kept applied (GitOps on a bare host: a checkout or a synced folder).
//
// - Each file (*.yaml, *.yml, *.json; not hidden, not in a subfolder,
//   symlinks followed) is one apply: all of its objects or none of them,
//   checked by the same parser as `membranectl apply`.
// - A file that does not parse, or declares an object an earlier file (by
//   name) already declares, is reported (log and `membranectl status`) and
//   its last good version stays applied; the other files keep working.
// - An object the folder applied carries the annotation
//   membrane.io/manifests-file = <the file's path>. When its file goes, or
//   the file stops declaring it, it is deleted, unless it has changed since
//   (someone applied it over): then it is left as it is.
// - Which objects came from which file is kept in a state file, so what
//   vanished while the agent was down is deleted at start.
// - The store being away delays a change; it is tried again every few seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/logger.h>

#include "cluster/cluster_objects.hpp"
#include "objects/manifest.hpp"

namespace membrane::kernel {

inline constexpr const char* kManifestsFileAnnotation = "membrane.io/manifests-file";

struct ManifestsFolderStatus {
    std::filesystem::path folder;
    std::uint32_t files_applied = 0;            // files whose current text is applied
    std::map<std::string, std::string> problems;  // file name (or "" for the folder) -> what is wrong
};

struct ManifestsFolderOptions {
    std::filesystem::path folder;
    std::filesystem::path record_file;  // which objects each file applied (state_dir)
    // How soon a change is read after inotify reports it (writers finish),
    // and how often the folder is read anyway (a change inotify cannot see,
    // e.g. on a network file system) and a refused write tried again.
    std::chrono::milliseconds settle{200};
    std::chrono::milliseconds rescan{30000};
    std::chrono::milliseconds retry{5000};
};

class ManifestsFolder {
public:
    // Reads the record (StateError if it is corrupt).
    ManifestsFolder(boost::asio::io_context& io, ClusterObjects& objects, ManifestsFolderOptions options,
                    std::shared_ptr<spdlog::logger> log);
    ~ManifestsFolder();
    ManifestsFolder(const ManifestsFolder&) = delete;
    ManifestsFolder& operator=(const ManifestsFolder&) = delete;

    // Starts watching and applies the folder (in the background).
    void start();
    ManifestsFolderStatus status() const;

private:
    struct FileState {
        std::string applied_text;       // the text whose objects are applied
        std::set<ObjectRef> objects;    // what that text declares
        std::set<ObjectRef> to_remove;  // what it no longer declares and is not deleted yet
        bool applied = false;           // applied_text is current (from the record at start: not yet)
    };
    // One file's part of a reconciliation.
    struct Step {
        std::string file;  // its path
        std::string text;
        std::vector<Manifest> manifests;  // annotated, when `apply`
        bool apply = false;               // else only what it applied and no longer declares is deleted
        bool gone = false;                // the file is gone: everything it applied is deleted
    };

    void watch_folder();
    void read_events();
    void schedule(std::chrono::milliseconds delay);
    void reconcile();
    std::vector<Step> plan();
    void run(std::vector<Step> steps, std::size_t index);
    // Deletes the file's to_remove one by one (each only if the file's
    // version is still the stored one), then `next`.
    void remove_objects(std::string file, std::function<void()> next);
    void report(const std::string& file, const std::string& problem);
    void resolved(const std::string& file);
    void persist() const;

    ClusterObjects& objects_;
    ManifestsFolderOptions options_;
    std::shared_ptr<spdlog::logger> log_;
    boost::asio::posix::stream_descriptor inotify_;
    bool watching_ = false;
    boost::asio::steady_timer timer_;
    std::optional<std::chrono::steady_clock::time_point> due_;  // when the timer fires
    bool busy_ = false;        // a reconciliation is running
    bool again_ = false;       // something changed while it ran
    std::map<std::string, FileState> files_;
    std::map<std::string, std::string> problems_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace membrane::kernel
