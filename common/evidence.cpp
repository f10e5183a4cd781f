#include "common/evidence.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <istream>
#include <ostream>
#include <unordered_map>

#include "common/crypto.h"

namespace tasklease {

const char kEvidenceGenesis[] = "0000000000000000000000000000000000000000000000000000000000000000";

namespace {

struct KindName {
  EvidenceKind kind;
  const char* name;
};

constexpr KindName kKindNames[] = {
    {EvidenceKind::kDelegated, "delegated"},
    {EvidenceKind::kAuthorized, "authorized"},
    {EvidenceKind::kDenied, "denied"},
    {EvidenceKind::kIssued, "issued"},
    {EvidenceKind::kAdmitted, "admitted"},
    {EvidenceKind::kRejected, "rejected"},
    {EvidenceKind::kExceptionUsed, "exception-used"},
    {EvidenceKind::kCompleted, "completed"},
    {EvidenceKind::kExpired, "expired"},
    {EvidenceKind::kRevoked, "revoked"},
};

bool isHex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Finds a member that must be a string; names the field when it is not.
Status requireString(const Json& obj, const char* key, const std::string& where, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) {
    return invalidArgument(where + key + ": required string");
  }
  *out = it->get<std::string>();
  return {};
}

Status checkNoFractions(const Json& v, const std::string& path) {
  if (v.is_number_float()) {
    return invalidArgument("evidence " + path +
                           ": numbers with fractions are not allowed in evidence (write integers "
                           "or strings, e.g. milliseconds)");
  }
  if (v.is_object()) {
    for (const auto& [k, child] : v.items()) {
      std::string childPath = path;
      childPath.append(".").append(k);
      Status s = checkNoFractions(child, childPath);
      if (!s.ok()) return s;
    }
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) {
      Status s = checkNoFractions(v[i], path + "[" + std::to_string(i) + "]");
      if (!s.ok()) return s;
    }
  }
  return {};
}

// Whether `line` is byte for byte the canonical JSON of what it parses to (`object`), as the
// writer writes it. A line that parses to a record whose hash holds can still differ: a key given
// twice (a reader that keeps the first sees another value than the one hashed, which was the
// last), whitespace, escapes or number forms the writer never writes. Such a line was edited.
bool isCanonicalLine(std::string_view line, const Json& object) {
  StatusOr<std::string> canonical = canonicalJson(object);
  return canonical.ok() && *canonical == line;
}

constexpr char kNotCanonical[] =
    " is not in the canonical form its hash covers (a key given twice, whitespace, escapes or "
    "number forms the writer never writes)";

}  // namespace

const char* evidenceKindName(EvidenceKind kind) {
  for (const auto& k : kKindNames) {
    if (k.kind == kind) return k.name;
  }
  return "unknown";
}

std::optional<EvidenceKind> parseEvidenceKind(std::string_view name) {
  for (const auto& k : kKindNames) {
    if (name == k.name) return k.kind;
  }
  return std::nullopt;
}

StatusOr<std::string> canonicalJson(const Json& value) {
  Status s = checkNoFractions(value, "value");
  if (!s.ok()) return s;
  // nlohmann's objects are std::maps, so keys come out sorted by bytes; dump() without an
  // indent writes no whitespace; ensure_ascii=false keeps UTF-8 as it is and the strict error
  // handler refuses invalid UTF-8.
  try {
    return value.dump(-1, ' ', false, Json::error_handler_t::strict);
  } catch (const Json::exception& e) {
    return invalidArgument(std::string("evidence is not valid UTF-8 JSON: ") + e.what());
  }
}

Json evidenceRecordToJson(const EvidenceRecord& r, bool withHash) {
  Json j = {
      {"seq", r.seq},
      {"time", r.time},
      {"kind", evidenceKindName(r.kind)},
      {"task", {{"namespace", r.task.ns}, {"name", r.task.name}, {"uid", r.task.uid}}},
      {"actor", r.actor},
      {"details", r.details},
      {"prev", r.prev},
  };
  if (withHash) j["hash"] = r.hash;
  return j;
}

