// TensorBoard event files: CRC32C known answers, the TFRecord frame layout, and the golden check
// against tests/golden/tensorboard/ (an event file TensorBoard's own writer wrote from fixed
// inputs, and what TensorBoard's EventAccumulator found in it; made by
// tests/golden/make_tensorboard_fixture.py).
#include "trainer/tensorboard.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_dirs.h"

namespace {

using tailor::testing::TempDir;
namespace tt = tailor::trainer;

const std::string kGolden = TAILOR_SOURCE_DIR "/tests/golden/tensorboard";

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

TEST(Crc32c, KnownAnswers) {
  EXPECT_EQ(tt::crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(tt::crc32c(""), 0u);
  EXPECT_EQ(tt::crc32c(std::string(32, '\0')), 0x8A9136AAu);    // RFC 3720 B.4: 32 zero bytes
  EXPECT_EQ(tt::crc32c(std::string(32, '\xff')), 0x62A8AB43u);  // ... and 32 bytes of 0xff
  const std::uint32_t c = 0xE3069283u;
  EXPECT_EQ(tt::masked_crc32c("123456789"), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

TEST(TensorBoard, FrameLayout) {
  const std::string f = tt::tfrecord_frame("abc");
  ASSERT_EQ(f.size(), 8u + 4u + 3u + 4u);
  EXPECT_EQ(f.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(f.substr(12, 3), "abc");
  auto u32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i)
      v |= static_cast<std::uint32_t>(static_cast<unsigned char>(f[at + i])) << (8 * i);
    return v;
  };
  EXPECT_EQ(u32(8), tt::masked_crc32c(f.substr(0, 8)));
  EXPECT_EQ(u32(15), tt::masked_crc32c("abc"));
}

TEST(TensorBoard, ProtobufEncoding) {
  // Event{wall_time = 1.0, file_version = "brain.Event:2"}: step 0 is left out (proto3 default).
  EXPECT_EQ(tt::encode_file_version_event(1.0), std::string("\x09\0\0\0\0\0\0\xf0\x3f", 9) +
                                                    "\x1a\x0d"
                                                    "brain.Event:2");
  // Event{wall_time = 0.5, step = 300, summary{value{tag "a", simple_value 2.0}}}.
  EXPECT_EQ(tt::encode_scalars_event(0.5, 300, {{"a", 2.0}}),
            std::string("\x09\0\0\0\0\0\0\xe0\x3f", 9) +
                "\x10\xac\x02"
                "\x2a\x0a"
                "\x0a\x08" +
                "\x0a\x01"
                "a" +
                std::string("\x15\0\0\0\x40", 5));
}

TEST(TensorBoard, WritesNamedFileAndReadsBack) {
  TempDir tmp;
  const std::string dir = tmp / "tb";
  double t = 1700000000.25;
  {
    tt::TensorBoardWriter w(dir, [&t] { return t; });
    const std::string name = std::filesystem::path(w.path()).filename().string();
    EXPECT_TRUE(
        std::regex_match(name, std::regex(R"(events\.out\.tfevents\.1700000000\..+\.tailor)")))
        << name;
    t += 1;
    w.scalars(1, {{"train/loss", 2.5}, {"train/lr", 1e-4}});
    t += 1;
    w.scalars(std::int64_t{1} << 40, {{"train/loss", 0.0}});
    t += 1;
    w.scalars(-3, {{"x", -1.5}});
  }
  const auto files = tt::list_event_files(dir);
  ASSERT_EQ(files.size(), 1u);
  const auto events = tt::read_event_file(files[0]);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_EQ(events[0].wall_time, 1700000000.25);
  EXPECT_EQ(events[0].step, 0);
  EXPECT_EQ(events[1].step, 1);
  EXPECT_EQ(events[1].wall_time, 1700000001.25);
  ASSERT_EQ(events[1].scalars.size(), 2u);
  EXPECT_EQ(events[1].scalars[0].first, "train/loss");
  EXPECT_EQ(events[1].scalars[0].second, 2.5f);
  EXPECT_EQ(events[1].scalars[1].second, static_cast<float>(1e-4));
  EXPECT_EQ(events[2].step, std::int64_t{1} << 40);
  ASSERT_EQ(events[2].scalars.size(), 1u);
  EXPECT_EQ(events[2].scalars[0].second, 0.0f);  // a zero simple_value is still present
  EXPECT_EQ(events[3].step, -3);
  EXPECT_EQ(events[3].scalars[0].second, -1.5f);

  // A second writer in the same second never appends to the first one's file.
  {
    tt::TensorBoardWriter w2(dir, [] { return 1700000000.5; });
  }
  EXPECT_EQ(tt::list_event_files(dir).size(), 2u);
  tt::remove_event_files(dir);
  EXPECT_TRUE(tt::list_event_files(dir).empty());
  EXPECT_TRUE(tt::list_event_files(tmp / "missing").empty());
}

TEST(TensorBoard, ReaderRejectsDamagedFiles) {
  TempDir tmp;
  std::string path;
  {
    tt::TensorBoardWriter w(tmp / "tb", [] { return 5.0; });
    w.scalars(1, {{"train/loss", 1.0}});
    path = w.path();
  }
  const std::string good = read_bytes(path);
  std::string bad = good;
  bad[bad.size() - 8] ^= 0x01;  // inside the last event's data
  write_bytes(path, bad);
  try {
    (void)tt::read_event_file(path);
    FAIL() << "no error";
  } catch (const tailor::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("data CRC mismatch"), std::string::npos) << e.what();
  }
  bad = good;
  bad[2] ^= 0x01;  // the first length
  write_bytes(path, bad);
  EXPECT_THROW((void)tt::read_event_file(path), tailor::UserError);
  write_bytes(path, good.substr(0, good.size() - 3));
  try {
    (void)tt::read_event_file(path);
    FAIL() << "no error";
  } catch (const tailor::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

TEST(TensorBoard, UnwritableDirectoryIsARuntimeError) {
  TempDir tmp;
  write_bytes(tmp / "file", "x");
  EXPECT_THROW(tt::TensorBoardWriter(tmp / "file/tb"), tailor::RuntimeError);
}

// The golden check against TensorBoard's own code (tests/golden/make_tensorboard_fixture.py):
// events.out.tfevents.fixture was written by TensorBoard's protobuf classes and RecordWriter from
// the inputs in expected.json, and expected.json records what TensorBoard's EventAccumulator read
// from it. Tailor's writer, given the same clock readings and values, must write that file byte
// for byte (so TensorBoard reads from Tailor's file what it read from its own), and Tailor's
// reader must find in it what EventAccumulator found.
TEST(TensorBoard, MatchesWhatTensorBoardWroteAndRead) {
  std::ifstream f(kGolden + "/expected.json");
  ASSERT_TRUE(f) << kGolden
                 << "/expected.json missing: run tests/golden/make_tensorboard_fixture.py";
  const nlohmann::json expected = nlohmann::json::parse(f);
  const std::string fixture = kGolden + "/events.out.tfevents.fixture";
  const nlohmann::json& inputs = expected["inputs"];
  const auto tags = expected["tags"].get<std::vector<std::string>>();
  ASSERT_EQ(tags.size(), 4u);
  const std::size_t steps = inputs["steps"].size();
  ASSERT_EQ(steps, 5u);

  // Tailor's writer, fed the inputs TensorBoard's writer was given.
  std::deque<double> clock{inputs["first_event_wall_time"].get<double>()};
  for (const auto& rec : inputs["steps"]) clock.push_back(rec["wall_time"].get<double>());
  TempDir tmp;
  std::string written;
  {
    tt::TensorBoardWriter w(tmp / "tb", [&clock] {
      const double t = clock.front();
      clock.pop_front();
      return t;
    });
    for (const auto& rec : inputs["steps"]) {
      std::vector<std::pair<std::string, double>> values;
      for (const auto& tag : inputs["tags"])
        values.emplace_back(tag.get<std::string>(), rec["values"][tag.get<std::string>()].get<double>());
      w.scalars(rec["step"].get<std::int64_t>(), values);
    }
    written = w.path();
  }
  EXPECT_TRUE(clock.empty()) << "the writer read the clock " << clock.size() << " times too few";
  const std::string got = read_bytes(written), want = read_bytes(fixture);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    ASSERT_EQ(got[i], want[i]) << "first difference at byte " << i;

  // Tailor's reader on TensorBoard's file finds what TensorBoard's reader found.
  const auto events = tt::read_event_file(fixture);
  ASSERT_EQ(events.size(), steps + 1);
  // EventAccumulator reports the number after "brain.Event:" (2.0).
  ASSERT_EQ(events[0].file_version.rfind("brain.Event:", 0), 0u) << events[0].file_version;
  EXPECT_EQ(std::stod(events[0].file_version.substr(12)), expected["file_version"].get<double>());
  EXPECT_EQ(events[0].wall_time, expected["first_event_wall_time"].get<double>());
  for (std::size_t i = 0; i < steps; ++i) {
    const tt::TbEvent& e = events[i + 1];
    ASSERT_EQ(e.scalars.size(), tags.size());
    for (const std::string& tag : tags) {
      const nlohmann::json& rec = expected["scalars"][tag][i];
      EXPECT_EQ(e.step, rec["step"].get<std::int64_t>());
      EXPECT_EQ(e.wall_time, rec["wall_time"].get<double>());
      const auto it = std::find_if(e.scalars.begin(), e.scalars.end(),
                                   [&](const auto& sv) { return sv.first == tag; });
      ASSERT_NE(it, e.scalars.end()) << tag;
      EXPECT_EQ(it->second, static_cast<float>(rec["value"].get<double>())) << tag;
    }
  }
}

TEST(TensorBoard, ResumeTruncationDropsLaterStepsAndATornLastRecord) {
  TempDir tmp;
  const std::string dir = tmp / "tb";
  {
    tt::TensorBoardWriter w(dir, [] { return 100.0; });
    for (std::int64_t step = 1; step <= 6; ++step) w.scalars(step, {{"train/loss", 1.0 / step}});
  }
  // A process killed mid-write leaves half a record at the end.
  const std::string file = tt::list_event_files(dir).front();
  const std::string torn = tt::tfrecord_frame(tt::encode_scalars_event(100.0, 7, {{"train/loss", 0.1}}));
  write_bytes(file, read_bytes(file) + torn.substr(0, torn.size() / 2));
  EXPECT_THROW((void)tt::read_event_file(file), tailor::UserError);

  tt::truncate_event_files(dir, 4);
  const std::vector<std::string> files = tt::list_event_files(dir);
  ASSERT_EQ(files.size(), 1u);
  std::vector<std::int64_t> steps;
  for (const tt::TbEvent& e : tt::read_event_file(files.front()))  // strict: no torn record left
    if (e.file_version.empty()) {
      steps.push_back(e.step);
      EXPECT_EQ(e.wall_time, 100.0);
      ASSERT_EQ(e.scalars.size(), 1u);
      EXPECT_FLOAT_EQ(e.scalars[0].second, static_cast<float>(1.0 / static_cast<double>(e.step)));
    }
  EXPECT_EQ(steps, (std::vector<std::int64_t>{1, 2, 3, 4}));
}

}  // namespace
