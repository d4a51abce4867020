#include "host/abi_check.hpp"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>

#include "bpf/unique_fd.hpp"

namespace membrane::kernel {
namespace {

const AbiDescriptor kHost = MEMBRANE_ABI_DESCRIPTOR_INIT("membraned");

// Every field an SDK 1.x descriptor has had since it moved into its section
// (SDK 1.2); a later minor may only append.
constexpr std::size_t kFirstSectionDescriptorSize = sizeof(AbiDescriptor);
static_assert(offsetof(AbiDescriptor, fmt) + sizeof(AbiLibraryVersion) == kFirstSectionDescriptorSize);

// The SDK 1.0/1.1 descriptor, exported as a symbol: only its head is read,
// to say which SDK built a module that predates the section.
constexpr const char* kLegacySymbol = "membrane_abi_descriptor";
struct LegacyDescriptorHead {
    std::uint32_t magic;
    std::uint32_t sdk_major;
    std::uint32_t sdk_minor;
};

template <std::size_t N>
std::string field(const char (&f)[N]) {
    return descriptor_field(f, N);
}

std::string version(const AbiDescriptor& d) {
    return std::to_string(d.sdk_major) + "." + std::to_string(d.sdk_minor);
}

std::string version(const AbiLibraryVersion& v) {
    return std::to_string(v.major) + "." + std::to_string(v.minor) + "." + std::to_string(v.patch);
}

// GCC and Clang on Linux share the Itanium C++ ABI, so either may build a
// module for an agent built by the other; anything else we cannot vouch for.
bool itanium_abi_compiler(const std::string& compiler) {
    return compiler.rfind("gcc ", 0) == 0 || compiler.rfind("clang ", 0) == 0;
}

// A third-party library whose types cross the module boundary, and how much
// of its version must agree for its types to have the same layout.
struct CrossingLibrary {
    const char* name;
    AbiLibraryVersion AbiDescriptor::*version;
    bool minor_must_match;
    const char* crossing;  // what crosses, for the message
};

constexpr CrossingLibrary kCrossingLibraries[] = {
    // Header-only: the module's inline copy of toml::table must be the agent's.
    {"toml++", &AbiDescriptor::tomlplusplus, true, "toml::table"},
    // A minor release changes the logger's layout (soname libspdlog.so.1.10).
    {"spdlog", &AbiDescriptor::spdlog, true, "spdlog::logger"},
    // ABI-stable within a major (soname libfmt.so.9).
    {"fmt", &AbiDescriptor::fmt, false, "fmt's buffers in spdlog's logging"},
};

std::optional<std::string> check_library(const CrossingLibrary& library, const AbiDescriptor& host,
                                         const AbiDescriptor& module) {
    const AbiLibraryVersion& ours = host.*library.version;
    const AbiLibraryVersion& theirs = module.*library.version;
    const bool same = ours.major == theirs.major && (!library.minor_must_match || ours.minor == theirs.minor);
    if (same) return std::nullopt;
    return std::string("it was built with ") + library.name + " " + version(theirs) + " but this agent uses " +
           library.name + " " + version(ours) + " (" + library.crossing + " crosses the module boundary, so the " +
           (library.minor_must_match ? "major.minor" : "major") + " versions must match)";
}

// --- reading the file ----------------------------------------------------------

struct ElfEnd {
    void operator()(Elf* elf) const { elf_end(elf); }
};

[[noreturn]] void fail(const std::string& why) { throw AbiReadError(why); }

std::string elf_error() { return elf_errmsg(-1); }

// The bytes of `section`, or nothing for a section without file contents.
std::pair<const unsigned char*, std::size_t> section_bytes(Elf_Scn* section) {
    Elf_Data* data = elf_getdata(section, nullptr);
    if (data == nullptr || data->d_buf == nullptr) return {nullptr, 0};
    return {static_cast<const unsigned char*>(data->d_buf), data->d_size};
}

// If the library exports the SDK 1.0/1.1 symbol, the SDK version its
// descriptor names (read from the file, never from a loaded library).
std::optional<std::string> legacy_sdk_version(Elf* elf) {
    Elf_Scn* section = nullptr;
    while ((section = elf_nextscn(elf, section)) != nullptr) {
        GElf_Shdr header;
        if (gelf_getshdr(section, &header) == nullptr || header.sh_type != SHT_DYNSYM) continue;
        Elf_Data* symbols = elf_getdata(section, nullptr);
        if (symbols == nullptr || header.sh_entsize == 0) return std::nullopt;
        const std::size_t count = header.sh_size / header.sh_entsize;
        for (std::size_t i = 0; i < count; ++i) {
            GElf_Sym symbol;
            if (gelf_getsym(symbols, static_cast<int>(i), &symbol) == nullptr) continue;
            const char* name = elf_strptr(elf, header.sh_link, symbol.st_name);
            if (name == nullptr || std::strcmp(name, kLegacySymbol) != 0) continue;
            // Found: find its bytes in the section that holds its address.
            Elf_Scn* holder = elf_getscn(elf, symbol.st_shndx);
            GElf_Shdr holder_header;
            if (holder == nullptr || gelf_getshdr(holder, &holder_header) == nullptr) return "1.0 or 1.1";
            const auto [bytes, size] = section_bytes(holder);
            const std::uint64_t offset = symbol.st_value - holder_header.sh_addr;
            LegacyDescriptorHead head{};
            if (bytes == nullptr || symbol.st_value < holder_header.sh_addr || offset > size ||
                size - offset < sizeof head) {
                return "1.0 or 1.1";
            }
            std::memcpy(&head, bytes + offset, sizeof head);
            if (head.magic != kAbiMagic) return "1.0 or 1.1";
            return std::to_string(head.sdk_major) + "." + std::to_string(head.sdk_minor);
        }
    }
    return std::nullopt;
}

}  // namespace

const AbiDescriptor& host_abi_descriptor() { return kHost; }

std::string descriptor_field(const char* f, std::size_t size) { return std::string(f, strnlen(f, size)); }

std::optional<std::string> check_abi(const AbiDescriptor& host, const AbiDescriptor& module,
                                     const std::string& expected_name) {
    if (module.magic != kAbiMagic) {
        return "its ABI descriptor has no valid magic number (not built with the Membrane SDK)";
    }
    if (module.sdk_major != host.sdk_major) {
        return "it was built against Membrane SDK " + version(module) + " but this agent provides SDK " +
               version(host) + " (the major versions must match; rebuild the module against SDK " +
               std::to_string(host.sdk_major) + ".x)";
    }
    if (module.sdk_minor > host.sdk_minor) {
        return "it needs Membrane SDK " + version(module) + " but this agent provides only SDK " + version(host) +
               " (upgrade the agent or build against an older SDK)";
    }
    const std::string name = field(module.module_name);
    if (name != expected_name) {
        return "its descriptor names it '" + name + "' but the file is " + expected_name +
               ".so (a module's file is <name>.so)";
    }
    const std::string module_stdlib = field(module.stdlib);
    const std::string host_stdlib = field(host.stdlib);
    if (module_stdlib != host_stdlib) {
        return "it was built with C++ standard library '" + module_stdlib + "' but this agent uses '" +
               host_stdlib + "'";
    }
    const std::string module_compiler = field(module.compiler);
    const std::string host_compiler = field(host.compiler);
    if (!itanium_abi_compiler(module_compiler) || !itanium_abi_compiler(host_compiler)) {
        return "it was built with compiler '" + module_compiler + "' and this agent with '" + host_compiler +
               "', which are not known to share a C++ ABI";
    }
    for (const CrossingLibrary& library : kCrossingLibraries) {
        if (auto why = check_library(library, host, module)) return why;
    }
    return std::nullopt;
}

AbiDescriptor read_abi_descriptor(const std::filesystem::path& file) {
    if (elf_version(EV_CURRENT) == EV_NONE) fail("libelf is unusable: " + elf_error());
    const UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) fail(std::strerror(errno));
    const std::unique_ptr<Elf, ElfEnd> elf(elf_begin(fd.get(), ELF_C_READ, nullptr));
    if (!elf || elf_kind(elf.get()) != ELF_K_ELF) fail("not a Membrane module: not an ELF file");

