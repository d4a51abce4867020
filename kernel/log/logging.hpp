// One set of sinks for the whole daemon, one logger per module or kernel
// part, named after it, so every line says who spoke.
//
//   setup_logging(config.agent.log_level);      // once, early
//   auto log = make_logger("counter");           // per module / part
//   set_log_level("debug");                      // SIGHUP with a new log_level
#pragma once

#include <memory>
#include <string>

#include <spdlog/logger.h>
#include <spdlog/sinks/sink.h>

namespace membrane::kernel {

enum class LogStyle {
    plain,     // "2026-01-02 03:04:05.678 info     [counter] text", on a terminal in colour
    journald,  // "<6>[counter] text": journald adds the time and reads the priority prefix
};

// journald when systemd connected stderr to the journal: JOURNAL_STREAM is
// set and names stderr's device:inode (a child whose stderr was redirected
// elsewhere inherits the variable but not the stream, and gets plain).
LogStyle detect_log_style();

// Sends every logger to stderr in the detected style, at `level` (trace,
// debug, info, warn, error). Callable again: loggers already made follow.
// Throws membrane::ConfigError on an unknown level.
void setup_logging(const std::string& level);
// The same with a chosen style and sink (tests, tools).
void setup_logging(const std::string& level, LogStyle style, spdlog::sink_ptr sink);

// A logger sharing the daemon's sinks and level. Not registered with spdlog's
// registry, so two generations of a module may each hold one of the same name.
// Before setup_logging it logs at info to stderr.
std::shared_ptr<spdlog::logger> make_logger(const std::string& name);

// Changes the level of every logger made by make_logger and of spdlog's
// default logger. Throws membrane::ConfigError on an unknown level.
void set_log_level(const std::string& level);

}  // namespace membrane::kernel
