// Rules between keys of different sections, and values derived from other keys (num_kv_heads,
// head_dim, micro_batch, data.tokenizer with model.path), applied once every section is read.
// Rules skip values already reported as wrong (SchemaReader::is_ok), so one mistake is one line.
#pragma once

#include "config/config.h"
#include "config/schema_reader.h"

namespace tailor::config {

void apply_cross_field_rules(SchemaReader& r, ExperimentConfig& c);

}  // namespace tailor::config
