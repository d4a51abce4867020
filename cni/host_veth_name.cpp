#include "host_veth_name.hpp"

#include <stdexcept>

#include <openssl/evp.h>

namespace membrane::cni {

std::string sha256_hex(const std::string& data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed (OpenSSL EVP_Digest)");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(length * 2);
    for (unsigned int i = 0; i < length; ++i) {
        out += kHex[digest[i] >> 4];
        out += kHex[digest[i] & 0x0f];
    }
    return out;
}

std::string host_veth_name(const std::string& container_id, const std::string& ifname) {
    return kHostVethPrefix + sha256_hex(container_id + "/" + ifname).substr(0, 11);
}

}  // namespace membrane::cni
