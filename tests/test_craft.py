"""utils.craft: initialisation, activations, normalisation, distillation and search, against Keras.

Each reference formula is checked against what Keras (or autodiff) computes independently, and each
failure mode the lesson shows is asserted with the size theory predicts, with a wide margin.
"""

import math

import numpy as np
import pytest

from utils.env import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from utils import craft  # noqa: E402

# ---------------------------------------------------------------------------------------------
# initialisation
# ---------------------------------------------------------------------------------------------


def test_fans_follow_keras_convention_for_dense_and_conv_kernels():
    assert craft.fans((64, 10)) == (64, 10)
    # a 3x3 convolution from 16 to 32 channels: each output sums 3*3*16 inputs
    assert craft.fans((3, 3, 16, 32)) == (144, 288)
    assert craft.fans((5, 8, 4)) == (40, 20)  # Conv1D: kernel 5, 8 -> 4 channels
    assert craft.fans((7,)) == (7, 7)


def test_truncated_normal_correction_is_the_std_of_a_normal_cut_at_two_sigma():
    # Var of N(0, 1) truncated to [-2, 2]: 1 - 2·2·φ(2) / (Φ(2) - Φ(-2))
    phi2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    assert craft.TRUNCATED_NORMAL_STD == pytest.approx(math.sqrt(1 - 4 * phi2 / mass), rel=1e-12)


@pytest.mark.parametrize("shape", [(256, 512), (3, 3, 64, 128)])
def test_normal_initialisers_have_the_formula_std_after_truncation(shape):
    fan_in, fan_out = craft.fans(shape)
    cases = [
        (keras.initializers.GlorotNormal(seed=1), craft.glorot_std(fan_in, fan_out)),
        (keras.initializers.HeNormal(seed=2), craft.he_std(fan_in)),
    ]
    for initializer, std in cases:
        w = keras.ops.convert_to_numpy(initializer(shape)).astype(np.float64)
        # 131k or 74k samples: the empirical std is within 1 % of the true one
        assert w.std() == pytest.approx(std, rel=0.01), type(initializer).__name__
        # Keras truncates at two of the *requested* standard deviations, std / 0.8796
        assert np.abs(w).max() <= 2 * std / craft.TRUNCATED_NORMAL_STD * (1 + 1e-6)
        assert np.abs(w).max() > 2 * std  # so the requested std really was larger than the result's


@pytest.mark.parametrize("shape", [(256, 512), (3, 3, 64, 128)])
def test_uniform_initialisers_have_limit_sqrt3_times_the_std(shape):
    fan_in, fan_out = craft.fans(shape)
    cases = [
        (keras.initializers.GlorotUniform(seed=3), craft.glorot_std(fan_in, fan_out)),
        (keras.initializers.HeUniform(seed=4), craft.he_std(fan_in)),
    ]
    for initializer, std in cases:
        w = keras.ops.convert_to_numpy(initializer(shape)).astype(np.float64)
        limit = math.sqrt(3) * std
        assert np.abs(w).max() <= limit * (1 + 1e-6)
        assert np.abs(w).max() > 0.999 * limit
        assert w.std() == pytest.approx(std, rel=0.01)


def test_he_keeps_relu_activations_through_50_layers_and_glorot_lets_them_vanish():
    he = craft.depth_statistics("he_normal", "relu", depth=50, width=128, n=256, seed=0)
    glorot = craft.depth_statistics("glorot_normal", "relu", depth=50, width=128, n=256, seed=0)
    # He: Var(z) is kept layer to layer, up to finite-width noise
    assert 0.5 < he.std[-1] / he.std[0] < 2
    # Glorot halves the second moment at every ReLU layer: 2^-49 in variance, ~1e-7 in std
    assert glorot.std[-1] / glorot.std[0] < 1e-4
    # the two networks differ only by a scale, so the same units die in both
    np.testing.assert_array_equal(he.dead, glorot.dead)


