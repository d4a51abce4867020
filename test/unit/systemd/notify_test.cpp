// SystemdNotifier against a real AF_UNIX datagram socket posing as systemd.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/scoped_env.hpp"

#include "systemd/notify.hpp"

namespace membrane::kernel {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::MatchesRegex;
using namespace std::chrono_literals;

using membrane::test::ScopedEnv;

// A bound datagram socket in a temp dir of its own; NOTIFY_SOCKET points at it.
class FakeSystemd : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("membrane-notify-" + std::to_string(getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
        const auto path = (dir_ / "notify").string();
        fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ASSERT_GE(fd_, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        ASSERT_LT(path.size(), sizeof(addr.sun_path));
        path.copy(addr.sun_path, path.size());
        ASSERT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
        notify_socket_.emplace("NOTIFY_SOCKET", path);
        watchdog_usec_.emplace("WATCHDOG_USEC", std::nullopt);
        watchdog_pid_.emplace("WATCHDOG_PID", std::nullopt);
    }
    void TearDown() override {
        watchdog_pid_.reset();
        watchdog_usec_.reset();
        notify_socket_.reset();
        if (fd_ >= 0) close(fd_);
        std::filesystem::remove_all(dir_);
    }

    // Every datagram received so far.
    std::vector<std::string> received() {
        std::vector<std::string> messages;
        char buffer[4096];
        for (;;) {
            const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
            if (n < 0) break;
            messages.emplace_back(buffer, static_cast<std::size_t>(n));
        }
        return messages;
    }

    std::filesystem::path dir_;
    int fd_ = -1;
    std::optional<ScopedEnv> notify_socket_;
    std::optional<ScopedEnv> watchdog_usec_;
    std::optional<ScopedEnv> watchdog_pid_;
    boost::asio::io_context io_;
};

TEST_F(FakeSystemd, LifecycleMessagesArrive) {
    SystemdNotifier notifier(io_);
    EXPECT_TRUE(notifier.enabled());
    notifier.status("starting 2 modules");
    notifier.ready();
    notifier.status("line one\nline two");
    notifier.reloading();
    notifier.extend_timeout(5s);
    notifier.stopping();
    const auto messages = received();
    ASSERT_EQ(messages.size(), 6u);
    EXPECT_EQ(messages[0], "STATUS=starting 2 modules");
    EXPECT_EQ(messages[1], "READY=1");
    EXPECT_EQ(messages[2], "STATUS=line one line two");
    EXPECT_THAT(messages[3], MatchesRegex("RELOADING=1\nMONOTONIC_USEC=[0-9]+"));
    EXPECT_EQ(messages[4], "EXTEND_TIMEOUT_USEC=5000000");
    EXPECT_EQ(messages[5], "STOPPING=1");
}

TEST_F(FakeSystemd, MonotonicUsecIsNow) {
    SystemdNotifier notifier(io_);
    timespec before{};
    clock_gettime(CLOCK_MONOTONIC, &before);
    notifier.reloading();
    const auto messages = received();
    ASSERT_EQ(messages.size(), 1u);
    const auto usec = std::stoull(messages[0].substr(messages[0].find('=', 12) + 1));
    const auto before_usec = static_cast<unsigned long long>(before.tv_sec) * 1'000'000ULL + before.tv_nsec / 1000;
    EXPECT_GE(usec, before_usec);
    EXPECT_LT(usec - before_usec, 5'000'000ULL);
}

TEST_F(FakeSystemd, WatchdogPingsEveryHalfPeriodFromTheLoop) {
    ScopedEnv usec("WATCHDOG_USEC", "40000");  // 40 ms: a ping every 20 ms
    SystemdNotifier notifier(io_);
    ASSERT_EQ(notifier.watchdog_period(), std::chrono::microseconds(40000));
    notifier.start_watchdog();
    notifier.start_watchdog();  // idempotent: still one timer
    EXPECT_THAT(received(), ElementsAre("WATCHDOG=1"));  // the first ping is immediate
    io_.run_for(210ms);
    const auto pings = received();
    EXPECT_THAT(pings, Each(std::string("WATCHDOG=1")));
    EXPECT_GE(pings.size(), 5u);   // ~10 expected; slack for a loaded machine
    EXPECT_LE(pings.size(), 12u);  // not twice as often
}

TEST_F(FakeSystemd, StoppedWatchdogIsSilent) {
    ScopedEnv usec("WATCHDOG_USEC", "20000");
    {
        SystemdNotifier notifier(io_);
        notifier.start_watchdog();
        notifier.stop_watchdog();
        io_.run_for(50ms);
        EXPECT_THAT(received(), ElementsAre("WATCHDOG=1"));
        notifier.start_watchdog();  // can start again
    }
    // The notifier died with a timer pending: nothing more arrives, nothing crashes.
    io_.restart();
    io_.run_for(50ms);
    EXPECT_THAT(received(), ElementsAre("WATCHDOG=1"));
}

TEST_F(FakeSystemd, WatchdogMeantForAnotherProcessIsOff) {
    ScopedEnv usec("WATCHDOG_USEC", "20000");
    ScopedEnv pid("WATCHDOG_PID", std::to_string(getpid() + 1));
    SystemdNotifier notifier(io_);
    EXPECT_EQ(notifier.watchdog_period(), std::nullopt);
    notifier.start_watchdog();
    io_.run_for(50ms);
    EXPECT_TRUE(received().empty());
}

TEST_F(FakeSystemd, NoWatchdogWithoutWatchdogUsec) {
    SystemdNotifier notifier(io_);
    EXPECT_EQ(notifier.watchdog_period(), std::nullopt);
    notifier.start_watchdog();
    io_.run_for(30ms);
    EXPECT_TRUE(received().empty());
}

TEST(NoSystemd, EverythingIsANoOpWithoutNotifySocket) {
    ScopedEnv socket("NOTIFY_SOCKET", std::nullopt);
    ScopedEnv usec("WATCHDOG_USEC", "20000");
    boost::asio::io_context io;
    SystemdNotifier notifier(io);
    EXPECT_FALSE(notifier.enabled());
    notifier.ready();
    notifier.status("x");
    notifier.reloading();
    notifier.stopping();
    notifier.watchdog_ping();
    notifier.start_watchdog();
    EXPECT_EQ(io.run_for(20ms), 0u);  // no timer was armed
}

}  // namespace
}  // namespace membrane::kernel
