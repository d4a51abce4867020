# membrane_add_module(<name> SOURCES <files...>)
#
# Builds <name>.so, a Membrane module: hidden visibility, no undefined symbols,
# linked against the SDK only. Embed BPF with membrane_add_bpf_object(<name> ...).
include_guard(GLOBAL)

function(membrane_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  add_library(${name} MODULE ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "${name}"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_link_libraries(${name} PRIVATE membrane::sdk)
  target_link_options(${name} PRIVATE "LINKER:--no-undefined")
  target_compile_features(${name} PRIVATE cxx_std_20)
endfunction()
