// Who may do what on the D-Bus API, decided by the daemon itself from the
// caller's credentials: the bus policy file is a second fence, and a private
// or session bus has none. Reading is open to anyone; every other method
// (changing modules, endpoints, addresses, and every module's own methods)
// is for root and members of [dbus] admin_group only. The list of reads is
// the only list: a method added later is admin-only until it is put there.
#pragma once

#include <sys/types.h>

#include <string>

#include <sdbus-c++/Message.h>

namespace membrane::kernel {

class CallerAccess {
public:
    // `admin_group`: a group whose members may change the agent besides root;
    // empty for root only. Looked up at each call, so a group created or
    // changed later counts without a restart.
    explicit CallerAccess(std::string admin_group = {});

    // Throws sdbus::Error org.membrane.Error.AccessDenied, naming the method
    // and the caller's uid, unless `call` is a read or comes from an admin.
    void check(const sdbus::Message& call) const;
    // Whether the caller may see what is root-only in a read (container ids,
    // netns paths). False when the credentials cannot be read.
    bool is_admin(const sdbus::Message& call) const;
    bool is_admin(uid_t uid) const;

private:
    std::string admin_group_;
};

}  // namespace membrane::kernel
