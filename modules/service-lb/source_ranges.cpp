#include "source_ranges.hpp"

#include "ipv4.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>

#include <membrane/bpf.hpp>
#include <membrane/policy_parse.hpp>

extern "C" {
#include "bpf/lb_maps.h"
}

namespace membrane::service_lb {
namespace {

service_lb_source_range_key key_of(const SourceRanges::Entry& entry) {
    const auto& [address, port, protocol, network, length] = entry;
    service_lb_source_range_key key{};
    key.prefixlen = SERVICE_LB_SOURCE_RANGE_FRONTEND_BITS + length;
    key.address = address;
    key.port = htons(port);
    key.protocol = protocol;
    key.source = network;
    return key;
}

std::string describe(const SourceRanges::Entry& entry) {
    const auto& [address, port, protocol, network, length] = entry;
    return "source range " + ipv4_text(network) + "/" + std::to_string(length) + " of " + ipv4_text(address) + ":" +
           std::to_string(port);
}

}  // namespace

SourceRanges::SourceRanges(int fd) : fd_(fd) {
    service_lb_source_range_key key{};
    service_lb_source_range_key next{};
    const void* previous = nullptr;
    while (bpf_map_get_next_key(fd_, previous, &next) == 0) {
        held_.insert({next.address, ntohs(next.port), next.protocol, next.source,
                      static_cast<std::uint8_t>(next.prefixlen - SERVICE_LB_SOURCE_RANGE_FRONTEND_BITS)});
        key = next;
        previous = &key;
    }
}

std::set<SourceRanges::Entry> SourceRanges::entries_of(const Frontend& frontend) {
    std::set<Entry> out;
    // An entry serves both scopes of the address (a pod's packets meet it too when socket LB is off).
    if (frontend.kind != FrontendKind::load_balancer) return out;
    const std::uint32_t address = ipv4_address(frontend.address);
    for (const auto& range : frontend.source_ranges) {
        // Checked when the Service was applied (service_parse.hpp), with the same reading.
        const auto cidr = policy::detail::parse_cidr(range, "loadBalancerSourceRanges");
        out.insert({address, frontend.port, static_cast<std::uint8_t>(frontend.protocol), htonl(cidr.address),
                    static_cast<std::uint8_t>(cidr.prefix)});
    }
    return out;
}

void SourceRanges::want(const std::set<std::string>& services, const std::vector<Frontend>& frontends) {
    std::map<std::string, std::set<Entry>> wanted;
    for (const auto& service : services) wanted[service];
    for (const auto& frontend : frontends) {
        auto entries = entries_of(frontend);
        wanted[frontend.service].merge(entries);
    }
    for (const auto& [service, entries] : wanted) {
        for (const auto& entry : entries) {
            if (held_.contains(entry)) continue;
            const auto key = key_of(entry);
            const std::uint8_t allowed = 1;
            if (bpf_map_update_elem(fd_, &key, &allowed, BPF_ANY) != 0) {
                throw BpfError("cannot write " + describe(entry) + ": " + std::strerror(errno));
            }
            held_.insert(entry);
        }
    }
    for (auto& [service, entries] : wanted) {
        if (entries.empty()) {
            wanted_.erase(service);
        } else {
            wanted_[service] = std::move(entries);
        }
    }
}

void SourceRanges::want_all(const std::vector<Frontend>& frontends) {
    std::set<std::string> services;
    for (const auto& [service, entries] : wanted_) services.insert(service);
    for (const auto& frontend : frontends) services.insert(frontend.service);
    want(services, frontends);
}

std::vector<std::string> SourceRanges::held_for(std::uint32_t address, std::uint16_t port, std::uint8_t protocol) const {
    std::vector<std::string> out;
    for (auto it = held_.lower_bound({address, port, protocol, 0, 0});
         it != held_.end() && std::get<0>(*it) == address && std::get<1>(*it) == port && std::get<2>(*it) == protocol;
         ++it) {
        out.push_back(ipv4_text(std::get<3>(*it)) + "/" + std::to_string(std::get<4>(*it)));
    }
    return out;
}

void SourceRanges::prune() {
    std::set<Entry> needed;
    for (const auto& [service, entries] : wanted_) needed.insert(entries.begin(), entries.end());
    for (auto it = held_.begin(); it != held_.end();) {
        if (needed.contains(*it)) {
            ++it;
            continue;
        }
        const auto key = key_of(*it);
        if (bpf_map_delete_elem(fd_, &key) != 0 && errno != ENOENT) {
            throw BpfError("cannot delete " + describe(*it) + ": " + std::strerror(errno));
        }
        it = held_.erase(it);
    }
}

}  // namespace membrane::service_lb
