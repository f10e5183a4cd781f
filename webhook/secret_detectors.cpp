#include "webhook/secret_detectors.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "common/base64.h"
#include "common/json.h"
#include "webhook/review_meter.h"

namespace tasklease::webhook {
namespace {

bool isUpper(char c) {
  return c >= 'A' && c <= 'Z';
}
bool isLower(char c) {
  return c >= 'a' && c <= 'z';
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
bool isAlnum(char c) {
  return isUpper(c) || isLower(c) || isDigit(c);
}
bool isUpperOrDigit(char c) {
  return isUpper(c) || isDigit(c);
}
bool isB64Url(char c) {
  return isAlnum(c) || c == '_' || c == '-';
}
bool isAlnumOrUnderscore(char c) {
  return isAlnum(c) || c == '_';
}
bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool isAlnumOrDash(char c) {
  return isAlnum(c) || c == '-';
}

// Length of the run of characters satisfying pred starting at pos (charged to the review).
template <typename Pred>
size_t runOf(std::string_view s, size_t pos, Pred pred) {
  size_t i = pos;
  while (i < s.size() && pred(s[i])) ++i;
  chargeReview(i - pos + 1);
  return i - pos;
}

// s.find(needle, from), charged with the bytes it passed over.
size_t findCharged(std::string_view s, std::string_view needle, size_t from) {
  const size_t pos = s.find(needle, from);
  chargeReview((pos == std::string_view::npos ? s.size() : pos + needle.size()) -
               std::min(from, s.size()) + 1);
  return pos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

char lowerChar(char c) {
  return isUpper(c) ? static_cast<char>(c - 'A' + 'a') : c;
}

// Documentation placeholders and template markers, in lower case. A real key has none of these.
constexpr std::string_view kPlaceholderMarkers[] = {
    "example",   "xxxxxxxx", "********", "placeholder", "changeme", "change-me",
    "change_me", "redacted", "dummy",    "your-",       "your_",    "<",
    ">",         "${",       "$(",       "{{"};

// Whether a placeholder marker begins at s[i] and ends by `end` (compared without case).
bool placeholderAt(std::string_view s, size_t i, size_t end) {
  const char first = lowerChar(s[i]);
  for (std::string_view m : kPlaceholderMarkers) {
    if (m[0] != first || end - i < m.size()) continue;
    size_t k = 1;
    while (k < m.size() && lowerChar(s[i + k]) == m[k]) ++k;
    if (k == m.size()) return true;
  }
  return false;
}

bool looksLikePlaceholder(std::string_view s) {
  chargeReview(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (placeholderAt(s, i, s.size())) return true;
  }
  return false;
}

size_t distinctChars(std::string_view s) {
  std::array<bool, 256> seen{};
  size_t n = 0;
  for (char c : s) {
    auto& slot = seen[static_cast<unsigned char>(c)];
    if (!slot) {
      slot = true;
      ++n;
    }
  }
  return n;
}

// The random part of a provider token: enough variety that it is not "xxxx" or "0000".
bool looksRandom(std::string_view body) {
  chargeReview(2 * body.size());
  return !looksLikePlaceholder(body) && distinctChars(body) >= 8 && shannonEntropy(body) >= 3.0;
}

// Shannon entropy from byte counts, in ascending byte order (so that every caller computes
// exactly the same value for the same bytes).
template <typename ForEachPresentByte>
double entropyOfCounts(const std::array<uint32_t, 256>& counts, size_t length,
                       ForEachPresentByte forEachPresentByte) {
  if (length == 0) return 0;
  double h = 0;
  const auto n = static_cast<double>(length);
  forEachPresentByte([&](unsigned char b) {
    const double p = static_cast<double>(counts[b]) / n;
    h -= p * std::log2(p);
  });
  return h;
}

// What the provider detectors ask of a token's body, kept while the body grows to the left
// one byte at a time: every prefix occurrence inside one run of body characters has a suffix of
// that run as its body, so all of them are judged in one pass over the run.
class BodyStats {
 public:
  size_t length() const { return length_; }
  size_t distinct() const { return distinct_; }
  bool hasDigit() const { return digits_ > 0; }
  bool hasLetter() const { return letters_ > 0; }

  // s[i] joins the front of the body, which ends at `end`.
  void prepend(std::string_view s, size_t i, size_t end) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (counts_[b]++ == 0) {
      ++distinct_;
      present_[b / 64] |= uint64_t{1} << (b % 64);
    }
    ++length_;
    if (isDigit(s[i])) ++digits_;
    if (isUpper(s[i]) || isLower(s[i])) ++letters_;
    if (!placeholder_ && placeholderAt(s, i, end)) placeholder_ = true;
  }

  // The body's Shannon entropy, exactly as shannonEntropy() computes it.
  double entropy() const {
    chargeReview(distinct_);
    return entropyOfCounts(counts_, length_, [&](auto&& f) {
      for (size_t w = 0; w < present_.size(); ++w) {
        for (uint64_t bits = present_[w]; bits != 0; bits &= bits - 1) {
          f(static_cast<unsigned char>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits))));
        }
      }
    });
  }

