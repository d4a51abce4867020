// CNI_ARGS ("K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;IgnoreUnknown=1")
// and the pod labels they carry.
#pragma once

#include <map>
#include <string>

namespace membrane::cni {

using Labels = std::map<std::string, std::string>;

// The Kubernetes conventions, as the labels the agent's identities use.
inline constexpr const char* kPodNamespaceLabel = "k8s:io.kubernetes.pod.namespace";
inline constexpr const char* kPodNameLabel = "k8s:io.kubernetes.pod.name";

struct CniArgs {
    bool ignore_unknown = false;
    std::string pod_namespace;  // K8S_POD_NAMESPACE
    std::string pod_name;       // K8S_POD_NAME
    std::string infra_container_id;  // K8S_POD_INFRA_CONTAINER_ID (read, unused)
    std::string pod_uid;             // K8S_POD_UID (read, unused)

    Labels labels() const;  // the namespace and name labels that are set
};

// Pairs separated by ';', key and value by the first '='. A key membrane-cni
// does not know is an error unless IgnoreUnknown is 1/true (anywhere in the
// string). Throws CniError InvalidEnvironment (4) naming the bad pair.
CniArgs parse_cni_args(const std::string& text);

}  // namespace membrane::cni
