// The Agent1 proxy for clients that make calls and listen to no signal
// (membranectl, membrane-cni: no event loop runs in them).
#pragma once

#include <cstdint>
#include <string>

#include <sdbus-c++/sdbus-c++.h>

#include "membrane/dbus/agent1_proxy.hpp"
#include "membrane/dbus/names.hpp"

namespace membrane::dbus {

class AgentProxy final : public sdbus::ProxyInterfaces<::org::membrane::Agent1_proxy> {
public:
    explicit AgentProxy(sdbus::IConnection& connection)
        : ProxyInterfaces(connection, kServiceName, kAgentObjectPath) {}
    ~AgentProxy() = default;

private:
    void onModuleStateChanged(const std::string&, const std::string&, const std::string&) override {}
    void onEndpointChanged(const std::uint64_t&, const std::string&) override {}
};

}  // namespace membrane::dbus
