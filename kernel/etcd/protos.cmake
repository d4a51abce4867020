# etcd's v3 gRPC API, generated at build time from the .proto files Debian
# ships in golang-etcd-server-dev (and the two packages they import), never
# committed. Only rpc.proto and its imports: KV, Watch and Lease are used,
# the other services come along in the same file.
pkg_check_modules(GRPCPP REQUIRED IMPORTED_TARGET grpc++ protobuf)
find_program(MEMBRANE_PROTOC protoc REQUIRED)
find_program(MEMBRANE_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
set(MEMBRANE_GOCODE_DIR /usr/share/gocode/src CACHE PATH "Where Debian's golang-*-dev packages put their sources")

set(etcd_proto_roots
  ${MEMBRANE_GOCODE_DIR}/go.etcd.io
  ${MEMBRANE_GOCODE_DIR}/github.com/gogo/protobuf
  ${MEMBRANE_GOCODE_DIR}/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis)
# <file relative to its root>:<root index>
set(etcd_protos
  etcd/etcdserver/etcdserverpb/rpc.proto:0
  etcd/mvcc/mvccpb/kv.proto:0
  etcd/auth/authpb/auth.proto:0
  gogoproto/gogo.proto:1
  google/api/annotations.proto:2
  google/api/http.proto:2)

set(etcd_proto_out ${CMAKE_CURRENT_BINARY_DIR}/etcd-proto)
set(etcd_proto_inputs)
set(etcd_proto_sources)
set(etcd_proto_includes)
foreach(root IN LISTS etcd_proto_roots)
  list(APPEND etcd_proto_includes -I${root})
endforeach()
foreach(entry IN LISTS etcd_protos)
  string(REPLACE ":" ";" parts ${entry})
  list(GET parts 0 file)
  list(GET parts 1 index)
  list(GET etcd_proto_roots ${index} root)
  if(NOT EXISTS ${root}/${file})
    message(FATAL_ERROR "${root}/${file} is missing: install golang-etcd-server-dev, golang-github-gogo-protobuf-dev "
                        "and golang-github-grpc-ecosystem-grpc-gateway-dev (scripts/install-deps.sh)")
  endif()
  list(APPEND etcd_proto_inputs ${root}/${file})
  string(REGEX REPLACE "\\.proto$" "" stem ${file})
  list(APPEND etcd_proto_sources ${etcd_proto_out}/${stem}.pb.cc ${etcd_proto_out}/${stem}.pb.h)
endforeach()
list(APPEND etcd_proto_sources
  ${etcd_proto_out}/etcd/etcdserver/etcdserverpb/rpc.grpc.pb.cc
  ${etcd_proto_out}/etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h)

add_custom_command(
  OUTPUT ${etcd_proto_sources}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${etcd_proto_out}
  COMMAND ${MEMBRANE_PROTOC} ${etcd_proto_includes} -I/usr/include
          --cpp_out=${etcd_proto_out} --grpc_out=${etcd_proto_out}
          --plugin=protoc-gen-grpc=${MEMBRANE_GRPC_CPP_PLUGIN} ${etcd_proto_inputs}
  DEPENDS ${etcd_proto_inputs}
  COMMENT "Generating etcd's v3 API (protoc, grpc_cpp_plugin)"
  VERBATIM)

# Generated code: built without our -Werror (protoc's output is not ours to fix).
add_library(membrane_etcd_proto STATIC ${etcd_proto_sources})
target_include_directories(membrane_etcd_proto SYSTEM PUBLIC ${etcd_proto_out})
target_link_libraries(membrane_etcd_proto PUBLIC PkgConfig::GRPCPP)
target_compile_options(membrane_etcd_proto PRIVATE -w)
# protoc gives every file the same file-local names (schemas, ...): one file per unit.
set_target_properties(membrane_etcd_proto PROPERTIES UNITY_BUILD OFF)
