// SVG rendering of a run's metrics.jsonl for `tailor plot` (see plot.h): nice-number ticks,
// stacked panels on a shared step axis, legends in each panel's header row.
#include "trainer/plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "trainer/run_dir.h"

namespace tailor::trainer {
namespace {

// Page geometry (SVG user units = pixels).
constexpr double kWidth = 960;
constexpr double kLeft = 96;  // room for tick numbers and the rotated y label
constexpr double kRight = 32;
constexpr double kTop = 72;          // page title and subtitle
constexpr double kHeader = 30;       // panel title and legend row
constexpr double kPlotHeight = 190;  // the plotting area of one panel
constexpr double kFooter = 52;       // x tick numbers and the "step" label
constexpr double kPanelHeight = kHeader + kPlotHeight + kFooter;
constexpr double kBottom = 16;

constexpr std::array<const char*, 8> kColors = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                                "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

std::string xml_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters are not allowed in XML 1.0 text.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n') out += c;
    }
  }
  return out;
}

// Coordinates with two decimals: enough for the eye, short in the file.
std::string num(double v) { return fmt::format("{:.2f}", v); }

struct Axis {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> ticks;
};

// Ticks at 1, 2 or 5 times a power of ten, about `target` of them; the axis extends to the
// enclosing ticks so the curve never touches the frame between grid lines.
Axis nice_axis(double lo, double hi, int target) {
  if (!(hi > lo)) {
    // A constant: a unit range from 0 for 0 (e.g. a learning rate held at 0), else +-10%.
    const double pad = std::abs(lo) * 0.1;
    if (lo == 0)
      hi = 1;
    else {
      lo -= pad;
      hi += pad;
    }
  }
  const double rough = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(rough)));
  const double norm = rough / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  Axis a;
  a.step = step;
  a.lo = std::floor(lo / step + 1e-9) * step;
  a.hi = std::ceil(hi / step - 1e-9) * step;
  for (double k = std::round(a.lo / step); k <= std::round(a.hi / step); k += 1)
    a.ticks.push_back(k * step);
  return a;
}

