// The module contract: a class implementing membrane::Module, exported once
// with MEMBRANE_MODULE(Class, "name").
#pragma once

#include <toml++/toml.h>

#include "membrane/abi.hpp"
#include "membrane/api.hpp"
#include "membrane/context.hpp"

namespace membrane {

class MEMBRANE_SDK_API Module {
public:
    virtual ~Module() = default;

    // Register handlers, load BPF, fill slots. Throwing fails the start: the
    // host tears down whatever was registered and reports the error.
    virtual void start(Context& ctx) = 0;

    // Release what the module made outside the Context. Whatever went through
    // the Context is released by the host afterwards anyway.
    virtual void stop() {}

    // Apply a changed [module.<name>] table. Return false when the change
    // cannot be applied live; the host then reloads the module with it.
    virtual bool reconfigure(const toml::table& table) {
        (void)table;
        return false;
    }
};

}  // namespace membrane

// The ABI descriptor goes into the ".membrane_abi" section, which the host
// reads from the file before it loads the library (SDK 1.2; SDK 1.0 and 1.1
// exported it as the symbol membrane_abi_descriptor, readable only after
// dlopen had run the module's constructors). The factory pair is exported.
#define MEMBRANE_MODULE(ModuleClass, module_name)                                                               \
    MEMBRANE_ABI_SECTION_ATTRIBUTES const ::membrane::AbiDescriptor membrane_abi_descriptor_section =            \
        MEMBRANE_ABI_DESCRIPTOR_INIT(module_name);                                                              \
    extern "C" __attribute__((visibility("default"))) ::membrane::Module* membrane_create_module() {             \
        return new ModuleClass();                                                                               \
    }                                                                                                           \
    extern "C" __attribute__((visibility("default"))) void membrane_destroy_module(::membrane::Module* m) {     \
        delete m;                                                                                               \
    }
