#include "dbus/control_codec.hpp"

#include <string>

namespace membrane::kernel {

namespace keys = membrane::dbus::keys;
using membrane::dbus::require;

membrane::dbus::Dictionary lease_to_dictionary(const AddressLease& lease) {
    return {
        {keys::kAddress, sdbus::Variant(lease.ipv4)},
        {keys::kPrefixLen, sdbus::Variant(lease.prefix_len)},
        {keys::kGateway, sdbus::Variant(lease.gateway)},
        {keys::kPodCidr, sdbus::Variant(lease.pod_cidr)},
        {keys::kMtu, sdbus::Variant(lease.mtu)},
    };
}

EndpointRequest request_from_dictionary(const membrane::dbus::Dictionary& dict) {
    try {
        membrane::dbus::reject_unknown_keys(dict, {keys::kContainerId, keys::kIfname, keys::kNetns, keys::kHostIfname,
                                                   keys::kAddress, keys::kMac, keys::kLabels, keys::kPorts});
        EndpointRequest request;
        request.container_id = require<std::string>(dict, keys::kContainerId);
        request.ifname = require<std::string>(dict, keys::kIfname);
        request.netns = require<std::string>(dict, keys::kNetns);
        request.host_ifname = require<std::string>(dict, keys::kHostIfname);
        request.ipv4 = require<std::string>(dict, keys::kAddress);
        request.mac = require<std::string>(dict, keys::kMac);
        request.labels = membrane::dbus::value_or<membrane::Labels>(dict, keys::kLabels, {});
        request.ports = membrane::dbus::ports_from_map(
            membrane::dbus::value_or<std::map<std::string, std::string>>(dict, keys::kPorts, {}));
        return request;
    } catch (const membrane::dbus::DictionaryError& e) {
        throw ControlError(ControlErrorKind::InvalidArgument, std::string("CreateEndpoint request: ") + e.what());
    }
}

}  // namespace membrane::kernel
