// The object /org/membrane/Agent1: the generated adaptor's methods answered
// from AgentControl, failures turned into org.membrane.Error.<Kind>.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "agent/agent_control.hpp"
#include "membrane/dbus/agent1_adaptor.hpp"

namespace membrane::kernel {

class AgentObject final : public sdbus::AdaptorInterfaces<::org::membrane::Agent1_adaptor> {
public:
    AgentObject(sdbus::IConnection& connection, AgentControl& control);
    ~AgentObject();
    AgentObject(const AgentObject&) = delete;
    AgentObject& operator=(const AgentObject&) = delete;

private:
    using ModuleEntry = sdbus::Struct<std::string, std::string, std::uint64_t, std::string, std::string, std::string,
                                      std::vector<std::uint32_t>>;

    std::map<std::string, sdbus::Variant> GetStatus() override;
    std::vector<ModuleEntry> ListModules() override;
    void LoadModule(const std::string& name) override;
    void UnloadModule(const std::string& name) override;
    void ReloadModule(const std::string& name) override;

    AgentControl& control_;
};

}  // namespace membrane::kernel
