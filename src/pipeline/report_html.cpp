// report.html of pipeline_report.h: one file, inline CSS, charts as inline SVG drawn here (no
// JavaScript, nothing fetched), readable offline and in any browser.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "pipeline/pipeline_report.h"

namespace qforge::pipeline_internal {
namespace {

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                   "#9467bd", "#8c564b", "#e377c2", "#17becf"};

const char* color(size_t i) {
  return kColors[i % (sizeof(kColors) / sizeof(kColors[0]))];
}

std::string esc(std::string_view s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
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
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

// ΔPPL % per candidate as horizontal bars, with each candidate's gate threshold as a tick.
std::string delta_ppl_chart(const PipelineResult& r) {
  const double row = 28, left = 160, width = 560;
  double lo = 0, hi = 0;
  for (const CandidateResult& c : r.candidates) {
    lo = std::min({lo, c.delta_ppl_percent, c.ppl_threshold});
    hi = std::max({hi, c.delta_ppl_percent, c.ppl_threshold});
  }
  if (hi - lo < 1e-9) hi = lo + 1;
  const double span = (hi - lo) * 1.1;
  const auto x = [&](double v) { return left + (v - lo) / span * width; };
  const double h = 40 + row * static_cast<double>(r.candidates.size());
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" "
      "aria-label=\"delta PPL per candidate\">\n",
      left + width + 120, h);
  s += fmt::format(
      "<line x1=\"{0:.1f}\" y1=\"10\" x2=\"{0:.1f}\" y2=\"{1:.1f}\" stroke=\"#888\"/>\n", x(0),
      h - 20);
  for (size_t i = 0; i < r.candidates.size(); ++i) {
    const CandidateResult& c = r.candidates[i];
    const double y = 16 + row * static_cast<double>(i);
    const double x0 = x(std::min(0.0, c.delta_ppl_percent)),
                 x1 = x(std::max(0.0, c.delta_ppl_percent));
    s += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"12\">{}</text>\n",
        left - 8, y + 13, esc(c.candidate.name));
    s += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"18\" fill=\"{}\"/>\n", x0, y,
        std::max(1.0, x1 - x0), c.passed ? "#2ca02c" : "#d62728");
    s += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#000\" "
        "stroke-width=\"2\" stroke-dasharray=\"3,2\"/>\n",
        x(c.ppl_threshold), y - 3, y + 21);
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\">{:+.3f}%</text>\n",
                     std::max(x1, x(c.ppl_threshold)) + 6, y + 13, c.delta_ppl_percent);
  }
  s += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" fill=\"#555\">ΔPPL % "
      "(bar; green = passed) and the gate threshold (dashed)</text>\n",
      left, h - 4);
  return s + "</svg>\n";
}

// Output relative error of every quantized layer, one polyline per candidate, log scale.
std::string layer_error_chart(const PipelineResult& r) {
  size_t n = 0;
  double lo = 1e300, hi = 0;
  for (const CandidateResult& c : r.candidates) {
    n = std::max(n, c.layers.size());
    for (const LayerQuantReport& l : c.layers) {
      if (l.output_rel_error > 0) {
        lo = std::min(lo, l.output_rel_error);
        hi = std::max(hi, l.output_rel_error);
      }
    }
  }
  if (n == 0 || hi <= 0) return "<p>No per-layer errors were reported.</p>\n";
  const double y_lo = std::floor(std::log10(lo)),
               y_hi = std::max(y_lo + 1, std::ceil(std::log10(hi)));
  const double left = 60, top = 20, w = 820, h = 260;
  const auto px = [&](size_t i) {
    return left + (n > 1 ? static_cast<double>(i) / static_cast<double>(n - 1) : 0.5) * w;
  };
  const auto py = [&](double v) {
    const double lv = std::log10(std::max(v, std::pow(10.0, y_lo)));
    return top + h - (lv - y_lo) / (y_hi - y_lo) * h;
  };
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" "
      "aria-label=\"per-layer quantization error\">\n",
      left + w + 160, top + h + 50);
  for (double e = y_lo; e <= y_hi + 1e-9; e += 1) {
    const double y = top + h - (e - y_lo) / (y_hi - y_lo) * h;
    s += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n",
                     left, y, left + w, y);
    s += fmt::format(
        "<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"11\">1e{:.0f}</text>\n",
        left - 6, y + 4, e);
  }
  const std::vector<LayerQuantReport>& first = r.candidates.front().layers;
  for (size_t i = 0; i < first.size(); i += 7) {
    const std::string& m = first[i].module;
    const size_t a = m.find("layers."), b = m.find('.', a + 7);
    const std::string block = a == std::string::npos ? m : m.substr(a + 7, b - a - 7);
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" font-size=\"11\">{}</text>\n", px(i),
                     top + h + 16, esc(block));
  }
  s += fmt::format(
      "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#555\">decoder block (7 "
      "linears each: q k v o gate up down)</text>\n",
      left, top + h + 34);
  for (size_t ci = 0; ci < r.candidates.size(); ++ci) {
    const CandidateResult& c = r.candidates[ci];
    std::string pts;
    for (size_t i = 0; i < c.layers.size(); ++i) {
      if (c.layers[i].output_rel_error <= 0) continue;
      pts += fmt::format("{:.1f},{:.1f} ", px(i), py(c.layers[i].output_rel_error));
    }
    s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
                     color(ci), pts);
    s += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>\n",
        left + w + 16, top + 18 * static_cast<double>(ci), color(ci), left + w + 34,
        top + 18 * static_cast<double>(ci) + 11, esc(c.candidate.name));
  }
  return s + "</svg>\n";
}

