// The shapes of names that end up in file paths, pin folders and netlink
// requests. Checked once, when the config is read, so that nothing later has
// to escape them.
#pragma once

#include <string_view>

#include "membrane/names.hpp"

namespace membrane::kernel {

// Interface and module names: the SDK's validators (membrane/names.hpp),
// shared with membrane-cni and modules.
using membrane::is_interface_name;
using membrane::is_module_name;

// RFC 1123 label, lower case, 1..63: [a-z0-9]([a-z0-9-]*[a-z0-9])?
// (node_name names the pin folder <bpffs>/membrane/<node>/).
bool is_dns_label(std::string_view name);

// A label key: 1..253 of letters, digits and "._/-:" (':' separates a
// source, as in "k8s:app"). Endpoint labels and [identity] exclude_labels.
bool is_label_key(std::string_view key);

// "system", "session", or a D-Bus address ("unix:path=..."); never tcp.
bool is_dbus_bus(std::string_view bus);

// "tcp:..." or "nonce-tcp:...": SASL over TCP carries no uid the bus can
// vouch for, so the agent could not tell root from anyone; refused.
bool is_tcp_dbus_address(std::string_view bus);

// A Unix group name as groupadd accepts it: [a-z_][a-z0-9_-]*[$]?, 1..32.
bool is_group_name(std::string_view name);

}  // namespace membrane::kernel
