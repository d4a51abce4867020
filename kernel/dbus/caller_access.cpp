#include "dbus/caller_access.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string_view>
#include <vector>

#include <sdbus-c++/Error.h>

#include "dbus/dbus_errors.hpp"
#include "membrane/dbus/names.hpp"

namespace membrane::kernel {
namespace {

// org.membrane.Agent1 methods anyone may call, plus the standard interfaces
// sd-bus answers itself (they never reach a handler). Keep in step with the
// reads the policy file (systemd/org.membrane.Agent1.conf) allows.
constexpr std::array<std::string_view, 9> kReadMethods = {
    "GetStatus", "ListModules", "GetEndpoint", "FindEndpoint", "ListEndpoints", "ListIdentities", "ListNodes",
    "GetStats", "ListObjects",
};

bool is_read(const sdbus::Message& call) {
    return call.getInterfaceName() == membrane::dbus::kAgentInterface &&
           std::find(kReadMethods.begin(), kReadMethods.end(), call.getMemberName()) != kReadMethods.end();
}

// The uid the bus daemon vouches for (from the socket's peer credentials at
// connect time; never from /proc, which a caller could race).
std::optional<uid_t> caller_uid(const sdbus::Message& call) {
    try {
        return call.getCredsUid();
    } catch (const sdbus::Error&) {
        return std::nullopt;
    }
}

std::vector<char> lookup_buffer() {
    const long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    return std::vector<char>(size > 0 ? static_cast<std::size_t>(size) * 4 : 16384);
}

}  // namespace

CallerAccess::CallerAccess(std::string admin_group) : admin_group_(std::move(admin_group)) {}

bool CallerAccess::is_admin(uid_t uid) const {
    if (uid == 0) return true;
    if (admin_group_.empty()) return false;
    // Membership of the user, as /etc/group (NSS) says: the primary group or
    // a listed member. Not the calling process's groups, which the bus does
    // not vouch for.
    auto pw_buffer = lookup_buffer();
    passwd pw{};
    passwd* user = nullptr;
    if (getpwuid_r(uid, &pw, pw_buffer.data(), pw_buffer.size(), &user) != 0 || !user) return false;
    auto gr_buffer = lookup_buffer();
    group gr{};
    group* admins = nullptr;
    if (getgrnam_r(admin_group_.c_str(), &gr, gr_buffer.data(), gr_buffer.size(), &admins) != 0 || !admins)
        return false;
    if (user->pw_gid == admins->gr_gid) return true;
    for (char** member = admins->gr_mem; member && *member; ++member)
        if (std::string_view(*member) == user->pw_name) return true;
    return false;
}

bool CallerAccess::is_admin(const sdbus::Message& call) const {
    const auto uid = caller_uid(call);
    return uid && is_admin(*uid);
}

void CallerAccess::check(const sdbus::Message& call) const {
    if (is_read(call)) return;
    const auto uid = caller_uid(call);
    if (uid && is_admin(*uid)) return;
    const std::string who = uid ? "uid " + std::to_string(*uid) : "a caller whose uid the bus does not tell";
    const std::string allowed = admin_group_.empty() ? "root only" : "root and group '" + admin_group_ + "' only";
    throw sdbus::Error(dbus_error_name("AccessDenied"),
                       call.getMemberName() + ": " + who + " may not change the agent (" + allowed + ")");
}

}  // namespace membrane::kernel
