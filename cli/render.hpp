// How membranectl prints results: aligned tables for people, JSON for scripts.
#pragma once

#include <cstdint>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace membrane::cli {

enum class OutputFormat { Table, Json };

// The array at `key` of a reply object; an empty array when it is missing or not an array.
const nlohmann::json& list_in(const nlohmann::json& object, const char* key);

// Columns padded to their widest cell; the last column is not padded.
void print_table(std::ostream& out, const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows);

void print_status(std::ostream& out, const nlohmann::json& status, OutputFormat format);
// `kvstore status`: the cluster store's part of GetStatus, in detail.
void print_kvstore(std::ostream& out, const nlohmann::json& status, OutputFormat format);
void print_modules(std::ostream& out, const nlohmann::json& modules, OutputFormat format);
// One row per endpoint (container id shortened to 12 characters).
void print_endpoints(std::ostream& out, const nlohmann::json& endpoints, OutputFormat format);
// One endpoint, every field; then its "policy" (endpoint_policy) when it has one.
void print_endpoint(std::ostream& out, const nlohmann::json& endpoint, OutputFormat format);

// The "policy" of `endpoint get ID`: the network-policy enforcement of
// endpoint `id`, from policy-l3l4's Status reply:
// {"module": "running", "enforcement": mode, "ingress_enforced", "egress_enforced",
//  "policies": [the refs selecting it], "rules": its datapath rules, "datapath_error": "" or why
//  the maps may not match the policies}. An endpoint the reply does not list
// (made after it) has a "message" in place of its four fields.
nlohmann::json endpoint_policy(const nlohmann::json& status, std::uint64_t id);
// The same when policy-l3l4 is not running on the node: {"module": "not running",
// "ingress_enforced": null, "egress_enforced": null (unknown: never loaded, nothing is enforced;
// unloaded or quarantined, its stages drop), "policies": [], "rules": 0, "message": why}.
nlohmann::json endpoint_policy_not_running(const std::string& why);
// The same when its Status could not be read: {"module": "unknown", "message": why}.
nlohmann::json endpoint_policy_unknown(const std::string& why);
void print_identities(std::ostream& out, const nlohmann::json& identities, OutputFormat format);
void print_nodes(std::ostream& out, const nlohmann::json& nodes, OutputFormat format);
// What an apply did, one line per object as kubectl says it ("namespace/shop created").
void print_applied(std::ostream& out, const nlohmann::json& outcomes, OutputFormat format);
// Objects: NAMESPACE (for namespaced kinds), NAME, LABELS, or the documents as JSON.
void print_objects(std::ostream& out, const nlohmann::json& documents, OutputFormat format);
// {name: packets}: json as is, a table REASON / PACKETS for people.
void print_stats(std::ostream& out, const nlohmann::ordered_json& stats, OutputFormat format);

// `policy list`, from policy-l3l4's Status reply: a line of totals, one row per
// endpoint of this node (ENDPOINT, ADDRESS, IDENTITY, INGRESS, EGRESS, RULES,
// POLICIES), then "warning: ..." lines and an "error: ..." line for a
// datapath that does not hold the rules. json: the reply as is.
void print_policy_list(std::ostream& out, const nlohmann::json& status, OutputFormat format);

// `policy get NAME`: no policy, or several, answer to the name.
class PolicyNotFound : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The policy of a Status reply that `name` names: its whole ref
// ("CiliumNetworkPolicy shop/web"), "NAMESPACE/NAME" or "NAME".
// {"policy": ref, "endpoints": [the Status entries of those it selects],
//  "rules": [its Status rule entries]}. Throws PolicyNotFound.
nlohmann::json select_policy(const nlohmann::json& status, const std::string& name);
// What select_policy found: the ref, its endpoints, its rules.
void print_policy(std::ostream& out, const nlohmann::json& selected, OutputFormat format);

}  // namespace membrane::cli
