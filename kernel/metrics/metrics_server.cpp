#include "metrics/metrics_server.hpp"

#include <mutex>
#include <utility>
#include <vector>

#include <CivetServer.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>

#include "metrics/metric_families.hpp"

namespace membrane::kernel {

// What the HTTP threads read: the families the loop made last.
class MetricsSnapshot final : public prometheus::Collectable {
public:
    std::vector<prometheus::MetricFamily> Collect() const override {
        std::lock_guard lock(mutex_);
        return families_;
    }
    void replace(std::vector<prometheus::MetricFamily> families) {
        std::lock_guard lock(mutex_);
        families_ = std::move(families);
    }

private:
    mutable std::mutex mutex_;
    std::vector<prometheus::MetricFamily> families_;
};

namespace {

// civetweb says why it cannot listen only through its log callback, which
// has no user pointer: the constructing thread points this at a string for
// the duration of mg_start. Messages at any other time (a client that went
// away mid-request) are dropped: they are the client's business.
thread_local std::string* civetweb_start_problem = nullptr;

int keep_civetweb_message(const mg_connection*, const char* message) {
    if (civetweb_start_problem != nullptr && civetweb_start_problem->empty()) *civetweb_start_problem = message;
    return 1;  // handled: civetweb prints nothing itself
}

}  // namespace

MetricsServer::MetricsServer(boost::asio::io_context& io, const std::string& address, Gather gather,
                             std::shared_ptr<spdlog::logger> log, std::chrono::milliseconds period)
    : gather_(std::move(gather)),
      log_(std::move(log)),
      period_(period),
      snapshot_(std::make_shared<MetricsSnapshot>()),
      timer_(io) {
    // Figures first, so the first scrape already has them.
    refresh();
    CivetCallbacks callbacks;
    callbacks.log_message = keep_civetweb_message;
    std::string problem;
    civetweb_start_problem = &problem;
    try {
        // civetweb's threads set SIGPIPE to SIG_IGN for the process, which a
        // daemon writing to sockets wants anyway. (Its header also warns of
        // SIGCHLD, for CGI; Debian's build leaves SIGCHLD alone, which a
        // module's waitpid() relies on: the unit test holds it to that.)
        // Two threads: a slow client does not hold up another scrape. No
        // keep-alive (civetweb's default): a connection ends with its response.
        exposer_ = std::make_unique<prometheus::Exposer>(
            std::vector<std::string>{"listening_ports", address, "num_threads", "2"}, &callbacks);
    } catch (const std::exception& e) {
        civetweb_start_problem = nullptr;
        throw MetricsError("cannot serve metrics on " + address + ": " + (problem.empty() ? e.what() : problem));
    }
    civetweb_start_problem = nullptr;
    exposer_->RegisterCollectable(snapshot_);
    const auto ports = exposer_->GetListeningPorts();
    port_ = ports.empty() ? 0 : static_cast<std::uint16_t>(ports.front());
    arm();
}

MetricsServer::~MetricsServer() {
    // Joins the HTTP threads: from here on nothing reads the snapshot.
    exposer_.reset();
    timer_.cancel();
}

void MetricsServer::arm() {
    timer_.expires_after(period_);
    // The snapshot outlives the timer's handler only while this server lives:
    // a handler already queued when the server goes finds it gone.
    timer_.async_wait([this, alive = std::weak_ptr<MetricsSnapshot>(snapshot_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        refresh();
        arm();
    });
}

void MetricsServer::refresh() {
    try {
        snapshot_->replace(metric_families(gather_()));
        last_problem_.clear();
    } catch (const std::exception& e) {
        if (e.what() != last_problem_) {
            last_problem_ = e.what();
            log_->warn("metrics not refreshed, serving the previous figures: {}", last_problem_);
        }
    }
}

}  // namespace membrane::kernel
