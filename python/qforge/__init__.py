"""qforge from Python: quantize LLMs and run them on the CPU, with TensorRT-LLM's API names.

    from qforge import QuantConfig, BuildConfig, LLM, quantize

Every class and function wraps qforge's C++ library (the extension module ``qforge._qforge``);
errors it reports are raised as :class:`QforgeError` subclasses carrying the same message the
``qforge`` CLI prints. Long calls release the GIL and stop on Ctrl-C with KeyboardInterrupt.
See docs/PYTHON.md.
"""

import copy as _copy
import enum as _enum
import hashlib as _hashlib
import json as _json
import os as _os

from . import _qforge
from ._qforge import (
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
QuantAlgo.__doc__ = ("TensorRT-LLM's QuantAlgo names (a str enum): accepted wherever a quant_algo "
                     "or kv_cache_quant_algo is, as is the plain string.")
QuantAlgo.__str__ = lambda self: self.value


def _cache_root():
    """The engine cache qforge::open_engine uses ($QFORGE_CACHE, $XDG_CACHE_HOME/qforge, ...)."""
    if _os.environ.get("QFORGE_CACHE"):
        return _os.environ["QFORGE_CACHE"]
    if _os.environ.get("XDG_CACHE_HOME"):
        return _os.path.join(_os.environ["XDG_CACHE_HOME"], "qforge")
    if _os.environ.get("HOME"):
        return _os.path.join(_os.environ["HOME"], ".cache", "qforge")
    import tempfile

    return _os.path.join(tempfile.gettempdir(), "qforge-cache")


def _quantized_checkpoint(model_dir, quant_config, calib_config, show_progress):
    """quantize() of `model_dir` into the cache, keyed by its files, both configs and the version;
    reused while they are unchanged (as open_engine reuses built engines)."""
    if calib_config is None:
        raise InvalidArgumentError(
            f"LLM: quant_config {quant_config.quant_algo} quantizes the checkpoint first, which "
            "needs calibration data: pass calib_config=CalibConfig(calib_dataset=[texts...] or a "
            "path)")
    real = _os.path.realpath(_os.fspath(model_dir))
    h = _hashlib.sha256(real.encode())
    for name in sorted(_os.listdir(real)):
        st = _os.stat(_os.path.join(real, name))
        h.update(f"{name} {st.st_size} {st.st_mtime_ns}\n".encode())
    for part in (quant_config.to_dict(), calib_config.to_dict(), __version__):
        h.update(_json.dumps(part, sort_keys=True, default=str).encode())
    name = f"{_os.path.basename(real)}-{quant_config.quant_algo.lower()}-{h.hexdigest()[:16]}"
    out = _os.path.join(_cache_root(), name)
    if not _os.path.isfile(_os.path.join(out, "config.json")):
        _os.makedirs(_cache_root(), exist_ok=True)
        quantize(real, out, quant_config, calib_config, overwrite=True,
                 show_progress=show_progress)
    return out


class LLM(_qforge.LLM):
    """Offline inference over one model (TensorRT-LLM's ``LLM``).

    ``model``: a checkpoint directory (built into a cached ``.engine`` for ``build_config``), an
    ``.engine`` file, a model file (llama2.c ``.bin``, ``.gguf``, ``.safetensors``: run as it is
    on the reference runtime) or a :class:`Model`. ``quant_config`` (or
    ``build_config.quant_config``) quantizes an unquantized checkpoint directory first, with
    ``calib_config`` as calibration data; the quantized checkpoint is cached too
    (``self.quantized_checkpoint`` is its path).
    """

    def __init__(self, model, build_config=None, quant_config=None, calib_config=None,
                 tokenizer=None, deterministic=True, show_progress=False):
        if build_config is not None:
            build_config = _copy.copy(build_config)
            if quant_config is None and build_config.quant_config is not None:
                quant_config = build_config.quant_config
            build_config.quant_config = None
        self.quantized_checkpoint = None
        if quant_config is not None and quant_config.quant_algo != "NO_QUANT":
            if not (isinstance(model, (str, _os.PathLike)) and _os.path.isdir(model)):
                raise InvalidArgumentError(
                    f"LLM: quant_config needs an unquantized checkpoint directory, and "
                    f"{model!r} is not one (write a model file as one with qforge.convert)")
            model = _quantized_checkpoint(model, quant_config, calib_config, show_progress)
            self.quantized_checkpoint = model
        elif calib_config is not None:
            raise TypeError("LLM: calib_config is only used with a quant_config")
        super().__init__(model, build_config, None, tokenizer, deterministic)


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
