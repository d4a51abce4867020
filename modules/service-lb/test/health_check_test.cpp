// HealthCheckServer answers GETs on real loopback ports as kube-proxy does,
// opens and closes listeners as the set of ports changes, and says why a
// port it cannot take is not served.
#include "health_check.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

namespace membrane::service_lb {
namespace {

// A port free on loopback now (the kernel's pick for a bind to port 0).
std::uint16_t free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    socklen_t length = sizeof address;
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    close(fd);
    return ntohs(address.sin_port);
}

struct Response {
    int status = 0;
    std::string body;
};

// GET /healthz from 127.0.0.1:port with Beast's client; nullopt when nothing answers.
std::optional<Response> get(std::uint16_t port) {
    namespace http = boost::beast::http;
    boost::asio::io_context io;
    boost::beast::tcp_stream stream(io);
    boost::beast::error_code error;
    stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), port), error);
    if (error) return std::nullopt;
    http::request<http::empty_body> request(http::verb::get, "/healthz", 11);
    request.set(http::field::host, "127.0.0.1");
    http::write(stream, request);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    return Response{static_cast<int>(response.result_int()), response.body()};
}

TEST(HealthCheckServer, AnswersKubeProxysBodyWith200WhileTheNodeHasALocalEndpointAnd503Without) {
    HealthCheckServer server;
    const auto port = free_port();
    EXPECT_TRUE(server.set({{port, HealthCheck{"shop", "web", 2}}}, true).empty());
    auto response = get(port);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(nlohmann::json::parse(response->body),
              nlohmann::json::parse(R"({"service": {"namespace": "shop", "name": "web"}, "localEndpoints": 2,
                                        "serviceProxyHealthy": true})"));

    EXPECT_TRUE(server.set({{port, HealthCheck{"shop", "web", 0}}}, true).empty());
    response = get(port);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 503);
    EXPECT_EQ(nlohmann::json::parse(response->body)["localEndpoints"], 0);

    // Endpoints here, but the datapath misses some service: not healthy.
    EXPECT_TRUE(server.set({{port, HealthCheck{"shop", "web", 1}}}, false).empty());
    response = get(port);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 503);
    EXPECT_EQ(nlohmann::json::parse(response->body)["serviceProxyHealthy"], false);
}

TEST(HealthCheckServer, OpensAndClosesListenersAsThePortsChange) {
    HealthCheckServer server;
    const auto first = free_port();
    const auto second = free_port();
    ASSERT_NE(first, second);
    EXPECT_TRUE(server.set({{first, HealthCheck{"a", "one", 1}}, {second, HealthCheck{"a", "two", 1}}}, true).empty());
    ASSERT_TRUE(get(first));
    ASSERT_TRUE(get(second));
    EXPECT_EQ(nlohmann::json::parse(get(second)->body)["service"]["name"], "two");

    EXPECT_TRUE(server.set({{second, HealthCheck{"a", "two", 1}}}, true).empty());
    EXPECT_FALSE(get(first)) << "the listener of a port no longer wanted still answers";
    EXPECT_TRUE(get(second));
}

TEST(HealthCheckServer, APortTakenByAnotherSocketIsNotServedAndSaysWhy) {
    const int holder = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    ASSERT_EQ(listen(holder, 1), 0);
    socklen_t length = sizeof address;
    getsockname(holder, reinterpret_cast<sockaddr*>(&address), &length);
    const auto taken = ntohs(address.sin_port);
    const auto free = free_port();

    HealthCheckServer server;
    const auto problems = server.set({{taken, HealthCheck{"a", "one", 1}}, {free, HealthCheck{"a", "two", 1}}}, true);
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_TRUE(problems.contains(taken));
    EXPECT_FALSE(problems.at(taken).empty());
    EXPECT_TRUE(get(free)) << "a taken port kept another service's check from being served";
    // Let go, the port is opened on the server's own retry, with no call to set().
    close(holder);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!server.problems().empty() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(server.problems().empty()) << "the port was not tried again";
    EXPECT_TRUE(get(taken));
}

// A module reload starts the next generation's listeners before the old
// one's stop: both take the port, and the new one answers once the old is gone.
TEST(HealthCheckServer, TheNextGenerationListensBeforeThisOneStops) {
    const auto port = free_port();
    auto old_generation = std::make_unique<HealthCheckServer>();
    EXPECT_TRUE(old_generation->set({{port, HealthCheck{"a", "web", 1}}}, true).empty());
    HealthCheckServer next_generation;
    EXPECT_TRUE(next_generation.set({{port, HealthCheck{"a", "web", 0}}}, true).empty());
    old_generation.reset();
    const auto response = get(port);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 503);  // the next generation's answer
}

}  // namespace
}  // namespace membrane::service_lb
