"""Build the optional C fast path for pgoutput decoding; the package works without it (pure Python)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("cdc.readers._pgspeed", ["cdc/readers/_pgspeed.c"], optional=True,
                             extra_compile_args=["-O2"])])
