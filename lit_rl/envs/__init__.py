from lit_rl.envs.make import ActionMap, EnvConfig, make_env
from lit_rl.envs.vector import SequentialEnvs, Step

__all__ = ["ActionMap", "EnvConfig", "SequentialEnvs", "Step", "make_env"]
