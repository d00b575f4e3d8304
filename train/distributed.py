"""Data-parallel ``pneumoscan-train fit`` across processes and machines: Keras 3 on JAX.

Why this way: Keras 3's ``model.fit`` under ``tf.distribute.MultiWorkerMirroredStrategy`` fails
(keras-team/keras#20585), while ``keras.distribution`` on the JAX backend runs an ordinary
``model.fit`` on our ``tf.data`` pipeline data-parallel: every process builds the same model from
the same seed, Keras shards each global batch across the processes, XLA averages the gradients,
and every process ends with the same weights. One machine keeps the TensorFlow backend.

What each of the N processes does, in order:

1. :func:`use_jax_backend` before anything imports Keras (Keras picks its backend at import);
2. :func:`start` links the processes (:mod:`train.watchdog`, so a dead one ends the rest within
   seconds), joins the JAX cluster with bounded timeouts, and sets ``DataParallel`` over every
   process's devices;
3. ``fit`` runs as on one machine, on the whole data set, with the differences made by
   :meth:`Session.prepare`: it checks that every process read the same data (the settings
   were compared before: :meth:`Session.check_same_settings`), and it gives every batch the static size Keras needs to shard it (training drops
   its last, partial batch; validation pads it with zero-weight images, which the metrics are
   made to skip, so they count every real image once and nothing else);
4. every process saves its checkpoints to its own folder, because saving builds variables on the
   global mesh and a save by process 0 alone waits forever for the others: process 0's folder is
   the run folder, the others write to :meth:`Session.run_dir` (a temporary folder by default);
5. :meth:`Session.finish` leaves the cluster together (a barrier) and clears the distribution;
   process 0 then picks the threshold, evaluates and writes the run folder's metrics alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from train.data import DataError

#: Keras's own variables for the same settings (see ``keras.distribution.initialize``).
ENV_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
ENV_NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
ENV_PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"

JOIN_TIMEOUT_SECONDS = 300
SHUTDOWN_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Cluster:
    """Where process 0 listens, how many processes there are, and which one this is."""

    coordinator: str  # HOST:PORT of process 0 (JAX's coordinator; the watchdog uses PORT + 1)
    num_processes: int
    process_id: int

    @property
    def is_chief(self) -> bool:
        return self.process_id == 0

    @property
    def host(self) -> str:
        return self.coordinator.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.coordinator.rsplit(":", 1)[1])

    @classmethod
    def from_options(
        cls, coordinator: str | None, num_processes: int | None, process_id: int | None
    ) -> "Cluster | None":
        """The cluster the options (or Keras's environment variables) describe; None for one process.

        ``coordinator`` may also be Keras's comma-separated list of every process's address; the
        first one is process 0's.
        """
        if num_processes is None:
            if coordinator or process_id is not None:
                raise DataError("--coordinator and --process-id need --num-processes N")
            return None
        if num_processes < 1:
            raise DataError(f"--num-processes must be at least 1, got {num_processes}")
        if num_processes == 1:
            return None
        if not coordinator:
            raise DataError("--num-processes needs --coordinator HOST:PORT (process 0's address)")
        addresses = [a.strip() for a in coordinator.split(",") if a.strip()]
        if len(addresses) > 1 and len(addresses) != num_processes:
            raise DataError(f"{len(addresses)} addresses given for {num_processes} processes")
        first = addresses[0]
        host, sep, port = first.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65535:
            raise DataError(f"--coordinator must be HOST:PORT, got {first!r}")
        if process_id is None:
            raise DataError("--num-processes needs --process-id I (0 on the coordinator, 1..N-1 elsewhere)")
        if not 0 <= process_id < num_processes:
            raise DataError(f"--process-id must be in 0..{num_processes - 1}, got {process_id}")
        return cls(first, num_processes, process_id)

    def check_batch_size(self, batch_size: int) -> None:
        """Each process takes an equal share of every global batch."""
        if batch_size % self.num_processes:
            raise DataError(
                f"--batch-size {batch_size} (the global batch) must be divisible by "
                f"--num-processes {self.num_processes}"
            )


def free_coordinator_port(host: str = "127.0.0.1", tries: int = 50) -> int:
    """A port on ``host`` that is free and whose neighbour is free too: process 0 listens on both
    (JAX's coordinator on PORT, the watchdog on PORT + 1). Free now, not reserved: for a run on one
    machine (the tests, the backend benchmark), where nothing else takes it in between."""
    import socket

    for _ in range(tries):
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        try:
            with socket.socket() as probe:
                probe.bind((host, port + 1))
            return port
        except OSError:
            continue
    raise OSError(f"no two neighbouring free ports on {host} in {tries} tries")


def use_jax_backend(log=print) -> None:
    """Select Keras's JAX backend; must run before anything imports Keras."""
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != "jax":
            raise DataError(
                f"Keras was already imported with the {keras.backend.backend()} backend; "
                "multi-process training needs JAX (set KERAS_BACKEND=jax before starting)"
            )
        return
    previous = os.environ.get("KERAS_BACKEND")
    if previous and previous != "jax":
        log(f"note: KERAS_BACKEND={previous} ignored: multi-process training runs on the JAX backend")
    os.environ["KERAS_BACKEND"] = "jax"
    try:
        import jax  # noqa: F401
    except ImportError:
        raise DataError("multi-process training needs JAX: pip install 'pneumoscan[train-dist]'") from None


def _digest(value) -> bytes:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).digest()


class Session:
    """This process's part in a distributed fit (see the module docstring for the steps)."""

    def __init__(self, cluster: Cluster, watchdog, scratch: Path | None, own_scratch: bool, log=print):
        self.cluster = cluster
        self.watchdog = watchdog
        self._scratch = scratch
        self._own_scratch = own_scratch
        self._log = log
        self._finished = False

    @property
    def is_chief(self) -> bool:
        return self.cluster.is_chief

    def run_dir(self, out: Path) -> Path:
        """Where this process writes: the run folder on process 0, its own folder elsewhere."""
        return Path(out) if self.is_chief else self._scratch

    def _agree(self, what, complaint: str) -> None:
        """Raise ``DataError(complaint)`` naming the first process whose ``what`` differs from process 0's."""
        import numpy as np
        from jax.experimental import multihost_utils

        mine = np.frombuffer(_digest(what), dtype=np.uint8)
        everyone = np.asarray(multihost_utils.process_allgather(mine)).reshape(self.cluster.num_processes, -1)
        for pid, theirs in enumerate(everyone):
            if not np.array_equal(theirs, everyone[0]):
                raise DataError(f"process {pid} {complaint}")

    def check_same_settings(self, config) -> None:
        """Refuse to start when the processes were given different options (the data path aside).

        Each process builds the model and shuffles, augments and splits the data itself, from
        the seed and the settings: any difference would train different models, or hang.
        """
        settings = {k: v for k, v in config.to_dict().items() if k not in ("data", "extra")}
        self._agree(
            settings,
            "was started with different settings than process 0: every process needs the same "
            "options (seed, batch size, image size, ...)",
        )

    def check_same_data(self, config) -> None:
        """Refuse to train when the processes read different data: the data fingerprint and the
        class counts after the split must match (the folder's path may differ between hosts)."""
        data = config.extra.get("data", {})
        seen = {key: data.get(key) for key in ("fingerprint", "train", "validation")}
        seen["skipped_bad"] = len(data.get("skipped_bad", []))
        self._agree(seen, "sees different data than process 0: every host needs the same data folder")

    def prepare(self, model, train, validation, config):
        """Check that the processes read the same data, make every batch shardable, and make
        ``model``'s metrics count real images only (:func:`shardable_batches`, :func:`skip_padding`)."""
        self.check_same_data(config)
        skip_padding(model)
        return shardable_batches(train, validation, config.batch_size)

    def finish(self) -> None:
        """Leave the cluster together; afterwards this process computes alone.

        ``jax.distributed.shutdown`` is a barrier: when it returns, every process has finished
        its last collective step (the last checkpoint save), so nobody can be left waiting.
        """
        import jax
        import keras

        jax.distributed.shutdown()
        self.watchdog.finish()
        keras.distribution.set_distribution(None)
        self._finished = True

    def abort(self, reason: str, code: int) -> None:
        """This process failed: tell the others and exit now (no JAX shutdown barrier to hang on)."""
        if self._finished:
            return
        self.close()
        self.watchdog.abort(reason, code)

    def close(self) -> None:
        if self._own_scratch and self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)


