#include "core/error.h"

namespace tailor {

void throw_internal_error(const char* expr, const char* file, int line, const std::string& msg) {
  throw InternalError(fmt::format("internal error: {} ({}:{}): check `{}` failed", msg, file, line,
                                  expr));
}

}  // namespace tailor
