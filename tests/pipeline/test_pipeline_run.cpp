// `qforge pipeline` end to end on stories260K (llama2.c, converted by the import step) with three
// candidates on a small TinyStories slice: the reports exist and hold the numbers the eval
// functions and `qforge eval ppl` give when run separately, a rerun reuses every step with
// identical numbers, the gate's exit code flips when the threshold is tightened, and unsafe
// outputs or bad configs are refused.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "qforge/engine/engine.h"
#include "qforge/eval/kl_divergence.h"
#include "qforge/eval/multiple_choice.h"
#include "qforge/eval/perplexity.h"
#include "qforge/model/inference_session.h"
#include "qforge/pipeline/pipeline.h"
#include "qforge/runtime/generate.h"
#include "runtime/cli_test_util.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

fs::path stories_dir() {
  return test::shared_dir() / "models" / "stories260K";
}
fs::path tinystories() {
  return test::shared_dir() / "data" / "tinystories" / "tinystories_valid_first1000.txt";
}
fs::path task_file() {
  return fs::path(QFORGE_SOURCE_DIR) / "tests" / "data" / "tasks" / "tiny_stories_mc.jsonl";
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Fixture {
  fs::path dir;
  fs::path slice;
  fs::path out;

  std::string toml(double gate, double gate_int4) const {
    return fmt::format(R"(
[model]
path = "{}"
tokenizer = "{}"
[output]
dir = "{}"
[eval]
dataset = "{}"
ctx = 128
max_chunks = 6
tasks = ["{}"]
task_limit = 10
decode_tokens = 16
[calibration]
samples = 8
batch = 4
max_length = 64
[build]
precision = "f32"
max_input_len = 128
max_seq_len = 256
max_batch_size = 2
kernel_selection = false
[gate]
max_delta_ppl_percent = {}
max_delta_ppl_percent_by_format = {{ int4_wo = {} }}
[[candidate]]
name = "fp8"
qformat = "fp8"
kv_cache = "fp8"
[[candidate]]
name = "int4"
qformat = "int4_wo"
group_size = 32
[[candidate]]
name = "w8a16"
qformat = "int8_wo"
)",
                       (stories_dir() / "stories260K.bin").string(),
                       (stories_dir() / "tok512.model").string(), out.string(), slice.string(),
                       task_file().string(), gate, gate_int4);
  }
  fs::path write_toml(const std::string& name, double gate, double gate_int4) const {
    const fs::path p = dir / name;
    std::ofstream(p) << toml(gate, gate_int4);
    return p;
  }
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    x.dir = fs::temp_directory_path() / ("qforge_pipeline_test_" + std::to_string(::getpid()));
    fs::remove_all(x.dir);
    fs::create_directories(x.dir);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(
          fs::temp_directory_path() / ("qforge_pipeline_test_" + std::to_string(::getpid())), ec);
    });
    std::string text = read_all(tinystories());
    text = text.substr(0, text.find('\n', 30000) + 1);
    x.slice = x.dir / "tinystories_slice.txt";
    std::ofstream(x.slice, std::ios::binary) << text;
    x.out = x.dir / "out";
    return x;
  }();
  return f;
}

struct FirstRun {
  Result<PipelineResult> result = make_error(ErrorCode::kInternal, "not run");
  double seconds = 0;
};

const FirstRun& first_run() {
  static const FirstRun r = [] {
    FirstRun fr;
    const Fixture& f = fixture();
    auto c = load_pipeline_config(f.write_toml("pipeline.toml", 0.5, 50.0));
    if (!c.ok()) {
      fr.result = std::move(c).error();
      return fr;
    }
    PipelineRunOptions o;
    o.show_progress = false;
    const auto t0 = std::chrono::steady_clock::now();
    fr.result = run_pipeline(c.value(), o);
    fr.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return fr;
  }();
  return r;
}

class PipelineRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(stories_dir() / "stories260K.bin") || !fs::exists(tinystories())) {
      GTEST_SKIP() << "needs ../shared/models/stories260K and ../shared/data/tinystories";
    }
    ASSERT_TRUE(first_run().result.ok()) << first_run().result.error().to_string();
  }
  const PipelineResult& result() const { return first_run().result.value(); }
};

