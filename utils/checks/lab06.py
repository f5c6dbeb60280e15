"""Checks for Lab 06 (attention): attention with a score bias, multi-head attention built from it, and
two things the lesson does not show, a prefix-LM mask and ALiBi's distance bias.

* ``q1`` ``attention(q, k, v, mask=None, bias=None)`` over any leading axes. Mistakes: no √d_k, ÷ d_k,
  softmax over the queries, hidden scores set to 0, mask after the softmax, the wrong way round or
  ignored, the bias scaled with the scores, subtracted or ignored.
* ``q2`` ``multi_head_attention(query, context, w_q, w_k, w_v, w_o, num_heads, mask=None)``, equal to
  ``keras.layers.MultiHeadAttention`` without biases. Mistakes: heads split along the wrong axis (two
  ways), not put back in order, no output projection, one head, scaling by √d_model, keys and values
  from the query, mask ignored.
* ``q3`` ``prefix_lm_mask(token_ids, prefix_lengths)``. Mistakes: causal only, bidirectional
  everywhere, prefix one too long or short, along the queries, one length for all, padding ignored,
  padded queries hidden, combined with *or*.
* ``q4`` ``alibi_bias(length, num_heads)``. Mistakes: sign flipped, slopes from 2⁰, the 8 forgotten,
  slopes reversed, no absolute value, the axes in another order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from utils.checks import (
    Exercise,
    Mismatch,
    Mistake,
    answer_tolerance,
    as_array,
    call,
    judge,
    softmax,
    variants,
)

__all__ = ["q1", "q2", "q3", "q4", "reference_attention", "reference_mha", "show_attention"]

PAD_IDS = np.array([[7, 3, 9, 4, 0, 0], [4, 1, 6, 2, 8, 5], [5, 2, 0, 0, 0, 0]])  # 4, 6 and 2 real tokens
PREFIXES = np.array([2, 3, 1])
EXACT = {"rtol": 0.0, "atol": 0.5}  # booleans: equal or not


def _weights(q, k, v, mask, bias, *, scale="√d_k", fill=-np.inf, bias_at="after", mask_at="before", axis=-1):
    """Attention weights: right with the defaults; each keyword names a way to get them wrong."""
    q, k = np.asarray(q, np.float64), np.asarray(k, np.float64)
    s = q @ np.swapaxes(k, -1, -2)
    b = 0.0 if bias is None or bias_at == "ignored" else np.asarray(bias, np.float64)
    s = s + b if bias_at == "before" else s
    s = s / {"√d_k": np.sqrt(q.shape[-1]), "d_k": q.shape[-1], "none": 1.0}[scale]
    s = s + b if bias_at == "after" else s - b if bias_at == "minus" else s
    m = None if mask is None else np.broadcast_to(np.asarray(mask, bool), s.shape)
    if m is not None and mask_at in ("before", "zero"):
        s = np.where(m, s, 0.0 if mask_at == "zero" else fill)
    if m is not None and mask_at == "inverted":
        s = np.where(m, -np.inf, s)
        s = np.where(np.isfinite(s).any(-1, keepdims=True), s, 0.0)  # a row with nothing left: uniform
    w = softmax(s, axis)
    return w * m if m is not None and mask_at == "after" else w


def reference_attention(q, k, v, mask=None, bias=None) -> tuple[np.ndarray, np.ndarray]:
    """(output, weights) of softmax(q kᵀ / √d_k + bias) v in float64; mask True = the key may be seen."""
    w = _weights(q, k, v, mask, bias)
    return w @ np.asarray(v, np.float64), w


# ------------------------------------------------------------------------------------------------
# q1: attention over any leading axes, with a mask and an additive bias
# ------------------------------------------------------------------------------------------------

M = variants(_weights)
# fmt: off
Q1_MISTAKES = [
    M("no √d_k", "The scores grow with the size of the vectors: what keeps them near unit scale?", scale="none"),
    M("divided by d_k", "A sum of d_k unit-variance products has variance d_k: divide by its standard deviation, not by d_k.", scale="d_k"),
    M("softmax over the queries", "Each query's weights over the keys must sum to 1: which axis holds the keys?", fill=-1e9, axis=-2),
    M("softmax over the queries", "Each query's weights over the keys must sum to 1: which axis holds the keys?", axis=-2),
    M("hidden scores set to 0", "e⁰ = 1: a score of 0 still gets weight. Which score gives a weight of exactly 0?", mask_at="zero"),
    M("mask applied after the softmax", "Zeroed weights leave rows that no longer sum to 1: mask the scores, before the softmax.", mask_at="after"),
    M("mask the wrong way round", "True means 'may look at': keep the score where the mask is True.", mask_at="inverted"),
    M("mask ignored", "The hidden keys still get weight: use `mask` on the scores, before the softmax.", mask_at="ignored"),
    M("bias scaled with the scores", "The bias is added to the scores *after* the √d_k scaling; yours was divided by √d_k too.", bias_at="before"),
    M("bias subtracted", "The bias is added to the scaled scores as it is: check its sign.", bias_at="minus"),
    M("bias ignored", "Your weights do not change with `bias`: add it to the scaled scores, before masking.", bias_at="ignored"),
]
# fmt: on


def _pair(got: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(got, tuple | list) or len(got) != 2:
        hint = "Return the output and the weights, in that order."
        raise Mismatch(
            f"what {what} returns", expected="a pair (output, weights)", got=type(got).__name__, hint=hint
        )
    return got[0], got[1]


def _check_attention(fn: Any) -> None:
    rng = np.random.default_rng(6)
    q, k = (rng.normal(size=(2, 3, n, 8)).astype("float32") * 1.5 for n in (4, 6))
    v = rng.normal(size=(2, 3, 6, 5)).astype("float32")
    padding = np.array([1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0], bool).reshape(2, 1, 1, 6)
    distance = np.abs(np.arange(4)[:, None] - np.arange(6)[None, :])
    bias = (-0.7 * distance * np.arange(1, 4)[:, None, None]).astype("float32")
    cases = [("no mask, no bias", None, None), ("a (batch, 1, 1, keys) padding mask", padding, None)]
    cases.append(("a (queries, keys) mask and a (heads, queries, keys) bias", distance <= 1, bias))
    for name, mask, b in cases:
        what = f"attention(q, k, v, mask, bias) with {name}; q {q.shape}, k {k.shape}, v {v.shape}"
        out, weights = _pair(call(fn, q, k, v, mask, b), "attention")
        tol = answer_tolerance(out, weights, atol=1e-4)
        hint = "Keep every leading axis: swap only the last two axes of k."
        weights = as_array(weights, f"the weights of {what}", shape=(2, 3, 4, 6), hint=hint)
        out = as_array(out, f"the output of {what}", shape=(2, 3, 4, 5), hint=hint)
        ref_out, ref_w = reference_attention(q, k, v, mask, b)
        kw = dict(inputs=(q, k, v, mask, b), tol=tol, describe="softmax(q kᵀ/√d_k + bias) over the keys")
        judge(weights, ref_w, Q1_MISTAKES, what=f"the weights of {what}", **kw)
        hint = "The weights are right; the output is the values averaged with those weights."
        judge(out, ref_out, what=f"the output of {what}", tol=tol, describe="weights @ v", hint=hint)


q1 = Exercise(
    "Q1 · attention with a mask and a bias",
    _check_attention,
    hint=(
        "Scores, scaling, bias, mask, softmax, weighted values: in that order. Which axes hold the queries "
        "and the keys when q has shape (batch, heads, T_q, d_k)?",
        "Transpose only the last two axes of k (not .T, which reverses all of them). Add the bias to the "
        "*scaled* scores; then a large negative number where the mask is False; softmax over the last axis.",
    ),
)

# ------------------------------------------------------------------------------------------------
# q2: multi-head attention built from q1
# ------------------------------------------------------------------------------------------------


def _split(x: np.ndarray, h: int, how: str) -> np.ndarray:
    b, t, d = x.shape
    if how == "reshape only":  # straight to (batch, heads, T, d_head): positions mixed up
        return x.reshape(b, h, t, d // h)
    if how == "interleaved":  # head i takes every h-th column
        return x.reshape(b, t, d // h, h).transpose(0, 3, 1, 2)
    return x.reshape(b, t, h, d // h).transpose(0, 2, 1, 3)


def reference_mha(query, context, w_q, w_k, w_v, w_o, num_heads, mask=None, *, split="right", merge="right",
                  project=True, scale=None, kv_from_query=False, use_mask=True) -> np.ndarray:  # fmt: skip
    """Multi-head attention in float64: right with the defaults; the keywords make the known mistakes."""
    query, context, w_q, w_k, w_v, w_o = (
        np.asarray(a, np.float64) for a in (query, context, w_q, w_k, w_v, w_o)
    )
    context = query if kv_from_query else context
    q, k, v = (_split(x @ w, num_heads, split) for x, w in ((query, w_q), (context, w_k), (context, w_v)))
    if scale:  # the scores divided by √scale instead of √d_head
        q = q * np.sqrt(q.shape[-1] / scale)
    heads = reference_attention(
        q, k, v, None if mask is None or not use_mask or kv_from_query else np.asarray(mask, bool)[:, None]
    )[0]
    b, h, t, dh = heads.shape
    concat = (heads if merge == "reshape only" else heads.transpose(0, 2, 1, 3)).reshape(b, t, h * dh)
    return concat @ w_o if project else concat


M = variants(reference_mha)
# fmt: off
Q2_MISTAKES = [
    M("heads split without moving the heads axis", "Reshaping (batch, T, d_model) straight to (batch, heads, T, d_head) mixes positions: split the width first, then move the heads axis.", split="reshape only", merge="reshape only"),
    M("heads split along the wrong axis", "Each head owns one contiguous block of d_model/h columns (Keras's layout); yours takes every h-th column.", split="interleaved"),
    M("heads put back without moving the axis back", "The heads are split right, but before the reshape that concatenates them the heads axis must sit next to d_head again.", merge="reshape only"),
    M("no output projection", "The concatenated heads are not mixed yet: what is w_o for?", project=False),
    M("scaled by √d_model", "Each head attends with vectors of size d_model/h: scale by the head's width, not the model's.", scale=8),
    M("keys and values from the query", "In cross-attention the keys and values come from `context`, the queries from `query`.", kv_from_query=True),
    M("mask ignored", "Pass the mask on, with an axis of size 1 for the heads, so every head uses it.", use_mask=False),
]
# fmt: on
Q2_MISTAKES.append(
    Mistake(
        "one head",
        "`num_heads` changes nothing: split into heads before attending.",
        lambda *a: reference_mha(*a[:6], 1, *a[7:]),
    )
)


def _check_mha(fn: Any) -> None:
    rng = np.random.default_rng(3)
    query, context = (
        rng.normal(size=(2, 3, 8)).astype("float32"),
        rng.normal(size=(2, 5, 8)).astype("float32"),
    )
    ws = [(rng.normal(size=(8, 8)) * 0.45).astype("float32") for _ in range(4)]
    padding = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)[:, None, :]
    for heads, mask in ((2, None), (2, padding), (4, np.tril(np.ones((2, 3, 5), bool), k=2))):
        what = (
            f"multi_head_attention(query (2, 3, 8), context (2, 5, 8), w (8, 8) × 4, num_heads={heads}, mask)"
        )
        got = call(fn, query.copy(), context.copy(), *ws, heads, mask)
        tol = answer_tolerance(got, atol=1e-4)
        got = as_array(got, what, shape=(2, 3, 8), hint="One output vector of width d_model per query.")
        inputs = (query, context, *ws, heads, mask)
        judge(got, reference_mha(*inputs), Q2_MISTAKES, what=what, inputs=inputs, tol=tol)


q2 = Exercise(
    "Q2 · multi-head attention from single-head attention",
    _check_mha,
    hint=(
        "Project, split the width into heads, attend (your Q1 already handles a heads axis), put the heads "
        "back side by side, project again. Write down the shape after each step.",
        "Splitting: reshape the last axis into (heads, d_head), then move the heads axis in front of T. "
        "Merging is the exact inverse. The mask needs a new axis of size 1 where the heads are.",
    ),
)

# ------------------------------------------------------------------------------------------------
# q3: the prefix-LM mask
# ------------------------------------------------------------------------------------------------


def _prefix(ids, p, *, along="keys", shift=0, pad=True, pad_queries=False, combine="and", causal=True):
    ids, p = np.asarray(ids), np.asarray(p)[:, None, None]
    i, j = np.arange(ids.shape[1])[:, None], np.arange(ids.shape[1])[None, :]
    seen = ((j if along == "keys" else i) < p + shift) | (j <= i) if causal else np.ones_like(i == j)
    real = (ids != 0)[:, None, :] if pad else True
    allowed = (seen & real) if combine == "and" else (seen | real)
    allowed = allowed & (ids != 0)[:, :, None] if pad_queries else allowed
    return np.broadcast_to(allowed, (len(ids), ids.shape[1], ids.shape[1]))


M = variants(_prefix)
# fmt: off
Q3_MISTAKES = [
    M("bidirectional everywhere", "After the prefix the mask is causal: no query may see a key after itself.", causal=False),
    M("prefix one too long", "A prefix of length p holds the positions 0 … p − 1.", shift=1),
    M("prefix one too short", "A prefix of length p holds the positions 0 … p − 1.", shift=-1),
    M("prefix along the queries", "The prefix says which *keys* every query may see; yours lets the prefix's queries see the whole text, the part to predict.", along="queries"),
    M("padding ignored", "Queries can still see [PAD] keys: combine with the padding of the keys.", pad=False),
    M("padded queries hidden too", "Hide the padded *keys* only; the rows of [PAD] queries are ignored later anyway.", pad_queries=True),
    M("combined with or", "A key is visible only if the padding rule and the prefix/causal rule both allow it.", combine="or"),
    Mistake("causal only", "The prefix is read in both directions: its keys are visible to every query.", lambda ids, p: _prefix(ids, 0 * p)),
    Mistake("one prefix length for the whole batch", "Each example has its own prefix length.", lambda ids, p: _prefix(ids, np.full_like(p, p[0]))),
]
# fmt: on


def _check_prefix(fn: Any) -> None:
    for ids, p in ((PAD_IDS, PREFIXES), (PAD_IDS[1:2], np.array([4])), (PAD_IDS, np.array([0, 6, 2]))):
        what = f"prefix_lm_mask(token_ids {ids.shape}, prefix_lengths={p.tolist()})"
        shape, hint = (
            (len(ids), ids.shape[1], ids.shape[1]),
            "One (queries, keys) mask per example: (batch, T, T).",
        )
        got = as_array(call(fn, ids.copy(), p.copy()), what, dtype=bool, shape=shape, hint=hint)
        describe = f"{_prefix(ids, p)[0].astype(int).tolist()} for the first example"
        judge(got, _prefix(ids, p), Q3_MISTAKES, what=what, inputs=(ids, p), tol=EXACT, describe=describe)


q3 = Exercise(
    "Q3 · the prefix-LM mask",
    _check_prefix,
    hint=(
        "Two rules let query i see key j: j is in the prefix, or j is not after i. A third must hold as "
        "well: key j is a real token.",
        "Build each rule by broadcasting: a column of query positions against a row of key positions, and "
        "the prefix lengths with two new axes. Join the first two rules with |, then the padding with &.",
    ),
)

# ------------------------------------------------------------------------------------------------
# q4: ALiBi's distance bias
# ------------------------------------------------------------------------------------------------


def _alibi(length, heads, *, first=1, eight=8.0, sign=-1.0, distance="abs", reverse=False):
    slopes = 2.0 ** (-eight * (np.arange(heads) + first) / heads)
    i, j = np.arange(length)[:, None], np.arange(length)[None, :]
    d = {"abs": np.abs(i - j), "i-j": i - j, "j-i": j - i}[distance]
    return sign * (slopes[::-1] if reverse else slopes)[:, None, None] * d


M = variants(_alibi)
# fmt: off
Q4_MISTAKES = [
    M("sign flipped", "Far keys are penalised: the bias lowers their scores.", sign=1.0),
    M("slopes start at 2⁰", "The first head's slope is 2^(−8/H), not 1: number the heads from 1.", first=0),
    M("the 8 forgotten", "The slopes fall from 2^(−8/H) to 2^(−8): check the exponent.", eight=1.0),
    M("slopes reversed", "The first head has the steepest slope.", reverse=True),
    M("no absolute value", "A distance is the same both ways: keys before and after i are penalised alike.", distance="i-j"),
    M("no absolute value", "A distance is the same both ways: keys before and after i are penalised alike.", distance="j-i"),
]
# fmt: on
ALIBI_AXES = Mistake(
    "axes in another order",
    "Heads first, then queries, then keys, (heads, T, T): it then broadcasts over a batch.",
)


def _check_alibi(fn: Any) -> None:
    for n, h in ((6, 4), (5, 8), (1, 2)):
        got = call(fn, n, h)
        tol = answer_tolerance(got)
        got = as_array(got, f"alibi_bias({n}, {h})", shape=(h, n, n), hint=ALIBI_AXES.hint)
        judge(got, _alibi(n, h), Q4_MISTAKES, what=f"alibi_bias({n}, {h})", inputs=(n, h), tol=tol)


q4 = Exercise(
    "Q4 · ALiBi's distance bias",
    _check_alibi,
    hint=(
        "Two ingredients: one slope per head, and the distance between each query and each key. The bias "
        "is minus their product.",
        "The slopes are a geometric sequence, 2 to the power −8·(head number)/(number of heads), with head "
        "numbers 1 to H; the distances come from a column of positions minus a row of positions.",
    ),
)


def show_attention(attention: Any, prefix_lm_mask: Any, alibi_bias: Any, example: int = 0) -> Any:
    """Draw the learner's attention with their prefix-LM mask and ALiBi's first head on a tiny batch.

    Returns the heatmap once Q1, Q3 and Q4 pass, else the feedback of the first one that does not.
    """
    for exercise, answer in ((q1, attention), (q3, prefix_lm_mask), (q4, alibi_bias)):
        if not (feedback := exercise.evaluate(answer)).passed:
            return feedback
    from utils.widgets import attention_heatmap

    x = np.random.default_rng(11).normal(size=(3, 1, 6, 8)).astype("float32")  # one head; q = k = v = x
    mask = np.asarray(prefix_lm_mask(PAD_IDS, PREFIXES))[:, None]
    weights = np.asarray(attention(x, x, x, mask, np.asarray(alibi_bias(6, 4))[:1])[1], dtype="float32")
    words = np.where(PAD_IDS[example] > 0, ["the", "cat", "sat", "on", "a", "mat"], "[PAD]").tolist()
    title = f"Your attention, example {example}: a prefix of {PREFIXES[example]}, ALiBi's head 1"
    return attention_heatmap(weights[example, 0], words, title=title)
