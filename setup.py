"""The build: the cffi extension ``nsrun._native`` (csrc/build_ffi.py) and, next to it, the
``nsrun-monitor`` executable a container's monitor execs (csrc/monitor_exe.c), linked
statically where the C library allows it (a few hundred kB resident, shared by every
monitor)."""

import os

from setuptools import setup
from setuptools.command.build_ext import build_ext

MONITOR_SOURCES = ["csrc/monitor_exe.c", "csrc/monitor_loop.c"]
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]


class BuildExt(build_ext):
    """build_ext, and nsrun-monitor next to the extension (copied in place, as the extension
    is, for the editable install)."""

    def build_extensions(self):
        super().build_extensions()
        objects = self.compiler.compile(
            MONITOR_SOURCES, output_dir=os.path.join(self.build_temp, "monitor"),
            macros=[("_GNU_SOURCE", None)], include_dirs=["csrc"], extra_postargs=CFLAGS)
        try:
            self._link(objects, ["-static"])
        except Exception:  # no static C library here: dynamically, then
            self._link(objects, [])

    def _link(self, objects, flags):
        self.compiler.link_executable(objects, "nsrun-monitor",
                                      output_dir=os.path.join(self.build_lib, "nsrun"),
                                      extra_postargs=flags)

    def copy_extensions_to_source(self):
        super().copy_extensions_to_source()
        package_dir = self.get_finalized_command("build_py").get_package_dir("nsrun")
        self.copy_file(os.path.join(self.build_lib, "nsrun", "nsrun-monitor"),
                       os.path.join(package_dir, "nsrun-monitor"), level=self.verbose)


setup(cffi_modules=["csrc/build_ffi.py:ffibuilder"], cmdclass={"build_ext": BuildExt})