TEST_F(PipelineRun, WritesTheThreeReportsWithEveryCandidate) {
  const PipelineResult& r = result();
  ASSERT_EQ(r.candidates.size(), 3u);
  const std::string md = read_all(r.report_md);
  const std::string html = read_all(r.report_html);
  const auto j = nlohmann::json::parse(read_all(r.report_json));
  for (const CandidateResult& c : r.candidates) {
    EXPECT_NE(md.find("| " + c.candidate.name + " |"), std::string::npos) << c.candidate.name;
    EXPECT_NE(html.find("<td>" + c.candidate.name + "</td>"), std::string::npos);
    EXPECT_EQ(c.layers.size(), 35u) << c.candidate.name;  // 5 blocks x 7 linears
    EXPECT_GT(c.kld.tokens, 0);
    int64_t hist = 0;
    for (int64_t n : c.kld_histogram.counts) hist += n;
    EXPECT_EQ(hist, c.kld.tokens) << c.candidate.name;
  }
  // Self-contained: inline SVG charts, no scripts, nothing fetched.
  size_t svgs = 0;
  for (size_t p = html.find("<svg"); p != std::string::npos; p = html.find("<svg", p + 1)) ++svgs;
  EXPECT_EQ(svgs, 5u);  // ΔPPL bars, per-layer error, three KLD histograms
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_NE(html.find("<polyline"), std::string::npos);
  ASSERT_EQ(j["candidates"].size(), 3u);
  EXPECT_EQ(j["exit_code"].get<int>(), r.exit_code);
  EXPECT_DOUBLE_EQ(j["baseline"]["ppl"]["ppl"].get<double>(), r.baseline.ppl.ppl);
  EXPECT_DOUBLE_EQ(j["candidates"][1]["kld"]["mean_kld"].get<double>(),
                   r.candidates[1].kld.mean_kld);
  EXPECT_TRUE(fs::exists(r.calibration.stats_file));
  const auto stats = nlohmann::json::parse(read_all(r.calibration.stats_file));
  EXPECT_EQ(stats["blocks"].size(), 5u);
  EXPECT_EQ(stats["samples"].get<int64_t>(), 8);
  EXPECT_GT(stats["blocks"][0]["mlp_mid"]["amax"].get<double>(), 0);
  // int4 group 32 cannot cover down_proj (172 inputs): left unquantized, said so.
  EXPECT_EQ(r.candidates[1].excluded_incompatible.size(), 5u);
  std::printf("first run %.1f s: baseline PPL %.4f; ", first_run().seconds, r.baseline.ppl.ppl);
  for (const CandidateResult& c : r.candidates) {
    std::printf("%s dPPL %+.3f%% KLD %.5f top1 %.3f bpw %.3f %s; ", c.candidate.name.c_str(),
                c.delta_ppl_percent, c.kld.mean_kld, c.kld.top1_agreement, c.size.bits_per_weight,
                c.passed ? "pass" : "fail");
  }
  std::printf("\n");
}

