// Throws something that is not a std::exception (an int) from where its
// table says: throw_in = "start" | "handler" | "reconfigure". The host must
// contain it, quarantine the module and keep serving.
#include <string>

#include <membrane/membrane.hpp>

namespace {
class NonStd final : public membrane::Module {
public:
    void start(membrane::Context& ctx) override {
        throw_in_ = ctx.config()["throw_in"].value_or(std::string{});
        if (throw_in_ == "start") throw 42;
        if (throw_in_ == "handler") {
            events_ = ctx.bus().subscribe<membrane::events::ModuleStateChanged>(
                [](const membrane::events::ModuleStateChanged&) { throw 42; });
        }
    }
    bool reconfigure(const toml::table&) override {
        if (throw_in_ == "reconfigure") throw 42;
        return true;
    }

private:
    std::string throw_in_;
    membrane::Subscription events_;
};
}  // namespace

MEMBRANE_MODULE(NonStd, "nonstd")
