// A real etcd (Debian's etcd-server) for one test: 127.0.0.1 on free ports,
// a temporary data folder, plain or TLS with client certificates. Killed
// (SIGKILL, and PR_SET_PDEATHSIG should the test die) and removed in every case.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace membrane::kernel::testing {

inline std::string etcd_binary() {
    for (const char* path : {"/usr/bin/etcd", "/usr/local/bin/etcd"}) {
        if (::access(path, X_OK) == 0) return path;
    }
    return {};
}

inline std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("no free port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

inline bool port_open(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd);
    return ok;
}

// CA, server (SAN IP:127.0.0.1) and client certificates, plus a second CA
// that signed nothing etcd knows, made with openssl in `dir`.
struct TestCerts {
    std::filesystem::path dir;
    std::filesystem::path ca() const { return dir / "ca.crt"; }
    std::filesystem::path other_ca() const { return dir / "other-ca.crt"; }
    std::filesystem::path server_cert() const { return dir / "server.crt"; }
    std::filesystem::path server_key() const { return dir / "server.key"; }
    std::filesystem::path client_cert() const { return dir / "client.crt"; }
    std::filesystem::path client_key() const { return dir / "client.key"; }
    std::filesystem::path stranger_cert() const { return dir / "stranger.crt"; }  // signed by other-ca
    std::filesystem::path stranger_key() const { return dir / "stranger.key"; }

    static TestCerts make(const std::filesystem::path& dir) {
        std::filesystem::create_directories(dir);
        const std::string d = dir.string();
        std::ofstream(dir / "server.ext") << "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n";
        std::ofstream(dir / "client.ext") << "extendedKeyUsage=clientAuth\n";
        const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
        const std::string script =
            "set -e; cd '" + d + "'; exec >openssl.log 2>&1\n"
            "openssl req -x509 " + key + " -keyout ca.key -out ca.crt -subj /CN=membrane-test-ca -days 1\n"
            "openssl req -x509 " + key + " -keyout other-ca.key -out other-ca.crt -subj /CN=membrane-other-ca -days 1\n"
            "openssl req " + key + " -keyout server.key -out server.csr -subj /CN=etcd\n"
            "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 -extfile server.ext\n"
            "openssl req " + key + " -keyout client.key -out client.csr -subj /CN=membrane-node\n"
            "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 1 -extfile client.ext\n"
            "openssl req " + key + " -keyout stranger.key -out stranger.csr -subj /CN=stranger\n"
            "openssl x509 -req -in stranger.csr -CA other-ca.crt -CAkey other-ca.key -CAcreateserial -out stranger.crt -days 1 -extfile client.ext\n";
        std::ofstream(dir / "make-certs.sh") << script;
        if (std::system(("bash '" + d + "/make-certs.sh'").c_str()) != 0) {
            throw std::runtime_error("openssl failed, see " + d + "/openssl.log");
        }
        return TestCerts{dir};
    }
};

class EtcdProcess {
public:
    // `certs`: serve https with client-certificate authentication.
    explicit EtcdProcess(std::filesystem::path dir, const TestCerts* certs = nullptr)
        : dir_(std::move(dir)), certs_(certs), client_port_(free_port()), peer_port_(free_port()) {
        std::filesystem::create_directories(dir_);
        start();
    }
    ~EtcdProcess() { stop(); }
    EtcdProcess(const EtcdProcess&) = delete;
    EtcdProcess& operator=(const EtcdProcess&) = delete;

    std::string url() const { return std::string(certs_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(client_port_); }

    // Same data, same ports.
    void start() {
        const std::string client = url();
        const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
        std::vector<std::string> args = {
            etcd_binary(), "--name", "membrane-test", "--data-dir", (dir_ / "data").string(),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "membrane-test=" + peer, "--log-level", "error", "--logger", "zap",
            "--log-outputs", (dir_ / "etcd.log").string()};
        if (certs_) {
            for (const auto& a : {std::string("--cert-file=") + certs_->server_cert().string(),
                                  std::string("--key-file=") + certs_->server_key().string(),
                                  std::string("--trusted-ca-file=") + certs_->ca().string(),
                                  std::string("--client-cert-auth")}) {
                args.push_back(a);
            }
        }
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        while (!port_open(client_port_)) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("etcd exited at start, see " + (dir_ / "etcd.log").string());
            }
            if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("etcd did not listen within 15 s");
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }

    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

private:
    std::filesystem::path dir_;
    const TestCerts* certs_;
    std::uint16_t client_port_;
    std::uint16_t peer_port_;
    pid_t pid_ = -1;
};

// A temporary folder removed at the end of the test.
struct TempDir {
    TempDir() {
        char pattern[] = "/tmp/membrane-etcd-test-XXXXXX";
        if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
        path = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::filesystem::path path;
};

}  // namespace membrane::kernel::testing
