// The CNI_* environment of one invocation, validated per command as the
// spec requires (SPEC.md "Parameters").
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "membrane/names.hpp"

namespace membrane::cni {

// GC and STATUS (spec 1.1) are recognised so that they can be refused with
// the right code: membrane-cni speaks up to 1.0.0.
enum class Command { Add, Del, Check, Version, Gc, Status };

struct Environment {
    Command command = Command::Version;
    std::string container_id;  // CNI_CONTAINERID
    std::string netns;         // CNI_NETNS (may be empty on DEL)
    std::string ifname;        // CNI_IFNAME
    std::string args;          // CNI_ARGS, unparsed
    std::string path;          // CNI_PATH
};

// Returns the variable's value, or nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
EnvLookup process_environment();

// Throws CniError InvalidEnvironment (4) naming every missing or invalid
// variable. An unknown CNI_COMMAND is InvalidEnvironment too.
Environment read_environment(const EnvLookup& lookup);

// The spec's rule for CNI_CONTAINERID, exposed for tests: "" when valid,
// else why not. CNI_IFNAME: membrane::interface_name_problem (SDK).
std::string container_id_problem(const std::string& id);
using membrane::interface_name_problem;

const char* command_name(Command command);

}  // namespace membrane::cni