StatusOr<EvidenceRecord> evidenceRecordFromJson(const Json& obj) {
  if (!obj.is_object()) return invalidArgument("evidence record: not a JSON object");
  EvidenceRecord r;
  auto seq = obj.find("seq");
  if (seq == obj.end() || !seq->is_number_unsigned() || seq->get<uint64_t>() == 0) {
    return invalidArgument("evidence record: seq: required positive integer");
  }
  r.seq = seq->get<uint64_t>();
  const std::string where = "evidence record " + std::to_string(r.seq) + ": ";
  Status s = requireString(obj, "time", where, &r.time);
  if (!s.ok()) return s;
  if (!parseRfc3339(r.time).ok()) return invalidArgument(where + "time: not an RFC 3339 time");
  std::string kind;
  s = requireString(obj, "kind", where, &kind);
  if (!s.ok()) return s;
  auto k = parseEvidenceKind(kind);
  if (!k) return invalidArgument(where + "kind: unknown kind \"" + kind + "\"");
  r.kind = *k;
  auto task = obj.find("task");
  if (task == obj.end() || !task->is_object()) {
    return invalidArgument(where + "task: required object");
  }
  const std::string taskWhere = where + "task.";
  if (!(s = requireString(*task, "namespace", taskWhere, &r.task.ns)).ok()) return s;
  if (!(s = requireString(*task, "name", taskWhere, &r.task.name)).ok()) return s;
  if (!(s = requireString(*task, "uid", taskWhere, &r.task.uid)).ok()) return s;
  if (!(s = requireString(obj, "actor", where, &r.actor)).ok()) return s;
  auto details = obj.find("details");
  if (details == obj.end() || !details->is_object()) {
    return invalidArgument(where + "details: required object");
  }
  r.details = *details;
  if (!(s = requireString(obj, "prev", where, &r.prev)).ok()) return s;
  if (!isHex64(r.prev)) return invalidArgument(where + "prev: not 64 lower-case hex digits");
  if (!(s = requireString(obj, "hash", where, &r.hash)).ok()) return s;
  if (!isHex64(r.hash)) return invalidArgument(where + "hash: not 64 lower-case hex digits");
  return r;
}

StatusOr<std::string> evidenceHash(const Json& recordObject) {
  if (!recordObject.is_object()) return invalidArgument("evidence record: not a JSON object");
  auto prev = recordObject.find("prev");
  if (prev == recordObject.end() || !prev->is_string()) {
    return invalidArgument("evidence record: prev: required string");
  }
  Json withoutHash = recordObject;
  withoutHash.erase("hash");
  StatusOr<std::string> canonical = canonicalJson(withoutHash);
  if (!canonical.ok()) return canonical.status();
  return sha256Hex(prev->get<std::string>() + *canonical);
}

Json chainHeadToJson(const ChainHead& head) {
  return {{"seq", head.seq}, {"hash", head.hash}};
}

StatusOr<ChainHead> chainHeadFromJson(const Json& obj) {
  if (!obj.is_object()) return invalidArgument("evidence chain head: not a JSON object");
  auto seq = obj.find("seq");
  auto hash = obj.find("hash");
  if (seq == obj.end() || !seq->is_number_unsigned()) {
    return invalidArgument("evidence chain head: seq: required non-negative integer");
  }
  if (hash == obj.end() || !hash->is_string() || !isHex64(hash->get<std::string>())) {
    return invalidArgument("evidence chain head: hash: required 64 lower-case hex digits");
  }
  return ChainHead{seq->get<uint64_t>(), hash->get<std::string>()};
}

StatusOr<std::optional<ChainHead>> FileChainHeadStore::load() {
  std::ifstream in(path_);
  if (!in) {
    if (errno == ENOENT) return std::optional<ChainHead>();
    return unavailable("reading evidence head " + path_ + ": " + std::strerror(errno));
  }
  Json j = Json::parse(in, nullptr, false);
  if (j.is_discarded()) return invalidArgument("evidence head " + path_ + ": not JSON");
  StatusOr<ChainHead> head = chainHeadFromJson(j);
  if (!head.ok()) return head.status().annotate(path_);
  return std::optional<ChainHead>(*head);
}

Status FileChainHeadStore::save(const ChainHead& head) {
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << chainHeadToJson(head).dump() << '\n';
    out.flush();
    if (!out) return unavailable("writing evidence head " + tmp + ": " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
    return unavailable("replacing evidence head " + path_ + ": " + std::strerror(errno));
  }
  return {};
}

