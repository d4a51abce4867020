// [sources] manifests_dir: a folder of manifest files, watched with inotify,
// whose objects the agent applies (GitOps on a bare host: a checkout or a
// synced folder).
//
// - Each file (*.yaml, *.yml, *.json; not hidden, not in a subfolder,
//   symlinks followed) is one apply: all of its objects or none of them,
//   checked by the same parser as `membranectl apply`. A file is applied
//   when it appears and whenever what it declares changes; an object
//   changed or deleted by other means is left so until then.
// - An object belongs to the first file (by name) that declares it. A file
//   that does not parse, or declares an object an earlier file declares, is
//   reported (log and `membranectl status`) and what it applied before
//   stays; the other files keep working.
// - An object the folder applied carries the annotation
//   membrane.io/manifests-file = <its file's path>. When no file declares
//   it any more, it is deleted, only if the stored object is still exactly
//   what the folder applied (one transaction compares them): an object
//   applied over since is left alone.
// - What each file applied is kept in a state file, so what vanished while
//   the agent was down is deleted at start, and an unchanged file is not
//   applied again.
// - A folder that cannot be read deletes nothing. A folder that is empty
//   while it had files deletes only once it has stayed empty for a while
//   (a mount not there yet, a sync tool emptying it before writing).
// - The store being away delays a change; it is tried again every few seconds.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
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
    std::uint32_t files_applied = 0;              // files whose objects are applied as they are now
    std::map<std::string, std::string> problems;  // file path (or "" for the folder) -> what is wrong
};

struct ManifestsFolderOptions {
    std::filesystem::path folder;
    std::filesystem::path record_file;  // what each file applied (state_dir)
    // A change is read once inotify has been quiet this long (writers
    // finish), or at the latest `settle_limit` after the first event.
    std::chrono::milliseconds settle{200};
    std::chrono::milliseconds settle_limit{2000};
    // How often the folder is read anyway (a change inotify cannot see, e.g.
    // on a network file system), and a refused write or a missing folder tried again.
    std::chrono::milliseconds rescan{30000};
    std::chrono::milliseconds retry{5000};
    // How long a folder that had files must stay empty before their objects go.
    std::chrono::milliseconds empty_grace{30000};
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
    using Documents = std::map<ObjectRef, std::string>;  // object -> its stored document (JSON text)

    struct FileState {
        Documents applied;    // what it applied and still owns
        Documents to_remove;  // what it applied, no longer declares, and is not deleted yet
        bool current = false;  // listed, no problem, and `applied` is what it declares
    };
    // A file whose declared objects differ from what it applied.
    struct Apply {
        std::string file;
        std::vector<Manifest> manifests;  // annotated
        Documents declared;
    };

    void watch_folder();
    void read_events();
    void settle();
    void schedule(std::chrono::milliseconds delay);
    void reconcile();
    // What to apply; records the problems, and the objects each file gives up.
    std::optional<std::vector<Apply>> plan();
    void run_applies(std::vector<Apply> applies, std::size_t index);
    void run_deletes();
    void finish();
    void report(const std::string& file, const std::string& problem);
    void resolved(const std::string& file);
    void persist();

    ClusterObjects& objects_;
    ManifestsFolderOptions options_;
    std::shared_ptr<spdlog::logger> log_;
    boost::asio::posix::stream_descriptor inotify_;
    int watch_ = -1;  // the watch descriptor, on the folder `watched_` names
    std::optional<std::pair<dev_t, ino_t>> watched_;
    boost::asio::steady_timer settle_timer_;
    std::optional<std::chrono::steady_clock::time_point> burst_start_;  // of the events not read yet
    boost::asio::steady_timer timer_;  // rescan and retry
    std::optional<std::chrono::steady_clock::time_point> due_;
    std::optional<std::chrono::steady_clock::time_point> empty_since_;
    std::map<ObjectRef, std::string> claims_;  // object -> the file that declares it, as the last plan found
    bool busy_ = false;   // a reconciliation is running
    bool again_ = false;  // something changed while it ran
    std::map<std::string, FileState> files_;  // by path
    std::map<std::string, std::string> problems_;
    nlohmann::json persisted_;  // what the record holds
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace membrane::kernel
