from lit_rl.nets.lattice import LatticeConfig
from lit_rl.nets.mlp import ACTIVATIONS, full_precision, mlp
from lit_rl.nets.normalizer import ObservationNormalizer

__all__ = ["ACTIVATIONS", "LatticeConfig", "ObservationNormalizer", "full_precision", "mlp"]