    // The descriptor is compared field by field as this process lays it
    // out: the file must be a shared library of this machine's kind.
    GElf_Ehdr ehdr;
    if (gelf_getehdr(elf.get(), &ehdr) == nullptr) fail("unreadable ELF header: " + elf_error());
    const unsigned char native_data = std::endian::native == std::endian::little ? ELFDATA2LSB : ELFDATA2MSB;
    if (ehdr.e_ident[EI_CLASS] != ELFCLASS64 || ehdr.e_ident[EI_DATA] != native_data) {
        fail("not a Membrane module for this machine: not a 64-bit ELF file of this byte order");
    }
    if (ehdr.e_type != ET_DYN) fail("not a Membrane module: not a shared library");

    std::size_t names_index = 0;
    if (elf_getshdrstrndx(elf.get(), &names_index) != 0) fail("no section names: " + elf_error());
    Elf_Scn* found = nullptr;
    Elf_Scn* section = nullptr;
    while ((section = elf_nextscn(elf.get(), section)) != nullptr) {
        GElf_Shdr header;
        if (gelf_getshdr(section, &header) == nullptr) fail("unreadable section header: " + elf_error());
        const char* name = elf_strptr(elf.get(), names_index, header.sh_name);
        if (name == nullptr || std::strcmp(name, MEMBRANE_ABI_SECTION) != 0) continue;
        if (found != nullptr) fail("it has more than one " MEMBRANE_ABI_SECTION " section");
        if (header.sh_type != SHT_PROGBITS) fail("its " MEMBRANE_ABI_SECTION " section holds no data");
        found = section;
    }
    if (found == nullptr) {
        if (auto legacy = legacy_sdk_version(elf.get())) {
            fail("it was built against Membrane SDK " + *legacy +
                           ", whose ABI descriptor can only be read by loading the library (running its code); "
                           "this agent reads it from the file's " MEMBRANE_ABI_SECTION
                           " section before loading: rebuild the module against SDK " +
                           std::to_string(kSdkMajor) + "." + std::to_string(kSdkMinor));
        }
        fail("not a Membrane module: no " MEMBRANE_ABI_SECTION " section (not built with MEMBRANE_MODULE)");
    }