// A tick number: plain decimals when readable, else mantissa×10^e written as "1.5e-4".
std::string tick_label(double v, double step, double max_abs) {
  if (std::abs(v) < step * 1e-6) return "0";
  if (step >= 1e-3 && max_abs < 1e6) {
    const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
    return fmt::format("{:.{}f}", v, decimals);
  }
  const int exp = static_cast<int>(std::floor(std::log10(max_abs) + 1e-9));
  const int digits = std::max(0, exp - static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  const double mant = v / std::pow(10.0, exp);
  std::string m = fmt::format("{:.{}f}", mant, digits);
  return m + "e" + std::to_string(exp);
}

std::string compact(double v) { return fmt::format("{:.4g}", v); }

// Steps are integers: 12000, not 1.2e+04.
std::string step_text(double v) {
  return v == std::floor(v) && std::abs(v) < 9e15 ? std::to_string(static_cast<std::int64_t>(v))
                                                  : compact(v);
}

void panel_svg(std::ostringstream& o, const PlotPanel& p, const Axis& x, double top,
               std::size_t& color_index) {
  const double x0 = kLeft, x1 = kWidth - kRight;
  const double y0 = top + kHeader, y1 = y0 + kPlotHeight;  // y1: bottom of the plotting area
  double vmin = std::numeric_limits<double>::infinity(), vmax = -vmin;
  for (const auto& s : p.series)
    for (const auto& pt : s.points) {
      vmin = std::min(vmin, pt.second);
      vmax = std::max(vmax, pt.second);
    }
  const Axis y = nice_axis(vmin, vmax, 5);
  auto px = [&](double v) { return x0 + (v - x.lo) / (x.hi - x.lo) * (x1 - x0); };
  auto py = [&](double v) { return y1 - (v - y.lo) / (y.hi - y.lo) * (y1 - y0); };

  o << fmt::format("<g class=\"panel\" data-title=\"{}\">\n", xml_escape(p.title));
  o << fmt::format(
      "<text class=\"panel-title\" x=\"{}\" y=\"{}\" font-size=\"15\" "
      "font-weight=\"bold\">{}</text>\n",
      num(x0), num(top + 20), xml_escape(p.title));
  // Grid and ticks.
  const double y_max_abs = std::max(std::abs(y.lo), std::abs(y.hi));
  for (const double t : y.ticks) {
    const double yy = py(t);
    o << fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e4e4e4\"/>\n",
                     num(x0), num(yy), num(x1), num(yy));
    o << fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\n",
                     num(x0 - 5), num(yy), num(x0), num(yy));
    // Baseline 4px below the tick centres 12px digits on it (dominant-baseline is not portable).
    o << fmt::format("<text class=\"ytick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
                     num(x0 - 8), num(yy + 4), tick_label(t, y.step, y_max_abs));
  }
  const double x_max_abs = std::max(std::abs(x.lo), std::abs(x.hi));
  for (const double t : x.ticks) {
    const double xx = px(t);
    o << fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e4e4e4\"/>\n",
                     num(xx), num(y0), num(xx), num(y1));
    o << fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\n", num(xx),
                     num(y1), num(xx), num(y1 + 5));
    o << fmt::format("<text class=\"xtick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                     num(xx), num(y1 + 19), tick_label(t, x.step, x_max_abs));
  }
  o << fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" "
      "stroke=\"#333\"/>\n",
      num(x0), num(y0), num(x1 - x0), num(y1 - y0));
  // Axis labels.
  o << fmt::format("<text class=\"xlabel\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">step</text>\n",
                   num((x0 + x1) / 2), num(y1 + 40));
  const double ly = (y0 + y1) / 2;
  o << fmt::format(
      "<text class=\"ylabel\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 {} {})\">{}</text>\n",
      num(24), num(ly), num(24), num(ly), xml_escape(p.y_label));
  // Curves, then the legend (right-aligned in the header row, last entry rightmost).
  struct LegendEntry {
    std::string name, color;
    bool marker;
  };
  std::vector<LegendEntry> legend;
  for (const auto& s : p.series) {
    const std::string color = kColors[color_index++ % kColors.size()];
    legend.push_back({s.name, color, s.markers});
    std::string pts;
    for (const auto& [sx, sv] : s.points) {
      if (!pts.empty()) pts += ' ';
      pts += num(px(sx)) + "," + num(py(sv));
    }
    o << fmt::format(
        "<polyline class=\"series\" data-name=\"{}\" fill=\"none\" stroke=\"{}\" "
        "stroke-width=\"1.6\" stroke-linejoin=\"round\" points=\"{}\"/>\n",
        xml_escape(s.name), color, pts);
    if (s.markers)
      for (const auto& [sx, sv] : s.points)
        o << fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\"/>\n", num(px(sx)),
                         num(py(sv)), color);
  }
  double lx = x1;
  for (auto it = legend.rbegin(); it != legend.rend(); ++it) {
    const double text_w = 7.0 * static_cast<double>(it->name.size());  // ~12px sans-serif
    lx -= text_w;
    const double ty = top + 20;
    const std::string dot = it->marker
                                ? fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\"/>",
                                              num(lx - 17), num(ty - 4), it->color)
                                : "";
    o << fmt::format(
        "<g class=\"legend\"><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" "
        "stroke-width=\"3\"/>{}<text x=\"{}\" y=\"{}\">{}</text></g>\n",
        num(lx - 28), num(ty - 4), num(lx - 6), num(ty - 4), it->color, dot, num(lx), num(ty),
        xml_escape(it->name));
    lx -= 28 + 18;
  }
  o << "</g>\n";
}

}  // namespace

