// Entering a pod's network namespace without ever moving the process: the
// work runs on a dedicated thread that setns()es and then exits, so the
// main thread (and the D-Bus connection) stays in the node's namespace.
#pragma once

#include <functional>
#include <string>

namespace membrane::cni {

class Netns {
public:
    // Throws CniError: ContainerUnknown (3) when the path does not exist,
    // NetnsUnusable (102) when it is not a network namespace.
    explicit Netns(const std::string& path);
    ~Netns();
    Netns(const Netns&) = delete;
    Netns& operator=(const Netns&) = delete;

    int fd() const { return fd_; }
    const std::string& path() const { return path_; }

    // Runs `work` inside the namespace and rethrows what it threw.
    void run(const std::function<void()>& work) const;

    // Whether `path` names an existing network namespace (DEL's tolerance).
    static bool exists(const std::string& path);

private:
    std::string path_;
    int fd_ = -1;
};

}  // namespace membrane::cni
