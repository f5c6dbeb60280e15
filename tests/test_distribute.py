"""utils.distribute: a real two-worker MultiWorkerMirroredStrategy run on 127.0.0.1 ends with the same
weights on both workers (and the same as one device trained on the same global batches), and a
training run that is really interrupted and resumed with BackupAndRestore ends where an
uninterrupted run ends. The custom loop also holds under the mixed policies a T4 (mixed_float16,
with loss scaling) and a TPU (mixed_bfloat16) get, and the workers train at the caller's policy."""

import json
import socket

import keras
import numpy as np
import psutil
import pytest

from utils import distribute
from utils.env import tolerance

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


@pytest.mark.slow
def test_a_failing_worker_is_reported_and_ended(problem, tmp_path):
    x, y = problem
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(distribute.WorkerError, match=r"worker \d exited with code 1(.|\n)*ZeroDivisionError"):
        # a global batch of 0 makes each worker fail before it trains
        distribute.run_multi_worker(x, y, 2, epochs=1, global_batch_size=0, timeout=120, workdir=tmp_path)
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not left, f"worker processes still running: {left}"


@pytest.mark.slow
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


# ---------------------------------------------------------------------------------------------
# Mixed precision
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_custom_loop_under_a_mixed_policy_matches_float32(problem, mixed_policy):
    x, y = problem
    model = distribute.build_mlp(x.shape[1], 10)
    assert model.layers[0].compute_dtype == mixed_policy.removeprefix("mixed_")  # the hidden layer
    assert model.layers[-1].compute_dtype == "float32"  # the logits stay float32 for the loss
    mixed = distribute.train_custom_loop(None, x, y, epochs=2, global_batch_size=GLOBAL_BATCH)
    keras.mixed_precision.set_global_policy("float32")
    plain = distribute.train_custom_loop(None, x, y, epochs=2, global_batch_size=GLOBAL_BATCH)
    assert all(w.dtype == np.float32 for w in mixed.weights)  # float32 master weights
    assert np.all(np.isfinite(mixed.losses)) and mixed.losses[-1] < mixed.losses[0]
    assert _max_diff(plain.weights, mixed.weights) <= tolerance(mixed_policy)["atol"]
    assert _max_diff(plain.weights, mixed.weights) > 0  # it really ran at the lower precision


@pytest.mark.slow
def test_train_step_scales_the_loss_and_skips_an_overflowing_step():
    import tensorflow as tf

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        x, y = distribute.digits_problem(GLOBAL_BATCH)
        model = distribute.build_mlp(x.shape[1], 10)
        strategy = tf.distribute.get_strategy()
        before = [w.numpy() for w in model.trainable_weights]
        # a loss scale of 2^40 makes the float16 gradients overflow: the step is skipped, the scale halved
        too_large = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=2.0**40)
        too_large.build(model.trainable_variables)
        loss = distribute.make_train_step(strategy, model, too_large, GLOBAL_BATCH)((x, y))
        assert np.isfinite(float(loss))  # the loss itself is fine; its scaled gradients are not
        assert float(too_large.dynamic_scale) == 2.0**39
        assert _max_diff(before, [w.numpy() for w in model.trainable_weights]) == 0.0
        # the default scale (2^15) fits: the step is applied, by the unscaled gradient
        scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))
        scaled.build(model.trainable_variables)
        distribute.make_train_step(strategy, model, scaled, GLOBAL_BATCH)((x, y))
        assert float(scaled.dynamic_scale) == 2.0**15
        moved = _max_diff(before, [w.numpy() for w in model.trainable_weights])
        assert 1e-4 < moved < 1.0, moved
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
def test_two_workers_on_localhost_train_at_the_callers_policy_and_agree(problem, tmp_path):
    # One real two-worker run (each worker is a new process that imports TensorFlow: the costly part).
    # Lesson 09 runs the same under float32 and asserts identical workers and the one-device result; here
    # the workers get a T4's policy from the caller, so they scale the loss too.
    x, y = problem[0][:128], problem[1][:128]
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        result = distribute.run_multi_worker(
            x, y, 2, epochs=2, global_batch_size=GLOBAL_BATCH, timeout=240, workdir=tmp_path
        )
        single = distribute.train_custom_loop(None, x, y, epochs=2, global_batch_size=GLOBAL_BATCH)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert result.policies == ["mixed_float16", "mixed_float16"]
    assert len(result.weights) == 2 and len(set(result.ports)) == 2
    steps = 2 * (len(x) // GLOBAL_BATCH)
    assert [len(losses) for losses in result.losses] == [steps, steps]
    # training happened: the weights moved from their initial values and the loss fell
    initial = distribute.build_mlp(x.shape[1], 10, seed=0).get_weights()
    assert _max_diff(initial, result.weights[0]) > 1e-3
    assert result.losses[0][-1] < result.losses[0][0]
    # the all-reduce gives both workers the same update at every step
    assert result.max_difference() == 0.0
    assert result.losses[0] == pytest.approx(result.losses[1], abs=1e-6)
    # and the same as one device trained on the same global batches, at this policy's precision
    assert _max_diff(single.weights, result.weights[0]) <= tolerance("mixed_float16")["atol"]
    # no worker is left running
    assert not {p.pid for p in psutil.Process().children(recursive=True)} - before
