from lit_rl.envs.faults import guarded_step
from lit_rl.envs.make import ActionMap, EnvConfig, make_env
from lit_rl.envs.muscles import MuscleState
from lit_rl.envs.vector import ParallelEnvs, SequentialEnvs, Step, VectorEnvs, make_vector_envs

__all__ = [
    "ActionMap",
    "EnvConfig",
    "MuscleState",
    "ParallelEnvs",
    "SequentialEnvs",
    "Step",
    "VectorEnvs",
    "guarded_step",
    "make_env",
    "make_vector_envs",
]
