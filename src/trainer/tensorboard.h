// TensorBoard event files written by Tailor itself, with no protobuf or TensorFlow library.
//
// A run's `tb/` directory holds one file `events.out.tfevents.<unix_time>.<hostname>.tailor` per
// writer. It is a sequence of TFRecord frames
//   uint64 length (LE) | uint32 masked CRC32C of the 8 length bytes | data | uint32 masked CRC32C
// whose data are serialized `tensorflow.Event` protobuf messages, encoded here by hand since only
// a handful of fields are needed:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; }
// The first event carries file_version "brain.Event:2"; every logged step adds one event with a
// scalar per tag. TensorBoard (`tensorboard --logdir runs/x/tb`) reads these as scalar curves.
// The reader below parses what the writer writes (CRCs checked); tests and resume use it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tailor::trainer {

// CRC32C (Castagnoli polynomial, reflected 0x82F63B78), as TFRecord uses it.
[[nodiscard]] std::uint32_t crc32c(std::string_view data);
// TFRecord's masked form: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
[[nodiscard]] std::uint32_t masked_crc32c(std::string_view data);

// One decoded event: either the file_version record or a step's scalars.
struct TbEvent {
  double wall_time = 0.0;
  std::int64_t step = 0;
  std::string file_version;                            // empty unless the header event
  std::vector<std::pair<std::string, float>> scalars;  // tag -> simple_value, in file order
};

class TensorBoardWriter {
 public:
  // Seconds since the Unix epoch; the default reads the system clock. Tests inject a fixed one.
  using WallClock = std::function<double()>;

  // Creates `dir` if needed and a new event file in it, then writes the file_version event.
  // RuntimeError naming the path when the directory or file cannot be written.
  explicit TensorBoardWriter(const std::string& dir, WallClock clock = {});
  ~TensorBoardWriter() = default;
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // One event at `step` holding every (tag, value) as a float scalar. Flushed at once, so a
  // crashed run keeps every step it logged and a live TensorBoard sees each step.
  void scalars(std::int64_t step, const std::vector<std::pair<std::string, double>>& values);
  void flush();

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  void write_record(const std::string& data);

  struct FileCloser {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
  };
  WallClock clock_;
  std::string path_;
  std::unique_ptr<std::FILE, FileCloser> file_;
};

// The serialized Event messages (exposed for tests).
[[nodiscard]] std::string encode_file_version_event(double wall_time);
[[nodiscard]] std::string encode_scalars_event(
    double wall_time, std::int64_t step, const std::vector<std::pair<std::string, double>>& values);
// One TFRecord frame around `data`.
[[nodiscard]] std::string tfrecord_frame(std::string_view data);

// Reads an event file written by TensorBoardWriter: every frame's two CRCs are verified and every
// Event decoded (unknown fields skipped). UserError "path: reason" on a damaged file.
// With allow_torn_tail, a partial last record (a process killed mid-write) ends the file instead.
[[nodiscard]] std::vector<TbEvent> read_event_file(const std::string& path,
                                                   bool allow_torn_tail = false);

// The event files (`events.out.tfevents.*`) directly in `dir`, sorted by name; none if `dir` is
// missing.
[[nodiscard]] std::vector<std::string> list_event_files(const std::string& dir);
// Deletes them (a fresh run starts with an empty tb/, as metrics.jsonl starts empty).
void remove_event_files(const std::string& dir);
// Resuming at `max_step`: rewrites the event files of `dir` as one file holding the scalar events
// of steps <= max_step (their wall times kept); later events and torn records are dropped.
void truncate_event_files(const std::string& dir, std::int64_t max_step);

}  // namespace tailor::trainer
