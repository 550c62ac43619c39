"""Edge gateway: watch a private PoA Ethereum chain, score every contract deployed on it,
and carry tamper-evidence of that chain to public networks.

The package is layered; imports go one way only::

    cli  ->  pipeline / demo / bench  ->  stages  ->  primitives
                                          (ingest,     (chain, store, scoring, seal,
                                           score)       config, errors)
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
