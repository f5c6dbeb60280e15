"""Checks for Lab 06 (attention): scaled dot-product attention and its masks.

The four exercises:

* ``q1``: ``attention(q, k, v, mask=None)`` returns ``(output, weights)`` with
  ``weights = softmax(q kᵀ / √d_k)`` over the keys and ``output = weights v``; where the boolean
  ``mask`` is False the score is replaced by a large negative number (or −∞) before the softmax;
* ``q2``: ``padding_mask(token_ids)`` returns a boolean (batch, 1, T) mask, True for the real
  tokens (id ≠ 0): it hides padded *keys* from every query;
* ``q3``: ``causal_mask(length)`` returns a boolean (T, T) mask, True on and below the diagonal;
* ``q4``: ``decoder_mask(token_ids)`` returns both at once, (batch, T, T).

A wrong answer is compared with the mistakes learners make (no √d_k, dividing by d_k, masking with 0,
masking after the softmax, the softmax over the queries, the mask read the wrong way round, padded
queries masked instead of keys, the diagonal masked, one future position let through, ...), computed
here on the same inputs, and the feedback names the one it matches (the nearest of them).

An answer written with Keras layers computes at the active Keras policy's precision (float16 on a T4
GPU, bfloat16 on a TPU), and one may come back in that dtype: the checks then compare within what that
precision can promise (:func:`utils.env.tolerance`) instead of ``TOL``. The known mistakes differ from
the right weights by more than 0.2 on the probes, well beyond bfloat16's tolerance.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks import Exercise, Mismatch, call, expect

__all__ = [
    "attention_variants",
    "causal_variants",
    "padding_variants",
    "probe",
    "q1",
    "q2",
    "q3",
    "q4",
    "reference_attention",
    "show_attention",
]

TOL = 1e-4  # float32 answers; half-precision ones get utils.env.tolerance() (see _tolerance)
PAD_IDS = np.array([[7, 3, 9, 0, 0, 0], [4, 1, 6, 2, 8, 0], [5, 2, 0, 0, 0, 0]])  # 3, 5 and 2 real tokens


def _softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``; −∞ scores get weight 0 (a slice of −∞ only gives NaN, as it would in float)."""
    top = np.max(np.where(np.isneginf(scores), -1e300, scores), axis=axis, keepdims=True)
    e = np.exp(scores - top)
    with np.errstate(invalid="ignore", divide="ignore"):
        return e / e.sum(axis=axis, keepdims=True)


def reference_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (output, weights) of softmax(q kᵀ / √d_k) v in float64; mask True = the key may be seen."""
    return attention_variants(q, k, v, mask)["right"]


def attention_variants(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return ``{name: (output, weights)}`` for the right attention and each known mistake."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    raw = q @ np.swapaxes(k, -1, -2)
    d_k, d_v = q.shape[-1], v.shape[-1]

    def hide(scores: np.ndarray, allowed: np.ndarray | None, value: float = -np.inf) -> np.ndarray:
        return scores if allowed is None else np.where(allowed, scores, value)

    def result(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return weights @ v, weights

    m = None if mask is None else np.asarray(mask, dtype=bool)
    out = {
        "right": result(_softmax(hide(raw / np.sqrt(d_k), m))),
        "no_scale": result(_softmax(hide(raw, m))),
        "scale_by_dk": result(_softmax(hide(raw / d_k, m))),
        # (with -1e9 for the mask, as most learners write it: with −∞ a hidden key's column is NaN)
        "softmax_over_queries": result(_softmax(hide(raw / np.sqrt(d_k), m, -1e9), axis=-2)),
    }
    if d_v != d_k:
        out["scale_by_dv"] = result(_softmax(hide(raw / np.sqrt(d_v), m)))
    if m is not None and not m.all():
        scaled = raw / np.sqrt(d_k)
        out["mask_with_zero"] = result(_softmax(np.where(m, scaled, 0.0)))
        out["mask_after_softmax"] = result(_softmax(scaled) * m)
        flipped = np.where(m, -np.inf, scaled)
        rows_alive = np.isfinite(flipped).any(axis=-1, keepdims=True)
        flipped = np.where(rows_alive, flipped, 0.0)  # a row with nothing left: uniform, not NaN
        out["mask_inverted"] = result(_softmax(flipped))
        out["mask_ignored"] = result(_softmax(scaled))
    return out


def probe(
    batch: int = 2, t_q: int = 4, t_k: int = 6, d_k: int = 16, d_v: int = 5, seed: int = 6
) -> tuple[np.ndarray, ...]:
    """Return float32 (q, k, v) whose scores are large enough for every mistake to show."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(batch, t_q, d_k)) * 1.5
    k = rng.normal(size=(batch, t_k, d_k)) * 1.5
    v = rng.normal(size=(batch, t_k, d_v))
    return tuple(a.astype("float32") for a in (q, k, v))


