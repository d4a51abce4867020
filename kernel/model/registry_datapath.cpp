#include "model/registry_datapath.hpp"

namespace membrane::kernel {

int RegistryDatapath::endpoints_map() { return registry_.core_map_fd(MBR_MAP_ENDPOINTS); }
int RegistryDatapath::ipcache_map() { return registry_.core_map_fd(MBR_MAP_IPCACHE); }

void RegistryDatapath::attach_endpoint(const std::string& host_ifname) {
    registry_.attach_device(host_ifname, MBR_ENTRY_FROM_ENDPOINT);
}

void RegistryDatapath::detach_endpoint(const std::string& host_ifname) { registry_.detach_device(host_ifname); }

}  // namespace membrane::kernel
