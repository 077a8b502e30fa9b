// `tailor plot`: a small metrics.jsonl drawn as SVG must be well-formed XML with the expected
// panels, axis labels, legend entries, tick numbers and one polyline point per record; a missing
// or damaged metrics.jsonl is a user error naming the file.
#include "trainer/plot.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_dirs.h"

namespace {

using tailor::testing::read_file;
using tailor::testing::TempDir;
namespace tt = tailor::trainer;

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

// A small structural XML check: one root element, every start tag closed in order, attribute
// values quoted, no duplicate attributes, only the five predefined or numeric entities, no stray
// '<' or '&'. Returns "" when well-formed, else what is wrong.
std::string xml_problem(const std::string& s) {
  std::vector<std::string> stack;
  std::size_t i = 0;
  int roots = 0;
  auto is_name = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' ||
           c == '.';
  };
  auto check_text = [](const std::string& text, std::size_t from, std::size_t to) -> std::string {
    for (std::size_t k = from; k < to; ++k) {
      if (text[k] == '<') return "stray < at " + std::to_string(k);
      if (text[k] == '&') {
        const std::size_t semi = text.find(';', k);
        if (semi == std::string::npos || semi > to)
          return "unterminated entity at " + std::to_string(k);
        const std::string ent = text.substr(k + 1, semi - k - 1);
        if (ent != "amp" && ent != "lt" && ent != "gt" && ent != "quot" && ent != "apos" &&
            !std::regex_match(ent, std::regex("#[0-9]+|#x[0-9a-fA-F]+")))
          return "unknown entity &" + ent + ";";
      }
    }
    return "";
  };
  if (s.rfind("<?xml", 0) == 0) i = s.find("?>") + 2;
  while (i < s.size()) {
    const std::size_t lt = s.find('<', i);
    if (lt == std::string::npos) {
      if (!stack.empty()) return "unclosed <" + stack.back() + ">";
      if (s.find_first_not_of(" \n\t\r", i) != std::string::npos) return "text after the root";
      break;
    }
    if (std::string p = check_text(s, i, lt); !p.empty()) return p;
    if (stack.empty() && s.find_first_not_of(" \n\t\r", i) < lt) return "text outside the root";
    const std::size_t gt = s.find('>', lt);
    if (gt == std::string::npos) return "unterminated tag";
    std::string tag = s.substr(lt + 1, gt - lt - 1);
    i = gt + 1;
    if (tag.rfind("!--", 0) == 0) continue;
    if (!tag.empty() && tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) return "mismatched </" + name + ">";
      stack.pop_back();
      continue;
    }
    const bool self_closing = !tag.empty() && tag.back() == '/';
    if (self_closing) tag.pop_back();
    std::size_t k = 0;
    while (k < tag.size() && is_name(tag[k])) ++k;
    const std::string name = tag.substr(0, k);
    if (name.empty()) return "empty tag name at " + std::to_string(lt);
    std::vector<std::string> attrs;
    while (true) {
      while (k < tag.size() && std::isspace(static_cast<unsigned char>(tag[k]))) ++k;
      if (k >= tag.size()) break;
      const std::size_t a = k;
      while (k < tag.size() && is_name(tag[k])) ++k;
      const std::string attr = tag.substr(a, k - a);
      if (attr.empty() || k >= tag.size() || tag[k] != '=')
        return "bad attribute in <" + name + ">";
      for (const auto& seen : attrs)
        if (seen == attr) return "duplicate attribute " + attr + " in <" + name + ">";
      attrs.push_back(attr);
      ++k;
      if (k >= tag.size() || (tag[k] != '"' && tag[k] != '\''))
        return "unquoted " + attr + " in <" + name + ">";
      const std::size_t close = tag.find(tag[k], k + 1);
      if (close == std::string::npos) return "unterminated value of " + attr;
      if (std::string p = check_text(tag, k + 1, close); !p.empty()) return p;
      k = close + 1;
    }
    if (stack.empty() && ++roots > 1) return "two root elements";
    if (!self_closing) stack.push_back(name);
  }
  return roots == 1 ? "" : "no root element";
}

// The points attribute of the polyline named `name`: its point count (-1 if absent).
int polyline_points(const std::string& svg, const std::string& name) {
  const std::regex re("<polyline class=\"series\" data-name=\"" + name +
                      "\"[^>]* points=\"([^\"]*)\"");
  std::smatch m;
  if (!std::regex_search(svg, m, re)) return -1;
  const std::string pts = m[1];
  return pts.empty() ? 0 : static_cast<int>(std::count(pts.begin(), pts.end(), ' ')) + 1;
}

std::string metrics_text(int steps) {
  std::string s;
  for (int k = 1; k <= steps; ++k) {
    s += "{\"step\":" + std::to_string(k) + ",\"loss\":" + std::to_string(5.0 - 0.2 * k) +
         ",\"lr\":" + std::to_string(2e-4 * std::min(1.0, k / 3.0)) +
         ",\"grad_norm\":" + std::to_string(1.0 + 0.1 * k) + ",\"tokens_per_s\":1000.5}\n";
    if (k % 5 == 0)
      s += "{\"step\":" + std::to_string(k) + ",\"eval_loss\":" + std::to_string(4.5 - 0.1 * k) +
           ",\"eval_ppl\":90.0,\"eval_tokens\":512,\"eval_bleu\":" + std::to_string(3.0 * k) +
           "}\n";
  }
  return s;
}