def test_failure_modes_vanishing_exploding_and_dead_relus():
    kw = dict(depth=50, width=64, n=128, seed=1)
    small_tanh = craft.depth_statistics(0.01, "tanh", **kw)  # gain 0.01·sqrt(64) = 0.08 per layer
    assert small_tanh.std[9] < 1e-8 * small_tanh.std[0]
    sigmoid = craft.depth_statistics("glorot_normal", "sigmoid", **kw)  # σ' ≤ 1/4 at every layer
    assert sigmoid.grad_norm[0] < 1e-10 * sigmoid.grad_norm[-1]
    large = craft.depth_statistics(2 * craft.he_std(64), "relu", **kw)  # twice He: ×2 in std per layer
    assert large.std[-1] > 1e10 * large.std[0]
    negative_bias = craft.depth_statistics("he_normal", "relu", bias=-1.0, **kw)
    assert negative_bias.dead[-1] > 0.9
    assert craft.depth_statistics("he_normal", "relu", **kw).dead[0] == 0.0


def test_depth_statistics_gradients_equal_gradient_tape():
    weights = []

    def recording(shape, rng):
        w = rng.standard_normal(shape) * craft.he_std(shape[0])
        weights.append(w)
        return w

    stats = craft.depth_statistics(recording, "tanh", depth=4, width=8, n=5, seed=3, dtype="float64")
    rng = np.random.default_rng(3)  # the same draws, in the same order, as depth_statistics
    x = rng.standard_normal((5, 8))
    upstream = rng.standard_normal((5, 8)) / 5
    variables = [tf.Variable(w) for w in weights]
    with tf.GradientTape() as tape:
        h = tf.constant(x)
        for w in variables:
            h = tf.tanh(h @ w)
        loss = tf.reduce_sum(h * upstream)
    grads = tape.gradient(loss, variables)
    np.testing.assert_allclose(stats.grad_norm, [np.linalg.norm(g) for g in grads], rtol=1e-10)
    np.testing.assert_allclose(stats.std[-1], np.std(h.numpy()), rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------------------------

KERAS_ACTIVATIONS = {
    "sigmoid": keras.activations.sigmoid,
    "tanh": keras.activations.tanh,
    "relu": keras.activations.relu,
    "leaky_relu": keras.activations.leaky_relu,
    "gelu": lambda x: keras.activations.gelu(x, approximate=False),
    "silu": keras.activations.silu,
}


@pytest.mark.parametrize("name", sorted(craft.ACTIVATIONS))
def test_activation_and_derivative_equal_keras_and_autodiff(name):
    x = np.linspace(-6.0, 6.0, 100)  # an even count: 0 (ReLU's kink) is not among them
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = KERAS_ACTIVATIONS[name](xt)
    dy = tape.gradient(y, xt)
    table = craft.activation_table(x)[name]
    # float64 throughout; GELU's far negative tail, 1 + erf(x/√2) ≈ 1e-9, loses a few digits either way
    np.testing.assert_allclose(table["value"], y.numpy(), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(table["derivative"], dy.numpy(), rtol=1e-6, atol=1e-12)


def test_saturating_activations_kill_gradients_far_from_zero():
    table = craft.activation_table(np.array([0.0, 10.0]))
    assert table["sigmoid"]["derivative"][0] == pytest.approx(0.25)  # the most a sigmoid passes on
    assert table["sigmoid"]["derivative"][1] < 1e-4
    assert table["tanh"]["derivative"][1] < 1e-8
    assert table["relu"]["derivative"][1] == 1.0


# ---------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def nhwc():
    rng = np.random.default_rng(0)
    return (3.0 + 2.0 * rng.standard_normal((4, 5, 6, 8))).astype(np.float32)


def test_batch_norm_equals_keras_in_training_mode(nhwc):
    expected = keras.layers.BatchNormalization()(nhwc, training=True)
    np.testing.assert_allclose(craft.batch_norm(nhwc), keras.ops.convert_to_numpy(expected), atol=1e-4)
    flat = nhwc.reshape(4, -1)
    expected = keras.layers.BatchNormalization()(flat, training=True)
    np.testing.assert_allclose(craft.batch_norm(flat), keras.ops.convert_to_numpy(expected), atol=1e-4)


def test_layer_norm_is_keras_over_c_h_w_not_its_default_axis(nhwc):
    expected = keras.layers.LayerNormalization(axis=[1, 2, 3])(nhwc)
    np.testing.assert_allclose(craft.layer_norm(nhwc), keras.ops.convert_to_numpy(expected), atol=1e-4)
    per_pixel = keras.ops.convert_to_numpy(keras.layers.LayerNormalization()(nhwc))  # axis=-1
    assert np.abs(per_pixel - craft.layer_norm(nhwc)).max() > 0.1
    flat = nhwc.reshape(4, -1)  # (batch, features): the default axis is the textbook one
    expected = keras.layers.LayerNormalization()(flat)
    np.testing.assert_allclose(craft.layer_norm(flat), keras.ops.convert_to_numpy(expected), atol=1e-4)


def test_group_norm_equals_keras_and_spans_layer_and_instance_norm(nhwc):
    expected = keras.layers.GroupNormalization(groups=4)(nhwc)
    np.testing.assert_allclose(craft.group_norm(nhwc, 4), keras.ops.convert_to_numpy(expected), atol=1e-4)
    np.testing.assert_allclose(craft.group_norm(nhwc, 1), craft.layer_norm(nhwc), atol=1e-12)
    instance = (nhwc - nhwc.mean(axis=(1, 2), keepdims=True)) / np.sqrt(
        nhwc.var(axis=(1, 2), keepdims=True) + 1e-3
    )
    np.testing.assert_allclose(craft.group_norm(nhwc, 8), instance, atol=1e-5)


def test_only_batch_norm_makes_an_example_depend_on_its_batch(nhwc):
    other = nhwc.copy()
    other[1:] *= 3.0  # change every example but the first
    assert not np.allclose(craft.batch_norm(nhwc)[0], craft.batch_norm(other)[0])
    np.testing.assert_allclose(craft.layer_norm(nhwc)[0], craft.layer_norm(other)[0])
    np.testing.assert_allclose(craft.group_norm(nhwc, 2)[0], craft.group_norm(other, 2)[0])


# ---------------------------------------------------------------------------------------------
# distillation
# ---------------------------------------------------------------------------------------------


def _logits(seed, batch=16, classes=10, scale=2.0):
    return (scale * np.random.default_rng(seed).standard_normal((batch, classes))).astype(np.float32)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_distillation_loss_is_t_squared_kl_and_mixes_in_the_labels():
    s, t, labels = _logits(0), _logits(1), np.arange(16) % 10
    T = 3.0
    p, q = _softmax(t / T), _softmax(s / T)
    kl = (p * (np.log(p) - np.log(q))).sum(axis=1).mean()
    assert float(craft.distillation_loss(s, t, T)) == pytest.approx(T**2 * kl, rel=1e-5)
    assert float(craft.distillation_loss(t, t, T)) == pytest.approx(0.0, abs=1e-6)
    ce = -np.log(_softmax(s)[np.arange(16), labels]).mean()
    mixed = craft.distillation_loss(s, t, T, labels=labels, alpha=0.3)
    assert float(mixed) == pytest.approx(0.3 * ce + 0.7 * T**2 * kl, rel=1e-5)
    one_hot = np.eye(10, dtype=np.float32)[labels]
    assert float(craft.distillation_loss(s, t, T, labels=one_hot, alpha=0.3)) == pytest.approx(
        float(mixed), rel=1e-6
    )
    soft = keras.ops.convert_to_numpy(craft.soft_targets(t, T))
    np.testing.assert_allclose(soft, p, rtol=1e-5)


def _grad_norm(temperature, scaled=True):
    s, t = tf.constant(_logits(2)), tf.constant(_logits(3))
    with tf.GradientTape() as tape:
        tape.watch(s)
        loss = craft.distillation_loss(s, t, temperature)
        if not scaled:
            loss = loss / temperature**2
    grad = tape.gradient(loss, s)
    return float(tf.norm(grad)), grad.numpy(), s.numpy(), t.numpy()


def test_gradient_is_t_times_q_minus_p_over_batch():
    T = 4.0
    _, grad, s, t = _grad_norm(T)
    # ∂(T² KL)/∂s = T² (q - p) / T, averaged over the batch of 16
    np.testing.assert_allclose(grad, T * (_softmax(s / T) - _softmax(t / T)) / 16, rtol=1e-4, atol=1e-7)


def test_t_squared_keeps_gradients_the_same_size_across_temperatures():
    temperatures = [1.0, 2.0, 4.0, 8.0]
    with_t2 = [_grad_norm(T)[0] for T in temperatures]
    without = [_grad_norm(T, scaled=False)[0] for T in temperatures]
    assert max(with_t2) / min(with_t2) < 2
    # without the T² factor the gradient shrinks roughly as 1/T²: 64 times from T=1 to T=8
    assert 1 / 128 < without[-1] / without[0] < 1 / 32
    for a, b in zip(without, without[1:], strict=False):
        assert b < a / 2


def _teacher_student(classes=4, features=6):
    teacher = keras.Sequential([keras.Input((features,)), keras.layers.Dense(classes, dtype="float32")])
    student = keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(classes, dtype="float32"),
        ]
    )
    return teacher, student


