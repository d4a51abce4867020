// The D-Bus shapes of the control plane's kernel-side types: the lease
// AllocateAddress returns and the request CreateEndpoint takes (keys in
// membrane/dbus/model_codec.hpp, documented in org.membrane.Agent1.xml).
#pragma once

#include "agent/agent_control.hpp"
#include "membrane/dbus/model_codec.hpp"

namespace membrane::kernel {

membrane::dbus::Dictionary lease_to_dictionary(const AddressLease& lease);

// Required: container_id, ifname, netns, host_ifname, address, mac (s);
// optional: labels (a{ss}). A missing, mistyped or unknown key throws
// ControlError(InvalidArgument) naming the key.
EndpointRequest request_from_dictionary(const membrane::dbus::Dictionary& request);

}  // namespace membrane::kernel
