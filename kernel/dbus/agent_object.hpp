// The object /org/membrane/Agent1: the generated adaptor's methods answered
// from AgentControl (modules) and EndpointControl (endpoints, identities,
// nodes), failures turned into org.membrane.Error.<Kind>. Every call passes
// CallerAccess first; endpoint reads hide container ids and netns paths from
// callers who are not admins.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "agent/agent_control.hpp"
#include "dbus/caller_access.hpp"
#include "membrane/dbus/agent1_adaptor.hpp"
#include "membrane/dbus/model_codec.hpp"

namespace membrane::kernel {

class AgentObject final : public sdbus::AdaptorInterfaces<::org::membrane::Agent1_adaptor> {
public:
    AgentObject(sdbus::IConnection& connection, AgentControl& control, EndpointControl& endpoints,
                const CallerAccess& access);
    ~AgentObject();
    AgentObject(const AgentObject&) = delete;
    AgentObject& operator=(const AgentObject&) = delete;

private:
    using ModuleEntry = sdbus::Struct<std::string, std::string, std::uint64_t, std::string, std::string, std::string,
                                      std::vector<std::uint32_t>>;

    std::map<std::string, sdbus::Variant> GetStatus() override;
    std::vector<ModuleEntry> ListModules() override;
    std::vector<sdbus::Struct<std::string, std::uint64_t>> GetStats() override;
    std::tuple<std::uint64_t, std::uint64_t, std::vector<membrane::dbus::Dictionary>> GetFlows(
        const std::uint64_t& after, const std::uint32_t& max) override;
    std::tuple<membrane::dbus::Dictionary, std::vector<membrane::dbus::Dictionary>> TracePacket(
        const std::string& from, const std::string& to, const std::string& protocol, const std::uint16_t& port) override;
    void LoadModule(const std::string& name) override;
    void UnloadModule(const std::string& name, const bool& force) override;
    void ReloadModule(const std::string& name) override;

    using Dictionary = membrane::dbus::Dictionary;
    Dictionary AllocateAddress(const std::string& container_id, const std::string& ifname) override;
    void ReleaseAddress(const std::string& container_id, const std::string& ifname) override;
    void CreateEndpoint(sdbus::Result<Dictionary>&& result, Dictionary request) override;
    void DeleteEndpoint(const std::string& container_id, const std::string& ifname) override;
    Dictionary GetEndpoint(const std::uint64_t& id) override;
    Dictionary FindEndpoint(const std::string& container_id, const std::string& ifname) override;
    std::vector<Dictionary> ListEndpoints() override;
    void SetEndpointLabels(sdbus::Result<Dictionary>&& result, std::uint64_t id,
                           std::map<std::string, std::string> labels) override;
    std::vector<membrane::dbus::IdentityEntry> ListIdentities() override;
    std::vector<membrane::dbus::NodeEntry> ListNodes() override;

    using OutcomeEntry = sdbus::Struct<std::string, std::string, std::string, std::string>;
    void Apply(sdbus::Result<std::vector<OutcomeEntry>>&& result, std::string source, std::string manifests) override;
    void DeleteObject(sdbus::Result<>&& result, std::string kind, std::string namespace_, std::string name) override;
    std::vector<std::string> ListObjects(const std::string& kind, const std::string& namespace_,
                                         const std::string& name) override;

    // The call being answered (its sender's credentials decide access).
    const sdbus::Message& current_call() const;
    // Runs one control call after the access check; whatever it throws
    // leaves as a named D-Bus error.
    template <class Call>
    auto answer(Call&& call);
    // An endpoint change whose labels may need a cluster-wide identity first:
    // the caller is checked now, `change` runs once prepare_identity is done,
    // and the reply goes out then (the loop serves others meanwhile).
    template <class Change>
    void answer_after_identity(sdbus::Result<Dictionary>&& result, const membrane::Labels& labels, Change change);
    // A call answered later: the caller checked now, the reply held in
    // `pending` (answered with an error if this object goes first), and
    // `start(answer)` run; answer(fill) sends it once, fill(reply) giving
    // the results or throwing the error.
    template <class Result, class Start>
    void answer_later(std::map<std::uint64_t, Result>& pending, Result&& result, Start start);
    membrane::dbus::Dictionary endpoint_reply(const membrane::EndpointInfo& endpoint) const;

    AgentControl& control_;
    EndpointControl& endpoints_;
    // Calls waiting for an identity. Each is answered by its callback, or
    // with an error when this object goes (agent stopping, bus lost), so no
    // reply outlives the connection it belongs to.
    std::map<std::uint64_t, sdbus::Result<Dictionary>> pending_;
    std::map<std::uint64_t, sdbus::Result<std::vector<OutcomeEntry>>> pending_applies_;
    std::map<std::uint64_t, sdbus::Result<>> pending_deletes_;
    std::uint64_t next_pending_ = 0;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    const CallerAccess& access_;
};

}  // namespace membrane::kernel
