"""Lesson 07's own exercises. Tasks and the mistakes they name:

* ``e1`` ``bert_large``: BERT-large's parameters from its configuration: the pooler, the learned positions,
  the token types or the embedding layer norm left out, BERT-base's feed-forward width.
* ``e2`` ``mlm_head_params(vocab_size, d_model)``: BERT's MLM head on top of the encoder: the tied
  projection counted again, the output bias, the layer norm or the dense bias left out.
"""

import numpy as np

from utils import text
from utils.checks import Exercise, Mistake, as_array, as_int, call, judge

EXACT = {"rtol": 0.0, "atol": 0.5}


def _large(d_ff: int = 4096, **kw: object) -> int:
    config = dict(learned_positions=512, token_types=2, embedding_norm=True, pooler=True) | kw
    return text.encoder_params(30522, 1024, 24, d_ff, **config)


E1_MISTAKES = [
    Mistake("no pooler", "BERT's encoder ends in a pooler, a dense layer with tanh on the first token.", lambda: _large(pooler=False)),
    Mistake("2 × 1,024 missing", "One term of 2 × 1,024 is missing: the 2 token-type (sentence A/B) embeddings, or the layer norm after the embeddings.", lambda: _large(token_types=0)),
    Mistake("no learned positions", "BERT learns a vector for each of its 512 positions.", lambda: _large(learned_positions=0)),
    Mistake("BERT-base's feed-forward width", "The feed-forward width is 4 × the hidden size here too.", lambda: _large(d_ff=3072)),
]  # fmt: skip


def _check_large(value: object) -> None:
    got = as_int(value, "bert_large")
    judge(np.array(got), _large(), E1_MISTAKES, what="BERT-large's parameter count", tol=EXACT)


e1 = Exercise(
    "Exercise 1 · BERT-large, counted",
    _check_large,
    hint=(
        "Section 7 counted BERT-base with one function call; BERT-large differs only in its sizes.",
        "BERT-large: the same vocabulary, 512 positions and 2 token types, hidden size 1,024, 24 layers (16 "
        "heads, which do not change the count), feed-forward width 4,096, with the embedding norm and the pooler.",
    ),
)

SIZES = [(2000, 64), (30522, 768), (50, 8)]


def _head(v, d, *, tied=True, out_bias=True, norm=True, dense_bias=True):
    return d * d + d * dense_bias + 2 * d * norm + v * out_bias + (0 if tied else v * d)


def _each(**kw: object) -> object:
    return lambda: np.array([_head(v, d, **kw) for v, d in SIZES], dtype=float)


E2_MISTAKES = [
    Mistake("tied projection counted", "The projection to the vocabulary reuses the embedding matrix: no new weights.", _each(tied=False)),
    Mistake("no output bias", "The tied projection still has its own bias, one per word.", _each(out_bias=False)),
    Mistake("no layer norm", "The transform ends in a layer normalisation, with a scale and a shift per feature.", _each(norm=False)),
    Mistake("no dense bias", "The dense layer of the transform has a bias.", _each(dense_bias=False)),
]  # fmt: skip


def _check_head(fn: object) -> None:
    got = as_array([call(fn, v, d) for v, d in SIZES], "the head's parameter counts")
    judge(got, _each()(), E2_MISTAKES, what=f"mlm_head_params(vocab_size, d_model) for {SIZES}", tol=EXACT)


e2 = Exercise(
    "Exercise 2 · the parameters of BERT's MLM head",
    _check_head,
    hint=(
        "List the head's layers: a dense layer d → d, GELU, a layer norm, then the tied projection to the "
        "vocabulary. Which of them bring weights of their own?",
        "The dense layer has d² weights and d biases, the layer norm 2d, GELU none; the projection reuses the "
        "embedding matrix and adds only one bias per word of the vocabulary.",
    ),
)
