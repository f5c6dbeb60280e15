"""utils.distribute: a real two-worker MultiWorkerMirroredStrategy run on 127.0.0.1 ends with the same
weights on both workers (and the same as one device trained on the same global batches), and a
training run that is really interrupted and resumed with BackupAndRestore ends where an
uninterrupted run ends."""

import json
import socket

import numpy as np
import psutil
import pytest

from utils import distribute

N_EXAMPLES = 256
GLOBAL_BATCH = 64


@pytest.fixture(scope="module")
def problem():
    return distribute.digits_problem(N_EXAMPLES)


def _max_diff(a, b):
    return max(float(np.max(np.abs(p - q))) for p, q in zip(a, b, strict=True))


def test_tf_config_names_every_worker_and_this_task():
    config = distribute.tf_config([4001, 4002], 1)
    assert config["cluster"]["worker"] == ["127.0.0.1:4001", "127.0.0.1:4002"]
    assert config["task"] == {"type": "worker", "index": 1}
    json.dumps(config)  # TF_CONFIG is JSON


def test_free_port_can_be_bound():
    port = distribute.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_two_workers_on_localhost_end_with_identical_weights(problem, tmp_path):
    x, y = problem
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    result = distribute.run_multi_worker(
        x, y, 2, epochs=2, global_batch_size=GLOBAL_BATCH, timeout=240, workdir=tmp_path
    )
    assert len(result.weights) == 2 and len(set(result.ports)) == 2
    steps = 2 * (N_EXAMPLES // GLOBAL_BATCH)
    assert [len(losses) for losses in result.losses] == [steps, steps]
    # training happened: the weights moved from their initial values and the loss fell
    initial = distribute.build_mlp(x.shape[1], 10, seed=0).get_weights()
    assert _max_diff(initial, result.weights[0]) > 1e-3
    assert result.losses[0][-1] < result.losses[0][0]
    # the all-reduce gives both workers the same update at every step
    assert result.max_difference() <= 1e-6, result.max_difference()
    assert result.losses[0] == pytest.approx(result.losses[1], abs=1e-6)
    # and the same as one device trained on the same global batches
    single = distribute.train_custom_loop(None, x, y, epochs=2, global_batch_size=GLOBAL_BATCH)
    assert _max_diff(single.weights, result.weights[0]) <= 1e-4
    assert single.losses == pytest.approx(result.losses[0], abs=1e-4)
    # no worker is left running
    assert not {p.pid for p in psutil.Process().children(recursive=True)} - before


def test_a_failing_worker_is_reported_and_ended(problem, tmp_path):
    x, y = problem
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(distribute.WorkerError, match=r"worker \d exited with code 1(.|\n)*ZeroDivisionError"):
        # a global batch of 0 makes each worker fail before it trains
        distribute.run_multi_worker(x, y, 2, epochs=1, global_batch_size=0, timeout=120, workdir=tmp_path)
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not left, f"worker processes still running: {left}"


def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(problem, tmp_path):
    x, y = problem
    epochs = 4
    full = distribute.fit_resumable(x, y, backup_dir=tmp_path / "full", epochs=epochs)
    assert not full.interrupted and full.epochs_run == [1, 2, 3, 4]
    first = distribute.fit_resumable(x, y, backup_dir=tmp_path / "cut", epochs=epochs, interrupt_after=2)
    assert first.interrupted and first.epochs_run == [1, 2]
    assert (tmp_path / "cut").exists() and any((tmp_path / "cut").iterdir()), "no backup was written"
    resumed = distribute.fit_resumable(x, y, backup_dir=tmp_path / "cut", epochs=epochs)
    assert not resumed.interrupted and resumed.epochs_run == [3, 4], "did not resume after epoch 2"
    assert first.losses + resumed.losses == pytest.approx(full.losses, rel=1e-6)
    assert _max_diff(full.weights, resumed.weights) <= 1e-6
    # a fresh run without the backup would not have matched: the resume really restored state
    fresh = distribute.fit_resumable(x, y, backup_dir=tmp_path / "fresh", epochs=2)
    assert _max_diff(full.weights, fresh.weights) > 1e-3
