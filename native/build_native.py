"""cffi build of the C core into the private extension module ``gateway._native``.

API (out-of-line) mode: the C sources in ``native/src`` are compiled together into one module.
The cdef is taken from the headers in ``native/include`` themselves: the part of each header
between the lines ``/* cdef: begin */`` and ``/* cdef: end */`` is what Python may call, so the
headers stay the single source of truth.

Run directly (``python native/build_native.py``) to build the module in place for development.
"""

from __future__ import annotations

import os
import pathlib
import platform
import re
import sys

import cffi

HERE = pathlib.Path(__file__).resolve().parent
INCLUDE = HERE / "include"
SRC = HERE / "src"
_CDEF = re.compile(r"/\* cdef: begin \*/(.*?)/\* cdef: end \*/", re.S)


def _headers() -> list[pathlib.Path]:
    return sorted(INCLUDE.glob("*.h"))


def _cdef() -> str:
    parts = []
    for header in _headers():
        for block in _CDEF.findall(header.read_text()):
            parts.append(f"/* {header.name} */\n{block}")
    return "\n".join(parts)


def _sources(absolute: bool) -> list[str]:
    # setuptools wants paths relative to the project root; the in-place build compiles from
    # its temporary directory and needs them absolute.
    files = sorted(SRC.glob("*.c"))
    return [str(p if absolute else p.relative_to(HERE.parent)) for p in files]


def _arch_flags() -> list[str]:
    # Every 64-bit Raspberry Pi (Cortex-A53/A72/A76) has the ARMv8 CRC32 instructions, which
    # the WAL, ring and block checksums use; other architectures choose at run time.
    return ["-march=armv8-a+crc"] if platform.machine() in ("aarch64", "arm64") else []


def make_builder(absolute_paths: bool = False) -> cffi.FFI:
    ffi = cffi.FFI()
    ffi.cdef(_cdef())
    includes = "\n".join(f'#include "{h.name}"' for h in _headers())
    ffi.set_source(
        "gateway._native",
        includes,
        sources=_sources(absolute_paths),
        include_dirs=[str(INCLUDE)],
        extra_compile_args=["-std=c99", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                            "-D_POSIX_C_SOURCE=200809L", "-D_DEFAULT_SOURCE", *_arch_flags()],
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    # In-place build for development: gateway/_native.*.so next to the Python package.
    os.chdir(HERE.parent)
    make_builder(absolute_paths=True).compile(tmpdir=str(HERE.parent / "build" / "cffi"), verbose="-v" in sys.argv)
    built = next((HERE.parent / "build" / "cffi" / "gateway").glob("_native*.so"))
    target = HERE.parent / "gateway" / built.name
    for stale in (HERE.parent / "gateway").glob("_native*.so"):
        if stale.name != target.name:
            stale.unlink()  # an editable install may have left one under another ABI tag
    # A new file renamed over the old one: running processes keep their mapping intact.
    tmp = target.with_suffix(".so.tmp")
    tmp.write_bytes(built.read_bytes())
    os.replace(tmp, target)
    print(f"built {target.relative_to(HERE.parent)}")
