"""quantize() with in-memory calibration texts, convert(), perplexity() and kl_divergence()
against the CLI: the same checkpoint as `qforge quantize` on the same texts in a JSONL file,
the same PPL, protocol and KLD as `qforge eval ppl`, interchangeable log-prob files, Ctrl-C."""

import json
import os
import re
import signal
import threading
import time

import numpy as np
import pytest

import qforge
from qforge import LLM, Model, QuantConfig, SamplingParams, kl_divergence, perplexity, quantize

from conftest import cli_error

PROBE = [1, 403, 407, 261, 378, 290, 500, 32]


def test_quantize_in_memory_texts_equals_the_cli_on_a_file(cli, stories_hf, calib_texts,
                                                           tmp_path):
    qc = QuantConfig(quant_algo="FP8", kv_cache_quant_algo="FP8")
    report = quantize(model_dir=stories_hf, output_dir=tmp_path / "py", quant_config=qc,
                      calib_dataset=calib_texts, calib_batch_size=8, calib_max_seq_length=64,
                      calib_size=6)
    assert report.calib_samples == 6 and report.calib_tokens == 6 * 64
    assert report.calib_documents >= 1 and report.output_bytes > 0
    assert len(report.layers) == 5 * 7
    assert {(l.format, l.algorithm) for l in report.layers} == {("fp8", "rtn")}
    assert all(l.input_scale > 0 and 0 < l.weight_rel_error < 0.1 for l in report.layers)
    jsonl = tmp_path / "calib.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for t in calib_texts))
    cli("quantize", "--model", stories_hf, "--output", tmp_path / "cli", "--qformat", "fp8",
        "--kv-cache", "fp8", "--calib", jsonl, "--calib-size", 6, "--calib-max-seq-len", 64,
        "--quiet")
    for name in ("hf_quant_config.json", "config.json"):
        assert (tmp_path / "py" / name).read_text() == (tmp_path / "cli" / name).read_text()
    py, ref = Model(tmp_path / "py"), Model(tmp_path / "cli")
    assert np.array_equal(py.logits(PROBE), ref.logits(PROBE))
    # The quantized checkpoint loads and generates (FP8 KV cache from its calibrated scales).
    llm = LLM(tmp_path / "py", build_config=qforge.BuildConfig(
        max_input_len=64, max_seq_len=128, max_batch_size=2, kernel_selection=False))
    assert llm.kv_cache_storage == "fp8"
    assert len(llm.generate("Once upon a time", SamplingParams(max_tokens=8)).token_ids) == 8


def test_quantize_options_and_errors(cli, stories_bin, stories_hf, calib_texts, tmp_path):
    # INT4 groups: 172 input features take no power-of-two group in the ModelOpt layout; the
    # compressed-tensors layout pads the last group.
    qc = QuantConfig(quant_algo="W4A16_AWQ", group_size=32)
    with pytest.raises(qforge.InvalidArgumentError, match="group size 32 does not divide its 172"):
        quantize(stories_hf, tmp_path / "awq", qc, calib_dataset=calib_texts,
                 calib_max_seq_length=32, calib_size=2)
    r = quantize(stories_hf, tmp_path / "awq", qc, calib_dataset=calib_texts,
                 calib_max_seq_length=32, calib_size=2, export_format="compressed-tensors",
                 awq_grid=4)
    assert {l.algorithm for l in r.layers} == {"awq"}
    assert json.loads((tmp_path / "awq" / "config.json").read_text())["quantization_config"]
    # A CalibConfig object, with a keyword on top; TensorRT-LLM's calib_batches.
    cc = qforge.CalibConfig(calib_dataset=calib_texts, calib_batches=3, calib_max_seq_length=32)
    r = quantize(stories_hf, tmp_path / "w8", QuantConfig(quant_algo="W8A16"), cc,
                 calib_max_seq_length=48)
    assert r.calib_samples == 3 and r.calib_tokens == 3 * 48
    assert cc.calib_max_seq_length == 32  # the caller's config is not changed
    with pytest.raises(TypeError, match=r"quantize\(\) got an unexpected keyword argument "
                                        r"'calib_sizes'; valid keywords: calib_dataset"):
        quantize(stories_hf, tmp_path / "x", calib_sizes=4)
    with pytest.raises(qforge.InvalidArgumentError, match="no calibration data"):
        quantize(stories_hf, tmp_path / "x")
    with pytest.raises(qforge.InvalidArgumentError, match="fewer than one sample"):
        quantize(stories_hf, tmp_path / "x", calib_dataset=["too short"],
                 calib_max_seq_length=64)
    # Not a Hugging Face directory: the CLI's message.
    with pytest.raises(qforge.QforgeError) as e:
        quantize(stories_bin, tmp_path / "x", calib_dataset=calib_texts)
    code, _, err = cli("quantize", "--model", stories_bin, "--output", tmp_path / "x",
                       "--calib", stories_bin.parent / "config.json", check=False)
    assert code == 1 and str(e.value) == cli_error(err)
    assert not (tmp_path / "x").exists()


