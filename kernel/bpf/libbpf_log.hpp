// libbpf prints through one process-wide callback. While a LibbpfLogCapture
// lives on a thread, libbpf's messages from that thread go to its logger, and
// the warnings (verifier log, pin errors) are kept so that a failed load can
// quote them in its BpfError.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <spdlog/logger.h>

namespace membrane::kernel {

class LibbpfLogCapture {
public:
    explicit LibbpfLogCapture(spdlog::logger& log);
    ~LibbpfLogCapture();
    LibbpfLogCapture(const LibbpfLogCapture&) = delete;
    LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;

    // The last `lines` warning lines, newline-separated; empty if none.
    std::string warnings_tail(std::size_t lines) const;

    void take(int level, std::string line);

private:
    spdlog::logger& log_;
    std::vector<std::string> warnings_;
    LibbpfLogCapture* outer_;
};

}  // namespace membrane::kernel