  // The random part of a provider token: enough variety that it is not "xxxx" or "0000".
  bool looksRandom() const { return !placeholder_ && distinct_ >= 8 && entropy() >= 3.0; }

  // Empties it again; `body` is what was prepended (only those counts are cleared).
  void clear(std::string_view body) {
    for (char c : body) counts_[static_cast<unsigned char>(c)] = 0;
    present_ = {};
    length_ = distinct_ = digits_ = letters_ = 0;
    placeholder_ = false;
  }

 private:
  std::array<uint32_t, 256> counts_{};
  std::array<uint64_t, 4> present_{};
  size_t length_ = 0;
  size_t distinct_ = 0;
  size_t digits_ = 0;
  size_t letters_ = 0;
  bool placeholder_ = false;
};

// A provider token: a prefix that starts a token (no letter or digit right before it), then a
// body of at least minLength and at most maxLength `inBody` characters running to a token
// boundary, which `accept(start, stats)` judges (start: where the body begins in s).
struct TokenShape {
  std::string_view prefix;
  bool (*inBody)(char);
  size_t minLength;
  size_t maxLength;
};

// Whether any occurrence of shape.prefix in s has a body that accept takes. Linear in s: each
// run of body characters is scanned once, and the bodies of the prefixes inside it, which are
// its suffixes, are judged shortest first while BodyStats grows over the run (a value made of a
// prefix repeated used to be rescanned to its end at each occurrence). Stops, finding nothing,
// once the review's budget is spent.
template <typename Accept>
bool anyToken(std::string_view s, const TokenShape& shape, Accept accept) {
  thread_local BodyStats stats;
  std::vector<size_t> starts;  // bodies that end at runEnd, in order
  size_t runEnd = 0;
  // Judges the bodies in `starts`, from the shortest; false when none is taken.
  const auto judgeRun = [&]() {
    size_t front = runEnd;
    bool taken = false;
    for (auto it = starts.rbegin(); it != starts.rend() && !taken; ++it) {
      const size_t start = *it;
      if (runEnd - start > shape.maxLength) break;  // the rest are longer still
      if (!chargeReview(front - start)) break;
      for (; front > start; --front) stats.prepend(s, front - 1, runEnd);
      taken = runEnd - start >= shape.minLength && accept(start, stats);
    }
    stats.clear(s.substr(front, runEnd - front));
    starts.clear();
    return taken;
  };
  for (size_t pos = findCharged(s, shape.prefix, 0); pos != std::string_view::npos;
       pos = findCharged(s, shape.prefix, pos + 1)) {
    if (reviewSpent()) return false;
    if (pos > 0 && isAlnum(s[pos - 1])) continue;
    const size_t start = pos + shape.prefix.size();
    if (starts.empty() || start >= runEnd) {
      if (!starts.empty() && judgeRun()) return true;
      runEnd = start + runOf(s, start, shape.inBody);
    }
    starts.push_back(start);
  }
  return !starts.empty() && judgeRun();
}

bool providerToken(std::string_view s, const TokenShape& shape) {
  return anyToken(s, shape, [](size_t, const BodyStats& body) { return body.looksRandom(); });
}

bool awsAccessKeyId(std::string_view s) {
  for (std::string_view prefix : {"AKIA", "ASIA"}) {
    bool hit = anyToken(s, {prefix, isUpperOrDigit, 16, 16}, [&](size_t start, const BodyStats& b) {
      // AWS's documentation keys (AKIAIOSFODNN7EXAMPLE) end in EXAMPLE.
      return s.substr(start + 9, 7) != "EXAMPLE" && b.distinct() >= 6;
    });
    if (hit) return true;
  }
  return false;
}

