// compressed-tensors' quantization_config (compressed_tensors/quantization: quant_config.py
// QuantizationConfig, quant_scheme.py QuantizationScheme, quant_args.py QuantizationArgs):
// qforge algorithms -> config_groups and back, with every unsupported combination named.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "io/io_util.h"
#include "io/quant_checkpoint_internal.h"

namespace qforge::qckpt {

using nlohmann::json;

namespace {

constexpr const char* kPackQuantized = "pack-quantized";
constexpr const char* kIntQuantized = "int-quantized";
constexpr const char* kFloatQuantized = "float-quantized";
constexpr const char* kNvfp4PackQuantized = "nvfp4-pack-quantized";
constexpr const char* kMxfp4PackQuantized = "mxfp4-pack-quantized";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One QuantizationArgs object, with the fields compressed-tensors serializes.
json args(int bits, const char* type, const char* strategy, json group_size, json dynamic,
          bool symmetric = true) {
  json a = {{"num_bits", bits},         {"type", type},         {"symmetric", symmetric},
            {"group_size", group_size}, {"strategy", strategy}, {"block_structure", nullptr},
            {"dynamic", dynamic},       {"actorder", nullptr}};
  return a;
}

// What one QuantizationArgs says, after compressed-tensors' own defaulting.
struct CtArgs {
  int64_t bits = 8;
  bool is_float = false;
  bool symmetric = true;
  int64_t group_size = 0;  // > 0 for group / tensor_group strategies
  std::string strategy;    // tensor, channel, group, block, token, tensor_group, attn_head
  std::vector<int64_t> block;
  std::string dynamic = "false";  // "false", "true" or "local"