    const auto [bytes, size] = section_bytes(found);
    constexpr std::size_t kHead = offsetof(AbiDescriptor, sdk_minor) + sizeof(std::uint32_t);
    if (bytes == nullptr || size < kHead) {
        fail("its " MEMBRANE_ABI_SECTION " section is " + std::to_string(size) +
                       " bytes, too short for an ABI descriptor");
    }
    AbiDescriptor descriptor{};
    std::memcpy(&descriptor, bytes, kHead);
    if (descriptor.magic != kAbiMagic) {
        fail("its " MEMBRANE_ABI_SECTION " section has no valid magic number (not built with the Membrane SDK)");
    }
    // Another major may lay the rest out differently: its version is all
    // that is read, and check_abi refuses it naming both versions.
    if (descriptor.sdk_major != kSdkMajor) return descriptor;
    if (descriptor.size != size) {
        fail("its " MEMBRANE_ABI_SECTION " section is " + std::to_string(size) +
                       " bytes but its descriptor says " + std::to_string(descriptor.size) +
                       " (MEMBRANE_MODULE used more than once?)");
    }
    if (size < kFirstSectionDescriptorSize) {
        fail("its ABI descriptor is " + std::to_string(size) + " bytes, shorter than any SDK " +
                       std::to_string(kSdkMajor) + ".x descriptor (" +
                       std::to_string(kFirstSectionDescriptorSize) + ")");
    }
    // A newer minor may have appended fields this agent does not know.
    std::memcpy(&descriptor, bytes, std::min(size, sizeof descriptor));
    descriptor.size = static_cast<std::uint32_t>(size);
    return descriptor;
}

}  // namespace membrane::kernel