FileEvidenceSink::FileEvidenceSink(std::string path) : path_(std::move(path)) {}

FileEvidenceSink::~FileEvidenceSink() {
  if (file_ != nullptr) std::fclose(file_);
}

Status FileEvidenceSink::write(std::string_view line) {
  if (file_ == nullptr) {
    file_ = std::fopen(path_.c_str(), "ab");
    if (file_ == nullptr) {
      return unavailable("opening evidence file " + path_ + ": " + std::strerror(errno));
    }
  }
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() ||
      std::fputc('\n', file_) == EOF || std::fflush(file_) != 0) {
    return unavailable("writing evidence file " + path_ + ": " + std::strerror(errno));
  }
  return {};
}

StatusOr<std::optional<ChainHead>> FileEvidenceSink::existingHead() {
  std::FILE* f = std::fopen(path_.c_str(), "rb");
  if (f == nullptr) {
    if (errno == ENOENT) return std::optional<ChainHead>();
    return unavailable("opening evidence file " + path_ + ": " + std::strerror(errno));
  }
  std::fseek(f, 0, SEEK_END);
  long size = std::ftell(f);
  // Reads backwards in growing chunks until the tail holds a whole last line.
  std::string tail;
  long chunk = 4096;
  while (true) {
    long start = std::max(0L, size - chunk);
    tail.assign(static_cast<size_t>(size - start), '\0');
    std::fseek(f, start, SEEK_SET);
    size_t got = std::fread(tail.data(), 1, tail.size(), f);
    tail.resize(got);
    size_t body = tail.find_last_not_of('\n');
    if (start == 0 || (body != std::string::npos && tail.rfind('\n', body) != std::string::npos)) {
      break;
    }
    chunk *= 4;
  }
  std::fclose(f);
  // A crash can leave a torn last line (no newline): it was never a complete record, and the
  // head was saved only after a complete write, so it is cut off before appending.
  if (!tail.empty() && tail.back() != '\n') {
    size_t nl = tail.rfind('\n');
    long keep = nl == std::string::npos ? size - static_cast<long>(tail.size())
                                        : size - static_cast<long>(tail.size() - nl - 1);
    if (::truncate(path_.c_str(), keep) != 0) {
      return unavailable("cutting the torn last line of " + path_ + ": " + std::strerror(errno));
    }
    tail.resize(nl == std::string::npos ? 0 : nl + 1);
  }
  size_t end = tail.find_last_not_of('\n');
  if (end == std::string::npos) return std::optional<ChainHead>();
  size_t begin = tail.rfind('\n', end);
  begin = begin == std::string::npos ? 0 : begin + 1;
  Json j = Json::parse(tail.substr(begin, end - begin + 1), nullptr, false);
  if (j.is_discarded()) {
    return invalidArgument("evidence file " + path_ + ": last line is not JSON");
  }
  StatusOr<EvidenceRecord> r = evidenceRecordFromJson(j);
  if (!r.ok()) return r.status().annotate("evidence file " + path_);
  StatusOr<std::string> h = evidenceHash(j);
  if (!h.ok()) return h.status().annotate("evidence file " + path_);
  if (*h != r->hash) {
    return invalidArgument("evidence file " + path_ + ": last record (seq " +
                           std::to_string(r->seq) +
                           ") does not match its hash; verify the file before continuing it");
  }
  if (!isCanonicalLine(std::string_view(tail).substr(begin, end - begin + 1), j)) {
    return invalidArgument("evidence file " + path_ + ": last record (seq " +
                           std::to_string(r->seq) + ")" + kNotCanonical +
                           "; verify the file before continuing it");
  }
  return std::optional<ChainHead>(ChainHead{r->seq, r->hash});
}

Status StreamEvidenceSink::write(std::string_view line) {
  out_.write(line.data(), static_cast<std::streamsize>(line.size()));
  out_.put('\n');
  out_.flush();
  if (!out_) return unavailable("writing evidence stream failed");
  return {};
}

EvidenceChain::EvidenceChain(std::vector<EvidenceSinkPtr> sinks, ChainHeadStore* store, Clock clock,
                             ChainHead head)
    : sinks_(std::move(sinks)), store_(store), clock_(std::move(clock)), head_(std::move(head)) {}

