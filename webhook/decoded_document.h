#pragma once
// Internal to the webhook library (simdjson stays out of the public headers): the parsed body
// of an AdmissionReview, kept with the decoded request so that the container rules read the
// pod spec's container lists in place instead of from a converted Json copy.
//
// For Pods and the workload kinds, decodeAdmissionReview leaves `containers`,
// `initContainers` and `ephemeralContainers` out of the pod spec in request.object (and
// oldObject) and records where they are in the document (PodContainerLists). The rules read
// them through DocumentReader; the rare paths that need them as Json (comparing an UPDATE's
// old and new pod template, naming new ephemeral containers) rebuild them with
// withContainerLists, which gives exactly what the decoder used to keep.

#include <simdjson.h>

#include <array>
#include <memory>
#include <optional>
#include <string_view>

#include "common/json.h"

namespace tasklease::webhook {

// Where a pod spec's container lists are in the document. Index by kContainerListNames.
struct PodContainerLists {
  std::array<std::optional<simdjson::dom::element>, 3> lists;
};

inline constexpr std::array<std::string_view, 3> kContainerListNames = {
    "containers", "initContainers", "ephemeralContainers"};

// The parsed body and the container lists of object and oldObject (nullopt when that object
// has no pod spec where its kind puts one). Owns the document the elements point into.
struct DecodedDocument {
  struct DocumentDeleter {
    void operator()(simdjson::dom::document* doc) const;  // returns it to the thread's pool
  };
  std::unique_ptr<simdjson::dom::document, DocumentDeleter> document;
  std::optional<PodContainerLists> object;
  std::optional<PodContainerLists> oldObject;
};

// spec with the container lists put back, trimmed as the decoder trims them (name, env and
// envFrom of each container): the pod spec the decoder produced before lists stayed in place.
Json withContainerLists(const Json& spec, const PodContainerLists& lists);

// The reads the container rules make, over the document in place. Semantics match
// json_access.h over the converted Json: a missing member, or a member of something that is
// not an object, is absent; a repeated key means its last value (as the conversion keeps it).
struct DocumentReader {
  using Node = std::optional<simdjson::dom::element>;

  static Node member(const Node& node, std::string_view key) {
    if (!node || !node->is_object()) return std::nullopt;
    simdjson::dom::object obj;
    if (node->get(obj) != simdjson::SUCCESS) return std::nullopt;
    Node found;
    for (auto field : obj) {
      if (field.key == key) found = field.value;
    }
    return found;
  }
  // The members named keys[i] in one pass over the object (lookups one by one would each
  // walk every member, for the last of a repeated key).
  template <size_t N>
  static std::array<Node, N> members(const Node& node,
                                     const std::array<std::string_view, N>& keys) {
    std::array<Node, N> found;
    if (!node || !node->is_object()) return found;
    simdjson::dom::object obj;
    if (node->get(obj) != simdjson::SUCCESS) return found;
    for (auto field : obj) {
      for (size_t i = 0; i < N; ++i) {
        if (field.key == keys[i]) found[i] = field.value;
      }
    }
    return found;
  }
  static bool isString(const Node& node) { return node && node->is_string(); }
  static std::string_view string(const Node& node) {
    std::string_view v;
    if (!node || node->get(v) != simdjson::SUCCESS) return {};
    return v;
  }
  // f(index, element) for each element when node is an array.
  template <typename F>
  static void forEach(const Node& node, F&& f) {
    if (!node || !node->is_array()) return;
    simdjson::dom::array arr;
    if (node->get(arr) != simdjson::SUCCESS) return;
    size_t i = 0;
    for (simdjson::dom::element e : arr) f(i++, Node(e));
  }
};

}  // namespace tasklease::webhook
