"""Build the compiled Ward kernel; all other metadata lives in setup.cfg."""
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

# No -ffast-math: the kernel must sum in the same order as scikit-learn's
# compute_ward_dist so that merge distances are bit-identical. Nor fused
# multiply-adds (-ffp-contract=off), should CFLAGS target a CPU that has them:
# a*b+c rounded once is not scikit-learn's a*b rounded, then +c rounded.
# No identical code folding (-fno-ipa-icf): GCC 12 folded instances of the
# inertia lanes that differ in their lane types (nw_centroid_any<8, 5, 2>
# ran the code of another), giving wrong sums; the exactness tests catch it.
extensions = [
    Extension(
        "nipype_ward.core.ward._ward_fast",
        ["nipype_ward/core/ward/_ward_fast.pyx"],
        include_dirs=[np.get_include()],
        language="c++",
        extra_compile_args=["-O3", "-std=c++17", "-ffp-contract=off", "-fno-ipa-icf"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    Extension(
        "nipype_ward.io._volumes",
        ["nipype_ward/io/_volumes.pyx"],
        extra_compile_args=["-O3"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
]

setup(
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
