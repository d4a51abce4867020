#include "objects/manifest.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include "membrane/policy_parse.hpp"
#include "objects/object_kinds.hpp"

namespace membrane::kernel {
namespace {

bool is_utf8(const std::string& text) {
    try {
        (void)nlohmann::json(text).dump();  // nlohmann's serializer checks it
        return true;
    } catch (const nlohmann::json::type_error&) {
        return false;
    }
}

// A field's path as kubectl prints it: metadata.labels["app.kubernetes.io/name"], spec.ports[0].
// (By hand, not std::regex: libstdc++'s matcher recurses once per character,
// and a key can be as long as the text.)
std::string child_path(const std::string& parent, const std::string& key) {
    const bool plain = !key.empty() && (std::isalpha(static_cast<unsigned char>(key[0])) || key[0] == '_') &&
                       std::all_of(key.begin(), key.end(), [](unsigned char c) {
                           return std::isalnum(c) || c == '_' || c == '-';
                       });
    if (!plain) return parent + "[" + nlohmann::json(key).dump() + "]";
    return parent.empty() ? key : parent + "." + key;
}

std::string item_path(const std::string& parent, std::size_t index) {
    return parent + "[" + std::to_string(index) + "]";
}

// One document being checked: where it is, for messages.
class DocumentChecker {
public:
    DocumentChecker(std::string where, std::map<std::string, int> lines)
        : where_(std::move(where)), lines_(std::move(lines)) {}

    // The line of `path`, or of its nearest parent that has one.
    [[noreturn]] void fail(const std::string& path, const std::string& problem) const {
        std::string probe = path;
        while (!probe.empty() && !lines_.contains(probe)) {
            const auto cut = probe.find_last_of(".[");
            probe = cut == std::string::npos ? std::string() : probe.substr(0, cut);
        }
        const auto line = lines_.find(probe);
        std::string at = where_;
        if (line != lines_.end()) at += " (line " + std::to_string(line->second) + ")";
        throw ManifestError(at + ": " + (path.empty() ? "" : path + ": ") + problem);
    }

    FieldFailure failure() const {
        return [this](const std::string& path, const std::string& problem) { fail(path, problem); };
    }

private:
    std::string where_;
    std::map<std::string, int> lines_;
};

// --- YAML to JSON -------------------------------------------------------------------------

// A plain (unquoted) scalar resolved as the YAML 1.2 core schema does;
// nullopt for a number beyond what JSON holds here (int64, double).
std::optional<nlohmann::json> plain_scalar(const std::string& text) {
    // No number or keyword is longer; the regexes below then never see a long text.
    constexpr std::size_t kLongest = 64;
    if (text.size() > kLongest) {
        const bool numeric = std::all_of(text.begin(), text.end(), [](unsigned char c) {
            return std::isdigit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
        });
        if (numeric && std::any_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
            return std::nullopt;
        }
        return text;
    }
    static const std::regex null_re("~|null|Null|NULL|");
    static const std::regex true_re("true|True|TRUE");
    static const std::regex false_re("false|False|FALSE");
    static const std::regex int_re("[-+]?[0-9]+");
    static const std::regex hex_re("0x[0-9a-fA-F]+");
    static const std::regex octal_re("0o[0-7]+");
    static const std::regex float_re(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
    if (std::regex_match(text, null_re)) return nullptr;
    if (std::regex_match(text, true_re)) return true;
    if (std::regex_match(text, false_re)) return false;
    auto integer = [&](std::string_view digits, int base) -> std::optional<nlohmann::json> {
        bool negative = false;
        if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
            negative = digits[0] == '-';
            digits.remove_prefix(1);
        }
        std::uint64_t value = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
        if (ec != std::errc() || end != digits.data() + digits.size() ||
            value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return std::nullopt;
        }
        return negative ? -static_cast<std::int64_t>(value) : static_cast<std::int64_t>(value);
    };
    if (std::regex_match(text, int_re)) return integer(text, 10);
    if (std::regex_match(text, hex_re)) return integer(std::string_view(text).substr(2), 16);
    if (std::regex_match(text, octal_re)) return integer(std::string_view(text).substr(2), 8);
    if (std::regex_match(text, float_re)) {
        try {
            return std::stod(text);
        } catch (const std::out_of_range&) {
            return std::nullopt;  // beyond a double (found by fuzz.manifest)
        }
    }
    return text;
}

// Builds each document's JSON (and the line of every field) straight from
// the parser's events. Not YAML::LoadAll: yaml-cpp 0.7 (Debian 12) loops
// forever on some broken input (",1F"; yaml-cpp #1040, fixed upstream in
// 0.8.0 by #1319), which a document that starts where the last one did
// gives away here. Aliases are refused: manifests need none, and expanding
// them is how a small text becomes a huge document.
class JsonBuilder final : public YAML::EventHandler {
public:
    explicit JsonBuilder(std::string source) : source_(std::move(source)) {}

