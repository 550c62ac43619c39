"""Build the optional C featurizer (edge.scoring._features).

It is optional: where no C compiler exists, install still succeeds and the pure-Python
featurizer (bit-identical output, slower) is used instead.
"""

from pathlib import Path

from setuptools import Extension, setup

_SRC = Path("edge/scoring/_features.c")

setup(
    ext_modules=[
        Extension(
            "edge.scoring._features",
            sources=[str(_SRC)],
            extra_compile_args=["-O2", "-std=c99"],
            optional=True,
        )
    ]
    if _SRC.exists()
    else [],
)
