// export_hf_checkpoint / `qforge convert`: llama2.c (fp32 and int8 ak42) and GGUF (F32/F16/BF16/
// Q8_0/Q4_0/Q4_1) models written as HF checkpoints run like their sources (logits, greedy ids),
// bytes match SafetensorsWriter, tokenizers are copied, and failures leave nothing behind.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/gguf_test_util.h"
#include "model/model_test_util.h"
#include "qforge/core/log.h"
#include "qforge/formats/scalar.h"
#include "qforge/io/gguf.h"
#include "qforge/io/hf_export.h"
#include "qforge/io/model_loader.h"
#include "qforge/io/safetensors.h"
#include "qforge/tokenizer/tokenizer.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

fs::path stories_dir() {
  return test::shared_dir() / "models" / "stories260K";
}

// A fresh directory under the system temp dir, removed when the object dies.
class Scratch {
 public:
  Scratch() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("qforge_hf_export_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~Scratch() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<char> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    d = std::max(d, std::fabs(double(a[i]) - b[i]));
  }
  return d;
}

const std::vector<int32_t> kIds = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};

LoadedModel load_or_fail(const fs::path& path) {
  auto m = load_model(path.string());
  EXPECT_TRUE(m.ok()) << m.error().to_string();
  return m.ok() ? std::move(*m) : LoadedModel{};
}

// Captures log lines while alive.
class LogCapture {
 public:
  LogCapture() {
    previous_ = set_log_sink([this](LogLevel, std::string_view line) { text_ += line; });
  }
  ~LogCapture() { set_log_sink(previous_); }
  const std::string& text() const { return text_; }

 private:
  LogSink previous_;
  std::string text_;
};

TEST(HfExport, RopeRowPermutationMatchesConvertLlamaWeightsToHf) {
  // 2 heads of head_dim 4, one column: row r holds r. permute() maps pairs (2i, 2i+1) to
  // (i, i + 2) within each head.
  std::vector<float> w = {0, 1, 2, 3, 4, 5, 6, 7};
  auto view = TensorView::make(w.data(), DType::F32, Shape{8, 1});
  ASSERT_TRUE(view.ok());
  auto out = rope_rows_interleaved_to_half_split(*view, 2);
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  const float* o = out->data_as<float>();
  EXPECT_EQ(std::vector<float>(o, o + 8), (std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}));
  // A 1-D bias and a 16-bit dtype permute the same way.
  std::vector<uint16_t> b = {10, 11, 12, 13, 14, 15};
  auto bias = TensorView::make(b.data(), DType::BF16, Shape{6});
  auto permuted = rope_rows_interleaved_to_half_split(*bias, 1);
  ASSERT_TRUE(permuted.ok());
  const uint16_t* p = permuted->data_as<uint16_t>();
  EXPECT_EQ(std::vector<uint16_t>(p, p + 6), (std::vector<uint16_t>{10, 12, 14, 11, 13, 15}));
  // Heads that do not split evenly are an error naming the shape.
  auto bad = rope_rows_interleaved_to_half_split(*view, 3);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("[8, 1]"), std::string::npos) << bad.error().message();
  EXPECT_FALSE(rope_rows_interleaved_to_half_split(*bias, 2).ok());  // head_dim 3 is odd
}

TEST(HfExport, TokenizerSearchOrderBesideTheSource) {
  Scratch s;
  auto touch = [&](const char* name) { std::ofstream(s / name) << "x"; };
  EXPECT_TRUE(find_tokenizer_beside(s / "model.bin").empty());
  touch("tok9.bin");
  touch("tok1.bin");
  EXPECT_EQ(find_tokenizer_beside(s / "model.bin"), s / "tok1.bin");
  touch("tokenizer.bin");
  EXPECT_EQ(find_tokenizer_beside(s / "model.bin"), s / "tokenizer.bin");
  touch("tok512.model");
  EXPECT_EQ(find_tokenizer_beside(s / "model.bin"), s / "tok512.model");
  touch("tokenizer.json");
  EXPECT_EQ(find_tokenizer_beside(s / "model.bin"), s / "tokenizer.json");
  touch("tokenizer.model");
  EXPECT_EQ(find_tokenizer_beside(s / "model.bin"), s / "tokenizer.model");
  // A directory source is searched itself.
  EXPECT_EQ(find_tokenizer_beside(s.path()), s / "tokenizer.model");
}