bool githubClassic(std::string_view s) {
  for (std::string_view prefix : {"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}) {
    if (providerToken(s, {prefix, isAlnum, 36, 251})) return true;
  }
  return false;
}

bool githubFineGrained(std::string_view s) {
  return providerToken(s, {"github_pat_", isAlnumOrUnderscore, 50, 251});
}

// Provider bodies with no documented maximum are taken up to this length.
constexpr size_t kLongestBody = 4096;

bool gitlab(std::string_view s) {
  return providerToken(s, {"glpat-", isB64Url, 20, kLongestBody});
}

bool slackToken(std::string_view s) {
  for (std::string_view prefix : {"xoxa-", "xoxb-", "xoxp-", "xoxr-"}) {
    const TokenShape shape{prefix, isAlnumOrDash, 20, std::string_view::npos};
    // Slack tokens carry numeric team and user ids: "xoxb-your-bot-token" has none.
    if (anyToken(s, shape,
                 [](size_t, const BodyStats& b) { return b.hasDigit() && b.looksRandom(); })) {
      return true;
    }
  }
  return false;
}

// Reads the random part of a Slack webhook URL after one marker: T<team>/B<bot>/<secret>. Each
// run it reads ends where the next marker's "hooks." begins at the latest, so the markers of a
// value are read in one pass.
bool slackWebhookAt(std::string_view s, size_t i) {
  if (i >= s.size() || s[i] != 'T') return false;
  size_t team = runOf(s, i + 1, isUpperOrDigit);
  i += 1 + team;
  if (team == 0 || i >= s.size() || s[i] != '/' || i + 1 >= s.size() || s[i + 1] != 'B') {
    return false;
  }
  size_t bot = runOf(s, i + 2, isUpperOrDigit);
  i += 2 + bot;
  if (bot == 0 || i >= s.size() || s[i] != '/') return false;
  size_t secret = runOf(s, i + 1, isAlnum);
  if (secret < 16) return false;
  // Slack's documentation uses T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX.
  return looksRandom(s.substr(i + 1, secret));
}

bool slackWebhook(std::string_view s) {
  const std::string_view marker = "hooks.slack.com/services/";
  for (size_t pos = findCharged(s, marker, 0); pos != std::string_view::npos;
       pos = findCharged(s, marker, pos + 1)) {
    if (reviewSpent()) return false;
    if (slackWebhookAt(s, pos + marker.size())) return true;
  }
  return false;
}

bool stripeLive(std::string_view s) {
  return providerToken(s, {"sk_live_", isAlnum, 20, kLongestBody}) ||
         providerToken(s, {"rk_live_", isAlnum, 20, kLongestBody});
}

bool googleApiKey(std::string_view s) {
  return providerToken(s, {"AIza", isB64Url, 35, 35});
}

bool anthropic(std::string_view s) {
  return providerToken(s, {"sk-ant-", isB64Url, 32, kLongestBody});
}

bool openai(std::string_view s) {
  return anyToken(s, {"sk-", isB64Url, 32, std::string_view::npos},
                  [&](size_t start, const BodyStats& b) {
                    if (s.substr(start, 4) == "ant-") return false;  // Anthropic's, reported so
                    if (start >= 4 && (s[start - 4] == '-' || s[start - 4] == '_')) {
                      return false;  // x-sk-...
                    }
                    return b.hasDigit() && b.hasLetter() && b.looksRandom();
                  });
}

bool pemPrivateKey(std::string_view s) {
  const std::string_view begin = "-----BEGIN ";
  const std::string_view dashes = "-----";
  // The label must end within 64 bytes of "-----BEGIN ": only that far is searched.
  constexpr size_t kLongestHeader = 64;
  for (size_t pos = findCharged(s, begin, 0); pos != std::string_view::npos;
       pos = findCharged(s, begin, pos + 1)) {
    if (reviewSpent()) return false;
    const std::string_view window =
        s.substr(pos + begin.size(), kLongestHeader - begin.size() + dashes.size());
    chargeReview(window.size());
    const size_t end = window.find(dashes);
    if (end == std::string_view::npos) continue;
    // RSA, EC, DSA, OPENSSH, ENCRYPTED or plain PKCS#8 keys, and PGP private key blocks.
    if (window.substr(0, end).find("PRIVATE KEY") != std::string_view::npos) return true;
  }
  return false;
}

// Standard or URL-safe base64, padded or not. nullopt when it is neither.
std::optional<std::string> decodeLenientBase64(std::string_view text) {
  chargeReview(3 * text.size());
  std::string normalized(text);
  for (char& c : normalized) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (!normalized.empty() && normalized.back() == '=') normalized.pop_back();
  if (normalized.size() % 4 == 1) return std::nullopt;
  while (normalized.size() % 4 != 0) normalized.push_back('=');
  return base64Decode(normalized);
}

bool jwt(std::string_view s) {
  // Linear: a token's header, payload and signature are base64url and dots, and the next token
  // considered must follow a character that is neither, so no byte is read for two tokens.
  for (size_t pos = findCharged(s, "eyJ", 0); pos != std::string_view::npos;
       pos = findCharged(s, "eyJ", pos + 1)) {
    if (reviewSpent()) return false;
    if (pos > 0 && (isB64Url(s[pos - 1]) || s[pos - 1] == '.')) continue;
    size_t header = runOf(s, pos, isB64Url);
    size_t i = pos + header;
    if (i >= s.size() || s[i] != '.') continue;
    size_t payload = runOf(s, i + 1, isB64Url);
    i += 1 + payload;
    if (payload < 2 || i >= s.size() || s[i] != '.') continue;
    size_t signature = runOf(s, i + 1, isB64Url);
    auto decoded = decodeLenientBase64(s.substr(pos, header));
    if (!decoded) continue;
    chargeReview(2 * decoded->size());
    Json h = Json::parse(*decoded, nullptr, false);
    if (h.is_discarded() || !h.is_object()) continue;
    auto alg = h.find("alg");
    if (alg == h.end() || !alg->is_string()) continue;
    // An unsigned token ("alg": "none") proves nothing and grants nothing by itself.
    if (alg->get<std::string>() == "none" || signature < 16) continue;
    return true;
  }
  return false;
}

bool isReferenceOrPlaceholderPassword(std::string_view password) {
  if (password.empty()) return true;
  chargeReview(8 * password.size());
  std::string l = lower(password);
  if (l.find("$(") != std::string::npos || l.find("${") != std::string::npos ||
      l.find("%24%7b") != std::string::npos || l.find("%24(") != std::string::npos ||
      l.find("{{") != std::string::npos || l.front() == '<' || l.front() == '$') {
    return true;
  }
  static const std::vector<std::string> kPlaceholders = {
      "password", "pass", "passwd",   "secret", "changeme", "redacted",    "pwd",    "****",
      "xxx",      "xxxx", "xxxxxxxx", "user",   "token",    "placeholder", "example"};
  if (std::find(kPlaceholders.begin(), kPlaceholders.end(), l) != kPlaceholders.end()) return true;
  return std::all_of(l.begin(), l.end(), [](char c) { return c == '*' || c == 'x'; });
}

// scheme://user:password@host with a literal password. Linear: an authority ends at the next
// '/' at the latest, which the next "://" begins with.
bool urlCredentials(std::string_view s) {
  for (size_t pos = findCharged(s, "://", 0); pos != std::string_view::npos;
       pos = findCharged(s, "://", pos + 1)) {
    if (reviewSpent()) return false;
    if (pos == 0 || !(isUpper(s[pos - 1]) || isLower(s[pos - 1]) || isDigit(s[pos - 1]))) continue;
    size_t start = pos + 3;
    size_t end = start;
    while (end < s.size() && s[end] != '/' && s[end] != '?' && s[end] != '#' && !isSpace(s[end])) {
      ++end;
    }
    std::string_view authority = s.substr(start, end - start);
    chargeReview(3 * authority.size() + 1);
    size_t at = authority.rfind('@');
    if (at == std::string_view::npos) continue;
    std::string_view userinfo = authority.substr(0, at);
    size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) continue;
    if (!isReferenceOrPlaceholderPassword(userinfo.substr(colon + 1))) return true;
  }
  return false;
}

