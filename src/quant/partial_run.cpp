// Interrupted-run state of `qforge quantize` (partial_run.h).
#include "quant/partial_run.h"

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "qforge/core/mmap_file.h"

namespace qforge::quant_internal {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Status write_atomic(const fs::path& path, std::span<const std::byte> bytes) {
  QF_ASSIGN_OR_RETURN(AtomicFileWriter w, AtomicFileWriter::create(path));
  QF_TRY(w.write(bytes));
  return w.commit();
}

json floats_json(const std::vector<std::vector<float>>& v) {
  json a = json::array();
  for (const auto& row : v) a.push_back(row);
  return a;
}

}  // namespace

Status save_partial_state(const fs::path& dir, const PartialState& s) {
  json j;
  j["fingerprint"] = s.fingerprint;
  j["next_block"] = s.next_block;
  json reports = json::array();
  for (const auto& r : s.reports) {
    reports.push_back({{"module", r.module},
                       {"format", r.format},
                       {"algorithm", r.algorithm},
                       {"weight_rel_error", r.weight_rel_error},
                       {"output_rel_error", r.output_rel_error},
                       {"input_scale", r.input_scale}});
  }
  j["reports"] = std::move(reports);
  j["plan"] = s.plan;
  j["plan_table"] = s.plan_table;
  j["k_amax"] = floats_json(s.k_amax);
  j["v_amax"] = floats_json(s.v_amax);
  const std::string text = j.dump(1);
  return write_atomic(dir / kStateFile, std::as_bytes(std::span(text.data(), text.size())));
}

Result<PartialState> load_partial_state(const fs::path& dir) {
  const fs::path path = dir / kStateFile;
  // MmapFile, not ifstream: a FIFO or device in place of the state file is refused at once.
  auto file = MmapFile::open(path);
  if (!file.ok()) {
    return make_error(file.error().code(), "{} (not a qforge partial run?)",
                      file.error().message());
  }
  const std::string_view text(reinterpret_cast<const char*>(file->data()), file->size());
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(ErrorCode::kFormat, "{} is not valid JSON", path.string());
  }
  try {
    PartialState s;
    s.fingerprint = j.at("fingerprint").get<std::string>();
    s.next_block = j.at("next_block").get<int64_t>();
    for (const auto& r : j.at("reports")) {
      LayerQuantReport rep;
      rep.module = r.at("module").get<std::string>();
      rep.format = r.at("format").get<std::string>();
      rep.algorithm = r.at("algorithm").get<std::string>();
      rep.weight_rel_error = r.at("weight_rel_error").get<double>();
      rep.output_rel_error = r.at("output_rel_error").get<double>();
      rep.input_scale = r.at("input_scale").get<float>();
      s.reports.push_back(std::move(rep));
    }
    s.plan = j.at("plan").get<std::map<std::string, std::string>>();
    s.plan_table = j.at("plan_table").get<std::string>();
    s.k_amax = j.at("k_amax").get<std::vector<std::vector<float>>>();
    s.v_amax = j.at("v_amax").get<std::vector<std::vector<float>>>();
    if (s.next_block < 0) throw std::runtime_error("negative next_block");
    return s;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kFormat, "{}: {}", path.string(), e.what());
  }
}

Status save_hidden(const fs::path& dir, const std::vector<float>& hidden) {
  return write_atomic(dir / kHiddenFile, std::as_bytes(std::span(hidden)));
}

Result<std::vector<float>> load_hidden(const fs::path& dir, size_t count) {
  const fs::path path = dir / kHiddenFile;
  QF_ASSIGN_OR_RETURN(MmapFile file, MmapFile::open(path));
  if (file.size() != count * sizeof(float)) {
    return make_error(ErrorCode::kFormat, "{} holds {} bytes; expected {}", path.string(),
                      file.size(), count * sizeof(float));
  }
  std::vector<float> v(count);
  std::memcpy(v.data(), file.data(), file.size());
  return v;
}

std::string fingerprint_parts(const std::vector<std::string>& parts) {
  uint64_t h = 0xcbf29ce484222325ULL;
  const auto mix = [&h](const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 0x100000001b3ULL;
    }
  };
  for (const auto& part : parts) {
    const uint64_t n = part.size();
    mix(&n, sizeof(n));
    mix(part.data(), part.size());
  }
  return fmt::format("{:016x}", h);
}

}  // namespace qforge::quant_internal