@pytest.mark.slow
def test_distiller_and_packed_loss_train_the_student_towards_the_teacher():
    keras.utils.set_random_seed(0)
    teacher, student = _teacher_student()
    x = np.random.default_rng(0).standard_normal((256, 6)).astype(np.float32)
    t_logits = keras.ops.convert_to_numpy(teacher(x))
    labels = t_logits.argmax(axis=1)
    distiller = craft.Distiller(student, teacher, temperature=2.0, alpha=0.1)
    distiller.compile(optimizer=keras.optimizers.Adam(0.03), metrics=["accuracy"])
    before = float(craft.distillation_loss(student(x), t_logits, 2.0))
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    history = distiller.fit(x, labels, epochs=10, batch_size=64, verbose=0)
    after = float(craft.distillation_loss(student(x), t_logits, 2.0))
    assert after < 0.5 * before
    assert "accuracy" in history.history
    for w, w0 in zip(teacher.get_weights(), teacher_weights, strict=True):
        np.testing.assert_array_equal(w, w0)  # the teacher is frozen

    loss = craft.DistillationLoss(temperature=2.0, alpha=0.1)
    packed = craft.pack_targets(labels, t_logits)
    s_logits = keras.ops.convert_to_numpy(student(x))
    expected = craft.distillation_loss(s_logits, t_logits, 2.0, labels=labels, alpha=0.1)
    assert float(loss(packed, s_logits)) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.slow