    // The next document, or nullopt at the end of the text.
    std::optional<nlohmann::json> next(YAML::Parser& parser) {
        ++document_;
        root_.reset();
        lines_.clear();
        if (!parser.HandleNextDocument(*this)) return std::nullopt;
        return root_.value_or(nullptr);
    }
    std::size_t document() const { return document_; }
    std::map<std::string, int> take_lines() { return std::move(lines_); }

    void OnDocumentStart(const YAML::Mark& mark) override {
        if (mark.pos == last_start_) {
            throw ManifestError(source_ + ": line " + std::to_string(mark.line + 1) + ", column " +
                                std::to_string(mark.column + 1) + ": not valid YAML (the parser is stuck here)");
        }
        last_start_ = mark.pos;
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { add(mark, nullptr); }
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
        fail_at(mark, "YAML aliases (*name) are not supported in manifests");
    }
    void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t, const std::string& value) override {
        // yaml-cpp can make bytes that are not UTF-8 of text that is (a NUL
        // in a line, found by fuzz.manifest): refused, never stored.
        if (!is_utf8(value)) fail_at(mark, "this text reads as bytes that are not UTF-8 (a NUL or control byte?)");
        if (expecting_key()) {
            Frame& map = frames_.back();
            const std::string path = child_path(map.path, value);
            lines_.insert_or_assign(path, mark.line + 1);
            if (map.value.contains(value)) fail(path, "appears twice");
            map.key = value;
            map.has_key = true;
            return;
        }
        add(mark, scalar(mark, tag, value));
    }
    void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
        open(mark, nlohmann::json::array());
    }
    void OnSequenceEnd() override { close(); }
    void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
        open(mark, nlohmann::json::object());
    }
    void OnMapEnd() override { close(); }

private:
    struct Frame {
        nlohmann::json value;
        std::string path;
        std::string key;
        bool has_key = false;
    };

    bool expecting_key() const { return !frames_.empty() && frames_.back().value.is_object() && !frames_.back().has_key; }

    // The path the next value takes (and its line recorded).
    std::string next_path(const YAML::Mark& mark) {
        if (expecting_key()) fail_at(mark, "a mapping key must be a plain string");
        std::string path;
        if (!frames_.empty()) {
            const Frame& parent = frames_.back();
            path = parent.value.is_array() ? item_path(parent.path, parent.value.size()) : child_path(parent.path, parent.key);
        }
        lines_.emplace(path, mark.line + 1);
        return path;
    }

    void add(const YAML::Mark& mark, nlohmann::json value) {
        next_path(mark);
        place(std::move(value));
    }

    void place(nlohmann::json value) {
        if (frames_.empty()) {
            root_ = std::move(value);
            return;
        }
        Frame& parent = frames_.back();
        if (parent.value.is_array()) {
            parent.value.push_back(std::move(value));
        } else {
            parent.value[parent.key] = std::move(value);
            parent.has_key = false;
        }
    }

    void open(const YAML::Mark& mark, nlohmann::json empty) {
        std::string path = next_path(mark);
        frames_.push_back(Frame{std::move(empty), std::move(path), {}, false});
    }

    void close() {
        Frame done = std::move(frames_.back());
        frames_.pop_back();
        place(std::move(done.value));
    }

    nlohmann::json scalar(const YAML::Mark& mark, const std::string& tag, const std::string& text) {
        if (tag == "!" || tag == "tag:yaml.org,2002:str") return text;  // quoted, or !!str
        if (tag == "?" || tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float" ||
            tag == "tag:yaml.org,2002:bool" || tag == "tag:yaml.org,2002:null") {
            auto value = plain_scalar(text);
            if (!value) fail_at(mark, "the number " + (text.size() > 40 ? text.substr(0, 40) + "..." : text) +
                                          " is too large (quote it if it is text)");
            return *value;
        }
        fail_at(mark, "the YAML tag '" + tag + "' is not supported");
    }

    std::string where() const { return source_ + ": document " + std::to_string(document_); }
    [[noreturn]] void fail(const std::string& path, const std::string& problem) const {
        DocumentChecker(where(), lines_).fail(path, problem);
    }
    [[noreturn]] void fail_at(const YAML::Mark& mark, const std::string& problem) const {
        throw ManifestError(where() + " (line " + std::to_string(mark.line + 1) + "): " + problem);
    }

    std::string source_;
    std::size_t document_ = 0;
    int last_start_ = -1;
    std::optional<nlohmann::json> root_;
    std::vector<Frame> frames_;
    std::map<std::string, int> lines_;
};

