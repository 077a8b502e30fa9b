// TensorBoard event-file writer and reader: hand-encoded protobuf Events in TFRecord frames
// (see tensorboard.h for the format).
#include "trainer/tensorboard.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "core/error.h"

namespace tailor::trainer {
namespace {

constexpr std::uint32_t kCastagnoliReflected = 0x82F63B78u;
constexpr std::uint32_t kMaskDelta = 0xa282ead8u;
constexpr const char* kFileVersion = "brain.Event:2";
constexpr const char* kFilePrefix = "events.out.tfevents.";

// Protobuf wire types.
constexpr std::uint32_t kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5;

std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) != 0 ? (c >> 1) ^ kCastagnoliReflected : c >> 1;
    table[i] = c;
  }
  return table;
}

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_key(std::string& out, std::uint32_t field, std::uint32_t wire_type) {
  put_varint(out, (static_cast<std::uint64_t>(field) << 3) | wire_type);
}

template <typename U>
void put_le(std::string& out, U v) {
  for (std::size_t i = 0; i < sizeof(U); ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_bytes(std::string& out, std::uint32_t field, std::string_view bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

void put_double(std::string& out, std::uint32_t field, double v) {
  put_key(out, field, kFixed64);
  put_le(out, std::bit_cast<std::uint64_t>(v));
}

// Event.wall_time and, when non-zero (proto3 leaves defaults out), Event.step.
std::string event_head(double wall_time, std::int64_t step) {
  std::string e;
  put_double(e, 1, wall_time);
  if (step != 0) {
    put_key(e, 2, kVarint);
    put_varint(e, static_cast<std::uint64_t>(step));  // negative int64: ten-byte two's complement
  }
  return e;
}

std::string hostname() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string h(buf.data());
  std::replace(h.begin(), h.end(), '/', '_');
  return h;
}

// Decoding: a cursor over one message; `where` names the file for errors.
class Cursor {
 public:
  Cursor(std::string_view data, const std::string& where) : data_(data), where_(where) {}
  [[nodiscard]] bool done() const { return pos_ >= data_.size(); }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      need(1);
      const auto b = static_cast<unsigned char>(data_[pos_++]);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    throw_user_error(where_, "malformed varint in an event");
  }
  template <typename U>
  U fixed() {
    need(sizeof(U));
    U v = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i)
      v |= static_cast<U>(static_cast<unsigned char>(data_[pos_ + i])) << (8 * i);
    pos_ += sizeof(U);
    return v;
  }
  std::string_view bytes() {
    const std::uint64_t n = varint();
    need(n);
    const std::string_view s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  void skip(std::uint32_t wire_type) {
    switch (wire_type) {
      case kVarint:
        (void)varint();
        return;
      case kFixed64:
        (void)fixed<std::uint64_t>();
        return;
      case kLengthDelimited:
        (void)bytes();
        return;
      case kFixed32:
        (void)fixed<std::uint32_t>();
        return;
      default:
        throw_user_error(where_, "unsupported protobuf wire type {} in an event", wire_type);
    }
  }

 private:
  void need(std::uint64_t n) const {
    if (n > data_.size() - pos_) throw_user_error(where_, "truncated protobuf message in an event");
  }
  std::string_view data_;
  std::size_t pos_ = 0;
  const std::string& where_;
};

std::pair<std::string, float> decode_value(std::string_view msg, const std::string& where) {
  Cursor c(msg, where);
  std::pair<std::string, float> v{"", 0.0f};
  while (!c.done()) {
    const std::uint64_t key = c.varint();
    const auto field = static_cast<std::uint32_t>(key >> 3),
               wt = static_cast<std::uint32_t>(key & 7);
    if (field == 1 && wt == kLengthDelimited)
      v.first = std::string(c.bytes());
    else if (field == 2 && wt == kFixed32)
      v.second = std::bit_cast<float>(c.fixed<std::uint32_t>());
    else
      c.skip(wt);
  }
  return v;
}

TbEvent decode_event(std::string_view msg, const std::string& where) {
  Cursor c(msg, where);
  TbEvent e;
  while (!c.done()) {
    const std::uint64_t key = c.varint();
    const auto field = static_cast<std::uint32_t>(key >> 3),
               wt = static_cast<std::uint32_t>(key & 7);
    if (field == 1 && wt == kFixed64) {
      e.wall_time = std::bit_cast<double>(c.fixed<std::uint64_t>());
    } else if (field == 2 && wt == kVarint) {
      e.step = static_cast<std::int64_t>(c.varint());
    } else if (field == 3 && wt == kLengthDelimited) {
      e.file_version = std::string(c.bytes());
    } else if (field == 5 && wt == kLengthDelimited) {
      Cursor s(c.bytes(), where);
      while (!s.done()) {
        const std::uint64_t k = s.varint();
        const auto f = static_cast<std::uint32_t>(k >> 3), w = static_cast<std::uint32_t>(k & 7);
        if (f == 1 && w == kLengthDelimited)
          e.scalars.push_back(decode_value(s.bytes(), where));
        else
          s.skip(w);
      }
    } else {
      c.skip(wt);
    }
  }
  return e;
}

}  // namespace

