"""Build the optional C fast paths (pgoutput decoding, binlog rows, the mapper's event parsing and
CloudEvents); the package works without them (pure Python)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("cdc.readers._pgspeed", ["cdc/readers/_pgspeed.c"], optional=True,
                             depends=["cdc/readers/_jsonout.h"],
                             extra_compile_args=["-O2"]),
                   Extension("cdc.readers._myspeed", ["cdc/readers/_myspeed.c"], optional=True,
                             depends=["cdc/readers/_jsonout.h"],
                             extra_compile_args=["-O2"]),
                   Extension("mappers._mapspeed", ["mappers/_mapspeed.c"], optional=True,
                             include_dirs=["cdc/readers"], depends=["cdc/readers/_jsonout.h"],
                             extra_compile_args=["-O2"])])
