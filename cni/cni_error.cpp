#include "cni_error.hpp"

namespace membrane::cni {

nlohmann::json error_json(const CniError& error, const std::string& cni_version) {
    nlohmann::json out = {{"cniVersion", cni_version}, {"code", static_cast<int>(error.code())}, {"msg", error.msg()}};
    if (!error.details().empty()) out["details"] = error.details();
    return out;
}

std::string runtime_text(const nlohmann::json& answer) {
    return answer.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace membrane::cni
