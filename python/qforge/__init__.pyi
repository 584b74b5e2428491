# Type stubs of the qforge package (the classes and functions of qforge._qforge, re-exported).
import enum
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

PathLike = Union[str, os.PathLike]

class QuantAlgo(str, enum.Enum):
    NO_QUANT = "NO_QUANT"
    FP8 = "FP8"
    FP8_PER_CHANNEL_PER_TOKEN = "FP8_PER_CHANNEL_PER_TOKEN"
    FP8_BLOCK_SCALES = "FP8_BLOCK_SCALES"
    W8A16 = "W8A16"
    W4A16 = "W4A16"
    W4A16_AWQ = "W4A16_AWQ"
    W4A16_GPTQ = "W4A16_GPTQ"
    W8A16_GPTQ = "W8A16_GPTQ"
    W8A8_SQ_PER_CHANNEL = "W8A8_SQ_PER_CHANNEL"
    W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN = "W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN"
    W8A8_SQ_PER_TENSOR_PLUGIN = "W8A8_SQ_PER_TENSOR_PLUGIN"
    W4A8_AWQ = "W4A8_AWQ"
    NVFP4 = "NVFP4"
    W4A16_MXFP4 = "W4A16_MXFP4"
    W4A8_MXFP4_FP8 = "W4A8_MXFP4_FP8"
    MIXED_PRECISION = "MIXED_PRECISION"
    INT8 = "INT8"
    W4A16_AWQ_GPTQ = "W4A16_AWQ_GPTQ"

class QforgeError(Exception):
    code: str
    message: str
    context: List[str]

class InvalidArgumentError(QforgeError, ValueError): ...
class NotFoundError(QforgeError, FileNotFoundError): ...
class IoError(QforgeError, OSError): ...
class FormatError(QforgeError, ValueError): ...
class UnsupportedError(QforgeError, NotImplementedError): ...
class InternalError(QforgeError, RuntimeError): ...

def quant_algo_names() -> List[str]: ...
def qformats() -> List[Tuple[str, str, str]]: ...

class QuantConfig:
    quant_algo: str
    kv_cache_quant_algo: str
    group_size: int
    smoothquant_val: float
    has_zero_point: bool
    clamp_val: Optional[float]
    exclude_modules: List[str]
    layer_overrides: Dict[str, str]
    auto_quantize_bits: float
    auto_quantize_candidates: List[str]
    kv_cache_per_head: bool
    @property
    def qformat(self) -> str: ...
    def __init__(
        self,
        *,
        quant_algo: Union[str, QuantAlgo] = ...,
        kv_cache_quant_algo: Union[str, QuantAlgo] = ...,
        group_size: int = ...,
        smoothquant_val: float = ...,
        has_zero_point: bool = ...,
        clamp_val: Optional[float] = ...,
        exclude_modules: Optional[Sequence[str]] = ...,
        layer_overrides: Optional[Dict[str, str]] = ...,
        auto_quantize_bits: float = ...,
        auto_quantize_candidates: Sequence[str] = ...,
        kv_cache_per_head: bool = ...,
    ) -> None: ...
    def validate(self) -> None: ...
    def to_dict(self) -> Dict[str, Any]: ...

class CalibConfig:
    calib_dataset: Union[None, str, List[Union[str, os.PathLike]]]
    calib_size: int
    calib_batch_size: int
    calib_max_seq_length: int
    random_seed: int
    amax_method: str
    percentile: float
    jsonl_text_field: str
    mix_evenly: bool
    def __init__(
        self,
        *,
        calib_dataset: Union[None, PathLike, Sequence[Union[str, os.PathLike]]] = ...,
        calib_size: int = ...,
        calib_batches: int = ...,
        calib_batch_size: int = ...,
        calib_max_seq_length: int = ...,
        random_seed: int = ...,
        seed: int = ...,
        amax_method: str = ...,
        percentile: float = ...,
        jsonl_text_field: str = ...,
        mix_evenly: bool = ...,
    ) -> None: ...
    def validate(self) -> None: ...
    def to_dict(self) -> Dict[str, Any]: ...

