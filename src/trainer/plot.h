// `tailor plot RUN_DIR`: the curves of a run's metrics.jsonl drawn as one SVG image, written by
// hand (no plotting library): stacked panels sharing the step axis, each with labelled axes, tick
// marks with numbers, grid lines and a legend:
//   Loss            train `loss` per logged step, and `eval_loss` (markers) where evaluated
//   Learning rate   `lr`
//   Gradient norm   `grad_norm` (before clipping)
//   one panel per further eval metric (`eval_<name>`, e.g. eval_bleu), skipping eval_ppl (it is
//   exp(eval_loss)) and eval_tokens (a count).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace tailor::trainer {

struct PlotSeries {
  std::string name;                               // legend entry, e.g. "train loss"
  std::vector<std::pair<double, double>> points;  // (step, value), in file order
  bool markers = false;                           // draw a dot at every point (sparse eval data)
};

struct PlotPanel {
  std::string title;    // e.g. "Loss"
  std::string y_label;  // e.g. "loss (nats/token)"
  std::vector<PlotSeries> series;
};

// Reads a metrics.jsonl and groups its records into panels (empty series and panels left out).
// UserError "PATH: cannot read" when missing, "PATH:LINE: reason" for a bad line (an unterminated
// last line, which a live run may be writing, is skipped), "PATH: no metrics records" when empty.
[[nodiscard]] std::vector<PlotPanel> panels_from_metrics(const std::string& path);

// The SVG document for `panels` under `title`.
[[nodiscard]] std::string render_svg(const std::vector<PlotPanel>& panels,
                                     const std::string& title);

// RUN_DIR/metrics.jsonl -> SVG at `out_path` (RUN_DIR/plot.svg when empty), written atomically.
// Returns the path written.
std::string plot_run(const std::string& run_dir, const std::string& out_path);

}  // namespace tailor::trainer
