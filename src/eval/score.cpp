#include "eval/score.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace tailor::eval {
namespace {

struct Encoded {
  std::vector<std::int32_t> ids;
  std::int64_t first_scored = 1;  // index of the first token whose prediction counts
};

std::string field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw_user_error(where, "missing field \"{}\"", key);
  if (!j[key].is_string()) throw_user_error(where, "field \"{}\" must be a string", key);
  return j[key].get<std::string>();
}

Encoded encode_record(const nlohmann::json& j, const data::Tokenizer& tok, const std::string& where) {
  if (!j.is_object()) throw_user_error(where, "expected a JSON object");
  Encoded e;
  const auto bos = tok.bos_token_id();
  const auto eos = tok.eos_token_id();
  if (bos) e.ids.push_back(*bos);
  if (j.contains("text")) {
    const auto t = tok.encode(field(j, "text", where));
    e.ids.insert(e.ids.end(), t.begin(), t.end());
  } else if (j.contains("prompt") || j.contains("completion")) {
    const auto p = tok.encode(field(j, "prompt", where));
    const auto c = tok.encode(field(j, "completion", where));
    if (c.empty()) throw_user_error(where, "field \"completion\" is empty");
    e.ids.insert(e.ids.end(), p.begin(), p.end());
    e.first_scored = static_cast<std::int64_t>(e.ids.size());
    e.ids.insert(e.ids.end(), c.begin(), c.end());
  } else {
    throw_user_error(where, "expected a \"text\" field or \"prompt\" and \"completion\" fields");
  }
  if (eos) e.ids.push_back(*eos);
  if (e.ids.size() < 2) throw_user_error(where, "nothing to score (the text is empty)");
  e.first_scored = std::max<std::int64_t>(1, e.first_scored);
  return e;
}

}  // namespace

ScoreResult score_jsonl(model::Transformer& model, const data::Tokenizer& tokenizer,
                        const std::string& path) {
  std::ifstream in(path);
  if (!in) throw_user_error(path, "cannot read: {}", std::strerror(errno));
  const model::ModelSpec& spec = model.spec();
  ScoreResult r;
  double total = 0.0;
  std::string line;
  std::int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string where = path + ":" + std::to_string(line_no);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw_user_error(where, "not valid JSON");
    const Encoded e = encode_record(j, tokenizer, where);
    // Prompt tuning: the virtual tokens open the row (positions 0..nv-1), as in training.
    const std::int64_t nv = model.virtual_tokens();
    const auto n = nv + static_cast<std::int64_t>(e.ids.size()) - 1;  // inputs/targets per row
    if (n > spec.max_position_embeddings)
      throw_user_error(where, "the record has {} tokens{}, more than the model's {} positions",
                       n + 1 - nv, nv > 0 ? fmt::format(" (+ {} virtual)", nv) : "",
                       spec.max_position_embeddings);
    for (std::int32_t id : e.ids)
      if (id < 0 || id >= spec.vocab_size)
        throw_user_error(where, "token id {} is outside the model's vocabulary ({})", id, spec.vocab_size);
    backend::Buffer ids(DType::kI32, Shape{n}), targets(DType::kI32, Shape{n}),
        positions(DType::kI32, Shape{n});
    std::int64_t scored = 0;
    for (std::int64_t t = 0; t < n; ++t) {
      positions.ptr<std::int32_t>()[t] = static_cast<std::int32_t>(t);
      if (t < nv) {  // virtual token t; the record's own first token is never scored
        ids.ptr<std::int32_t>()[t] = static_cast<std::int32_t>(-1 - t);
        targets.ptr<std::int32_t>()[t] = backend::kIgnoreIndex;
        continue;
      }
      const std::int64_t i = t - nv;  // index into the record's tokens
      ids.ptr<std::int32_t>()[t] = e.ids[static_cast<std::size_t>(i)];
      const bool counts = i + 1 >= e.first_scored;
      targets.ptr<std::int32_t>()[t] =
          counts ? e.ids[static_cast<std::size_t>(i + 1)] : backend::kIgnoreIndex;
      scored += counts;
    }
    const model::Batch b{1, n, ids.tensor(), targets.tensor(), positions.tensor(), backend::Tensor{}};
    total += model.forward(b);
    r.tokens += scored;
    ++r.records;
  }
  if (r.tokens == 0) throw_user_error(path, "no records to score");
  r.nll = total / static_cast<double>(r.tokens);
  r.ppl = std::exp(r.nll);
  return r;
}

}  // namespace tailor::eval