// The immediate use: stories260K (llama2.c fp32) as an F32 HF directory runs like the original.
TEST(HfExport, Stories260KF32MatchesTheLlama2cOriginal) {
  const fs::path bin = stories_dir() / "stories260K.bin";
  QF_REQUIRE_SHARED(bin);
  const LoadedModel source = load_or_fail(bin);
  ASSERT_EQ(source.config.rope_layout, RopeLayout::Interleaved);
  Scratch s;
  const fs::path out = s / "hf";
  HfExportReport report;
  auto st = export_hf_checkpoint(source, out, {}, &report);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  EXPECT_EQ(entries(out),
            (std::vector<std::string>{"config.json", "model.safetensors", "tokenizer.model"}));
  EXPECT_EQ(entries(s.path()), std::vector<std::string>{"hf"});  // no temp dir left
  EXPECT_TRUE(report.permuted_qk);
  EXPECT_EQ(report.tokenizer_source, stories_dir() / "tok512.model");
  EXPECT_EQ(report.n_tensors, static_cast<int64_t>(source.weights.tensors().size()));

  // Logits and greedy ids of the converted model equal the llama2.c file's.
  auto converted = test::load_or_die(out.string());
  auto original = test::load_or_die(bin.string());
  ASSERT_NE(converted, nullptr);
  ASSERT_NE(original, nullptr);
  EXPECT_EQ(converted->format(), "hf-safetensors");
  EXPECT_EQ(converted->config().rope_layout, RopeLayout::HalfSplit);
  EXPECT_EQ(converted->config().torch_dtype, DType::F32);
  EXPECT_TRUE(converted->config().tie_word_embeddings);
  const double diff =
      max_abs_diff(test::all_logits(original, kIds), test::all_logits(converted, kIds));
  EXPECT_LT(diff, 1e-4);
  RecordProperty("max_abs_logit_diff", std::to_string(diff));
  const auto ref = test::read_json(stories_dir() / "reference_greedy.json");
  const auto want = ref["all_ids"].get<std::vector<int32_t>>();
  EXPECT_EQ(test::greedy(converted, ref["prompt_ids_with_bos"].get<std::vector<int32_t>>(),
                         static_cast<int64_t>(want.size())),
            want);

  // Tied embeddings stay tied: no lm_head tensor. The file is byte for byte what
  // SafetensorsWriter writes for the same (permuted) tensors.
  auto file = SafetensorsFile::open(out / "model.safetensors");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->find("lm_head.weight"), nullptr);
  SafetensorsWriter writer;
  writer.set_metadata("format", "pt");
  std::vector<Tensor> keep;
  for (const auto& [name, view] : source.weights.tensors()) {
    const bool q = name.find("q_proj.weight") != std::string::npos;
    const bool k = name.find("k_proj.weight") != std::string::npos;
    if (q || k) {
      auto rows = rope_rows_interleaved_to_half_split(
          view, q ? source.config.num_attention_heads : source.config.num_key_value_heads);
      ASSERT_TRUE(rows.ok());
      keep.push_back(*rows);
      ASSERT_TRUE(writer.add(name, rows->view()).ok());
    } else {
      ASSERT_TRUE(writer.add(name, view).ok());
    }
  }
  auto bytes = writer.serialize();
  ASSERT_TRUE(bytes.ok());
  const std::vector<char> written = read_all(out / "model.safetensors");
  ASSERT_EQ(written.size(), bytes->size());
  EXPECT_EQ(0, std::memcmp(written.data(), bytes->data(), written.size()));

  // The copied tokenizer loads from the directory and encodes like the original file.
  auto tok = load_tokenizer(out.string());
  ASSERT_TRUE(tok.ok()) << tok.error().to_string();
  EXPECT_EQ((*tok)->kind(), "sentencepiece");
  auto orig_tok = load_tokenizer((stories_dir() / "tok512.model").string());
  ASSERT_TRUE(orig_tok.ok());
  EXPECT_EQ(*(*tok)->encode("Once upon a time, a little girl", true),
            *(*orig_tok)->encode("Once upon a time, a little girl", true));
}

// The int8 "ak42" export (stories260K_q80_gs4.bin) is dequantized on load; its F32 export runs
// like it.
TEST(HfExport, Llama2cInt8ExportConvertsToTheSameLogits) {
  const fs::path bin = stories_dir() / "stories260K_q80_gs4.bin";
  QF_REQUIRE_SHARED(bin);
  const LoadedModel source = load_or_fail(bin);
  ASSERT_EQ(source.format, "llama2c-q80");
  Scratch s;
  auto st = export_hf_checkpoint(source, s / "hf", {});
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  auto converted = test::load_or_die((s / "hf").string());
  auto original = test::load_or_die(bin.string());
  ASSERT_NE(converted, nullptr);
  const double diff =
      max_abs_diff(test::all_logits(original, kIds), test::all_logits(converted, kIds));
  EXPECT_LT(diff, 1e-4);
  RecordProperty("max_abs_logit_diff", std::to_string(diff));
}

// BF16 and F16 exports hold the source values rounded to nearest even and still run.
TEST(HfExport, Bf16AndF16ExportsLoadWithRoundedWeights) {
  const fs::path bin = stories_dir() / "stories260K.bin";
  QF_REQUIRE_SHARED(bin);
  const LoadedModel source = load_or_fail(bin);
  auto original = test::load_or_die(bin.string());
  const auto ref_logits = test::all_logits(original, kIds);
  for (DType dtype : {DType::BF16, DType::F16}) {
    Scratch s;
    HfExportOptions o;
    o.dtype = dtype;
    auto st = export_hf_checkpoint(source, s / "hf", o);
    ASSERT_TRUE(st.ok()) << st.error().to_string();
    const LoadedModel back = load_or_fail(s / "hf");
    EXPECT_EQ(back.config.torch_dtype, dtype);
    for (const auto& [name, view] : source.weights.tensors()) {
      auto got = back.weights.get(name);
      ASSERT_TRUE(got.ok()) << name;
      ASSERT_EQ(got->dtype(), dtype) << name;
      if (name.find("q_proj") != std::string::npos || name.find("k_proj") != std::string::npos) {
        continue;  // permuted: checked through the logits
      }
      const float* x = view.data_as<const float>();
      const uint16_t* c = got->data_as<const uint16_t>();
      for (int64_t i = 0; i < view.numel(); ++i) {
        const uint16_t want = dtype == DType::BF16 ? float_to_bf16(x[i]) : float_to_f16(x[i]);
        ASSERT_EQ(c[i], want) << name << " element " << i;
      }
    }
    auto converted = test::load_or_die((s / "hf").string());
    ASSERT_NE(converted, nullptr);
    const double diff = max_abs_diff(ref_logits, test::all_logits(converted, kIds));
    // Rounding the weights moves the logits a little (measured: bf16 0.093, f16 0.017).
    EXPECT_LT(diff, dtype == DType::BF16 ? 0.25 : 0.05) << dtype_name(dtype);
    EXPECT_GT(diff, 0.0) << dtype_name(dtype);
    RecordProperty(std::string("max_abs_logit_diff_") + std::string(dtype_name(dtype)),
                   std::to_string(diff));
  }
}