class BuildConfig:
    max_input_len: int
    max_seq_len: int
    max_batch_size: int
    max_num_tokens: int
    precision: str
    quant_config: Optional[QuantConfig]  # reading it gives a copy
    kv_cache_block_size: int
    kv_cache_storage: Optional[str]
    kv_cache_blocks: int
    backend: str
    kernel_selection: bool
    memory_budget_bytes: int
    def __init__(
        self,
        *,
        max_input_len: int = ...,
        max_seq_len: int = ...,
        max_batch_size: int = ...,
        max_num_tokens: int = ...,
        precision: str = ...,
        quant_config: Optional[QuantConfig] = ...,
        kv_cache_block_size: int = ...,
        kv_cache_storage: Optional[str] = ...,
        kv_cache_blocks: int = ...,
        backend: str = ...,
        kernel_selection: bool = ...,
        memory_budget_bytes: int = ...,
    ) -> None: ...
    def validate(self) -> None: ...
    def to_dict(self) -> Dict[str, Any]: ...

class SamplingParams:
    max_tokens: int
    temperature: float
    top_k: int
    top_p: float
    min_p: float
    repetition_penalty: float
    seed: int
    stop: List[str]
    stop_token_ids: List[int]
    ignore_eos: bool
    logprobs: Optional[int]
    def __init__(
        self,
        *,
        max_tokens: int = ...,
        temperature: float = ...,
        top_k: int = ...,
        top_p: float = ...,
        min_p: float = ...,
        repetition_penalty: float = ...,
        seed: int = ...,
        random_seed: int = ...,
        stop: Union[str, Sequence[str]] = ...,
        stop_token_ids: Sequence[int] = ...,
        ignore_eos: bool = ...,
        logprobs: Optional[int] = ...,
    ) -> None: ...
    def validate(self) -> None: ...
    def to_dict(self) -> Dict[str, Any]: ...

class Tokenizer:
    def __init__(self, path: PathLike, vocab_size: int = 0) -> None: ...
    def encode(self, text: str, add_bos: bool = True) -> List[int]: ...
    def decode(self, token_ids: Sequence[int]) -> str: ...
    def piece(self, id: int) -> str: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def bos_id(self) -> int: ...
    @property
    def eos_id(self) -> int: ...
    @property
    def kind(self) -> str: ...