StatusOr<std::unique_ptr<EvidenceChain>> EvidenceChain::open(std::vector<EvidenceSinkPtr> sinks,
                                                             ChainHeadStore* store, Clock clock) {
  ChainHead head;
  if (store != nullptr) {
    StatusOr<std::optional<ChainHead>> stored = store->load();
    if (!stored.ok()) return stored.status().annotate("loading the evidence chain head");
    if (stored->has_value()) head = **stored;
  }
  for (auto& sink : sinks) {
    StatusOr<std::optional<ChainHead>> existing = sink->existingHead();
    if (!existing.ok()) return existing.status();
    if (existing->has_value() && (*existing)->seq > head.seq) head = **existing;
  }
  if (!clock) clock = [] { return std::chrono::system_clock::now(); };
  return std::unique_ptr<EvidenceChain>(
      new EvidenceChain(std::move(sinks), store, std::move(clock), std::move(head)));
}

StatusOr<EvidenceRecord> EvidenceChain::append(EvidenceEvent event) {
  Status fractions = checkNoFractions(event.details, "details");
  if (!fractions.ok()) return fractions;
  if (!event.details.is_object()) return invalidArgument("evidence details: must be an object");

  std::lock_guard<std::mutex> lock(mu_);
  EvidenceRecord r;
  r.seq = head_.seq + 1;
  r.time = formatRfc3339(clock_(), /*millis=*/true);
  r.kind = event.kind;
  r.task = std::move(event.task);
  r.actor = std::move(event.actor);
  r.details = std::move(event.details);
  r.prev = head_.hash;
  Json j = evidenceRecordToJson(r, /*withHash=*/false);
  StatusOr<std::string> canonical = canonicalJson(j);
  if (!canonical.ok()) return canonical.status();
  r.hash = sha256Hex(r.prev + *canonical);
  // The canonical form without hash, plus the hash member, is the line: keys stay sorted.
  j["hash"] = r.hash;
  const std::string line = j.dump(-1, ' ', false, Json::error_handler_t::strict);

  Status firstError;
  for (auto& sink : sinks_) {
    Status s = sink->write(line);
    if (!s.ok() && firstError.ok()) firstError = s;
  }
  head_ = ChainHead{r.seq, r.hash};
  if (store_ != nullptr) {
    Status s = store_->save(head_);
    if (!s.ok() && firstError.ok()) firstError = s.annotate("saving the evidence chain head");
  }
  if (!firstError.ok()) return firstError;
  return r;
}

ChainHead EvidenceChain::head() const {
  std::lock_guard<std::mutex> lock(mu_);
  return head_;
}

const char* evidenceProblemName(EvidenceProblem problem) {
  switch (problem) {
    case EvidenceProblem::kNone:
      return "none";
    case EvidenceProblem::kMalformed:
      return "malformed";
    case EvidenceProblem::kAltered:
      return "altered";
    case EvidenceProblem::kMissing:
      return "missing";
    case EvidenceProblem::kReordered:
      return "reordered";
  }
  return "unknown";
}

namespace {

// What the first pass keeps per line: enough to check order and links without the records.
struct LineFacts {
  uint64_t line = 0;
  std::string error;  // malformed when non-empty
  uint64_t seq = 0;
  std::string prev;
  std::string hash;
  bool hashMatches = false;
  bool canonical = false;  // the line is exactly the canonical JSON of its record
};

VerifyResult problemAt(EvidenceProblem p, uint64_t seq, uint64_t line, uint64_t records,
                       const ChainHead& head, std::string message) {
  VerifyResult r;
  r.problem = p;
  r.seq = seq;
  r.line = line;
  r.records = records;
  r.head = head;
  r.message = std::move(message);
  return r;
}

}  // namespace