std::uint32_t crc32c(std::string_view data) {
  static const std::array<std::uint32_t, 256> table = make_crc_table();
  std::uint32_t c = 0xFFFFFFFFu;
  for (const char ch : data) c = table[(c ^ static_cast<unsigned char>(ch)) & 0xffu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::uint32_t masked_crc32c(std::string_view data) {
  const std::uint32_t c = crc32c(data);
  return ((c >> 15) | (c << 17)) + kMaskDelta;
}

std::string tfrecord_frame(std::string_view data) {
  std::string len;
  put_le(len, static_cast<std::uint64_t>(data.size()));
  std::string out = len;
  put_le(out, masked_crc32c(len));
  out.append(data);
  put_le(out, masked_crc32c(data));
  return out;
}

std::string encode_file_version_event(double wall_time) {
  std::string e = event_head(wall_time, 0);
  put_bytes(e, 3, kFileVersion);
  return e;
}

std::string encode_scalars_event(double wall_time, std::int64_t step,
                                 const std::vector<std::pair<std::string, double>>& values) {
  std::string summary;
  for (const auto& [tag, value] : values) {
    std::string v;
    put_bytes(v, 1, tag);
    put_key(v, 2, kFixed32);  // simple_value sits in a oneof: written even when 0
    put_le(v, std::bit_cast<std::uint32_t>(static_cast<float>(value)));
    put_bytes(summary, 1, v);
  }
  std::string e = event_head(wall_time, step);
  put_bytes(e, 5, summary);
  return e;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir, WallClock clock)
    : clock_(std::move(clock)) {
  if (!clock_) {
    clock_ = [] {
      const auto now = std::chrono::system_clock::now().time_since_epoch();
      return std::chrono::duration<double>(now).count();
    };
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw_runtime_error("{}: cannot create the TensorBoard directory: {}", dir, ec.message());
  const double t0 = clock_();
  const std::string base = dir + "/" + kFilePrefix +
                           std::to_string(static_cast<std::int64_t>(std::floor(t0))) + "." +
                           hostname() + ".tailor";
  // Never append to another writer's file: a second writer in the same second gets a suffix.
  for (int n = 0; !file_; ++n) {
    path_ = n == 0 ? base : base + "." + std::to_string(n);
    file_.reset(std::fopen(path_.c_str(), "wbx"));
    if (!file_ && (errno != EEXIST || n >= 1000))
      throw_runtime_error("{}: cannot write: {}", path_, std::strerror(errno));
  }
  write_record(encode_file_version_event(t0));
  flush();
}

void TensorBoardWriter::scalars(std::int64_t step,
                                const std::vector<std::pair<std::string, double>>& values) {
  write_record(encode_scalars_event(clock_(), step, values));
  flush();
}

void TensorBoardWriter::flush() {
  if (std::fflush(file_.get()) != 0)
    throw_runtime_error("{}: write failed: {}", path_, std::strerror(errno));
}

void TensorBoardWriter::write_record(const std::string& data) {
  const std::string frame = tfrecord_frame(data);
  if (std::fwrite(frame.data(), 1, frame.size(), file_.get()) != frame.size())
    throw_runtime_error("{}: write failed: {}", path_, std::strerror(errno));
}

std::vector<TbEvent> read_event_file(const std::string& path, bool allow_torn_tail) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_user_error(path, "cannot read");
  std::string bytes;
  f.seekg(0, std::ios::end);
  bytes.resize(static_cast<std::size_t>(std::max<std::streamoff>(0, f.tellg())));
  f.seekg(0, std::ios::beg);
  if (!f.read(bytes.data(), static_cast<std::streamsize>(bytes.size())))
    throw_user_error(path, "cannot read");
  const std::string_view all(bytes);
  std::vector<TbEvent> events;
  std::size_t pos = 0;
  auto u32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i)
      v |= static_cast<std::uint32_t>(static_cast<unsigned char>(all[at + i])) << (8 * i);
    return v;
  };
  while (pos < all.size()) {
    // A process killed mid-write leaves a partial last record: readers that resume stop there.
    if (allow_torn_tail && (all.size() - pos < 12 ||
                            u32(pos + 8) != masked_crc32c(all.substr(pos, 8)))) break;
    if (all.size() - pos < 12) throw_user_error(path, "truncated record header at byte {}", pos);
    const std::string_view len_bytes = all.substr(pos, 8);
    if (u32(pos + 8) != masked_crc32c(len_bytes))
      throw_user_error(path, "length CRC mismatch at byte {}", pos);
    std::uint64_t len = 0;
    for (std::size_t i = 0; i < 8; ++i)
      len |= static_cast<std::uint64_t>(static_cast<unsigned char>(len_bytes[i])) << (8 * i);
    if (len > all.size() - pos - 12 || all.size() - pos - 12 - len < 4) {
      if (allow_torn_tail) break;
      throw_user_error(path, "truncated record at byte {}", pos);
    }
    const std::string_view data = all.substr(pos + 12, len);
    if (u32(pos + 12 + len) != masked_crc32c(data))
      throw_user_error(path, "data CRC mismatch in the record at byte {}", pos);
    events.push_back(decode_event(data, path));
    pos += 12 + len + 4;
  }
  return events;
}