// Splits DB_PASSWORD, dbPassword, APIKey into upper-case words: DB PASSWORD, DB PASSWORD, API KEY.
std::vector<std::string> nameWords(std::string_view name) {
  std::vector<std::string> words;
  std::string cur;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!isAlnum(c)) {
      if (!cur.empty()) words.push_back(cur);
      cur.clear();
      continue;
    }
    bool boundary = !cur.empty() && isUpper(c) &&
                    (isLower(name[i - 1]) ||
                     (isUpper(name[i - 1]) && i + 1 < name.size() && isLower(name[i + 1])));
    if (boundary) {
      words.push_back(cur);
      cur.clear();
    }
    cur.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  if (!cur.empty()) words.push_back(cur);
  return words;
}

bool inSet(const std::string& w, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), w) != set.end();
}

bool isNameLike(std::string_view v) {
  // lower-case words joined by - . _ (a Secret's name, a host, a label) rather than a key.
  bool hasSeparator = false;
  size_t segment = 0;
  for (char c : v) {
    if (c == '-' || c == '.' || c == '_') {
      hasSeparator = true;
      segment = 0;
      continue;
    }
    if (!isLower(c) && !isDigit(c)) return false;
    if (++segment > 12) return false;
  }
  return hasSeparator;
}

bool highEntropyValue(std::string_view raw) {
  const EntropyThresholds& t = entropyThresholds();
  chargeReview(raw.size());
  size_t b = 0, e = raw.size();
  while (b < e && isSpace(raw[b])) ++b;
  while (e > b && isSpace(raw[e - 1])) --e;
  std::string_view v = raw.substr(b, e - b);
  if (v.size() < t.minLength) return false;
  if (std::any_of(v.begin(), v.end(), [](char c) { return isSpace(c); }))
    return false;  // prose, commands, passphrases
  if (v.front() == '/' || v.substr(0, 2) == "./" || v.substr(0, 3) == "../" ||
      v.substr(0, 2) == "~/") {
    return false;  // a path to a secret, not the secret
  }
  if (v.find("://") != std::string_view::npos) return false;  // URLs: see urlCredentials
  chargeReview(4 * v.size());                                 // the passes above and below
  if (looksLikePlaceholder(v) || isNameLike(v)) return false;
  double h = shannonEntropy(v);
  bool hex = std::all_of(v.begin(), v.end(), [](char c) {
    return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
  if (hex) return v.size() >= t.minHexLength && h >= t.minHexBitsPerChar;
  int classes = (std::any_of(v.begin(), v.end(), isUpper) ? 1 : 0) +
                (std::any_of(v.begin(), v.end(), isLower) ? 1 : 0) +
                (std::any_of(v.begin(), v.end(), isDigit) ? 1 : 0) +
                (std::any_of(v.begin(), v.end(), [](char c) { return !isAlnum(c); }) ? 1 : 0);
  return classes >= 2 && h >= t.minBitsPerChar;
}

struct Detector {
  const char* id;
  const char* description;
  bool (*matches)(std::string_view);
  // Every value the detector matches contains one of these (each detector scans for them), so
  // a value without any of them is not given to it.
  std::array<std::string_view, 5> anchors;
};

constexpr Detector kFormatDetectors[] = {
    {"private-key-pem", "a PEM private key", pemPrivateKey, {"-----BEGIN "}},
    {"aws-access-key-id", "an AWS access key ID", awsAccessKeyId, {"AKIA", "ASIA"}},
    {"github-token", "a GitHub token", githubClassic, {"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}},
    {"github-fine-grained-token",
     "a GitHub fine-grained personal access token",
     githubFineGrained,
     {"github_pat_"}},
    {"gitlab-token", "a GitLab personal access token", gitlab, {"glpat-"}},
    {"slack-token", "a Slack token", slackToken, {"xoxa-", "xoxb-", "xoxp-", "xoxr-"}},
    {"slack-webhook", "a Slack incoming-webhook URL", slackWebhook, {"hooks.slack.com/services/"}},
    {"stripe-live-key",
     "a Stripe live secret or restricted key",
     stripeLive,
     {"sk_live_", "rk_live_"}},
    {"google-api-key", "a Google API key", googleApiKey, {"AIza"}},
    {"anthropic-api-key", "an Anthropic API key", anthropic, {"sk-ant-"}},
    {"openai-api-key", "an OpenAI API key", openai, {"sk-"}},
    {"jwt", "a signed JWT", jwt, {"eyJ"}},
    {"url-credentials", "a password inside a URL", urlCredentials, {"://"}},
};
constexpr size_t kDetectorCount = std::size(kFormatDetectors);
static_assert(kDetectorCount <= 32, "the anchor scan keeps one bit per detector");

// The anchors of every detector by their first byte: one pass over a value finds which
// detectors can match it, instead of each detector searching the value for its own anchors.
// Every anchor is at least two bytes long, and the pairs of bytes that begin one are kept in a
// bit table: most positions of a value are passed over on one lookup (letters such as 's', 'e'
// and 'h' begin anchors, and begin most words too).
struct AnchorIndex {
  struct Entry {
    std::string_view anchor;
    uint32_t detectorBit;
  };
  std::array<uint64_t, 65536 / 64> startsAnchor{};  // bit (b0 << 8 | b1)
  std::array<std::vector<Entry>, 256> byFirstByte;
  static size_t pair(unsigned char first, unsigned char second) {
    return (size_t{first} << 8) | second;
  }
  bool mayStart(unsigned char first, unsigned char second) const {
    const size_t p = pair(first, second);
    return (startsAnchor[p / 64] >> (p % 64) & 1) != 0;
  }
  AnchorIndex() {
    for (size_t d = 0; d < kDetectorCount; ++d) {
      for (std::string_view a : kFormatDetectors[d].anchors) {
        if (a.empty()) continue;
        if (a.size() < 2) std::abort();  // the pair table needs two bytes: a bug here
        const auto first = static_cast<unsigned char>(a[0]);
        const size_t p = pair(first, static_cast<unsigned char>(a[1]));
        startsAnchor[p / 64] |= uint64_t{1} << (p % 64);
        byFirstByte[first].push_back({a, uint32_t{1} << d});
      }
    }
  }
};

// Bit d is set when value contains an anchor of detector d.
uint32_t detectorsWithAnchors(std::string_view value) {
  static const AnchorIndex kIndex;
  chargeReview(value.size());
  uint32_t found = 0;
  for (size_t i = 0; i + 1 < value.size(); ++i) {
    const auto byte = static_cast<unsigned char>(value[i]);
    if (!kIndex.mayStart(byte, static_cast<unsigned char>(value[i + 1]))) continue;
    for (const auto& e : kIndex.byFirstByte[byte]) {
      if (value.substr(i, e.anchor.size()) == e.anchor) found |= e.detectorBit;
    }
  }
  return found;
}

// The shortest value any format detector can match is "x://:pwd@h"; provider tokens need 20
// characters. Most environment values are short words and skip every scan.
bool mayHoldAFormat(std::string_view value) {
  return value.size() >= 20 || value.find("://") != std::string_view::npos;
}

std::optional<SecretMatch> formatMatch(std::string_view value) {
  if (!mayHoldAFormat(value)) return std::nullopt;
  const uint32_t candidates = detectorsWithAnchors(value);
  if (candidates == 0) return std::nullopt;
  for (size_t d = 0; d < kDetectorCount; ++d) {
    if ((candidates & (uint32_t{1} << d)) == 0 || reviewSpent()) continue;
    const Detector& detector = kFormatDetectors[d];
    if (detector.matches(value)) return SecretMatch{detector.id, detector.description, false};
  }
  return std::nullopt;
}

bool printableText(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u >= 0x20 && u < 0x7f) || u == '\n' || u == '\r' || u == '\t';
  });
}

}  // namespace

