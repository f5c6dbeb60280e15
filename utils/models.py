"""Reference copies of the blocks the lessons teach, for later lessons to reuse.

Lesson 05 writes the residual block out and checks it against :func:`residual_block` here
(``tests/test_models.py`` does the same). The ResNet builders reproduce He et al., *Deep Residual
Learning for Image Recognition* (2015):

* :func:`resnet_cifar`: the CIFAR-10 family, ``6n + 2`` layers (ResNet-20/32/44/56/110), three
  stages of 16, 32 and 64 filters at 32×32, 16×16 and 8×8. The paper uses *option A* shortcuts
  (identity, with the extra channels zero-padded and the stride taken by subsampling), which have
  no parameters; ``shortcut="B"`` uses 1×1 projections instead. :func:`plain_cifar` is the same
  network without shortcuts, for the degradation experiment.
* :func:`resnet`: the ImageNet family, ResNet-18/34 (basic blocks) and ResNet-50/101/152
  (bottleneck blocks), with projection shortcuts where the shape changes (option B). By default
  it matches torchvision's parameter counts (convolutions without biases, stride in the 3×3
  convolution of a bottleneck: "ResNet v1.5"); ``keras_applications=True`` matches
  ``keras.applications.ResNet50`` layer by layer (biases in every convolution, stride in the first
  1×1 convolution as in the paper's original model, batch-norm epsilon 1.001e-5).

Under a mixed-precision policy (``mixed_float16`` on a GPU, ``mixed_bfloat16`` on a TPU) every layer
computes in half precision except the final dense layer of the classifiers, which is ``dtype="float32"``
so that the loss gets float32 logits (the rule of Keras's mixed-precision guide); batch normalisation and
layer normalisation compute their statistics in float32 by themselves.

:func:`forward_flops` counts a model's multiply-adds analytically. Keras is imported when this
module is, so ``import utils`` stays free of TensorFlow: import ``utils.models`` only after
``utils.env.setup()`` (as a notebook's setup cell does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

__all__ = [
    "CIFAR_DEPTHS",
    "IMAGENET_LAYOUTS",
    "ZeroPadShortcut",
    "basic_block",
    "bottleneck_block",
    "forward_flops",
    "plain_block",
    "plain_cifar",
    "residual_block",
    "resnet",
    "resnet_cifar",
    "trainable_params",
]

# depth -> n, the number of basic blocks per stage (depth = 6n + 2)
CIFAR_DEPTHS: dict[int, int] = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}

# depth -> (block kind, blocks per stage), Table 1 of the paper
IMAGENET_LAYOUTS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def _name(prefix: str | None, part: str) -> str | None:
    return None if prefix is None else f"{prefix}_{part}"


def _conv(
    filters: int,
    kernel: int,
    stride: int,
    name: str | None,
    *,
    use_bias: bool = False,
    weight_decay: float = 0.0,
) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="same",
        use_bias=use_bias,
        kernel_initializer="he_normal",
        kernel_regularizer=keras.regularizers.L2(weight_decay) if weight_decay else None,
        name=name,
    )


def _bn(name: str | None, momentum: float, epsilon: float) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, name=name)


@keras.saving.register_keras_serializable(package="dl_course")
class ZeroPadShortcut(keras.layers.Layer):
    """The paper's option-A shortcut: subsample by ``stride``, zero-pad the channels to ``filters``.

    It has no parameters. The input's channels come first, the new ones are zeros.
    """

    def __init__(self, filters: int, stride: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        self.filters, self.stride = int(filters), int(stride)

    def call(self, x: Any) -> Any:
        if self.stride > 1:
            x = x[:, :: self.stride, :: self.stride, :]
        extra = self.filters - x.shape[-1]
        if extra > 0:
            x = keras.ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])
        return x

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        n, h, w, _ = input_shape
        s = self.stride
        return (n, None if h is None else -(-h // s), None if w is None else -(-w // s), self.filters)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters, "stride": self.stride}


def residual_block(
    x: Any,
    filters: int,
    stride: int = 1,
    *,
    shortcut: str = "B",
    momentum: float = 0.9,
    epsilon: float = 1e-3,
    use_bias: bool = False,
    weight_decay: float = 0.0,
    name: str | None = None,
) -> Any:
    """Return the output of a basic residual block applied to the Keras tensor ``x``.

    ``relu(BN(conv3×3(relu(BN(conv3×3_stride(x))))) + shortcut(x))``. The shortcut is the identity
    when the shape is unchanged (same channels, stride 1); otherwise ``shortcut="B"`` projects it
    with a 1×1 convolution of stride ``stride`` followed by batch normalisation, and
    ``shortcut="A"`` subsamples and zero-pads (:class:`ZeroPadShortcut`, no parameters). The
    main path's layers are created first, then the projection's (their weights are in that order).
    """
    if shortcut not in ("A", "B"):
        raise ValueError(f"shortcut must be 'A' (zero-padding) or 'B' (projection), not {shortcut!r}")
    y = _conv(filters, 3, stride, _name(name, "1_conv"), use_bias=use_bias, weight_decay=weight_decay)(x)
    y = _bn(_name(name, "1_bn"), momentum, epsilon)(y)
    y = keras.layers.Activation("relu", name=_name(name, "1_relu"))(y)
    y = _conv(filters, 3, 1, _name(name, "2_conv"), use_bias=use_bias, weight_decay=weight_decay)(y)
    y = _bn(_name(name, "2_bn"), momentum, epsilon)(y)
    if x.shape[-1] == filters and stride == 1:
        short = x
    elif shortcut == "A":
        short = ZeroPadShortcut(filters, stride, name=_name(name, "pad"))(x)
    else:
        short = _conv(
            filters, 1, stride, _name(name, "0_conv"), use_bias=use_bias, weight_decay=weight_decay
        )(x)
        short = _bn(_name(name, "0_bn"), momentum, epsilon)(short)
    y = keras.layers.Add(name=_name(name, "add"))([y, short])
    return keras.layers.Activation("relu", name=_name(name, "out"))(y)


basic_block = residual_block


def plain_block(
    x: Any,
    filters: int,
    stride: int = 1,
    *,
    momentum: float = 0.9,
    epsilon: float = 1e-3,
    weight_decay: float = 0.0,
    name: str | None = None,
) -> Any:
    """Return :func:`residual_block` without its shortcut: two conv-BN-ReLU layers."""
    y = _conv(filters, 3, stride, _name(name, "1_conv"), weight_decay=weight_decay)(x)
    y = _bn(_name(name, "1_bn"), momentum, epsilon)(y)
    y = keras.layers.Activation("relu", name=_name(name, "1_relu"))(y)
    y = _conv(filters, 3, 1, _name(name, "2_conv"), weight_decay=weight_decay)(y)
    y = _bn(_name(name, "2_bn"), momentum, epsilon)(y)
    return keras.layers.Activation("relu", name=_name(name, "out"))(y)


def bottleneck_block(
    x: Any,
    filters: int,
    stride: int = 1,
    *,
    expansion: int = 4,
    stride_in_1x1: bool = False,
    momentum: float = 0.9,
    epsilon: float = 1e-3,
    use_bias: bool = False,
    name: str | None = None,
) -> Any:
    """Return the output of a bottleneck block: 1×1 (``filters``), 3×3, 1×1 (``expansion·filters``).

    The shortcut is the identity when the shape is unchanged, else a 1×1 projection with batch
    normalisation. ``stride_in_1x1``: put the stride in the first 1×1 convolution (the paper's
    original model, keras.applications) instead of the 3×3 one (torchvision); the parameter count
    is the same either way.
    """
    out = expansion * filters
    if x.shape[-1] == out and stride == 1:
        short = x
    else:
        short = _conv(out, 1, stride, _name(name, "0_conv"), use_bias=use_bias)(x)
        short = _bn(_name(name, "0_bn"), momentum, epsilon)(short)
    s1, s2 = (stride, 1) if stride_in_1x1 else (1, stride)
    y = _conv(filters, 1, s1, _name(name, "1_conv"), use_bias=use_bias)(x)
    y = _bn(_name(name, "1_bn"), momentum, epsilon)(y)
    y = keras.layers.Activation("relu", name=_name(name, "1_relu"))(y)
    y = _conv(filters, 3, s2, _name(name, "2_conv"), use_bias=use_bias)(y)
    y = _bn(_name(name, "2_bn"), momentum, epsilon)(y)
    y = keras.layers.Activation("relu", name=_name(name, "2_relu"))(y)
    y = _conv(out, 1, 1, _name(name, "3_conv"), use_bias=use_bias)(y)
    y = _bn(_name(name, "3_bn"), momentum, epsilon)(y)
    y = keras.layers.Add(name=_name(name, "add"))([short, y])
    return keras.layers.Activation("relu", name=_name(name, "out"))(y)


def _cifar_net(
    depth: int,
    *,
    residual: bool,
    num_classes: int,
    input_shape: tuple[int, int, int],
    width: int,
    shortcut: str,
    momentum: float,
    weight_decay: float,
    name: str,
) -> keras.Model:
    if (depth - 2) % 6 or depth < 8:
        raise ValueError(
            f"a CIFAR ResNet has 6n + 2 layers (8, 14, 20, 32, ...); {depth} is not of that form"
        )
    n = (depth - 2) // 6
    inputs = keras.Input(input_shape, name="image")
    x = _conv(width, 3, 1, "stem_conv", weight_decay=weight_decay)(inputs)
    x = _bn("stem_bn", momentum, 1e-3)(x)
    x = keras.layers.Activation("relu", name="stem_relu")(x)
    for stage in range(3):
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            block_name = f"stage{stage + 1}_block{i + 1}"
            filters = width * 2**stage
            if residual:
                x = residual_block(
                    x,
                    filters,
                    stride,
                    shortcut=shortcut,
                    momentum=momentum,
                    weight_decay=weight_decay,
                    name=block_name,
                )
            else:
                x = plain_block(
                    x, filters, stride, momentum=momentum, weight_decay=weight_decay, name=block_name
                )
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(
        num_classes,
        kernel_regularizer=keras.regularizers.L2(weight_decay) if weight_decay else None,
        dtype="float32",  # float32 logits for the loss, even under mixed precision
        name="logits",
    )(x)
    return keras.Model(inputs, outputs, name=name)


def resnet_cifar(
    depth: int = 20,
    *,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] = (32, 32, 3),
    width: int = 16,
    shortcut: str = "A",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> keras.Model:
    """Return the paper's CIFAR ResNet with ``depth = 6n + 2`` layers, outputting logits.

    A 3×3 convolution (``width`` filters), then three stages of n basic blocks with ``width``,
    ``2·width`` and ``4·width`` filters (the first block of stages 2 and 3 has stride 2), global
    average pooling and a dense layer. ``shortcut="A"`` (the paper's choice for CIFAR):
    zero-padding shortcuts, no parameters; ``"B"``: 1×1 projections, 2,752 parameters more for
    every depth. ``momentum`` is the batch-norm momentum: 0.9, not Keras's 0.99 (lesson 05 shows
    why). Depths other than the paper's five (8, 14, 26, ...) are allowed.
    """
    return _cifar_net(
        depth,
        residual=True,
        num_classes=num_classes,
        input_shape=input_shape,
        width=width,
        shortcut=shortcut,
        momentum=momentum,
        weight_decay=weight_decay,
        name=f"resnet{depth}",
    )


def plain_cifar(
    depth: int = 20,
    *,
    num_classes: int = 10,
    input_shape: tuple[int, int, int] = (32, 32, 3),
    width: int = 16,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> keras.Model:
    """Return :func:`resnet_cifar`'s network without shortcuts (the paper's "plain" baseline)."""
    return _cifar_net(
        depth,
        residual=False,
        num_classes=num_classes,
        input_shape=input_shape,
        width=width,
        shortcut="A",
        momentum=momentum,
        weight_decay=weight_decay,
        name=f"plain{depth}",
    )


def resnet(
    depth: int = 50,
    *,
    num_classes: int = 1000,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    keras_applications: bool = False,
    momentum: float = 0.9,
) -> keras.Model:
    """Return the paper's ImageNet ResNet-18/34/50/101/152 (logits; softmax with ``keras_applications``).

    A 7×7/2 convolution with 64 filters, 3×3/2 max pooling, four stages (64, 128, 256, 512
    filters; basic blocks for 18/34, bottlenecks ×4 for 50/101/152; stages 2-4 start with stride
    2), global average pooling and a dense layer. The defaults match torchvision's counts
    (ResNet-50: 25,557,032 trainable parameters). ``keras_applications=True`` matches
    ``keras.applications.ResNet50(weights=None)``: biases in every convolution, stride in the
    first 1×1 convolution of a bottleneck, epsilon 1.001e-5 and a softmax output
    (25,636,712 parameters, counting batch norm's moving statistics as Keras does).
    """
    if depth not in IMAGENET_LAYOUTS:
        raise ValueError(f"the paper's ImageNet ResNets have depth {sorted(IMAGENET_LAYOUTS)}, not {depth}")
    kind, blocks = IMAGENET_LAYOUTS[depth]
    bias = keras_applications
    eps = 1.001e-5 if keras_applications else 1e-5
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(inputs)  # symmetric padding, as in the paper's code
    x = keras.layers.Conv2D(
        64, 7, strides=2, use_bias=bias, kernel_initializer="he_normal", name="conv1_conv"
    )(x)
    x = _bn("conv1_bn", momentum, eps)(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, count in enumerate(blocks):
        filters = 64 * 2**stage
        for i in range(count):
            stride = 2 if stage > 0 and i == 0 else 1
            block_name = f"conv{stage + 2}_block{i + 1}"
            if kind == "basic":
                x = residual_block(
                    x, filters, stride, momentum=momentum, epsilon=eps, use_bias=bias, name=block_name
                )
            else:
                x = bottleneck_block(
                    x,
                    filters,
                    stride,
                    stride_in_1x1=keras_applications,
                    momentum=momentum,
                    epsilon=eps,
                    use_bias=bias,
                    name=block_name,
                )
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(
        num_classes,
        activation="softmax" if keras_applications else None,
        dtype="float32",  # float32 logits (or probabilities) for the loss, even under mixed precision
        name="predictions",
    )(x)
    return keras.Model(inputs, outputs, name=f"resnet{depth}")


def trainable_params(model: keras.Model) -> int:
    """Return the number of trainable parameters (what papers and torchvision count).

    ``model.count_params()`` also counts batch norm's moving mean and variance, two numbers per
    channel that are updated during training but not learned by gradient descent.
    """
    return int(sum(int(keras.ops.size(w)) for w in model.trainable_weights))


def forward_flops(model: keras.Model) -> int:
    """Return the floating-point operations of one forward pass for one example, counted analytically.

    Convolutions and dense layers only, as 2 × multiply-adds (one multiply, one add each):
    ``2 · H_out · W_out · k_h · k_w · C_in · C_out`` for a convolution and ``2 · n_in · n_out``
    for a dense layer. Batch norm, activations, additions and pooling (one operation per
    element) are left out; they are under 2 % of a ResNet's count.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw, c_in, _ = layer.kernel.shape
            total += 2 * h * w * kh * kw * c_in * c_out
        elif isinstance(layer, keras.layers.Dense):
            n_in, n_out = layer.kernel.shape
            total += 2 * n_in * n_out
    return int(total)


# ---------------------------------------------------------------------------------------------
# The sequence track (lessons 06-08): positional encoding, token embedding, the encoder block.
# ---------------------------------------------------------------------------------------------

__all__ += [
    "PositionalEmbedding",
    "TransformerBlock",
    "positional_encoding",
    "transformer_block_params",
]


def positional_encoding(length: int, d_model: int) -> Any:
    """Return the sinusoidal positional encoding of "Attention Is All You Need", float32 (length, d_model).

    ``PE[pos, 2i] = sin(pos / 10000^(2i/d_model))`` and ``PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model))``:
    sine and cosine interleaved, the pair (2i, 2i+1) sharing one frequency. An odd ``d_model``
    leaves the last column a sine.
    """
    import numpy as np

    if length < 0 or d_model < 1:
        raise ValueError(f"need length >= 0 and d_model >= 1, got {length} and {d_model}")
    pos = np.arange(length, dtype=np.float64)[:, None]
    two_i = np.arange(0, d_model, 2, dtype=np.float64)[None, :]  # 0, 2, 4, ...
    angles = pos / np.power(10000.0, two_i / d_model)
    pe = np.zeros((length, d_model), dtype=np.float64)
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles[:, : d_model // 2])
    return pe.astype(np.float32)


@keras.saving.register_keras_serializable(package="dl_course")
class PositionalEmbedding(keras.layers.Layer):
    """Token embedding scaled by sqrt(d_model), plus the sinusoidal positional encoding.

    Input: integer token ids (batch, length) with ``length <= max_len``; output: float
    (batch, length, d_model). With ``mask_zero`` (the default) id 0 is padding and the layer
    passes a padding mask (True = a real token) on to the layers after it.
    """

    def __init__(self, vocab_size: int, max_len: int, d_model: int, mask_zero: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.vocab_size, self.max_len, self.d_model = int(vocab_size), int(max_len), int(d_model)
        self.mask_zero = bool(mask_zero)
        self.token_embedding = keras.layers.Embedding(
            self.vocab_size, self.d_model, mask_zero=self.mask_zero, name="token_embedding"
        )
        self.encoding = positional_encoding(self.max_len, self.d_model)

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.token_embedding.build(input_shape)
        self.built = True

    def call(self, token_ids: Any) -> Any:
        length = keras.ops.shape(token_ids)[-1]
        x = self.token_embedding(token_ids) * (self.d_model**0.5)
        pe = keras.ops.cast(keras.ops.convert_to_tensor(self.encoding), self.compute_dtype)
        return x + pe[None, :length, :]

    def compute_mask(self, token_ids: Any, mask: Any = None) -> Any:
        return self.token_embedding.compute_mask(token_ids, mask)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (*tuple(input_shape), self.d_model)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "max_len": self.max_len,
            "d_model": self.d_model,
            "mask_zero": self.mask_zero,
        }


@keras.saving.register_keras_serializable(package="dl_course")
class TransformerBlock(keras.layers.Layer):
    """One Transformer encoder block, post-layer-norm as in the paper.

    ``x = LN(x + Dropout(MHA(x, x, x)))`` then ``x = LN(x + Dropout(FFN(x)))`` with
    ``FFN = Dense(d_ff, relu) → Dense(d_model)``. The attention has ``num_heads`` heads of size
    ``d_model // num_heads``. Masks: the padding mask Keras passes in (True = a real token)
    hides padded *keys* from every query (padded positions still get an output, which a masked
    pooling layer ignores); ``causal=True`` also hides every later position. The padding mask is
    passed on. After an eager call, ``last_attention`` holds the attention weights
    (batch, heads, query, key).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        causal: bool = False,
        epsilon: float = 1e-6,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of num_heads ({num_heads})")
        self.d_model, self.num_heads, self.d_ff = int(d_model), int(num_heads), int(d_ff)
        self.dropout, self.causal, self.epsilon = float(dropout), bool(causal), float(epsilon)
        self.supports_masking = True
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, key_dim=self.d_model // self.num_heads, name="attention"
        )
        self.attention_dropout = keras.layers.Dropout(self.dropout, name="attention_dropout")
        self.norm1 = keras.layers.LayerNormalization(epsilon=self.epsilon, name="norm1")
        self.ffn_hidden = keras.layers.Dense(self.d_ff, activation="relu", name="ffn_hidden")
        self.ffn_out = keras.layers.Dense(self.d_model, name="ffn_out")
        self.ffn_dropout = keras.layers.Dropout(self.dropout, name="ffn_dropout")
        self.norm2 = keras.layers.LayerNormalization(epsilon=self.epsilon, name="norm2")
        self.last_attention = None

    def build(self, input_shape: Sequence[int | None]) -> None:
        shape = tuple(input_shape)
        self.attention.build(shape, shape, shape)
        self.norm1.build(shape)
        self.ffn_hidden.build(shape)
        self.ffn_out.build((*shape[:-1], self.d_ff))
        self.norm2.build(shape)
        self.built = True

    def call(self, x: Any, training: Any = None, mask: Any = None) -> Any:
        attention_mask = None
        if mask is not None:  # (batch, key) -> (batch, 1, key): every query sees the real keys
            attention_mask = keras.ops.expand_dims(keras.ops.cast(mask, "bool"), 1)
        x_in = keras.ops.add(x, 0.0)  # a fresh tensor, so Keras does not also mask the queries
        out, scores = self.attention(
            x_in,
            x_in,
            x_in,
            attention_mask=attention_mask,
            use_causal_mask=self.causal,
            return_attention_scores=True,
            training=training,
        )
        self.last_attention = scores
        x = self.norm1(x + self.attention_dropout(out, training=training))
        y = self.ffn_out(self.ffn_hidden(x))
        return self.norm2(x + self.ffn_dropout(y, training=training))

    def compute_mask(self, x: Any, mask: Any = None) -> Any:
        return mask

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "d_model": self.d_model,
            "num_heads": self.num_heads,
            "d_ff": self.d_ff,
            "dropout": self.dropout,
            "causal": self.causal,
            "epsilon": self.epsilon,
        }


def transformer_block_params(d_model: int, d_ff: int) -> int:
    """Return the trainable parameters of one :class:`TransformerBlock` (any number of heads).

    Attention: four d_model×d_model projections (query, key, value, output) with biases,
    ``4·d² + 4·d``; feed-forward: ``d·d_ff + d_ff + d_ff·d + d``; two layer norms: ``2·2·d``.
    Total ``4d² + 2·d·d_ff + 9d + d_ff``.
    """
    d = d_model
    return 4 * d * d + 4 * d + (d * d_ff + d_ff) + (d_ff * d + d) + 2 * 2 * d
