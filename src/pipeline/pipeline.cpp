// pipeline.h: the step order, their cache keys, the gate, deployment and the report files.
#include "qforge/pipeline/pipeline.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "pipeline/pipeline_json.h"
#include "pipeline/pipeline_report.h"
#include "pipeline/pipeline_steps.h"
#include "pipeline/step_cache.h"
#include "qforge/core/log.h"
#include "qforge/core/mmap_file.h"
#include "qforge/core/path_guard.h"
#include "qforge/io/model_loader.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;
using pipeline_internal::file_identity;
using pipeline_internal::Step;

constexpr int kSteps = 5;

class Logger {
 public:
  explicit Logger(const PipelineRunOptions& o) : fn_(o.log) {}
  template <typename... Args>
  void operator()(fmt::format_string<Args...> f, Args&&... args) const {
    const std::string line = fmt::format(f, std::forward<Args>(args)...);
    if (fn_) {
      fn_(line);
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
      std::fflush(stderr);
    }
  }

 private:
  std::function<void(std::string_view)> fn_;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs `fn` unless `step` is done, in which case its stored result is read back.
template <typename T, typename Fn>
Result<T> cached_step(const Step& step, int index, const std::string& label, Fn&& fn,
                      PipelineResult& res, const Logger& log, bool keep_partial = false) {
  if (step.done()) {
    auto j = step.result();
    if (j.ok()) {
      try {
        T value = j.value().template get<T>();
        log("[{}/{}] {}: reused {}", index, kSteps, label, step.dir().string());
        res.steps.push_back({label, step.dir().string(), true, 0.0});
        return value;
      } catch (const nlohmann::json::exception& e) {
        log_warn("{}: stored result unreadable ({}); running the step again", label, e.what());
      }
    }
  }
  log("[{}/{}] {}: running in {}", index, kSteps, label, step.dir().string());
  const auto t0 = std::chrono::steady_clock::now();
  QF_TRY(step.begin(keep_partial));
  Result<T> value = fn();
  if (!value.ok()) return std::move(value).error().add_context(label);
  nlohmann::json j = value.value();
  QF_TRY(step.finish(j));
  const double s = seconds_since(t0);
  log("[{}/{}] {}: done in {:.1f} s", index, kSteps, label, s);
  res.steps.push_back({label, step.dir().string(), false, s});
  return value;
}

std::string eval_key(const PipelineConfig& c) {
  nlohmann::json j = {{"dataset", c.eval_dataset},
                      {"ctx", c.ctx},
                      {"stride", c.stride},
                      {"max_chunks", c.max_chunks},
                      {"bos", c.bos},
                      {"scoring", c.scoring},
                      {"doc_separator", c.doc_separator},
                      {"kld_top_k", c.kld_top_k},
                      {"tasks", c.tasks},
                      {"task_format", c.task_format},
                      {"task_limit", c.task_limit},
                      {"decode_prompt", c.decode_prompt},
                      {"decode_tokens", c.decode_tokens},
                      {"max_seq_len", c.max_seq_len}};
  std::string ids = file_identity(c.eval_dataset);
  for (const std::string& t : c.tasks) ids += file_identity(t);
  return j.dump() + ids;
}

std::string calib_key(const PipelineConfig& c) {
  nlohmann::json j = {{"dataset", c.calib_dataset}, {"samples", c.calib_samples},
                      {"batch", c.calib_batch},     {"max_length", c.calib_max_length},
                      {"seed", c.calib_seed},       {"amax", c.amax_method}};
  std::string ids;
  for (const std::string& p : c.calib_dataset) ids += file_identity(p);
  return j.dump() + ids;
}

std::string build_key(const PipelineConfig& c, PipelineCandidate cand) {
  cand.max_delta_ppl_percent.reset();  // the gate does not change the build
  nlohmann::json j = {{"candidate", cand},
                      {"precision", c.precision},
                      {"max_input_len", c.max_input_len},
                      {"max_seq_len", c.max_seq_len},
                      {"max_batch_size", c.max_batch_size},
                      {"kernel_selection", c.kernel_selection}};
  return j.dump();
}

Status deploy_engine(const std::string& from, const fs::path& to) {
  QF_ASSIGN_OR_RETURN(MmapFile in, MmapFile::open(from));
  QF_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::create(to));
  QF_TRY(out.write(in.bytes()));
  return out.commit();
}

Status check_paths(const PipelineConfig& c, const fs::path& out, const fs::path& engine) {
  std::vector<fs::path> inputs = {c.model, c.tokenizer, c.eval_dataset};
  for (const std::string& p : c.calib_dataset) inputs.emplace_back(p);
  for (const std::string& p : c.tasks) inputs.emplace_back(p);
  QF_TRY(check_output_path(out, inputs, OutputKind::kDirectory, "pipeline: output.dir"));
  QF_TRY(check_output_path(engine, inputs, OutputKind::kFile, "pipeline: output.engine"));
  std::error_code ec;
  if (engine.parent_path() != out && !fs::is_directory(engine.parent_path(), ec)) {
    return make_error(ErrorCode::kNotFound,
                      "pipeline: output.engine '{}': its directory does not exist (create it "
                      "first, or leave output.engine unset for <output.dir>/model.engine)",
                      engine.string());
  }
  for (const char* name : {"report.md", "report.html", "report.json"}) {
    QF_TRY(check_replaceable(out / name, OutputKind::kFile, "pipeline: the report"));
  }
  return ok_status();
}

