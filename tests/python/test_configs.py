"""QuantConfig, CalibConfig, BuildConfig, SamplingParams: TensorRT-LLM keyword names, string enum
values parsed by the C++ parsers, unknown keywords and values rejected with the valid ones, and
the C++ messages raised unchanged (the same text the CLI prints)."""

import copy
import pathlib

import pytest

import qforge
from qforge import BuildConfig, CalibConfig, QuantAlgo, QuantConfig, SamplingParams

from conftest import cli_error


def test_quant_config_takes_tensorrt_llm_names():
    qc = QuantConfig(quant_algo="FP8", kv_cache_quant_algo="FP8")
    assert qc.quant_algo == "FP8" and qc.kv_cache_quant_algo == "FP8"
    assert qc.group_size == 128 and qc.exclude_modules == ["lm_head"]
    assert qc.qformat == "fp8"
    qc = QuantConfig(quant_algo=QuantAlgo.W4A16_AWQ, group_size=64, has_zero_point=True)
    assert (qc.quant_algo, qc.group_size, qc.has_zero_point, qc.qformat) == (
        "W4A16_AWQ", 64, True, "int4_awq")
    # qformat short names and lower case are accepted, stored as the QuantAlgo name.
    assert QuantConfig(quant_algo="int8_sq").quant_algo == "W8A8_SQ_PER_CHANNEL"
    assert QuantConfig(quant_algo="nvfp4").quant_algo == "NVFP4"
    qc = QuantConfig(quant_algo="W8A8_SQ_PER_CHANNEL", smoothquant_val=0.8, clamp_val=1e3,
                     exclude_modules=["model.layers.0.*"],
                     layer_overrides={"*.down_proj": "FP8"})
    assert qc.smoothquant_val == pytest.approx(0.8)
    assert qc.clamp_val == pytest.approx(1e3)
    assert qc.layer_overrides == {"*.down_proj": "FP8"}
    assert QuantConfig().clamp_val is None
    # Every C++ QuantAlgo is in the Python enum, spelled the same.
    assert [a.value for a in QuantAlgo] == qforge.quant_algo_names()
    assert "W4A8_MXFP4_FP8" in qforge.quant_algo_names()
    assert ("int4_awq", "W4A16_AWQ") in [q[:2] for q in qforge.qformats()]


def test_unknown_keywords_and_values_are_rejected_with_the_valid_ones():
    with pytest.raises(TypeError) as e:
        QuantConfig(quant_algo="FP8", kv_cache_dtype="fp8")
    assert str(e.value).startswith(
        "QuantConfig() got an unexpected keyword argument 'kv_cache_dtype'; valid keywords: "
        "quant_algo, kv_cache_quant_algo, group_size")
    with pytest.raises(qforge.InvalidArgumentError) as e:
        QuantConfig(quant_algo="FP9")
    msg = str(e.value)
    assert msg.startswith("unknown quantization algorithm 'FP9'; expected a QuantAlgo name (")
    for name in qforge.quant_algo_names():
        assert name in msg
    assert "int4_awq" in msg
    assert isinstance(e.value, ValueError) and e.value.code == "invalid argument"
    with pytest.raises(TypeError, match=r"QuantConfig.group_size: expected int, got str"):
        QuantConfig(group_size="128")
    with pytest.raises(TypeError, match=r"SamplingParams.ignore_eos: expected bool, got int"):
        SamplingParams(ignore_eos=1)
    with pytest.raises(TypeError, match=r"BuildConfig\(\) got an unexpected keyword argument "
                                        r"'max_beam_width'; valid keywords: max_input_len"):
        BuildConfig(max_beam_width=4)
    with pytest.raises(TypeError, match=r"valid keywords: max_tokens, temperature"):
        SamplingParams(beam_width=2)


def test_validation_is_the_cpp_validation():
    # validate_quant_config: the group size must be a power of two.
    with pytest.raises(qforge.InvalidArgumentError, match="group_size"):
        QuantConfig(quant_algo="W4A16", group_size=96)
    with pytest.raises(qforge.InvalidArgumentError, match="smoothquant_val"):
        QuantConfig(quant_algo="W8A8_SQ_PER_CHANNEL", smoothquant_val=1.5)
    with pytest.raises(qforge.InvalidArgumentError, match="max_input_len"):
        BuildConfig(max_input_len=9000, max_seq_len=8192)
    with pytest.raises(qforge.InvalidArgumentError, match="top-p"):
        SamplingParams(top_p=0.0)
    with pytest.raises(qforge.InvalidArgumentError, match="temperature"):
        SamplingParams(temperature=-1.0)
    # A config changed after construction is checked by validate() (and by every call using it).
    qc = QuantConfig(quant_algo="W4A16")
    qc.group_size = 100
    with pytest.raises(qforge.InvalidArgumentError, match="group_size"):
        qc.validate()


