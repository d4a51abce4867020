#!/usr/bin/env bash
# CTest fixture "membrane_sdk_installed" (integration.setup_install_sdk), run
# before the integration tests:
#
#   1. installs the whole build into $MEMBRANE_TEST_PREFIX;
#   2. builds the fixture modules (test/fixtures/counter-module) OUT OF TREE
#      against that installed SDK only, into $MEMBRANE_TEST_PREFIX/fixtures-build,
#      and copies counter.so, badabi.so and thrower.so to
#      $MEMBRANE_TEST_PREFIX/test-modules/;
#   3. builds the SDK template as installed (<prefix>/share/membrane/sdk/template)
#      the same way, and checks its install rule;
#   4. proves that no compile step read a file of the source or build tree
#      (other than the fixture's own sources): a module sees only the SDK.
#
# Any failing step fails the fixture, and with it every integration test.
set -euo pipefail

die() {
    echo "setup_install_sdk: FAILED: $*" >&2
    exit 1
}
step() { echo "setup_install_sdk: == $*"; }

[[ -n "${MEMBRANE_BUILD_DIR:-}" ]] || die "MEMBRANE_BUILD_DIR is not set"
[[ -n "${MEMBRANE_SOURCE_DIR:-}" ]] || die "MEMBRANE_SOURCE_DIR is not set"
[[ -n "${MEMBRANE_TEST_PREFIX:-}" ]] || die "MEMBRANE_TEST_PREFIX is not set"
command -v ninja >/dev/null || die "ninja is required (scripts/install-deps.sh installs it)"

src=$(realpath -e "$MEMBRANE_SOURCE_DIR") || die "no source dir $MEMBRANE_SOURCE_DIR"
build=$(realpath -e "$MEMBRANE_BUILD_DIR") || die "no build dir $MEMBRANE_BUILD_DIR"
prefix=$(realpath -m "$MEMBRANE_TEST_PREFIX")
case "$prefix" in
/ | "$src" | "$build" | /usr | /usr/local | /opt) die "refusing to wipe MEMBRANE_TEST_PREFIX=$prefix" ;;
esac
[[ -f "$build/CMakeCache.txt" ]] || die "$build is not a CMake build folder"

jobs="${MEMBRANE_FIXTURE_JOBS:-2}"
fixture_src="$src/test/fixtures/counter-module"
fixture_build="$prefix/fixtures-build"
template_build="$prefix/template-build"
modules_out="$prefix/test-modules"

cache_value() { sed -n "s|^$1:[A-Z]*=||p" "$build/CMakeCache.txt" | head -n1; }

# The fixtures are built with the compiler of the main build: the ABI
# descriptor names the compiler, and a third party builds with the distro's.
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
for var in CMAKE_C_COMPILER CMAKE_CXX_COMPILER; do
    value=$(cache_value "$var")
    if [[ -n "$value" ]]; then cmake_args+=("-D$var=$value"); fi
done
# The prefix is wiped each run; ccache keeps the rebuild cheap.
if command -v ccache >/dev/null; then
    cmake_args+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

# --- 1. install ---------------------------------------------------------------
# A fresh prefix each time, so a file that the install no longer provides
# cannot hide a packaging bug. The install goes through DESTDIR with prefix "/":
# every file lands under $prefix even if an install rule uses an absolute
# DESTINATION (a plain --prefix would write those into the real /etc or /usr).
step "install $build into $prefix"
rm -rf -- "$prefix"
mkdir -p -- "$prefix"
DESTDIR="$prefix" cmake --install "$build" --prefix / ||
    die "cmake --install $build failed (is the build complete? run cmake --build first)"

sdk_config=$(find "$prefix" -path '*/cmake/MembraneSDK/MembraneSDKConfig.cmake' -print -quit)
[[ -n "$sdk_config" ]] || die "the install has no MembraneSDKConfig.cmake"
[[ -f "$prefix/include/membrane/membrane.hpp" ]] || die "the install has no <membrane/membrane.hpp>"
[[ -f "$prefix/include/membrane-bpf/membrane/pipeline.h" ]] || die "the install has no BPF header membrane/pipeline.h"
[[ -f "$prefix/share/membrane/sdk/template/CMakeLists.txt" ]] || die "the install has no SDK template"

