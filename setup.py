"""Build hook for the sparse kernel (everything else is declared in pyproject.toml).

The kernel is built with OpenMP so it can share torch's thread pool. A compiler without
OpenMP (Apple's clang, for one) still builds it, single-threaded, instead of skipping it.
"""

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError, LinkError

OPENMP_FLAG = "-fopenmp"


class BuildExtOpenMPOptional(build_ext):
    def build_extension(self, ext):  # noqa: ANN001, ANN201 - setuptools' signature
        try:
            super().build_extension(ext)
        except (CompileError, LinkError):
            if OPENMP_FLAG not in ext.extra_compile_args + ext.extra_link_args:
                raise
            print(f"building {ext.name} again without OpenMP: the kernel will run on one thread")
            ext.extra_compile_args = [a for a in ext.extra_compile_args if a != OPENMP_FLAG]
            ext.extra_link_args = [a for a in ext.extra_link_args if a != OPENMP_FLAG]
            super().build_extension(ext)


setup(cmdclass={"build_ext": BuildExtOpenMPOptional})
