// The ABI descriptor every module carries, checked by the host before it
// runs anything in the library. MEMBRANE_MODULE puts it in the ELF section
// ".membrane_abi", which the host reads from the file before dlopen: dlopen
// runs the library's static constructors, so a descriptor that could only be
// read after dlopen would be checked after the module's code had run.
//
// Plain fixed layout with `size` up front, so a reader of any version can
// read the fields it knows (a later minor appends fields, never moves one).
#pragma once

#include <cstdint>

// The libraries whose types cross the module boundary (their version
// macros): toml++ (toml::table in Module::reconfigure and Context::config),
// spdlog (spdlog::logger in Context::log) and the fmt it formats with (its
// buffers pass from the module's inline logging code into the agent's
// sinks). libbpf and libnl do not: SDK headers hand over no libbpf or libnl
// object, a module links and uses them privately.
#include <toml++/impl/version.h>
#include <spdlog/version.h>
#include <spdlog/fmt/fmt.h>

extern "C" {
#include "membrane/contract.h"
}

namespace membrane {

inline constexpr std::uint32_t kSdkMajor = MEMBRANE_SDK_MAJOR;
inline constexpr std::uint32_t kSdkMinor = MEMBRANE_SDK_MINOR;
inline constexpr std::uint32_t kAbiMagic = 0x4d424d44;  // "MBMD"

// The ELF section holding a module's descriptor (one AbiDescriptor).
#define MEMBRANE_ABI_SECTION ".membrane_abi"

struct AbiLibraryVersion {
    std::uint32_t major;
    std::uint32_t minor;
    std::uint32_t patch;
};

struct AbiDescriptor {
    std::uint32_t magic;      // kAbiMagic
    std::uint32_t size;       // sizeof(AbiDescriptor) in the SDK that built it
    std::uint32_t sdk_major;  // must equal the host's
    std::uint32_t sdk_minor;  // must not exceed the host's
    char module_name[64];     // must match the file name (<name>.so)
    char compiler[64];        // e.g. "gcc 12.2.0" (C++ ABI family + version)
    char stdlib[64];          // e.g. "libstdc++ 12 cxx11-abi"
    AbiLibraryVersion tomlplusplus;
    AbiLibraryVersion spdlog;
    AbiLibraryVersion fmt;
};

namespace abi_detail {

#define MEMBRANE_ABI_STR2(x) #x
#define MEMBRANE_ABI_STR(x) MEMBRANE_ABI_STR2(x)

#if defined(__clang__)
#define MEMBRANE_ABI_COMPILER \
    "clang " MEMBRANE_ABI_STR(__clang_major__) "." MEMBRANE_ABI_STR(__clang_minor__) "." MEMBRANE_ABI_STR(__clang_patchlevel__)
#elif defined(__GNUC__)
#define MEMBRANE_ABI_COMPILER \
    "gcc " MEMBRANE_ABI_STR(__GNUC__) "." MEMBRANE_ABI_STR(__GNUC_MINOR__) "." MEMBRANE_ABI_STR(__GNUC_PATCHLEVEL__)
#else
#define MEMBRANE_ABI_COMPILER "unknown"
#endif

}  // namespace abi_detail
}  // namespace membrane

// A standard header has been seen by now, so the library macros
// (_GLIBCXX_RELEASE, _LIBCPP_VERSION) are available.
#include <version>
#if defined(_LIBCPP_VERSION)
#define MEMBRANE_ABI_STDLIB "libc++ " MEMBRANE_ABI_STR(_LIBCPP_VERSION)
#elif defined(_GLIBCXX_RELEASE)
#if _GLIBCXX_USE_CXX11_ABI
#define MEMBRANE_ABI_STDLIB "libstdc++ " MEMBRANE_ABI_STR(_GLIBCXX_RELEASE) " cxx11-abi"
#else
#define MEMBRANE_ABI_STDLIB "libstdc++ " MEMBRANE_ABI_STR(_GLIBCXX_RELEASE) " old-abi"
#endif
#else
#define MEMBRANE_ABI_STDLIB "unknown"
#endif

// The third-party versions of the code being compiled right now.
#define MEMBRANE_ABI_LIBRARIES                                             \
    {TOML_LIB_MAJOR, TOML_LIB_MINOR, TOML_LIB_PATCH},                      \
        {SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR, SPDLOG_VER_PATCH},            \
        {FMT_VERSION / 10000, FMT_VERSION / 100 % 100, FMT_VERSION % 100}

// The descriptor of the code being compiled right now (the host uses it to
// describe itself; the export macro uses it to describe the module).
#define MEMBRANE_ABI_DESCRIPTOR_INIT(name)                                                                        \
    {::membrane::kAbiMagic, sizeof(::membrane::AbiDescriptor), MEMBRANE_SDK_MAJOR, MEMBRANE_SDK_MINOR, name,        \
     MEMBRANE_ABI_COMPILER, MEMBRANE_ABI_STDLIB, MEMBRANE_ABI_LIBRARIES}

// Places a descriptor in the module's ".membrane_abi" section. `used` (and
// `retain` where the toolchain knows it) keep it from being discarded
// although no code refers to it; it is not exported: the host reads the file.
#if defined(__has_attribute) && __has_attribute(retain)
#define MEMBRANE_ABI_SECTION_ATTRIBUTES __attribute__((section(MEMBRANE_ABI_SECTION), used, retain))
#else
#define MEMBRANE_ABI_SECTION_ATTRIBUTES __attribute__((section(MEMBRANE_ABI_SECTION), used))
#endif