def test_enum_errors_carry_the_cli_message(cli, stories_bin, tmp_path):
    # The same parser behind BuildConfig(precision=...) and `qforge build --precision`.
    with pytest.raises(qforge.InvalidArgumentError) as e:
        BuildConfig(precision="float17")
    code, _, err = cli("build", "--checkpoint", stories_bin, "--output", tmp_path / "x.engine",
                       "--precision", "float17", check=False)
    assert code == 1
    assert str(e.value) == cli_error(err)
    assert str(e.value).startswith("parse_dtype: unknown dtype 'float17' (expected one of")
    # KV-cache storage: BuildConfig(kv_cache_storage=...) and `qforge run --kv-cache`.
    with pytest.raises(qforge.InvalidArgumentError) as e:
        BuildConfig(kv_cache_storage="fp7")
    code, _, err = cli("run", "--model", stories_bin, "--prompt", "x", "--kv-cache", "fp7",
                       check=False)
    assert code == 1 and str(e.value) == cli_error(err)


def test_build_config_fields_and_nested_quant_config():
    qc = QuantConfig(quant_algo="FP8", kv_cache_quant_algo="FP8")
    bc = BuildConfig(max_input_len=4096, max_seq_len=8192, max_batch_size=64,
                     precision="float16", quant_config=qc)
    assert (bc.max_input_len, bc.max_seq_len, bc.max_batch_size) == (4096, 8192, 64)
    assert bc.precision == "float16" and bc.backend == "cpu"
    assert BuildConfig(precision="bf16").precision == "bfloat16"
    assert BuildConfig(precision="F32").precision == "float32"
    assert bc.quant_config == qc
    # Reading quant_config gives a copy; a changed one is assigned back.
    q = bc.quant_config
    q.group_size = 64
    assert bc.quant_config.group_size == 128
    bc.quant_config = q
    assert bc.quant_config.group_size == 64 and qc.group_size == 128
    bc.quant_config = None
    assert q.group_size == 64 and q.exclude_modules == ["lm_head"]  # still its own object
    bc.quant_config = qc
    assert BuildConfig(kv_cache_storage="fp8").kv_cache_storage == "fp8"
    with pytest.raises(TypeError, match="expected a QuantConfig"):
        BuildConfig(quant_config={"quant_algo": "FP8"})
    d = bc.to_dict()
    assert d["quant_config"]["quant_algo"] == "FP8" and d["max_seq_len"] == 8192
    assert d["quant_config"]["kv_cache_quant_algo"] == "FP8"
    assert repr(bc).startswith("BuildConfig(max_input_len=4096, max_seq_len=8192")
    c = copy.deepcopy(bc)
    assert c == bc
    c.max_batch_size = 1
    assert c != bc and bc.max_batch_size == 64


def test_calib_config_dataset_forms_and_aliases(tmp_path):
    cc = CalibConfig(calib_dataset=["one text", "another"], calib_batches=16,
                     calib_batch_size=8, calib_max_seq_length=256, random_seed=7)
    assert cc.calib_dataset == ["one text", "another"]
    assert (cc.calib_size, cc.calib_batch_size, cc.calib_max_seq_length, cc.random_seed) == (
        16, 8, 256, 7)
    assert CalibConfig(seed=3).random_seed == 3
    f = tmp_path / "calib.txt"
    assert CalibConfig(calib_dataset=f).calib_dataset == str(f)
    assert CalibConfig(calib_dataset=str(f)).calib_dataset == str(f)
    assert CalibConfig(calib_dataset=[f, "text"]).calib_dataset == [pathlib.Path(f), "text"]
    assert CalibConfig().calib_dataset is None
    with pytest.raises(qforge.InvalidArgumentError, match="no calibration data"):
        CalibConfig().validate()
    with pytest.raises(TypeError, match="calib_dataset"):
        CalibConfig(calib_dataset=5)
    with pytest.raises(TypeError, match="'device'"):
        CalibConfig(device="cuda")


def test_sampling_params_fields():
    p = SamplingParams(max_tokens=16, temperature=0.7, top_k=40, top_p=0.9, seed=5,
                       stop="\n", stop_token_ids=[2], logprobs=3, repetition_penalty=1.1)
    assert p.stop == ["\n"] and p.stop_token_ids == [2] and p.logprobs == 3
    assert p.temperature == pytest.approx(0.7) and p.seed == 5
    assert SamplingParams().temperature == 0.0 and SamplingParams().logprobs is None
    assert SamplingParams(random_seed=9).seed == 9
    with pytest.raises(qforge.InvalidArgumentError, match="logprobs"):
        SamplingParams(logprobs=100)
