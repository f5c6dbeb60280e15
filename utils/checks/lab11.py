"""Checks for Lab 11 (int8 by hand, and a serving client). Tasks and the mistakes they name:

* ``q1`` ``int8_params(x_min, x_max)``, compared with TFLite's converter: the range not widened to 0, the
  uint8 range, no zero point, 256 steps, the zero point's sign, a zero point not rounded;
* ``q2`` ``quantize(x, scale, zero_point)``: truncated (before or after the shift), floored, wrapped round
  in int8 or not clipped, no zero point, the zero point subtracted;
* ``q3`` ``dequantize(q, scale, zero_point)``, the round trip compared with TensorFlow's fake_quant: ``q − z``
  in int8, no zero point, the zero point added, divided by the scale;
* ``q4`` ``predict(base_url, name, images)`` against a scripted TF-Serving look-alike: a NumPy array in the
  JSON, a bare list, a wrong URL or key, and for 400/404/502 answers raise_for_status, reading predictions
  of an error, an HTML page, a wrong status or message. Quantisation is plain float arithmetic: one tolerance
  under every dtype policy.
"""

import contextlib
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from utils.checks import Exercise, Feedback, LearnerError, as_array, call, judge
from utils.checks.lab09 import hint_table, mistake_table, named
from utils.env import import_tensorflow

TOL = {"rtol": 1e-5, "atol": 1e-6}  # float arithmetic on given numbers: the same under every dtype policy
HINTS = hint_table(
    """
q1 | The 256 int8 codes must cover the range, and the real number 0 must land exactly on a code (a zero-padded input or a ReLU output is exactly 0). What range do you cover, then? | Widen the range to include 0: lo = min(x_min, 0), hi = max(x_max, 0). The scale spreads hi − lo over 255 steps; the zero point is the code of 0, so that lo lands on −128: round it to a whole number.
q2 | A code is the real value divided by the scale, moved by the zero point, made a whole number the nearest way, and kept inside what int8 can hold. | np.round (not a cast, which truncates) the value / scale, add the zero point, clip to [−128, 127], and only then cast to int8.
q3 | The inverse of q2: undo the shift by the zero point, then the division by the scale. Mind the dtype you subtract in. | Cast the codes to a wider type (int32 or float32) before subtracting the zero point, then multiply by the scale.
q4 | POST JSON to the predict URL; look at the status code before you read the body. | `requests.post(f"{base_url}/v1/models/{name}:predict", json={"instances": images.tolist()})`; if the status is not 200, raise ServingError(status, message) with the JSON's "error", or the body's text when it is not JSON; else return the "predictions" as an array.
"""
)


# q1: scale and zero point


def int8_reference(lo, hi, *, widen=True, levels=255, uint8=False, symmetric=False, sign=1, rounded=True):
    """(scale, zero point) of affine int8 for the range [lo, hi]; the keywords give the mistakes."""
    lo, hi = (min(lo, 0.0), max(hi, 0.0)) if widen else (lo, hi)
    if symmetric:
        return max(abs(lo), abs(hi)) / 127, 0
    scale = (hi - lo) / levels
    zero = (0 if uint8 else -128) - sign * lo / scale
    return scale, (round(zero) if rounded else zero)


Q1_MISTAKES = mistake_table(
    """
range not widened to 0 | widen=False | Your range does not include 0, so 0 falls between two codes (or outside them all). Widen the range to contain 0 before computing the scale.
uint8 range | uint8=True | Your zero point is for codes 0…255 (uint8). TFLite's int8 codes run from −128 to 127: the lowest value maps to −128.
no zero point | symmetric=True | You used symmetric quantisation (zero point 0, scale from the largest magnitude): TFLite's activations are affine, with a zero point that puts the range's lowest value on −128.
256 steps | levels=256 | Your scale divides the range into 256 steps, but 256 codes have 255 gaps between them.
zero point's sign | sign=-1 | Your zero point has the wrong sign on lo / scale: it is the code where the real value 0 lands, so lo must map to −128.
zero point not rounded | rounded=False | Your zero point is not a whole number: it is a code, and the real number 0 must be exactly representable. Round it.
""",
    lambda lo_hi, **kw: int8_reference(*lo_hi, **kw),
)
Q1_RANGES = [(0.4, 2.9), (-1.3, 0.6), (-3.0, -0.5)]
_TFLITE: list[list[tuple[float, int]]] = []


