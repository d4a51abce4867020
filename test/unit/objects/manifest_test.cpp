// The manifest parser: what it keeps of a document, and that every refusal
// names the document, its line and the field path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "objects/manifest.hpp"
#include "objects/object_kinds.hpp"

namespace membrane::kernel {
namespace {

using ::testing::HasSubstr;

std::string refusal(const std::string& text) {
    try {
        parse_manifests(text, "t.yaml");
    } catch (const ManifestError& e) {
        return e.what();
    }
    return "(accepted)";
}

TEST(ManifestTest, ANamespaceIsKeptWithItsLabelsAndAnnotations) {
    const auto manifests = parse_manifests(R"(
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    team: payments
    app.kubernetes.io/part-of: "store"
  annotations:
    note: "anything: at all, even long text"
  uid: 3f7b0c9e-0000-0000-0000-000000000000
  resourceVersion: "42"
spec:
  finalizers: [kubernetes]
status:
  phase: Active
)",
                                           "t.yaml");
    ASSERT_EQ(manifests.size(), 1u);
    const Manifest& ns = manifests[0];
    EXPECT_EQ(ns.ref, (ObjectRef{"Namespace", "", "shop"}));
    EXPECT_EQ(ns.labels, (Labels{{"app.kubernetes.io/part-of", "store"}, {"team", "payments"}}));
    // What the server sets (uid, resourceVersion, status) is not kept.
    EXPECT_EQ(ns.document, nlohmann::json::parse(R"({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"team": "payments", "app.kubernetes.io/part-of": "store"},
                     "annotations": {"note": "anything: at all, even long text"}},
        "spec": {"finalizers": ["kubernetes"]}})"));
    // Read back from the store: the same.
    EXPECT_EQ(manifest_from_document(ns.document, "k").document, ns.document);
}

TEST(ManifestTest, SeveralDocumentsInOrderAndEmptyOnesSkipped) {
    const auto manifests = parse_manifests(
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\n"
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n",
        "t.yaml");
    ASSERT_EQ(manifests.size(), 2u);
    EXPECT_EQ(manifests[0].ref.name, "a");
    EXPECT_EQ(manifests[1].ref.name, "b");
}

TEST(ManifestTest, EachRefusalNamesTheDocumentLineAndField) {
    const std::string head = "apiVersion: v1\nkind: Namespace\n";
    EXPECT_EQ(refusal(head + "metadata:\n  name: shop\n  labels:\n    team/: x\n"),
              "t.yaml: document 1 (line 6): metadata.labels[\"team/\"]: the name '' must be 1 to 63 letters, "
              "digits, '-', '_' or '.', starting and ending with a letter or digit");
    EXPECT_EQ(refusal(head + "metadata:\n  name: shop\n  labels:\n    tier: 3\n"),
              "t.yaml: document 1 (line 6): metadata.labels.tier: 3 must be a string (quote it)");
    EXPECT_EQ(refusal(head + "metadata:\n  name: shop\n  labels:\n    tier: \"front end\"\n"),
              "t.yaml: document 1 (line 6): metadata.labels.tier: \"front end\" must be empty or 1 to 63 letters, "
              "digits, '-', '_' or '.', starting and ending with a letter or digit");
    EXPECT_EQ(refusal(head + "metadata:\n  name: Shop\n"),
              "t.yaml: document 1 (line 4): metadata.name: \"Shop\" must be a DNS label (lower-case letters, digits, "
              "'-', at most 63)");
    EXPECT_EQ(refusal(head + "metadata:\n  name: shop\n  namespace: default\n"),
              "t.yaml: document 1 (line 5): metadata.namespace: Namespace is cluster-scoped: it has no namespace");
    EXPECT_EQ(refusal(head + "metadata:\n  name: shop\n  owner: me\n"),
              "t.yaml: document 1 (line 5): metadata.owner: unknown field (metadata has: name, namespace, labels, "
              "annotations)");
    EXPECT_EQ(refusal(head + "metadata:\n  name: shop\nspec:\n  finalizers: kubernetes\n"),
              "t.yaml: document 1 (line 6): spec.finalizers: must be a list of strings");
    EXPECT_EQ(refusal(head + "metadata:\n  name: shop\nspec:\n  podSelector: {}\n"),
              "t.yaml: document 1 (line 6): spec.podSelector: unknown field (a Namespace's spec has: finalizers)");
    EXPECT_EQ(refusal(head + "metadata:\n  name: shop\nrules: []\n"),
              "t.yaml: document 1 (line 5): rules: unknown field (a Namespace has: apiVersion, kind, metadata, spec, "
              "status)");
    EXPECT_EQ(refusal(head + "metadata:\n  labels: {a: b}\n"), "t.yaml: document 1 (line 3): metadata.name: is missing");
    EXPECT_EQ(refusal("kind: Namespace\nmetadata: {name: a}\n"), "t.yaml: document 1 (line 1): apiVersion: is missing");
}

