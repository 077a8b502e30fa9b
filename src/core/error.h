// Error types and check macros.
//
// Two kinds of failure, kept apart as c10 does:
//  - UserError: bad input (config, data, checkpoint, CLI). Carries where the problem is
//    ("file:line:col: key.path" or "path") and why. The CLI prints `where: reason` on one line and
//    exits 2. Thrown through TAILOR_CHECK_USER / throw_user_error.
//  - InternalError: a broken invariant (a bug in Tailor). Exit 1. Thrown by TAILOR_ASSERT.
// Runtime failures of the environment (I/O, out of memory) are RuntimeError, exit 1.
// Nothing in src/ calls exit() or abort() on bad input.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace tailor {

// Process exit codes (ARCHITECTURE.md, Contracts).
enum class ExitCode : int { kOk = 0, kRuntime = 1, kUserError = 2, kStopRequested = 3 };

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  [[nodiscard]] virtual ExitCode exit_code() const noexcept { return ExitCode::kRuntime; }
};

// Bad input. `where()` is the place ("cfg.yaml:3:5: train.steps", "data.txt:17", "ckpt/x.h5");
// `reason()` the explanation. what() is "where: reason" (or just reason when where is empty).
class UserError : public Error {
 public:
  UserError(std::string where, std::string reason)
      : Error(where.empty() ? reason : where + ": " + reason),
        where_(std::move(where)),
        reason_(std::move(reason)) {}
  [[nodiscard]] const std::string& where() const noexcept { return where_; }
  [[nodiscard]] const std::string& reason() const noexcept { return reason_; }
  [[nodiscard]] ExitCode exit_code() const noexcept override { return ExitCode::kUserError; }

 private:
  std::string where_;
  std::string reason_;
};

// Several problems found in one input (a config, a data file, the checks before training), each a
// complete one-line message `where: reason`. what() joins them with newlines; exit code 2.
class UserErrors : public UserError {
 public:
  explicit UserErrors(std::vector<std::string> problems);
  [[nodiscard]] const std::vector<std::string>& problems() const noexcept { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// A failure of the environment (file system, memory, a library call).
class RuntimeError : public Error {
 public:
  using Error::Error;
};

// A broken invariant: a bug in Tailor, never the user's fault.
class InternalError : public Error {
 public:
  using Error::Error;
};

[[noreturn]] void throw_internal_error(const char* expr, const char* file, int line,
                                       const std::string& msg);

template <typename... Args>
[[noreturn]] void throw_user_error(std::string where, fmt::format_string<Args...> f,
                                   Args&&... args) {
  throw UserError(std::move(where), fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void throw_runtime_error(fmt::format_string<Args...> f, Args&&... args) {
  throw RuntimeError(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace tailor

// Invariant check: failure is a bug. Message arguments are fmt-style.
#define TAILOR_ASSERT(cond, ...)                                                         \
  do {                                                                                   \
    if (!(cond)) [[unlikely]] {                                                          \
      ::tailor::throw_internal_error(#cond, __FILE__, __LINE__, ::fmt::format(__VA_ARGS__)); \
    }                                                                                    \
  } while (0)

// User-input check: `where` names the place, the rest is the reason (fmt-style).
#define TAILOR_CHECK_USER(cond, where, ...)                   \
  do {                                                        \
    if (!(cond)) [[unlikely]] {                               \
      ::tailor::throw_user_error((where), __VA_ARGS__);       \
    }                                                         \
  } while (0)
