#include "dbus/dbus_errors.hpp"

#include <exception>

#include "agent/agent_control.hpp"
#include "membrane/dbus/names.hpp"

namespace membrane::kernel {

const char* control_error_name(ControlErrorKind kind) {
    switch (kind) {
        case ControlErrorKind::NotFound: return "NotFound";
        case ControlErrorKind::AlreadyLoaded: return "AlreadyLoaded";
        case ControlErrorKind::AbiMismatch: return "AbiMismatch";
        case ControlErrorKind::StartFailed: return "StartFailed";
        case ControlErrorKind::InvalidArgument: return "InvalidArgument";
        case ControlErrorKind::NeedsForce: return "NeedsForce";
        case ControlErrorKind::Unavailable: return "Unavailable";
        case ControlErrorKind::Failed: return "Failed";
    }
    return "Failed";
}

std::string dbus_error_name(const char* kind) { return std::string(membrane::dbus::kErrorPrefix) + kind; }

sdbus::Error current_exception_as_dbus_error(const std::string& fallback_error) {
    try {
        throw;
    } catch (const sdbus::Error& e) {
        return e;
    } catch (const ControlError& e) {
        return sdbus::Error(dbus_error_name(control_error_name(e.kind())), e.what());
    } catch (const std::exception& e) {
        return sdbus::Error(fallback_error, e.what());
    } catch (...) {
        return sdbus::Error(fallback_error, "unknown exception");
    }
}

}  // namespace membrane::kernel
