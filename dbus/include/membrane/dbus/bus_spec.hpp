// Which bus to talk on: "system", "session", or a D-Bus address such as
// "unix:path=/run/membrane/bus" (tests and the lab run a private dbus-daemon).
#pragma once

#include <memory>
#include <string>

#include <sdbus-c++/IConnection.h>

namespace membrane::dbus {

inline constexpr const char* kBusAddressEnv = "MEMBRANE_DBUS_ADDRESS";

// For messages: "the system bus", "the session bus", "the bus at <address>".
inline std::string describe_bus(const std::string& spec) {
    if (spec == "system" || spec == "session") return "the " + spec + " bus";
    return "the bus at " + spec;
}

// Opens the connection; throws sdbus::Error if the bus is unreachable.
inline std::unique_ptr<sdbus::IConnection> open_bus(const std::string& spec) {
    if (spec == "system") return sdbus::createSystemBusConnection();
    if (spec == "session") return sdbus::createSessionBusConnection();
    return sdbus::createSessionBusConnectionWithAddress(spec);
}

}  // namespace membrane::dbus
