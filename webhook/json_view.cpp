#include "webhook/json_view.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "webhook/decoded_document.h"
#include "webhook/json_access.h"

namespace tasklease::webhook {

static_assert(std::is_trivially_copyable_v<simdjson::dom::element>);
static_assert(sizeof(simdjson::dom::element) <= sizeof(std::array<std::byte, 16>));

JsonView JsonViewAccess::of(const simdjson::dom::element& element) {
  JsonView v;
  v.source_ = JsonView::Source::kElement;
  std::memcpy(v.element_.data(), &element, sizeof element);
  return v;
}

simdjson::dom::element JsonViewAccess::element(const JsonView& view) {
  simdjson::dom::element e;
  std::memcpy(&e, view.element_.data(), sizeof e);
  return e;
}

namespace {

using T = simdjson::dom::element_type;

// simdjson's DOM to Json, whole. Depth is bounded by the parser's limit.
Json elementToJson(const simdjson::dom::element& e) {
  switch (e.type()) {
    case T::OBJECT: {
      Json out = Json::object();
      simdjson::dom::object obj;
      if (e.get(obj) != simdjson::SUCCESS) return nullptr;
      for (auto [key, value] : obj) {
        out[std::string(key)] = elementToJson(value);  // a repeated key keeps its last value
      }
      return out;
    }
    case T::ARRAY: {
      Json out = Json::array();
      simdjson::dom::array arr;
      if (e.get(arr) != simdjson::SUCCESS) return nullptr;
      out.get_ref<Json::array_t&>().reserve(arr.size());  // size() reads the tape, no scan
      for (simdjson::dom::element item : arr) out.push_back(elementToJson(item));
      return out;
    }
    case T::STRING: {
      std::string_view v;
      return e.get(v) == simdjson::SUCCESS ? Json(std::string(v)) : Json();
    }
    case T::INT64: {
      int64_t v = 0;
      return e.get(v) == simdjson::SUCCESS ? Json(v) : Json();
    }
    case T::UINT64: {
      uint64_t v = 0;
      return e.get(v) == simdjson::SUCCESS ? Json(v) : Json();
    }
    case T::DOUBLE: {
      double v = 0;
      return e.get(v) == simdjson::SUCCESS ? Json(v) : Json();
    }
    case T::BOOL: {
      bool v = false;
      return e.get(v) == simdjson::SUCCESS ? Json(v) : Json();
    }
    case T::NULL_VALUE:
      return nullptr;
  }
  return nullptr;
}

}  // namespace

bool JsonView::isObject() const {
  if (source_ == Source::kJson) return json_->is_object();
  return source_ == Source::kElement && JsonViewAccess::element(*this).is_object();
}

bool JsonView::isArray() const {
  if (source_ == Source::kJson) return json_->is_array();
  return source_ == Source::kElement && JsonViewAccess::element(*this).is_array();
}

bool JsonView::isString() const {
  if (source_ == Source::kJson) return json_->is_string();
  return source_ == Source::kElement && JsonViewAccess::element(*this).is_string();
}

std::string_view JsonView::string() const {
  switch (source_) {
    case Source::kJson:
      return json_->is_string() ? std::string_view(json_->get_ref<const std::string&>())
                                : std::string_view();
    case Source::kElement: {
      std::string_view text;
      return JsonViewAccess::element(*this).get(text) == simdjson::SUCCESS ? text
                                                                           : std::string_view();
    }
    case Source::kAbsent:
      break;
  }
  return {};
}

std::optional<int64_t> JsonView::integer() const {
  constexpr uint64_t kMax = std::numeric_limits<int64_t>::max();
  switch (source_) {
    case Source::kJson:
      if (json_->is_number_unsigned()) {
        return static_cast<int64_t>(std::min<uint64_t>(json_->get<uint64_t>(), kMax));
      }
      if (json_->is_number_integer()) return json_->get<int64_t>();
      return std::nullopt;
    case Source::kElement: {
      simdjson::dom::element e = JsonViewAccess::element(*this);
      int64_t i = 0;
      uint64_t u = 0;
      if (e.type() == T::INT64 && e.get(i) == simdjson::SUCCESS) return i;
      if (e.type() == T::UINT64 && e.get(u) == simdjson::SUCCESS) {
        return static_cast<int64_t>(std::min<uint64_t>(u, kMax));
      }
      return std::nullopt;
    }
    case Source::kAbsent:
      break;
  }
  return std::nullopt;
}

std::optional<bool> JsonView::boolean() const {
  switch (source_) {
    case Source::kJson:
      if (json_->is_boolean()) return json_->get<bool>();
      return std::nullopt;
    case Source::kElement: {
      bool b = false;
      if (JsonViewAccess::element(*this).get(b) == simdjson::SUCCESS) return b;
      return std::nullopt;
    }
    case Source::kAbsent:
      break;
  }
  return std::nullopt;
}

JsonView JsonView::member(std::string_view key) const {
  switch (source_) {
    case Source::kJson:
      return JsonView::of(webhook::member(*json_, key));
    case Source::kElement: {
      simdjson::dom::object obj;
      if (JsonViewAccess::element(*this).get(obj) != simdjson::SUCCESS) return {};
      JsonView found;
      for (auto field : obj) {
        if (field.key == key) found = JsonViewAccess::of(field.value);
      }
      return found;
    }
    case Source::kAbsent:
      break;
  }
  return {};
}

void JsonView::membersInto(const std::string_view* keys, JsonView* found, size_t n) const {
  if (source_ == Source::kJson) {
    for (size_t i = 0; i < n; ++i) found[i] = JsonView::of(webhook::member(*json_, keys[i]));
  } else if (source_ == Source::kElement) {
    simdjson::dom::object obj;
    if (JsonViewAccess::element(*this).get(obj) != simdjson::SUCCESS) return;
    for (auto field : obj) {
      for (size_t i = 0; i < n; ++i) {
        if (field.key == keys[i]) found[i] = JsonViewAccess::of(field.value);
      }
    }
  }
}

void JsonView::forEach(FunctionRef<void(size_t, const JsonView&)> f) const {
  if (source_ == Source::kJson) {
    if (!json_->is_array()) return;
    for (size_t i = 0; i < json_->size(); ++i) f(i, JsonView((*json_)[i]));
  } else if (source_ == Source::kElement) {
    simdjson::dom::array arr;
    if (JsonViewAccess::element(*this).get(arr) != simdjson::SUCCESS) return;
    size_t i = 0;
    for (simdjson::dom::element e : arr) f(i++, JsonViewAccess::of(e));
  }
}

void JsonView::forEachMember(FunctionRef<void(std::string_view, const JsonView&)> f) const {
  if (source_ == Source::kJson) {
    if (!json_->is_object()) return;
    for (const auto& [key, value] : json_->items()) f(key, JsonView(value));
  } else if (source_ == Source::kElement) {
    simdjson::dom::object obj;
    if (JsonViewAccess::element(*this).get(obj) != simdjson::SUCCESS) return;
    for (auto field : obj) f(field.key, JsonViewAccess::of(field.value));
  }
}

Json JsonView::toJson() const {
  switch (source_) {
    case Source::kJson:
      return *json_;
    case Source::kElement:
      return elementToJson(JsonViewAccess::element(*this));
    case Source::kAbsent:
      break;
  }
  return nullptr;
}

}  // namespace tasklease::webhook
