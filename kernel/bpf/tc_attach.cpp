#include "bpf/tc_attach.hpp"

#include <net/if.h>

#include <cerrno>

#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "bpf/bpf_error.hpp"

namespace membrane::kernel {

namespace {

bpf_tc_hook ingress_hook(int ifindex) {
    bpf_tc_hook hook{};
    hook.sz = sizeof(hook);
    hook.ifindex = ifindex;
    hook.attach_point = BPF_TC_INGRESS;
    return hook;
}

bpf_tc_opts our_filter(int program_fd, __u32 flags) {
    bpf_tc_opts opts{};
    opts.sz = sizeof(opts);
    opts.handle = kTcHandle;
    opts.priority = kTcPriority;
    opts.prog_fd = program_fd;
    opts.flags = flags;
    return opts;
}

}  // namespace

void attach_tc_ingress(const std::string& ifname, int program_fd) {
    const int ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
    if (ifindex == 0) throw_bpf_error(fmt::format("cannot attach to device {}", ifname), errno);

    bpf_tc_hook hook = ingress_hook(ifindex);
    // The clsact qdisc may exist already (ours from a previous run, or another tool's).
    if (const int err = bpf_tc_hook_create(&hook); err && err != -EEXIST) {
        throw_bpf_error(fmt::format("cannot create the clsact qdisc on {}", ifname), err);
    }
    bpf_tc_opts opts = our_filter(program_fd, BPF_TC_F_REPLACE);
    if (const int err = bpf_tc_attach(&hook, &opts); err) {
        throw_bpf_error(fmt::format("cannot attach the tc ingress filter on {}", ifname), err);
    }
}

bool detach_tc_ingress(const std::string& ifname) {
    const int ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
    if (ifindex == 0) return false;  // device gone: its filters went with it

    bpf_tc_hook hook = ingress_hook(ifindex);
    bpf_tc_opts opts = our_filter(0, 0);
    const int err = bpf_tc_detach(&hook, &opts);
    if (err == -ENOENT || err == -EINVAL || err == -ENODEV) return false;  // no clsact or no filter of ours
    if (err) throw_bpf_error(fmt::format("cannot detach the tc ingress filter on {}", ifname), err);
    return true;
}

}  // namespace membrane::kernel