// Histogram of the per-token KL divergence (log-spaced bins), one small chart per candidate.
std::string kld_chart(const CandidateResult& c, size_t index) {
  const KldHistogram& hist = c.kld_histogram;
  if (hist.counts.empty()) return "";
  const int64_t peak =
      std::max<int64_t>(1, *std::max_element(hist.counts.begin(), hist.counts.end()));
  const double left = 40, top = 24, w = 400, h = 120;
  const double bw = w / static_cast<double>(hist.counts.size());
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" "
      "aria-label=\"KLD distribution of {}\">\n",
      left + w + 20, top + h + 40, esc(c.candidate.name));
  s += fmt::format(
      "<text x=\"{}\" y=\"14\" font-size=\"12\" font-weight=\"bold\">{} (mean KLD "
      "{:.2e}, {} tokens)</text>\n",
      left, esc(c.candidate.name), c.kld.mean_kld, c.kld.tokens);
  for (size_t i = 0; i < hist.counts.size(); ++i) {
    const double bh = h * static_cast<double>(hist.counts[i]) / static_cast<double>(peak);
    s += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{} "
        "tokens</title></rect>\n",
        left + bw * static_cast<double>(i), top + h - bh, std::max(1.0, bw - 1), bh, color(index),
        hist.counts[i]);
  }
  for (size_t i = 1; i < hist.counts.size(); ++i) {
    const double e = hist.log10_min + hist.bin_width * static_cast<double>(i - 1);
    if (std::fabs(e - std::round(e)) > 1e-9) continue;
    s += fmt::format(
        "<text x=\"{:.1f}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">1e{:.0f}</text>\n",
        left + bw * static_cast<double>(i), top + h + 14, e);
  }
  s += fmt::format(
      "<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#555\">first bar: KLD &lt; "
      "1e{:.0f}</text>\n",
      left, top + h + 30, hist.log10_min);
  return s + "</svg>\n";
}

}  // namespace