def test_llm_quant_config_quantizes_then_caches(stories_hf, calib_texts):
    qc = QuantConfig(quant_algo="FP8")
    cc = qforge.CalibConfig(calib_dataset=calib_texts, calib_size=4, calib_max_seq_length=64)
    bc = qforge.BuildConfig(max_input_len=64, max_seq_len=128, max_batch_size=2,
                            kernel_selection=False)
    llm = LLM(stories_hf, build_config=bc, quant_config=qc, calib_config=cc)
    ckpt = llm.quantized_checkpoint
    assert ckpt is not None and os.path.isfile(os.path.join(ckpt, "hf_quant_config.json"))
    mtime = os.stat(os.path.join(ckpt, "config.json")).st_mtime_ns
    again = LLM(stories_hf, build_config=bc, quant_config=qc, calib_config=cc)
    assert again.quantized_checkpoint == ckpt
    assert os.stat(os.path.join(ckpt, "config.json")).st_mtime_ns == mtime  # reused
    assert (again.generate("Once upon a time", SamplingParams(max_tokens=10)).token_ids ==
            llm.generate("Once upon a time", SamplingParams(max_tokens=10)).token_ids)
    with pytest.raises(qforge.InvalidArgumentError, match="needs calibration data"):
        LLM(stories_hf, build_config=bc, quant_config=qc)


def parse_cli_ppl(out):
    m = re.search(r"PPL = ([0-9.]+) \+/- ([0-9.]+)\s+\(mean NLL ([0-9.]+) nats over (\d+) tokens",
                  out)
    protocol = re.search(r"^protocol: (.*)$", out, flags=re.M).group(1)
    return float(m.group(1)), float(m.group(2)), float(m.group(3)), int(m.group(4)), protocol


def test_perplexity_equals_the_cli(cli, stories_bin, tinystories, stories_llm):
    r = perplexity(stories_bin, dataset=tinystories, ctx=128, max_chunks=6)
    _, out, _ = cli("eval", "ppl", "--model", stories_bin, "--dataset", tinystories,
                    "--ctx", 128, "--max-chunks", 6, "--no-progress")
    ppl, stderr, nll, tokens, protocol = parse_cli_ppl(out)
    assert (round(r.ppl, 4), round(r.ppl_stderr, 4), round(r.mean_nll, 6)) == (ppl, stderr, nll)
    assert r.scored_tokens == tokens == 6 * 127 and r.chunks == 6
    assert r.protocol == protocol
    assert r.kl_divergence is None
    # An LLM and a Model give the same; second-half scoring and a stride as the CLI's.
    assert perplexity(stories_llm, dataset=tinystories, ctx=128, max_chunks=6).ppl == r.ppl
    half = perplexity(Model(stories_bin), dataset=tinystories, ctx=128, max_chunks=6,
                      scoring="second-half")
    _, out, _ = cli("eval", "ppl", "--model", stories_bin, "--dataset", tinystories,
                    "--ctx", 128, "--max-chunks", 6, "--scoring", "second-half", "--no-progress")
    assert round(half.ppl, 4) == parse_cli_ppl(out)[0]
    # Text given directly.
    text = tinystories.read_text(encoding="utf-8")[:20000]
    t = perplexity(stories_bin, text, ctx=64, max_chunks=3)
    assert t.scored_tokens == 3 * 63 and t.protocol.startswith("dataset '<text>'")
    with pytest.raises(qforge.InvalidArgumentError, match="ppl scoring|scoring"):
        perplexity(stories_bin, text, scoring="third")
    with pytest.raises(TypeError, match="one of text="):
        perplexity(stories_bin)
    with pytest.raises(qforge.InvalidArgumentError, match="exceeds the model's "
                                                          "max_position_embeddings 512"):
        perplexity(stories_bin, text, ctx=1024)