// One run per output directory at a time: two would rebuild the same step directories under
// each other. The lock (flock on <dir>/.lock) goes away with the process, even on a crash.
class DirLock {
 public:
  static Result<DirLock> acquire(const fs::path& dir) {
    const fs::path p = dir / ".lock";
    const int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
      return make_error(ErrorCode::kIo, "cannot open '{}': {}", p.string(), std::strerror(errno));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return make_error(ErrorCode::kInvalidArgument,
                        "another qforge pipeline is running in '{}' (it holds {}); wait for it or "
                        "use another --output-dir",
                        dir.string(), p.string());
    }
    return DirLock(fd);
  }
  DirLock(DirLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  DirLock& operator=(DirLock&&) = delete;
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace

void apply_pipeline_gate(PipelineResult& res) {
  const PipelineConfig& c = res.config;
  res.chosen = -1;
  for (size_t i = 0; i < res.candidates.size(); ++i) {
    CandidateResult& cand = res.candidates[i];
    cand.failures.clear();
    cand.ppl_threshold = candidate_ppl_threshold(c, cand.candidate);
    if (!cand.error.empty()) {
      cand.failures.push_back("error: " + cand.error);
      cand.passed = false;
      continue;
    }
    if (!(cand.delta_ppl_percent < cand.ppl_threshold)) {
      cand.failures.push_back(
          fmt::format("ΔPPL {:+.3f}% >= {:.3f}%", cand.delta_ppl_percent, cand.ppl_threshold));
    }
    if (c.gate.max_mean_kld && !(cand.kld.mean_kld <= *c.gate.max_mean_kld)) {
      cand.failures.push_back(
          fmt::format("mean KLD {:.6f} > {:.6f}", cand.kld.mean_kld, *c.gate.max_mean_kld));
    }
    if (c.gate.min_top1_agreement && !(cand.kld.top1_agreement >= *c.gate.min_top1_agreement)) {
      cand.failures.push_back(fmt::format("top-1 agreement {:.4f} < {:.4f}",
                                          cand.kld.top1_agreement, *c.gate.min_top1_agreement));
    }
    if (c.gate.max_task_acc_drop) {
      for (size_t t = 0; t < cand.tasks.size() && t < res.baseline.tasks.size(); ++t) {
        const double drop = res.baseline.tasks[t].acc - cand.tasks[t].acc;
        if (!(drop <= *c.gate.max_task_acc_drop)) {
          cand.failures.push_back(fmt::format("{} acc drop {:.4f} > {:.4f}", cand.tasks[t].task,
                                              drop, *c.gate.max_task_acc_drop));
        }
      }
    }
    cand.passed = cand.failures.empty();
    if (!cand.passed) continue;
    if (res.chosen < 0) {
      res.chosen = static_cast<int>(i);
      continue;
    }
    const CandidateResult& best = res.candidates[static_cast<size_t>(res.chosen)];
    if (cand.size.bytes < best.size.bytes ||
        (cand.size.bytes == best.size.bytes && cand.delta_ppl_percent < best.delta_ppl_percent)) {
      res.chosen = static_cast<int>(i);
    }
  }
  // Every candidate erroring (an already-quantized model, a format the model cannot take) is a
  // broken setup, not a quality verdict: exit 1 like other errors.
  const bool all_errors = !res.candidates.empty() &&
                          std::all_of(res.candidates.begin(), res.candidates.end(),
                                      [](const CandidateResult& c) { return !c.error.empty(); });
  res.exit_code = res.chosen >= 0 ? 0 : all_errors ? 1 : kPipelineGateFailed;
}

Result<PipelineResult> run_pipeline(const PipelineConfig& config,
                                    const PipelineRunOptions& options) {
  QF_TRY(validate_pipeline_config(config));
  const Logger log(options);
  const bool progress = options.show_progress;
  PipelineResult res;
  res.config = config;
  PipelineConfig& c = res.config;
  const fs::path out = fs::absolute(c.output_dir).lexically_normal();
  const fs::path engine_out =
      c.engine.empty() ? out / "model.engine" : fs::absolute(c.engine).lexically_normal();
  QF_TRY(check_paths(c, out, engine_out));
  const fs::path steps = out / "steps";
  std::error_code ec;
  fs::create_directories(steps, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "cannot create '{}': {}", steps.string(), ec.message());
  }
  QF_ASSIGN_OR_RETURN(DirLock lock, DirLock::acquire(out));
  log("qforge pipeline: model {}, {} candidates, output {}", c.model, c.candidates.size(),
      out.string());

  // Step 0 (only for non-HF models): conversion to an HF directory quantize() reads.
  std::string hf_dir = c.model;
  std::string model_key = file_identity(c.model);
  QF_ASSIGN_OR_RETURN(CheckpointFormat format, detect_checkpoint_format(c.model));
  if (format != CheckpointFormat::HfDirectory) {
    const Step step(
        steps, "import",
        {"import v1", model_key, c.tokenizer.empty() ? "" : file_identity(c.tokenizer)});
    using Imported = std::map<std::string, std::string>;  // {"hf": directory}
    QF_ASSIGN_OR_RETURN(Imported imported,
                        cached_step<Imported>(
                            step, 0, "import (convert to a Hugging Face directory)",
                            [&]() -> Result<Imported> {
                              QF_ASSIGN_OR_RETURN(std::string dir,
                                                  pipeline_internal::import_model(c, step.dir()));
                              return Imported{{"hf", dir}};
                            },
                            res, log));
    hf_dir = imported["hf"];
    model_key = step.key();
  }

  const Step baseline_step(steps, "baseline", {"baseline v1", model_key, eval_key(c)});
  QF_ASSIGN_OR_RETURN(
      res.baseline,
      cached_step<BaselineResult>(
          baseline_step, 1, "baseline",
          [&] { return pipeline_internal::run_baseline(c, hf_dir, baseline_step.dir(), progress); },
          res, log));
  log("      baseline PPL {:.4f} +/- {:.4f} ({} tokens)", res.baseline.ppl.ppl,
      res.baseline.ppl.ppl_stderr, res.baseline.ppl.scored_tokens);

  const Step calib_step(steps, "calibration", {"calibration v1", model_key, calib_key(c)});
  QF_ASSIGN_OR_RETURN(
      res.calibration,
      cached_step<CalibrationResult>(
          calib_step, 2, "calibration",
          [&] { return pipeline_internal::run_calibration(c, hf_dir, calib_step.dir(), progress); },
          res, log));

  for (const PipelineCandidate& cand : c.candidates) {
    const Step build_step(steps, "build-" + cand.name,
                          {"build v1", model_key, calib_key(c), build_key(c, cand)});
    // A candidate that cannot be built or validated fails the gate with its error; the others
    // still run (its step keeps no done-marker, so a rerun tries it again).
    Result<CandidateResult> built = cached_step<CandidateResult>(
        build_step, 3, "build " + cand.name,
        [&] { return pipeline_internal::run_build(c, cand, hf_dir, build_step.dir(), progress); },
        res, log, /*keep_partial=*/true);
    const Step validate_step(steps, "validate-" + cand.name,
                             {"validate v1", build_step.key(), baseline_step.key()});
    Result<CandidateResult> validated =
        !built.ok() ? Result<CandidateResult>(built.error())
                    : cached_step<CandidateResult>(
                          validate_step, 4, "validate " + cand.name,
                          [&]() -> Result<CandidateResult> {
                            CandidateResult v = built.value();
                            QF_TRY(pipeline_internal::run_validate(c, res.baseline, v, progress));
                            return v;
                          },
                          res, log);
    if (!validated.ok()) {
      CandidateResult failed;
      failed.candidate = cand;
      failed.error = validated.error().to_string();
      log_error("candidate '{}' failed: {}", cand.name, failed.error);
      res.candidates.push_back(std::move(failed));
      continue;
    }
    validated->candidate = cand;  // the gate settings of this run
    log("      {}: ΔPPL {:+.4f}%, mean KLD {:.6f}, top-1 {:.2f}%, {:.2f} MiB", cand.name,
        validated->delta_ppl_percent, validated->kld.mean_kld, 100 * validated->kld.top1_agreement,
        validated->size.bytes / 1048576.0);
    res.candidates.push_back(std::move(validated).value());
  }

  apply_pipeline_gate(res);
  if (res.chosen >= 0) {
    const CandidateResult& best = res.candidates[static_cast<size_t>(res.chosen)];
    QF_TRY(deploy_engine(best.engine, engine_out).context("deploying the chosen engine"));
    res.deployed_engine = engine_out.string();
    log("[5/{}] deploy: {} -> {}", kSteps, best.candidate.name, engine_out.string());
  } else {
    log("[5/{}] deploy: no candidate passed the gate; nothing deployed", kSteps);
    std::error_code e2;
    if (fs::exists(engine_out, e2)) {
      log_warn("'{}' is left from an earlier run; it is not a result of this one",
               engine_out.string());
    }
  }

  res.report_md = (out / "report.md").string();
  res.report_html = (out / "report.html").string();
  res.report_json = (out / "report.json").string();
  QF_TRY(write_file_atomic(res.report_json, pipeline_report_json(res).dump(2) + "\n"));
  QF_TRY(write_file_atomic(res.report_md, pipeline_internal::report_markdown(res)));
  QF_TRY(write_file_atomic(res.report_html, pipeline_internal::report_html(res)));
  log("report: {} (also report.md, report.json)", res.report_html);
  return res;
}

}  // namespace qforge
