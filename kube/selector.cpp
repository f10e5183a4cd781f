#include "kube/selector.h"

#include <algorithm>
#include <cctype>

#include "kube/resource.h"

namespace tasklease::kube {
namespace {

bool isKeyChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.' ||
         c == '/';
}

bool isValueChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
}

class SelectorParser {
 public:
  explicit SelectorParser(std::string_view text) : text_(text) {}

  StatusOr<std::vector<LabelSelector::Requirement>> parseAll() {
    std::vector<LabelSelector::Requirement> out;
    skipSpace();
    if (pos_ == text_.size()) return out;
    while (true) {
      auto req = parseRequirement();
      if (!req.ok()) return req.status();
      out.push_back(std::move(*req));
      skipSpace();
      if (pos_ == text_.size()) break;
      if (text_[pos_] != ',') return error("expected ',' between requirements");
      ++pos_;
      skipSpace();
    }
    return out;
  }

 private:
  Status error(const std::string& what) const {
    return invalidArgument("label selector \"" + std::string(text_) + "\": " + what +
                           " at position " + std::to_string(pos_));
  }

  void skipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])) != 0) {
      ++pos_;
    }
  }

  std::string readWhile(bool (*pred)(char)) {
    const size_t start = pos_;
    while (pos_ < text_.size() && pred(text_[pos_])) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  bool consumeWord(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    const size_t after = pos_ + word.size();
    if (after < text_.size() && isKeyChar(text_[after])) return false;
    pos_ = after;
    return true;
  }

  StatusOr<LabelSelector::Requirement> parseRequirement() {
    LabelSelector::Requirement req;
    if (pos_ < text_.size() && text_[pos_] == '!') {
      ++pos_;
      skipSpace();
      req.key = readWhile(isKeyChar);
      if (req.key.empty()) return error("expected a label key after '!'");
      req.op = LabelSelector::Operator::kDoesNotExist;
      return req;
    }
    req.key = readWhile(isKeyChar);
    if (req.key.empty()) return error("expected a label key");
    skipSpace();
    if (pos_ == text_.size() || text_[pos_] == ',') {
      req.op = LabelSelector::Operator::kExists;
      return req;
    }
    if (text_.substr(pos_, 2) == "==" || text_.substr(pos_, 2) == "!=") {
      req.op = text_[pos_] == '=' ? LabelSelector::Operator::kIn : LabelSelector::Operator::kNotIn;
      pos_ += 2;
    } else if (text_[pos_] == '=') {
      req.op = LabelSelector::Operator::kIn;
      ++pos_;
    } else if (consumeWord("notin")) {
      return parseSet(std::move(req), LabelSelector::Operator::kNotIn);
    } else if (consumeWord("in")) {
      return parseSet(std::move(req), LabelSelector::Operator::kIn);
    } else {
      return error("expected one of =, ==, !=, in, notin");
    }
    skipSpace();
    req.values.push_back(readWhile(isValueChar));
    return req;
  }

  StatusOr<LabelSelector::Requirement> parseSet(LabelSelector::Requirement req,
                                                LabelSelector::Operator op) {
    req.op = op;
    skipSpace();
    if (pos_ == text_.size() || text_[pos_] != '(') return error("expected '(' after in/notin");
    ++pos_;
    while (true) {
      skipSpace();
      req.values.push_back(readWhile(isValueChar));
      skipSpace();
      if (pos_ == text_.size()) return error("unterminated value set");
      if (text_[pos_] == ')') {
        ++pos_;
        break;
      }
      if (text_[pos_] != ',') return error("expected ',' or ')' in value set");
      ++pos_;
    }
    std::sort(req.values.begin(), req.values.end());
    return req;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

StatusOr<LabelSelector> LabelSelector::parse(std::string_view text) {
  SelectorParser parser(text);
  auto reqs = parser.parseAll();
  if (!reqs.ok()) return reqs.status();
  LabelSelector sel;
  sel.requirements_ = std::move(*reqs);
  return sel;
}

StatusOr<LabelSelector> LabelSelector::fromJson(const Json& selector) {
  LabelSelector sel;
  if (selector.is_null()) return sel;
  if (!selector.is_object()) return invalidArgument("label selector: must be an object");
  if (const auto ml = selector.find("matchLabels"); ml != selector.end() && !ml->is_null()) {
    if (!ml->is_object()) return invalidArgument("matchLabels: must be a map of strings");
    for (const auto& [k, v] : ml->items()) {
      if (!v.is_string()) return invalidArgument("matchLabels." + k + ": must be a string");
      sel.requirements_.push_back({k, Operator::kIn, {v.get<std::string>()}});
    }
  }
  if (const auto me = selector.find("matchExpressions"); me != selector.end() && !me->is_null()) {
    if (!me->is_array()) return invalidArgument("matchExpressions: must be a list");
    for (size_t i = 0; i < me->size(); ++i) {
      const Json& e = (*me)[i];
      const std::string field = "matchExpressions[" + std::to_string(i) + "]";
      if (!e.is_object() || !e.contains("key") || !e["key"].is_string() ||
          e["key"].get<std::string>().empty()) {
        return invalidArgument(field + ".key: required");
      }
      Requirement req;
      req.key = e["key"].get<std::string>();
      const std::string op = e.value("operator", "");
      if (op == "In") {
        req.op = Operator::kIn;
      } else if (op == "NotIn") {
        req.op = Operator::kNotIn;
      } else if (op == "Exists") {
        req.op = Operator::kExists;
      } else if (op == "DoesNotExist") {
        req.op = Operator::kDoesNotExist;
      } else {
        std::string msg = field;
        msg.append(".operator: \"")
            .append(op)
            .append("\" is not one of In, NotIn, Exists, DoesNotExist");
        return invalidArgument(msg);
      }
      const bool wantsValues = req.op == Operator::kIn || req.op == Operator::kNotIn;
      if (const auto vals = e.find("values"); vals != e.end() && !vals->is_null()) {
        if (!vals->is_array()) return invalidArgument(field + ".values: must be a list");
        for (const auto& v : *vals) {
          if (!v.is_string()) return invalidArgument(field + ".values: must be strings");
          req.values.push_back(v.get<std::string>());
        }
      }
      if (wantsValues && req.values.empty()) {
        return invalidArgument(
            std::string(field).append(".values: required for operator ").append(op));
      }
      if (!wantsValues && !req.values.empty()) {
        return invalidArgument(
            std::string(field).append(".values: must be empty for operator ").append(op));
      }
      std::sort(req.values.begin(), req.values.end());
      sel.requirements_.push_back(std::move(req));
    }
  }
  return sel;
}

bool LabelSelector::matches(const Json& labels) const {
  for (const auto& req : requirements_) {
    const Json* value = nullptr;
    if (labels.is_object()) {
      const auto it = labels.find(req.key);
      if (it != labels.end() && it->is_string()) value = &*it;
    }
    const auto inValues = [&] {
      return value != nullptr &&
             std::binary_search(req.values.begin(), req.values.end(), value->get<std::string>());
    };
    switch (req.op) {
      case Operator::kExists:
        if (value == nullptr) return false;
        break;
      case Operator::kDoesNotExist:
        if (value != nullptr) return false;
        break;
      case Operator::kIn:
        if (!inValues()) return false;
        break;
      case Operator::kNotIn:
        if (inValues()) return false;
        break;
    }
  }
  return true;
}

std::string LabelSelector::toString() const {
  std::string out;
  for (const auto& req : requirements_) {
    if (!out.empty()) out += ",";
    switch (req.op) {
      case Operator::kExists:
        out += req.key;
        break;
      case Operator::kDoesNotExist:
        out += "!" + req.key;
        break;
      case Operator::kIn:
      case Operator::kNotIn:
        if (req.values.size() == 1) {
          out += req.key + (req.op == Operator::kIn ? "=" : "!=") + req.values[0];
        } else {
          out += req.key + (req.op == Operator::kIn ? " in (" : " notin (");
          for (size_t i = 0; i < req.values.size(); ++i) {
            out += (i == 0 ? "" : ",") + req.values[i];
          }
          out += ")";
        }
        break;
    }
  }
  return out;
}

StatusOr<bool> matchesFieldSelector(std::string_view selector, const Json& object) {
  size_t start = 0;
  while (start <= selector.size()) {
    const size_t comma = selector.find(',', start);
    const std::string_view term = selector.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (!term.empty()) {
      bool negate = false;
      size_t opPos = term.find("!=");
      size_t valuePos = 0;
      if (opPos != std::string_view::npos) {
        negate = true;
        valuePos = opPos + 2;
      } else if ((opPos = term.find("==")) != std::string_view::npos) {
        valuePos = opPos + 2;
      } else if ((opPos = term.find('=')) != std::string_view::npos) {
        valuePos = opPos + 1;
      } else {
        return invalidArgument("field selector \"" + std::string(selector) +
                               "\": expected field=value, field==value or field!=value");
      }
      const std::string_view field = term.substr(0, opPos);
      const std::string_view want = term.substr(valuePos);
      std::string actual;
      if (field == "metadata.name") {
        actual = objectKeyOf(object).name;
      } else if (field == "metadata.namespace") {
        actual = objectKeyOf(object).ns;
      } else {
        return invalidArgument("field selector \"" + std::string(selector) + "\": field \"" +
                               std::string(field) +
                               "\" is not supported; use metadata.name or metadata.namespace");
      }
      if ((actual == want) == negate) return false;
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return true;
}

}  // namespace tasklease::kube
