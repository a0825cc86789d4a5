from lit_rl.algos.base import OffPolicyAlgorithm, soft_update
from lit_rl.algos.ddpg import DDPG

__all__ = ["DDPG", "OffPolicyAlgorithm", "soft_update"]