TEST_F(PipelineRun, NumbersEqualTheEvalFunctionsRunSeparately) {
  const PipelineResult& r = result();
  const std::string text = read_all(fixture().slice);
  PerplexityOptions po;
  po.ctx = 128;
  po.max_chunks = 6;
  SessionOptions so;
  so.context_length = 128;
  // Baseline: the reference runtime on the converted HF directory.
  auto base = Model::load(r.baseline.model);
  ASSERT_TRUE(base.ok()) << base.error().to_string();
  auto tok = load_tokenizer_for_model(r.baseline.model, "", base.value()->config().vocab_size);
  ASSERT_TRUE(tok.ok());
  auto ds = make_ppl_dataset(text, *tok.value(), po, fixture().slice.string());
  ASSERT_TRUE(ds.ok());
  EXPECT_EQ(ds->protocol, r.baseline.protocol);
  auto bs = InferenceSession::create(base.value(), so);
  auto bp = evaluate_perplexity(bs.value(), ds.value(), nullptr, false);
  ASSERT_TRUE(bp.ok());
  EXPECT_NEAR(bp->ppl, r.baseline.ppl.ppl, 1e-6 * bp->ppl);
  EXPECT_EQ(bp->scored_tokens, r.baseline.ppl.scored_tokens);
  auto task = load_mc_task(task_file(), McFormat::kJsonl);
  ASSERT_TRUE(task.ok());
  McOptions mo;
  mo.limit = 10;
  SessionOptions task_so;
  task_so.context_length = 256;
  auto ts = InferenceSession::create(base.value(), task_so);
  auto mc = evaluate_multiple_choice(ts.value(), *tok.value(), task.value(), mo);
  ASSERT_TRUE(mc.ok());
  ASSERT_EQ(r.baseline.tasks.size(), 1u);
  EXPECT_DOUBLE_EQ(r.baseline.tasks[0].acc, mc->acc);
  EXPECT_DOUBLE_EQ(r.baseline.tasks[0].acc_norm, mc->acc_norm);
  EXPECT_DOUBLE_EQ(r.baseline.size.bits_per_weight, 32.0);

  for (const CandidateResult& c : r.candidates) {
    SCOPED_TRACE(c.candidate.name);
    auto e = load_engine(c.engine);
    ASSERT_TRUE(e.ok()) << e.error().to_string();
    ASSERT_NE(e->tokenizer, nullptr);
    auto cds = make_ppl_dataset(text, *e->tokenizer, po, fixture().slice.string());
    ASSERT_TRUE(cds.ok());
    auto kld = KlDivergenceScorer::open(r.baseline.logprobs, e->model->config().vocab_size,
                                        cds->scored_tokens, cds->protocol);
    ASSERT_TRUE(kld.ok()) << kld.error().to_string();
    auto s = InferenceSession::create(e->model, so);
    auto p = evaluate_perplexity(s.value(), cds.value(), kld.value().get(), false);
    ASSERT_TRUE(p.ok());
    auto k = kld.value()->finish();
    ASSERT_TRUE(k.ok());
    EXPECT_NEAR(p->ppl, c.ppl.ppl, 1e-6 * p->ppl);
    EXPECT_NEAR(k->mean_kld, c.kld.mean_kld, 1e-6 * k->mean_kld + 1e-12);
    EXPECT_DOUBLE_EQ(k->top1_agreement, c.kld.top1_agreement);
    EXPECT_NEAR(c.delta_ppl_percent, 100 * (p->ppl / bp->ppl - 1), 1e-6);
    EXPECT_TRUE(std::isfinite(c.kld.mean_kld));
    EXPECT_GT(c.kld.mean_kld, 0);
    EXPECT_EQ(c.size.bytes, fs::file_size(c.engine));
    // `qforge eval ppl` on the same engine, text and protocol, to its printed precision.
    const auto cli = test::run_cli("eval ppl --model " + test::quote(c.engine) + " --dataset " +
                                   test::quote(fixture().slice) +
                                   " --ctx 128 --max-chunks 6 --no-progress -t 1 "
                                   "--kl-divergence-base " +
                                   test::quote(r.baseline.logprobs));
    ASSERT_EQ(cli.exit_code, 0) << cli.out;
    double cli_ppl = 0, cli_kld = 0;
    ASSERT_EQ(std::sscanf(cli.out.c_str() + cli.out.find("PPL = "), "PPL = %lf", &cli_ppl), 1);
    ASSERT_EQ(
        std::sscanf(cli.out.c_str() + cli.out.find("Mean    KLD:"), "Mean    KLD: %lf", &cli_kld),
        1);
    EXPECT_NEAR(cli_ppl, c.ppl.ppl, 5e-5);
    EXPECT_NEAR(cli_kld, c.kld.mean_kld, 5e-7);
  }
  // Bits per weight: FP8 and INT8 rows plus scales; INT4 group 32 with down_proj left in F32.
  EXPECT_NEAR(r.candidates[0].size.bits_per_weight, 8.0, 0.1);
  EXPECT_NEAR(r.candidates[2].size.bits_per_weight, 8.0, 0.6);
  EXPECT_GT(r.candidates[1].size.bits_per_weight, 4.5);
}

