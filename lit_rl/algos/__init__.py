"""The algorithms: every module of this package is imported here, so a new algorithm is one new
file (its ``OffPolicyAlgorithm`` subclasses are registered and exported as ``lit_rl.algos.<Name>``,
the short ``class_path`` a config may use)."""

import importlib
import pkgutil

from lit_rl.algos.base import ALGORITHMS, OffPolicyAlgorithm, PolyakTargets

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def algorithms() -> dict[str, type[OffPolicyAlgorithm]]:
    """The algorithms of this package by class name, in module order (alphabetical, whichever
    module imported which first; others registered from elsewhere, e.g. a test's, are left out)."""
    ours = [(path.rpartition(".")[0], i, cls) for i, (path, cls) in enumerate(ALGORITHMS.items())]
    ours = sorted(entry for entry in ours if entry[0].startswith(f"{__name__}."))
    return {cls.__name__: cls for _, _, cls in ours}


globals().update(algorithms())
__all__ = ["OffPolicyAlgorithm", "PolyakTargets", "algorithms", *algorithms()]
