// Internal to src/eval: the checked, per-sentence view of a metric's input that every corpus metric
// starts from (metrics.h describes the public shapes).
#pragma once

#include <span>
#include <string>
#include <vector>

namespace tailor::eval::detail {

struct Corpus {
  std::vector<std::string> hyps;               // [N], valid UTF-8
  std::vector<std::vector<std::string>> refs;  // [N][R]: the references of each hypothesis
  std::size_t num_refs = 0;                    // R
};

// Throws UserError when there is no reference stream or a stream's length differs from the
// hypotheses'; replaces invalid UTF-8 by U+FFFD (py::valid_utf8).
[[nodiscard]] Corpus make_corpus(std::span<const std::string> hyps,
                                 std::span<const std::vector<std::string>> refs);

}  // namespace tailor::eval::detail
