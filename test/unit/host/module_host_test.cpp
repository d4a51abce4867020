// The module host against real module libraries (unit/host/modules/): the ABI
// descriptor is checked before dlopen, so a refused module's code never runs;
// and whatever a module throws, std::exception or not, is contained.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include <boost/asio/io_context.hpp>

#include "bpf/sandbox.hpp"
#include "host/abi_check.hpp"
#include "host/agent_model.hpp"
#include "host/module_host.hpp"
#include "membrane/embed.hpp"

// The core object: unload asks it which stages are fail-closed.
MEMBRANE_EMBEDDED_BPF(membrane_core_bpf)

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;

struct NoMethods : ModuleMethodSink {
    void set_module_methods(const std::string&, std::map<std::string, MethodHandler>) override {}
};

class ModuleHostTest : public ::testing::Test {
protected:
    ModuleHostTest() {
        HostOptions options;
        options.module_dir = MEMBRANE_TEST_MODULE_DIR;
        options.runtime_dir = sandbox.root() / "runtime";
        options.state_dir = sandbox.state_dir() / "modules";
        options.require_root_owned = false;  // the build tree is the user's
        host = std::make_unique<ModuleHost>(io, bus, registry, model, methods, std::move(options), log.logger);
    }

    // `name`'s error when loading it, and its kind.
    std::pair<ControlErrorKind, std::string> load_error(const std::string& name, const toml::table& table = {}) {
        try {
            host->load(name, table);
        } catch (const ControlError& e) {
            return {e.kind(), e.what()};
        }
        ADD_FAILURE() << name << " was loaded";
        return {ControlErrorKind::Failed, ""};
    }

    ModuleStatus status(const std::string& name) {
        for (auto& s : host->list()) {
            if (s.name == name) return s;
        }
        return {};
    }

    void drain() { io.run_for(std::chrono::milliseconds(50)); }

    BpffsSandbox sandbox;
    CapturedLog log;
    Registry registry{sandbox.bpffs(), sandbox.pin_dir(), sandbox.state_dir(), log.logger};
    boost::asio::io_context io;
    EventBus bus{io};
    AgentModel model{"node-a", "/sys/fs/bpf/membrane/node-a"};
    NoMethods methods;
    std::unique_ptr<ModuleHost> host;
};

TEST_F(ModuleHostTest, AGoodModuleLoads) {
    host->load("good", {});
    EXPECT_EQ(status("good").state, ModuleState::running);
}

TEST_F(ModuleHostTest, AWrongAbiIsRefusedBeforeTheLibrarysConstructorRuns) {
    // bomb.so's static constructor calls abort(): were it dlopen'ed, this
    // test process would die here.
    const auto [kind, what] = load_error("bomb");
    EXPECT_EQ(kind, ControlErrorKind::AbiMismatch);
    EXPECT_THAT(what, HasSubstr("SDK 99.0"));
    EXPECT_THAT(what, HasSubstr("provides SDK " + std::to_string(kSdkMajor) + "." + std::to_string(kSdkMinor)));
    EXPECT_EQ(status("bomb").state, ModuleState::failed);
    // Nothing is left in the runtime folder either.
    EXPECT_TRUE(std::filesystem::is_empty(sandbox.root() / "runtime"));
}

TEST_F(ModuleHostTest, ALibraryWithoutTheSectionIsRefusedClearly) {
    const auto [kind, what] = load_error("plain");
    EXPECT_EQ(kind, ControlErrorKind::AbiMismatch);
    EXPECT_THAT(what, HasSubstr("not a Membrane module: no .membrane_abi section"));
}

TEST_F(ModuleHostTest, AnSdk11ModuleIsRefusedWithWhatToDo) {
    const auto [kind, what] = load_error("legacy");
    EXPECT_EQ(kind, ControlErrorKind::AbiMismatch);
    EXPECT_THAT(what, HasSubstr("SDK 1.1"));
    EXPECT_THAT(what, HasSubstr("rebuild the module"));
}

TEST_F(ModuleHostTest, ANonStdExceptionFromStartFailsOnlyThatModule) {
    host->load("good", {});
    const auto [kind, what] = load_error("nonstd", toml::table{{"throw_in", "start"}});
    EXPECT_EQ(kind, ControlErrorKind::StartFailed);
    EXPECT_THAT(what, HasSubstr("not a std::exception"));
    EXPECT_EQ(status("nonstd").state, ModuleState::failed);
    EXPECT_EQ(status("good").state, ModuleState::running);
}

TEST_F(ModuleHostTest, ANonStdExceptionFromAHandlerQuarantinesTheModule) {
    host->load("good", {});
    host->load("nonstd", toml::table{{"throw_in", "handler"}});
    // Its own "running" event reaches its handler, which throws 42.
    drain();
    EXPECT_EQ(status("nonstd").state, ModuleState::failed);
    EXPECT_THAT(status("nonstd").message, HasSubstr("threw"));
    EXPECT_EQ(status("good").state, ModuleState::running);
    // The loop keeps serving: the host still loads and reloads.
    host->reload("good");
    drain();
    EXPECT_EQ(status("good").state, ModuleState::running);
}

TEST_F(ModuleHostTest, ANonStdExceptionFromReconfigureQuarantinesTheModule) {
    host->load("nonstd", toml::table{{"throw_in", "reconfigure"}});
    try {
        host->reconfigure("nonstd", toml::table{{"throw_in", "reconfigure"}, {"x", 1}});
        ADD_FAILURE() << "reconfigure did not report the failure";
    } catch (const ControlError& e) {
        EXPECT_THAT(e.what(), HasSubstr("not a std::exception"));
    }
    EXPECT_EQ(status("nonstd").state, ModuleState::failed);
    drain();
}

// membrane_module_reloads_total and membrane_module_quarantines_total: every
// replaced generation and every quarantine counts, listed at 0 from the first
// load, and the counts outlive an unload (Prometheus counters never go down).
TEST_F(ModuleHostTest, ReloadsAndQuarantinesAreCountedForTheHostsLife) {
    registry.open_core(membrane_core_bpf());
    host->load("good", {});
    host->load("nonstd", toml::table{{"throw_in", "handler"}});
    EXPECT_EQ(host->counters().at("good").reloads, 0u);
    EXPECT_EQ(host->counters().at("good").quarantines, 0u);
    host->reload("good");
    host->reload("good");
    drain();  // nonstd's handler throws at the first event: quarantined
    ASSERT_EQ(status("nonstd").state, ModuleState::failed);
    EXPECT_EQ(host->counters().at("good").reloads, 2u);
    EXPECT_EQ(host->counters().at("nonstd").quarantines, 1u);
    EXPECT_EQ(host->counters().at("nonstd").reloads, 0u);
    host->unload("nonstd", false);
    host->unload("good", false);
    drain();
    EXPECT_EQ(host->counters().at("nonstd").quarantines, 1u) << "the count outlives the unload";
    EXPECT_EQ(host->counters().at("good").reloads, 2u);
    host->load("good", {});
    host->reload("good");
    EXPECT_EQ(host->counters().at("good").reloads, 3u) << "loaded again, it counts on";
    // A name that is no module file is not listed.
    load_error("absent");
    EXPECT_EQ(host->counters().count("absent"), 0u);
}

}  // namespace
}  // namespace membrane::kernel::test
