// The endpoint over real HTTP on 127.0.0.1: the figures are gathered on the
// loop's thread only (never on an HTTP thread), refreshed by the loop's
// timer; a taken port is an error naming the address; the server stops
// promptly while scrapes are in flight or a client stalls mid-request; and
// starting it leaves the process' SIGCHLD disposition as it was.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "metrics/metrics_server.hpp"
#include "support/quiet_logger.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// A connected TCP socket to 127.0.0.1:port (-1 on failure), with a 5 s
// receive timeout so that a server that never answers fails the test.
int connect_local(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// GET /metrics: the whole answer (status line, headers, body), "" on failure.
std::string scrape(std::uint16_t port) {
    const int fd = connect_local(port);
    if (fd < 0) return {};
    const std::string request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    std::string answer;
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
        char buffer[4096];
        ssize_t n = 0;
        while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) answer.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return answer;
}

struct Gathered {
    std::atomic<int> calls{0};
    std::atomic<bool> off_loop{false};  // a call from a thread other than the loop's
    std::thread::id loop = std::this_thread::get_id();
    std::uint64_t nodes = 1;

    MetricsServer::Gather gather() {
        return [this] {
            ++calls;
            if (std::this_thread::get_id() != loop) off_loop = true;
            AgentFigures figures;
            figures.nodes = nodes;
            return figures;
        };
    }
};

TEST(MetricsServer, ServesTheLoopsFiguresOverHttp) {
    boost::asio::io_context io;
    Gathered gathered;
    gathered.nodes = 3;
    MetricsServer server(io, "127.0.0.1:0", gathered.gather(), quiet_logger(), 50ms);
    ASSERT_NE(server.port(), 0);
    const std::string answer = scrape(server.port());
    EXPECT_THAT(answer, HasSubstr("HTTP/1.1 200 OK"));
    EXPECT_THAT(answer, HasSubstr("# TYPE membrane_nodes gauge\nmembrane_nodes 3\n"));

    // The loop's timer takes the figures again; scrapes in between read the
    // snapshot and never call into the agent.
    gathered.nodes = 4;
    const int before = gathered.calls;
    for (int i = 0; i < 5; ++i) scrape(server.port());
    EXPECT_EQ(gathered.calls, before) << "a scrape gathered the figures itself";
    io.run_for(300ms);
    EXPECT_GT(gathered.calls, before);
    EXPECT_THAT(scrape(server.port()), HasSubstr("membrane_nodes 4\n"));
    EXPECT_FALSE(gathered.off_loop) << "figures were gathered on an HTTP thread";
}

TEST(MetricsServer, ATakenPortIsAnErrorNamingTheAddress) {
    boost::asio::io_context io;
    Gathered gathered;
    MetricsServer first(io, "127.0.0.1:0", gathered.gather(), quiet_logger());
    const std::string address = "127.0.0.1:" + std::to_string(first.port());
    try {
        MetricsServer second(io, address, gathered.gather(), quiet_logger());
        ADD_FAILURE() << "a second server listened on " << address;
    } catch (const MetricsError& e) {
        EXPECT_THAT(e.what(), HasSubstr("cannot serve metrics on " + address + ": "));
        EXPECT_THAT(e.what(), HasSubstr("Address already in use"));
    }
    EXPECT_THAT(scrape(first.port()), HasSubstr("HTTP/1.1 200 OK")) << "the first one still serves";
}

TEST(MetricsServer, StopsPromptlyWhileScrapesAreInFlight) {
    boost::asio::io_context io;
    Gathered gathered;
    auto server = std::make_unique<MetricsServer>(io, "127.0.0.1:0", gathered.gather(), quiet_logger(), 10ms);
    const auto port = server->port();
    // A client that sent half a request and waits: it holds an HTTP thread.
    const int stalled = connect_local(port);
    ASSERT_GE(stalled, 0);
    ASSERT_GT(::send(stalled, "GET /metrics HTTP/1.1\r\n", 23, MSG_NOSIGNAL), 0);
    // And clients that scrape as fast as they can.
    std::atomic<bool> stop{false};
    std::atomic<int> answered{0};
    std::vector<std::thread> scrapers;
    for (int i = 0; i < 3; ++i) {
        scrapers.emplace_back([&] {
            while (!stop) {
                if (scrape(port).find("membrane_nodes") != std::string::npos) ++answered;
            }
        });
    }
    const auto started = std::chrono::steady_clock::now();
    while (answered < 20 && std::chrono::steady_clock::now() < started + 20s) io.run_for(10ms);
    EXPECT_GE(answered, 20) << "no scrape answered while the loop ran";
    // The loop is busy elsewhere (here: not running at all): scrapes go on
    // being answered, so the ones in flight below never wait for it.
    const int while_running = answered;
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (answered < while_running + 20 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    EXPECT_GE(answered, while_running + 20) << "scrapes wait for the agent's loop";

    const auto start = std::chrono::steady_clock::now();
    // On a thread of its own, so that a server that never stops fails the
    // test instead of hanging it.
    auto stopped = std::async(std::launch::async, [&] { server.reset(); });
    if (stopped.wait_for(20s) != std::future_status::ready) {
        std::fprintf(stderr, "FAILED: the server did not stop within 20 s of its destruction\n");
        std::_Exit(1);
    }
    const auto took = std::chrono::steady_clock::now() - start;
    stop = true;
    for (auto& scraper : scrapers) scraper.join();
    ::close(stalled);
    EXPECT_LT(took, 5s) << "stopping took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                        << " ms";
    EXPECT_EQ(scrape(port), "") << "still answering after it was destroyed";
    // Timer handlers queued before the destruction find the server gone.
    io.run_for(50ms);
    EXPECT_FALSE(gathered.off_loop);
}

TEST(MetricsServer, AGatherThatThrowsKeepsThePreviousFigures) {
    boost::asio::io_context io;
    bool fail = false;
    auto gather = [&] {
        if (fail) throw std::runtime_error("figures unavailable");
        AgentFigures figures;
        figures.nodes = 7;
        return figures;
    };
    MetricsServer server(io, "127.0.0.1:0", gather, quiet_logger(), 10ms);
    fail = true;
    io.run_for(50ms);
    EXPECT_THAT(scrape(server.port()), HasSubstr("membrane_nodes 7\n"));
}

TEST(MetricsServer, LeavesSigchldAsItWas) {
    struct sigaction before {};
    struct sigaction handler {};
    handler.sa_handler = SIG_DFL;
    ASSERT_EQ(::sigaction(SIGCHLD, &handler, &before), 0);
    {
        boost::asio::io_context io;
        Gathered gathered;
        MetricsServer server(io, "127.0.0.1:0", gathered.gather(), quiet_logger());
        struct sigaction now {};
        ::sigaction(SIGCHLD, nullptr, &now);
        EXPECT_EQ(now.sa_handler, SIG_DFL) << "civetweb's SIG_IGN for SIGCHLD leaked into the process";
    }
    ::sigaction(SIGCHLD, &before, nullptr);
}

}  // namespace
}  // namespace membrane::kernel::test
