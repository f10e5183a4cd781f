#pragma once
// A read-only view of one JSON value, wherever it lives: a node of a Json tree (manifests,
// cluster state, tests) or an element of an admission request's parsed body, read in place
// without converting it (docs/webhook.md "Performance": converting the admitted object cost more
// than the rules that read it). The pod rules and the workload walk read admitted objects only
// through this, so both sources give the same findings.
//
//   JsonView pod(json);                                   // or a request's objectView()
//   std::string_view sa = pod.member("spec").member("serviceAccountName").string();
//   pod.member("spec").member("volumes").forEach([&](size_t i, JsonView v) { ... });
//
// Reads are total, as json_access.h's: a missing member, a member of something that is not an
// object, or an element of something that is not an array is absent; string() of anything but a
// string is "". A repeated key means its last value (as Go's decoder and the Json conversion
// keep it). A view does not own what it views: the Json tree or the parsed body must outlive it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

#include "common/json.h"

namespace tasklease::webhook {

// A non-owning reference to a callable, for callbacks that must not allocate (std::function
// may, for a lambda capturing more than two references).
template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f)  // NOLINT(google-explicit-constructor): passed as a lambda
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* object, Args... args) -> R {
          return (*static_cast<std::add_pointer_t<std::remove_reference_t<F>>>(object))(
              std::forward<Args>(args)...);
        }) {}
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

class JsonView {
 public:
  JsonView() = default;  // absent
  explicit JsonView(const Json& value) : source_(Source::kJson), json_(&value) {}
  explicit JsonView(const Json&& value) = delete;  // a view of a temporary would dangle
  // Absent when value is null.
  static JsonView of(const Json* value) { return value == nullptr ? JsonView() : JsonView(*value); }

  bool present() const { return source_ != Source::kAbsent; }
  bool isObject() const;
  bool isArray() const;
  bool isString() const;
  // A string's text; "" for anything else.
  std::string_view string() const;
  // An integer's value (JSON numbers without a fraction or exponent); nullopt for anything else.
  // An unsigned value above INT64_MAX reads as INT64_MAX.
  std::optional<int64_t> integer() const;
  // true or false; nullopt for anything else.
  std::optional<bool> boolean() const;

  // The member named key (its last value when repeated); absent when not an object.
  JsonView member(std::string_view key) const;
  // The members named keys[i], in one pass over the object.
  template <size_t N>
  std::array<JsonView, N> members(const std::array<std::string_view, N>& keys) const {
    std::array<JsonView, N> found;
    membersInto(keys.data(), found.data(), N);
    return found;
  }
  // f(index, element) for each element of an array; nothing for anything else.
  void forEach(FunctionRef<void(size_t, const JsonView&)> f) const;
  // f(key, value) for each member of an object: a parsed object's in document order, repeated
  // keys included; a Json object's in key order (its keys are unique).
  void forEachMember(FunctionRef<void(std::string_view, const JsonView&)> f) const;

  // The value as a Json tree (null when absent), for the rare paths that compare or keep it.
  Json toJson() const;

 private:
  friend struct JsonViewAccess;
  void membersInto(const std::string_view* keys, JsonView* found,
                   size_t n) const;  // json_view.cpp and the admission decoder make element views
  enum class Source : uint8_t { kAbsent, kJson, kElement };
  Source source_ = Source::kAbsent;
  const Json* json_ = nullptr;
  // A simdjson::dom::element (a document pointer and a tape index), kept as bytes so that
  // simdjson stays out of the public headers.
  alignas(8) std::array<std::byte, 16> element_{};
};

}  // namespace tasklease::webhook
