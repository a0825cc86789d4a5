"""Dyna: DDPG trained on real transitions and on rollouts of a learned dynamics model, with
everything only it uses: the dynamics models (``dynamics``), the model env with its reward and
terminal functions (``model_env``) and the model replay (``model_replay``)."""

from lit_rl.algos.dyna.algorithm import Dyna, DynaFlow

__all__ = ["Dyna", "DynaFlow"]
