#include "model/datapath_maps.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cerrno>
#include <system_error>

namespace membrane::kernel {
namespace {

mbr_endpoint_key endpoint_key(std::uint32_t ipv4) { return mbr_endpoint_key{htonl(ipv4)}; }
mbr_ipcache_key ipcache_key(const Ipv4Cidr& prefix) { return mbr_ipcache_key{prefix.prefix_len, htonl(prefix.network)}; }

[[noreturn]] void fail(int error, const std::string& what) {
    throw std::system_error(error, std::generic_category(), what);
}

template <class Key>
std::vector<Key> all_keys(int map_fd, const char* map) {
    std::vector<Key> keys;
    Key key{};
    Key next{};
    const Key* previous = nullptr;  // null: start at the first key
    while (true) {
        const int err = bpf_map_get_next_key(map_fd, previous, &next);
        if (err != 0) {
            if (errno == ENOENT) break;
            fail(errno, std::string("cannot list ") + map);
        }
        keys.push_back(next);
        key = next;
        previous = &key;
    }
    return keys;
}

}  // namespace

mbr_ipcache_value ipcache_value(std::uint32_t identity, std::uint32_t tunnel_endpoint) {
    mbr_ipcache_value value{};
    value.identity = identity;
    value.tunnel_endpoint = htonl(tunnel_endpoint);
    return value;
}

void put_endpoint_entry(int map_fd, std::uint32_t ipv4, const mbr_endpoint_value& value) {
    const auto key = endpoint_key(ipv4);
    if (bpf_map_update_elem(map_fd, &key, &value, BPF_ANY) != 0) {
        fail(errno, std::string("cannot write ") + MBR_MAP_ENDPOINTS + " entry " + format_ipv4(ipv4));
    }
}

bool delete_endpoint_entry(int map_fd, std::uint32_t ipv4) {
    const auto key = endpoint_key(ipv4);
    if (bpf_map_delete_elem(map_fd, &key) == 0) return true;
    if (errno == ENOENT) return false;
    fail(errno, std::string("cannot delete ") + MBR_MAP_ENDPOINTS + " entry " + format_ipv4(ipv4));
}

std::vector<std::uint32_t> endpoint_entry_addresses(int map_fd) {
    std::vector<std::uint32_t> out;
    for (const auto& key : all_keys<mbr_endpoint_key>(map_fd, MBR_MAP_ENDPOINTS)) out.push_back(ntohl(key.ip4));
    return out;
}

void put_ipcache_entry(int map_fd, const Ipv4Cidr& prefix, const mbr_ipcache_value& value) {
    const auto key = ipcache_key(prefix);
    if (bpf_map_update_elem(map_fd, &key, &value, BPF_ANY) != 0) {
        fail(errno, std::string("cannot write ") + MBR_MAP_IPCACHE + " entry " + prefix.str());
    }
}

bool delete_ipcache_entry(int map_fd, const Ipv4Cidr& prefix) {
    const auto key = ipcache_key(prefix);
    if (bpf_map_delete_elem(map_fd, &key) == 0) return true;
    if (errno == ENOENT) return false;
    fail(errno, std::string("cannot delete ") + MBR_MAP_IPCACHE + " entry " + prefix.str());
}

std::vector<Ipv4Cidr> ipcache_prefixes(int map_fd) {
    std::vector<Ipv4Cidr> out;
    for (const auto& key : all_keys<mbr_ipcache_key>(map_fd, MBR_MAP_IPCACHE)) {
        out.push_back(Ipv4Cidr{ntohl(key.ip4), static_cast<std::uint8_t>(key.prefixlen)});
    }
    return out;
}

std::size_t prune_endpoint_entries(int map_fd, const std::set<std::uint32_t>& keep) {
    std::size_t removed = 0;
    for (const auto address : endpoint_entry_addresses(map_fd)) {
        if (keep.count(address) == 0) removed += delete_endpoint_entry(map_fd, address);
    }
    return removed;
}

std::size_t prune_ipcache(int map_fd, const std::set<Ipv4Cidr>& keep) {
    std::size_t removed = 0;
    for (const auto& prefix : ipcache_prefixes(map_fd)) {
        if (keep.count(prefix) == 0) removed += delete_ipcache_entry(map_fd, prefix);
    }
    return removed;
}

}  // namespace membrane::kernel
