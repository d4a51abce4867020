#include "bpf/cgroup_attach.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "bpf/bpf_error.hpp"
#include "bpf/unique_fd.hpp"
#include "membrane/bpf.hpp"

namespace membrane::kernel {
namespace {

bool is_cgroup2(const std::filesystem::path& folder) {
    struct statfs fs {};
    return ::statfs(folder.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

// The link pinned at `pin` if it is a cgroup link of `type` on `cgroup`.
UniqueFd matching_link(const std::filesystem::path& pin, const std::filesystem::path& cgroup, bpf_attach_type type) {
    UniqueFd link(bpf_obj_get(pin.c_str()));
    if (!link) return {};
    bpf_link_info info{};
    __u32 size = sizeof(info);
    if (bpf_obj_get_info_by_fd(link.get(), &info, &size) != 0 || info.type != BPF_LINK_TYPE_CGROUP) return {};
    struct stat folder {};
    if (::stat(cgroup.c_str(), &folder) != 0) return {};
    // A cgroup's id is its kernfs inode number.
    if (info.cgroup.cgroup_id != folder.st_ino || info.cgroup.attach_type != type) return {};
    return link;
}

}  // namespace

std::filesystem::path resolve_cgroup_root(const std::filesystem::path& configured) {
    if (!configured.empty()) {
        if (!is_cgroup2(configured)) {
            throw BpfError(fmt::format("[agent] cgroup_root {} is not a cgroup v2 folder (it must be on a cgroup2 "
                                       "mount, e.g. /sys/fs/cgroup or /sys/fs/cgroup/unified)",
                                       configured.string()));
        }
        return configured;
    }
    for (const char* candidate : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
        if (is_cgroup2(candidate)) return candidate;
    }
    throw BpfError("no cgroup v2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified for the socket programs; mount "
                   "one (mount -t cgroup2 none /sys/fs/cgroup/unified) or set [agent] cgroup_root");
}

std::string socket_hook_name(bpf_attach_type type) {
    switch (type) {
        case BPF_CGROUP_INET4_CONNECT: return "cgroup/connect4";
        case BPF_CGROUP_UDP4_SENDMSG: return "cgroup/sendmsg4";
        case BPF_CGROUP_UDP4_RECVMSG: return "cgroup/recvmsg4";
        case BPF_CGROUP_INET4_GETPEERNAME: return "cgroup/getpeername4";
        case BPF_CGROUP_INET4_BIND: return "cgroup/bind4";
        case BPF_CGROUP_INET_SOCK_CREATE: return "cgroup/sock_create";
        case BPF_CGROUP_INET_SOCK_RELEASE: return "cgroup/sock_release";
        default: return "";
    }
}

void attach_cgroup_link(const std::filesystem::path& cgroup, bpf_attach_type type, int program_fd,
                        const std::filesystem::path& pin) {
    const auto hook = socket_hook_name(type);
    if (auto link = matching_link(pin, cgroup, type)) {
        if (bpf_link_update(link.get(), program_fd, nullptr) != 0) {
            throw_bpf_error(fmt::format("cannot replace the program of {} on cgroup {}", hook, cgroup.string()), errno);
        }
        return;
    }
    UniqueFd folder(::open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!folder) throw_bpf_error(fmt::format("cannot open cgroup {}", cgroup.string()), errno);
    UniqueFd link(bpf_link_create(program_fd, folder.get(), type, nullptr));
    if (!link) throw_bpf_error(fmt::format("cannot attach {} to cgroup {}", hook, cgroup.string()), errno);

    std::error_code error;
    std::filesystem::create_directories(pin.parent_path(), error);
    // Pinned under a temporary name and renamed over the old pin: the old link
    // (another cgroup, after a config change) detaches only once the new one runs.
    // (bpffs refuses names with a dot.)
    const auto staging = pin.parent_path() / (pin.filename().string() + "_new");
    ::unlink(staging.c_str());
    if (bpf_obj_pin(link.get(), staging.c_str()) != 0) {
        throw_bpf_error(fmt::format("cannot pin the {} link at {}", hook, staging.string()), errno);
    }
    if (::rename(staging.c_str(), pin.c_str()) != 0) {
        const int err = errno;
        ::unlink(staging.c_str());
        throw_bpf_error(fmt::format("cannot pin the {} link at {}", hook, pin.string()), err);
    }
}

bool detach_cgroup_link(const std::filesystem::path& pin) {
    if (::unlink(pin.c_str()) == 0) return true;
    if (errno == ENOENT) return false;
    throw_bpf_error(fmt::format("cannot unpin the socket program link {}", pin.string()), errno);
}

}  // namespace membrane::kernel
