#include "webhook/secret_detectors.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>

#include "common/base64.h"
#include "common/json.h"

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

// Length of the run of characters satisfying pred starting at pos.
size_t runOf(std::string_view s, size_t pos, const std::function<bool(char)>& pred) {
  size_t i = pos;
  while (i < s.size() && pred(s[i])) ++i;
  return i - pos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool containsAny(std::string_view haystack, std::initializer_list<std::string_view> needles) {
  return std::any_of(needles.begin(), needles.end(), [&](std::string_view n) {
    return haystack.find(n) != std::string_view::npos;
  });
}

// Documentation placeholders and template markers. A real key has none of these.
bool looksLikePlaceholder(std::string_view s) {
  std::string l = lower(s);
  return containsAny(
      l, {"example", "xxxxxxxx", "********", "placeholder", "changeme", "change-me", "change_me",
          "redacted", "dummy", "your-", "your_", "<", ">", "${", "$(", "{{"});
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
  return !looksLikePlaceholder(body) && distinctChars(body) >= 8 && shannonEntropy(body) >= 3.0;
}

// Each occurrence of prefix in s that starts a token (no letter or digit right before it).
template <typename F>
bool forEachPrefix(std::string_view s, std::string_view prefix, F&& f) {
  for (size_t pos = s.find(prefix); pos != std::string_view::npos; pos = s.find(prefix, pos + 1)) {
    if (pos > 0 && isAlnum(s[pos - 1])) continue;
    if (f(pos + prefix.size())) return true;
  }
  return false;
}

// prefix + a run of `pred` of at least minLen (and at most maxLen) characters that ends at a
// token boundary and looks random.
bool prefixedToken(std::string_view s, std::string_view prefix,
                   const std::function<bool(char)>& pred, size_t minLen, size_t maxLen = 4096) {
  return forEachPrefix(s, prefix, [&](size_t start) {
    size_t n = runOf(s, start, pred);
    return n >= minLen && n <= maxLen && looksRandom(s.substr(start, n));
  });
}

bool awsAccessKeyId(std::string_view s) {
  for (std::string_view prefix : {"AKIA", "ASIA"}) {
    bool hit = forEachPrefix(s, prefix, [&](size_t start) {
      size_t n = runOf(s, start, isUpperOrDigit);
      if (n != 16) return false;
      std::string_view body = s.substr(start, n);
      // AWS's documentation keys (AKIAIOSFODNN7EXAMPLE) end in EXAMPLE.
      return body.substr(9) != "EXAMPLE" && distinctChars(body) >= 6;
    });
    if (hit) return true;
  }
  return false;
}

bool githubClassic(std::string_view s) {
  for (std::string_view prefix : {"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}) {
    if (prefixedToken(s, prefix, isAlnum, 36, 251)) return true;
  }
  return false;
}

bool githubFineGrained(std::string_view s) {
  return prefixedToken(s, "github_pat_", isAlnumOrUnderscore, 50, 251);
}

bool gitlab(std::string_view s) {
  return prefixedToken(s, "glpat-", isB64Url, 20);
}

bool slackToken(std::string_view s) {
  for (std::string_view prefix : {"xoxa-", "xoxb-", "xoxp-", "xoxr-"}) {
    bool hit = forEachPrefix(s, prefix, [&](size_t start) {
      size_t n = runOf(s, start, [](char c) { return isAlnum(c) || c == '-'; });
      std::string_view body = s.substr(start, n);
      // Slack tokens carry numeric team and user ids: "xoxb-your-bot-token" has none.
      return n >= 20 && std::any_of(body.begin(), body.end(), isDigit) && looksRandom(body);
    });
    if (hit) return true;
  }
  return false;
}

bool slackWebhook(std::string_view s) {
  const std::string_view marker = "hooks.slack.com/services/";
  for (size_t pos = s.find(marker); pos != std::string_view::npos; pos = s.find(marker, pos + 1)) {
    size_t i = pos + marker.size();
    // T<team>/B<bot>/<secret>
    if (i >= s.size() || s[i] != 'T') continue;
    size_t team = runOf(s, i + 1, isUpperOrDigit);
    i += 1 + team;
    if (team == 0 || i >= s.size() || s[i] != '/' || i + 1 >= s.size() || s[i + 1] != 'B') continue;
    size_t bot = runOf(s, i + 2, isUpperOrDigit);
    i += 2 + bot;
    if (bot == 0 || i >= s.size() || s[i] != '/') continue;
    size_t secret = runOf(s, i + 1, isAlnum);
    // Slack's documentation uses T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX.
    if (secret >= 16 && looksRandom(s.substr(i + 1, secret))) return true;
  }
  return false;
}

bool stripeLive(std::string_view s) {
  return prefixedToken(s, "sk_live_", isAlnum, 20) || prefixedToken(s, "rk_live_", isAlnum, 20);
}

bool googleApiKey(std::string_view s) {
  return forEachPrefix(s, "AIza", [&](size_t start) {
    size_t n = runOf(s, start, isB64Url);
    return n == 35 && looksRandom(s.substr(start, n));
  });
}

bool anthropic(std::string_view s) {
  return prefixedToken(s, "sk-ant-", isB64Url, 32);
}

bool openai(std::string_view s) {
  return forEachPrefix(s, "sk-", [&](size_t start) {
    if (s.substr(start, 4) == "ant-") return false;  // Anthropic's, reported as such
    if (start >= 4 && (s[start - 4] == '-' || s[start - 4] == '_')) return false;  // x-sk-...
    size_t n = runOf(s, start, isB64Url);
    std::string_view body = s.substr(start, n);
    return n >= 32 && std::any_of(body.begin(), body.end(), isDigit) &&
           std::any_of(body.begin(), body.end(), [](char c) { return isUpper(c) || isLower(c); }) &&
           looksRandom(body);
  });
}

bool pemPrivateKey(std::string_view s) {
  const std::string_view begin = "-----BEGIN ";
  for (size_t pos = s.find(begin); pos != std::string_view::npos; pos = s.find(begin, pos + 1)) {
    size_t end = s.find("-----", pos + begin.size());
    if (end == std::string_view::npos || end - pos > 64) continue;
    std::string_view label = s.substr(pos + begin.size(), end - pos - begin.size());
    // RSA, EC, DSA, OPENSSH, ENCRYPTED or plain PKCS#8 keys, and PGP private key blocks.
    if (label.find("PRIVATE KEY") != std::string_view::npos) return true;
  }
  return false;
}

// Standard or URL-safe base64, padded or not. nullopt when it is neither.
std::optional<std::string> decodeLenientBase64(std::string_view text) {
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
  for (size_t pos = s.find("eyJ"); pos != std::string_view::npos; pos = s.find("eyJ", pos + 1)) {
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

// scheme://user:password@host with a literal password.
bool urlCredentials(std::string_view s) {
  for (size_t pos = s.find("://"); pos != std::string_view::npos; pos = s.find("://", pos + 1)) {
    if (pos == 0 || !(isUpper(s[pos - 1]) || isLower(s[pos - 1]) || isDigit(s[pos - 1]))) continue;
    size_t start = pos + 3;
    size_t end = start;
    while (end < s.size() && s[end] != '/' && s[end] != '?' && s[end] != '#' && !isSpace(s[end])) {
      ++end;
    }
    std::string_view authority = s.substr(start, end - start);
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
    if ((candidates & (uint32_t{1} << d)) == 0) continue;
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
  if (text.empty()) return 0;
  std::array<size_t, 256> counts{};
  for (char c : text) ++counts[static_cast<unsigned char>(c)];
  double h = 0;
  const auto n = static_cast<double>(text.size());
  for (size_t c : counts) {
    if (c == 0) continue;
    double p = static_cast<double>(c) / n;
    h -= p * std::log2(p);
  }
  return h;
}

const EntropyThresholds& entropyThresholds() {
  static const EntropyThresholds kThresholds;
  return kThresholds;
}

bool isSecretLikeName(std::string_view envName) {
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

}  // namespace tasklease::webhook
