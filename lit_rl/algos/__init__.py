from lit_rl.algos.base import OffPolicyAlgorithm, PolyakTargets
from lit_rl.algos.ddpg import DDPG

__all__ = ["DDPG", "OffPolicyAlgorithm", "PolyakTargets"]
