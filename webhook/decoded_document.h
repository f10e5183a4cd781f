#pragma once
// Internal to the webhook library (simdjson stays out of the public headers): the parsed body
// of an AdmissionReview, kept with the decoded request so that the rules read a Pod's or a
// workload's object in place (JsonView) instead of from a converted Json copy.

#include <simdjson.h>

#include <memory>
#include <optional>

#include "webhook/json_view.h"

namespace tasklease::webhook {

// The parsed body, and where request.object and request.oldObject are in it (nullopt when
// absent or null). Owns the document the elements point into.
struct DecodedDocument {
  struct DocumentDeleter {
    void operator()(simdjson::dom::document* doc) const;  // returns it to the thread's pool
  };
  std::unique_ptr<simdjson::dom::document, DocumentDeleter> document;
  std::optional<simdjson::dom::element> object;
  std::optional<simdjson::dom::element> oldObject;
};

// Views of parsed elements (json_view.cpp).
struct JsonViewAccess {
  static JsonView of(const simdjson::dom::element& element);
  static simdjson::dom::element element(const JsonView& view);
};

}  // namespace tasklease::webhook
