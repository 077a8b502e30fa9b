// Loading a tokenized cache: memory-mapped (what Tailor does, data::open_cache) against reading
// the files into vectors with std::ifstream (what it did before). Each way runs in a child
// process of its own, after one warm-up read so both find the files in the page cache, and
// reports the wall time to load, the time of one pass over every token (which faults the mapped
// pages in), and the process's anonymous and file-backed resident memory (RssAnon, RssFile from
// /proc/self/status) after the load and after the pass. Prints a table; --json writes it.
//   build/benchmarks/tailor_bench_cache_load --cache .cache/tailor/<key> [--json load.json]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include "data/token_cache.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// RssAnon and RssFile of this process, MB.
std::pair<double, double> rss_mb() {
  std::ifstream f("/proc/self/status");
  std::string key;
  double anon = 0, file = 0;
  while (f >> key) {
    double kb = 0;
    if (key == "RssAnon:" && f >> kb)
      anon = kb / 1024;
    else if (key == "RssFile:" && f >> kb)
      file = kb / 1024;
    std::getline(f, key);
  }
  return {anon, file};
}

template <typename T>
std::vector<T> read_vector(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  const auto bytes = static_cast<std::size_t>(f.tellg());
  f.seekg(0);
  std::vector<T> v(bytes / sizeof(T));
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
  return v;
}

struct Measure {
  double load_s = 0, pass_s = 0;
  double anon_load = 0, file_load = 0, anon_pass = 0, file_pass = 0;
  std::int64_t checksum = 0;
};

// One pass over every token, loss flag and document start.
std::int64_t pass(std::span<const std::int32_t> t, std::span<const std::uint8_t> l,
                  std::span<const std::int64_t> d) {
  std::int64_t s = 0;
  for (std::int32_t x : t) s += x;
  for (std::uint8_t x : l) s += x;
  for (std::int64_t x : d) s ^= x;
  return s;
}

Measure measure(const std::string& dir, bool mapped) {
  Measure m;
  const auto t0 = Clock::now();
  if (mapped) {
    const auto c = tailor::data::open_cache(dir);
    if (!c) throw std::runtime_error("not a cache: " + dir);
    m.load_s = seconds_since(t0);
    std::tie(m.anon_load, m.file_load) = rss_mb();
    const auto t1 = Clock::now();
    m.checksum = pass(c->corpus.tokens, c->corpus.loss, c->corpus.doc_start);
    m.pass_s = seconds_since(t1);
    std::tie(m.anon_pass, m.file_pass) = rss_mb();
  } else {
    const auto tokens = read_vector<std::int32_t>(dir + "/tokens.bin");
    const auto loss = read_vector<std::uint8_t>(dir + "/loss.bin");
    const auto docs = read_vector<std::int64_t>(dir + "/docs.bin");
    m.load_s = seconds_since(t0);
    std::tie(m.anon_load, m.file_load) = rss_mb();
    const auto t1 = Clock::now();
    m.checksum = pass(tokens, loss, docs);
    m.pass_s = seconds_since(t1);
    std::tie(m.anon_pass, m.file_pass) = rss_mb();
  }
  return m;
}

// Runs measure() in a child process (a fresh address space), the result through a pipe.
Measure in_child(const std::string& dir, bool mapped) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    const Measure m = measure(dir, mapped);
    const ssize_t n = ::write(fds[1], &m, sizeof m);
    ::_exit(n == static_cast<ssize_t>(sizeof m) ? 0 : 1);
  }
  ::close(fds[1]);
  Measure m;
  const ssize_t n = ::read(fds[0], &m, sizeof m);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (n != static_cast<ssize_t>(sizeof m) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("the measuring process failed");
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, json_path;
  int repeat = 3;
  CLI::App app{"Time loading a tokenized cache: mmap vs read into vectors"};
  app.add_option("--cache", dir, "a cache directory (<data.cache_dir>/<key>)")->required();
  app.add_option("--repeat", repeat, "runs of each way (the best time is kept)")
      ->check(CLI::PositiveNumber);
  app.add_option("--json", json_path, "write results as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return e.get_exit_code() == 0 ? 0 : 2;
  }
  try {
    (void)in_child(dir, false);  // warm the page cache
    nlohmann::json out = nlohmann::json::array();
    std::printf("%-6s | %9s | %9s | %21s | %21s\n", "way", "load ms", "pass ms",
                "after load anon/file", "after pass anon/file");
    std::int64_t checksum = 0;
    for (const bool mapped : {false, true}) {
      Measure best;
      for (int r = 0; r < repeat; ++r) {
        const Measure m = in_child(dir, mapped);
        if (r == 0 || m.load_s + m.pass_s < best.load_s + best.pass_s) best = m;
      }
      if (checksum != 0 && best.checksum != checksum) throw std::runtime_error("checksums differ");
      checksum = best.checksum;
      const char* way = mapped ? "mmap" : "read";
      std::printf("%-6s | %9.1f | %9.1f | %9.1f / %6.1f MB | %9.1f / %6.1f MB\n", way,
                  1e3 * best.load_s, 1e3 * best.pass_s, best.anon_load, best.file_load,
                  best.anon_pass, best.file_pass);
      out.push_back({{"way", way},
                     {"load_s", best.load_s},
                     {"pass_s", best.pass_s},
                     {"rss_anon_mb_after_load", best.anon_load},
                     {"rss_file_mb_after_load", best.file_load},
                     {"rss_anon_mb_after_pass", best.anon_pass},
                     {"rss_file_mb_after_pass", best.file_pass}});
    }
    if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