// stories260K written as a llama GGUF with every block type qforge reads; the F32 HF export of
// the GGUF model runs like the GGUF model and holds exactly its dequantized weights.
TEST(HfExport, GgufWithQuantizedWeightsRoundTrips) {
  const fs::path bin = stories_dir() / "stories260K.bin";
  QF_REQUIRE_SHARED(bin);
  const LoadedModel ref = load_or_fail(bin);
  GgufWriter w;
  testing_io::set_stories260k_gguf_metadata(w);
  for (const auto& [name, view] : ref.weights.tensors()) {
    const float* x = view.data_as<const float>();
    std::span<const float> xs(x, static_cast<size_t>(view.numel()));
    std::vector<uint8_t> bytes;
    auto put = [&](const void* p, size_t n) {
      bytes.assign(static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    };
    std::vector<uint16_t> h;
    uint32_t type = 0;
    if (view.ndim() == 1) {
      put(x, xs.size() * 4);  // F32 norms
    } else if (name.find("embed") != std::string::npos) {
      type = 1;  // F16
      for (float v : xs) h.push_back(float_to_f16(v));
      put(h.data(), h.size() * 2);
    } else if (name.find("self_attn") != std::string::npos) {
      type = 8;  // Q8_0
      auto q = quantize_q8_0(xs);
      put(q.data(), q.size() * sizeof(BlockQ8_0));
    } else if (name.find("down_proj") != std::string::npos) {
      type = 30;  // BF16
      for (float v : xs) h.push_back(float_to_bf16(v));
      put(h.data(), h.size() * 2);
    } else if (name.find("up_proj") != std::string::npos) {
      type = 3;  // Q4_1
      auto q = quantize_q4_1(xs);
      put(q.data(), q.size() * sizeof(BlockQ4_1));
    } else {
      type = 2;  // Q4_0
      auto q = quantize_q4_0(xs);
      put(q.data(), q.size() * sizeof(BlockQ4_0));
    }
    ASSERT_TRUE(w.add_tensor(hf_to_gguf_tensor_name(name), type, view.shape(),
                             std::as_bytes(std::span<const uint8_t>(bytes)))
                    .ok())
        << name;
  }
  Scratch s;
  const fs::path gguf = s / "stories.gguf";
  ASSERT_TRUE(w.write(gguf).ok());
  const LoadedModel g = load_or_fail(gguf);
  ASSERT_EQ(g.format, "gguf");
  ASSERT_EQ(g.config.rope_layout, RopeLayout::Interleaved);

  // No tokenizer beside the GGUF: a warning, and none in the checkpoint.
  {
    LogCapture log;
    auto st = export_hf_checkpoint(g, s / "hf", {});
    ASSERT_TRUE(st.ok()) << st.error().to_string();
    EXPECT_NE(log.text().find("no tokenizer found beside"), std::string::npos) << log.text();
  }
  EXPECT_EQ(entries(s / "hf"), (std::vector<std::string>{"config.json", "model.safetensors"}));

  auto from_gguf = test::load_or_die(gguf.string());
  auto converted = test::load_or_die((s / "hf").string());
  ASSERT_NE(from_gguf, nullptr);
  ASSERT_NE(converted, nullptr);
  const double diff =
      max_abs_diff(test::all_logits(from_gguf, kIds), test::all_logits(converted, kIds));
  EXPECT_LT(diff, 1e-4);
  RecordProperty("max_abs_logit_diff", std::to_string(diff));
  // Weights that need no permutation are the GGUF's dequantized (or widened) values exactly.
  const LoadedModel hf = load_or_fail(s / "hf");
  for (const auto& [name, view] : g.weights.tensors()) {
    if (name.find("q_proj") != std::string::npos || name.find("k_proj") != std::string::npos) {
      continue;
    }
    auto got = hf.weights.get(name);
    ASSERT_TRUE(got.ok()) << name;
    ASSERT_EQ(got->dtype(), DType::F32);
    for (int64_t i = 0; i < view.numel(); ++i) {
      float want = 0;
      if (view.dtype() == DType::F32) want = view.data_as<const float>()[i];
      if (view.dtype() == DType::F16) want = f16_to_float(view.data_as<const uint16_t>()[i]);
      if (view.dtype() == DType::BF16) want = bf16_to_float(view.data_as<const uint16_t>()[i]);
      ASSERT_EQ(got->data_as<const float>()[i], want) << name << " element " << i;
    }
  }

  // An explicit tokenizer is copied.
  HfExportOptions o;
  o.tokenizer_path = (stories_dir() / "tok512.model").string();
  ASSERT_TRUE(export_hf_checkpoint(g, s / "hf-tok", o).ok());
  EXPECT_TRUE(load_tokenizer((s / "hf-tok").string()).ok());
}

// An HF source (llama-mix-16m: sharded BF16, untied lm_head, HalfSplit) re-exported as BF16
// keeps every tensor's bytes, writes lm_head, and brings its tokenizer files along.
TEST(HfExport, HfDirectoryReexportKeepsTensorsAndSidecars) {
  const fs::path src = test::shared_dir() / "models" / "llama-mix-16m";
  QF_REQUIRE_SHARED(src);
  const LoadedModel source = load_or_fail(src);
  ASSERT_FALSE(source.config.tie_word_embeddings);
  Scratch s;
  HfExportOptions o;
  o.dtype = DType::BF16;
  HfExportReport report;
  auto st = export_hf_checkpoint(source, s / "hf", o, &report);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  EXPECT_FALSE(report.permuted_qk);
  EXPECT_EQ(entries(s / "hf"),
            (std::vector<std::string>{"config.json", "generation_config.json", "model.safetensors",
                                      "tokenizer.model", "tokenizer_config.json"}));
  const LoadedModel back = load_or_fail(s / "hf");
  ASSERT_EQ(back.weights.tensors().size(), source.weights.tensors().size());
  EXPECT_TRUE(back.weights.contains("lm_head.weight"));
  for (const auto& [name, view] : source.weights.tensors()) {
    auto got = back.weights.get(name);
    ASSERT_TRUE(got.ok()) << name;
    ASSERT_EQ(got->dtype(), view.dtype()) << name;
    ASSERT_EQ(got->nbytes(), view.nbytes()) << name;
    EXPECT_EQ(0, std::memcmp(got->data(), view.data(), view.nbytes())) << name;
  }
}

TEST(HfExport, LargeCheckpointsAreShardedWithAnIndex) {
  const fs::path bin = stories_dir() / "stories260K.bin";
  QF_REQUIRE_SHARED(bin);
  const LoadedModel source = load_or_fail(bin);
  Scratch s;
  HfExportOptions o;
  o.max_shard_bytes = 300'000;  // stories260K is ~1 MB of F32
  HfExportReport report;
  auto st = export_hf_checkpoint(source, s / "hf", o, &report);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  const auto names = entries(s / "hf");
  EXPECT_NE(std::find(names.begin(), names.end(), "model.safetensors.index.json"), names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "model.safetensors"), names.end());
  int shards = 0;
  for (const auto& n : names) {
    if (n.rfind("model-", 0) == 0) {
      ++shards;
      auto f = SafetensorsFile::open(s / "hf" / n);
      ASSERT_TRUE(f.ok()) << f.error().to_string();
      // One oversized tensor may fill a shard alone; otherwise shards stay under the limit.
      EXPECT_TRUE(f->tensors().size() == 1 || f->file_bytes() < o.max_shard_bytes + 8192) << n;
    }
  }
  EXPECT_GE(shards, 3);
  auto converted = test::load_or_die((s / "hf").string());
  auto original = test::load_or_die(bin.string());
  ASSERT_NE(converted, nullptr);
  EXPECT_LT(max_abs_diff(test::all_logits(original, kIds), test::all_logits(converted, kIds)),
            1e-4);
}

