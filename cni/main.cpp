// membrane-cni: the CNI plugin of Membrane. A runtime runs it with the
// CNI_* environment and the network config on stdin; it answers on stdout
// (a result, nothing, or the spec's error JSON with a non-zero exit).
#include <iostream>
#include <iterator>
#include <string>

#include <sdbus-c++/Error.h>

#include "cni_error.hpp"
#include "cni_versions.hpp"
#include "commands.hpp"

namespace {

using namespace membrane::cni;

nlohmann::json run(const std::string& stdin_text) {
    const Environment env = read_environment(process_environment());
    if (env.command == Command::Version) return version_info_json(peek_cni_version(stdin_text));
    if (env.command == Command::Gc || env.command == Command::Status)
        throw CniError(ErrorCode::IncompatibleVersion,
                       std::string(command_name(env.command)) + " needs CNI spec 1.1.0; membrane-cni supports up to " +
                           kLatestVersion);

    Invocation in{env, parse_network_config(stdin_text), {}};
    in.labels = in.config.labels;
    for (const auto& [key, value] : parse_cni_args(env.args).labels()) in.labels[key] = value;

    switch (env.command) {
        case Command::Add:
            return in.config.prev_result ? add_chained(in) : add_primary(in);
        case Command::Del:
            del(in);
            return nullptr;
        case Command::Check:
            check(in);
            return nullptr;
        default:
            return nullptr;
    }
}

}  // namespace

int main() {
    // Errors are answered in the caller's version when we speak it.
    std::string version = kLatestVersion;
    // Every way out prints the spec's answer: an exception escaping main
    // would abort with nothing on stdout, and the runtime would get no error.
    try {
        const std::string stdin_text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
        if (const std::string asked = peek_cni_version(stdin_text); is_supported_version(asked)) version = asked;
        const nlohmann::json out = run(stdin_text);
        if (!out.is_null()) std::cout << runtime_text(out);
        return 0;
    } catch (const CniError& e) {
        std::cout << runtime_text(error_json(e, version));
    } catch (const sdbus::Error& e) {
        std::cout << runtime_text(
            error_json(CniError(ErrorCode::AgentRefused, "D-Bus failure: " + e.getMessage(), e.getName()), version));
    } catch (const std::exception& e) {
        std::cout << runtime_text(
            error_json(CniError(ErrorCode::Internal, std::string("internal error: ") + e.what()), version));
    } catch (...) {
        std::cout << runtime_text(error_json(CniError(ErrorCode::Internal, "internal error: unknown exception"), version));
    }
    return 1;
}
