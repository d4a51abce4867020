// service_lb_source_ranges_v1 as the C++ half writes it: the
// loadBalancerSourceRanges of each load balancer address, one LPM entry per
// (frontend, range). The packet stage checks a connection's
// client against them when the frontend's slot 0 has SERVICE_LB_F_SOURCE_RANGES
// (LbMaps writes the flag), so entries come first and go last: want()
// before the frontends are written, prune() after. A frontend flagged with
// no entry yet drops (fails closed); an entry without the flag is unused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "service_table.hpp"

namespace membrane::service_lb {

class SourceRanges {
public:
    // Reads what the map holds: nothing is deleted before a prune().
    explicit SourceRanges(int fd);

    // The entries the frontends of the named services need (a service named
    // without frontends needs none), written now. Throws membrane::BpfError
    // when the map is full (the map keeps what it had).
    void want(const std::set<std::string>& services, const std::vector<Frontend>& frontends);
    // The same for every service: `frontends` are all of them.
    void want_all(const std::vector<Frontend>& frontends);
    // Deletes the entries no service needs any more.
    void prune();

    std::size_t size() const { return held_.size(); }
    // The ranges ("192.0.2.0/24") the map holds for a frontend (address in network order).
    std::vector<std::string> held_for(std::uint32_t address, std::uint16_t port, std::uint8_t protocol) const;

    // (frontend address, port, protocol, range network, range length), addresses in network order.
    using Entry = std::tuple<std::uint32_t, std::uint16_t, std::uint8_t, std::uint32_t, std::uint8_t>;
    // The entries a frontend needs: none unless it is a load balancer
    // address with ranges (either scope: the entries are the same). Throws on a range that is not an IPv4 CIDR.
    static std::set<Entry> entries_of(const Frontend& frontend);

private:
    int fd_;
    std::set<Entry> held_;                                // what the map holds
    std::map<std::string, std::set<Entry>> wanted_;       // service -> the entries its frontends need
};

}  // namespace membrane::service_lb
