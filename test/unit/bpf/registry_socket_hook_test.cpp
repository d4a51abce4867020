// Socket programs on the cgroup root (SDK 1.7 attach_socket_hook): through a
// bpf_link pinned in the node's pin folder, owned like slots: the next
// generation swaps its program in (one program attached throughout, never
// two or none), close(keep_slots = true) and a dead registry leave it
// attached, the holder's close(false), forget_module, a later generation
// that no longer attaches it and uninstall detach it; another running
// module is refused by name. The tests read the cgroup's attached programs
// with BPF_PROG_QUERY: no traffic.
#include <fstream>
#include <random>

#include "bpf/cgroup_attach.hpp"
#include "registry_fixture.hpp"

MEMBRANE_EMBEDDED_BPF(socket_probe_bpf)

namespace membrane::kernel::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A fresh cgroup below the cgroup v2 mount, removed at the end.
class TestCgroup {
public:
    TestCgroup() {
        std::random_device random;
        path_ = resolve_cgroup_root("") / ("membrane-test-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
        std::filesystem::create_directory(path_);
    }
    ~TestCgroup() {
        std::error_code ignored;
        std::filesystem::remove(path_, ignored);
    }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

BpfObjectSpec probe_spec() { return BpfObjectSpec{.name = "probe", .elf = socket_probe_bpf(), .persistent_maps = {}}; }

class SocketHookTest : public RegistryTest {
protected:
    SocketHookTest() { registry->set_cgroup_root(cgroup.path()); }

    // The ids of the programs attached to the cgroup at `type`.
    std::vector<std::uint32_t> attached(bpf_attach_type type) const {
        UniqueFd folder(::open(cgroup.path().c_str(), O_RDONLY | O_DIRECTORY));
        std::array<std::uint32_t, 8> ids{};
        std::uint32_t count = ids.size();
        if (bpf_prog_query(folder.get(), type, 0, nullptr, ids.data(), &count) != 0) {
            ADD_FAILURE() << "BPF_PROG_QUERY failed: " << std::strerror(errno);
            return {};
        }
        return {ids.begin(), ids.begin() + count};
    }
    static std::uint32_t id_of(const BpfObject& object, const char* program) {
        bpf_prog_info info{};
        std::uint32_t size = sizeof(info);
        bpf_obj_get_info_by_fd(object.program_fd(program), &info, &size);
        return info.id;
    }
    std::filesystem::path link_pin() const { return pin("links") / "cgroup_connect4"; }

    TestCgroup cgroup;
    std::unique_ptr<Registry> registry = make_core_registry();
};

TEST_F(SocketHookTest, TheNextGenerationSwapsItsProgramInAndTheOldOneLeavesIt) {
    auto gen1 = registry->for_module("lb", 1);
    auto& object1 = gen1->load(probe_spec());
    gen1->attach_socket_hook(object1, "probe_connect4");
    EXPECT_THAT(attached(BPF_CGROUP_INET4_CONNECT), ElementsAre(id_of(object1, "probe_connect4")));
    EXPECT_TRUE(std::filesystem::exists(link_pin()));
    EXPECT_THAT(gen1->held_socket_hooks(), ElementsAre("cgroup/connect4"));
    ASSERT_EQ(registry->socket_hooks().size(), 1u);
    EXPECT_EQ(registry->socket_hooks()[0].cgroup, cgroup.path().string());

    auto gen2 = registry->for_module("lb", 2);
    auto& object2 = gen2->load(probe_spec());
    gen2->attach_socket_hook(object2, "probe_connect4");
    // One program throughout: the link's program was replaced, no second link.
    EXPECT_THAT(attached(BPF_CGROUP_INET4_CONNECT), ElementsAre(id_of(object2, "probe_connect4")));
    EXPECT_THAT(gen1->held_socket_hooks(), IsEmpty());
    gen1->close(/*keep_slots=*/false);
    EXPECT_THAT(attached(BPF_CGROUP_INET4_CONNECT), ElementsAre(id_of(object2, "probe_connect4")));

    gen2->close(/*keep_slots=*/false);  // unload: the holder detaches
    EXPECT_THAT(attached(BPF_CGROUP_INET4_CONNECT), IsEmpty());
    EXPECT_FALSE(std::filesystem::exists(link_pin()));
    EXPECT_TRUE(registry->socket_hooks().empty());
}

TEST_F(SocketHookTest, StaysAttachedWhileTheAgentIsDownAndTheNextRunTakesItOver) {
    std::uint32_t first = 0;
    {
        auto gen1 = registry->for_module("lb", 1);
        auto& object = gen1->load(probe_spec());
        gen1->attach_socket_hook(object, "probe_connect4");
        gen1->attach_socket_hook(object, "probe_getpeername4");
        first = id_of(object, "probe_connect4");
        gen1->close(/*keep_slots=*/true);
    }
    registry.reset();  // the agent is gone: its fds closed, the pinned links hold on
    EXPECT_THAT(attached(BPF_CGROUP_INET4_CONNECT), ElementsAre(first));
    EXPECT_THAT(attached(BPF_CGROUP_INET4_GETPEERNAME), ::testing::SizeIs(1));

    registry = make_core_registry();
    registry->set_cgroup_root(cgroup.path());
    auto gen1 = registry->for_module("lb", 1);  // generation numbers start again
    auto& object = gen1->load(probe_spec());
    gen1->attach_socket_hook(object, "probe_connect4");
    EXPECT_THAT(attached(BPF_CGROUP_INET4_CONNECT), ElementsAre(id_of(object, "probe_connect4")));
    EXPECT_THAT(log.text(), HasSubstr("left by an earlier run"));
    // getpeername4 was not attached again: once the generation is the
    // module's running one, the old run's program goes.
    gen1->settle_empty_slots();
    EXPECT_THAT(attached(BPF_CGROUP_INET4_GETPEERNAME), IsEmpty());
    EXPECT_THAT(attached(BPF_CGROUP_INET4_CONNECT), ::testing::SizeIs(1));
    registry->forget_module("lb");  // an open generation's hook is its own: kept
    EXPECT_THAT(attached(BPF_CGROUP_INET4_CONNECT), ::testing::SizeIs(1));
    gen1->close(/*keep_slots=*/true);
    registry->forget_module("lb");  // the unload after a keep_slots close
    EXPECT_THAT(attached(BPF_CGROUP_INET4_CONNECT), IsEmpty());
}

TEST_F(SocketHookTest, AnotherRunningModuleIsRefusedByName) {
    auto lb = registry->for_module("lb", 1);
    lb->attach_socket_hook(lb->load(probe_spec()), "probe_connect4");
    auto other = registry->for_module("other", 1);
    auto& object = other->load(probe_spec());
    try {
        other->attach_socket_hook(object, "probe_connect4");
        FAIL() << "another module took the hook";
    } catch (const BpfError& error) {
        EXPECT_THAT(error.what(), HasSubstr("socket hook cgroup/connect4 carries probe_connect4 of module lb"));
    }
    EXPECT_THAT(attached(BPF_CGROUP_INET4_CONNECT), ::testing::SizeIs(1));
}

TEST_F(SocketHookTest, RefusesWhatIsNoSocketProgramAndACgroupRootThatIsNoCgroup) {
    auto lb = registry->for_module("lb", 1);
    auto& object = lb->load(probe_spec());
    try {
        lb->attach_socket_hook(object, "probe_tc");
        FAIL() << "a tc program was attached as a socket hook";
    } catch (const BpfError& error) {
        EXPECT_THAT(error.what(), HasSubstr("program probe_tc of object probe is not a cgroup socket program"));
    }
    registry->set_cgroup_root(sandbox.state_dir());
    try {
        lb->attach_socket_hook(object, "probe_connect4");
        FAIL() << "attached below a folder that is no cgroup";
    } catch (const BpfError& error) {
        EXPECT_THAT(error.what(), HasSubstr("[agent] cgroup_root " + sandbox.state_dir().string() +
                                            " is not a cgroup v2 folder"));
    }
    EXPECT_TRUE(registry->socket_hooks().empty());
}

TEST_F(SocketHookTest, UninstallDetaches) {
    auto lb = registry->for_module("lb", 1);
    lb->attach_socket_hook(lb->load(probe_spec()), "probe_connect4");
    lb->close(/*keep_slots=*/true);
    registry->uninstall();
    EXPECT_THAT(attached(BPF_CGROUP_INET4_CONNECT), IsEmpty());
}

}  // namespace
}  // namespace membrane::kernel::test
