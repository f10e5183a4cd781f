#include "webhook/env_expansion.h"

namespace tasklease::webhook {

bool ExpansionBudget::take(size_t n) {
  if (exhausted_ || n > left_) {
    exhausted_ = true;
    return false;
  }
  left_ -= n;
  return true;
}

bool expandVariables(std::string_view input,
                     FunctionRef<const std::string_view*(std::string_view)> lookup,
                     ExpansionBudget& budget, std::string* out) {
  auto append = [&](std::string_view s) {
    if (!budget.take(s.size())) return false;
    out->append(s);
    return true;
  };
  // Once a search for ')' from some position found none, none starts later either: each
  // unclosed "$(" after it is known at once instead of searched to the end again (the kubelet
  // searches each time, which is quadratic in a value made of "$(").
  size_t noCloserFrom = std::string_view::npos;
  size_t checkpoint = 0;
  for (size_t cursor = 0; cursor < input.size(); ++cursor) {
    if (input[cursor] != '$' || cursor + 1 >= input.size()) continue;
    if (!append(input.substr(checkpoint, cursor - checkpoint))) return false;
    const char next = input[cursor + 1];
    size_t advance = 1;
    bool ok = true;
    if (next == '$') {
      ok = append("$");  // an escaped operator
    } else if (next == '(') {
      size_t close = std::string_view::npos;
      if (noCloserFrom == std::string_view::npos || cursor + 2 < noCloserFrom) {
        close = input.find(')', cursor + 2);
        if (close == std::string_view::npos) noCloserFrom = cursor + 2;
      }
      if (close == std::string_view::npos) {
        ok = append("$(");  // an unclosed reference is kept as written
      } else {
        const std::string_view name = input.substr(cursor + 2, close - cursor - 2);
        if (const std::string_view* value = lookup(name)) {
          ok = append(*value);
        } else {
          ok = append("$(") && append(name) && append(")");  // undefined: kept as written
        }
        advance = close - cursor;
      }
    } else {
      // Not an expression: the operator and the byte after it. The kubelet converts that byte
      // to a string as a rune (Go's string(byte)), so a byte of 0x80 or above comes out as the
      // two-byte UTF-8 encoding of the code point of its value.
      const auto b = static_cast<unsigned char>(next);
      if (b < 0x80) {
        const char kept[2] = {'$', next};
        ok = append(std::string_view(kept, 2));
      } else {
        const char kept[3] = {'$', static_cast<char>(0xC0 | (b >> 6)),
                              static_cast<char>(0x80 | (b & 0x3F))};
        ok = append(std::string_view(kept, 3));
      }
    }
    if (!ok) return false;
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return checkpoint >= input.size() || append(input.substr(checkpoint));
}

const std::string_view* ContainerEnvironment::lookup(std::string_view name) {
  for (; mapped_ < declared_.size(); ++mapped_) {
    values_.insert_or_assign(declared_[mapped_].first, declared_[mapped_].second);
  }
  auto it = values_.find(name);
  if (it == values_.end() || !it->second) return nullptr;
  return &*it->second;
}

std::optional<std::string_view> ContainerEnvironment::expandNow(std::string_view text) {
  if (text.find('$') == std::string_view::npos) return text;
  std::string out;
  if (!expandVariables(
          text, [this](std::string_view name) { return lookup(name); }, budget_, &out)) {
    return std::nullopt;
  }
  return std::string_view(expanded_.emplace_back(std::move(out)));
}

std::optional<std::string_view> ContainerEnvironment::declare(std::string_view name,
                                                              std::string_view value) {
  std::optional<std::string_view> seen = expandNow(value);
  declared_.emplace_back(name, seen);
  return seen;
}

void ContainerEnvironment::declareUnknown(std::string_view name) {
  declared_.emplace_back(name, std::nullopt);
}

std::optional<std::string_view> ContainerEnvironment::expand(std::string_view text) {
  return expandNow(text);
}

}  // namespace tasklease::webhook
