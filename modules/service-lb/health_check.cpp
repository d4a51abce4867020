#include "health_check.hpp"

#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace membrane::service_lb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// A client has this long to send its request and take the answer.
constexpr auto kClientTimeout = std::chrono::seconds(5);
// A port that could not be opened is tried again this often.
constexpr auto kRetryPeriod = std::chrono::seconds(2);
// After a failed accept (out of file descriptors), the acceptor waits this long.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

}  // namespace

// Handlers hold a plain pointer to it: they run on its thread only, which
// the server joins before the state goes (a shared one would be a cycle
// through the io_context's pending handlers).
struct HealthCheckServer::State {
    std::size_t connections = 0;  // the listener thread's only: clients being served (outlives io's handlers)
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    std::thread thread;
    std::map<std::uint16_t, std::shared_ptr<tcp::acceptor>> acceptors;  // the listener thread's only
    asio::steady_timer retry{io};  // the listener thread's only

    mutable std::mutex mutex;  // guards the answers and the problems
    std::map<std::uint16_t, HealthCheck> checks;
    bool proxy_healthy = true;
    std::map<std::uint16_t, std::string> problems;  // ports wanted and not open, and why

    // Runs `work` on the listener thread and waits for it.
    template <class Work>
    auto on_listener_thread(Work work) {
        std::packaged_task<decltype(work())()> task(std::move(work));
        auto result = task.get_future();
        asio::post(io, std::move(task));
        return result.get();
    }

    // What a request to `port` answers: kube-proxy's body
    // (pkg/proxy/healthcheck/service_health.go) and status.
    http::response<http::string_body> answer(std::uint16_t port, unsigned version) {
        http::response<http::string_body> response;
        response.version(version);
        response.keep_alive(false);
        std::lock_guard lock(mutex);
        const auto found = checks.find(port);
        if (found == checks.end()) {  // closed since the connection came in
            response.result(http::status::not_found);
            return response;
        }
        const HealthCheck& check = found->second;
        response.result(check.local_endpoints > 0 && proxy_healthy ? http::status::ok
                                                                   : http::status::service_unavailable);
        response.set(http::field::content_type, "application/json");
        response.set("X-Content-Type-Options", "nosniff");
        response.body() = nlohmann::json{{"service", {{"namespace", check.namespace_}, {"name", check.name}}},
                                         {"localEndpoints", check.local_endpoints},
                                         {"serviceProxyHealthy", proxy_healthy}}
                              .dump();
        response.prepare_payload();
        return response;
    }

    void accept(const std::shared_ptr<tcp::acceptor>& acceptor, std::uint16_t port) {
        acceptor->async_accept([self = this, acceptor, port](beast::error_code error, tcp::socket socket) {
            if (error == asio::error::operation_aborted || !acceptor->is_open()) return;
            if (error) {  // EMFILE and the like: the backlog stays readable, so wait rather than spin
                auto pause = std::make_shared<asio::steady_timer>(self->io, kAcceptBackoff);
                pause->async_wait([self, acceptor, port, pause](beast::error_code) {
                    if (acceptor->is_open()) self->accept(acceptor, port);
                });
                return;
            }
            if (self->connections < kMaxConnections) self->serve(std::move(socket), port);  // else closed here
            self->accept(acceptor, port);
        });
    }

    // One request, one answer, then the connection is closed.
    void serve(tcp::socket socket, std::uint16_t port) {
        struct Connection {
            beast::tcp_stream stream;
            beast::flat_buffer buffer;
            http::request<http::empty_body> request;
            http::response<http::string_body> response;
        };
        // Counted while it lives: the last handler holding it ends the count.
        ++connections;
        auto connection = std::shared_ptr<Connection>(
            new Connection{beast::tcp_stream(std::move(socket)), {}, {}, {}}, [self = this](Connection* done) {
                --self->connections;
                delete done;
            });
        connection->stream.expires_after(kClientTimeout);
        http::async_read(connection->stream, connection->buffer, connection->request,
                         [self = this, connection, port](beast::error_code error, std::size_t) {
                             if (error) return;  // the client's business: it went away, or sent no HTTP
                             connection->response = self->answer(port, connection->request.version());
                             http::async_write(connection->stream, connection->response,
                                               [connection](beast::error_code, std::size_t) {
                                                   beast::error_code ignored;
                                                   connection->stream.socket().shutdown(tcp::socket::shutdown_both,
                                                                                        ignored);
                                               });
                         });
    }

    // Opens `port` on every address; "" on success, else why not.
    std::string open(std::uint16_t port) {
        auto acceptor = std::make_shared<tcp::acceptor>(io);
        beast::error_code error;
        const tcp::endpoint endpoint(tcp::v4(), port);
        acceptor->open(endpoint.protocol(), error);
        if (!error) acceptor->set_option(tcp::acceptor::reuse_address(true), error);
        if (!error) acceptor->set_option(ReusePort(true), error);
        if (!error) acceptor->bind(endpoint, error);
        if (!error) acceptor->listen(asio::socket_base::max_listen_connections, error);
        if (error) return "cannot listen on port " + std::to_string(port) + ": " + error.message();
        acceptors[port] = acceptor;
        accept(acceptor, port);
        return {};
    }

    // Makes the acceptors those of the wanted ports; records what failed,
    // and tries again later while something did.
    void reconcile() {
        std::map<std::uint16_t, HealthCheck> wanted;
        {
            std::lock_guard lock(mutex);
            wanted = checks;
        }
        for (auto it = acceptors.begin(); it != acceptors.end();) {
            if (wanted.contains(it->first)) {
                ++it;
                continue;
            }
            it->second->close();
            it = acceptors.erase(it);
        }
        std::map<std::uint16_t, std::string> failed;
        for (const auto& [port, check] : wanted) {
            if (acceptors.contains(port)) continue;
            if (auto problem = open(port); !problem.empty()) failed[port] = std::move(problem);
        }
        const bool again = !failed.empty();
        {
            std::lock_guard lock(mutex);
            problems = std::move(failed);
        }
        retry.cancel();
        if (again) {
            retry.expires_after(kRetryPeriod);
            retry.async_wait([self = this](beast::error_code error) {
                if (!error) self->reconcile();
            });
        }
    }
};

HealthCheckServer::HealthCheckServer() : state_(std::make_unique<State>()) {
    state_->thread = std::thread([state = state_.get()] { state->io.run(); });
}

HealthCheckServer::~HealthCheckServer() {
    state_->on_listener_thread([state = state_.get()] {
        state->retry.cancel();
        for (auto& [port, acceptor] : state->acceptors) acceptor->close();
        state->acceptors.clear();
    });
    // Connections in flight end now, not after their timeout.
    state_->io.stop();
    state_->thread.join();
}

std::map<std::uint16_t, std::string> HealthCheckServer::set(const std::map<std::uint16_t, HealthCheck>& checks,
                                                            bool proxy_healthy) {
    {
        std::lock_guard lock(state_->mutex);
        state_->checks = checks;
        state_->proxy_healthy = proxy_healthy;
    }
    state_->on_listener_thread([state = state_.get()] { state->reconcile(); });
    return problems();
}

std::map<std::uint16_t, std::string> HealthCheckServer::problems() const {
    std::lock_guard lock(state_->mutex);
    return state_->problems;
}

}  // namespace membrane::service_lb
