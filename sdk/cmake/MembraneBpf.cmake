# membrane_add_bpf_object(<target> SOURCE <file.bpf.c> SYMBOL <symbol> [INCLUDE_DIRS dir...])
#
# Compiles a BPF C source with clang (-target bpf, with BTF) and links the
# object into <target> as read-only data, reachable through
# MEMBRANE_EMBEDDED_BPF(<symbol>) from <membrane/embed.hpp>.
include_guard(GLOBAL)

find_program(MEMBRANE_BPF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)

# The object is linked in through a small assembler file (.incbin), so a
# project that declared only C/CXX still works.
get_property(_membrane_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
if(NOT "ASM" IN_LIST _membrane_languages)
  enable_language(ASM)
endif()
unset(_membrane_languages)

function(membrane_add_bpf_object target)
  cmake_parse_arguments(ARG "" "SOURCE;SYMBOL" "INCLUDE_DIRS" ${ARGN})
  if(NOT ARG_SOURCE OR NOT ARG_SYMBOL)
    message(FATAL_ERROR "membrane_add_bpf_object(${target}): SOURCE and SYMBOL are required")
  endif()
  get_filename_component(src "${ARG_SOURCE}" ABSOLUTE)
  # Per target, so that several targets of one folder may embed the same source.
  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/membrane_bpf/${target}")
  file(MAKE_DIRECTORY "${out_dir}")
  set(obj "${out_dir}/${ARG_SYMBOL}.bpf.o")
  set(asm "${out_dir}/${ARG_SYMBOL}.bpf.S")

  set(includes)
  foreach(dir IN LISTS ARG_INCLUDE_DIRS MEMBRANE_SDK_BPF_INCLUDE_DIR)
    list(APPEND includes "-I${dir}")
  endforeach()
  if(CMAKE_LIBRARY_ARCHITECTURE)
    # <asm/types.h> lives in the multiarch folder on Debian.
    list(APPEND includes "-idirafter" "/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}")
  endif()

  add_custom_command(
    OUTPUT "${obj}"
    COMMAND "${MEMBRANE_BPF_CLANG}" -target bpf -O2 -g -Wall -Werror -mcpu=v3
            ${includes} -MD -MF "${obj}.d" -c "${src}" -o "${obj}"
    DEPENDS "${src}"
    DEPFILE "${obj}.d"
    COMMENT "BPF ${ARG_SYMBOL}"
    VERBATIM)

  # .incbin keeps the bytes out of the C++ compiler; hidden symbols keep them
  # out of the library's dynamic symbol table.
  file(CONFIGURE OUTPUT "${asm}" CONTENT [=[
    .section .rodata.membrane_bpf,"a"
    .balign 8
    .globl @ARG_SYMBOL@_start
    .hidden @ARG_SYMBOL@_start
@ARG_SYMBOL@_start:
    .incbin "@obj@"
    .globl @ARG_SYMBOL@_end
    .hidden @ARG_SYMBOL@_end
@ARG_SYMBOL@_end:
    .section .note.GNU-stack,"",@progbits
]=] @ONLY)
  set_source_files_properties("${asm}" PROPERTIES OBJECT_DEPENDS "${obj}" LANGUAGE ASM)
  target_sources(${target} PRIVATE "${asm}")
  add_custom_target(${target}_${ARG_SYMBOL}_bpf DEPENDS "${obj}")
  add_dependencies(${target} ${target}_${ARG_SYMBOL}_bpf)
endfunction()