def shardable_batches(train, validation, batch_size: int):
    """Datasets whose every batch has the static global size Keras needs to split it evenly.

    Training drops its last, partial batch (fewer than ``batch_size`` images, a different random
    subset each epoch): a shorter batch cannot be split evenly, and padding it would change
    BatchNormalization's batch statistics. Validation pads its last batch with zero-weight
    images instead; with :func:`skip_padding`, AUC, accuracy and sensitivity count exactly the
    real images (``val_loss`` is averaged over the padded count, so it reads slightly low). Batches are
    ``(images, labels)`` or ``(images, labels, weights)``.
    """
    import tensorflow as tf

    def full(*batch):
        return tf.equal(tf.shape(batch[0])[0], batch_size)

    def static(*batch):
        return tuple(tf.ensure_shape(t, [batch_size, *t.shape[1:]]) for t in batch)

    def pad(*batch):
        if len(batch) == 2:
            batch = (*batch, tf.ones_like(batch[1], dtype=tf.float32))
        missing = batch_size - tf.shape(batch[0])[0]
        return static(*(tf.pad(t, [[0, missing]] + [[0, 0]] * (len(t.shape) - 1)) for t in batch))

    return train.filter(full).map(static), validation.map(pad)


def skip_padding(model) -> None:
    """Recompile ``model`` so that its metrics leave out the zero-weight padding images.

    Keras passes sample weights only to ``weighted_metrics``, not to ``metrics``; here each
    metric becomes a weighted one whose weight is ``weight > 0``: every real image counts once
    (class weights included, exactly as in a one-process run) and padding not at all. The
    checkpoints still record the model's ordinary compilation, so they load anywhere without
    this module.
    """
    import keras
    from keras import ops

    class RealImagesOnly(keras.metrics.Metric):
        def __init__(self, inner):
            super().__init__(name=inner.name, dtype=inner.dtype)
            self.inner = inner

        def update_state(self, y_true, y_pred, sample_weight=None):
            if sample_weight is not None:
                sample_weight = ops.cast(ops.greater(sample_weight, 0), self.inner.dtype)
            return self.inner.update_state(y_true, y_pred, sample_weight=sample_weight)

        def result(self):
            return self.inner.result()

        def reset_state(self):
            self.inner.reset_state()

    ordinary = model.get_compile_config()
    metrics = [keras.metrics.deserialize(m) for m in ordinary.get("metrics") or []]
    model.compile(
        optimizer=model.optimizer,
        loss=model.loss,
        weighted_metrics=[RealImagesOnly(m) for m in metrics],
    )
    model.get_compile_config = lambda: ordinary  # what saving records