  std::string describe() const {
    std::string s = fmt::format("{}{} {}", is_float ? "float" : "int", bits, strategy);
    if (group_size > 0) s += fmt::format("({})", group_size);
    if (!block.empty()) s += fmt::format("[{}x{}]", block[0], block.size() > 1 ? block[1] : 0);
    if (dynamic != "false") s += dynamic == "true" ? " dynamic" : " dynamic=local";
    if (!symmetric) s += " asymmetric";
    return s;
  }
};

Result<CtArgs> parse_args(const json& a, std::string_view file, const std::string& path) {
  if (!a.is_object()) {
    return make_error(ErrorCode::kFormat, "{}: {} must be an object, got {}", file, path,
                      io_detail::json_type_name(a));
  }
  CtArgs out;
  QF_ASSIGN_OR_RETURN(auto bits, json_opt_int(a, "num_bits", file, path));
  out.bits = bits.value_or(8);
  if (out.bits <= 0 || out.bits > 64) {
    return make_error(ErrorCode::kFormat, "{}: {}.num_bits = {} is out of range", file, path,
                      out.bits);
  }
  QF_ASSIGN_OR_RETURN(auto type, json_opt_string(a, "type", file, path));
  const std::string t = lower(type.value_or("int"));
  if (t != "int" && t != "float") {
    return make_error(ErrorCode::kFormat, "{}: {}.type = '{}' (expected \"int\" or \"float\")",
                      file, path, io_detail::printable(*type));
  }
  out.is_float = t == "float";
  QF_ASSIGN_OR_RETURN(auto sym, json_opt_bool(a, "symmetric", file, path));
  out.symmetric = sym.value_or(true);
  QF_ASSIGN_OR_RETURN(auto gs, json_opt_int(a, "group_size", file, path));
  if (gs && (*gs == 0 || *gs < -1)) {
    return make_error(ErrorCode::kFormat,
                      "{}: {}.group_size = {} (expected > 0 for groups, -1 for channels)", file,
                      path, *gs);
  }
  QF_ASSIGN_OR_RETURN(auto strategy, json_opt_string(a, "strategy", file, path));
  if (strategy) {
    out.strategy = lower(*strategy);
    static const std::set<std::string> kStrategies = {"tensor", "channel",      "group",    "block",
                                                      "token",  "tensor_group", "attn_head"};
    if (!kStrategies.count(out.strategy)) {
      return make_error(ErrorCode::kFormat,
                        "{}: {}.strategy = '{}' is not a compressed-tensors "
                        "strategy",
                        file, path, io_detail::printable(*strategy));
    }
  } else {
    out.strategy = !gs ? "tensor" : *gs > 0 ? "group" : "channel";
  }
  if (out.strategy == "group" || out.strategy == "tensor_group") {
    if (!gs || *gs <= 0) {
      return make_error(ErrorCode::kFormat, "{}: {}: strategy {} needs a positive group_size", file,
                        path, out.strategy);
    }
    out.group_size = *gs;
  }
  auto bs = a.find("block_structure");
  if (bs != a.end() && !bs->is_null()) {
    const std::string bp = path + ".block_structure";
    if (bs->is_string()) {
      long long r = 0, c = 0;
      if (std::sscanf(bs->get<std::string>().c_str(), "%lldx%lld", &r, &c) != 2) {
        return make_error(ErrorCode::kFormat, "{}: {} = {} is not \"RxC\"", file, bp,
                          io_detail::printable(bs->get<std::string>()));
      }
      out.block = {r, c};
    } else if (bs->is_array() && bs->size() == 2) {
      for (size_t i = 0; i < 2; ++i) {
        QF_ASSIGN_OR_RETURN(int64_t v,
                            io_detail::json_to_int64((*bs)[i], file, fmt::format("{}[{}]", bp, i)));
        out.block.push_back(v);
      }
    } else {
      return make_error(ErrorCode::kFormat, "{}: {} must be [rows, cols], got {}", file, bp,
                        io_detail::json_type_name(*bs));
    }
  }
  auto dyn = a.find("dynamic");
  if (dyn != a.end() && !dyn->is_null()) {
    if (dyn->is_boolean()) {
      out.dynamic = dyn->get<bool>() ? "true" : "false";
    } else if (dyn->is_string() && lower(dyn->get<std::string>()) == "local") {
      out.dynamic = "local";
    } else {
      return make_error(ErrorCode::kFormat, "{}: {}.dynamic must be true, false or \"local\"", file,
                        path);
    }
  }
  auto act = a.find("actorder");
  if (act != a.end() && !act->is_null()) {
    const bool grouped = act->is_boolean()  ? act->get<bool>()
                         : act->is_string() ? lower(act->get<std::string>()) == "group" ||
                                                  lower(act->get<std::string>()) == "dynamic"
                                            : true;
    if (grouped) {
      return make_error(ErrorCode::kUnsupported,
                        "{}: {}.actorder = {}: activation-ordered groups (weight_g_idx) are not "
                        "supported",
                        file, path, act->dump());
    }
  }
  return out;
}

bool is_f8_static_tensor(const std::optional<CtArgs>& a) {
  return a && a->is_float && a->bits == 8 && a->strategy == "tensor" && a->dynamic == "false";
}

// The qforge algorithm of one config group and the on-disk format it implies.
Result<QuantAlgo> algo_for_group(const std::optional<CtArgs>& w, const std::optional<CtArgs>& in,
                                 std::string_view file, const std::string& path) {
  auto none = [&]() -> Error {
    return make_error(
        ErrorCode::kUnsupported,
        "{}: {}: compressed-tensors scheme ({} weights, {} activations) has no qforge "
        "algorithm",
        file, path, w ? w->describe() : std::string("no"),
        in ? in->describe() : std::string("unquantized"));
  };
  if (!w) return none();
  if (!w->is_float && w->bits == 4 && w->strategy == "group") {
    if (!in) return QuantAlgo::W4A16;
    if (is_f8_static_tensor(in) && w->symmetric) return QuantAlgo::W4A8_AWQ;
    return none();
  }
  if (!w->is_float && w->bits == 8 && w->symmetric) {
    if (w->strategy == "channel") {
      if (!in) return QuantAlgo::W8A16;
      if (!in->is_float && in->bits == 8 && in->strategy == "tensor" && in->dynamic == "false") {
        return QuantAlgo::W8A8_SQ_PER_CHANNEL;
      }
      if (!in->is_float && in->bits == 8 && in->strategy == "token" && in->dynamic == "true") {
        return QuantAlgo::W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN;
      }
    }
    if (w->strategy == "tensor" && in && !in->is_float && in->bits == 8 &&
        in->strategy == "tensor" && in->dynamic == "false") {
      return QuantAlgo::W8A8_SQ_PER_TENSOR_PLUGIN;
    }
    return none();
  }
  if (w->is_float && w->bits == 8 && w->symmetric && in && in->is_float && in->bits == 8) {
    if (w->strategy == "tensor" && is_f8_static_tensor(in)) return QuantAlgo::FP8;
    if (w->strategy == "channel" && in->strategy == "token" && in->dynamic == "true") {
      return QuantAlgo::FP8_PER_CHANNEL_PER_TOKEN;
    }
    if (w->strategy == "block" && w->block == std::vector<int64_t>{128, 128} &&
        in->strategy == "group" && in->group_size == 128 && in->dynamic == "true") {
      return QuantAlgo::FP8_BLOCK_SCALES;
    }
    return none();
  }
  if (w->is_float && w->bits == 4) {
    if (w->strategy == "tensor_group" && w->group_size == 16 && in && in->is_float &&
        in->bits == 4 && in->strategy == "tensor_group" && in->group_size == 16) {
      return QuantAlgo::NVFP4;
    }
    if (w->strategy == "group" && w->group_size == 32) {
      if (!in) return QuantAlgo::W4A16_MXFP4;
      if (is_f8_static_tensor(in)) return QuantAlgo::W4A8_MXFP4_FP8;
    }
  }
  return none();
}

// Formats whose tensors qforge reads for an algorithm (the first is what it writes).
std::vector<std::string> formats_for(QuantAlgo algo) {
  switch (algo) {
    case QuantAlgo::FP8:
    case QuantAlgo::FP8_PER_CHANNEL_PER_TOKEN:
    case QuantAlgo::FP8_BLOCK_SCALES:
      return {kFloatQuantized, "naive-quantized"};
    case QuantAlgo::W8A16:
    case QuantAlgo::W8A16_GPTQ:
      return {kPackQuantized, kIntQuantized, "naive-quantized"};
    case QuantAlgo::W8A8_SQ_PER_CHANNEL:
    case QuantAlgo::W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN:
    case QuantAlgo::W8A8_SQ_PER_TENSOR_PLUGIN:
      return {kIntQuantized, "naive-quantized", kPackQuantized};
    case QuantAlgo::W4A16:
    case QuantAlgo::W4A16_AWQ:
    case QuantAlgo::W4A16_GPTQ:
    case QuantAlgo::W4A8_AWQ:
      return {kPackQuantized};
    case QuantAlgo::NVFP4:
      return {kNvfp4PackQuantized};
    case QuantAlgo::W4A16_MXFP4:
    case QuantAlgo::W4A8_MXFP4_FP8:
      return {kMxfp4PackQuantized};
    default:
      return {};
  }
}

}  // namespace

Result<json> ct_scheme_for_algo(QuantAlgo algo, int group_size, bool has_zero_point) {
  const json null = nullptr;
  json w, in = nullptr;
  switch (algo) {
    case QuantAlgo::FP8:
      w = args(8, "float", "tensor", null, false);
      in = args(8, "float", "tensor", null, false);
      break;
    case QuantAlgo::FP8_PER_CHANNEL_PER_TOKEN:
      w = args(8, "float", "channel", null, false);
      in = args(8, "float", "token", null, true);
      break;
    case QuantAlgo::FP8_BLOCK_SCALES:
      w = args(8, "float", "block", null, false);
      w["block_structure"] = json::array({kFp8BlockTile, kFp8BlockTile});
      in = args(8, "float", "group", kFp8BlockTile, true);
      break;
    case QuantAlgo::W8A16:
    case QuantAlgo::W8A16_GPTQ:
      w = args(8, "int", "channel", null, false);
      break;
    case QuantAlgo::W8A8_SQ_PER_CHANNEL:
      w = args(8, "int", "channel", null, false);
      in = args(8, "int", "tensor", null, false);
      break;
    case QuantAlgo::W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN:
      w = args(8, "int", "channel", null, false);
      in = args(8, "int", "token", null, true);
      break;
    case QuantAlgo::W8A8_SQ_PER_TENSOR_PLUGIN:
      w = args(8, "int", "tensor", null, false);
      in = args(8, "int", "tensor", null, false);
      break;
    case QuantAlgo::W4A16:
    case QuantAlgo::W4A16_AWQ:
    case QuantAlgo::W4A16_GPTQ:
    case QuantAlgo::W4A8_AWQ:
      w = args(4, "int", "group", group_size, false, !has_zero_point);
      if (has_zero_point) w["zp_dtype"] = "torch.int8";
      if (algo == QuantAlgo::W4A8_AWQ) in = args(8, "float", "tensor", null, false);
      break;
    case QuantAlgo::NVFP4:
      w = args(4, "float", "tensor_group", BlockNvfp4::kBlockSize, false);
      w["scale_dtype"] = "torch.float8_e4m3fn";
      in = args(4, "float", "tensor_group", BlockNvfp4::kBlockSize, "local");
      in["scale_dtype"] = "torch.float8_e4m3fn";
      break;
    case QuantAlgo::W4A16_MXFP4:
    case QuantAlgo::W4A8_MXFP4_FP8:
      w = args(4, "float", "group", BlockMxfp4::kBlockSize, false);
      w["scale_dtype"] = "torch.uint8";
      if (algo == QuantAlgo::W4A8_MXFP4_FP8) in = args(8, "float", "tensor", null, false);
      break;
    default:
      return make_error(ErrorCode::kInvalidArgument,
                        "{} is not a per-layer weight algorithm (no config group)",
                        quant_algo_name(algo));
  }
  return json{{"weights", std::move(w)},
              {"input_activations", std::move(in)},
              {"output_activations", nullptr},
              {"format", formats_for(algo).front()}};
}

json ct_kv_cache_scheme(QuantAlgo kv_algo, bool per_head) {
  json a = args(8, kv_algo == QuantAlgo::INT8 ? "int" : "float", per_head ? "attn_head" : "tensor",
                nullptr, false);
  return a;
}

Status parse_ct_kv_cache_scheme(const json& kv, std::string_view file, const std::string& path,
                                QuantCheckpointInfo& info) {
  QF_ASSIGN_OR_RETURN(CtArgs a, parse_args(kv, file, path));
  if (a.bits != 8 || a.dynamic != "false" || !a.symmetric ||
      (a.strategy != "tensor" && a.strategy != "attn_head")) {
    return make_error(ErrorCode::kUnsupported,
                      "{}: {} ({}): qforge's KV cache is static symmetric FP8 or INT8 with one "
                      "scale per layer (tensor) or per KV head (attn_head)",
                      file, path, a.describe());
  }
  info.kv_cache_quant_algo = a.is_float ? QuantAlgo::FP8 : QuantAlgo::INT8;
  info.kv_cache_per_head = a.strategy == "attn_head";
  return ok_status();
}

Result<json> make_ct_quantization_config(const QuantCheckpointInfo& info) {
  QF_TRY(validate_info(info));
  json qc = json::object();
  QF_ASSIGN_OR_RETURN(json groups, make_config_groups(info));
  std::set<std::string> formats;
  for (auto it = groups.begin(); it != groups.end(); ++it) {
    formats.insert((*it)["format"].get<std::string>());
  }
  qc["config_groups"] = std::move(groups);
  qc["format"] = formats.empty()       ? std::string("dense")
                 : formats.size() == 1 ? *formats.begin()
                                       : std::string("mixed-precision");
  qc["global_compression_ratio"] = nullptr;
  qc["ignore"] = info.exclude_modules;
  qc["kv_cache_scheme"] =
      info.kv_cache_quant_algo == QuantAlgo::NO_QUANT
          ? json(nullptr)
          : ct_kv_cache_scheme(info.kv_cache_quant_algo, info.kv_cache_per_head);
  qc["quant_method"] = "compressed-tensors";
  qc["quantization_status"] = "compressed";
  // Extra keys compressed-tensors ignores (its QuantizationConfig has extra="ignore"), in
  // ModelOpt's spelling: they keep the TensorRT-LLM algorithm (W4A16_AWQ vs W4A16_GPTQ, which
  // store the same tensors) across a round trip.
  if (info.quant_algo != QuantAlgo::NO_QUANT) qc["quant_algo"] = algo_to_text(info.quant_algo);
  if (!info.layer_algos.empty()) {
    json layers = json::object();
    for (const auto& [m, a] : info.layer_algos) layers[m] = json{{"quant_algo", algo_to_text(a)}};
    qc["quantized_layers"] = std::move(layers);
  }
  return qc;
}

Result<QuantCheckpointInfo> parse_ct_quantization_config(const json& qc, std::string_view file,
                                                         const std::string& path) {
  QuantCheckpointInfo info;
  info.format = QuantExportFormat::kCompressedTensors;
  info.producer_name.clear();
  info.producer_version.clear();
  QF_ASSIGN_OR_RETURN(auto top_format, json_opt_string(qc, "format", file, path));
  QF_ASSIGN_OR_RETURN(info.exclude_modules, json_opt_strings(qc, "ignore", file, path));
  QF_ASSIGN_OR_RETURN(const json* kv, json_opt_object(qc, "kv_cache_scheme", file, path));
  if (kv) QF_TRY(parse_ct_kv_cache_scheme(*kv, file, path + ".kv_cache_scheme", info));
  // Hints qforge (and ModelOpt's config.json) write; they refine, never contradict, the groups.
  std::optional<QuantAlgo> hint;
  QF_ASSIGN_OR_RETURN(auto hint_text, json_opt_string(qc, "quant_algo", file, path));
  if (hint_text) {
    QF_ASSIGN_OR_RETURN(hint, algo_from_text(*hint_text, file, path + ".quant_algo"));
  }
  QF_ASSIGN_OR_RETURN(const json* layer_hints, json_opt_object(qc, "quantized_layers", file, path));
  QF_ASSIGN_OR_RETURN(const json* groups, json_opt_object(qc, "config_groups", file, path));
  if (groups == nullptr || groups->empty()) {
    if (!kv) {
      return make_error(ErrorCode::kFormat, "{}: {}.config_groups is missing or empty", file, path);
    }
    return info;  // KV cache only
  }
  std::optional<int64_t> int4_group;
  std::optional<bool> int4_asym;
  std::optional<QuantAlgo> uniform;
  bool by_name = false;
  for (auto it = groups->begin(); it != groups->end(); ++it) {
    const std::string gp = path + ".config_groups." + it.key();
    if (!it->is_object()) {
      return make_error(ErrorCode::kUnsupported,
                        "{}: {} is a preset reference ({}); qforge needs explicit weights / "
                        "input_activations",
                        file, gp, io_detail::json_type_name(*it));
    }
    std::optional<CtArgs> w, in;
    QF_ASSIGN_OR_RETURN(const json* wj, json_opt_object(*it, "weights", file, gp));
    if (wj) {
      QF_ASSIGN_OR_RETURN(w, parse_args(*wj, file, gp + ".weights"));
    }
    QF_ASSIGN_OR_RETURN(const json* ij, json_opt_object(*it, "input_activations", file, gp));
    if (ij) {
      QF_ASSIGN_OR_RETURN(in, parse_args(*ij, file, gp + ".input_activations"));
    }
    QF_ASSIGN_OR_RETURN(const json* oj, json_opt_object(*it, "output_activations", file, gp));
    if (oj) {
      return make_error(ErrorCode::kUnsupported,
                        "{}: {}.output_activations: output quantization is not supported", file,
                        gp);
    }
    QF_ASSIGN_OR_RETURN(QuantAlgo algo, algo_for_group(w, in, file, gp));
    QF_ASSIGN_OR_RETURN(auto gformat, json_opt_string(*it, "format", file, gp));
    const std::string f = gformat.value_or(top_format.value_or(""));
    const auto ok_formats = formats_for(algo);
    if (std::find(ok_formats.begin(), ok_formats.end(), f) == ok_formats.end()) {
      return make_error(ErrorCode::kUnsupported,
                        "{}: {}: format '{}' for {} weights; qforge reads {} (weights stored "
                        "compressed)",
                        file, gp, io_detail::printable(f), w->describe(),
                        fmt::join(ok_formats, ", "));
    }
    if (algo_is_int4(algo)) {
      if ((int4_group && *int4_group != w->group_size) ||
          (int4_asym && *int4_asym == w->symmetric)) {
        return make_error(ErrorCode::kUnsupported,
                          "{}: {}: INT4 groups differ from another config group's ({}); qforge "
                          "keeps one INT4 group size and zero-point setting per checkpoint",
                          file, gp, w->describe());
      }
      int4_group = w->group_size;
      int4_asym = !w->symmetric;
    }
    QF_ASSIGN_OR_RETURN(std::vector<std::string> targets,
                        json_opt_strings(*it, "targets", file, gp));
    if (targets.empty()) {
      return make_error(ErrorCode::kFormat, "{}: {}.targets is missing or empty", file, gp);
    }
    for (const auto& t : targets) {
      if (t.rfind("re:", 0) == 0) {
        return make_error(ErrorCode::kUnsupported,
                          "{}: {}.targets has the regex '{}'; qforge maps module names or the "
                          "Linear class only",
                          file, gp, io_detail::printable(t));
      }
      const bool is_class = t.find('.') == std::string::npos && t != "lm_head";
      if (is_class) {
        if (uniform || by_name) {
          return make_error(ErrorCode::kUnsupported,
                            "{}: {}: several config groups target layer classes ('{}'); qforge "
                            "needs one class-wide group or module-name targets",
                            file, gp, io_detail::printable(t));
        }
        uniform = algo;
        continue;
      }
      by_name = true;
      if (uniform) {
        return make_error(ErrorCode::kUnsupported,
                          "{}: {}: mixes class targets and module-name targets", file, gp);
      }
      QuantAlgo layer_algo = algo;
      if (layer_hints) {
        auto h = layer_hints->find(t);
        if (h != layer_hints->end() && h->is_object() && h->contains("quant_algo") &&
            (*h)["quant_algo"].is_string()) {
          auto ha = algo_from_text((*h)["quant_algo"].get<std::string>(), file,
                                   path + ".quantized_layers." + t + ".quant_algo");
          if (ha.ok() && same_storage(*ha, algo)) layer_algo = *ha;
        }
      }
      if (!info.layer_algos.emplace(t, layer_algo).second) {
        return make_error(ErrorCode::kFormat, "{}: module '{}' is targeted by two config groups",
                          file, io_detail::printable(t));
      }
    }
  }
  if (uniform) {
    info.quant_algo = hint && same_storage(*hint, *uniform) ? *hint : *uniform;
  } else {
    std::set<QuantAlgo> distinct;
    for (const auto& [m, a] : info.layer_algos) distinct.insert(a);
    info.quant_algo = distinct.size() == 1 && !(hint && *hint == QuantAlgo::MIXED_PRECISION)
                          ? *distinct.begin()
                          : QuantAlgo::MIXED_PRECISION;
  }
  if (int4_group) {
    QF_TRY(check_group_size(*int4_group, file, path + ".config_groups.*.weights.group_size"));
    info.group_size = static_cast<int>(*int4_group);
    info.has_zero_point = int4_asym.value_or(false);
  }
  return info;
}

}  // namespace qforge::qckpt
