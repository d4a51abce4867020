// [identity]: the label keys left out of identities, their default, and
// every error with its file:line:column.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/agent_config.hpp"
#include "config/config_diff.hpp"
#include "config_test_support.hpp"

namespace membrane::kernel {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;

TEST(IdentityConfig, WithoutTheTableThePodNameAndHashLabelsAreExcluded) {
    const auto excluded = parse_config(kMinimalConfig, kSource).identity.exclude_labels;
    for (const char* key : {"io.kubernetes.pod.name", "pod-template-hash", "controller-revision-hash",
                            "statefulset.kubernetes.io/pod-name", "job-name", "controller-uid",
                            "batch.kubernetes.io/job-name", "batch.kubernetes.io/controller-uid"}) {
        EXPECT_THAT(excluded, Contains(key));
    }
    EXPECT_THAT(excluded, Not(Contains("io.kubernetes.pod.namespace")));
    EXPECT_EQ(parse_config("[identity]\n", kSource).identity, IdentitySettings{}) << "an empty table keeps the defaults";
}

TEST(IdentityConfig, TheShippedFileShowsTheDefaults) {
    const auto config = load_config(std::filesystem::path(MEMBRANE_SOURCE_DIR) / "configs" / "membrane.toml");
    EXPECT_EQ(config.identity, IdentitySettings{});
}

TEST(IdentityConfig, AListReplacesTheDefaults) {
    EXPECT_THAT(parse_config("[identity]\nexclude_labels = [\"k8s:version\", \"io.kubernetes.pod.name\"]\n", kSource)
                    .identity.exclude_labels,
                ElementsAre("k8s:version", "io.kubernetes.pod.name"));
    EXPECT_TRUE(parse_config("[identity]\nexclude_labels = []\n", kSource).identity.exclude_labels.empty())
        << "an empty list: every label makes the identity";
}

TEST(IdentityConfigErrors, NameThePosition) {
    EXPECT_EQ(error_of("[identity]\nexclude_labels = \"job-name\"\n"),
              "/etc/membrane/membrane.toml:2:18: 'exclude_labels' in [identity] must be an array of strings, not a "
              "string");
    EXPECT_EQ(error_of("[identity]\nexclude_labels = [\"job-name\", \"bad key\"]\n"),
              "/etc/membrane/membrane.toml:2:31: 'exclude_labels' in [identity] has 'bad key', which is not a label "
              "key (1 to 253 letters, digits and '._/-:')");
    EXPECT_EQ(error_of("[identity]\nexclude_labels = [\"job-name\", \"job-name\"]\n"),
              "/etc/membrane/membrane.toml:2:31: 'exclude_labels' in [identity] lists 'job-name' twice");
    EXPECT_EQ(error_of("[identity]\nexclude_labels = [\"\"]\n"),
              "/etc/membrane/membrane.toml:2:19: 'exclude_labels' in [identity] has '', which is not a label key "
              "(1 to 253 letters, digits and '._/-:')");
    EXPECT_EQ(error_of("[identity]\nexclude_labels = [\"k8s:io.kubernetes.pod.namespace\"]\n"),
              "/etc/membrane/membrane.toml:2:19: 'exclude_labels' in [identity] may not hold "
              "'k8s:io.kubernetes.pod.namespace': pods of different namespaces would share an identity");
    EXPECT_EQ(error_of("[identity]\nexclude = []\n"),
              "/etc/membrane/membrane.toml:2:1: unknown key 'exclude' in [identity]");
    EXPECT_EQ(error_of("identity = []\n"),
              "/etc/membrane/membrane.toml:1:12: 'identity' at the top level must be a table, not an array");
}

TEST(IdentityConfig, AChangeWaitsForARestart) {
    const auto before = parse_config(kMinimalConfig, kSource);
    const auto after = parse_config("[agent]\nnode_name = \"n1\"\n[identity]\nexclude_labels = []\n", kSource);
    const auto diff = diff_configs(before, after);
    EXPECT_THAT(diff.settings_needing_restart, ElementsAre("identity.exclude_labels"));
    EXPECT_TRUE(diff.restart_needed);
}

}  // namespace
}  // namespace membrane::kernel
