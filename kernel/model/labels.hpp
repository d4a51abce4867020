// Label sets: what they may hold and how they are written in messages.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "membrane/model.hpp"

namespace membrane::kernel {

// The key reserved identities use ({"reserved": "host"}); endpoints may not.
inline constexpr const char* kReservedLabelKey = "reserved";

// Why `labels` cannot be an endpoint's, or nullopt. Keys: 1..253 characters of
// letters, digits and "._/-:" (e.g. "k8s:app"); values: up to 253 printable characters without
// ',' or '='; the key "reserved" belongs to the reserved identities.
std::optional<std::string> label_problem(const Labels& labels);

// The labels that make an identity: `labels` without those whose key is in
// `excluded` ([identity] exclude_labels), as is or after its source prefix
// (the text up to the first ':'): "io.kubernetes.pod.name" drops
// "k8s:io.kubernetes.pod.name" too, "k8s:x" drops only "k8s:x".
Labels identity_labels(const Labels& labels, const std::vector<std::string>& excluded);

// "app=web,tier=front" (sorted by key, as Labels is).
std::string format_labels(const Labels& labels);

}  // namespace membrane::kernel
