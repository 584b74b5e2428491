// Tokenizer, Model and LLM from Python. LLM(model=..., build_config=...) opens an .engine file or
// builds a checkpoint directory into the engine cache (qforge::open_engine); a model file
// (llama2.c .bin, .gguf, .safetensors) runs as it is, as `qforge run --model` does. generate()
// releases the GIL, checks for Ctrl-C before every scheduler step, and returns TensorRT-LLM-style
// RequestOutput objects. Logits come back as NumPy arrays over the C++ tensor (no copy).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <mutex>

#include "bind_modules.h"
#include "py_common.h"
#include "qforge/engine/engine.h"
#include "qforge/model/inference_session.h"
#include "qforge/model/synthetic.h"
#include "qforge/runtime/generate.h"
#include "qforge/runtime/llm.h"

namespace qforge::python {
namespace {

namespace fs = std::filesystem;

bool is_engine_file(const std::string& path) {
  std::error_code ec;
  return fs::path(path).extension() == ".engine" && fs::is_regular_file(path, ec);
}

py::str decode_utf8(std::string_view s) {
  PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
  if (o == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(o);
}

PyModel load_py_model(const std::string& path, const std::string& tokenizer_path) {
  PyModel m;
  m.path = path;
  if (is_engine_file(path)) {
    Engine e = unwrap(without_gil([&] { return load_engine(path); }));
    m.model = e.model;
    m.tokenizer = e.tokenizer;
    m.is_engine = true;
  } else {
    m.model = unwrap(without_gil([&] { return Model::load(path); }));
  }
  if (!tokenizer_path.empty() || m.tokenizer == nullptr) {
    auto tok = load_tokenizer_for_model(path, tokenizer_path, m.model->config().vocab_size);
    if (tok.ok()) {
      m.tokenizer = std::shared_ptr<const Tokenizer>(std::move(tok).value());
    } else if (!tokenizer_path.empty()) {
      raise_error(tok.error());  // asked for explicitly: its error is the answer
    }
  }
  return m;
}

// [n_tokens, vocab] F32 logits of `ids` from position 0 (a fresh session), without a copy.
py::array model_logits(const std::shared_ptr<const Model>& model, std::vector<int32_t> ids,
                       bool last_only) {
  if (ids.empty()) {
    raise_error(make_error(ErrorCode::kInvalidArgument, "logits: token_ids is empty"));
  }
  Result<Tensor> logits = without_gil([&]() -> Result<Tensor> {
    SessionOptions o;
    o.context_length = std::min<int64_t>(static_cast<int64_t>(ids.size()),
                                         model->config().max_position_embeddings);
    QF_ASSIGN_OR_RETURN(InferenceSession session, InferenceSession::create(model, o));
    return session.forward(ids, last_only ? LogitsMode::kLast : LogitsMode::kAll);
  });
  return tensor_to_numpy(unwrap(std::move(logits)));
}

struct PyCompletionOutput {
  int64_t index = 0;
  std::string text;
  std::vector<int32_t> token_ids;
  std::string finish_reason;
  py::object logprobs = py::none();  // list[dict[int, float]] or None
  py::object cumulative_logprob = py::none();
};

struct PyRequestOutput {
  int64_t request_id = 0;
  std::string prompt;
  std::vector<int32_t> prompt_token_ids;
  std::vector<PyCompletionOutput> outputs;
};

PyRequestOutput to_python(const RequestOutput& r, bool with_logprobs) {
  PyRequestOutput out;
  out.request_id = r.request_id;
  out.prompt = r.prompt;
  out.prompt_token_ids = r.prompt_ids;
  PyCompletionOutput c;
  c.text = r.text;
  c.token_ids = r.output_ids;
  c.finish_reason = finish_reason_name(r.finish_reason);
  if (with_logprobs) {
    py::list per_token;
    double total = 0;
    for (const SampleLogprobs& lp : r.logprobs) {
      py::dict d;
      for (const TokenLogprob& t : lp.top) d[py::int_(t.id)] = t.logprob;
      d[py::int_(lp.sampled.id)] = lp.sampled.logprob;
      per_token.append(d);
      total += lp.sampled.logprob;
    }
    c.logprobs = per_token;
    c.cumulative_logprob = py::float_(total);
  }
  out.outputs.push_back(std::move(c));
  return out;
}

// Set while a generate() call runs, so that the LLM's interrupt_check reaches its Interrupt.
struct InterruptSlot {
  Interrupt* active = nullptr;
};

struct PyLLM {
  std::unique_ptr<LLM> llm;
  PyModel model;
  std::shared_ptr<InterruptSlot> slot = std::make_shared<InterruptSlot>();
  std::unique_ptr<std::mutex> mu = std::make_unique<std::mutex>();

  LLM& get() {
    if (llm == nullptr) {
      raise_error(make_error(ErrorCode::kInvalidArgument, "LLM: this LLM was shut down"));
    }
    return *llm;
  }
};

RuntimeOptions runtime_options(const std::shared_ptr<InterruptSlot>& slot, bool deterministic) {
  RuntimeOptions ro;
  ro.deterministic = deterministic;
  ro.interrupt_check = [slot]() -> Status {
    return slot->active != nullptr ? slot->active->check() : ok_status();
  };
  return ro;
}

std::unique_ptr<PyLLM> make_llm(py::handle model, py::object build_config, py::object quant_config,
                                py::object tokenizer, bool deterministic) {
  auto out = std::make_unique<PyLLM>();
  const bool given_config = !build_config.is_none();
  BuildConfig bc = given_config ? build_config.cast<BuildConfig>() : BuildConfig{};
  if (!quant_config.is_none()) {
    if (!py::isinstance<QuantConfig>(quant_config)) {
      throw py::type_error("LLM: quant_config: expected a QuantConfig or None");
    }
    bc.quant_config = quant_config.cast<QuantConfig>();
  }
  const std::string tok_path = tokenizer.is_none() ? "" : path_string(tokenizer, "LLM: tokenizer");
  const RuntimeOptions ro = runtime_options(out->slot, deterministic);

  // An already loaded Model, or a model file: the reference runtime over its weights.
  const auto from_model = [&](PyModel m) {
    if (bc.quant_config) {
      raise_error(make_error(ErrorCode::kInvalidArgument,
                             "LLM: quant_config needs a checkpoint directory, and '{}' is a {} "
                             "model file (write it as one with qforge.convert, or quantize it "
                             "with qforge.quantize)",
                             m.path, m.model->format()));
    }
    if (!given_config) {
      // As `qforge run --model`: the checkpoint's weights, an F32 KV cache, the model's length.
      bc.precision = DType::F32;
      bc.max_seq_len = std::min(bc.max_seq_len, m.model->config().max_position_embeddings);
      bc.max_input_len = std::min(bc.max_input_len, bc.max_seq_len);
    }
    out->llm = std::make_unique<LLM>(
        unwrap(without_gil([&] { return LLM::create(m.model, m.tokenizer, bc, ro); })));
    out->model = std::move(m);
  };

  if (py::isinstance<PyModel>(model)) {
    from_model(model.cast<PyModel>());
    return out;
  }
  const std::string path = path_string(model, "LLM: model");
  std::error_code ec;
  if (fs::is_directory(path, ec) || is_engine_file(path)) {
    Engine engine = unwrap(without_gil([&] { return open_engine(path, bc); }).context("LLM"));
    if (!tok_path.empty()) {
      engine.tokenizer = unwrap(load_tokenizer(tok_path, engine.model->config().vocab_size));
    }
    out->llm = std::make_unique<LLM>(unwrap(without_gil([&] { return LLM::create(engine, ro); })));
    out->model.model = engine.model;
    out->model.tokenizer = engine.tokenizer;
    out->model.path = engine.path;
    out->model.is_engine = true;
    return out;
  }
  if (!fs::exists(path, ec)) {
    raise_error(make_error(ErrorCode::kNotFound,
                           "LLM: '{}' does not exist (expected a checkpoint directory, an "
                           ".engine file or a model file)",
                           path));
  }
  from_model(load_py_model(path, tok_path));
  return out;
}

py::object generate(PyLLM& self, py::handle prompts, py::object sampling_params,
                    py::object on_token) {
  LLM& llm = self.get();
  // Prompts: one str (returns one output), a list of str, or token-id lists.
  bool single = false;
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> ids;
  if (py::isinstance<py::str>(prompts)) {
    single = true;
    texts.push_back(py::cast<std::string>(prompts));
  } else if (py::isinstance<py::sequence>(prompts)) {
    auto seq = py::reinterpret_borrow<py::sequence>(prompts);
    if (seq.size() > 0 && !py::isinstance<py::str>(seq[0]) &&
        (py::isinstance<py::int_>(seq[0]) || py::hasattr(seq[0], "__index__"))) {
      single = true;  // one prompt of token ids
      ids.push_back(to_int_list(prompts, "LLM.generate: prompt token ids"));
    } else {
      for (py::handle p : seq) {
        if (py::isinstance<py::str>(p)) {
          if (!ids.empty()) throw py::type_error("LLM.generate: mixed text and token-id prompts");
          texts.push_back(py::cast<std::string>(p));
        } else {
          if (!texts.empty()) throw py::type_error("LLM.generate: mixed text and token-id prompts");
          ids.push_back(to_int_list(p, "LLM.generate: prompt token ids"));
        }
      }
    }
  } else {
    throw py::type_error("LLM.generate: prompts must be a str, a list of str, or token-id lists");
  }
  const size_t n = texts.empty() ? ids.size() : texts.size();
  std::vector<SamplingParams> params;
  if (sampling_params.is_none()) {
    params.assign(n, SamplingParams{});
  } else if (py::isinstance<SamplingParams>(sampling_params)) {
    params.assign(n, sampling_params.cast<SamplingParams>());
  } else if (py::isinstance<py::sequence>(sampling_params)) {
    for (py::handle p : py::reinterpret_borrow<py::sequence>(sampling_params)) {
      if (!py::isinstance<SamplingParams>(p)) {
        throw py::type_error("LLM.generate: sampling_params items must be SamplingParams");
      }
      params.push_back(p.cast<SamplingParams>());
    }
  } else {
    throw py::type_error("LLM.generate: sampling_params must be a SamplingParams or a list");
  }
  if (!on_token.is_none() && !PyCallable_Check(on_token.ptr())) {
    throw py::type_error("LLM.generate: on_token must be callable");
  }

  Interrupt interrupt;
  StreamCallback stream;
  if (!on_token.is_none()) {
    stream = [&interrupt, &on_token](const StreamEvent& e) {
      py::gil_scoped_acquire gil;
      if (interrupt.pending()) return;
      try {
        on_token(e.request_id, e.token, decode_utf8(e.text), e.finished);
      } catch (py::error_already_set& err) {
        interrupt.keep(std::move(err));  // generate() stops before the next step, re-raises it
      }
    };
  }
  Result<std::vector<RequestOutput>> result = without_gil([&] {
    std::lock_guard<std::mutex> lock(*self.mu);
    self.slot->active = &interrupt;
    auto r =
        texts.empty() ? llm.generate_ids(ids, params, stream) : llm.generate(texts, params, stream);
    self.slot->active = nullptr;
    return r;
  });
  interrupt.rethrow();
  std::vector<RequestOutput> outs = unwrap(std::move(result));
  py::list list;
  for (size_t i = 0; i < outs.size(); ++i) {
    list.append(to_python(outs[i], params[i].logprobs.has_value()));
  }
  if (single) return list[0];
  return list;
}

py::dict config_dict(const Model& model) {
  py::module_ json = py::module_::import("json");
  return json.attr("loads")(hf_config_json(model.config()));
}

}  // namespace

PyModel model_from_arg(py::handle value, const char* what) {
  if (py::isinstance<PyModel>(value)) return value.cast<PyModel>();
  if (py::isinstance<PyLLM>(value)) return value.cast<PyLLM&>().model;
  return load_py_model(path_string(value, what), "");
}

void bind_models(py::module_& m) {
  py::class_<PyTokenizer>(m, "Tokenizer",
                          "A tokenizer (tokenizer.json, SentencePiece .model, llama2.c "
                          "tokenizer.bin, GGUF vocabulary).")
      .def(py::init([](py::handle path, int64_t vocab_size) {
             return PyTokenizer{std::shared_ptr<const Tokenizer>(
                 unwrap(load_tokenizer(path_string(path, "Tokenizer"), vocab_size)))};
           }),
           py::arg("path"), py::arg("vocab_size") = 0)
      .def(
          "encode",
          [](const PyTokenizer& t, const std::string& text, bool add_bos) {
            return unwrap(t.tokenizer->encode(text, add_bos));
          },
          py::arg("text"), py::arg("add_bos") = true, "Token ids of `text`.")
      .def(
          "decode",
          [](const PyTokenizer& t, py::handle ids) {
            const std::vector<int32_t> v = to_int_list(ids, "Tokenizer.decode");
            return decode_utf8(unwrap(t.tokenizer->decode(v)));
          },
          py::arg("token_ids"), "Text of the ids.")
      .def("piece", [](const PyTokenizer& t, int32_t id) { return t.tokenizer->piece(id); })
      .def_property_readonly("vocab_size",
                             [](const PyTokenizer& t) { return t.tokenizer->vocab_size(); })
      .def_property_readonly("bos_id", [](const PyTokenizer& t) { return t.tokenizer->bos_id(); })
      .def_property_readonly("eos_id", [](const PyTokenizer& t) { return t.tokenizer->eos_id(); })
      .def_property_readonly("kind", [](const PyTokenizer& t) { return t.tokenizer->kind(); });

  py::class_<PyModel>(m, "Model",
                      "A model on the reference CPU runtime: an HF directory, .safetensors, "
                      ".gguf, llama2.c .bin (weights as stored, mmapped) or an .engine file.")
      .def(py::init([](py::handle path, py::object tokenizer) {
             return load_py_model(
                 path_string(path, "Model"),
                 tokenizer.is_none() ? "" : path_string(tokenizer, "Model: tokenizer"));
           }),
           py::arg("path"), py::arg("tokenizer") = py::none())
      .def_property_readonly(
          "config", [](const PyModel& p) { return config_dict(*p.model); },
          "The model config as a Hugging Face config.json dict.")
      .def_property_readonly("format", [](const PyModel& p) { return p.model->format(); })
      .def_property_readonly("path", [](const PyModel& p) { return p.path; })
      .def_property_readonly("is_engine", [](const PyModel& p) { return p.is_engine; })
      .def_property_readonly("vocab_size",
                             [](const PyModel& p) { return p.model->config().vocab_size; })
      .def_property_readonly("parameter_count",
                             [](const PyModel& p) { return p.model->parameter_count(); })
      .def_property_readonly("tokenizer",
                             [](const PyModel& p) -> py::object {
                               if (p.tokenizer == nullptr) return py::none();
                               return py::cast(PyTokenizer{p.tokenizer});
                             })
      .def_property_readonly("tensor_names",
                             [](const PyModel& p) {
                               std::vector<std::string> names;
                               for (const auto& [name, view] : p.model->weights().tensors()) {
                                 names.push_back(name);
                               }
                               return names;
                             })
      .def(
          "weight",
          [](py::object self, const std::string& name) {
            const PyModel& p = self.cast<const PyModel&>();
            TensorView v = unwrap(p.model->weights().get(name));
            return view_to_numpy(v, nullptr, self);  // the Model keeps the memory alive
          },
          py::arg("name"),
          "A read-only NumPy view of a stored tensor (no copy; the array keeps the model alive).")
      .def(
          "logits",
          [](const PyModel& p, py::handle ids, bool last_only) {
            return model_logits(p.model, to_int_list(ids, "Model.logits: token_ids"), last_only);
          },
          py::arg("token_ids"), py::arg("last_only") = false,
          "float32 logits [n_tokens, vocab] (or [1, vocab]) of the ids run from position 0, as "
          "a NumPy array over the C++ buffer.");

  py::class_<PyCompletionOutput>(m, "CompletionOutput", "One generated sequence.")
      .def_readonly("index", &PyCompletionOutput::index)
      .def_readonly("text", &PyCompletionOutput::text)
      .def_readonly("token_ids", &PyCompletionOutput::token_ids)
      .def_readonly("finish_reason", &PyCompletionOutput::finish_reason,
                    "'length', 'eos' or 'stop'.")
      .def_readonly("logprobs", &PyCompletionOutput::logprobs,
                    "Per token {id: logprob} of the sampled and the top-N tokens (None unless "
                    "SamplingParams.logprobs is set).")
      .def_readonly("cumulative_logprob", &PyCompletionOutput::cumulative_logprob)
      .def("__repr__", [](const PyCompletionOutput& c) {
        return "CompletionOutput(index=" + std::to_string(c.index) +
               ", text=" + std::string(py::repr(py::str(c.text))) +
               ", token_ids=" + std::string(py::repr(py::cast(c.token_ids))) + ", finish_reason='" +
               c.finish_reason + "')";
      });
  py::class_<PyRequestOutput>(m, "RequestOutput", "The result of one prompt.")
      .def_readonly("request_id", &PyRequestOutput::request_id, "The prompt's index.")
      .def_readonly("prompt", &PyRequestOutput::prompt)
      .def_readonly("prompt_token_ids", &PyRequestOutput::prompt_token_ids)
      .def_readonly("outputs", &PyRequestOutput::outputs)
      .def_property_readonly("finished", [](const PyRequestOutput&) { return true; })
      .def_property_readonly("text", [](const PyRequestOutput& r) { return r.outputs.at(0).text; })
      .def_property_readonly("token_ids",
                             [](const PyRequestOutput& r) { return r.outputs.at(0).token_ids; })
      .def("__repr__", [](const PyRequestOutput& r) {
        return "RequestOutput(request_id=" + std::to_string(r.request_id) +
               ", prompt=" + std::string(py::repr(py::str(r.prompt))) + ", outputs=[" +
               std::string(py::repr(py::cast(r.outputs.at(0)))) + "])";
      });

  py::class_<PyLLM>(m, "LLM",
                    "Offline inference (TensorRT-LLM's LLM): every prompt of a generate() call "
                    "runs together through in-flight batching over one paged KV cache.")
      .def(py::init(&make_llm), py::arg("model"), py::arg("build_config") = py::none(),
           py::arg("quant_config") = py::none(), py::arg("tokenizer") = py::none(),
           py::arg("deterministic") = true)
      .def("generate", &generate, py::arg("prompts"), py::arg("sampling_params") = py::none(),
           py::arg("on_token") = py::none(),
           "Generates for one prompt (returns a RequestOutput) or a list (returns a list). "
           "Prompts are texts (encoded with BOS) or token-id lists. on_token(index, token_id, "
           "text, finished) streams. Ctrl-C raises KeyboardInterrupt; the LLM stays usable.")
      .def(
          "logits",
          [](PyLLM& self, py::handle ids, bool last_only) {
            self.get();
            return model_logits(self.model.model, to_int_list(ids, "LLM.logits: token_ids"),
                                last_only);
          },
          py::arg("token_ids"), py::arg("last_only") = false)
      .def_property_readonly("tokenizer",
                             [](PyLLM& self) -> py::object {
                               if (self.get().tokenizer() == nullptr) return py::none();
                               return py::cast(PyTokenizer{self.get().tokenizer()});
                             })
      .def_property_readonly("model",
                             [](PyLLM& self) {
                               self.get();
                               return self.model;
                             })
      .def_property_readonly("build_config", [](PyLLM& self) { return self.get().build_config(); })
      .def_property_readonly(
          "kv_cache_storage",
          [](PyLLM& self) {
            return std::string(kv_cache_storage_name(self.get().kv_cache_storage()));
          })
      .def(
          "shutdown", [](PyLLM& self) { self.llm.reset(); },
          "Frees the KV cache and the model (the LLM cannot generate afterwards).")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyLLM& self, py::args) { self.llm.reset(); });
}

}  // namespace qforge::python
