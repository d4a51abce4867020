// Turns what a handler throws into the named D-Bus error the caller sees.
// sdbus-c++ answers only sdbus::Error thrown from a callback; anything else
// must never cross into sd-bus's C code.
#pragma once

#include <string>

#include <sdbus-c++/Error.h>

namespace membrane::kernel {

// "org.membrane.Error.<Kind>" for a ControlErrorKind name such as "NotFound".
std::string dbus_error_name(const char* kind);

// Call inside a catch block: the current exception as an sdbus::Error.
// ControlError -> org.membrane.Error.<Kind>, sdbus::Error -> as is,
// anything else -> `fallback_error` with its message.
sdbus::Error current_exception_as_dbus_error(const std::string& fallback_error);

}  // namespace membrane::kernel
