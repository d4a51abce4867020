// A client of org.membrane.Agent1 through the proxy generated from the XML,
// on its own connection (sdbus-c++ runs that connection's loop in a thread,
// so the ModuleStateChanged and EndpointChanged signals arrive while the
// test waits).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "membrane/dbus/agent1_proxy.hpp"
#include "membrane/dbus/names.hpp"

namespace membrane::test {

struct StateSignal {
    std::string module, state, message;
};

struct EndpointSignal {
    std::uint64_t id = 0;
    std::string change;
};

class AgentProxy final : public sdbus::ProxyInterfaces<::org::membrane::Agent1_proxy> {
public:
    explicit AgentProxy(const std::string& address)
        : ProxyInterfaces(sdbus::createSessionBusConnectionWithAddress(address), membrane::dbus::kServiceName,
                          membrane::dbus::kAgentObjectPath) {
        registerProxy();
    }
    ~AgentProxy() { unregisterProxy(); }

    // Waits until `count` signals arrived; returns them.
    std::vector<StateSignal> wait_for_signals(std::size_t count, std::chrono::seconds timeout = std::chrono::seconds(10)) {
        std::unique_lock lock(mutex_);
        arrived_.wait_for(lock, timeout, [&] { return signals_.size() >= count; });
        return signals_;
    }

    // Waits until `count` EndpointChanged signals arrived; returns them.
    std::vector<EndpointSignal> wait_for_endpoint_signals(std::size_t count,
                                                          std::chrono::seconds timeout = std::chrono::seconds(10)) {
        std::unique_lock lock(mutex_);
        arrived_.wait_for(lock, timeout, [&] { return endpoint_signals_.size() >= count; });
        return endpoint_signals_;
    }

private:
    void onEndpointChanged(const std::uint64_t& id, const std::string& change) override {
        std::lock_guard lock(mutex_);
        endpoint_signals_.push_back({id, change});
        arrived_.notify_all();
    }

    void onModuleStateChanged(const std::string& module, const std::string& state, const std::string& message) override {
        std::lock_guard lock(mutex_);
        signals_.push_back({module, state, message});
        arrived_.notify_all();
    }

    std::mutex mutex_;
    std::condition_variable arrived_;
    std::vector<StateSignal> signals_;
    std::vector<EndpointSignal> endpoint_signals_;
};

}  // namespace membrane::test