TEST(Plot, SvgIsWellFormedWithAxesLegendAndPoints) {
  TempDir tmp;
  write(tmp / "metrics.jsonl", metrics_text(12));
  const std::string out = tt::plot_run(tmp.str(), "");
  EXPECT_EQ(out, tmp / "plot.svg");
  const std::string svg = read_file(out);
  EXPECT_EQ(xml_problem(svg), "") << svg;
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  // Panels: loss (train + eval), learning rate, grad norm, and bleu; no eval_ppl / eval_tokens.
  for (const char* title : {"Loss", "Learning rate", "Gradient norm", "Eval bleu"})
    EXPECT_NE(svg.find(std::string("data-title=\"") + title + "\""), std::string::npos) << title;
  EXPECT_EQ(svg.find("ppl"), std::string::npos);
  EXPECT_EQ(svg.find("tokens"), std::string::npos);
  // Axis labels: every panel has "step" under it and its y label.
  std::size_t xlabels = 0;
  for (std::size_t p = svg.find("class=\"xlabel\""); p != std::string::npos;
       p = svg.find("class=\"xlabel\"", p + 1))
    ++xlabels;
  EXPECT_EQ(xlabels, 4u);
  for (const char* y : {">loss (nats/token)<", ">learning rate<", ">global grad norm<", ">bleu<"})
    EXPECT_NE(svg.find(y), std::string::npos) << y;
  // Legend entries.
  for (const char* l :
       {"train loss", "eval loss", "learning rate", "grad norm (before clipping)", "bleu"})
    EXPECT_NE(svg.find(std::string(">") + l + "</text></g>"), std::string::npos) << l;
  // One point per record.
  EXPECT_EQ(polyline_points(svg, "train loss"), 12);
  EXPECT_EQ(polyline_points(svg, "eval loss"), 2);
  EXPECT_EQ(polyline_points(svg, "learning rate"), 12);
  EXPECT_EQ(polyline_points(svg, "grad norm \\(before clipping\\)"), 12);
  EXPECT_EQ(polyline_points(svg, "bleu"), 2);
  // Tick numbers: steps 0..12 by 2, lr in scientific notation (up to 2e-4).
  for (const char* t : {">0<", ">2<", ">12<", ">2.0e-4<"})
    EXPECT_NE(svg.find(t), std::string::npos) << t;
  EXPECT_NE(svg.find("<title>Tailor run "), std::string::npos);
}

TEST(Plot, OutOptionAndEscaping) {
  TempDir tmp;
  const std::string dir = tmp / "a&b<run>";
  std::filesystem::create_directories(dir);
  write(dir + "/metrics.jsonl", metrics_text(3));
  const std::string out = tt::plot_run(dir + "/", tmp / "x.svg");
  EXPECT_EQ(out, tmp / "x.svg");
  const std::string svg = read_file(out);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_NE(svg.find("a&amp;b&lt;run&gt;"), std::string::npos);
  EXPECT_EQ(polyline_points(svg, "train loss"), 3);
  EXPECT_EQ(polyline_points(svg, "eval loss"), -1);  // no eval records, no eval series
}

TEST(Plot, ConstantSeriesAndSingleRecord) {
  TempDir tmp;
  write(tmp / "metrics.jsonl", "{\"step\":1,\"loss\":2.0,\"lr\":0.0,\"grad_norm\":1.0}\n");
  const std::string svg = read_file(tt::plot_run(tmp.str(), ""));
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_FALSE(std::regex_search(svg, std::regex("\\b(nan|inf)\\b", std::regex::icase)));
  EXPECT_EQ(polyline_points(svg, "train loss"), 1);
}

TEST(Plot, MissingOrBadMetricsAreUserErrors) {
  TempDir tmp;
  try {
    (void)tt::plot_run(tmp / "nope", "");
    FAIL() << "no error";
  } catch (const tailor::UserError& e) {
    EXPECT_EQ(std::string(e.what()), tmp / "nope" + "/metrics.jsonl: cannot read");
    EXPECT_EQ(e.exit_code(), tailor::ExitCode::kUserError);
  }
  write(tmp / "metrics.jsonl", "{\"step\":1,\"loss\":2.0}\nnot json\n{\"step\":3,\"loss\":1.0}\n");
  try {
    (void)tt::plot_run(tmp.str(), "");
    FAIL() << "no error";
  } catch (const tailor::UserError& e) {
    EXPECT_EQ(std::string(e.what()), tmp / "metrics.jsonl" + ":2: not a JSON object");
  }
  write(tmp / "metrics.jsonl", "");
  EXPECT_THROW((void)tt::plot_run(tmp.str(), ""), tailor::UserError);
  // A live run's half-written last line is skipped.
  write(tmp / "metrics.jsonl", "{\"step\":1,\"loss\":2.0}\n{\"step\":2,\"lo");
  EXPECT_EQ(polyline_points(read_file(tt::plot_run(tmp.str(), "")), "train loss"), 1);
}

}  // namespace
