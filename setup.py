"""Build the compiled Ward kernel; all other metadata lives in setup.cfg."""
import os
import subprocess
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError, LinkError

# No -ffast-math: the kernel must sum in the same order as scikit-learn's
# compute_ward_dist so that merge distances are bit-identical. Nor fused
# multiply-adds (-ffp-contract=off), should CFLAGS target a CPU that has them:
# a*b+c rounded once is not scikit-learn's a*b rounded, then +c rounded.
# No identical code folding (-fno-ipa-icf): GCC 12 folded instances of the
# inertia lanes that differ in their lane types (nw_centroid_any<8, 5, 2>
# ran the code of another), giving wrong sums; the exactness tests catch it.
# A GCC option: left out where the compiler refuses it (see BuildExt).
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


# Profile-guided optimisation of the Ward kernel: compiled once instrumented,
# run on the workload of _profile_workload.py (synthetic meshes and brain
# masks, about a second), compiled again with the profile. The merge loop is
# branchy and bound by its critical path: GCC's layout for the branches taken
# made it 12 to 18 % faster on the fsLR mesh and about 8 % on a 3 mm brain
# mask (2026-12-07). No arithmetic changes (see above), and functions the
# workload does not run (the SSE2 and scalar lanes on an AVX2 machine) keep
# their usual optimisation (-fprofile-partial-training). GCC only; a plain
# build wherever a step fails, or with NIPYPE_WARD_PGO=0.
PROFILED = "nipype_ward.core.ward._ward_fast"
PROFILE_WORKLOAD = os.path.join("nipype_ward", "core", "ward", "_profile_workload.py")
PROFILE_GENERATE = ["-fprofile-generate", "-fprofile-update=prefer-atomic"]
# (Inlined with the profile, Cython's argument parsing draws -Wmaybe-uninitialized.)
PROFILE_USE = ["-fprofile-use", "-fprofile-partial-training", "-Wno-missing-profile",
               "-Wno-maybe-uninitialized"]


class BuildExt(build_ext):
    """Drop the options of ``GCC_ONLY_FLAGS`` a compiler refuses (clang's
    "unknown argument"), by compiling an empty file with each; build the
    kernel with a profile where the compiler can (see ``PROFILED``)."""

    def build_extensions(self):
        refused = [flag for flag in GCC_ONLY_FLAGS if not self._accepts(flag)]
        for ext in self.extensions:
            ext.extra_compile_args = [a for a in ext.extra_compile_args if a not in refused]
        self._profile = (os.environ.get("NIPYPE_WARD_PGO", "1") != "0"
                         and all(self._accepts(flag) for flag in PROFILE_USE[:2]))
        super().build_extensions()

    def build_extension(self, ext):
        """The kernel: built instrumented, run on the workload, built again with
        its profile (a plain build if a step fails); the others as usual."""
        if ext.name != PROFILED or not self._profile or not self._outdated(ext):
            return super().build_extension(ext)
        compile_args, link_args = list(ext.extra_compile_args), list(ext.extra_link_args or [])
        macros = list(ext.define_macros)
        target = self.get_ext_fullpath(ext.name)
        force = self.force
        with tempfile.TemporaryDirectory() as tmp:
            profile = [f"-fprofile-dir={os.path.join(tmp, 'profile')}"]
            instrumented = os.path.join(tmp, os.path.basename(target))
            try:
                ext.extra_compile_args = compile_args + PROFILE_GENERATE + profile
                ext.extra_link_args = link_args + PROFILE_GENERATE
                self.get_ext_fullpath = lambda name: instrumented
                super().build_extension(ext)
                del self.get_ext_fullpath
                subprocess.run([sys.executable, os.path.abspath(PROFILE_WORKLOAD), instrumented],
                               check=True, timeout=900)
                if not any(name.endswith(".gcda")
                           for _, _, names in os.walk(tmp) for name in names):
                    raise OSError("the workload wrote no profile")
                ext.extra_compile_args = compile_args + PROFILE_USE + profile
                ext.extra_link_args = link_args
                ext.define_macros = macros + [("NW_PROFILE_GUIDED", "1")]
                self.force = True
                super().build_extension(ext)
                return
            except (CompileError, LinkError, OSError, subprocess.SubprocessError) as error:
                print(f"warning: {ext.name} without profile-guided optimisation ({error}); "
                      "building it plainly", file=sys.stderr)
            finally:
                self.__dict__.pop("get_ext_fullpath", None)
                self.force = force
                ext.extra_compile_args, ext.extra_link_args = compile_args, link_args
                ext.define_macros = macros
        super().build_extension(ext)

    def _outdated(self, ext) -> bool:
        """Whether the extension needs building (as build_ext decides it)."""
        target = self.get_ext_fullpath(ext.name)
        if self.force or not os.path.exists(target):
            return True
        built = os.path.getmtime(target)
        return any(os.path.getmtime(source) > built
                   for source in [*ext.sources, *(ext.depends or [])] if os.path.exists(source))

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
    cmdclass={"build_ext": BuildExt},
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