double shannonEntropy(std::string_view text) {
  std::array<uint32_t, 256> counts{};
  for (char c : text) ++counts[static_cast<unsigned char>(c)];
  return entropyOfCounts(counts, text.size(), [&](auto&& f) {
    for (size_t b = 0; b < counts.size(); ++b) {
      if (counts[b] != 0) f(static_cast<unsigned char>(b));
    }
  });
}

const EntropyThresholds& entropyThresholds() {
  static const EntropyThresholds kThresholds;
  return kThresholds;
}

bool isSecretLikeName(std::string_view envName) {
  chargeReview(4 * envName.size());
  std::vector<std::string> words = nameWords(envName);
  int lastSecret = -1;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    bool secret =
        inSet(w, {"PASSWORD", "PASSWD", "PASSPHRASE", "PASS", "PWD", "SECRET", "SECRETS", "TOKEN",
                  "TOKENS", "CREDENTIAL", "CREDENTIALS", "CREDS", "APIKEY", "PRIVATEKEY",
                  "SECRETKEY", "ACCESSKEY", "AUTHTOKEN", "ACCESSTOKEN", "CONNECTIONSTRING"}) ||
        (w == "KEY" && i > 0 &&
         inSet(words[i - 1], {"API",     "PRIVATE", "SECRET",  "ACCESS",  "SIGNING", "ENCRYPTION",
                              "MASTER",  "ACCOUNT", "SHARED",  "SESSION", "CLIENT",  "AUTH",
                              "HMAC",    "SERVICE", "WEBHOOK", "LICENSE", "STORAGE", "ENCRYPT",
                              "DECRYPT", "CRYPTO",  "JWT",     "SSH",     "GPG",     "PGP"})) ||
        (w == "STRING" && i > 0 && words[i - 1] == "CONNECTION");
    if (secret) lastSecret = static_cast<int>(i);
  }
  if (lastSecret < 0) return false;
  // TOKEN_URL, PASSWORD_FILE, SECRET_NAME: about a secret, not the secret itself.
  for (size_t i = static_cast<size_t>(lastSecret) + 1; i < words.size(); ++i) {
    if (inSet(
            words[i],
            {"URL",      "URI",      "URLS",     "ENDPOINT", "HOST",      "HOSTNAME",   "PORT",
             "FILE",     "FILENAME", "FILES",    "PATH",     "DIR",       "DIRECTORY",  "LOCATION",
             "MOUNT",    "NAME",     "NAMES",    "REF",      "KIND",      "TYPE",       "MODE",
             "ID",       "ISSUER",   "AUDIENCE", "TTL",      "EXPIRY",    "EXPIRATION", "EXPIRES",
             "LIFETIME", "DURATION", "TIMEOUT",  "SECONDS",  "LENGTH",    "SIZE",       "MIN",
             "MAX",      "ENABLED",  "DISABLED", "ENABLE",   "REQUIRED",  "HEADER",     "FIELD",
             "PARAM",    "PREFIX",   "SUFFIX",   "FORMAT",   "ALGORITHM", "ALG",        "VERSION",
             "PROVIDER", "SOURCE",   "POLICY",   "ROTATION", "INTERVAL",  "RETRIES",    "COUNT",
             "LIMIT",    "SCOPE",    "SCOPES",   "ROLE",     "KEY",       "KEYS"})) {
      return false;
    }
  }
  return true;
}