TEST_F(PipelineRun, GateChoosesTheSmallestPassingCandidateAndFlipsWhenTightened) {
  PipelineResult r = result();
  ASSERT_GE(r.chosen, 0) << "expected a passing candidate at the default gate";
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(fs::exists(r.deployed_engine));
  EXPECT_EQ(read_all(r.deployed_engine),
            read_all(r.candidates[static_cast<size_t>(r.chosen)].engine));
  const CandidateResult& chosen = r.candidates[static_cast<size_t>(r.chosen)];
  for (const CandidateResult& c : r.candidates) {
    EXPECT_EQ(c.passed, c.delta_ppl_percent < c.ppl_threshold) << c.candidate.name;
    if (c.passed) EXPECT_LE(chosen.size.bytes, c.size.bytes) << c.candidate.name;
  }
  r.config.gate.max_delta_ppl_percent = -100;
  r.config.gate.max_delta_ppl_percent_by_format["int4_wo"] = -100;
  apply_pipeline_gate(r);
  EXPECT_EQ(r.chosen, -1);
  EXPECT_EQ(r.exit_code, kPipelineGateFailed);
  // Loose ΔPPL but a KLD ceiling below every candidate's: fails on KLD.
  r.config.gate.max_delta_ppl_percent = 1e9;
  r.config.gate.max_delta_ppl_percent_by_format.clear();
  r.config.gate.max_mean_kld = 1e-12;
  apply_pipeline_gate(r);
  EXPECT_EQ(r.exit_code, kPipelineGateFailed);
  EXPECT_NE(r.candidates[0].failures.at(0).find("mean KLD"), std::string::npos);
}

TEST_F(PipelineRun, RerunReusesEveryStepWithIdenticalNumbers) {
  const Fixture& f = fixture();
  const auto j1 = nlohmann::json::parse(read_all(result().report_json));
  auto c = load_pipeline_config(f.dir / "pipeline.toml");
  ASSERT_TRUE(c.ok());
  PipelineRunOptions o;
  o.show_progress = false;
  std::string log;
  o.log = [&](std::string_view line) { log += std::string(line) + "\n"; };
  const auto t0 = std::chrono::steady_clock::now();
  auto again = run_pipeline(c.value(), o);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  for (const StepRecord& st : again->steps) EXPECT_TRUE(st.reused) << st.name;
  EXPECT_EQ(again->steps.size(),
            1u + 2u + 2u * 3u);  // import, baseline, calib, 3 x (build, validate)
  EXPECT_NE(log.find("reused"), std::string::npos);
  EXPECT_LT(s, first_run().seconds / 5)
      << "rerun " << s << " s vs first run " << first_run().seconds << " s";
  const auto j2 = nlohmann::json::parse(read_all(again->report_json));
  EXPECT_EQ(j1["baseline"], j2["baseline"]);
  EXPECT_EQ(j1["candidates"], j2["candidates"]);
  EXPECT_EQ(j1["chosen"], j2["chosen"]);
  std::printf("rerun %.2f s (first run %.1f s)\n", s, first_run().seconds);
}

TEST_F(PipelineRun, CliExitCodeFlipsWhenTheGateIsTightened) {
  const Fixture& f = fixture();
  const auto pass = test::run_cli("pipeline -q --config " +
                                  test::quote(f.write_toml("cli_pass.toml", 0.5, 50.0)));
  EXPECT_EQ(pass.exit_code, 0) << pass.out;
  EXPECT_NE(pass.out.find("chosen: "), std::string::npos) << pass.out;
  EXPECT_NE(pass.out.find("reused"), std::string::npos) << pass.out;
  const auto fail = test::run_cli("pipeline -q --config " +
                                  test::quote(f.write_toml("cli_fail.toml", -100.0, -100.0)));
  EXPECT_EQ(fail.exit_code, kPipelineGateFailed) << fail.out;
  EXPECT_NE(fail.out.find("no candidate passed the gate"), std::string::npos) << fail.out;
  const auto j = nlohmann::json::parse(read_all(f.out / "report.json"));
  EXPECT_EQ(j["exit_code"].get<int>(), kPipelineGateFailed);
  EXPECT_TRUE(j["chosen"].is_null());
  // And back: the report follows the latest run.
  const auto back = test::run_cli("pipeline -q --config " + test::quote(f.dir / "cli_pass.toml"));
  EXPECT_EQ(back.exit_code, 0) << back.out;
}

