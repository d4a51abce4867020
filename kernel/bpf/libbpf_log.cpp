#include "bpf/libbpf_log.hpp"

#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <string>

#include <bpf/libbpf.h>

namespace membrane::kernel {

namespace {

thread_local LibbpfLogCapture* current_capture = nullptr;

int forward_libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
    if (!current_capture) return 0;  // outside the registry: libbpf stays quiet
    // The verifier log arrives as one long multi-line message: size it first.
    va_list sizing;
    va_copy(sizing, args);
    const int length = std::vsnprintf(nullptr, 0, format, sizing);
    va_end(sizing);
    if (length <= 0) return 0;
    std::string text(static_cast<std::size_t>(length) + 1, '\0');
    std::vsnprintf(text.data(), text.size(), format, args);
    text.resize(static_cast<std::size_t>(length));

    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(start, end - start);
        while (!line.empty() && line.back() == ' ') line.pop_back();
        if (!line.empty()) current_capture->take(level, std::move(line));
        start = end + 1;
    }
    return 0;
}

}  // namespace

LibbpfLogCapture::LibbpfLogCapture(spdlog::logger& log) : log_(log), outer_(current_capture) {
    static std::once_flag installed;
    std::call_once(installed, [] { libbpf_set_print(forward_libbpf_print); });
    current_capture = this;
}

LibbpfLogCapture::~LibbpfLogCapture() { current_capture = outer_; }

void LibbpfLogCapture::take(int level, std::string line) {
    switch (level) {
    case LIBBPF_WARN:
        log_.debug("{}", line);  // the caller decides whether it matters
        warnings_.push_back(std::move(line));
        break;
    case LIBBPF_INFO:
        log_.debug("{}", line);
        break;
    default:
        log_.trace("{}", line);
        break;
    }
}

std::string LibbpfLogCapture::warnings_tail(std::size_t lines) const {
    std::string tail;
    const std::size_t first = warnings_.size() > lines ? warnings_.size() - lines : 0;
    for (std::size_t i = first; i < warnings_.size(); ++i) {
        tail += "\n  ";
        tail += warnings_[i];
    }
    return tail;
}

}  // namespace membrane::kernel