def tflite_params() -> list[tuple[float, int]]:
    """The (scale, zero point) TFLite's converter picks for inputs calibrated on each of ``Q1_RANGES``."""
    if not _TFLITE:
        import keras
        from ai_edge_litert.interpreter import Interpreter

        from utils.deploy import _quiet_converter

        tf, rng = import_tensorflow(), np.random.default_rng(0)
        inputs = [keras.Input((4,), name=f"x{i}") for i in range(len(Q1_RANGES))]
        sample = lambda lo, hi: np.vstack([[lo] * 4, [hi] * 4, rng.uniform(lo, hi, (30, 4))])  # noqa: E731
        data = [sample(lo, hi).astype("float32") for lo, hi in Q1_RANGES]  # calibrated on exactly [lo, hi]
        out = keras.layers.Concatenate(dtype="float32")(
            [keras.layers.Dense(2, dtype="float32")(i) for i in inputs]
        )
        with tempfile.TemporaryDirectory() as tmp, _quiet_converter():
            keras.Model(inputs, out).export(tmp, format="tf_saved_model", verbose=False)
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([d[i : i + 1] for d in data] for i in range(32))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            details = Interpreter(model_content=converter.convert()).get_input_details()
        # (the representative arrays feed the converter's inputs in its order, which the interpreter keeps)
        _TFLITE.append([(float(d["quantization"][0]), int(d["quantization"][1])) for d in details])
    return _TFLITE[0]


def _check_params(int8_params: Callable) -> None:
    for lo_hi, ref in zip(Q1_RANGES, tflite_params(), strict=True):
        what, seen = f"(scale, zero point) for {list(lo_hi)}", f"({ref[0]:.6g}, {ref[1]}), TFLite's choice"
        got = as_array(call(int8_params, *lo_hi), what, shape=(2,), hint="Return (scale, zero_point).")
        judge(got, np.array(ref), Q1_MISTAKES, what=what, inputs=(lo_hi,), tol=TOL, describe=seen)


q1 = Exercise("Q1 · scale and zero point", _check_params, hint=HINTS["q1"])


# q2 and q3: quantise, dequantise

Q2_SCALE, Q2_ZERO = 0.0112, -92  # a range of about [-0.4, 2.45]
Q2_X = np.array([-1.0, -0.4, -0.0031, 0.0, 0.0052, 0.3345, 1.1, 1.6891, 2.4, 2.6, 5.0, -0.0097], "float32")


def quantize_reference(x: Any, s: float, z: int, *, how="round", clip=True, wrap=False, zero=1) -> np.ndarray:
    """int8 codes of ``x``; the keywords give the mistakes."""
    x, z = np.asarray(x, float) / s, zero * z
    rounding = {"round": np.round, "trunc": np.trunc, "floor": np.floor, "after": np.trunc}[how]
    q = rounding(x + z) if how == "after" else rounding(x) + z
    return np.clip(q, -128, 127) if clip else (q.astype(np.int64).astype(np.int8) if wrap else q)


Q2_MISTAKES = mistake_table(
    """
truncated | how='trunc' | Your codes are truncated towards 0 (what a cast to an integer does), so they are half a step off on average. Round to the nearest code first.
truncated after the shift | how='after' | Your codes are truncated towards 0 (what a cast to an integer does) after adding the zero point. Round to the nearest code.
floored | how='floor' | You rounded down (floor): codes are half a step low on average. Round to the nearest code.
wrapped round | clip=False, wrap=True | Values beyond the range wrapped round (130 became −126): the cast to int8 overflows. Clip to [−128, 127] before casting.
not clipped | clip=False | Some codes lie outside [−128, 127]: int8 cannot hold them. Clip to the int8 range.
no zero point | zero=0 | Your codes are not shifted by the zero point, so the real value 0 does not land on code z.
zero point subtracted | zero=-1 | You subtracted the zero point. Going in, the code is round(x / s) plus z.
""",
    quantize_reference,
)


def _check_quantize(quantize: Callable) -> None:
    got = as_array(call(quantize, Q2_X.copy(), Q2_SCALE, Q2_ZERO), "the codes", shape=Q2_X.shape)
    what, probe = (
        f"quantize(x, {Q2_SCALE}, {Q2_ZERO}) for {len(Q2_X)} values x from -1 to 5",
        (Q2_X, Q2_SCALE, Q2_ZERO),
    )
    judge(got, quantize_reference(*probe), Q2_MISTAKES, what=what, inputs=probe, tol=TOL)


q2 = Exercise("Q2 · quantise to int8", _check_quantize, hint=HINTS["q2"])


