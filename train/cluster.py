"""Where this training process stands: alone, or one worker of a tf.distribute cluster.

Without TF_CONFIG the training runs under TensorFlow's default strategy: one process, the loop as it
always was. With TF_CONFIG naming a cluster it runs under MultiWorkerMirroredStrategy: every worker
holds a copy of the variables, gradients are summed over the workers by all-reduce at each step, and
the chief (task "chief", or worker 0 when there is none) owns the run folder.

Workers must stay in step: every collective (gradient all-reduce, the chief's broadcast, checkpoint
saving of BatchNorm statistics) is issued by every worker in the same order, so decisions that end a
run (early stop, time budget) come from the chief, and non-chief workers write their share of a
checkpoint to a scratch folder of their own.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from train.keras_env import tf


@dataclass(frozen=True)
class Cluster:
    strategy: tf.distribute.Strategy
    workers: int = 1
    index: int = 0  # this worker's input shard (the chief is 0)
    chief: bool = True

    @property
    def distributed(self) -> bool:
        return self.workers > 1

    def from_chief(self, *values: float) -> list[float]:
        """The chief's values, on every worker (the values other workers pass are ignored)."""
        if not self.distributed:
            return list(values)
        mine = np.asarray(values if self.chief else np.zeros(len(values)), dtype=np.float64)
        return [float(v) for v in _sum_over_workers(self.strategy, tf.constant(mine))]

    def writable(self, path: Path) -> Path:
        """PATH on the chief; a scratch folder elsewhere (see `discard`)."""
        if self.chief:
            return path
        return Path(tempfile.mkdtemp(prefix=f"train-worker{self.index}-")) / path.name

    def discard(self, path: Path) -> None:
        """Remove a non-chief worker's scratch copy made by `writable`."""
        if not self.chief:
            shutil.rmtree(path.parent, ignore_errors=True)


@tf.function
def _sum_over_workers(strategy: tf.distribute.Strategy, value: tf.Tensor) -> tf.Tensor:
    per_replica = strategy.run(tf.identity, args=(value,))
    return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)


def from_environment() -> Cluster:
    """The cluster TF_CONFIG describes, or a single process without it. Must run before any other
    TensorFlow op: the multi-worker strategy configures the runtime's collectives."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return Cluster(tf.distribute.get_strategy())
    spec = _parse_tf_config(raw)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING))
    task = spec["task"]
    has_chief = bool(spec["cluster"].get("chief"))
    index = task["index"] + (1 if has_chief and task["type"] == "worker" else 0)
    return Cluster(strategy, workers=strategy.num_replicas_in_sync, index=index,
                   chief=bool(strategy.extended.should_checkpoint))


def _parse_tf_config(raw: str) -> dict:
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as e:
        raise SystemExit(f"TF_CONFIG is not valid JSON ({e.msg} at character {e.pos})") from None
    spec = spec if isinstance(spec, dict) else {}
    cluster, task = spec.get("cluster"), spec.get("task")
    if not isinstance(cluster, dict) or not (cluster.get("worker") or cluster.get("chief")):
        raise SystemExit('TF_CONFIG has no cluster: expected {"cluster": {"worker": ["host:port", ...]}, '
                         '"task": {"type": "worker", "index": 0}}')
    if not isinstance(task, dict) or task.get("type") not in ("worker", "chief") or not isinstance(task.get("index"), int):
        raise SystemExit('TF_CONFIG has no task of type "worker" or "chief" with an integer index')
    if task["index"] >= len(cluster.get(task["type"]) or []):
        raise SystemExit(f"TF_CONFIG: task {task['type']} {task['index']} is not in the cluster "
                         f"({len(cluster.get(task['type']) or [])} {task['type']} addresses)")
    return spec


def free_ports(n: int) -> list[int]:
    """N loopback ports free right now (for local workers: scripts/train_distributed.sh, tests)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports
