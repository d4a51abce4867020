#include "cni_error.hpp"

namespace membrane::cni {

nlohmann::json error_json(const CniError& error, const std::string& cni_version) {
    nlohmann::json out = {{"cniVersion", cni_version}, {"code", static_cast<int>(error.code())}, {"msg", error.msg()}};
    if (!error.details().empty()) out["details"] = error.details();
    return out;
}

}  // namespace membrane::cni
