// Kernel settings of an interface, written under /proc/sys/net. Which
// namespace's settings /proc/sys/net shows is decided by the calling thread's
// network namespace, so call these inside Netns::run for the pod's.
#pragma once

#include <string>

namespace membrane::cni {

// net.ipv6.conf.<ifname>.disable_ipv6 = 1: the interface gets no IPv6
// address and sends no router solicitation, neighbour discovery or MLD (the
// datapath carries IPv4 only and drops the rest). Nothing to do on a kernel
// without IPv6. Throws CniError InterfaceSetup naming the setting.
void disable_ipv6(const std::string& ifname);

}  // namespace membrane::cni
