#include "log/logging.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "log/log_level.hpp"
#include "membrane/config.hpp"

namespace membrane::kernel {
namespace {

// "%*" -> "<N>", the syslog priority journald reads from a stream's line start.
class JournalPriorityFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        const char* prefix = "<6>";
        switch (msg.level) {
            case spdlog::level::trace:
            case spdlog::level::debug: prefix = "<7>"; break;
            case spdlog::level::info: prefix = "<6>"; break;
            case spdlog::level::warn: prefix = "<4>"; break;
            case spdlog::level::err: prefix = "<3>"; break;
            case spdlog::level::critical: prefix = "<2>"; break;
            default: break;
        }
        dest.append(prefix, prefix + 3);
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JournalPriorityFlag>(); }
};

std::unique_ptr<spdlog::formatter> make_formatter(LogStyle style) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    if (style == LogStyle::journald) {
        formatter->add_flag<JournalPriorityFlag>('*').set_pattern("%*[%n] %v");
    } else {
        formatter->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-8l%$ [%n] %v");
    }
    return formatter;
}

spdlog::level::level_enum level_or_throw(const std::string& level) {
    auto parsed = parse_log_level(level);
    if (!parsed) {
        throw ConfigError("unknown log level '" + level + "' (use one of " + std::string(kLogLevelNames) + ")");
    }
    return *parsed;
}

// Every logger writes into one dist_sink, whose output is swapped by
// setup_logging, so loggers made before a setup follow it.
struct LoggingState {
    std::mutex mutex;
    std::shared_ptr<spdlog::sinks::dist_sink_mt> shared_sink = std::make_shared<spdlog::sinks::dist_sink_mt>();
    spdlog::level::level_enum level = spdlog::level::info;
    bool configured = false;
    std::vector<std::weak_ptr<spdlog::logger>> loggers;
};

LoggingState& state() {
    static LoggingState instance;  // never destroyed before loggers that outlive main's locals
    return instance;
}

void apply_level_locked(LoggingState& s) {
    std::erase_if(s.loggers, [&](const std::weak_ptr<spdlog::logger>& weak) {
        auto logger = weak.lock();
        if (logger) logger->set_level(s.level);
        return !logger;
    });
}

void setup_locked(LoggingState& s, spdlog::level::level_enum level, LogStyle style, spdlog::sink_ptr sink) {
    sink->set_formatter(make_formatter(style));
    s.shared_sink->set_sinks({std::move(sink)});
    s.level = level;
    s.configured = true;
    apply_level_locked(s);
}

spdlog::sink_ptr stderr_sink(LogStyle style) {
    if (style == LogStyle::journald) return std::make_shared<spdlog::sinks::stderr_sink_mt>();
    return std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic);
}

std::shared_ptr<spdlog::logger> make_logger_locked(LoggingState& s, const std::string& name) {
    auto logger = std::make_shared<spdlog::logger>(name, s.shared_sink);
    logger->set_level(s.level);
    logger->flush_on(spdlog::level::warn);
    s.loggers.push_back(logger);
    return logger;
}

}  // namespace

LogStyle detect_log_style() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr) return LogStyle::plain;
    unsigned long long device = 0;
    unsigned long long inode = 0;
    if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return LogStyle::plain;
    struct stat st {};
    if (fstat(STDERR_FILENO, &st) != 0) return LogStyle::plain;
    const bool is_our_stderr = static_cast<unsigned long long>(st.st_dev) == device &&
                               static_cast<unsigned long long>(st.st_ino) == inode;
    return is_our_stderr ? LogStyle::journald : LogStyle::plain;
}

void setup_logging(const std::string& level) {
    const LogStyle style = detect_log_style();
    setup_logging(level, style, stderr_sink(style));
}

void setup_logging(const std::string& level, LogStyle style, spdlog::sink_ptr sink) {
    const auto parsed = level_or_throw(level);
    LoggingState& s = state();
    std::shared_ptr<spdlog::logger> default_logger;
    {
        std::lock_guard lock(s.mutex);
        setup_locked(s, parsed, style, std::move(sink));
        default_logger = make_logger_locked(s, "membraned");
    }
    spdlog::set_default_logger(std::move(default_logger));
}

std::shared_ptr<spdlog::logger> make_logger(const std::string& name) {
    LoggingState& s = state();
    std::lock_guard lock(s.mutex);
    if (!s.configured) {
        const LogStyle style = detect_log_style();
        setup_locked(s, spdlog::level::info, style, stderr_sink(style));
    }
    return make_logger_locked(s, name);
}

void set_log_level(const std::string& level) {
    const auto parsed = level_or_throw(level);
    LoggingState& s = state();
    std::lock_guard lock(s.mutex);
    s.level = parsed;
    apply_level_locked(s);
}

}  // namespace membrane::kernel
