"""Run by tests/test_ddp.py as ``python tests/ddp_average_check.py PORT``: two gloo processes check
``lit_rl.training.distributed.average_gradients`` and print OK from rank 0."""

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lit_rl.training.distributed import average_gradients


def check(rank: int, port: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    used, unused = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    used.grad = torch.full((3,), float(rank + 1))  # 1 on rank 0, 2 on rank 1
    assert average_gradients([used, unused], backward_done=True)
    assert torch.equal(used.grad, torch.full((3,), 1.5)) and unused.grad is None
    # rank 1 skipped its backward (non-finite loss): both ranks drop their gradients
    used.grad = torch.ones(3) if rank == 0 else None
    assert not average_gradients([used, unused], backward_done=rank == 0)
    assert used.grad is None and unused.grad is None
    dist.destroy_process_group()
    if rank == 0:
        print("OK")


if __name__ == "__main__":
    mp.spawn(check, args=(sys.argv[1],), nprocs=2)