// --- the checks every kind shares ---------------------------------------------------------

bool is_dns_label(const std::string& s) {
    static const std::regex re("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
    return s.size() <= 63 && std::regex_match(s, re);
}

bool is_dns_1035_label(const std::string& s) { return is_dns_label(s) && s[0] >= 'a' && s[0] <= 'z'; }

bool is_dns_subdomain(const std::string& s) {
    static const std::regex re(R"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)");
    return s.size() <= 253 && std::regex_match(s, re);
}

const std::set<std::string> kKeptMetadata = {"name", "namespace", "labels", "annotations"};
// What `kubectl get -o yaml` prints and the server sets: accepted on apply, not kept.
const std::set<std::string> kServerMetadata = {"uid", "resourceVersion", "generation", "creationTimestamp",
                                               "managedFields", "selfLink"};

nlohmann::json string_map(const nlohmann::json& value, const std::string& path, bool label_values,
                          const DocumentChecker& check) {
    if (value.is_null()) return nlohmann::json::object();
    if (!value.is_object()) check.fail(path, "must be a mapping of strings");
    for (const auto& [key, item] : value.items()) {
        const std::string at = child_path(path, key);
        // Kubernetes' rules for label and annotation keys and label values: the SDK's, which policies' selectors use.
        if (auto problem = policy::label_key_problem(key); !problem.empty()) check.fail(at, problem);
        if (!item.is_string()) check.fail(at, item.dump() + " must be a string (quote it)");
        const std::string text = item.get<std::string>();
        if (label_values) {
            if (auto problem = policy::label_value_problem(text); !problem.empty()) check.fail(at, problem);
        }
    }
    return value;
}

Manifest check_document(const nlohmann::json& doc, const DocumentChecker& check) {
    if (!doc.is_object()) check.fail("", "a manifest must be a mapping (apiVersion, kind, metadata, ...)");
    for (const char* required : {"apiVersion", "kind", "metadata"}) {
        if (!doc.contains(required)) check.fail(required, "is missing");
    }
    if (!doc["kind"].is_string()) check.fail("kind", "must be a string");
    if (!doc["apiVersion"].is_string()) check.fail("apiVersion", "must be a string");
    const std::string kind_name = doc["kind"].get<std::string>();
    const std::string api_version = doc["apiVersion"].get<std::string>();
    const ObjectKind* kind = find_kind(kind_name);
    if (!kind) check.fail("kind", "'" + kind_name + "' is not a kind Membrane keeps (it keeps: " + known_kinds() + ")");
    if (api_version != kind->api_version) {
        check.fail("apiVersion", "'" + api_version + "' is not a version of " + kind_name + " (use " +
                                     std::string(kind->api_version) + ")");
    }

    Manifest out;
    out.api_version = api_version;
    out.ref.kind = kind_name;
    out.document = {{"apiVersion", api_version}, {"kind", kind_name}};

    const nlohmann::json& meta = doc["metadata"];
    if (!meta.is_object()) check.fail("metadata", "must be a mapping");
    for (const auto& [key, value] : meta.items()) {
        if (!kKeptMetadata.contains(key) && !kServerMetadata.contains(key)) {
            check.fail(child_path("metadata", key), "unknown field (metadata has: name, namespace, labels, annotations)");
        }
    }
    if (!meta.contains("name")) check.fail("metadata.name", "is missing");
    if (!meta["name"].is_string()) check.fail("metadata.name", meta["name"].dump() + " must be a string");
    out.ref.name = meta["name"].get<std::string>();
    bool name_ok = false;
    std::string name_rule;
    switch (kind->name_rule) {
        case NameRule::dns_label:
            name_ok = is_dns_label(out.ref.name);
            name_rule = "label (lower-case letters, digits, '-', at most 63)";
            break;
        case NameRule::dns_1035_label:
            name_ok = is_dns_1035_label(out.ref.name);
            name_rule = "label starting with a letter (lower-case letters, digits, '-', at most 63)";
            break;
        case NameRule::dns_subdomain:
            name_ok = is_dns_subdomain(out.ref.name);
            name_rule = "subdomain (lower-case letters, digits, '-', '.', at most 253)";
            break;
    }
    if (!name_ok) check.fail("metadata.name", "\"" + out.ref.name + "\" must be a DNS " + name_rule);
    nlohmann::json kept_meta = {{"name", out.ref.name}};
    if (kind->namespaced) {
        out.ref.namespace_ = "default";
        if (meta.contains("namespace")) {
            if (!meta["namespace"].is_string() || !is_dns_label(meta["namespace"].get<std::string>())) {
                check.fail("metadata.namespace", meta["namespace"].dump() + " must be a namespace name (a DNS label)");
            }
            out.ref.namespace_ = meta["namespace"].get<std::string>();
        }
        kept_meta["namespace"] = out.ref.namespace_;
    } else if (meta.contains("namespace")) {
        check.fail("metadata.namespace", kind_name + " is cluster-scoped: it has no namespace");
    }
    if (meta.contains("labels")) {
        kept_meta["labels"] = string_map(meta["labels"], "metadata.labels", true, check);
        out.labels = kept_meta["labels"].get<membrane::Labels>();
    }
    if (meta.contains("annotations")) {
        kept_meta["annotations"] = string_map(meta["annotations"], "metadata.annotations", false, check);
    }
    out.document["metadata"] = std::move(kept_meta);

    for (const auto& [key, value] : doc.items()) {
        if (key == "apiVersion" || key == "kind" || key == "metadata") continue;
        const bool known = std::find(kind->fields.begin(), kind->fields.end(), key) != kind->fields.end();
        if (!known) {
            std::string fields = "apiVersion, kind, metadata";
            for (const auto& f : kind->fields) fields += ", " + std::string(f);
            check.fail(child_path("", key), "unknown field (a " + kind_name + " has: " + fields + ")");
        }
        nlohmann::json kept = kind->check(key, value, check.failure());
        if (!kept.is_null()) out.document[key] = std::move(kept);
    }
    if (kind->check_document) kind->check_document(out.document, check.failure());
    return out;
}

}  // namespace

