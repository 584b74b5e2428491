// Plain-text table rendering for CLI output: left-aligned first column, right-aligned numbers.
#pragma once

#include <string>
#include <vector>

namespace qforge::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add_row(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Columns separated by two spaces, a dashed rule under the header, one line per row.
  std::string render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace qforge::cli
