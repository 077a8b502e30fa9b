#include "core/error.h"

namespace tailor {
namespace {

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) {
    if (!out.empty()) out += '\n';
    out += line;
  }
  return out;
}

}  // namespace

UserErrors::UserErrors(std::vector<std::string> problems)
    : UserError("", join_lines(problems)), problems_(std::move(problems)) {}

void throw_internal_error(const char* expr, const char* file, int line, const std::string& msg) {
  throw InternalError(fmt::format("internal error: {} ({}:{}): check `{}` failed", msg, file, line,
                                  expr));
}

}  // namespace tailor