std::vector<Manifest> parse_manifests(std::string_view text, const std::string& source) {
    // Kubernetes manifests are UTF-8, and so is what the store keeps (JSON).
    // nlohmann's serializer checks it (and names the byte); yaml-cpp does not.
    try {
        (void)nlohmann::json(std::string(text)).dump();
    } catch (const nlohmann::json::type_error& e) {
        const std::string why = e.what();
        const auto at = why.find("invalid UTF-8");
        throw ManifestError(source + ": not UTF-8 text (" + (at == std::string::npos ? why : why.substr(at)) + ")");
    }
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    JsonBuilder builder(source);
    std::vector<Manifest> out;
    std::map<ObjectRef, std::size_t> seen;
    while (true) {
        std::optional<nlohmann::json> doc;
        try {
            doc = builder.next(parser);
        } catch (const YAML::Exception& e) {
            throw ManifestError(source + ": line " + std::to_string(e.mark.line + 1) + ", column " +
                                std::to_string(e.mark.column + 1) + ": not valid YAML: " + e.msg);
        }
        if (!doc) break;
        if (doc->is_null()) continue;  // "---" with nothing after it
        const std::size_t index = builder.document();
        const DocumentChecker check(source + ": document " + std::to_string(index), builder.take_lines());
        Manifest manifest = check_document(*doc, check);
        if (const auto [it, added] = seen.emplace(manifest.ref, index); !added) {
            check.fail("", manifest.ref.str() + " is also document " + std::to_string(it->second) +
                               ": one file gives each object once");
        }
        out.push_back(std::move(manifest));
    }
    if (out.empty()) throw ManifestError(source + ": no manifest in it (an empty file?)");
    return out;
}

std::vector<Manifest> parse_apply(std::string_view text, const std::string& source) {
    constexpr std::size_t kMaxText = 1024 * 1024;
    constexpr std::size_t kMaxObjects = 100;
    if (text.size() > kMaxText) {
        throw ManifestError(source + ": " + std::to_string(text.size()) +
                            " bytes; one apply takes at most 1 MiB: split it");
    }
    auto manifests = parse_manifests(text, source);
    if (manifests.size() > kMaxObjects) {
        throw ManifestError(source + ": " + std::to_string(manifests.size()) +
                            " objects; one apply takes at most 100: split it");
    }
    return manifests;
}

Manifest manifest_from_document(const nlohmann::json& document, const std::string& where) {
    return check_document(document, DocumentChecker(where, {}));
}

}  // namespace membrane::kernel
