"""The package itself: every public name has a type stub and a docstring, the stub marker is
shipped, and the build-tree package is the one under test."""

import pathlib
import re

import qforge


def test_every_public_name_has_a_stub_and_docs():
    pkg = pathlib.Path(qforge.__file__).parent
    assert (pkg / "py.typed").exists()
    stub = (pkg / "__init__.pyi").read_text(encoding="utf-8")
    declared = set(re.findall(r"^(?:class|def) (\w+)", stub, flags=re.M))
    missing = [n for n in qforge.__all__ if n not in declared]
    assert not missing, missing
    for name in qforge.__all__:
        obj = getattr(qforge, name)
        assert obj.__doc__, name
    assert "Ctrl-C" in qforge.LLM.generate.__doc__
    assert "calib_dataset" in qforge.quantize.__doc__
    # Properties document their meaning.
    assert "'FP8', 'INT8' or 'NO_QUANT'" in qforge.QuantConfig.kv_cache_quant_algo.__doc__


def test_module_comes_from_the_build_tree():
    so = list(pathlib.Path(qforge.__file__).parent.glob("_qforge*.so"))
    assert len(so) == 1
    assert qforge.__version__ == "0.1.0"