def dequantize_reference(q: Any, s: float, z: int, *, how="right") -> np.ndarray:
    """Real values of the codes ``q``; ``how`` gives the mistakes."""
    q = np.asarray(q)
    wide = q.astype(np.int64)
    if how == "int8":
        return s * (q - np.int8(z)).astype(np.int64)
    return {"right": s * (wide - z), "no zero": s * wide, "added": s * (wide + z), "divided": (wide - z) / s}[
        how
    ]


Q3_MISTAKES = mistake_table(
    """
subtracted in int8 | how='int8' | Large codes came back negative: q − z overflowed, because the subtraction ran in int8. Widen the codes (int32 or float32) before subtracting.
no zero point | how='no zero' | You did not take the zero point off: code z means the real value 0.
zero point added | how='added' | You added the zero point. Coming back out, subtract it: x = s · (q − z).
divided by the scale | how='divided' | You divided by the scale. Going in you divided; coming back out, multiply.
""",
    dequantize_reference,
)


def _check_dequantize(dequantize: Callable) -> None:
    q = quantize_reference(Q2_X, Q2_SCALE, Q2_ZERO).astype(np.int8)
    got = as_array(call(dequantize, q.copy(), Q2_SCALE, Q2_ZERO), "the values", shape=q.shape)
    lo, hi = Q2_SCALE * (-128 - Q2_ZERO), Q2_SCALE * (127 - Q2_ZERO)  # the range (scale, zero point) cover
    fake = import_tensorflow().quantization.fake_quant_with_min_max_vars(Q2_X, lo, hi, num_bits=8).numpy()
    what = f"dequantize(quantize(x), {Q2_SCALE}, {Q2_ZERO}) for {len(Q2_X)} values x from -1 to 5"
    seen = f"{fake.round(4)[:4].tolist()}... (as tf.quantization.fake_quant_with_min_max_vars)"
    judge(got, fake, Q3_MISTAKES, what=what, inputs=(q, Q2_SCALE, Q2_ZERO), tol=TOL, describe=seen)


q3 = Exercise("Q3 · dequantise, and the round trip", _check_dequantize, hint=HINTS["q3"])


# q4: the client, against a scripted server

BROKEN_MESSAGE = "input 'images': expected shape [-1, 8, 8, 1], got [3, 64]"
_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/\d+)?:predict$")


def fake_predictions(data: Any) -> list[list[float]]:
    """What the scripted 'digits' model answers: per image, [sum of pixels, largest pixel]."""
    flat = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
    return np.stack([flat.sum(1), flat.max(1)], axis=1).round(6).tolist()


PROXY_PAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"
SCRIPTED = {"behind-proxy": (502, PROXY_PAGE), "broken": (400, {"error": BROKEN_MESSAGE})}


def _answer(method: str, path: str, body: bytes) -> tuple[int, Any]:
    """(status, payload) as TF Serving would answer for the scripted models; a str payload is HTML."""
    m = _PATH.match(path)
    if not m or method != "POST":
        return 404, {"error": f"No route for {method} {path}."}
    if m["name"] != "digits":
        return SCRIPTED.get(m["name"], (404, {"error": f"Servable not found: no model {m['name']!r} here."}))
    try:
        request = json.loads(body)
        assert isinstance(request, dict) and ("instances" in request) != ("inputs" in request)
        data = request.get("instances", request.get("inputs"))
        arr = np.asarray(data.get("images") if isinstance(data, dict) else data, dtype=np.float64)
        assert arr.ndim == 4 and len(arr)
    except (ValueError, TypeError, AssertionError):
        return 400, {"error": 'A JSON object with "instances" or "inputs", images [-1, H, W, 1], please.'}
    return 200, {"predictions" if "instances" in request else "outputs": fake_predictions(arr)}


