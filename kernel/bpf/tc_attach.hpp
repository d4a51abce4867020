// tc clsact ingress filters for the entry programs (netlink through libbpf).
// Classic tc filters rather than tcx links so that any 5.x kernel works.
#pragma once

#include <string>

namespace membrane::kernel {

// Our filter always sits at this handle and priority, so a restarted agent
// finds and replaces its old filter atomically instead of stacking a second.
constexpr unsigned kTcHandle = 0x4d42;  // "MB"
constexpr unsigned kTcPriority = 1;     // first in the chain

// Creates the clsact qdisc if missing and puts `program_fd` on ingress,
// replacing our earlier filter. Throws BpfError naming the device.
void attach_tc_ingress(const std::string& ifname, int program_fd);

// Removes our ingress filter. Returns false if the device or the filter is
// already gone (nothing to do); throws BpfError on other failures. The clsact
// qdisc stays: other tools may have filters on it.
bool detach_tc_ingress(const std::string& ifname);

}  // namespace membrane::kernel
