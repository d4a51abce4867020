#include "cni_environment.hpp"

#include <cctype>
#include <cstdlib>
#include <vector>

#include "cni_error.hpp"
#include "utf8.hpp"

namespace membrane::cni {
namespace {

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
}

}  // namespace

EnvLookup process_environment() {
    return [](const char* name) -> std::optional<std::string> {
        if (const char* value = std::getenv(name)) return std::string(value);
        return std::nullopt;
    };
}

const char* command_name(Command command) {
    switch (command) {
        case Command::Add: return "ADD";
        case Command::Del: return "DEL";
        case Command::Check: return "CHECK";
        case Command::Version: return "VERSION";
        case Command::Gc: return "GC";
        case Command::Status: return "STATUS";
    }
    return "?";
}

std::string container_id_problem(const std::string& id) {
    if (id.empty()) return "it is empty";
    if (!is_alnum(id.front())) return "it must start with a letter or digit";
    for (char c : id)
        if (!is_alnum(c) && c != '_' && c != '.' && c != '-')
            return "it contains " + describe_char(c) + " (allowed: letters, digits, '_', '.', '-')";
    return {};
}

Environment read_environment(const EnvLookup& raw_lookup) {
    // Every value ends up in JSON or on D-Bus, which both need UTF-8.
    auto lookup = [&](const char* name) {
        auto value = raw_lookup(name);
        if (value)
            if (auto why = invalid_utf8_problem(*value); !why.empty())
                throw CniError(ErrorCode::InvalidEnvironment, std::string(name) + " is not valid UTF-8: " + why);
        return value;
    };
    Environment env;
    const auto command = lookup("CNI_COMMAND");
    if (!command || command->empty())
        throw CniError(ErrorCode::InvalidEnvironment, "required environment variable CNI_COMMAND is not set");
    if (*command == "ADD") {
        env.command = Command::Add;
    } else if (*command == "DEL") {
        env.command = Command::Del;
    } else if (*command == "CHECK") {
        env.command = Command::Check;
    } else if (*command == "VERSION") {
        return env;  // VERSION takes no other parameter
    } else if (*command == "GC" || *command == "STATUS") {
        env.command = *command == "GC" ? Command::Gc : Command::Status;
        return env;  // refused later, in the caller's cniVersion
    } else {
        throw CniError(ErrorCode::InvalidEnvironment, "unknown CNI_COMMAND '" + *command + "'",
                       "membrane-cni supports ADD, DEL, CHECK and VERSION (GC and STATUS need spec 1.1.0)");
    }

    // Required per command (the spec: CNI_NETNS is optional for DEL).
    std::vector<std::string> missing;
    auto take = [&](const char* name, std::string& into, bool required) {
        const auto value = lookup(name);
        if (value) into = *value;
        if (required && into.empty()) missing.push_back(name);
    };
    take("CNI_CONTAINERID", env.container_id, true);
    take("CNI_NETNS", env.netns, env.command != Command::Del);
    take("CNI_IFNAME", env.ifname, true);
    take("CNI_PATH", env.path, true);
    take("CNI_ARGS", env.args, false);
    if (!missing.empty())
        throw CniError(ErrorCode::InvalidEnvironment,
                       std::string("required environment variable") + (missing.size() > 1 ? "s " : " ") +
                           join(missing) + (missing.size() > 1 ? " are" : " is") + " not set for " +
                           command_name(env.command));

    if (auto why = container_id_problem(env.container_id); !why.empty())
        throw CniError(ErrorCode::InvalidEnvironment, "invalid CNI_CONTAINERID: " + why, env.container_id);
    if (auto why = interface_name_problem(env.ifname); !why.empty())
        throw CniError(ErrorCode::InvalidEnvironment, "invalid CNI_IFNAME: " + why, env.ifname);
    return env;
}

}  // namespace membrane::cni
