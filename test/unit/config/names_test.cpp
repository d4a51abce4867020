#include <gtest/gtest.h>

#include "config/names.hpp"

namespace membrane::kernel {
namespace {

TEST(Names, DnsLabel) {
    for (auto ok : {"a", "node-1", "0", "a0-b1", "ip-10-0-0-1"}) EXPECT_TRUE(is_dns_label(ok)) << ok;
    for (auto bad : {"", "-a", "a-", "A", "a_b", "a.b", "a b"}) EXPECT_FALSE(is_dns_label(bad)) << bad;
}

TEST(Names, InterfaceName) {
    for (auto ok : {"eth0", "lo", "ens5.100", "veth_a-1", "123456789012345", "@x"}) EXPECT_TRUE(is_interface_name(ok)) << ok;
    for (auto bad : {"", ".", "..", "1234567890123456", "a/b", "a:b", "a b", "a\tb", "a\nb"}) {
        EXPECT_FALSE(is_interface_name(bad)) << bad;
    }
}

TEST(Names, ModuleName) {
    for (auto ok : {"counter", "policy-l4", "1x", "a"}) EXPECT_TRUE(is_module_name(ok)) << ok;
    for (auto bad : {"", "-x", "Counter", "a_b", "a.b", "a/b"}) EXPECT_FALSE(is_module_name(bad)) << bad;
    EXPECT_TRUE(is_module_name(std::string(48, 'a')));
    EXPECT_FALSE(is_module_name(std::string(49, 'a'))) << "one limit for the config and the module host";
}

TEST(Names, DbusBus) {
    for (auto ok : {"system", "session", "unix:path=/run/x/bus", "unix:abstract=x"}) EXPECT_TRUE(is_dbus_bus(ok)) << ok;
    for (auto bad : {"", "System", "user", "unix:", "path=/run/x", "/run/x/bus", "tcp:host=h,port=1"})
        EXPECT_FALSE(is_dbus_bus(bad)) << bad;
    EXPECT_TRUE(is_tcp_dbus_address("tcp:host=h,port=1"));
    EXPECT_TRUE(is_tcp_dbus_address("nonce-tcp:host=h,port=1"));
    EXPECT_FALSE(is_tcp_dbus_address("unix:path=/run/tcp:x"));
    EXPECT_TRUE(is_tcp_dbus_address("unix:path=/nope;tcp:host=h,port=1")) << "an address list with a TCP element";
    EXPECT_FALSE(is_tcp_dbus_address("unix:path=/a;unix:path=/b"));
}

TEST(Names, GroupName) {
    for (auto ok : {"membrane", "_admins", "net-admin", "wheel", "machine$"}) EXPECT_TRUE(is_group_name(ok)) << ok;
    for (auto bad : {"", "Wheel", "1group", "a b", "a:b", "a/b"}) EXPECT_FALSE(is_group_name(bad)) << bad;
    EXPECT_FALSE(is_group_name(std::string(33, 'a')));
}

}  // namespace
}  // namespace membrane::kernel
