// The healthCheckNodePort of each LoadBalancer service with
// externalTrafficPolicy Local, served as kube-proxy serves it: an HTTP
// request for any path on that port answers 200 while this node has a local
// endpoint of the service and 503 when it has none (or this module's
// datapath does not hold every service), with kube-proxy's JSON body, so a
// cloud load balancer sends traffic only to nodes that can serve it without
// a second hop.
//
// One thread of its own runs every listener (Boost.Beast on an Asio
// io_context), so a slow client never holds up the agent's loop; each port
// has its own acceptor, so a port another process holds fails that service
// alone, and is tried again every few seconds. Acceptors take SO_REUSEPORT:
// a module reload starts the next generation's listeners while this one's
// still listen. At most kMaxConnections clients are served at once (more
// are closed at once), so a flood cannot take the agent's file descriptors.
// set() is called from one thread (the module's loop) and waits for the
// listener thread to open and close acceptors; the answers are a copy under
// a mutex. Destroying the server closes every listener and joins the
// thread: a module must do it in stop(), before its code is unloaded.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace membrane::service_lb {

struct HealthCheck {
    std::string namespace_;
    std::string name;
    std::uint32_t local_endpoints = 0;
    bool operator==(const HealthCheck&) const = default;
};

class HealthCheckServer {
public:
    // Listens on every IPv4 address of its network namespace, as kube-proxy does.
    HealthCheckServer();
    ~HealthCheckServer();
    HealthCheckServer(const HealthCheckServer&) = delete;
    HealthCheckServer& operator=(const HealthCheckServer&) = delete;

    // The ports to serve and what each answers. Listeners open and close to
    // match (a port that could not be opened is tried again at the next
    // call, and every few seconds); the answers change at once. Returns
    // port -> why it is not served, empty when all are.
    std::map<std::uint16_t, std::string> set(const std::map<std::uint16_t, HealthCheck>& checks, bool proxy_healthy);
    // Port -> why it is not served, now (a port that failed may since have been opened).
    std::map<std::uint16_t, std::string> problems() const;

    static constexpr std::size_t kMaxConnections = 64;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace membrane::service_lb
