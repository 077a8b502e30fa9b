#include "core/sha256.h"

#include <openssl/evp.h>

#include <fstream>
#include <vector>

#include "core/error.h"

namespace tailor {
namespace {

EVP_MD_CTX* ctx(void* p) { return static_cast<EVP_MD_CTX*>(p); }

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx(ctx_), EVP_sha256(), nullptr) != 1)
    throw_runtime_error("OpenSSL: cannot start a SHA-256 digest");
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx(ctx_)); }

void Sha256::update(const void* data, std::size_t n) {
  if (EVP_DigestUpdate(ctx(ctx_), data, n) != 1) throw_runtime_error("OpenSSL: SHA-256 update failed");
}

std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (EVP_DigestFinal_ex(ctx(ctx_), md, &n) != 1) throw_runtime_error("OpenSSL: SHA-256 failed");
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += kDigits[md[i] >> 4];
    s += kDigits[md[i] & 15];
  }
  return s;
}

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.hex();
}

std::string sha256_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_user_error(path, "cannot read");
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<std::size_t>(f.gcount()));
  }
  if (f.bad()) throw_user_error(path, "read error");
  return h.hex();
}

}  // namespace tailor