TEST(ManifestTest, KindsAndVersionsMembraneDoesNotKeepAreRefused) {
    EXPECT_EQ(refusal("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"),
              "t.yaml: document 1 (line 2): kind: 'ConfigMap' is not a kind Membrane keeps (it keeps: " +
                  known_kinds() + ")");
    EXPECT_EQ(refusal("apiVersion: v2\nkind: Namespace\nmetadata: {name: a}\n"),
              "t.yaml: document 1 (line 1): apiVersion: 'v2' is not a version of Namespace (use v1)");
}

// Lines are the file's, so an editor can jump there.
TEST(ManifestTest, ALaterDocumentIsNamedAndNothingOfTheFileIsReturned) {
    const std::string good = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n";
    EXPECT_EQ(refusal(good + "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: b_c\n"),
              "t.yaml: document 2 (line 8): metadata.name: \"b_c\" must be a DNS label (lower-case letters, digits, "
              "'-', at most 63)");
    EXPECT_EQ(refusal(good + "---\n" + good),
              "t.yaml: document 2 (line 5): Namespace a is also document 1: one file gives each object once");
}

TEST(ManifestTest, BrokenYamlAndEmptyFilesAreRefused) {
    EXPECT_THAT(refusal("apiVersion: v1\nkind: [Namespace\n"), HasSubstr("t.yaml: line "));
    EXPECT_THAT(refusal("apiVersion: v1\nkind: [Namespace\n"), HasSubstr("not valid YAML"));
    EXPECT_EQ(refusal("# nothing\n"), "t.yaml: no manifest in it (an empty file?)");
    // Found by fuzz.manifest: yaml-cpp 0.7's LoadAll looped forever on these.
    EXPECT_THAT(refusal(",1F"), HasSubstr("t.yaml: line 1, column 1: not valid YAML"));
    EXPECT_THAT(refusal(std::string("\0,d\0\0a", 6)), HasSubstr("not valid YAML"));
    EXPECT_EQ(refusal("a: &x {b: c}\nd: *x\n"), "t.yaml: document 1 (line 2): YAML aliases (*name) are not supported in manifests");
    // Found by fuzz.manifest: a key that is not UTF-8 made the JSON writer throw.
    EXPECT_EQ(refusal("a\xff: 1\n"), "t.yaml: not UTF-8 text (invalid UTF-8 byte at index 1: 0xFF)");
    const std::string nul_in_a_key("apiVersion: v1\nkind: Namespace\nmetadatarsion: v1\nkind\0N4YAML9ExceptionEtadata:\n"
                                   "  name: bank*", 0x5c);
    EXPECT_THAT(refusal(nul_in_a_key), HasSubstr("reads as bytes that are not UTF-8"));
    EXPECT_EQ(refusal("- a\n- b\n"),
              "t.yaml: document 1 (line 1): a manifest must be a mapping (apiVersion, kind, metadata, ...)");
    EXPECT_EQ(refusal("apiVersion: v1\nkind: Namespace\nkind: Namespace\nmetadata: {name: a}\n"),
              "t.yaml: document 1 (line 3): kind: appears twice");
}

TEST(ManifestTest, QuotedScalarsStayStringsAndPlainOnesAreTyped) {
    // A quoted number is a string label value; a plain one is a number and refused.
    EXPECT_EQ(parse_manifests("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {port: \"80\"}}\n",
                              "t.yaml")[0]
                  .labels.at("port"),
              "80");
    EXPECT_THAT(refusal("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {on: true}}\n"),
                HasSubstr("metadata.labels.on: true must be a string (quote it)"));
    // Found by fuzz.manifest: a float beyond a double threw std::out_of_range. Too large is refused.
    EXPECT_EQ(refusal("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nspec: {finalizers: [13331331e333]}\n"),
              "t.yaml: document 1 (line 4): the number 13331331e333 is too large (quote it if it is text)");
    EXPECT_EQ(refusal("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {b: 123456789012345678901}}\n"),
              "t.yaml: document 1 (line 3): the number 123456789012345678901 is too large (quote it if it is text)");
    // Long keys and values go through no recursive matcher (libstdc++'s regex recurses per character).
    EXPECT_THAT(refusal("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n? " + std::string(200000, 'k') + "\n: 1\n"),
                HasSubstr("unknown field"));
    EXPECT_THAT(refusal("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nspec: {finalizers: [" +
                        std::string(200000, '7') + "]}\n"),
                HasSubstr("is too large"));
}

TEST(ObjectKindsTest, KindsAreFoundByKindPluralOrShortNameInAnyCase) {
    for (const char* name : {"Namespace", "namespace", "namespaces", "NS", "ns"}) {
        const ObjectKind* kind = find_kind_by_name(name);
        ASSERT_NE(kind, nullptr) << name;
        EXPECT_EQ(kind->kind, "Namespace");
    }
    EXPECT_EQ(find_kind_by_name("pods"), nullptr);
    EXPECT_EQ(find_kind("namespace"), nullptr);  // a manifest spells its kind exactly
}

}  // namespace
}  // namespace membrane::kernel
