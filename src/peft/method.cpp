#include "peft/method.h"

#include "core/error.h"

namespace tailor::peft {

void Method::load_adapter(const std::string& dir, model::Transformer& model,
                          backend::Ops& ops) const {
  (void)model, (void)ops;
  throw_user_error(dir, "{} has no adapter format Tailor loads", display_name());
}

void Method::save_peft(const std::string& dir, const ExportContext& ctx) const {
  (void)dir, (void)ctx;
  TAILOR_ASSERT(false, "{} has no PEFT format (its registry row says so)", display_name());
}

}  // namespace tailor::peft