class Model:
    def __init__(self, path: PathLike, tokenizer: Optional[PathLike] = None) -> None: ...
    @property
    def config(self) -> Dict[str, Any]: ...
    @property
    def format(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def is_engine(self) -> bool: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def parameter_count(self) -> int: ...
    @property
    def tokenizer(self) -> Optional[Tokenizer]: ...
    @property
    def tensor_names(self) -> List[str]: ...
    def weight(self, name: str) -> np.ndarray: ...
    def logits(self, token_ids: Sequence[int], last_only: bool = False) -> npt.NDArray[np.float32]: ...

class CompletionOutput:
    index: int
    text: str
    token_ids: List[int]
    finish_reason: str
    logprobs: Optional[List[Dict[int, float]]]
    cumulative_logprob: Optional[float]

class RequestOutput:
    request_id: int
    prompt: str
    prompt_token_ids: List[int]
    outputs: List[CompletionOutput]
    finished: bool
    text: str
    token_ids: List[int]

Prompt = Union[str, Sequence[int]]
OnToken = Callable[[int, int, str, bool], Any]

class LLM:
    quantized_checkpoint: Optional[str]
    def __init__(
        self,
        model: Union[PathLike, Model],
        build_config: Optional[BuildConfig] = None,
        quant_config: Optional[QuantConfig] = None,
        calib_config: Optional[CalibConfig] = None,
        tokenizer: Optional[PathLike] = None,
        deterministic: bool = True,
        show_progress: bool = False,
    ) -> None: ...
    @overload
    def generate(
        self,
        prompts: str,
        sampling_params: Optional[SamplingParams] = None,
        on_token: Optional[OnToken] = None,
    ) -> RequestOutput: ...
    @overload
    def generate(
        self,
        prompts: Sequence[Prompt],
        sampling_params: Union[None, SamplingParams, Sequence[SamplingParams]] = None,
        on_token: Optional[OnToken] = None,
    ) -> Union[RequestOutput, List[RequestOutput]]: ...
    def logits(self, token_ids: Sequence[int], last_only: bool = False) -> npt.NDArray[np.float32]: ...
    @property
    def tokenizer(self) -> Optional[Tokenizer]: ...
    @property
    def model(self) -> Model: ...
    @property
    def build_config(self) -> BuildConfig: ...
    @property
    def kv_cache_storage(self) -> str: ...
    def shutdown(self) -> None: ...
    def __enter__(self) -> "LLM": ...
    def __exit__(self, *args: Any) -> None: ...

class LayerQuantReport:
    module: str
    format: str
    algorithm: str
    weight_rel_error: float
    output_rel_error: float
    input_scale: float
    calib_tokens: int

class QuantizeReport:
    layers: List[LayerQuantReport]
    auto_quantize_plan: str
    calib_samples: int
    calib_tokens: int
    calib_documents: int
    blocks_resumed: int
    output_bytes: int
    peak_rss_bytes: int
    seconds: float

def quantize(
    model_dir: PathLike,
    output_dir: PathLike,
    quant_config: Optional[QuantConfig] = None,
    calib_config: Optional[CalibConfig] = None,
    *,
    export_format: str = "modelopt",
    overwrite: bool = False,
    resume: bool = False,
    max_memory: int = 0,
    awq_max_tokens: int = 2048,
    awq_grid: int = 20,
    show_progress: bool = False,
    on_block: Optional[Callable[[int], Any]] = None,
    **calib: Any,
) -> QuantizeReport: ...

class EngineBuildReport:
    file_bytes: int
    seconds: float
    kernel_choices: List[str]

def convert(
    model: PathLike,
    output_dir: PathLike,
    dtype: str = "float32",
    tokenizer: Optional[PathLike] = None,
    overwrite: bool = False,
) -> List[str]: ...
def build(
    checkpoint_dir: PathLike, output: PathLike, build_config: Optional[BuildConfig] = None
) -> EngineBuildReport: ...

class KlDivergenceResult:
    tokens: int
    mean_kld: float
    mean_kld_stderr: float
    median_kld: float
    p99_kld: float
    max_kld: float
    top1_agreement: float
    top1_agreement_stderr: float
    ppl_base: float
    ppl: float
    ppl_ratio: float
    ln_ppl_ratio: float
    ln_ppl_ratio_stderr: float
    top_k: int

class PerplexityResult:
    ppl: float
    ppl_stderr: float
    mean_nll: float
    scored_tokens: int
    chunks: int
    seconds: float
    tokens_per_second: float
    protocol: str
    kl_divergence: Optional[KlDivergenceResult]

ModelArg = Union[PathLike, Model, LLM]

def perplexity(
    model: ModelArg,
    text: Optional[str] = None,
    *,
    dataset: Optional[PathLike] = None,
    ctx: int = 512,
    stride: int = 0,
    add_bos: bool = True,
    scoring: str = "all",
    max_chunks: int = 0,
    doc_separator: str = "",
    kv_cache: str = "",
    save_logits: Optional[PathLike] = None,
    kl_divergence_base: Optional[PathLike] = None,
    kld_top_k: int = 64,
    show_progress: bool = False,
) -> PerplexityResult: ...
def kl_divergence(
    base: ModelArg,
    model: ModelArg,
    text: Optional[str] = None,
    *,
    dataset: Optional[PathLike] = None,
    ctx: int = 512,
    stride: int = 0,
    add_bos: bool = True,
    scoring: str = "all",
    max_chunks: int = 0,
    doc_separator: str = "",
    top_k: int = 64,
    show_progress: bool = False,
) -> KlDivergenceResult: ...