std::string report_html(const PipelineResult& r) {
  const BaselineResult& b = r.baseline;
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<title>qforge pipeline report</title>\n<style>\n"
      "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}\n"
      "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
      "text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}\n"
      ".pass{color:#187a18;font-weight:bold}.fail{color:#b01c1c;font-weight:bold}\n"
      "code{background:#f5f5f5;padding:1px 4px}\n</style></head><body>\n";
  h += "<h1>qforge pipeline report</h1>\n";
  h += fmt::format("<p>Model <code>{}</code> (evaluated as <code>{}</code>); config {}.</p>\n",
                   esc(r.config.model), esc(b.model),
                   esc(r.config.source.empty() ? "built-in defaults" : r.config.source));
  h += fmt::format("<p>Perplexity protocol: <code>{}</code></p>\n", esc(b.protocol));
  if (r.chosen >= 0) {
    h += fmt::format("<p class=\"pass\">Chosen: {} — deployed to <code>{}</code></p>\n",
                     esc(r.candidates[static_cast<size_t>(r.chosen)].candidate.name),
                     esc(r.deployed_engine));
  } else {
    h += "<p class=\"fail\">No candidate passed the gate; nothing was deployed.</p>\n";
  }
  h += fmt::format(
      "<h2>Baseline</h2>\n<p>PPL {:.4f} ± {:.4f} over {} tokens ({} chunks); {:.1f} decode "
      "tokens/s; {:.2f} MiB of weights, {:.2f} bits/weight in the decoder layers.</p>\n",
      b.ppl.ppl, b.ppl.ppl_stderr, b.ppl.scored_tokens, b.ppl.chunks, b.tokens_per_second,
      b.size.bytes / 1048576.0, b.size.bits_per_weight);
  if (!b.tasks.empty()) {
    h += "<table><tr><th>task</th><th>examples</th><th>acc</th><th>acc_norm</th></tr>\n";
    for (const TaskScore& t : b.tasks) {
      h += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{:.4f} ± {:.4f}</td><td>{:.4f} ± "
          "{:.4f}</td></tr>\n",
          esc(t.task), t.examples, t.acc, t.acc_stderr, t.acc_norm, t.acc_norm_stderr);
    }
    h += "</table>\n";
  }
  h += "<h2>Candidates</h2>\n<table id=\"comparison\"><tr><th>candidate</th><th>qformat</th>"
       "<th>KV cache</th><th>size MiB</th><th>bits/weight</th><th>PPL</th><th>ΔPPL %</th>"
       "<th>gate</th><th>mean KLD</th><th>top-1 agreement</th>";
  for (const TaskScore& t : b.tasks) h += fmt::format("<th>{} Δacc</th>", esc(t.task));
  h += "<th>tokens/s</th><th>verdict</th></tr>\n";
  for (const CandidateResult& c : r.candidates) {
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2f}</td><td>{:.3f}</td>"
        "<td>{:.4f}</td><td>{:+.3f}</td><td>&lt; {:.3f}</td><td>{:.6f}</td>"
        "<td>{:.2f}%</td>",
        esc(c.candidate.name), esc(c.candidate.qformat), esc(c.candidate.kv_cache),
        c.size.bytes / 1048576.0, c.size.bits_per_weight, c.ppl.ppl, c.delta_ppl_percent,
        c.ppl_threshold, c.kld.mean_kld, 100 * c.kld.top1_agreement);
    for (size_t t = 0; t < b.tasks.size(); ++t) {
      h += t < c.tasks.size() ? fmt::format("<td>{:+.4f}</td>", c.tasks[t].acc - b.tasks[t].acc)
                              : std::string("<td>-</td>");
    }
    h += fmt::format("<td>{:.1f}</td><td class=\"{}\">{}</td></tr>\n", c.tokens_per_second,
                     c.passed ? "pass" : "fail", esc(verdict_text(c)));
  }
  h += "</table>\n";
  h += "<h3>ΔPPL against the gate</h3>\n" + delta_ppl_chart(r);
  h += "<h2>Per-layer quantization error</h2>\n<p>Output relative error ‖XWᵀ − Qa(X)Qᵀ‖ / "
       "‖XWᵀ‖ of each linear layer on the calibration inputs (quantize's report).</p>\n";
  h += layer_error_chart(r);
  h += "<h2>KL divergence distribution</h2>\n<p>Per-token KL(P<sub>base</sub> ‖ Q) over the "
       "evaluation text, log-spaced bins.</p>\n<div>\n";
  for (size_t i = 0; i < r.candidates.size(); ++i) h += kld_chart(r.candidates[i], i);
  h += "</div>\n";
  const CalibrationResult& k = r.calibration;
  h += fmt::format(
      "<h2>Calibration</h2>\n<p>{} samples × {} tokens from {} documents; sample "
      "fingerprint {}; activation statistics in <code>{}</code>.</p>\n",
      k.samples, k.sample_tokens, k.documents, esc(k.fingerprint), esc(k.stats_file));
  h += "<h2>Steps</h2>\n<table><tr><th>step</th><th>status</th><th>seconds</th></tr>\n";
  for (const StepRecord& s : r.steps) {
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{:.1f}</td></tr>\n", esc(s.name),
                     s.reused ? "reused" : "ran", s.seconds);
  }
  h += "</table>\n</body></html>\n";
  return h;
}

}  // namespace qforge::pipeline_internal
