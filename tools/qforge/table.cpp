// Plain-text table rendering.
#include "table.h"

#include <algorithm>
#include <cctype>

namespace qforge::cli {
namespace {

// UTF-8 aware width: counts code points, not bytes, so "±" does not skew the columns.
std::size_t display_width(const std::string& s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// A number, possibly with a unit ("36.1 GB", "-3.2e-05", "4.125"): right-aligned.
bool looks_numeric(const std::string& s) {
  if (s.empty()) return false;
  const unsigned char c = static_cast<unsigned char>(s[0]);
  const bool starts_like_number = std::isdigit(c) || s[0] == '-' || s[0] == '+' || s[0] == '.';
  return starts_like_number && std::count(s.begin(), s.end(), ' ') <= 1;
}

}  // namespace

std::string Table::render() const {
  std::vector<std::size_t> widths(header_.size(), 0);
  for (std::size_t c = 0; c < header_.size(); ++c) widths[c] = display_width(header_[c]);
  for (const auto& row : rows_) {
    for (std::size_t c = 0; c < row.size() && c < widths.size(); ++c) {
      widths[c] = std::max(widths[c], display_width(row[c]));
    }
  }
  auto render_row = [&](const std::vector<std::string>& row, bool is_header) {
    std::string line;
    for (std::size_t c = 0; c < widths.size(); ++c) {
      const std::string cell = c < row.size() ? row[c] : "";
      const std::string pad(widths[c] - display_width(cell), ' ');
      const bool right = !is_header && c > 0 && looks_numeric(cell);
      line += right ? pad + cell : cell + (c + 1 < widths.size() ? pad : "");
      if (c + 1 < widths.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    return line + "\n";
  };
  std::string out = render_row(header_, true);
  std::size_t total = 0;
  for (std::size_t w : widths) total += w;
  out += std::string(total + 2 * (widths.size() - 1), '-') + "\n";
  for (const auto& row : rows_) out += render_row(row, false);
  return out;
}

}  // namespace qforge::cli