def parse_cli_kld(out):
    mean = float(re.search(r"Mean\s+KLD:\s+(-?[0-9.]+)", out).group(1))
    same = float(re.search(r"Same top token:\s+([0-9.]+)%", out).group(1))
    ratio = float(re.search(r"PPL\(Q\)/PPL\(base\):\s+([0-9.]+)", out).group(1))
    return mean, same, ratio


def test_kl_divergence_equals_the_cli_and_files_interchange(cli, stories_bin, tinystories,
                                                            tmp_path):
    # stories260K against its llama2.c INT8 export (groups of 4), one tokenizer (tok512.bin).
    base = stories_bin
    quant = stories_bin.parent / "stories260K_q80_gs4.bin"
    if not quant.exists():
        pytest.skip(f"needs {quant}")
    args = ("--dataset", tinystories, "--ctx", 128, "--max-chunks", 4, "--no-progress")
    # Python saves the base, the CLI compares against it.
    perplexity(base, dataset=tinystories, ctx=128, max_chunks=4,
               save_logits=tmp_path / "base.logprobs")
    _, out, _ = cli("eval", "ppl", "--model", quant, *args,
                    "--kl-divergence-base", tmp_path / "base.logprobs")
    cli_mean, cli_same, cli_ratio = parse_cli_kld(out)
    k = kl_divergence(base, quant, dataset=tinystories, ctx=128, max_chunks=4)
    assert round(k.mean_kld, 6) == cli_mean and round(100 * k.top1_agreement, 3) == cli_same
    assert round(k.ppl_ratio, 6) == cli_ratio
    assert 0 < k.mean_kld < 0.05 and k.top1_agreement > 0.9 and k.tokens == 4 * 127
    # The CLI saves, Python compares.
    cli("eval", "ppl", "--model", base, *args, "--save-logits", tmp_path / "cli.logprobs")
    r = perplexity(quant, dataset=tinystories, ctx=128, max_chunks=4,
                   kl_divergence_base=tmp_path / "cli.logprobs")
    assert r.kl_divergence.mean_kld == k.mean_kld
    # A model against itself.
    same = kl_divergence(base, base, dataset=tinystories, ctx=128, max_chunks=2)
    assert same.mean_kld == 0 and same.top1_agreement == 1 and same.ppl_ratio == 1
    # Another protocol than the base file's: the C++ error, which shows both.
    with pytest.raises(qforge.InvalidArgumentError, match="protocol"):
        perplexity(quant, dataset=tinystories, ctx=64, max_chunks=4,
                   kl_divergence_base=tmp_path / "cli.logprobs")


def interrupt_after(seconds):
    # Python's handler, whatever SIGINT's inherited disposition (a background job ignores it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_ctrl_c_interrupts_perplexity_and_quantize(stories_bin, stories_hf, tinystories,
                                                   calib_texts, tmp_path):
    signal.signal(signal.SIGINT, signal.default_int_handler)
    t0 = time.monotonic()
    timer = interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        perplexity(stories_bin, dataset=tinystories, ctx=512)  # ~790 chunks
    timer.join()
    assert time.monotonic() - t0 < 3.0
    # quantize stops after the block it is in; the partial run is kept for resume=True. The
    # signal is sent from the progress callback after block 1, so it lands mid-run on any machine.
    out = tmp_path / "q"
    blocks = []

    def on_block(i):
        blocks.append(i)
        if i == 1:
            os.kill(os.getpid(), signal.SIGINT)

    args = dict(quant_config=QuantConfig(quant_algo="FP8"), calib_dataset=calib_texts,
                calib_size=4, calib_max_seq_length=64)
    with pytest.raises(KeyboardInterrupt):
        quantize(stories_hf, out, on_block=on_block, **args)
    assert blocks == [0, 1]
    assert not out.exists() and (tmp_path / "q.partial").exists()
    r = quantize(stories_hf, out, resume=True, on_block=blocks.append, **args)
    assert r.blocks_resumed == 2 and blocks == [0, 1, 2, 3, 4]
    assert out.exists() and not (tmp_path / "q.partial").exists()
    # An exception from the callback stops the run the same way.
    with pytest.raises(ZeroDivisionError):
        quantize(stories_hf, tmp_path / "z", on_block=lambda i: 1 / 0, **args)
    assert not (tmp_path / "z").exists()