// Step 5 with --serve: the chosen engine answers HTTP on the port it prints, until SIGTERM, and
// the command then exits 0 (the steps are reused from the runs above).
TEST_F(PipelineRun, ServeFlagServesTheChosenEngineUntilSigterm) {
  const Fixture& f = fixture();
  const fs::path toml = f.write_toml("cli_serve.toml", 0.5, 50.0);
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::close(out[0]);
    ::execl(QFORGE_CLI_PATH, "qforge", "pipeline", "-q", "--config", toml.c_str(), "--serve",
            "--port", "0", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  const auto read_until = [&](const std::string& needle, int seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (text.find(needle) == std::string::npos && std::chrono::steady_clock::now() < end) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(out[0], buf, sizeof(buf));
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    return text.find(needle) != std::string::npos;
  };
  const std::string marker = "listening on http://127.0.0.1:";
  const bool listening = read_until(marker, 300);
  if (!listening) ::kill(pid, SIGKILL);
  ASSERT_TRUE(listening) << text;
  const int port = std::atoi(text.c_str() + text.find(marker) + marker.size());
  ASSERT_GT(port, 0) << text;
  // GET /health over a plain socket.
  const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string req = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_EQ(::write(sock, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string reply;
  char buf[1024];
  for (ssize_t n; (n = ::read(sock, buf, sizeof(buf))) > 0;) reply.append(buf, n);
  ::close(sock);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  read_until("stopped", 5);
  ::close(out[0]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << text;
  EXPECT_NE(text.find("chosen: "), std::string::npos) << text;
  EXPECT_NE(text.find("qforge serve: stopped"), std::string::npos) << text;
}

TEST_F(PipelineRun, RefusesUnsafeOutputsAndBadConfigs) {
  const Fixture& f = fixture();
  // The output directory may not hold the model.
  const auto inside = test::run_cli("pipeline -q --config " + test::quote(f.dir / "pipeline.toml") +
                                    " --output-dir " + test::quote(stories_dir()));
  EXPECT_EQ(inside.exit_code, 1) << inside.out;
  EXPECT_NE(inside.out.find("output.dir"), std::string::npos) << inside.out;
  // An unknown key names itself and the valid ones.
  const fs::path bad = f.dir / "bad.toml";
  std::ofstream(bad) << f.toml(0.5, 50.0) << "\n[build]\n";
  std::ofstream(f.dir / "bad2.toml") << f.toml(0.5, 50.0) << "gpu = true\n";
  const auto unknown = test::run_cli("pipeline --config " + test::quote(f.dir / "bad2.toml"));
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.out.find("unknown key 'gpu' in [candidate]"), std::string::npos) << unknown.out;
  const auto dup = test::run_cli("pipeline --config " + test::quote(bad));
  EXPECT_EQ(dup.exit_code, 1);
  EXPECT_NE(dup.out.find("TOML syntax error"), std::string::npos) << dup.out;
  // A deploy path in a missing directory is refused before any work.
  auto c = load_pipeline_config(f.dir / "pipeline.toml");
  ASSERT_TRUE(c.ok());
  PipelineConfig missing = c.value();
  missing.engine = (f.dir / "no_such_dir" / "m.engine").string();
  auto r = run_pipeline(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().to_string().find("its directory does not exist"), std::string::npos)
      << r.error().to_string();
  // Two runs in one output directory at a time are refused (the second names the lock).
  const int fd = ::open((f.out / ".lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  const auto locked = test::run_cli("pipeline -q --config " + test::quote(f.dir / "pipeline.toml"));
  ::close(fd);
  EXPECT_EQ(locked.exit_code, 1) << locked.out;
  EXPECT_NE(locked.out.find("another qforge pipeline is running"), std::string::npos) << locked.out;
}

TEST_F(PipelineRun, BuiltInDefaultsRunWithoutAConfig) {
  const Fixture& f = fixture();
  const fs::path out = f.dir / "defaults";
  const auto run =
      test::run_cli("pipeline -q --model " + test::quote(stories_dir() / "stories260K.bin") +
                    " --dataset " + test::quote(f.slice) + " --output-dir " + test::quote(out));
  ASSERT_TRUE(run.exit_code == 0 || run.exit_code == kPipelineGateFailed) << run.out;
  const auto j = nlohmann::json::parse(read_all(out / "report.json"));
  ASSERT_EQ(j["candidates"].size(), 3u);
  EXPECT_EQ(j["candidates"][0]["candidate"]["name"], "fp8");
  EXPECT_EQ(j["candidates"][0]["candidate"]["kv_cache"], "fp8");
  EXPECT_EQ(j["candidates"][1]["candidate"]["name"], "int4_awq");
  EXPECT_EQ(j["candidates"][2]["candidate"]["name"], "w8a16");
  EXPECT_EQ(j["config"]["source"], "built-in defaults");
  EXPECT_EQ(j["exit_code"].get<int>(), run.exit_code);
  EXPECT_GT(j["baseline"]["ppl"]["ppl"].get<double>(), 1.0);
  EXPECT_TRUE(fs::exists(out / "report.html"));
}

TEST_F(PipelineRun, ACandidateThatCannotBeBuiltFailsTheGateAndTheOthersStillRun) {
  const Fixture& f = fixture();
  const fs::path p = f.dir / "strict.toml";
  std::ofstream(p) << f.toml(0.5, 50.0)
                   << "[[candidate]]\nname = \"int4_strict\"\nqformat = \"int4_wo\"\n"
                      "group_size = 32\nexclude_incompatible = false\n";
  auto c = load_pipeline_config(p);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  PipelineRunOptions o;
  o.show_progress = false;
  o.log = [](std::string_view) {};
  auto r = run_pipeline(c.value(), o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->candidates.size(), 4u);
  const CandidateResult& bad = r->candidates[3];
  EXPECT_FALSE(bad.passed);
  EXPECT_NE(bad.error.find("does not divide its 172 input features"), std::string::npos)
      << bad.error;
  EXPECT_EQ(r->exit_code, 0);  // w8a16 still passes
  EXPECT_EQ(r->candidates[r->chosen].candidate.name, "w8a16");
  const std::string md = read_all(r->report_md);
  EXPECT_NE(md.find("FAIL: error:"), std::string::npos);
  // The failed build left no done-marker: it is tried again, the other steps are reused.
  auto again = run_pipeline(c.value(), o);
  ASSERT_TRUE(again.ok());
  int ran = 0;
  for (const StepRecord& st : again->steps) ran += !st.reused;
  EXPECT_EQ(ran, 0);  // the failed step is not recorded as run (it failed again)
  EXPECT_FALSE(again->candidates[3].error.empty());
  // Only broken candidates: an error (exit 1), not a quality verdict.
  PipelineConfig only = c.value();
  only.candidates = {only.candidates[3]};
  auto broken = run_pipeline(only, o);
  ASSERT_TRUE(broken.ok());
  EXPECT_EQ(broken->exit_code, 1);
}

TEST_F(PipelineRun, ChangingTheEvalSliceRerunsEvaluationButReusesTheBuilds) {
  const Fixture& f = fixture();
  std::string text = f.toml(0.5, 50.0);
  text.replace(text.find("max_chunks = 6"), 14, "max_chunks = 5");
  const fs::path p = f.dir / "five_chunks.toml";
  std::ofstream(p) << text;
  auto c = load_pipeline_config(p);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  PipelineRunOptions o;
  o.show_progress = false;
  o.log = [](std::string_view) {};
  auto r = run_pipeline(c.value(), o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  for (const StepRecord& st : r->steps) {
    const bool eval_step = st.name == "baseline" || st.name.starts_with("validate ");
    EXPECT_EQ(st.reused, !eval_step) << st.name;
  }
  EXPECT_EQ(r->baseline.ppl.chunks, 5);
  EXPECT_EQ(r->baseline.ppl.scored_tokens, 5 * 127);
  EXPECT_EQ(r->candidates[0].kld.tokens, 5 * 127);
}

}  // namespace
}  // namespace qforge
