#include "eval/generate.h"

#include <algorithm>
#include <optional>

#include "backend/tensor.h"
#include "core/error.h"

namespace tailor::eval {
namespace {

// Prompt tokens decoded in front of a completion (then cut off) to give its first word context.
constexpr std::size_t kContextTokens = 4;

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Length of a trailing UTF-8 sequence that has its lead byte but not all its continuation bytes.
std::size_t incomplete_utf8_tail(std::string_view s) {
  std::size_t cont = 0;
  for (std::size_t i = s.size(); i-- > 0 && cont < 4;) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) == 0x80) {
      ++cont;
      continue;
    }
    const std::size_t need = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    return need > cont ? cont + 1 : 0;
  }
  return 0;
}

// The text of one row's completion, and what of it has been handed to the sink.
class RowText {
 public:
  RowText(const data::Tokenizer* tokenizer, std::span<const std::int32_t> prompt)
      : tokenizer_(tokenizer) {
    if (tokenizer_ == nullptr) return;
    const std::size_t n = std::min(kContextTokens, prompt.size());
    context_.assign(prompt.end() - static_cast<std::ptrdiff_t>(n), prompt.end());
    context_text_ = tokenizer_->decode(context_);
  }

  [[nodiscard]] bool enabled() const noexcept { return tokenizer_ != nullptr; }
  [[nodiscard]] const std::string& text() const noexcept { return text_; }

  // Decodes `tokens` (the completion so far, no stop id) into text().
  void update(const std::vector<std::int32_t>& tokens) {
    std::vector<std::int32_t> ids = context_;
    ids.insert(ids.end(), tokens.begin(), tokens.end());
    std::string full = tokenizer_->decode(ids);
    text_ = full.starts_with(context_text_) ? full.substr(context_text_.size())
                                            : tokenizer_->decode(tokens);
  }

  // Cuts the text at the earliest stop string; true when one was found.
  bool cut_at_stop(std::span<const std::string> stops) {
    std::size_t first = std::string::npos;
    for (const std::string& s : stops) first = std::min(first, text_.find(s));
    if (first == std::string::npos) return false;
    text_.resize(first);
    return true;
  }

  // The newly settled text (all of it when `final`), marked as handed out.
  std::string_view take_settled(std::span<const std::string> stops, bool final) {
    const std::size_t upto = final ? text_.size() : settled_length(text_, stops);
    if (upto <= emitted_) return {};
    const std::string_view piece = std::string_view(text_).substr(emitted_, upto - emitted_);
    emitted_ = upto;
    return piece;
  }

 private:
  const data::Tokenizer* tokenizer_;
  std::vector<std::int32_t> context_;
  std::string context_text_;
  std::string text_;
  std::size_t emitted_ = 0;
};

// The row's logits over the real vocabulary, as f64.
std::vector<double> row_logits(const backend::Tensor& logits, std::int64_t row,
                               std::int64_t vocab) {
  std::vector<double> out(static_cast<std::size_t>(vocab));
  const std::int64_t stride = logits.cols();
  if (logits.dtype == DType::kF64) {
    const double* p = logits.ptr<double>() + row * stride;
    std::copy(p, p + vocab, out.begin());
  } else {
    const float* p = logits.ptr<float>() + row * stride;
    std::copy(p, p + vocab, out.begin());
  }
  return out;
}

// Right-padded ids [B * T] of the prompts, T the longest; padding is token 0.
std::vector<std::int32_t> padded_prompts(std::span<const std::vector<std::int32_t>> prompts,
                                         std::int64_t t) {
  std::vector<std::int32_t> ids(prompts.size() * static_cast<std::size_t>(t), 0);
  for (std::size_t r = 0; r < prompts.size(); ++r)
    std::copy(prompts[r].begin(), prompts[r].end(),
              ids.begin() + static_cast<std::ptrdiff_t>(r) * t);
  return ids;
}

// One row of the batch while it generates.
struct Row {
  Completion out;
  RowText text;
  std::int64_t limit = 0;  // most tokens it may generate
  bool done = false;
};

// Adds `token` to `row`: stop checks, text, and the settled piece for the sink.
void add_token(Row& row, std::int32_t token, const GenerateOptions& o, bool want_text,
               const TextSink& sink, std::size_t index) {
  Completion& c = row.out;
  c.tokens.push_back(token);
  if (std::find(o.stop_ids.begin(), o.stop_ids.end(), token) != o.stop_ids.end()) {
    c.finish = FinishReason::kStopToken;
    row.done = true;
  } else if (want_text) {
    row.text.update(c.tokens);
    if (row.text.cut_at_stop(o.stop_strings)) {
      c.finish = FinishReason::kStopString;
      row.done = true;
    }
  }
  if (!row.done && static_cast<std::int64_t>(c.tokens.size()) >= row.limit) {
    c.finish = FinishReason::kLength;
    row.done = true;
  }
  if (sink && want_text) {
    const std::string_view piece = row.text.take_settled(o.stop_strings, row.done);
    if (!piece.empty()) sink(index, piece);
  }
}

// The rows of a batch (counts: each prompt's length), prompts checked.
std::vector<Row> start_rows(std::span<const std::vector<std::int32_t>> prompts,
                            const data::Tokenizer* tokenizer, const GenerateOptions& o,
                            std::vector<std::int64_t>& counts) {
  std::vector<Row> rows;
  for (std::size_t r = 0; r < prompts.size(); ++r) {
    const auto len = static_cast<std::int64_t>(prompts[r].size());
    TAILOR_ASSERT(len >= 1 && (o.max_length == 0 || len < o.max_length),
                  "prompt {} has {} tokens (max_length {})", r, len, o.max_length);
    counts.push_back(len);
    const std::int64_t room = o.max_length > 0 ? o.max_length - len : o.max_new_tokens;
    rows.push_back(
        {Completion{}, RowText(tokenizer, prompts[r]), std::min(o.max_new_tokens, room), false});
  }
  return rows;
}

