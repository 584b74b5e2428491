"""qforge from Python: quantize LLMs and run them on the CPU, with TensorRT-LLM's API names.

    from qforge import QuantConfig, BuildConfig, LLM, quantize

Every class and function wraps qforge's C++ library (the extension module ``qforge._qforge``);
errors it reports are raised as :class:`QforgeError` subclasses carrying the same message the
``qforge`` CLI prints. Long calls release the GIL and stop on Ctrl-C with KeyboardInterrupt.
See docs/PYTHON.md.
"""

import enum as _enum

from ._qforge import (
    LLM,
    BuildConfig,
    CalibConfig,
    CompletionOutput,
    EngineBuildReport,
    FormatError,
    InternalError,
    InvalidArgumentError,
    IoError,
    KlDivergenceResult,
    LayerQuantReport,
    Model,
    NotFoundError,
    PerplexityResult,
    QforgeError,
    QuantConfig,
    QuantizeReport,
    RequestOutput,
    SamplingParams,
    Tokenizer,
    UnsupportedError,
    build,
    convert,
    kl_divergence,
    perplexity,
    qformats,
    quant_algo_names,
    quantize,
)

__version__ = "0.1.0"

# TensorRT-LLM's QuantAlgo as a str enum: QuantAlgo.W4A16_AWQ == "W4A16_AWQ", so either spelling
# works wherever a quant_algo is taken.
QuantAlgo = _enum.Enum("QuantAlgo", {name: name for name in quant_algo_names()}, type=str)
QuantAlgo.__module__ = __name__
QuantAlgo.__str__ = lambda self: self.value

__all__ = [
    "BuildConfig",
    "CalibConfig",
    "CompletionOutput",
    "EngineBuildReport",
    "FormatError",
    "InternalError",
    "InvalidArgumentError",
    "IoError",
    "KlDivergenceResult",
    "LLM",
    "LayerQuantReport",
    "Model",
    "NotFoundError",
    "PerplexityResult",
    "QforgeError",
    "QuantAlgo",
    "QuantConfig",
    "QuantizeReport",
    "RequestOutput",
    "SamplingParams",
    "Tokenizer",
    "UnsupportedError",
    "build",
    "convert",
    "kl_divergence",
    "perplexity",
    "qformats",
    "quant_algo_names",
    "quantize",
]
