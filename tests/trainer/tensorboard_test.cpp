// TensorBoard event files: CRC32C known answers, the TFRecord frame layout, and the golden check
// against tests/golden/tensorboard/ (an event file `tailor train` wrote, and what TensorBoard's own
// EventAccumulator found in it; made by tests/golden/make_tensorboard_fixture.py).
#include "trainer/tensorboard.h"

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

// The golden check: TensorBoard's reader found expected.json in the event file `tailor train`
// wrote. Tailor's reader must find the same in that file, and Tailor's writer, given the same
// wall times and values, must reproduce the file byte for byte.
TEST(TensorBoard, MatchesWhatTensorBoardRead) {
  std::ifstream f(kGolden + "/expected.json");
  ASSERT_TRUE(f) << kGolden
                 << "/expected.json missing: run tests/golden/make_tensorboard_fixture.py";
  const nlohmann::json expected = nlohmann::json::parse(f);
  const std::string fixture = kGolden + "/events.out.tfevents.fixture";
  const auto tags = expected["tags"].get<std::vector<std::string>>();
  ASSERT_FALSE(tags.empty());
  const auto& first = expected["scalars"][tags[0]];
  const std::size_t steps = first.size();

  // Tailor's reader on TensorBoard's input.
  const auto events = tt::read_event_file(fixture);
  ASSERT_EQ(events.size(), steps + 1);
  // EventAccumulator reports the number after "brain.Event:" (2.0).
  ASSERT_EQ(events[0].file_version.rfind("brain.Event:", 0), 0u) << events[0].file_version;
  EXPECT_EQ(std::stod(events[0].file_version.substr(12)), expected["file_version"].get<double>());
  EXPECT_EQ(events[0].wall_time, expected["first_event_wall_time"].get<double>());
  for (std::size_t i = 0; i < steps; ++i) {
    const tt::TbEvent& e = events[i + 1];
    ASSERT_EQ(e.scalars.size(), tags.size());
    for (std::size_t k = 0; k < tags.size(); ++k) {
      const nlohmann::json& rec = expected["scalars"][tags[k]][i];
      EXPECT_EQ(e.step, rec["step"].get<std::int64_t>());
      EXPECT_EQ(e.wall_time, rec["wall_time"].get<double>());
      EXPECT_EQ(e.scalars[k].first, tags[k]);
      EXPECT_EQ(e.scalars[k].second, static_cast<float>(rec["value"].get<double>())) << tags[k];
    }
  }

  // Tailor's writer, fed the same clock readings and values.
  std::deque<double> clock{expected["first_event_wall_time"].get<double>()};
  for (const auto& rec : first) clock.push_back(rec["wall_time"].get<double>());
  TempDir tmp;
  std::string written;
  {
    tt::TensorBoardWriter w(tmp / "tb", [&clock] {
      const double t = clock.front();
      clock.pop_front();
      return t;
    });
    for (std::size_t i = 0; i < steps; ++i) {
      std::vector<std::pair<std::string, double>> values;
      for (const auto& tag : tags)
        values.emplace_back(tag, expected["scalars"][tag][i]["value"].get<double>());
      w.scalars(first[i]["step"].get<std::int64_t>(), values);
    }
    written = w.path();
  }
  EXPECT_TRUE(read_bytes(written) == read_bytes(fixture)) << "event file differs from the fixture";
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