# --- 2. and 3. out-of-tree builds ----------------------------------------------
# build_out_of_tree <name> <source dir> <build dir>
build_out_of_tree() {
    local name=$1 source=$2 out=$3
    step "configure $name ($source) against the installed SDK"
    cmake -S "$source" -B "$out" "${cmake_args[@]}" || die "configuring $name against the installed SDK failed"
    local found
    found=$(sed -n 's|^MembraneSDK_DIR:[A-Z]*=||p' "$out/CMakeCache.txt")
    [[ "$found" == "$prefix"/* ]] || die "$name found MembraneSDK at '$found', not under $prefix"
    step "build $name"
    cmake --build "$out" -j "$jobs" || die "building $name against the installed SDK failed"
}

build_out_of_tree "fixture modules" "$fixture_src" "$fixture_build"
build_out_of_tree "SDK template" "$prefix/share/membrane/sdk/template" "$template_build"

step "install the SDK template (staged) to MEMBRANE_MODULE_INSTALL_DIR"
DESTDIR="$prefix/template-stage" cmake --install "$template_build" || die "installing the SDK template failed"
staged=$(find "$prefix/template-stage" -name hello.so -print -quit)
[[ "$staged" == "$prefix/template-stage$prefix/lib"*/membrane/modules/hello.so ]] ||
    die "the template installed to '$staged', not to <sdk prefix>/lib/membrane/modules"

# --- 4. a module sees only the installed SDK -----------------------------------
# Every file any compile step read (ninja's header deps for C++ and assembler,
# clang's depfiles for BPF) and every include folder any command was given:
# none may lie in the source or build tree, except the module's own sources
# and the install prefix.
# check_isolation <name> <build dir> <own source dir>
check_isolation() {
    local name=$1 out=$2 own=$3 path real bad=() read_sdk=0 read_bpf_sdk=0
    local files
    files=$( (ninja -C "$out" -t deps; find "$out" -name '*.bpf.o.d' -exec cat {} +) |
        grep -oE '/[^[:space:]:\\]+' | sort -u) || die "cannot list what $name read"
    # ... and every include folder any command (C++, assembler, clang -target bpf) was given.
    files+=$'\n'$(ninja -C "$out" -t commands | grep -oE -- '(-I|-isystem|-idirafter|-iquote) ?/[^[:space:]"]+' |
        sed -E 's/^-[a-zA-Z]+ ?//' | sort -u)
    while IFS= read -r path; do
        [[ -n "$path" ]] || continue
        real=$(realpath -m -- "$path")
        case "$real" in
        "$prefix"/*) ;;
        "$own"/*) ;;
        "$src"/* | "$build"/*) bad+=("$real") ;;
        esac
        [[ "$real" == "$prefix/include/membrane/module.hpp" ]] && read_sdk=1
        [[ "$real" == "$prefix/include/membrane-bpf/membrane/pipeline.h" ]] && read_bpf_sdk=1
    done <<<"$files"
    ((${#bad[@]} == 0)) || die "$name read files outside the installed SDK:"$'\n'"$(printf '  %s\n' "${bad[@]}")"
    ((read_sdk)) || die "$name did not read <membrane/module.hpp> from $prefix"
    ((read_bpf_sdk)) || die "$name did not read the BPF header membrane/pipeline.h from $prefix"
}
step "check that the out-of-tree builds read nothing but the installed SDK"
check_isolation "fixture modules" "$fixture_build" "$fixture_src"
check_isolation "SDK template" "$template_build" "$prefix/share/membrane/sdk/template"

# --- hand the modules to the tests ---------------------------------------------
install -d -m 0755 "$modules_out"
for module in counter badabi thrower; do
    [[ -f "$fixture_build/$module.so" ]] || die "$module.so was not built"
    install -m 0755 "$fixture_build/$module.so" "$modules_out/$module.so"
done
install -m 0755 "$template_build/hello.so" "$modules_out/hello.so"

step "ready: SDK in $prefix, test modules in $modules_out:"
ls -l "$modules_out"