def start(
    cluster: Cluster,
    worker_out: Path | None = None,
    join_timeout: float = JOIN_TIMEOUT_SECONDS,
    log=print,
) -> Session:
    """Link the processes, join the JAX cluster and set data parallelism over all devices.

    ``jax.distributed.initialize`` is what ``keras.distribution.initialize`` calls; it is called
    here directly for its timeouts, so a missing process fails the start instead of hanging it.
    """
    from train.watchdog import Watchdog, WatchdogError

    try:
        watchdog = Watchdog.link(
            cluster.host, cluster.port + 1, cluster.process_id, cluster.num_processes,
            join_timeout=join_timeout, log=log,
        )
    except (WatchdogError, OSError) as exc:
        raise DataError(f"process {cluster.process_id} could not join the cluster: {exc}") from None
    import jax

    jax.distributed.initialize(
        coordinator_address=cluster.coordinator,
        num_processes=cluster.num_processes,
        process_id=cluster.process_id,
        initialization_timeout=int(join_timeout),
        shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_SECONDS,
    )
    watchdog.trap_signals()  # after JAX has installed its SIGTERM handler

    import keras

    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    scratch = None
    if not cluster.is_chief:
        if worker_out is not None:
            scratch = Path(worker_out)
        else:
            scratch = Path(tempfile.mkdtemp(prefix=f"pneumoscan-process-{cluster.process_id}-"))
    log(
        f"process {cluster.process_id} of {cluster.num_processes}: data-parallel on "
        f"{len(devices)} devices ({jax.local_device_count()} here), coordinator {cluster.coordinator}"
    )
    return Session(cluster, watchdog, scratch, own_scratch=worker_out is None, log=log)
