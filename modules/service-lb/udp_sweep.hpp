// The agent's half of the UDP sweep (bpf/udp_sweep.bpf.c): runs the
// iterator in each network namespace of the node, so connected UDP sockets
// whose backend was removed are destroyed and their clients connect anew.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace membrane::service_lb {

struct SweptSocket {
    std::string service;  // "10.96.0.10:53"
    std::string backend;  // "10.10.1.5:7002"
    int result = 0;       // bpf_sock_destroy(): 0, or a negative errno
};

struct SweepReport {
    std::size_t namespaces = 0;           // swept
    std::vector<SweptSocket> sockets;     // found on a removed backend
    std::vector<std::string> errors;      // namespaces that could not be swept, and why
};

class UdpSweep {
public:
    // `program_fd`: the loaded lb_sweep_udp. Throws membrane::BpfError if the
    // kernel refuses its iterator link.
    explicit UdpSweep(int program_fd);
    ~UdpSweep();
    UdpSweep(const UdpSweep&) = delete;
    UdpSweep& operator=(const UdpSweep&) = delete;

    // Sweeps the agent's own network namespace and each of `netns_paths`
    // (endpoints' CNI_NETNS; one namespace named twice is swept once).
    // Enters them on a thread of its own, so the caller's stays where it is.
    SweepReport sweep(const std::vector<std::string>& netns_paths) const;

private:
    int link_fd_;
};

}  // namespace membrane::service_lb
