from lit_rl.algos.base import OffPolicyAlgorithm, PolyakTargets
from lit_rl.algos.ddpg import DDPG
from lit_rl.algos.dyna import Dyna
from lit_rl.algos.mpo import MPO

__all__ = ["DDPG", "MPO", "Dyna", "OffPolicyAlgorithm", "PolyakTargets"]
