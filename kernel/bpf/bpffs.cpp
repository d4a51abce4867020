#include "bpf/bpffs.hpp"

#include <sys/mount.h>
#include <sys/statfs.h>

#include <cerrno>

#include <fmt/format.h>
#include <linux/magic.h>

#include "bpf/bpf_error.hpp"

namespace membrane::kernel {

bool is_bpffs(const std::filesystem::path& path) {
    struct statfs info {};
    return ::statfs(path.c_str(), &info) == 0 && static_cast<unsigned long>(info.f_type) == BPF_FS_MAGIC;
}

bool ensure_bpffs(const std::filesystem::path& root, spdlog::logger& log) {
    if (is_bpffs(root)) return false;

    std::error_code error;
    std::filesystem::create_directories(root, error);
    if (error) throw BpfError(fmt::format("cannot create bpffs root {}: {}", root.string(), error.message()));
    if (!std::filesystem::is_empty(root, error) || error) {
        throw BpfError(fmt::format("{} is not a bpf filesystem and not an empty folder; mount bpffs there "
                                   "(mount -t bpf bpf {}) or choose another agent.bpffs_root",
                                   root.string(), root.string()));
    }
    if (::mount("bpf", root.c_str(), "bpf", 0, "mode=0700") != 0) {
        throw_bpf_error(fmt::format("cannot mount a bpf filesystem on {}", root.string()), errno);
    }
    log.info("mounted a bpf filesystem on {} (it was not one)", root.string());
    return true;
}

}  // namespace membrane::kernel
