"""LLM, Model and Tokenizer from Python against the C++ CLI on stories260K: greedy ids equal
`qforge run`'s, text equals `qforge generate`'s, logits equal `qforge logits`' bit for bit,
arrays share the C++ memory, errors carry the CLI's messages, Ctrl-C and the GIL."""

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

import qforge
from qforge import LLM, BuildConfig, Model, SamplingParams

from conftest import cli_error

PROMPTS = ["Once upon a time", "The little dog", "Lily and Ben went to the park"]


def cli_run_ids(cli, *args):
    _, out, _ = cli("run", *args, "--temperature", "0", "--json", "-q")
    return json.loads(out[: out.rfind("]") + 1])


def test_greedy_ids_equal_the_cli(cli, stories_bin, stories_llm):
    outs = stories_llm.generate(PROMPTS, SamplingParams(max_tokens=30))
    ref = cli_run_ids(cli, "--model", stories_bin, "--max-tokens", "30",
                      *[a for p in PROMPTS for a in ("--prompt", p)])
    assert [o.prompt for o in outs] == PROMPTS
    for o, r in zip(outs, ref):
        assert o.prompt_token_ids == r["prompt_ids"]
        assert o.outputs[0].token_ids == r["output_ids"]
        assert o.outputs[0].text == r["text"]
        assert o.outputs[0].finish_reason == r["finish_reason"] == "length"
        assert o.token_ids == o.outputs[0].token_ids and o.text == o.outputs[0].text
    # `qforge generate` (one sequence on the reference session) prints the same text.
    _, text, _ = cli("generate", "--model", stories_bin, "--prompt", PROMPTS[0],
                     "--temperature", "0", "-n", "30", "--no-echo", "-q")
    assert text.rstrip("\n") == outs[0].outputs[0].text
    assert outs[0].outputs[0].text.startswith(", there was a little girl named Lily. She loved")


def test_engine_from_a_checkpoint_directory_equals_the_reference(cli, stories_bin, stories_hf):
    llm = LLM(stories_hf, build_config=BuildConfig(max_input_len=128, max_seq_len=256,
                                                   max_batch_size=4, precision="float32"))
    assert llm.model.is_engine and llm.kv_cache_storage == "f32"
    assert llm.build_config.max_batch_size == 4
    outs = llm.generate(PROMPTS, SamplingParams(max_tokens=24))
    ref = cli_run_ids(cli, "--model", stories_bin, "--max-tokens", "24",
                      *[a for p in PROMPTS for a in ("--prompt", p)])
    assert [o.outputs[0].token_ids for o in outs] == [r["output_ids"] for r in ref]


def test_sampling_streaming_logprobs_and_token_prompts(stories_llm):
    p = SamplingParams(max_tokens=12, temperature=0.9, top_k=20, seed=7, logprobs=3)
    a = stories_llm.generate(PROMPTS[0], p)
    b = stories_llm.generate(PROMPTS[0], p)
    assert a.outputs[0].token_ids == b.outputs[0].token_ids  # same seed, same tokens
    lps = a.outputs[0].logprobs
    assert len(lps) == 12
    for tok, lp in zip(a.outputs[0].token_ids, lps):
        assert tok in lp and 3 <= len(lp) <= 4 and all(v <= 0 for v in lp.values())
    assert a.outputs[0].cumulative_logprob == pytest.approx(
        sum(lp[t] for t, lp in zip(a.outputs[0].token_ids, lps)), rel=1e-5)
    # Streaming: every event's text joins into the final text; the last event says finished.
    events = []
    greedy = stories_llm.generate(
        PROMPTS, SamplingParams(max_tokens=10),
        on_token=lambda i, tok, text, done: events.append((i, tok, text, done)))
    for i, o in enumerate(greedy):
        mine = [e for e in events if e[0] == i]
        assert [e[1] for e in mine] == o.outputs[0].token_ids
        assert "".join(e[2] for e in mine) == o.outputs[0].text
        assert [e[3] for e in mine] == [False] * 9 + [True]
    # Token-id prompts run as they are; one SamplingParams per prompt.
    ids = stories_llm.tokenizer.encode(PROMPTS[0])
    assert ids[0] == stories_llm.tokenizer.bos_id == 1
    by_ids = stories_llm.generate([ids, ids], [SamplingParams(max_tokens=10),
                                               SamplingParams(max_tokens=3)])
    assert by_ids[0].outputs[0].token_ids == greedy[0].outputs[0].token_ids
    assert by_ids[1].outputs[0].token_ids == greedy[0].outputs[0].token_ids[:3]
    assert by_ids[0].prompt == ""
    # Stop strings cut the text (finish reason "stop").
    s = stories_llm.generate(PROMPTS[0], SamplingParams(max_tokens=30, stop=["Lily"]))
    assert s.outputs[0].finish_reason == "stop" and s.outputs[0].text == ", there was a little girl named "