std::vector<PlotPanel> panels_from_metrics(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw_user_error(path, "cannot read");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();

  PlotSeries train_loss{"train loss", {}, false}, eval_loss{"eval loss", {}, true};
  PlotSeries lr{"learning rate", {}, false}, grad{"grad norm (before clipping)", {}, false};
  std::map<std::string, PlotSeries> evals;  // eval_<name> other than loss, ppl, tokens
  std::size_t records = 0, start = 0;
  for (std::size_t line_no = 1; start < text.size(); ++line_no) {
    const std::size_t end = text.find('\n', start);
    const bool terminated = end != std::string::npos;
    const std::string line = text.substr(start, terminated ? end - start : std::string::npos);
    start = terminated ? end + 1 : text.size();
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      if (!terminated) break;  // a live run may be writing its last line
      throw_user_error(fmt::format("{}:{}", path, line_no), "not a JSON object");
    }
    if (!j.contains("step") || !j["step"].is_number())
      throw_user_error(fmt::format("{}:{}", path, line_no), "record without a numeric \"step\"");
    const double step = j["step"].get<double>();
    ++records;
    auto add = [&](PlotSeries& s, const char* key) {
      if (j.contains(key) && j[key].is_number()) {
        const double v = j[key].get<double>();
        if (std::isfinite(v)) s.points.emplace_back(step, v);
      }
    };
    add(train_loss, "loss");
    add(lr, "lr");
    add(grad, "grad_norm");
    add(eval_loss, "eval_loss");
    for (const auto& [key, value] : j.items()) {
      if (key.rfind("eval_", 0) != 0 || key == "eval_loss" || key == "eval_ppl" ||
          key == "eval_tokens" || !value.is_number())
        continue;
      PlotSeries& s = evals[key];
      if (s.name.empty()) {
        s.name = key.substr(5);
        s.markers = true;
      }
      add(s, key.c_str());
    }
  }
  if (records == 0) throw_user_error(path, "no metrics records yet");

  std::vector<PlotPanel> panels;
  auto keep = [](std::vector<PlotSeries> series) {
    series.erase(std::remove_if(series.begin(), series.end(),
                                [](const PlotSeries& s) { return s.points.empty(); }),
                 series.end());
    return series;
  };
  auto push = [&](std::string title, std::string y_label, std::vector<PlotSeries> series) {
    series = keep(std::move(series));
    if (!series.empty())
      panels.push_back({std::move(title), std::move(y_label), std::move(series)});
  };
  push("Loss", "loss (nats/token)", {train_loss, eval_loss});
  push("Learning rate", "learning rate", {lr});
  push("Gradient norm", "global grad norm", {grad});
  for (auto& [key, s] : evals) push("Eval " + s.name, s.name, {s});
  return panels;
}

std::string render_svg(const std::vector<PlotPanel>& panels, const std::string& title) {
  double smin = std::numeric_limits<double>::infinity(), smax = -smin;
  for (const auto& p : panels)
    for (const auto& s : p.series)
      for (const auto& pt : s.points) {
        smin = std::min(smin, pt.first);
        smax = std::max(smax, pt.first);
      }
  if (!(smin <= smax)) smin = smax = 0;
  // Steps start at 1: let the axis start at 0 unless the run logged from far later on.
  const Axis x = nice_axis(smin > 0 && smin <= (smax - smin) ? 0.0 : smin, smax, 8);
  const double height = kTop + kPanelHeight * static_cast<double>(panels.size()) + kBottom;

  // Subtitle: where the run stands.
  std::string subtitle;
  for (const auto& p : panels)
    for (const auto& s : p.series) {
      if (s.points.empty() || (s.name != "train loss" && s.name != "eval loss")) continue;
      if (!subtitle.empty()) subtitle += "; ";
      subtitle += fmt::format("{} {} at step {}", s.name, compact(s.points.back().second),
                              step_text(s.points.back().first));
    }

  std::ostringstream o;
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o << fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
      "font-size=\"12\">\n",
      num(kWidth), num(height), num(kWidth), num(height));
  o << fmt::format("<title>{}</title>\n", xml_escape(title));
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << fmt::format(
      "<text class=\"title\" x=\"{}\" y=\"30\" text-anchor=\"middle\" font-size=\"18\" "
      "font-weight=\"bold\">{}</text>\n",
      num(kWidth / 2), xml_escape(title));
  if (!subtitle.empty())
    o << fmt::format(
        "<text class=\"subtitle\" x=\"{}\" y=\"52\" text-anchor=\"middle\" "
        "fill=\"#555\">{}</text>\n",
        num(kWidth / 2), xml_escape(subtitle));
  std::size_t color_index = 0;
  for (std::size_t i = 0; i < panels.size(); ++i)
    panel_svg(o, panels[i], x, kTop + kPanelHeight * static_cast<double>(i), color_index);
  o << "</svg>\n";
  return o.str();
}

std::string plot_run(const std::string& run_dir, const std::string& out_path) {
  std::string dir = run_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const std::vector<PlotPanel> panels = panels_from_metrics(dir + "/metrics.jsonl");
  const std::string out = out_path.empty() ? dir + "/plot.svg" : out_path;
  write_file_atomic(out, render_svg(panels, "Tailor run " + dir));
  return out;
}

}  // namespace tailor::trainer
