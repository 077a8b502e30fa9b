// What the preference tests share: TRL's fixture (tests/golden/make_preference_fixtures.py) and
// its pairs as a Tailor micro-batch (rows 2i chosen, 2i + 1 rejected, as packing lays them out).
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_test_util.h"

namespace tailor::objective::testing {

inline std::string preference_fixture(const std::string& name) {
  return std::string(TAILOR_SOURCE_DIR) + "/tests/golden/" + name;
}

inline nlohmann::json read_preference_expected() {
  std::ifstream f(preference_fixture("preference/expected.json"));
  return nlohmann::json::parse(f);
}

// The fixture's pairs: row 2i is prompt + chosen, row 2i + 1 prompt + rejected, padded to the
// longest row (pad id 0, a document of its own, no loss); targets only on the answer tokens.
inline model::testing::HostBatch pair_batch(const nlohmann::json& pairs) {
  std::vector<std::vector<std::int32_t>> rows;
  std::vector<std::size_t> answer_from;
  for (const auto& p : pairs) {
    const auto prompt = p["prompt"].get<std::vector<std::int32_t>>();
    for (const char* side : {"chosen", "rejected"}) {
      std::vector<std::int32_t> r = prompt;
      const auto answer = p[side].get<std::vector<std::int32_t>>();
      r.insert(r.end(), answer.begin(), answer.end());
      rows.push_back(r);
      answer_from.push_back(prompt.size());
    }
  }
  std::size_t t = 0;
  for (const auto& r : rows) t = std::max(t, r.size());
  std::vector<std::int32_t> ids, targets, pos, docs;
  for (std::size_t k = 0; k < rows.size(); ++k) {
    for (std::size_t i = 0; i < t; ++i) {
      const bool real = i < rows[k].size();
      ids.push_back(real ? rows[k][i] : 0);
      const bool trained = i + 1 < rows[k].size() && i + 1 >= answer_from[k];
      targets.push_back(trained ? rows[k][i + 1] : -100);
      pos.push_back(static_cast<std::int32_t>(real ? i : i - rows[k].size()));
      docs.push_back(real ? 0 : 1);
    }
  }
  return model::testing::HostBatch(static_cast<std::int64_t>(rows.size()),
                                   static_cast<std::int64_t>(t), ids, targets, pos, docs);
}

}  // namespace tailor::objective::testing
