#pragma once
// The hash-chained evidence log (DESIGN.md §6, docs/evidence.md). Each process appends records
// to its own chain; each record commits to its predecessor's hash, so an altered, dropped or
// reordered record is found by verifyEvidence().
//
//   auto chain = EvidenceChain::open({std::make_unique<FileEvidenceSink>(path)}, &headStore);
//   if (!chain.ok()) return chain.status();
//   (*chain)->append({EvidenceKind::kIssued, {ns, name, uid}, "operator", details});
//
// Records hold fingerprints (tasklease::fingerprint), never secret material.

#include <cstdint>
#include <cstdio>
#include <functional>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/rfc3339.h"
#include "common/status.h"

namespace tasklease {

enum class EvidenceKind {
  kDelegated,
  kAuthorized,
  kDenied,
  kIssued,
  kAdmitted,
  kRejected,
  kExceptionUsed,
  kCompleted,
  kExpired,
  kRevoked,
};

// "delegated", ..., "exception-used", ...
const char* evidenceKindName(EvidenceKind kind);
std::optional<EvidenceKind> parseEvidenceKind(std::string_view name);

// The task a record is about. For records not tied to a task (a rejected Deployment, say) name
// and uid are empty and namespace is where it happened.
struct EvidenceTask {
  std::string ns;
  std::string name;
  std::string uid;
};

// What a caller records; the chain adds seq, time, prev and hash.
struct EvidenceEvent {
  EvidenceKind kind = EvidenceKind::kAdmitted;
  EvidenceTask task;
  std::string actor;              // who caused it: a username, "tasklease-operator", ...
  Json details = Json::object();  // integers, strings, booleans, arrays, objects; no fractions
};

struct EvidenceRecord {
  uint64_t seq = 0;
  std::string time;  // RFC 3339, UTC, milliseconds
  EvidenceKind kind = EvidenceKind::kAdmitted;
  EvidenceTask task;
  std::string actor;
  Json details = Json::object();
  std::string prev;
  std::string hash;
};

// The prev of the first record of every chain: 64 zeros.
extern const char kEvidenceGenesis[];

// The canonical form hashed by the chain (docs/evidence.md): object keys sorted by their UTF-8
// bytes, no insignificant whitespace, strings escaped minimally, integers in decimal. Errors
// on numbers with fractions and on strings that are not valid UTF-8.
StatusOr<std::string> canonicalJson(const Json& value);

// The record as a JSON object, with or without its "hash" member.
Json evidenceRecordToJson(const EvidenceRecord& record, bool withHash = true);
// Reads a record; errors name the missing or mistyped field.
StatusOr<EvidenceRecord> evidenceRecordFromJson(const Json& object);

// SHA-256 hex over prev followed by the canonical JSON of the object without "hash". This is
// computed over the whole object, so a member added to a stored record also breaks the hash.
StatusOr<std::string> evidenceHash(const Json& recordObject);

// Where the chain's last record is: what a restart continues from.
struct ChainHead {
  uint64_t seq = 0;  // 0: nothing written yet
  std::string hash = kEvidenceGenesis;
  friend bool operator==(const ChainHead&, const ChainHead&) = default;
};

// Keeps the chain head across restarts. The webhook and operator keep it in a ConfigMap
// (kube/-backed implementation); FileChainHeadStore serves tests and local runs.
class ChainHeadStore {
 public:
  virtual ~ChainHeadStore() = default;
  // nullopt when nothing was ever saved.
  virtual StatusOr<std::optional<ChainHead>> load() = 0;
  virtual Status save(const ChainHead& head) = 0;
};
using ChainHeadStorePtr = std::unique_ptr<ChainHeadStore>;

// Head as {"seq": N, "hash": "..."} in a file, replaced atomically (write + rename).
class FileChainHeadStore : public ChainHeadStore {
 public:
  explicit FileChainHeadStore(std::string path) : path_(std::move(path)) {}
  StatusOr<std::optional<ChainHead>> load() override;
  Status save(const ChainHead& head) override;