std::optional<SecretMatch> detectLiteralSecret(std::string_view envName, std::string_view value) {
  if (reviewSpent()) return std::nullopt;
  if (auto m = formatMatch(value)) return m;
  // The value test first: it rejects most values at once, the name test allocates.
  if (!envName.empty() && highEntropyValue(value) && isSecretLikeName(envName)) {
    return SecretMatch{"high-entropy-secret",
                       "a high-entropy value under the secret-like name " + std::string(envName),
                       false};
  }
  // Decoded once: a base64-wrapped key is the key.
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  size_t b = 0, e = value.size();
  while (b < e && blank(value[b])) ++b;
  while (e > b && blank(value[e - 1])) --e;
  if (b == e) return std::nullopt;
  std::string_view trimmed = value.substr(b, e - b);
  if (trimmed.size() >= 16 && std::all_of(trimmed.begin(), trimmed.end(), [](char c) {
        return isB64Url(c) || c == '+' || c == '/' || c == '=';
      })) {
    if (auto decoded = decodeLenientBase64(trimmed); decoded && printableText(*decoded)) {
      if (auto m = formatMatch(*decoded)) {
        m->description = "base64 of " + m->description;
        m->base64Wrapped = true;
        return m;
      }
    }
  }
  return std::nullopt;
}

const std::vector<std::string>& secretDetectorIds() {
  static const std::vector<std::string> kIds = [] {
    std::vector<std::string> ids;
    for (const auto& d : kFormatDetectors) ids.emplace_back(d.id);
    ids.emplace_back("high-entropy-secret");
    return ids;
  }();
  return kIds;
}

const std::vector<std::string>& secretDetectorAnchors() {
  static const std::vector<std::string> kAnchors = [] {
    std::vector<std::string> anchors;
    for (const auto& d : kFormatDetectors) {
      for (std::string_view a : d.anchors) {
        if (!a.empty()) anchors.emplace_back(a);
      }
    }
    return anchors;
  }();
  return kAnchors;
}

}  // namespace tasklease::webhook