def test_errors_carry_the_cli_messages(cli, stories_bin):
    llm = LLM(stories_bin, build_config=BuildConfig(max_input_len=4, max_seq_len=64,
                                                    precision="float32"))
    prompt = "Once upon a time there was a little girl"
    with pytest.raises(qforge.InvalidArgumentError) as e:
        llm.generate(prompt)
    code, _, err = cli("run", "--model", stories_bin, "--prompt", prompt, "--max-input-len", "4",
                       "-q", check=False)
    assert code == 1
    assert "but max_input_len is 4" in str(e.value)
    assert str(e.value).split(": ", 1)[1] == cli_error(err).split(": ", 1)[1]
    with pytest.raises(qforge.NotFoundError, match="does not exist"):
        LLM("/nonexistent/model.bin")
    with pytest.raises(qforge.NotFoundError) as e:
        Model("/nonexistent/model.bin")
    _, _, err = cli("inspect", "/nonexistent/model.bin", check=False)
    assert str(e.value) == cli_error(err)
    with pytest.raises(TypeError, match="prompts must be"):
        llm.generate(5)
    with pytest.raises(qforge.InvalidArgumentError, match="quant_config needs"):
        LLM(stories_bin, quant_config=qforge.QuantConfig(quant_algo="FP8"))
    # An exception inside the streaming callback ends generate() with it; the LLM stays usable.
    def boom(i, tok, text, done):
        raise RuntimeError("stop here")
    with pytest.raises(RuntimeError, match="stop here"):
        llm.generate("Once", SamplingParams(max_tokens=5), on_token=boom)
    assert len(llm.generate("Once", SamplingParams(max_tokens=5)).outputs[0].token_ids) == 5
    with LLM(stories_bin) as scoped:
        scoped.generate("Once", SamplingParams(max_tokens=1))
    with pytest.raises(qforge.InvalidArgumentError, match="shut down"):
        scoped.generate("Once")


def test_logits_and_weights_are_numpy_views(cli, stories_bin, tmp_path):
    model = Model(stories_bin)
    assert model.format == "llama2c" and model.vocab_size == 512
    cfg = model.config
    assert (cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"],
            cfg["num_attention_heads"], cfg["num_key_value_heads"]) == (64, 172, 5, 8, 4)
    ids = [1, 403, 407, 261, 378]
    logits = model.logits(ids)
    assert logits.shape == (5, 512) and logits.dtype == np.float32
    assert not logits.flags.owndata and type(logits.base).__name__ == "PyCapsule"
    cli("logits", "--model", stories_bin, "--ids", ",".join(map(str, ids)),
        "--output", tmp_path / "ref.npy")
    ref = np.load(tmp_path / "ref.npy")
    assert np.array_equal(logits, ref)  # bit for bit
    assert np.array_equal(model.logits(ids, last_only=True)[0], ref[-1])
    # Stored weights: read-only views of the mmapped file. llama2.c: a 28-byte header, then the
    # token embedding [vocab, dim] as float32.
    emb = model.weight("model.embed_tokens.weight")
    assert emb.shape == (512, 64) and not emb.flags.writeable and not emb.flags.owndata
    raw = np.fromfile(stories_bin, dtype=np.float32, count=512 * 64, offset=28).reshape(512, 64)
    assert np.array_equal(emb, raw)
    with pytest.raises(ValueError):
        emb[0, 0] = 1.0
    assert "model.norm.weight" in model.tensor_names
    with pytest.raises(qforge.NotFoundError):
        model.weight("no.such.tensor")
    del model  # the arrays keep the model's memory alive
    assert np.array_equal(emb, raw)
    # Tokenizer round trip, equal to `qforge tokenize`.
    tok = qforge.Tokenizer(stories_bin.parent / "tok512.model")
    ids = tok.encode("Once upon a time")
    assert tok.decode(ids) == "Once upon a time"
    _, out, _ = cli("tokenize", "--tokenizer", stories_bin.parent / "tok512.model",
                    "--text", "Once upon a time", "--json")
    assert json.loads(out)["ids"] == ids


