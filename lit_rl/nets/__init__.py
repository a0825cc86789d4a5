from lit_rl.nets.mlp import ACTIVATIONS, mlp
from lit_rl.nets.normalizer import ObservationNormalizer

__all__ = ["ACTIVATIONS", "ObservationNormalizer", "mlp"]
