// Symbol visibility for SDK types that cross the module boundary (exception
// types, interfaces): default visibility keeps one identity for RTTI even
// though modules are built with -fvisibility=hidden.
#pragma once

#define MEMBRANE_SDK_API __attribute__((visibility("default")))