def test_distiller_trains_under_mixed_precision(mixed_policy):
    keras.utils.set_random_seed(0)
    teacher, student = _teacher_student()
    x = np.random.default_rng(1).standard_normal((128, 6)).astype(np.float32)
    labels = keras.ops.convert_to_numpy(teacher(x)).argmax(axis=1)
    distiller = craft.Distiller(student, teacher, temperature=4.0)
    distiller.compile(optimizer=keras.optimizers.Adam(0.03))
    history = distiller.fit(x, labels, epochs=3, batch_size=64, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert craft.distillation_loss(student(x), teacher(x), 4.0).dtype == "float32"


# ---------------------------------------------------------------------------------------------
# hyper-parameter search
# ---------------------------------------------------------------------------------------------


def test_hyperband_cost_follows_the_schedule_worked_by_hand():
    # max_epochs 9, factor 3: brackets of (9 trials × 1 epoch, 3 continued +2, 1 continued +6),
    # (5 × 3, 2 continued +6) and (3 × 9): 21 + 27 + 27 epochs
    assert craft.hyperband_cost(9, 3) == 75
    # max_epochs 3: (3 × 1, 1 continued +2) and (2 × 3)
    assert craft.hyperband_cost(3, 3) == 11


def test_grid_values_spend_the_same_number_of_trials_inside_the_search_space():
    for n_trials in (2, 6, 12, 13):
        grid = craft.grid_values(n_trials)
        size = math.prod(len(v) for v in grid.values())
        assert n_trials // 2 <= size <= n_trials
        low, high = craft.SEARCH_SPACE["learning_rate"]
        assert all(low < lr < high for lr in grid["learning_rate"])
        assert len(set(grid["learning_rate"])) == len(grid["learning_rate"])


@pytest.mark.slow
def test_a_tiny_search_runs_quietly_and_reports_its_trials(tmp_path, capsys):
    result = craft.run_search("random", budget_epochs=2, epochs_per_trial=1, seed=0, directory=str(tmp_path))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Search: Running Trial" not in captured.err
    assert len(result.trials) == 2 and result.epochs_used == 2
    assert set(result.best_hyperparameters) == {"learning_rate", "units", "dropout", "batch_size"}
    assert 0.0 <= result.best_score <= 1.0
    assert result.best_score == max(t["score"] for t in result.trials)
    cost, best = result.best_so_far()
    np.testing.assert_array_equal(cost, [1, 2])
    assert best[-1] == result.best_score


@pytest.mark.slow
def test_a_search_trains_its_trials_at_the_callers_precision(mixed_policy, tmp_path, monkeypatch):
    built = []

    def spy(hp, *args, **kwargs):
        model = build_tunable(hp, *args, **kwargs)
        scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        built.append((model.dtype_policy.name, model.layers[0].dtype_policy.name, scaled))
        return model

    build_tunable = craft.build_tunable
    monkeypatch.setattr(craft, "build_tunable", spy)
    craft.run_search("random", budget_epochs=1, epochs_per_trial=1, directory=str(tmp_path))
    # the tuner's first build and the trial's: the model, its layers, and loss scaling for float16
    assert len(built) >= 2 and set(built) == {(mixed_policy, mixed_policy, mixed_policy == "mixed_float16")}
    assert keras.mixed_precision.global_policy().name == mixed_policy  # the caller's policy is untouched


def test_best_learning_rate_grows_with_the_batch_size():
    grid = craft.lr_batch_grid(learning_rates=(0.05, 0.2, 0.8), batch_sizes=(4, 512), epochs=3)
    assert grid["loss"].shape == (3, 2)
    small, large = grid["best_lr"]
    assert large > small
    # the step that is too noisy with 4 examples per batch is the best one with 512
    assert np.nanargmax(grid["loss"][:, 0]) == 2 and np.nanargmin(grid["loss"][:, 1]) == 2


def test_hyperband_stops_before_a_trial_would_pass_the_budget():
    from types import SimpleNamespace

    def values(epochs, initial):
        return {"tuner/epochs": epochs, "tuner/initial_epoch": initial}

    done = {
        str(i): SimpleNamespace(trial_id=str(i), hyperparameters=SimpleNamespace(values=values(3, 1)))
        for i in range(2)
    }
    oracle = SimpleNamespace(
        trials=done, populate_space=lambda trial_id: {"status": "RUNNING", "values": values(9, 3)}
    )
    craft._cap_hyperband(oracle, budget_epochs=10)  # 2 + 2 used: a 6-epoch continuation fits
    assert oracle.populate_space("2")["status"] == "RUNNING"
    craft._cap_hyperband(oracle, budget_epochs=9)  # it would need 10
    assert oracle.populate_space("2") == {"status": "STOPPED"}
