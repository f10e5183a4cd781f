#include "webhook/manifests.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "webhook/admission.h"
#include "webhook/json_access.h"

namespace tasklease::webhook {
namespace {

namespace fs = std::filesystem;

// Aliases can make a small file expand enormously; no manifest has this many nodes.
constexpr size_t kMaxNodes = 2'000'000;
constexpr size_t kMaxDepth = 128;

bool isInteger(const std::string& s) {
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  return i < s.size() && std::all_of(s.begin() + static_cast<long>(i), s.end(),
                                     [](char c) { return c >= '0' && c <= '9'; });
}

bool isFloat(const std::string& s) {
  char* end = nullptr;
  errno = 0;
  std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno == ERANGE) return false;
  // strtod also takes hex, inf and nan; YAML's core schema floats are decimal only.
  return s.find_first_of("xXnN") == std::string::npos &&
         s.find_first_of("0123456789") != std::string::npos;
}

// YAML 1.2 core schema for plain scalars; quoted scalars are always strings.
Json scalarToJson(const YAML::Node& n) {
  const std::string& v = n.Scalar();
  if (n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str") return v;
  if (v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL") return nullptr;
  if (v == "true" || v == "True" || v == "TRUE") return true;
  if (v == "false" || v == "False" || v == "FALSE") return false;
  if (isInteger(v)) {
    errno = 0;
    long long i = std::strtoll(v.c_str(), nullptr, 10);
    if (errno != ERANGE) return i;
  }
  if (isFloat(v)) return std::strtod(v.c_str(), nullptr);
  return v;
}

Status toJson(const YAML::Node& n, Json* out, size_t depth, size_t* nodes,
              const std::string& source) {
  if (++*nodes > kMaxNodes)
    return invalidArgument(source + ": document too large after expanding aliases");
  if (depth > kMaxDepth)
    return invalidArgument(source + ": nested deeper than " + std::to_string(kMaxDepth));
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      *out = nullptr;
      return {};
    case YAML::NodeType::Scalar:
      *out = scalarToJson(n);
      return {};
    case YAML::NodeType::Sequence: {
      *out = Json::array();
      for (const auto& child : n) {
        Json c;
        Status s = toJson(child, &c, depth + 1, nodes, source);
        if (!s.ok()) return s;
        out->push_back(std::move(c));
      }
      return {};
    }
    case YAML::NodeType::Map: {
      *out = Json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar())
          return invalidArgument(source + ": a mapping key is not a string");
        Json c;
        Status s = toJson(kv.second, &c, depth + 1, nodes, source);
        if (!s.ok()) return s;
        (*out)[kv.first.Scalar()] = std::move(c);
      }
      return {};
    }
  }
  return {};
}

void addExpanded(Json object, const std::string& source, std::vector<Manifest>& out) {
  std::string_view kind = stringMember(object, "kind");
  const Json* items = member(object, "items");
  if (kind.size() >= 4 && kind.substr(kind.size() - 4) == "List" && items != nullptr &&
      items->is_array()) {
    for (size_t i = 0; i < items->size(); ++i) {
      out.push_back({source + " (item " + std::to_string(i + 1) + ")", (*items)[i]});
    }
    return;
  }
  out.push_back({source, std::move(object)});
}

StatusOr<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return notFound("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool isManifestFile(const fs::path& p) {
  std::string ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

}  // namespace

StatusOr<std::vector<Manifest>> parseManifests(std::string_view text, const std::string& source) {
  std::vector<Manifest> out;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (text[first] == '{' || text[first] == '[')) {
    // JSON: one value (an object, or an array of objects). Parsed as JSON, not as YAML, so
    // that numbers and strings keep JSON's meaning.
    StatusOr<Json> j = parseJsonLimited(text);
    if (!j.ok()) return invalidArgument(source + ": " + j.status().message());
    if (j->is_array()) {
      for (size_t i = 0; i < j->size(); ++i) {
        addExpanded((*j)[i], source + " (item " + std::to_string(i + 1) + ")", out);
      }
    } else {
      addExpanded(std::move(*j), source, out);
    }
    return out;
  }
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return invalidArgument(source + ": line " + std::to_string(e.mark.line + 1) + ", column " +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    std::string where =
        docs.size() > 1 ? source + " (document " + std::to_string(i + 1) + ")" : source;
    Json j;
    size_t nodes = 0;
    Status s = toJson(docs[i], &j, 0, &nodes, where);
    if (!s.ok()) return s;
    if (j.is_null()) continue;  // an empty document between separators
    if (!j.is_object()) return invalidArgument(where + ": not an object (a Kubernetes manifest)");
    addExpanded(std::move(j), where, out);
  }
  return out;
}

StatusOr<std::vector<Manifest>> loadManifests(const std::vector<std::string>& paths,
                                              std::istream& stdinStream) {
  std::vector<Manifest> out;
  auto append = [&out](StatusOr<std::vector<Manifest>> more) -> Status {
    if (!more.ok()) return more.status();
    for (auto& m : *more) out.push_back(std::move(m));
    return {};
  };
  for (const std::string& path : paths) {
    if (path == "-") {
      std::ostringstream ss;
      ss << stdinStream.rdbuf();
      Status s = append(parseManifests(ss.str(), "<stdin>"));
      if (!s.ok()) return s;
      continue;
    }
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<std::string> files;
      for (auto it = fs::recursive_directory_iterator(path, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec) && isManifestFile(it->path()))
          files.push_back(it->path().string());
      }
      if (ec) return notFound("cannot read directory " + path + ": " + ec.message());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        StatusOr<std::string> text = readFile(f);
        if (!text.ok()) return text.status();
        Status s = append(parseManifests(*text, f));
        if (!s.ok()) return s;
      }
      continue;
    }
    StatusOr<std::string> text = readFile(path);
    if (!text.ok()) return text.status();
    Status s = append(parseManifests(*text, path));
    if (!s.ok()) return s;
  }
  return out;
}

}  // namespace tasklease::webhook
