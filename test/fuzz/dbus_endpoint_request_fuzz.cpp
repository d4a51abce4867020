// The CreateEndpoint request (a{sv}) as the D-Bus service decodes it.
// The input is read as a list of entries, each: a key selector byte (one of
// the request's keys, a typo of one, or a key spelled by the input), a type
// selector byte, then the value (strings are a length byte and that many
// bytes; a{ss} and as a count byte and that many strings). An entry that
// sd-bus itself refuses to build (a string that is not UTF-8) is dropped:
// the bus never delivers one.
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <sdbus-c++/Error.h>

#include "dbus/control_codec.hpp"
#include "dbus/dbus_errors.hpp"
#include "fuzz_check.hpp"

namespace {

namespace keys = membrane::dbus::keys;

class Input {
public:
    Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    bool empty() const { return at_ == size_; }
    std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
    std::string string() {
        std::string out;
        for (std::size_t n = byte() % 64; n > 0 && !empty(); --n) out += static_cast<char>(byte());
        return out;
    }
    template <class T>
    T number() {
        T value = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i) value = static_cast<T>((value << 8) | byte());
        return value;
    }

private:
    const std::uint8_t* data_;
    std::size_t size_, at_ = 0;
};

std::string read_key(Input& in) {
    static const std::array<const char*, 8> kKeys = {keys::kContainerId, keys::kIfname, keys::kNetns,
                                                     keys::kHostIfname,  keys::kAddress, keys::kMac,
                                                     keys::kLabels,      "ipv4"};
    const std::uint8_t pick = in.byte() % (kKeys.size() + 1);
    return pick < kKeys.size() ? kKeys[pick] : in.string();
}

sdbus::Variant read_value(Input& in) {
    switch (in.byte() % 7) {
        case 0: return sdbus::Variant(in.string());
        case 1: return sdbus::Variant(in.number<std::uint32_t>());
        case 2: return sdbus::Variant(in.number<std::uint64_t>());
        case 3: return sdbus::Variant(in.byte());
        case 4: return sdbus::Variant(static_cast<bool>(in.byte() & 1));
        case 5: {
            std::map<std::string, std::string> labels;
            for (std::size_t n = in.byte() % 8; n > 0; --n) {
                std::string key = in.string();
                labels[key] = in.string();
            }
            return sdbus::Variant(labels);
        }
        default: {
            std::vector<std::string> list;
            for (std::size_t n = in.byte() % 8; n > 0; --n) list.push_back(in.string());
            return sdbus::Variant(list);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Input in(data, size);
    membrane::dbus::Dictionary request;
    while (!in.empty()) {
        try {
            std::string key = read_key(in);
            sdbus::Variant value = read_value(in);
            [[maybe_unused]] const sdbus::Variant key_on_the_bus(key);  // a key that is not UTF-8 is refused too
            request.insert_or_assign(std::move(key), std::move(value));
        } catch (const sdbus::Error&) {
            // Not deliverable on the bus.
        }
    }

    try {
        const auto endpoint = membrane::kernel::request_from_dictionary(request);
        FUZZ_CHECK(request.size() >= 6);
        FUZZ_CHECK(endpoint.container_id == request.at(keys::kContainerId).get<std::string>());
    } catch (const membrane::kernel::ControlError&) {
        const sdbus::Error answer = membrane::kernel::current_exception_as_dbus_error("org.membrane.Error.Failed");
        FUZZ_CHECK(answer.getName() == "org.membrane.Error.InvalidArgument");
        FUZZ_CHECK(!answer.getMessage().empty());
    }
    return 0;
}
