"""utils.models: the ResNet builders reproduce the published parameter counts, and the residual
block written out in lesson 05 computes exactly what the reference copy computes."""

import json
from pathlib import Path

import numpy as np
import pytest

from utils.env import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

from utils import models  # noqa: E402

LESSON = Path(__file__).resolve().parent.parent / "notebooks" / "05_residual_networks.ipynb"

# He et al. (2015), Table 6: parameters of the CIFAR-10 ResNets, in millions.
CIFAR_PUBLISHED = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}
# torchvision's documented parameter counts (no biases in convolutions, no BN moving statistics).
TORCHVISION = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}
KERAS_RESNET50 = 25_636_712


def cifar_count_by_hand(depth: int) -> int:
    """Trainable parameters of the option-A CIFAR ResNet, counted from the architecture."""
    n = (depth - 2) // 6
    conv = lambda k, c_in, c_out: k * k * c_in * c_out
    bn = lambda c: 2 * c  # gamma and beta
    total = conv(3, 3, 16) + bn(16)  # the first convolution
    for c_in, c in ((16, 16), (16, 32), (32, 64)):
        total += conv(3, c_in, c) + bn(c) + conv(3, c, c) + bn(c)  # the first block of the stage
        total += (n - 1) * 2 * (conv(3, c, c) + bn(c))  # the other n - 1 blocks
    return total + 64 * 10 + 10  # the dense layer


@pytest.mark.parametrize("depth", [20, 56])
def test_cifar_resnets_match_the_paper(depth):
    model = models.resnet_cifar(depth)
    count = models.trainable_params(model)
    assert count == cifar_count_by_hand(depth)
    assert round(count / 1e6, 2) == CIFAR_PUBLISHED[depth]
    # BN's moving mean and variance are the only other weights Keras counts
    n_bn_channels = sum(
        layer.moving_mean.shape[0]
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    assert model.count_params() == count + 2 * n_bn_channels
    assert model.output.shape == (None, 10)
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) == depth - 1


def test_every_published_cifar_depth_rounds_to_the_paper():
    # counted by hand (no model built): the builder equals this count for 20 and 56 above
    for depth, published in CIFAR_PUBLISHED.items():
        digits = 1 if published >= 1 else 2
        assert round(cifar_count_by_hand(depth) / 1e6, digits) == published


def test_projection_shortcuts_add_2752_parameters():
    a = models.trainable_params(models.resnet_cifar(20, shortcut="A"))
    b = models.trainable_params(models.resnet_cifar(20, shortcut="B"))
    assert b - a == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64) == 2752
    plain = models.plain_cifar(20)
    assert models.trainable_params(plain) == a  # option A shortcuts have no parameters
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)


@pytest.mark.parametrize("depth", [18, 50])
def test_imagenet_resnets_match_torchvision(depth):
    model = models.resnet(depth)
    assert models.trainable_params(model) == TORCHVISION[depth]
    assert model.output.shape == (None, 1000)


def test_resnet50_matches_keras_applications_layer_by_layer():
    ours = models.resnet(50, keras_applications=True)
    theirs = keras.applications.ResNet50(weights=None)
    assert ours.count_params() == theirs.count_params() == KERAS_RESNET50
    shapes = lambda m: {layer.name: tuple(layer.output.shape) for layer in m.layers[1:]}  # not the input
    assert shapes(ours) == shapes(theirs)
    # torchvision-style (the default): only the first 1×1 convolution of a downsampling block differs
    default = {layer.name: tuple(layer.output.shape) for layer in models.resnet(50).layers[1:]}
    differ = sorted(name for name in default if default[name] != shapes(ours)[name])
    assert differ == [f"conv{s}_block1_1_{part}" for s in (3, 4, 5) for part in ("bn", "conv", "relu")]
    kernels = lambda m: {
        layer.name: tuple(layer.kernel.shape) for layer in m.layers if isinstance(layer, keras.layers.Conv2D)
    }
    assert kernels(ours) == kernels(theirs)
    # the difference to torchvision: one bias per convolution output channel, and BN's moving stats
    conv_out = sum(layer.filters for layer in theirs.layers if isinstance(layer, keras.layers.Conv2D))
    bn_channels = sum(
        layer.gamma.shape[0] for layer in theirs.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    assert conv_out == bn_channels == 26_560
    assert KERAS_RESNET50 == TORCHVISION[50] + conv_out + 2 * bn_channels
    assert models.trainable_params(theirs) == TORCHVISION[50] + conv_out


def test_forward_flops_counts_multiply_adds_twice():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)  # 4×4×4 out, 27 MACs each
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)
    model = keras.Model(inputs, outputs)
    assert models.forward_flops(model) == 2 * (4 * 4 * 4 * 27) + 2 * (4 * 5)
    # ResNet-50: 4.09 G multiply-adds per 224×224 image (torchvision's documented "GFLOPS")
    assert abs(models.forward_flops(models.resnet(50)) / 2 / 1e9 - 4.09) < 0.01


def test_zero_pad_shortcut():
    x = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3)
    y = keras.ops.convert_to_numpy(models.ZeroPadShortcut(5, 2)(x))
    assert y.shape == (2, 2, 2, 5)
    np.testing.assert_array_equal(y[..., :3], x[:, ::2, ::2, :])
    assert not y[..., 3:].any()
    layer = models.ZeroPadShortcut.from_config(models.ZeroPadShortcut(5, 2).get_config())
    assert (layer.filters, layer.stride) == (5, 2)


def _lesson_block():
    """Return the `residual_block` function defined in lesson 05 (exec'd from its cell)."""
    nb = json.loads(LESSON.read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    source = [c for c in cells if c.lstrip().startswith("def residual_block(")]
    assert len(source) == 1, "lesson 05 should define residual_block in one cell of its own"
    namespace = {"keras": keras, "tf": tf, "np": np}
    exec(source[0], namespace)
    return namespace["residual_block"]


@pytest.mark.parametrize(("c_in", "filters", "stride"), [(8, 8, 1), (8, 16, 2), (4, 8, 1)])
def test_the_lessons_block_computes_what_utils_computes(c_in, filters, stride):
    lesson_block = _lesson_block()
    inputs = keras.Input((8, 8, c_in))
    theirs = keras.Model(inputs, lesson_block(inputs, filters, stride))
    ours = keras.Model(inputs, models.residual_block(inputs, filters, stride))
    assert [w.shape for w in theirs.weights] == [w.shape for w in ours.weights]
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype("float32") for w in ours.weights]
    weights = [
        np.abs(w) + 0.5 if "variance" in v.name else w for w, v in zip(weights, ours.weights, strict=True)
    ]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    x = rng.normal(size=(3, 8, 8, c_in)).astype("float32")
    for training in (False, True):
        a = keras.ops.convert_to_numpy(ours(x, training=training))
        b = keras.ops.convert_to_numpy(theirs(x, training=training))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert a.shape == (3, 8 // stride, 8 // stride, filters)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_classifiers_output_float32_under_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        half = policy.removeprefix("mixed_")
        for model in (
            models.resnet_cifar(8, input_shape=(16, 16, 3)),
            models.resnet(18, input_shape=(64, 64, 3)),
        ):
            assert model.layers[1].compute_dtype == half  # the body computes in half precision
            assert model.layers[-1].compute_dtype == "float32"  # the logits do not
            out = model(np.zeros((1, *model.input.shape[1:]), "float32"))
            assert keras.backend.standardize_dtype(out.dtype) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
