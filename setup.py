"""Build hooks (everything else is declared in pyproject.toml).

The sparse kernel is built with OpenMP so it can share torch's thread pool. A compiler without
OpenMP (Apple's clang, for one) still builds it, single-threaded, instead of skipping it.

An editable install also puts the project folder on sys.path (see EditableWheel).
"""

import io
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.editable_wheel import editable_wheel
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


class EditableWheel(editable_wheel):
    """``pip install -e .`` that imports mnc from the project folder wherever Python starts.

    The folder backends/ installs as mnc_backends, so setuptools serves the editable packages
    through an import hook placed after Python's own search of sys.path. That search takes a
    plain folder named mnc in the working directory (a clone of this repository, seen from the
    folder that holds it) for a namespace package, and the hook is never asked. With the
    project folder itself on sys.path, the search finds the real package mnc/ (a regular
    package wins over a namespace folder); the hook still serves mnc_backends.
    """

    def _select_strategy(self, name, tag, build_lib):  # noqa: ANN001, ANN202 - setuptools'
        strategy = super()._select_strategy(name, tag, build_lib)
        if str(self.mode or "").lower() == "strict":  # strict: only what the link tree holds
            return strategy
        return _WithProjectPath(strategy, name, Path(self.project_dir).resolve())


class _WithProjectPath:
    """Runs setuptools' strategy, then adds a .pth file naming the project folder."""

    def __init__(self, strategy, name: str, project_dir: Path) -> None:  # noqa: ANN001
        self.strategy, self.name, self.project_dir = strategy, name, project_dir

    def __enter__(self):  # noqa: ANN204
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc_info):  # noqa: ANN002, ANN204
        return self.strategy.__exit__(*exc_info)

    def __call__(self, wheel, files, mapping) -> None:  # noqa: ANN001
        self.strategy(wheel, files, mapping)
        # Python reads .pth files in the locale's encoding (before 3.13).
        with io.BytesIO() as buffer:
            text = io.TextIOWrapper(buffer, encoding="locale")
            text.write(f"{self.project_dir}\n")
            text.flush()
            wheel.writestr(f"__editable__.{self.name}.project.pth", buffer.getvalue())


setup(cmdclass={"build_ext": BuildExtOpenMPOptional, "editable_wheel": EditableWheel})
