// [sources]: the manifests folder, and every error with its file:line:column.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "config/agent_config.hpp"
#include "config/config_diff.hpp"
#include "config_test_support.hpp"

namespace membrane::kernel {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;


struct Folder {
    Folder() {
        char pattern[] = "/tmp/membrane-sources-config-XXXXXX";
        dir = ::mkdtemp(pattern);
        std::ofstream(dir / "file.yaml") << "\n";
    }
    ~Folder() { fs::remove_all(dir); }
    fs::path dir;
};

std::string with_dir(const std::string& value) {
    return kMinimalConfig + "[sources]\nmanifests_dir = \"" + value + "\"\n";
}

TEST(SourcesConfig, NoFolderByDefault) { EXPECT_TRUE(parse_config(kMinimalConfig, kSource).sources.manifests_dir.empty()); }

TEST(SourcesConfig, AnExistingFolderOneSpelling) {
    Folder folder;
    EXPECT_EQ(parse_config(with_dir(folder.dir.string() + "/"), kSource).sources.manifests_dir, folder.dir);
}

TEST(SourcesConfigErrors, ARelativeMissingOrNonFolderPathIsPointedAt) {
    Folder folder;
    EXPECT_EQ(error_of(with_dir("manifests")),
              "/etc/membrane/membrane.toml:4:17: 'manifests_dir' in [sources] must be an absolute path, not 'manifests'");
    EXPECT_THAT(error_of(with_dir(folder.dir.string() + "/file.yaml")), HasSubstr("which is not a folder"));
    EXPECT_THAT(error_of(with_dir("/var/lib/membrane/manifests")),
                HasSubstr(":4:17: 'manifests_dir' in [sources] names '/var/lib/membrane/manifests', which overlaps "
                          "[agent] state_dir '/var/lib/membrane'"));
    EXPECT_THAT(error_of(with_dir("/var/lib")), HasSubstr("which overlaps [agent] state_dir"));
    EXPECT_THAT(error_of(kMinimalConfig + "[sources]\nmanifest_dir = \"/x\"\n"),
                HasSubstr(":4:1: unknown key 'manifest_dir' in [sources]"));
}

TEST(SourcesConfig, AFolderNotThereYetIsAWarning) {
    Folder folder;
    const auto config = parse_config(with_dir(folder.dir.string() + "/later"), kSource);
    EXPECT_EQ(config.sources.manifests_dir, folder.dir / "later");
    ASSERT_EQ(config.warnings.size(), 1u);
    EXPECT_EQ(config.warnings[0], "/etc/membrane/membrane.toml:4:17: 'manifests_dir' in [sources] names '" +
                                      folder.dir.string() + "/later', which does not exist (yet); `membranectl "
                                      "status` reports it until it can be read");
}

TEST(SourcesConfig, ChangingTheFolderNeedsARestart) {
    Folder folder;
    const auto before = parse_config(kMinimalConfig, kSource);
    const auto after = parse_config(with_dir(folder.dir.string()), kSource);
    const auto diff = diff_configs(before, after);
    EXPECT_TRUE(diff.restart_needed);
    EXPECT_THAT(diff.settings_needing_restart, ::testing::Contains("sources.manifests_dir"));
}

}  // namespace
}  // namespace membrane::kernel
