// A CNI failure as the spec reports it: a numeric code, a message and
// details, printed as JSON on stdout with a non-zero exit status.
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace membrane::cni {

// The spec's well-known codes (SPEC.md "Error"), and our own from 100 on
// (documented in cni/README.md).
enum class ErrorCode : int {
    IncompatibleVersion = 1,
    UnsupportedField = 2,
    ContainerUnknown = 3,
    InvalidEnvironment = 4,
    IoFailure = 5,
    DecodingFailure = 6,
    InvalidNetworkConfig = 7,
    TryAgainLater = 11,
    // Ours.
    AgentRefused = 100,      // the agent answered the request with an error
    InterfaceSetup = 101,    // creating or configuring the veth, addresses or routes failed
    NetnsUnusable = 102,     // CNI_NETNS exists but cannot be entered (not a network namespace)
    CheckMismatch = 103,     // CHECK found the pod's networking differing from prevResult
    PrevResultUnusable = 104,  // chained mode: prevResult lacks the address or the host interface
    Internal = 105,          // anything unexpected (a bug): the message says what
};

class CniError : public std::runtime_error {
public:
    CniError(ErrorCode code, std::string msg, std::string details = {})
        : std::runtime_error(msg), code_(code), msg_(std::move(msg)), details_(std::move(details)) {}
    ErrorCode code() const { return code_; }
    const std::string& msg() const { return msg_; }
    const std::string& details() const { return details_; }

private:
    ErrorCode code_;
    std::string msg_, details_;
};

// {"cniVersion", "code", "msg", "details"} ("details" only when not empty).
nlohmann::json error_json(const CniError& error, const std::string& cni_version);

// The text membrane-cni prints on stdout (a result or an error object).
// Never throws: a byte that is not UTF-8 (an echoed input, an exception's
// what()) is printed as U+FFFD instead of aborting the plugin, which would
// leave the runtime without an answer.
std::string runtime_text(const nlohmann::json& answer);

}  // namespace membrane::cni
