"""The algorithms: every module of this package is imported here, so a new algorithm is one new
file (its ``OffPolicyAlgorithm`` subclasses are registered and exported as ``lit_rl.algos.<Name>``,
the short ``class_path`` a config may use)."""

import importlib
import pkgutil

from lit_rl.algos.base import ALGORITHMS, OffPolicyAlgorithm, PolyakTargets

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def algorithms() -> dict[str, type[OffPolicyAlgorithm]]:
    """The algorithms of this package by class name, in module order (others registered from
    elsewhere, e.g. a test's, are left out)."""
    return {cls.__name__: cls for path, cls in ALGORITHMS.items() if path.startswith(f"{__name__}.")}


globals().update(algorithms())
__all__ = ["OffPolicyAlgorithm", "PolyakTargets", "algorithms", *algorithms()]