# ---------------------------------------------------------------------------------------------
# q1: scaled dot-product attention
# ---------------------------------------------------------------------------------------------

ATTENTION_HINTS = {
    "no_scale": "You forgot to divide the scores by √d_k. Without it the dot products grow with the "
    "size of the vectors and the softmax saturates: `scores = q @ kᵀ / np.sqrt(d_k)` with "
    "`d_k = q.shape[-1]`.",
    "scale_by_dk": "You divided the scores by d_k instead of √d_k. The dot product of two vectors with "
    "unit-variance entries has variance d_k, so its standard deviation is √d_k: divide by "
    "`np.sqrt(d_k)`.",
    "scale_by_dv": "You scaled by the square root of the *values'* size. d_k is the size of the queries and "
    "keys, `q.shape[-1]`; the values can have another size.",
    "softmax_over_queries": "Your softmax runs over the wrong axis (the queries). Each query's weights over "
    "the keys must sum to 1: take the softmax over the last axis, `axis=-1`.",
    "mask_with_zero": "You set the hidden scores to 0. But e⁰ = 1, so a hidden key still gets weight. Set "
    "them to a large negative number (−1e9) or −∞ before the softmax: "
    "`np.where(mask, scores, -1e9)`.",
    "mask_after_softmax": "You applied the mask after the softmax, so the weights of each query no longer "
    "sum to 1. Mask the *scores* (a large negative number where the mask is False), then take the "
    "softmax.",
    "mask_inverted": "Your mask works the wrong way round: it hides the keys where the mask is True. In "
    "this lab True means 'may look at': keep the score where the mask is True, "
    "`np.where(mask, scores, -1e9)`.",
    "mask_ignored": "Your function ignores `mask`: the hidden keys still get weight. Before the softmax, "
    "replace the scores where the mask is False by a large negative number.",
}