VerifyResult verifyEvidence(std::istream& in, const VerifyOptions& options) {
  std::vector<LineFacts> facts;
  std::unordered_map<uint64_t, size_t> lastIndexOfSeq;
  std::string text;
  uint64_t lineNo = 0;
  while (std::getline(in, text)) {
    ++lineNo;
    // Only an empty line is skipped: any other line must be a record as the writer wrote it.
    if (text.empty()) continue;
    LineFacts f;
    f.line = lineNo;
    Json j = Json::parse(text, nullptr, false);
    if (j.is_discarded()) {
      f.error = "not JSON";
    } else {
      StatusOr<EvidenceRecord> r = evidenceRecordFromJson(j);
      if (!r.ok()) {
        f.error = r.status().message();
      } else {
        f.seq = r->seq;
        f.prev = r->prev;
        f.hash = r->hash;
        StatusOr<std::string> h = evidenceHash(j);
        if (!h.ok()) {
          f.error = h.status().message();
        } else {
          f.hashMatches = *h == r->hash;
          f.canonical = isCanonicalLine(text, j);
        }
        lastIndexOfSeq[f.seq] = facts.size();
      }
    }
    facts.push_back(std::move(f));
  }

  ChainHead head;
  uint64_t expected = 1;
  bool first = true;
  uint64_t records = 0;
  for (size_t i = 0; i < facts.size(); ++i) {
    const LineFacts& f = facts[i];
    if (first && !options.requireGenesis && f.error.empty()) {
      expected = f.seq;
      head = ChainHead{f.seq - 1, f.prev};
    }
    if (!f.error.empty()) {
      return problemAt(EvidenceProblem::kMalformed, expected, f.line, records, head,
                       "line " + std::to_string(f.line) + ": " + f.error);
    }
    if (!f.hashMatches) {
      return problemAt(EvidenceProblem::kAltered, expected, f.line, records, head,
                       "record seq " + std::to_string(expected) + " (line " +
                           std::to_string(f.line) + ") does not match its hash: it was altered");
    }
    if (!f.canonical) {
      return problemAt(EvidenceProblem::kAltered, f.seq, f.line, records, head,
                       "record seq " + std::to_string(f.seq) + " (line " + std::to_string(f.line) +
                           ")" + kNotCanonical + ": it was altered");
    }
    if (f.seq != expected) {
      auto later = lastIndexOfSeq.find(expected);
      if (f.seq < expected) {
        return problemAt(EvidenceProblem::kReordered, f.seq, f.line, records, head,
                         "record seq " + std::to_string(f.seq) + " appears again at line " +
                             std::to_string(f.line) + ", after seq " +
                             std::to_string(expected - 1));
      }
      if (later != lastIndexOfSeq.end() && later->second > i) {
        return problemAt(EvidenceProblem::kReordered, expected, f.line, records, head,
                         "record seq " + std::to_string(expected) + " is out of order: seq " +
                             std::to_string(f.seq) + " comes before it at line " +
                             std::to_string(f.line));
      }
      return problemAt(EvidenceProblem::kMissing, expected, f.line, records, head,
                       "record seq " + std::to_string(expected) + " is missing: line " +
                           std::to_string(f.line) + " holds seq " + std::to_string(f.seq));
    }
    if (f.prev != head.hash) {
      // This record's own hash holds, so its prev is as written: the record before it is not
      // the one it was chained to.
      uint64_t culprit = expected > 1 && !first ? expected - 1 : expected;
      return problemAt(EvidenceProblem::kAltered, culprit, f.line, records, head,
                       "record seq " + std::to_string(expected) +
                           " does not chain to the record before it: record seq " +
                           std::to_string(culprit) + " was altered or replaced");
    }
    head = ChainHead{f.seq, f.hash};
    ++records;
    ++expected;
    first = false;
  }
  if (options.expectedHead) {
    const ChainHead& want = *options.expectedHead;
    if (want.seq > head.seq) {
      return problemAt(EvidenceProblem::kMissing, head.seq + 1, 0, records, head,
                       "records from seq " + std::to_string(head.seq + 1) + " to " +
                           std::to_string(want.seq) + " are missing at the end");
    }
    if (want.seq == head.seq && want.hash != head.hash) {
      return problemAt(
          EvidenceProblem::kAltered, head.seq, 0, records, head,
          "record seq " + std::to_string(head.seq) + " differs from the persisted chain head");
    }
  }
  VerifyResult ok;
  ok.records = records;
  ok.head = head;
  ok.message = std::to_string(records) + " records verified";
  return ok;
}

}  // namespace tasklease