TEST(HfExport, LlamaCTokenizerBinIsCopiedAsTokenizerBin) {
  const fs::path bin = stories_dir() / "stories260K.bin";
  QF_REQUIRE_SHARED(bin);
  const LoadedModel source = load_or_fail(bin);
  Scratch s;
  HfExportOptions o;
  o.tokenizer_path = (stories_dir() / "tok512.bin").string();
  ASSERT_TRUE(export_hf_checkpoint(source, s / "hf", o).ok());
  EXPECT_TRUE(fs::exists(s / "hf" / "tokenizer.bin"));
  auto tok = load_tokenizer((s / "hf").string());
  ASSERT_TRUE(tok.ok()) << tok.error().to_string();
  EXPECT_EQ((*tok)->kind(), "llama2c");
  EXPECT_EQ((*tok)->vocab_size(), 512);
}

TEST(HfExport, ExistingOutputIsRefusedUnlessOverwrite) {
  const fs::path bin = stories_dir() / "stories260K.bin";
  QF_REQUIRE_SHARED(bin);
  const LoadedModel source = load_or_fail(bin);
  Scratch s;
  const fs::path out = s / "hf";
  fs::create_directories(out);
  std::ofstream(out / "keep.txt") << "mine";
  auto st = export_hf_checkpoint(source, out, {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.error().message().find("already exists"), std::string::npos);
  EXPECT_EQ(entries(out), std::vector<std::string>{"keep.txt"});  // untouched
  EXPECT_EQ(entries(s.path()), std::vector<std::string>{"hf"});   // no temp dir

  // An existing empty directory is simply filled.
  fs::create_directories(s / "empty");
  ASSERT_TRUE(export_hf_checkpoint(source, s / "empty", {}).ok());
  EXPECT_TRUE(fs::exists(s / "empty" / "model.safetensors"));

  HfExportOptions o;
  o.overwrite = true;
  st = export_hf_checkpoint(source, out, o);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  EXPECT_FALSE(fs::exists(out / "keep.txt"));
  EXPECT_TRUE(load_model(out.string()).ok());
  EXPECT_EQ(entries(s.path()), (std::vector<std::string>{"empty", "hf"}));  // old copy removed

  // A directory holding the source is never replaced, even with overwrite.
  const LoadedModel hf = load_or_fail(out);
  st = export_hf_checkpoint(hf, out, o);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("is the input"), std::string::npos) << st.error().message();
  EXPECT_NE(st.error().message().find("would destroy or alter an input"), std::string::npos);
  EXPECT_TRUE(load_model(out.string()).ok());
}