@contextlib.contextmanager
def scripted_server() -> Any:
    """Run the scripted TF-Serving look-alike on 127.0.0.1; yield (base_url, list of requests seen)."""
    from utils.deploy import BackgroundServer

    seen = []

    async def app(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            return await send({"type": "lifespan.shutdown.complete"})
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        seen.append({"method": scope["method"], "path": scope["path"], "body": body})
        status, payload = _answer(scope["method"], scope["path"], body)
        html = isinstance(payload, str)
        content = payload.encode() if html else json.dumps(payload).encode()
        kind = b"text/html" if html else b"application/json"
        headers = [(b"content-type", kind), (b"content-length", b"%d" % len(content))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    with BackgroundServer(app) as server:
        yield server.url, seen


Q4_MISTAKES = mistake_table(
    """
array in JSON | | JSON cannot hold a NumPy array: send nested lists (`.tolist()`).
bare list | | TF Serving wants a JSON object: the list goes under "instances" (or "inputs").
wrong URL | | The predict URL is <base_url>/v1/models/<name>:predict (a colon before predict).
wrong answer key | | You sent "instances", so the answer comes under "predictions" (columnar: "inputs" → "outputs").
whole JSON returned | | Return the predictions as an array, not the whole JSON answer.
raise_for_status | | raise_for_status() drops the server's explanation. Raise ServingError(status, message) with the server's own message instead.
predictions of an error | | You read the predictions before checking the status code; an error answer has only "error".
HTML error page | | An error answer is not always JSON (a proxy may send an HTML page): if the body is not JSON, use its text as the message.
returned on an error | | Check the status code; when it is not 200, raise ServingError instead of returning.
wrong status | | Pass the response's status code as ServingError's first argument.
message lost | | Pass the server's explanation on: the "error" of its JSON answer.
"""
)
ERRORS = {
    "HTTPError": "raise_for_status",
    "KeyError": "predictions of an error",
    "JSONDecodeError": "HTML error page",
}


def _check_client(predict: Callable) -> None:
    from utils.deploy import ServingError

    images = np.random.default_rng(3).random((3, 8, 8, 1), dtype=np.float32)
    with scripted_server() as (url, seen):
        try:
            got = call(predict, url, "digits", images)
        except LearnerError as e:
            last = seen[-1] if seen else {"body": b"", "path": ""}
            found = [
                ("array in JSON", "serializable" in str(e.error)),
                ("bare list", last["body"][:1] == b"["),
                ("wrong URL", seen and not _PATH.match(last["path"])),
                ("wrong answer key", isinstance(e.error, KeyError)),
            ]
            for name, _ in filter(lambda pair: pair[1], found):
                raise named(Q4_MISTAKES, name, "a good request for 3 images", repr(e.error)[:120]) from None
            raise
        if isinstance(got, dict):
            raise named(Q4_MISTAKES, "whole JSON returned", "what predict returns", f"a dict: {list(got)}")
        what = "the predictions for 3 probe images"
        judge(as_array(got, what), fake_predictions(images), what=what, tol=TOL)
        for model, status in (("broken", 400), ("nosuch", 404), ("behind-proxy", 502)):
            what = f"what predict does for a {status} answer" + (" (an HTML page)" if status == 502 else "")
            try:
                result = call(predict, url, model, images)
            except LearnerError as e:
                error, kind = e.error, type(e.error).__name__
                if not isinstance(error, ServingError):
                    mistake = ERRORS.get(kind, "returned on an error")
                    raise named(Q4_MISTAKES, mistake, what, f"{kind}: {error}"[:160]) from None
                if error.status != status:
                    raise named(Q4_MISTAKES, "wrong status", what, error.status, status) from None
                if model == "broken" and BROKEN_MESSAGE not in str(error):
                    raise named(Q4_MISTAKES, "message lost", what, str(error)[:120], BROKEN_MESSAGE) from None
                continue
            raise named(Q4_MISTAKES, "returned on an error", what, f"returned {type(result).__name__}")


q4 = Exercise("Q4 · a client that handles errors", _check_client, hint=HINTS["q4"])


def serve_and_query(predict: Callable, model: Any, x: np.ndarray, y: np.ndarray) -> Any:
    """Export ``model`` at float32, serve it on 127.0.0.1 and query it with the learner's client (once Q4 passes)."""
    if not q4.evaluate(predict).passed:
        return Feedback("not_done", "Serve your model", "finish Q4 first.")
    import pandas as pd

    from utils.deploy import ModelServer, float32_model

    with tempfile.TemporaryDirectory(prefix="lab11-") as tmp:
        spec = [import_tensorflow().TensorSpec((None, *model.input_shape[1:]), "float32", name="images")]
        export = float32_model(model).export
        export(str(Path(tmp) / "digits" / "1"), format="tf_saved_model", input_signature=spec, verbose=False)
        with ModelServer({"digits": Path(tmp) / "digits"}) as server:
            probs = np.asarray(predict(server.url, "digits", x), dtype=np.float32)
    print(f"largest difference from Keras: {np.abs(probs - model.predict(x, verbose=0)).max():.1e}")
    print(f"accuracy of the served model on these {len(x)} images: {np.mean(probs.argmax(1) == y):.3f}")
    return pd.DataFrame({"label": y[:10], "served prediction": probs.argmax(1)[:10]}).T
