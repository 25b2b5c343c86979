"""Build the compiled Ward kernel; all other metadata lives in setup.cfg."""
import os
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError

# No -ffast-math: the kernel must sum in the same order as scikit-learn's
# compute_ward_dist so that merge distances are bit-identical. Nor fused
# multiply-adds (-ffp-contract=off), should CFLAGS target a CPU that has them:
# a*b+c rounded once is not scikit-learn's a*b rounded, then +c rounded.
# No identical code folding (-fno-ipa-icf): GCC 12 folded instances of the
# inertia lanes that differ in their lane types (nw_centroid_any<8, 5, 2>
# ran the code of another), giving wrong sums; the exactness tests catch it.
# A GCC option: left out where the compiler refuses it (see GccOnlyFlags).
GCC_ONLY_FLAGS = ["-fno-ipa-icf"]
extensions = [
    Extension(
        "nipype_ward.core.ward._ward_fast",
        ["nipype_ward/core/ward/_ward_fast.pyx"],
        include_dirs=[np.get_include()],
        language="c++",
        extra_compile_args=["-O3", "-std=c++17", "-ffp-contract=off", *GCC_ONLY_FLAGS],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    Extension(
        "nipype_ward.core._moments",
        ["nipype_ward/core/_moments.pyx"],
        language="c++",
        # No fused multiply-adds: the same bits on the AVX2 and SSE2 paths.
        extra_compile_args=["-O3", "-std=c++17", "-ffp-contract=off"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    Extension(
        "nipype_ward.io._volumes",
        ["nipype_ward/io/_volumes.pyx"],
        extra_compile_args=["-O3"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
]



class GccOnlyFlags(build_ext):
    """Drop the options of ``GCC_ONLY_FLAGS`` a compiler refuses (clang's
    "unknown argument"), by compiling an empty file with each."""

    def build_extensions(self):
        refused = [flag for flag in GCC_ONLY_FLAGS if not self._accepts(flag)]
        for ext in self.extensions:
            ext.extra_compile_args = [a for a in ext.extra_compile_args if a not in refused]
        super().build_extensions()

    def _accepts(self, flag: str) -> bool:
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "empty.cpp")
            with open(source, "w") as f:
                f.write("int main() { return 0; }\n")
            try:
                self.compiler.compile([source], output_dir=tmp, extra_postargs=[flag])
            except CompileError:
                return False
        return True


setup(
    cmdclass={"build_ext": GccOnlyFlags},
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