def long_generate(llm):
    return llm.generate(["Once upon a time"] * 16,
                        SamplingParams(max_tokens=480, ignore_eos=True))


def test_ctrl_c_interrupts_generate_and_the_llm_stays_usable(stories_llm):
    # Python's handler, whatever SIGINT's inherited disposition (a background job ignores it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        long_generate(stories_llm)
    elapsed = time.monotonic() - t0
    timer.join()
    assert elapsed < 3.0, elapsed
    out = stories_llm.generate("Once upon a time", SamplingParams(max_tokens=30))
    assert out.outputs[0].text.startswith(", there was a little girl named Lily.")


def test_the_gil_is_released_while_generating(stories_llm):
    done = []
    worker = threading.Thread(target=lambda: done.append(
        stories_llm.generate(["Once upon a time"] * 4,
                             SamplingParams(max_tokens=400, ignore_eos=True))))
    ticks = 0
    worker.start()
    while worker.is_alive():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    assert len(done[0]) == 4 and all(len(o.outputs[0].token_ids) == 400 for o in done[0])
    assert ticks > 20  # the main thread ran while C++ generated


def test_build_writes_an_engine_that_llm_and_model_open(cli, stories_bin, stories_hf, tmp_path):
    bc = BuildConfig(max_input_len=64, max_seq_len=128, max_batch_size=2, precision="float32",
                     kernel_selection=False)
    report = qforge.build(stories_hf, tmp_path / "s.engine", bc)
    assert report.file_bytes == (tmp_path / "s.engine").stat().st_size > 0
    assert report.seconds >= 0
    llm = LLM(tmp_path / "s.engine")
    assert llm.build_config.max_seq_len == 128 and llm.model.is_engine
    ref = cli_run_ids(cli, "--model", stories_bin, "--max-tokens", "16", "--prompt", PROMPTS[0])
    assert llm.generate(PROMPTS[0], SamplingParams(max_tokens=16)).token_ids == ref[0]["output_ids"]
    model = Model(tmp_path / "s.engine")
    assert model.is_engine and model.tokenizer.encode(PROMPTS[0]) == ref[0]["prompt_ids"]
    bad = BuildConfig(max_input_len=64, max_seq_len=128)
    bad.max_input_len = 4096  # set after construction: build() validates it
    with pytest.raises(qforge.InvalidArgumentError, match="max_input_len"):
        qforge.build(stories_hf, tmp_path / "bad.engine", bad)
    assert not (tmp_path / "bad.engine").exists()


def test_error_classes_follow_the_error_code(cli, mix_dir, tmp_path):
    # A corrupt file: FormatError (a ValueError) with the CLI's message.
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(qforge.FormatError) as e:
        Model(bad)
    assert isinstance(e.value, ValueError) and e.value.code == "format error"
    _, _, err = cli("inspect", bad, check=False)
    assert str(e.value) == cli_error(err)
    assert e.value.message in str(e.value) and isinstance(e.value.context, list)
    # BF16 weights have no NumPy dtype: UnsupportedError (a NotImplementedError).
    with pytest.raises(qforge.UnsupportedError, match="NumPy has no dtype for bf16") as e:
        Model(mix_dir).weight("model.embed_tokens.weight")
    assert isinstance(e.value, NotImplementedError)
    # A directory where a file is expected: IoError or NotFoundError, both OSErrors.
    with pytest.raises(OSError):
        qforge.Tokenizer(tmp_path)
