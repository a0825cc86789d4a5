from lit_rl.envs.faults import guarded_step
from lit_rl.envs.make import ActionMap, EnvConfig, EnvUnsupported, make_env
from lit_rl.envs.muscles import DEPLayout, MuscleState
from lit_rl.envs.probe import EnvProbe, probe_env
from lit_rl.envs.vector import ParallelEnvs, SequentialEnvs, Step, VectorEnvs, make_vector_envs

__all__ = [
    "ActionMap",
    "DEPLayout",
    "EnvConfig",
    "EnvProbe",
    "EnvUnsupported",
    "MuscleState",
    "ParallelEnvs",
    "SequentialEnvs",
    "Step",
    "VectorEnvs",
    "guarded_step",
    "make_env",
    "make_vector_envs",
    "probe_env",
]
