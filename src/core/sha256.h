// SHA-256 (OpenSSL libcrypto): cache keys, checkpoint manifests, file identities.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tailor {

// Incremental digest.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t n);
  // The digest as 64 lowercase hex digits; the object is finished afterwards.
  [[nodiscard]] std::string hex();

 private:
  void* ctx_;
};

// SHA-256 (hex) of bytes.
[[nodiscard]] std::string sha256_hex(std::string_view bytes);
// SHA-256 (hex) of a file's contents; UserError "path: cannot read" when unreadable.
[[nodiscard]] std::string sha256_file(const std::string& path);

}  // namespace tailor
