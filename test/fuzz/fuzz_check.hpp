// What every fuzz target asserts beyond "no crash, no sanitizer report".
#pragma once

#include <cstdio>
#include <cstdlib>

// A property the parser promises; a violation is reported like a crash, so
// libFuzzer keeps the input.
#define FUZZ_CHECK(condition)                                                             \
    do {                                                                                  \
        if (!(condition)) {                                                               \
            std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #condition, __FILE__, __LINE__); \
            std::abort();                                                                 \
        }                                                                                 \
    } while (0)
