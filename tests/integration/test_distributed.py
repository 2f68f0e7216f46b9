"""The process-group collectives (siamcollapse.distributed) in a real 2-process gloo group on
loopback: all-gather in rank order, all-reduce, and MoCo-v3's and NNSiam's sharded steps equal
to the whole batch's."""

from __future__ import annotations

import socket
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from siamcollapse.distributed import all_reduce_mean, gather, rank_and_world
from siamcollapse.methods.losses import info_nce
from tests.helpers.tiny_methods import make, views

SHARD, DIM, TEMPERATURE = 4, 6, 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shared_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(11)
    return torch.randn(2 * SHARD, DIM, generator=generator), torch.randn(2 * SHARD, DIM, generator=generator)


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=60))
    try:
        q, k = _shared_batch()
        rows = slice(rank * SHARD, (rank + 1) * SHARD)
        keys = gather(k[rows])
        loss = info_nce(q[rows], keys, TEMPERATURE, offset=rank_and_world()[0] * SHARD)
        mean = all_reduce_mean(torch.full((2,), float(rank)))
        view1, view2 = views(2 * SHARD)
        with torch.no_grad():
            # eval mode: per-sample outputs, so only the positives' columns can make shards differ
            moco_loss = make("mocov3").eval()(view1[rows], view2[rows]).loss
            nnsiam = make("nnsiam").train()
            nnsiam(view1[rows], view2[rows])
        torch.save({"keys": keys, "loss": loss, "rank_world": rank_and_world(), "mean": mean, "moco_loss": moco_loss,
                    "queue": nnsiam.queue.state_dict()}, Path(out_dir) / f"{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_gather_in_rank_order_and_shard_losses_average_to_the_global_loss(tmp_path):
    context = mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the 2-process gloo run did not finish in 120 s")
    results = [torch.load(tmp_path / f"{rank}.pt") for rank in range(2)]
    q, k = _shared_batch()
    for rank, result in enumerate(results):
        assert result["rank_world"] == (rank, 2)
        torch.testing.assert_close(result["keys"], k)  # rank 0's rows first, then rank 1's
        torch.testing.assert_close(result["mean"], torch.full((2,), 0.5))
        assert int(result["queue"]["pointer"]) == 2 * SHARD  # every process enqueued the global batch
    shard_mean = (results[0]["loss"] + results[1]["loss"]) / 2
    torch.testing.assert_close(shard_mean, info_nce(q, k, TEMPERATURE))
    with torch.no_grad():
        whole_batch = make("mocov3").eval()(*views(2 * SHARD)).loss
    torch.testing.assert_close((results[0]["moco_loss"] + results[1]["moco_loss"]) / 2, whole_batch)
    torch.testing.assert_close(results[0]["queue"]["entries"], results[1]["queue"]["entries"])