TEST(HfExport, UnwritableOutputFailsAndLeavesNothing) {
  const fs::path bin = stories_dir() / "stories260K.bin";
  QF_REQUIRE_SHARED(bin);
  const LoadedModel source = load_or_fail(bin);
  Scratch s;
  // The parent is a regular file: nothing can be created under it (root included).
  std::ofstream(s / "file") << "x";
  auto st = export_hf_checkpoint(source, s / "file" / "hf", {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kIo);
  EXPECT_NE(st.error().message().find("file"), std::string::npos) << st.error().message();
  // Output path that is itself a file.
  st = export_hf_checkpoint(source, s / "file", {});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("not a directory"), std::string::npos);
  // A read-only parent (permissions do not bind root, so only checked for other users).
  if (::geteuid() != 0) {
    fs::create_directories(s / "ro");
    fs::permissions(s / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    st = export_hf_checkpoint(source, s / "ro" / "hf", {});
    EXPECT_FALSE(st.ok());
    fs::permissions(s / "ro", fs::perms::owner_all);
    EXPECT_TRUE(entries(s / "ro").empty());
  }
  std::vector<std::string> want = {"file"};  // and no temp directory
  if (::geteuid() != 0) want.push_back("ro");
  EXPECT_EQ(entries(s.path()), want);
}

// A failure half way (an f16 overflow in the last tensor) removes the temp directory and leaves
// no output.
TEST(HfExport, FailureMidwayLeavesNoOutput) {
  const fs::path bin = stories_dir() / "stories260K.bin";
  QF_REQUIRE_SHARED(bin);
  LoadedModel source = load_or_fail(bin);
  LoadedModel edited;
  edited.config = source.config;
  edited.format = source.format;
  edited.weights.set_source(source.weights.source());
  for (const auto& [name, view] : source.weights.tensors()) {
    auto copy = Tensor::copy_of(view);
    ASSERT_TRUE(copy.ok());
    if (name == "model.norm.weight") copy->data_as<float>()[3] = 1e6f;
    ASSERT_TRUE(edited.weights.add(name, copy->view(), copy->storage()).ok());
  }
  Scratch s;
  HfExportOptions o;
  o.dtype = DType::F16;
  auto st = export_hf_checkpoint(edited, s / "hf", o);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().to_string().find("'model.norm.weight' element 3"), std::string::npos)
      << st.error().to_string();
  EXPECT_TRUE(entries(s.path()).empty());
  o.dtype = DType::BF16;  // in range for bf16
  EXPECT_TRUE(export_hf_checkpoint(edited, s / "hf", o).ok());
}

