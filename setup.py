"""Build hook: compiles native/ through cffi (see build_native.py), and ships
the headers that compile()'s generated kernels include (core/_codegen.py)."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# what a generated kernel includes: the per-op helpers and vmath.h
KERNEL_HEADERS = ("ew_inline.h", "vmath.h")


class build_py_with_kernel_headers(build_py):
    def run(self):
        super().run()
        dest = Path(self.build_lib) / "ember" / "core" / "_include"
        dest.mkdir(parents=True, exist_ok=True)
        for name in KERNEL_HEADERS:
            shutil.copy(Path(__file__).parent / "native" / "kernels" / name, dest / name)


setup(cffi_modules=["build_native.py:ffibuilder"],
      cmdclass={"build_py": build_py_with_kernel_headers})