def _as_array(value: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Mismatch(what, expected="an array", got=type(value).__name__) from None
    return arr


def _run_attention(fn: Callable, q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: Any) -> tuple:
    got = call(fn, q, k, v) if mask is None else call(fn, q, k, v, mask)
    if got is None or got is Ellipsis:
        raise Mismatch(
            "what your function returns",
            expected="a pair (output, weights)",
            got=repr(got),
            hint="End the function with `return output, weights`.",
        )
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise Mismatch(
            "what your function returns",
            expected="a pair (output, weights)",
            got=type(got).__name__ if not hasattr(got, "shape") else f"one array of shape {tuple(got.shape)}",
            hint="Return both: `return weights @ v, weights`.",
        )
    tol = _tolerance(got[0], got[1])
    out, weights = _as_array(got[0], "the output"), _as_array(got[1], "the weights")
    b, t_q, t_k, d_v = q.shape[0], q.shape[1], k.shape[1], v.shape[-1]
    if out.shape == (b, t_q, t_k) and weights.shape == (b, t_q, d_v):
        raise Mismatch(
            "the order of what your function returns",
            expected="(output, weights)",
            got="(weights, output)",
            hint="Return the output first: `return output, weights`.",
        )
    expect(
        weights.shape == (b, t_q, t_k),
        "the shape of the weights",
        expected=(b, t_q, t_k),
        got=weights.shape,
        hint="The weights are (batch, queries, keys): `q @ k` with k's last two axes swapped, "
        "`np.swapaxes(k, -1, -2)` (not `k.T`, which also moves the batch axis).",
    )
    expect(
        out.shape == (b, t_q, d_v),
        "the shape of the output",
        expected=(b, t_q, d_v),
        got=out.shape,
        hint="The output is the weights times the values: `weights @ v`, (batch, queries, d_v).",
    )
    return out, weights, tol


HALF = ("float16", "bfloat16")  # the compute dtypes of the mixed-precision policies


def _dtype_name(value: Any) -> str:
    dtype = getattr(value, "dtype", None)
    return str(getattr(dtype, "name", dtype))


def _tolerance(*answers: Any) -> dict[str, float]:
    """Return ``{"rtol", "atol"}`` for the learner's answers at the precision they were computed in.

    ``TOL`` for float32 work. If the active Keras policy computes in float16 or bfloat16 (the
    learner's Keras layers then do), or an answer comes back in one of them, what that precision
    can promise, the looser of the two when both occur.
    """
    from utils.env import compute_dtype, tolerance

    dtypes = {_dtype_name(a) for a in answers}
    if "keras" in sys.modules:  # Keras layers compute at the policy's (without Keras, none ran)
        dtypes.add(compute_dtype())
    tol = {"rtol": 1e-5, "atol": TOL}
    for dtype in HALF:
        if dtype in dtypes:
            tol = {k: max(v, tolerance(dtype)[k]) for k, v in tol.items()}
    return tol


def _distance(got: np.ndarray, ref: np.ndarray, tol: dict[str, float]) -> float:
    """Return the largest error of ``got`` in units of the tolerance: at most 1 means close."""
    if got.shape != ref.shape:
        return float("inf")
    if got.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        d = np.abs(got - ref) / (tol["atol"] + tol["rtol"] * np.abs(ref))
    return float("inf") if np.isnan(d).any() else float(np.max(d))


def _match(
    out: np.ndarray, weights: np.ndarray, variants: dict[str, tuple], tol: dict[str, float]
) -> str | None:
    """Return the variant nearest to (out, weights) if within ``tol``; else the mistake whose weights are."""
    both = {
        name: max(_distance(weights, ref_w, tol), _distance(out, ref_out, tol))
        for name, (ref_out, ref_w) in variants.items()
    }
    name = min(both, key=both.__getitem__)
    if both[name] <= 1:
        return name
    # the weights of a mistake, and a further slip in the output
    only = {n: _distance(weights, ref_w, tol) for n, (_, ref_w) in variants.items() if n != "right"}
    name = min(only, key=only.__getitem__)
    return name if only[name] <= 1 else None


def _check_attention(fn: Callable) -> None:
    q, k, v = probe()
    cases = [
        ("no mask", None),
        ("a padding mask (batch, 1, keys)", np.array([[[True] * 4 + [False] * 2], [[True] * 5 + [False]]])),
        ("a (queries, keys) mask", np.tril(np.ones((4, 6), dtype=bool), k=1)),
    ]
    for name, mask in cases:
        where = f"attention(q, k, v{'' if mask is None else ', mask'}) with {name} (q: {q.shape}, k: {k.shape}, v: {v.shape})"
        out, weights, tol = _run_attention(fn, q, k, v, mask)
        variants = attention_variants(q, k, v, mask)
        if not np.isfinite(weights).all():
            finite = np.isfinite(weights)
            if _distance(weights[finite], variants["softmax_over_queries"][1][finite], tol) <= 1:
                raise Mismatch(
                    f"the weights of {where}",
                    expected="finite numbers, each row summing to 1",
                    got="NaN in the columns of the hidden keys",
                    hint=ATTENTION_HINTS["softmax_over_queries"],
                )
            raise Mismatch(
                f"the weights of {where}",
                expected="finite numbers",
                got="NaN or infinity",
                hint="No row of this mask hides every key, so the softmax should stay finite. Take "
                "exp of the scores minus their row maximum (or use `keras.ops.softmax`), and mask "
                "with a large negative number or −∞ where the mask is False.",
            )
        found = _match(out, weights, variants, tol)
        if found == "right":
            continue
        if found is None and _distance(weights, variants["right"][1], tol) <= 1:
            raise Mismatch(
                f"the output of {where}",
                expected="weights @ v",
                got="different values (the weights are right)",
                hint="The weights are right; the output is the weighted average of the values, `weights @ v`.",
            )
        if found is not None:
            raise Mismatch(
                f"the weights of {where}",
                expected="softmax(q kᵀ / √d_k) over the keys" + ("" if mask is None else ", hidden keys 0"),
                got="the weights of a known mistake",
                hint=ATTENTION_HINTS[found],
            )
        rows = weights.sum(-1)
        raise Mismatch(
            f"the weights of {where}",
            expected="softmax(q kᵀ / √d_k) over the keys",
            got="different values"
            + ("" if np.allclose(rows, 1, atol=max(1e-3, tol["atol"])) else " (rows do not sum to 1)"),
            hint="scores = q @ swapaxes(k, -1, -2) / √d_k; where the mask is False, a large negative "
            "number; softmax over the last axis; output = weights @ v.",
        )


q1 = Exercise(
    "Q1 · scaled dot-product attention",
    _check_attention,
    hint="scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]); if mask is not None: "
    "scores = np.where(mask, scores, -1e9); weights = softmax over axis -1; return weights @ v, weights.",
    lab="lab06",
    solution_id="q1",
)


# ---------------------------------------------------------------------------------------------
# q2: the padding mask
# ---------------------------------------------------------------------------------------------


def padding_variants(ids: np.ndarray) -> dict[str, np.ndarray]:
    """Return the right padding mask (``"right"``, (batch, 1, T)) and the mistaken ones."""
    real = np.asarray(ids) != 0
    return {
        "right": real[:, None, :],
        "inverted": ~real[:, None, :],
        "queries": real[:, :, None],
        "inverted_queries": ~real[:, :, None],
        "queries_and_keys": real[:, :, None] & real[:, None, :],
        "no_query_axis": real,
        "inverted_no_query_axis": ~real,
    }


PADDING_HINTS = {
    "inverted": "Your mask is the wrong way round: it is True at the [PAD] tokens. True must mean 'a real "
    "token, may be looked at': `token_ids != 0`.",
    "queries": "Your mask hides padded *queries* (shape (batch, T, 1)) instead of padded keys: each "
    "real token would still read from the [PAD] tokens. Put the new axis before T: "
    "`(token_ids != 0)[:, None, :]`, shape (batch, 1, T).",
    "inverted_queries": "Two things: your mask is True at the [PAD] tokens (it must be True at the real "
    "ones), and it is laid out along the queries (batch, T, 1) instead of the keys (batch, 1, T).",
    "queries_and_keys": "Your mask hides padded queries as well as padded keys: the rows of the [PAD] "
    "queries are masked entirely, and their softmax is NaN (with −∞) or uniform over the padding. "
    "Hide only the keys, shape (batch, 1, T); the outputs at [PAD] positions are ignored later anyway.",
    "no_query_axis": "Your mask has shape (batch, T): against the scores (batch, queries, keys) it would "
    "line the batch up with the queries. Add the query axis: `(token_ids != 0)[:, None, :]`.",
    "inverted_no_query_axis": "Your mask is True at the [PAD] tokens and has no query axis. It must be True "
    "at the real tokens, shape (batch, 1, T): `(token_ids != 0)[:, None, :]`.",
}


def _as_mask(value: Any, what: str) -> np.ndarray:
    if value is None or value is Ellipsis:
        raise Mismatch(what, expected="a boolean array", got=repr(value), hint="End with `return mask`.")
    arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    if arr.dtype != bool:
        if arr.dtype.kind in "iuf" and np.isin(arr, (0, 1)).all():
            arr = arr.astype(bool)  # 0/1 numbers are accepted as the booleans they stand for
        else:
            raise Mismatch(
                what,
                expected="booleans (True = may be looked at)",
                got=f"values of type {arr.dtype}",
                hint="A comparison gives booleans: `token_ids != 0`.",
            )
    return arr


def _match_mask(got: np.ndarray, variants: dict[str, np.ndarray]) -> str | None:
    for name, ref in variants.items():
        if got.shape == ref.shape and np.array_equal(got, ref):
            return name
    return None


def _check_padding_mask(fn: Callable) -> None:
    for ids in (PAD_IDS, PAD_IDS[1:2], np.array([[3, 1, 4, 1, 5, 9, 2, 6]])):
        what = f"padding_mask(token_ids) for token_ids of shape {ids.shape}"
        got = _as_mask(call(fn, ids.copy()), what)
        variants = padding_variants(ids)
        found = _match_mask(got, variants)
        if found == "right":
            continue
        if found is not None:
            raise Mismatch(
                what,
                expected=f"True at the real tokens, shape {variants['right'].shape}",
                got=f"shape {got.shape}" + (", the [PAD] tokens True" if "inverted" in found else ""),
                hint=PADDING_HINTS[found],
            )
        raise Mismatch(
            what,
            expected=f"{variants['right'].astype(int).tolist()} (shape {variants['right'].shape})",
            got=f"{got.astype(int).tolist()} (shape {got.shape})",
            hint="True where the token id is not 0 (the [PAD] id), with a query axis of size 1: "
            "`(token_ids != 0)[:, None, :]`.",
        )


q2 = Exercise(
    "Q2 · the padding mask",
    _check_padding_mask,
    hint="`(token_ids != 0)[:, None, :]`: True for the real tokens, shape (batch, 1, T).",
    lab="lab06",
    solution_id="q2",
)


# ---------------------------------------------------------------------------------------------
# q3: the causal mask
# ---------------------------------------------------------------------------------------------


def causal_variants(length: int) -> dict[str, np.ndarray]:
    """Return the right causal mask (``"right"``) and the mistaken ones, (length, length) booleans."""
    ones = np.ones((length, length), dtype=bool)
    return {
        "right": np.tril(ones),
        "diagonal_masked": np.tril(ones, k=-1),
        "one_future": np.tril(ones, k=1),
        "future_allowed": np.triu(ones),
        "inverted": ~np.tril(ones),  # (~np.tril(ones, k=-1) is np.triu(ones): "future_allowed")
    }


CAUSAL_HINTS = {
    "diagonal_masked": "You also hid the diagonal: position i may not look at itself, and position 0 then "
    "sees nothing at all (a row with no key to look at). Keep the diagonal: `np.tril(ones)` (k=0), "
    "not `k=-1`.",
    "one_future": "Your mask lets each position see one step into the future (i + 1): an off-by-one. "
    "Position i may see 0..i only: `np.tril(ones)` with k=0.",
    "future_allowed": "Your mask is the upper triangle: each position sees the *future* and not the past. "
    "Use the lower triangle, `np.tril`: row i (the query) is True for columns j ≤ i.",
    "inverted": "Your mask is the wrong way round: True above the diagonal. True means 'may look at': "
    "True where j ≤ i, `np.tril(np.ones((T, T), dtype=bool))`.",
}


def _check_causal_mask(fn: Callable) -> None:
    for length in (5, 1, 8):
        what = f"causal_mask({length})"
        got = _as_mask(call(fn, length), what)
        variants = causal_variants(length)
        if got.shape != (length, length):
            raise Mismatch(
                f"the shape of {what}",
                expected=(length, length),
                got=got.shape,
                hint="One row per query and one column per key: (T, T). It broadcasts over the batch "
                "by itself.",
            )
        found = _match_mask(got, variants)
        if found == "right":
            continue
        if found is not None:
            raise Mismatch(
                what,
                expected=variants["right"].astype(int).tolist(),
                got=got.astype(int).tolist(),
                hint=CAUSAL_HINTS[found],
            )
        raise Mismatch(
            what,
            expected=variants["right"].astype(int).tolist(),
            got=got.astype(int).tolist(),
            hint="Row i (the query) is True for the columns j ≤ i: `np.tril(np.ones((T, T), dtype=bool))`.",
        )


q3 = Exercise(
    "Q3 · the causal mask",
    _check_causal_mask,
    hint="`np.tril(np.ones((length, length), dtype=bool))`: True on and below the diagonal.",
    lab="lab06",
    solution_id="q3",
)


# ---------------------------------------------------------------------------------------------
# q4: both masks at once
# ---------------------------------------------------------------------------------------------


def _decoder_variants(ids: np.ndarray) -> dict[str, np.ndarray]:
    length = ids.shape[1]
    pad = np.broadcast_to(padding_variants(ids)["right"], (ids.shape[0], length, length))
    causal = np.broadcast_to(np.tril(np.ones((length, length), dtype=bool)), pad.shape)
    return {"right": pad & causal, "or": pad | causal, "padding_only": pad, "causal_only": causal}


DECODER_HINTS = {
    "or": "You combined the masks with *or*: a key is then visible if it is real *or* in the past, so "
    "queries see the future real tokens and the past padding. A key may be seen only if both masks "
    "allow it: `padding_mask(ids) & causal_mask(T)`.",
    "padding_only": "Your mask has the padding part only: every query still sees the future. Combine it with "
    "the causal mask: `padding_mask(ids) & causal_mask(T)`.",
    "causal_only": "Your mask has the causal part only: queries still see the [PAD] tokens before them. "
    "Combine it with the padding mask: `padding_mask(ids) & causal_mask(T)`.",
}


def _check_decoder_mask(fn: Callable) -> None:
    ids = PAD_IDS
    what = f"decoder_mask(token_ids) for token_ids of shape {ids.shape}"
    got = _as_mask(call(fn, ids.copy()), what)
    variants = _decoder_variants(ids)
    right = variants["right"]
    if got.shape != right.shape:
        try:
            got = np.broadcast_to(got, right.shape)
        except ValueError:
            raise Mismatch(
                f"the shape of {what}",
                expected=right.shape,
                got=got.shape,
                hint="(batch, 1, T) & (T, T) broadcasts to (batch, T, T). Check Q2 and Q3 first.",
            ) from None
    for name, ref in variants.items():
        if np.array_equal(got, ref):
            if name == "right":
                return
            raise Mismatch(
                what,
                expected="padding & causal",
                got=f"the {name.replace('_', ' ')} mask",
                hint=DECODER_HINTS[name],
            )
    raise Mismatch(
        what,
        expected=right[0].astype(int).tolist(),
        got=got[0].astype(int).tolist(),
        hint="Make Q2 and Q3 pass first, then return `padding_mask(token_ids) & causal_mask(T)` with "
        "`T = token_ids.shape[1]` (the first example is shown).",
    )


q4 = Exercise(
    "Q4 · padding and causal masks together",
    _check_decoder_mask,
    hint="`padding_mask(token_ids) & causal_mask(token_ids.shape[1])`: (batch, 1, T) & (T, T) → (batch, T, T).",
    lab="lab06",
    solution_id="q4",
)


# ---------------------------------------------------------------------------------------------
# After the exercises: the learner's attention on a tiny batch, drawn
# ---------------------------------------------------------------------------------------------


def show_attention(attention: Callable, decoder_mask: Callable, example: int = 0) -> Any:
    """Run the learner's attention with their decoder mask on a tiny batch and draw one example's weights.

    Returns the plotly heatmap (``utils.widgets.attention_heatmap``) when Q1 and Q4 pass and the
    learner's weights equal the reference on that batch, else the :class:`Feedback` of the first
    exercise that does not pass.
    """
    for exercise, answer in ((q1, attention), (q4, decoder_mask)):
        feedback = exercise.evaluate(answer)
        if not feedback.passed:
            return feedback
    from utils.widgets import attention_heatmap

    ids = PAD_IDS
    rng = np.random.default_rng(11)
    x = rng.normal(size=(*ids.shape, 8)).astype("float32")  # one vector per token: q = k = v = x
    mask = np.asarray(decoder_mask(ids))
    _, weights = attention(x, x, x, mask)
    tol = _tolerance(weights)
    weights = _as_array(weights, "the weights")
    _, right = reference_attention(x, x, x, _decoder_variants(ids)["right"])
    if _distance(weights, right, tol) > 1:  # pragma: no cover - q1 and q4 passing make this hold
        raise AssertionError("your attention and mask pass their checks but disagree on the tiny batch")
    words = ["the", "cat", "sat", "on", "a", "mat"]
    tokens = [words[i] if t else "[PAD]" for i, t in enumerate(ids[example])]
    return attention_heatmap(
        weights[example],
        tokens,
        title=f"Your attention, example {example}: padding and causal masks together",
    )