TEST(HfExport, BadTokenizersAreErrors) {
  const fs::path bin = stories_dir() / "stories260K.bin";
  QF_REQUIRE_SHARED(bin);
  const LoadedModel source = load_or_fail(bin);
  Scratch s;
  HfExportOptions o;
  o.tokenizer_path = (s / "missing.model").string();
  auto st = export_hf_checkpoint(source, s / "hf", o);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kNotFound);
  const fs::path gguf_vocab =
      test::shared_dir() / "models" / "llama2-spm-vocab-gguf" / "ggml-vocab-llama-spm.gguf";
  if (fs::exists(gguf_vocab)) {
    o.tokenizer_path = gguf_vocab.string();
    st = export_hf_checkpoint(source, s / "hf", o);
    ASSERT_FALSE(st.ok());
    // 32000 pieces on a 512-row model: refused when loading, before the format question.
    EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument) << st.error().to_string();
    EXPECT_NE(st.error().to_string().find("has 32000 pieces but the model's vocab_size is 512"),
              std::string::npos)
        << st.error().to_string();
  }
  o.dtype = DType::F8_E4M3FN;
  o.tokenizer_path.clear();
  EXPECT_FALSE(export_hf_checkpoint(source, s / "hf", o).ok());
  EXPECT_TRUE(entries(s.path()).empty());
}

// `qforge convert` end to end: exit code, what it prints, a loadable result.
TEST(HfExport, ConvertCommandWritesALoadableCheckpoint) {
  const fs::path bin = stories_dir() / "stories260K.bin";
  QF_REQUIRE_SHARED(bin);
  Scratch s;
  const std::string cmd = std::string("QFORGE_NO_PROGRESS=1 ") + QFORGE_CLI_PATH +
                          " convert --model " + bin.string() + " --output " + (s / "hf").string() +
                          " --dtype bf16 2>&1";
  auto run = [](const std::string& c, std::string& out) {
    FILE* p = ::popen(c.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int status = ::pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  std::string out;
  ASSERT_EQ(run(cmd, out), 0) << out;
  EXPECT_NE(out.find("wrote"), std::string::npos) << out;
  EXPECT_NE(out.find("tokenizer.model"), std::string::npos) << out;
  EXPECT_NE(out.find("permuted"), std::string::npos) << out;
  auto m = load_model((s / "hf").string());
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  EXPECT_EQ(m->config.torch_dtype, DType::BF16);
  // Again without --overwrite: refused, exit 1.
  out.clear();
  EXPECT_EQ(run(cmd, out), 1) << out;
  EXPECT_NE(out.find("--overwrite"), std::string::npos) << out;
}

}  // namespace
}  // namespace qforge