std::vector<std::string> list_event_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kFilePrefix, 0) == 0 && entry.is_regular_file(ec))
      out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void remove_event_files(const std::string& dir) {
  for (const std::string& p : list_event_files(dir)) {
    std::error_code ec;
    std::filesystem::remove(p, ec);
    if (ec) throw_runtime_error("{}: cannot remove: {}", p, ec.message());
  }
}

}  // namespace tailor::trainer

namespace tailor::trainer {

void truncate_event_files(const std::string& dir, std::int64_t max_step) {
  std::vector<TbEvent> kept;
  const std::vector<std::string> files = list_event_files(dir);
  for (const std::string& f : files)
    for (TbEvent& e : read_event_file(f, /*allow_torn_tail=*/true))
      if (e.file_version.empty() && e.step <= max_step) kept.push_back(std::move(e));
  if (files.empty()) return;
  // One new file with the kept events (original wall times), then the old files go.
  const std::string tmp = dir + "/.truncated.tmp";
  {
    std::string bytes = tfrecord_frame(encode_file_version_event(kept.empty() ? 0.0 : kept.front().wall_time));
    for (const TbEvent& e : kept) {
      std::vector<std::pair<std::string, double>> values;
      for (const auto& [tag, v] : e.scalars) values.emplace_back(tag, static_cast<double>(v));
      bytes += tfrecord_frame(encode_scalars_event(e.wall_time, e.step, values));
    }
    std::FILE* out = std::fopen(tmp.c_str(), "wb");
    if (out == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), out) != bytes.size() ||
        std::fclose(out) != 0)
      throw_runtime_error("{}: cannot write", tmp);
  }
  for (const std::string& f : files) std::filesystem::remove(f);
  std::filesystem::rename(tmp, files.front());
}

}  // namespace tailor::trainer
