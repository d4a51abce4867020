#include "host/abi_check.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "host/module_host.hpp"

namespace membrane::kernel {
namespace {

AbiDescriptor module_like_host(const char* name) {
    AbiDescriptor d = host_abi_descriptor();
    std::memset(d.module_name, 0, sizeof d.module_name);
    std::strncpy(d.module_name, name, sizeof d.module_name - 1);
    return d;
}

TEST(AbiCheck, SameBuildIsAccepted) {
    EXPECT_EQ(check_abi(host_abi_descriptor(), module_like_host("counter"), "counter"), std::nullopt);
}

TEST(AbiCheck, OlderMinorIsAccepted) {
    AbiDescriptor host = host_abi_descriptor();
    host.sdk_minor += 2;
    EXPECT_EQ(check_abi(host, module_like_host("counter"), "counter"), std::nullopt);
}

TEST(AbiCheck, OtherMajorIsRefusedNamingBothVersions) {
    AbiDescriptor m = module_like_host("counter");
    m.sdk_major = 99;
    auto why = check_abi(host_abi_descriptor(), m, "counter");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("SDK 99." + std::to_string(kSdkMinor)), std::string::npos) << *why;
    EXPECT_NE(why->find("provides SDK " + std::to_string(kSdkMajor) + "." + std::to_string(kSdkMinor)),
              std::string::npos)
        << *why;
}

TEST(AbiCheck, NewerMinorIsRefused) {
    AbiDescriptor m = module_like_host("counter");
    m.sdk_minor = host_abi_descriptor().sdk_minor + 1;
    auto why = check_abi(host_abi_descriptor(), m, "counter");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("needs Membrane SDK"), std::string::npos) << *why;
}

TEST(AbiCheck, OtherStandardLibraryIsRefusedNamingBoth) {
    AbiDescriptor m = module_like_host("counter");
    std::strcpy(m.stdlib, "libc++ 170000");
    auto why = check_abi(host_abi_descriptor(), m, "counter");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("libc++ 170000"), std::string::npos) << *why;
    EXPECT_NE(why->find(descriptor_field(host_abi_descriptor().stdlib, sizeof m.stdlib)), std::string::npos)
        << *why;
}

TEST(AbiCheck, UnknownCompilerIsRefused) {
    AbiDescriptor m = module_like_host("counter");
    std::strcpy(m.compiler, "msvc 19.3");
    auto why = check_abi(host_abi_descriptor(), m, "counter");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("msvc 19.3"), std::string::npos) << *why;
}

TEST(AbiCheck, ClangModuleForGccHostIsAccepted) {
    AbiDescriptor m = module_like_host("counter");
    std::strcpy(m.compiler, "clang 14.0.6");
    EXPECT_EQ(check_abi(host_abi_descriptor(), m, "counter"), std::nullopt);
}

TEST(AbiCheck, NameMustMatchTheFile) {
    auto why = check_abi(host_abi_descriptor(), module_like_host("other"), "counter");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("'other'"), std::string::npos) << *why;
}

TEST(AbiCheck, GarbageMagicIsRefused) {
    AbiDescriptor m = module_like_host("counter");
    m.magic = 0;
    EXPECT_TRUE(check_abi(host_abi_descriptor(), m, "counter"));
}

TEST(AbiCheck, UnterminatedFieldsAreReadWithinBounds) {
    AbiDescriptor m = module_like_host("counter");
    std::memset(m.stdlib, 'x', sizeof m.stdlib);  // no NUL at all
    auto why = check_abi(host_abi_descriptor(), m, "counter");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find(std::string(sizeof m.stdlib, 'x')), std::string::npos);
}

TEST(ModuleName, AcceptsLowerCaseDigitsAndDashes) {
    EXPECT_TRUE(valid_module_name("routing-vxlan"));
    EXPECT_TRUE(valid_module_name("eni2"));
    EXPECT_FALSE(valid_module_name(""));
    EXPECT_FALSE(valid_module_name("../etc/passwd"));
    EXPECT_FALSE(valid_module_name("Counter"));
    EXPECT_FALSE(valid_module_name(std::string(49, 'a')));
}

}  // namespace
}  // namespace membrane::kernel
