// Socket programs (cgroup/connect4, sendmsg4, recvmsg4, getpeername4, ...)
// on a cgroup v2 folder, through bpf_links pinned on bpffs. A pinned link
// keeps the program attached while the agent is down; replacing the program
// in a link is one atomic update, so a module reload leaves no socket call
// untranslated; removing the pin detaches it.
#pragma once

#include <filesystem>
#include <string>

#include <bpf/bpf.h>

namespace membrane::kernel {

// The cgroup v2 folder socket programs attach to: `configured` if not empty
// (it must be a cgroup v2 folder), otherwise the cgroup v2 mount, i.e.
// /sys/fs/cgroup on a unified host or /sys/fs/cgroup/unified on a hybrid one.
// Throws BpfError saying what was looked at.
std::filesystem::path resolve_cgroup_root(const std::filesystem::path& configured);

// The name of a socket hook, "cgroup/connect4": libbpf's section name of the
// attach type. "" for an attach type that is no cgroup socket hook.
std::string socket_hook_name(bpf_attach_type type);

// Attaches `program_fd` at `type` on `cgroup` through the link pinned at
// `pin`. A link already pinned there on the same cgroup and hook gets the new
// program (atomic); otherwise a new link is made and pinned, then the old
// one unpinned (for a moment both run: no socket call goes untranslated).
// Throws BpfError.
void attach_cgroup_link(const std::filesystem::path& cgroup, bpf_attach_type type, int program_fd,
                        const std::filesystem::path& pin);

// Unpins the link: the program detaches once no one holds the link. false
// if nothing was pinned there.
bool detach_cgroup_link(const std::filesystem::path& pin);

}  // namespace membrane::kernel