 private:
  std::string path_;
};

// JSON head encoding shared by every store: {"seq": N, "hash": "..."}.
Json chainHeadToJson(const ChainHead& head);
StatusOr<ChainHead> chainHeadFromJson(const Json& object);

// Where records go, one JSON line each, flushed before write() returns.
class EvidenceSink {
 public:
  virtual ~EvidenceSink() = default;
  virtual Status write(std::string_view line) = 0;
  // The head of what this sink already holds, when it can tell (a file can; stdout cannot).
  virtual StatusOr<std::optional<ChainHead>> existingHead() { return std::optional<ChainHead>(); }
};
using EvidenceSinkPtr = std::unique_ptr<EvidenceSink>;

// Appends to a file, creating it; existingHead() reads the file's last record.
class FileEvidenceSink : public EvidenceSink {
 public:
  explicit FileEvidenceSink(std::string path);
  ~FileEvidenceSink() override;
  FileEvidenceSink(const FileEvidenceSink&) = delete;
  FileEvidenceSink& operator=(const FileEvidenceSink&) = delete;
  Status write(std::string_view line) override;
  StatusOr<std::optional<ChainHead>> existingHead() override;

 private:
  std::string path_;
  std::FILE* file_ = nullptr;  // opened on first write
};

// Writes to a stream the caller owns (std::cout for the stdout chain).
class StreamEvidenceSink : public EvidenceSink {
 public:
  explicit StreamEvidenceSink(std::ostream& out) : out_(out) {}
  Status write(std::string_view line) override;

 private:
  std::ostream& out_;
};

using Clock = std::function<TimePoint()>;

// Appends records to its sinks and keeps the head. Thread-safe: appends are serialised.
class EvidenceChain {
 public:
  // Continues from the later of the store's head and the sinks' existing heads (a record
  // written just before a crash is in the file even when the store missed it). store may be
  // null (the chain then starts at the sinks' head or at genesis).
  static StatusOr<std::unique_ptr<EvidenceChain>> open(std::vector<EvidenceSinkPtr> sinks,
                                                       ChainHeadStore* store,
                                                       Clock clock = nullptr);

  // Writes the record to every sink, then saves the head. The head advances even when a sink
  // fails, so a lost record shows up as missing when the chain is verified; the error is
  // returned so the caller can count and log it.
  StatusOr<EvidenceRecord> append(EvidenceEvent event);

  ChainHead head() const;

 private:
  EvidenceChain(std::vector<EvidenceSinkPtr> sinks, ChainHeadStore* store, Clock clock,
                ChainHead head);

  std::vector<EvidenceSinkPtr> sinks_;
  ChainHeadStore* store_;
  Clock clock_;
  mutable std::mutex mu_;
  ChainHead head_;  // guarded by mu_
};
using EvidenceChainPtr = std::unique_ptr<EvidenceChain>;

// What verification found.
enum class EvidenceProblem { kNone, kMalformed, kAltered, kMissing, kReordered };
const char* evidenceProblemName(EvidenceProblem problem);

struct VerifyOptions {
  // The chain must start at seq 1 with the genesis prev. Off for a file that starts mid-chain.
  bool requireGenesis = true;
  // The head the writer persisted: records after the file's end up to it are reported missing.
  std::optional<ChainHead> expectedHead;
};

struct VerifyResult {
  EvidenceProblem problem = EvidenceProblem::kNone;
  uint64_t seq = 0;      // the first seq that is altered, missing or out of order
  uint64_t line = 0;     // 1-based line where it was noticed (0 when past the end)
  uint64_t records = 0;  // records read
  ChainHead head;        // last verified record
  std::string message;
  bool ok() const { return problem == EvidenceProblem::kNone; }
};

// Reads JSON lines (blank lines skipped) and reports the first problem.
VerifyResult verifyEvidence(std::istream& in, const VerifyOptions& options = {});

}  // namespace tasklease
