"""What the algorithms and the DataModule need from DDP (``--trainer.devices N``, multi-node).

Every rank owns its envs and replay (distributed actors); the gradients of the per-rank
batches are averaged at every optimizer step (synchronous learners, ``average_gradients``).
Every count in a config (``env_steps``, ``total_steps``, ``replay.size``, ``replay.batch_size``,
...) is global, summed over ranks, so a run on N processes is the same algorithm as on one,
with the env stepping and batch work split N ways. State that must agree across ranks but is
not a gradient (observation statistics, dynamics-model scalers and validation losses) is
reduced explicitly; DDP's buffer broadcast is off (``RolloutDDPStrategy``).

All functions here are collective under DDP: every rank must call them at the same point.
With one process they do no communication.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy

# torch 2.13 deprecates it in favour of forward_sync_buffers, which cannot skip the sync at wrapping
warnings.filterwarnings("ignore", message="`broadcast_buffers` is deprecated")

AVERAGED = "_lit_rl_gradients_averaged"  # set on a torch optimizer whose gradients were averaged for its next step
RANKS_KEY = "ranks"  # under DDP, each rank's rank-local state in a checkpoint, indexed by global rank


class RolloutDDPStrategy(DDPStrategy):
    """Lightning's DDP (launchers, process group, rank 0 checkpoints) with DDP's own gradient
    reducer switched off: each optimizer's gradients are averaged at its step instead, by
    ``OffPolicyAlgorithm.clip_and_step`` (before it clips them) or else here, in
    ``optimizer_step``, so a plain ``manual_backward(loss); opt.step()`` cannot leave the ranks
    with different weights.

    Each backward of an actor-critic update (critic, actor, MPO duals, dynamics model) reaches
    only some parameters. DDP's reducer expects every parameter's gradient after each backward;
    ``find_unused_parameters=True`` makes it cope by walking the autograd graph and then
    all-reducing every parameter, the unused ones as zeros, at every backward. Averaging per
    optimizer sends only that optimizer's gradients, in one message that also carries whether
    every rank's loss was finite, so all ranks skip a non-finite update together.

    ``broadcast_buffers=False``: DDP would copy rank 0's buffers over the others' when it wraps
    the module (after a resume restored each rank's own) and at every ``training_step``, erasing
    what each rank recorded since the last sync (observation sums). Buffers that must agree are
    reduced where they are updated instead. Its replacement in torch 2.13,
    ``forward_sync_buffers=False``, still copies them at wrapping.
    """

    def __init__(self, **kwargs):
        super().__init__(broadcast_buffers=False, **kwargs)

    def pre_backward(self, closure_loss: torch.Tensor) -> None:
        pass  # DDPStrategy would arm the reducer for this backward; gradients are averaged per step

    def optimizer_step(self, optimizer, closure, model=None, **kwargs):
        if not getattr(optimizer, AVERAGED, False):
            params = [p for group in optimizer.param_groups for p in group["params"]]
            # a rank whose backward was skipped (non-finite loss) has no gradients: all ranks skip
            average_gradients(params, any(p.grad is not None for p in params))
        setattr(optimizer, AVERAGED, False)
        return super().optimizer_step(optimizer, closure, model, **kwargs)


def ddp_strategy() -> DDPStrategy:
    """The strategy ``--trainer.strategy auto`` (or ``ddp``) becomes with more than one process."""
    return RolloutDDPStrategy()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def sum_across_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """In-place sum over ranks; returns ``tensor``."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def mean_across_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """In-place mean over ranks; returns ``tensor``."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= dist.get_world_size()
    return tensor


def average_gradients(params: list[torch.Tensor], backward_done: bool) -> bool:
    """Average the gradients of ``params`` over ranks in one all-reduce; a parameter without a
    gradient counts as zero and keeps none. ``backward_done`` is false on a rank that skipped its
    backward (non-finite loss): then every rank drops its gradients and False is returned."""
    if not is_distributed() or not params:
        return backward_done
    grads = [p.grad.reshape(-1) if p.grad is not None else p.new_zeros(p.numel()) for p in params]
    flat = torch.cat([*grads, params[0].new_tensor([float(backward_done)])])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    world = dist.get_world_size()
    if flat[-1].item() < world:
        for p in params:
            p.grad = None
        return False
    flat /= world
    offset = 0
    for p in params:
        if p.grad is not None:
            p.grad.copy_(flat[offset : offset + p.numel()].view_as(p.grad))
        offset += p.numel()
    return True


def average_optimizer_gradients(optimizers, backward_done: bool) -> bool:
    """``average_gradients`` over the parameters of ``optimizers`` (torch or Lightning
    optimizers) in one all-reduce, marking them so that their next step does not average again."""
    raw = [getattr(opt, "optimizer", opt) for opt in optimizers]
    params = [p for opt in raw for group in opt.param_groups for p in group["params"]]
    averaged = average_gradients(params, backward_done)
    for opt in raw:
        setattr(opt, AVERAGED, True)
    return averaged


def gather_objects(obj) -> list:
    """Every rank's ``obj`` (picklable), indexed by global rank, on every rank."""
    if not is_distributed():
        return [obj]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def add_rank_states(state: dict, local: dict) -> dict:
    """``state`` with this rank's ``local`` part merged in (so a checkpoint written by rank 0 reads
    as a single-process one) and, under DDP, every rank's local part under ``RANKS_KEY``."""
    state = {**state, **local}
    if is_distributed():
        state[RANKS_KEY] = gather_objects(local)
    return state


def rank_state(state: dict, rank: int, world_size: int, what: str) -> dict:
    """This rank's part of a state written by ``add_rank_states``."""
    written_by = len(state[RANKS_KEY]) if RANKS_KEY in state else 1
    if written_by != world_size:
        raise ValueError(checkpoint_world_message(what, written_by, world_size))
    return state[RANKS_KEY][rank] if RANKS_KEY in state else state


def checkpoint_world_message(what: str, written_by: int, world_size: int) -> str:
    return (
        f"{what} was written by {written_by} training process(es) (devices x nodes), each with its own envs "
        f"and replay buffer; this run has {world_size}. Resume with --trainer.devices/--trainer.num_nodes "
        f"giving {written_by} processes, or start a new run (--resume false or another --name)"
    )
