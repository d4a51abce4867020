// Access to a BPF object embedded by the CMake function
// membrane_add_bpf_object(<target> SOURCE x.bpf.c SYMBOL <symbol>): the module
// library carries its BPF, so reloading the library reloads its BPF.
//
// At namespace scope:   MEMBRANE_EMBEDDED_BPF(counter_bpf)
// then:                 std::span<const std::byte> elf = counter_bpf();
#pragma once

#include <cstddef>
#include <span>

#define MEMBRANE_EMBEDDED_BPF(symbol)                                                            \
    extern "C" const std::byte symbol##_start[];                                                 \
    extern "C" const std::byte symbol##_end[];                                                   \
    inline std::span<const std::byte> symbol() {                                                 \
        return {symbol##_start, static_cast<std::size_t>(symbol##_end - symbol##_start)};        \
    }
