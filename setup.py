"""`pip install .` for the qforge Python package: a plain setuptools build that drives the
project's CMake (nothing is downloaded). The extension is built against the Python running pip
(sys.executable, which needs pybind11 and NumPy: Debian's python3-pybind11 and python3-numpy,
e.g. in a `python3 -m venv --system-site-packages` environment).

    QFORGE_BUILD_DIR=build/release pip install .   # reuse (and update) an existing build tree
    QFORGE_CMAKE_ARGS="-DQFORGE_CUDA=OFF" pip install .
"""

import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent


def version():
    text = (ROOT / "python" / "qforge" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', text, flags=re.M).group(1)


class CMakeBuild(build_ext):
    """Configures the project with QFORGE_PYTHON=ON for this interpreter, builds the module
    target, and copies the extension into the wheel's qforge/ package."""

    def build_extension(self, ext):
        build_dir = pathlib.Path(os.environ.get("QFORGE_BUILD_DIR") or
                                 pathlib.Path(self.build_temp) / "cmake").resolve()
        build_dir.mkdir(parents=True, exist_ok=True)
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
            "-DQFORGE_PYTHON=ON", f"-DPython3_EXECUTABLE={sys.executable}",
        ]
        if not (build_dir / "CMakeCache.txt").exists():
            configure += ["-G", "Ninja"] if shutil.which("ninja") else []
            configure += ["-DQFORGE_BUILD_TESTS=OFF", "-DQFORGE_BUILD_BENCH=OFF"]
        configure += shlex.split(os.environ.get("QFORGE_CMAKE_ARGS", ""))
        subprocess.run(configure, check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "qforge_python",
                        "-j", jobs], check=True)
        built = list((build_dir / "python" / "qforge").glob("_qforge*.so"))
        if len(built) != 1:
            raise RuntimeError(f"expected one _qforge*.so in {build_dir}/python/qforge, "
                               f"found {built}")
        target = pathlib.Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[0], target)


setup(
    name="qforge",
    version=version(),
    description="LLM quantization toolkit and CPU inference engine (Python bindings)",
    packages=["qforge"],
    package_dir={"": "python"},
    package_data={"qforge": ["py.typed", "*.pyi"]},
    ext_modules=[Extension("qforge._qforge", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.9",
    install_requires=[],  # numpy is needed at run time (Debian: python3-numpy); not fetched
    zip_safe=False,
)
