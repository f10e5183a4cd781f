#pragma once
// The kubelet's `$(VAR)` expansion of a container's env values, command and args, so that TL004
// judges what the container will see: a token split over two variables and joined
// (`$(A)$(B)`), or padded with an empty one, is a token again once expanded (docs/rules.md,
// "Expansion").
//
//   ExpansionBudget budget;                    // one per pod
//   ContainerEnvironment env(budget);          // one per container
//   env.declare("A", "ghp_8f3K");              // env[] in order; valueFrom: declareUnknown
//   std::optional<std::string_view> v = env.expand("$(A)$(B)");   // nullopt: over budget
//
// The rules are the kubelet's (k8s.io/kubernetes third_party/forked/golang/expansion, applied by
// makeEnvironmentVariables and ExpandContainerCommandAndArgs): `$(NAME)` becomes NAME's value
// when NAME is defined and stays as written when it is not; `$$` is one `$`; a `$` before any
// other byte, an unclosed `$(` and a final `$` are kept. An env value sees the variables
// declared before it (a later declaration of a name replaces the earlier one); command and args
// see them all. What the webhook cannot know (valueFrom, envFrom, the service link variables)
// counts as undefined, so references to it stay as written.
//
// Cost: each expansion is linear in its input and output (an unclosed `$(` is searched for its
// `)` once, not once per `$(`); lookups are by ordered map (no hash to collide). The output of
// every expansion of one pod together is bounded by its ExpansionBudget, so nested references
// (B = $(A)$(A), C = $(B)$(B), ...) cannot grow it past the budget.

#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "webhook/json_view.h"

namespace tasklease::webhook {

// The most expanded text tasklease judges for one pod, all containers together. Linux refuses to
// start a process whose argument and environment strings exceed 2 MiB together (ARG_MAX with the
// usual 8 MiB stack), or a single string over 128 KiB (MAX_ARG_STRLEN), so a working pod stays
// well below it.
inline constexpr size_t kMaxExpandedBytesPerPod = size_t{1} << 20;

class ExpansionBudget {
 public:
  explicit ExpansionBudget(size_t bytes = kMaxExpandedBytesPerPod) : left_(bytes) {}
  // Takes n bytes; false (and exhausted from then on) when fewer are left.
  bool take(size_t n);
  bool exhausted() const { return exhausted_; }

 private:
  size_t left_;
  bool exhausted_ = false;
};

class ContainerEnvironment {
 public:
  explicit ContainerEnvironment(ExpansionBudget& budget) : budget_(budget) {}
  ContainerEnvironment(const ContainerEnvironment&) = delete;
  ContainerEnvironment& operator=(const ContainerEnvironment&) = delete;

  // An env[] entry with a literal value, as the kubelet takes it: expanded against the variables
  // declared so far, then declared. Returns the value as the container sees it (a view of `value`
  // itself when it holds no `$`), or nullopt when the budget ran out (the variable is then
  // unknown). Both views must outlive this object.
  std::optional<std::string_view> declare(std::string_view name, std::string_view value);
  // An env[] entry whose value comes from valueFrom: unknown here.
  void declareUnknown(std::string_view name);
  // A command or args element expanded against every variable declared; nullopt when the budget
  // ran out.
  std::optional<std::string_view> expand(std::string_view text);

 private:
  std::optional<std::string_view> expandNow(std::string_view text);
  const std::string_view* lookup(std::string_view name);

  ExpansionBudget& budget_;
  // Declarations in order; the map is brought up to date only when a value needs it, so a
  // container without `$` anywhere costs one vector.
  std::vector<std::pair<std::string_view, std::optional<std::string_view>>> declared_;
  size_t mapped_ = 0;  // how many of declared_ are in values_
  std::map<std::string_view, std::optional<std::string_view>, std::less<>> values_;
  std::deque<std::string> expanded_;  // owns the expanded values (stable addresses)
};

// Appends input, expanded with lookup (nullptr: undefined), to *out; takes what it appends from
// budget and stops (false) when that runs out.
bool expandVariables(std::string_view input,
                     FunctionRef<const std::string_view*(std::string_view)> lookup,
                     ExpansionBudget& budget, std::string* out);

}  // namespace tasklease::webhook
