// A module as MEMBRANE_MODULE makes it, doing nothing: its descriptor is read
// from the file's .membrane_abi section and matches the agent's.
#include <membrane/membrane.hpp>

namespace {
class Good final : public membrane::Module {
public:
    void start(membrane::Context&) override {}
};
}  // namespace

MEMBRANE_MODULE(Good, "good")
