#pragma once
// Safe reads of admitted objects. Admission input and manifests are outside input: a member
// can be missing or of the wrong type, and nlohmann's operator[] on a const value is undefined
// behaviour when the key is missing. Every rule reads through these instead.

#include <string>
#include <string_view>

#include "common/json.h"

namespace tasklease::webhook {

// The member, or nullptr when `object` is not an object or has no such key.
inline const Json* member(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  // Heterogeneous lookup (nlohmann's objects compare with std::less<>): no string is built.
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

// The member if it is a string, else "".
inline std::string_view stringMember(const Json& object, std::string_view key) {
  const Json* m = member(object, key);
  return m != nullptr && m->is_string() ? std::string_view(m->get_ref<const std::string&>())
                                        : std::string_view();
}

// The member if it is an object, else an empty object.
inline const Json& objectMember(const Json& object, std::string_view key) {
  static const Json kEmpty = Json::object();
  const Json* m = member(object, key);
  return m != nullptr && m->is_object() ? *m : kEmpty;
}

// The member if it is an array, else an empty array.
inline const Json& arrayMember(const Json& object, std::string_view key) {
  static const Json kEmpty = Json::array();
  const Json* m = member(object, key);
  return m != nullptr && m->is_array() ? *m : kEmpty;
}

// metadata.labels[key] / metadata.annotations[key], or "".
inline std::string_view labelOf(const Json& metadata, std::string_view key) {
  return stringMember(objectMember(metadata, "labels"), key);
}
inline std::string_view annotationOf(const Json& metadata, std::string_view key) {
  return stringMember(objectMember(metadata, "annotations"), key);
}

// "spec.containers" + index 2 -> "spec.containers[2]".
inline std::string indexPath(std::string_view base, size_t index) {
  return std::string(base) + "[" + std::to_string(index) + "]";
}

}  // namespace tasklease::webhook