// The completions; with `decode`, their text is decoded now (it was not needed while generating).
std::vector<Completion> finish(std::vector<Row>& rows, bool decode) {
  std::vector<Completion> out;
  out.reserve(rows.size());
  for (Row& row : rows) {
    if (decode) {
      std::vector<std::int32_t> toks = row.out.tokens;
      if (row.out.finish == FinishReason::kStopToken) toks.pop_back();
      row.text.update(toks);
    }
    row.out.text = row.text.text();
    out.push_back(std::move(row.out));
  }
  return out;
}

}  // namespace

std::string_view finish_reason_name(FinishReason reason) noexcept {
  switch (reason) {
    case FinishReason::kStopToken:
      return "stop_token";
    case FinishReason::kStopString:
      return "stop_string";
    case FinishReason::kLength:
      break;
  }
  return "length";
}

std::size_t settled_length(std::string_view text, std::span<const std::string> stop_strings) {
  std::size_t n = text.size() - incomplete_utf8_tail(text);
  while (n >= kReplacementChar.size() && text.substr(0, n).ends_with(kReplacementChar))
    n -= kReplacementChar.size();
  // Hold back the longest tail that a stop string starts with.
  std::size_t hold = 0;
  for (const std::string& s : stop_strings)
    for (std::size_t k = std::min(s.size() - 1, n); k > hold; --k)
      if (text.substr(n - k, k) == std::string_view(s).substr(0, k)) {
        hold = k;
        break;
      }
  return n - hold;
}

std::vector<Completion> generate(model::Transformer& model, const data::Tokenizer* tokenizer,
                                 std::span<const std::vector<std::int32_t>> prompts,
                                 const GenerateOptions& o, const TextSink& sink,
                                 std::uint64_t first_stream) {
  TAILOR_ASSERT(sampling_problem(o.sampling).empty(), "{}", sampling_problem(o.sampling));
  TAILOR_ASSERT(tokenizer != nullptr || o.stop_strings.empty(), "stop strings need a tokenizer");
  TAILOR_ASSERT(o.max_new_tokens >= 1, "max_new_tokens {} < 1", o.max_new_tokens);
  for (const std::string& s : o.stop_strings) TAILOR_ASSERT(!s.empty(), "empty stop string");
  if (prompts.empty()) return {};
  const auto b = static_cast<std::int64_t>(prompts.size());
  // Prompt tuning: the virtual tokens open every row (positions 0..n-1, as in training), so the
  // prompt and its completion have n positions fewer.
  const std::int64_t nv = model.virtual_tokens();
  GenerateOptions row_limits = o;
  if (nv > 0 && row_limits.max_length > 0) row_limits.max_length -= nv;
  std::vector<std::int64_t> counts;  // real tokens per row in the next extend()
  std::vector<Row> rows = start_rows(prompts, tokenizer, row_limits, counts);
  const std::int64_t t = *std::max_element(counts.begin(), counts.end());
  const bool want_text = tokenizer != nullptr && (sink || !o.stop_strings.empty());

  // The cache holds the longest row there can be: its prompt and the tokens it may still add
  // (bounded by the model's positions, not by a --max-new-tokens far beyond them).
  std::int64_t longest = 0;
  for (std::size_t r = 0; r < rows.size(); ++r) longest = std::max(longest, counts[r] + rows[r].limit);
  model::KvCache cache = model.make_kv_cache(b, nv + std::max(t, longest));
  if (nv > 0) {
    std::vector<std::int32_t> virt(static_cast<std::size_t>(b * nv));
    for (std::int64_t i = 0; i < b * nv; ++i)
      virt[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(-1 - i % nv);
    const std::vector<std::int64_t> all(static_cast<std::size_t>(b), nv);
    (void)model.extend(cache, backend::Tensor{virt.data(), DType::kI32, Shape{b * nv}}, all);
  }
  std::vector<std::int32_t> ids = padded_prompts(prompts, t);
  backend::Tensor logits =
      model.extend(cache, backend::Tensor{ids.data(), DType::kI32, Shape{b * t}}, counts);
  const std::int64_t vocab = model.spec().vocab_size;
  for (std::int64_t step = 0;; ++step) {
    bool any = false;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      Row& row = rows[r];
      if (!row.done) {
        const double u = o.sampling.greedy() ? 0.0
                                             : sampling_uniform(o.sampling.seed, first_stream + r,
                                                                static_cast<std::uint64_t>(step));
        const std::int32_t token =
            choose_token(row_logits(logits, static_cast<std::int64_t>(r), vocab), o.sampling, u);
        add_token(row, token, o, want_text, sink, r);
        ids[r] = token;
      }
      // A finished row is idle: a padding token that adds nothing to its cache row.
      if (row.done) ids[r] = 0;
      counts[r] = row.done ? 0 : 1;
      any = any || !row.done;
    }
    if (!any) break;
    logits = model.extend(cache, backend::Tensor{ids.data(), DType::kI32, Shape{b}}, counts);
  }
  return finish(rows, tokenizer != nullptr && !want_text);
}

}  // namespace tailor::eval
