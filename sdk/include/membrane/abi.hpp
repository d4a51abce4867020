// The ABI descriptor every module exports, checked by the host before it
// calls anything in the library. Plain C layout so a reader of any version
// can read the fields it knows.
#pragma once

#include <cstdint>

extern "C" {
#include "membrane/contract.h"
}

namespace membrane {

inline constexpr std::uint32_t kSdkMajor = MEMBRANE_SDK_MAJOR;
inline constexpr std::uint32_t kSdkMinor = MEMBRANE_SDK_MINOR;
inline constexpr std::uint32_t kAbiMagic = 0x4d424d44;  // "MBMD"

struct AbiDescriptor {
    std::uint32_t magic;      // kAbiMagic
    std::uint32_t sdk_major;  // must equal the host's
    std::uint32_t sdk_minor;  // must not exceed the host's
    char module_name[64];     // must match the file name (<name>.so)
    char compiler[64];        // e.g. "gcc 12.2.0" (C++ ABI family + version)
    char stdlib[64];          // e.g. "libstdc++ 12 cxx11-abi"
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

// Defined by <membrane/module.hpp> after a standard header has been seen, so
// the library macros (_GLIBCXX_RELEASE, _LIBCPP_VERSION) are available.
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

// The descriptor of the code being compiled right now (the host uses it to
// describe itself; the export macro uses it to describe the module).
#define MEMBRANE_ABI_DESCRIPTOR_INIT(name) \
    {::membrane::kAbiMagic, MEMBRANE_SDK_MAJOR, MEMBRANE_SDK_MINOR, name, MEMBRANE_ABI_COMPILER, MEMBRANE_ABI_STDLIB}
