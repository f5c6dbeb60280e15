"""Checks for Lab 11 (serving): export a model with a signature, ask a server about it, write a client.

* ``q1``: ``export_model(model, export_dir)`` writes a SavedModel whose ``serving_default``
  signature takes one float32 input named ``images`` of shape ``(None, *model.input_shape[1:])``
  and computes what the model computes;
* ``q2``: ``model_is_ready(base_url, name)`` returns True only if TF Serving's status API says a
  version of ``name`` is AVAILABLE, and False for an unknown model (404) or one still loading;
* ``q3``: ``predict(base_url, name, images)`` POSTs to ``/v1/models/<name>:predict`` and returns the
  predictions as an array, or raises ``utils.deploy.ServingError(status, message)`` with the
  server's own message when the answer is not 200 (including a non-JSON error page).

q1 is checked on a probe model of a different input shape than the lab's (so a hard-coded shape
shows), built under the active dtype policy like the learner's model, with a float32 output layer:
the export must be float32 in and out, and its outputs must match the model's within the tolerance
of the precision the model computes in (an export of ``utils.deploy.float32_model(model)`` is right too); q2 and q3 run against a scripted test server on 127.0.0.1 that records each request and
answers like TF Serving, including its errors.
"""

import contextlib
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from utils.checks import Exercise, Feedback, LearnerError, Mismatch, NotDone, call, expect, expect_close
from utils.env import tolerance

__all__ = ["BROKEN_MESSAGE", "q1", "q2", "q3", "scripted_server", "serve_and_query"]

PROBE_SHAPE = (5, 5, 1)  # not the lab's image shape: catches an export that hard-codes 8×8
BROKEN_MESSAGE = "input 'images': expected shape [-1, 8, 8, 1], got [3, 64]"
_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?::(?P<verb>\w+))?$")


# ---------------------------------------------------------------------------------------------
# q1: the export
# ---------------------------------------------------------------------------------------------


def _probe_model() -> Any:
    from utils.env import import_tensorflow

    import_tensorflow()
    import keras

    keras.utils.set_random_seed(11)
    return keras.Sequential(
        [
            keras.Input(PROBE_SHAPE),
            keras.layers.Conv2D(3, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(4, activation="softmax", dtype="float32"),  # float32 output, as in the course
        ]
    )


def _check_export(export_model: Callable) -> None:
    from utils.env import import_tensorflow

    tf = import_tensorflow()
    model = _probe_model()
    with tempfile.TemporaryDirectory(prefix="lab11-q1-") as tmp:
        export_dir = Path(tmp) / "probe" / "1"
        export_dir.parent.mkdir()
        try:
            call(export_model, model, str(export_dir))
        except LearnerError as e:
            if isinstance(e.error, ValueError | TypeError) and "shape" in str(e.error).lower():
                raise Mismatch(
                    "the export (checked with a model whose images are 5×5×1)",
                    expected="an input signature that fits the model",
                    got=f"{type(e.error).__name__}: {str(e.error).splitlines()[0][:150]}",
                    hint="Take the image shape from the model, not a fixed 8×8: (None, *model.input_shape[1:]).",
                ) from None
            raise
        if not (export_dir / "saved_model.pb").is_file():
            written = sorted(p.name for p in Path(tmp).rglob("*"))
            raise Mismatch(
                "the export directory",
                expected="a SavedModel directory at export_dir (with saved_model.pb inside)",
                got=f"files written: {written[:6]}" if written else "nothing written",
                hint="Use model.export(export_dir, format='tf_saved_model', input_signature=[...]). "
                "model.save writes a .keras file, which TF Serving cannot load.",
            )
        loaded = tf.saved_model.load(str(export_dir))
        expect(
            "serving_default" in loaded.signatures,
            "the SavedModel's signatures",
            expected="a 'serving_default' signature",
            got=list(loaded.signatures),
            hint="model.export creates 'serving_default' for you; tf.saved_model.save needs signatures=...",
        )
        fn = loaded.signatures["serving_default"]
        specs = fn.structured_input_signature[1]
        expect(len(specs) == 1, "the number of inputs of the signature", expected=1, got=len(specs))
        name, spec = next(iter(specs.items()))
        expected_shape = [None, *PROBE_SHAPE]
        expect(
            name == "images",
            "the name of the signature's input",
            expected="'images'",
            got=repr(name),
            hint="Name the input in the TensorSpec: tf.TensorSpec(shape, tf.float32, name='images'). "
            "A client sending named inputs (the columnar format) uses this name.",
        )
        expect(
            spec.dtype == tf.float32,
            "the dtype of the input",
            expected="float32",
            got=spec.dtype.name,
            hint="Clients send the scaled pixels as floats: use tf.float32.",
        )
        got_shape = spec.shape.as_list()
        if (
            len(got_shape) == len(expected_shape)
            and got_shape[1:] == expected_shape[1:]
            and got_shape[0] is not None
        ):
            raise Mismatch(
                "the input's batch dimension",
                expected=expected_shape,
                got=got_shape,
                hint="Use None as the first dimension, so a client can send any number of images per request.",
            )
        expect(
            got_shape == expected_shape,
            "the input's shape (checked with a model whose images are 5×5×1)",
            expected=expected_shape,
            got=got_shape,
            hint="Take the image shape from the model, not a fixed 8×8: (None, *model.input_shape[1:]).",
        )
        x = np.random.default_rng(0).random((3, *PROBE_SHAPE), dtype=np.float32)
        out = next(iter(fn(**{name: tf.constant(x)}).values()))
        expect(
            out.dtype == tf.float32,
            "the dtype of the exported signature's output",
            expected="float32",
            got=out.dtype.name,
            hint="A served model answers in float32: export the model as it is (its output layer is float32).",
        )
        # Under mixed precision the model computes in float16 or bfloat16; an export of its float32
        # copy differs from it by that rounding. In float32 this is rtol = atol = 1e-5.
        expect_close(
            out.numpy(),
            model(x).numpy(),
            what="the exported signature's output",
            **tolerance(model.dtype_policy.name),
            hint="Export the model you were given, as it is.",
        )


q1 = Exercise(
    "Q1 · export with a serving signature",
    _check_export,
    hint="model.export(export_dir, format='tf_saved_model', "
    "input_signature=[tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name='images')])",
    lab="lab11_serving",
    solution_id="q1",
)


# ---------------------------------------------------------------------------------------------
# The scripted test server (q2, q3)
# ---------------------------------------------------------------------------------------------


def _fake_predictions(data: Any) -> list[list[float]]:
    """What the scripted 'digits' model answers: per image, [sum of pixels, largest pixel]."""
    arr = np.asarray(data, dtype=np.float64)
    flat = arr.reshape(len(arr), -1)
    return np.stack([flat.sum(1), flat.max(1)], axis=1).round(6).tolist()


def _answer(method: str, path: str, body: bytes) -> tuple[int, Any, str]:
    """Return (status, payload, content type) the way TF Serving would for the scripted models."""
    m = _PATH.match(path)
    if not m or m["verb"] not in (None, "predict"):
        return 404, {"error": f"No route for {method} {path}."}, "json"
    name, verb = m["name"], m["verb"]
    if verb is None:
        if method != "GET":
            return 405, {"error": "Method not allowed."}, "json"
        states = {"digits": "AVAILABLE", "ready": "AVAILABLE", "loading": "LOADING"}
        if name not in states:
            return (
                404,
                {"error": f"Servable not found for request: model {name!r} is not served here."},
                "json",
            )
        status = {"error_code": "OK", "error_message": ""}
        return (
            200,
            {"model_version_status": [{"version": "1", "state": states[name], "status": status}]},
            "json",
        )
    if method != "POST":
        return 405, {"error": "Method not allowed."}, "json"
    if name == "behind-proxy":
        return 502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "html"
    if name == "broken":
        return 400, {"error": BROKEN_MESSAGE}, "json"
    if name != "digits":
        return 404, {"error": f"Servable not found for request: model {name!r} is not served here."}, "json"
    try:
        request = json.loads(body)
    except ValueError:
        return 400, {"error": "The request body is not valid JSON."}, "json"
    if not isinstance(request, dict) or ("instances" in request) == ("inputs" in request):
        return 400, {"error": 'The body must be a JSON object with "instances" or "inputs".'}, "json"
    data = request.get("instances", request.get("inputs"))
    if isinstance(data, dict):
        data = data.get("images")
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        return 400, {"error": "expected numbers in nested lists of one shape."}, "json"
    if arr.ndim != 4 or len(arr) == 0:
        return 400, {"error": f"expected shape [-1, H, W, 1], got {list(arr.shape)}."}, "json"
    key = "predictions" if "instances" in request else "outputs"
    return 200, {key: _fake_predictions(arr)}, "json"


@contextlib.contextmanager
def scripted_server() -> Any:
    """Run the scripted TF-Serving look-alike on 127.0.0.1; yield (base_url, list of requests seen)."""
    from utils.deploy import BackgroundServer

    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        """A plain ASGI app: records each request and answers as :func:`_answer` scripts it."""
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        seen.append({"method": scope["method"], "path": scope["path"], "body": body})
        status, payload, kind = _answer(scope["method"], scope["path"], body)
        if kind == "html":
            content, content_type = payload.encode(), b"text/html; charset=utf-8"
        else:
            content, content_type = json.dumps(payload).encode(), b"application/json"
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(content))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    with BackgroundServer(app) as server:
        yield server.url, seen


# ---------------------------------------------------------------------------------------------
# q2: is the model ready?
# ---------------------------------------------------------------------------------------------


def _check_ready(model_is_ready: Callable) -> None:
    with scripted_server() as (url, seen):
        for name, expected, situation in (
            ("ready", True, "a model whose version 1 is AVAILABLE"),
            ("loading", False, "a model whose only version is still LOADING"),
            ("nosuch", False, "a model the server does not know (404 with a JSON error)"),
        ):
            try:
                got = call(model_is_ready, url, name)
            except LearnerError as e:
                if name == "nosuch" and isinstance(e.error, KeyError):
                    raise Mismatch(
                        f"model_is_ready for {situation}",
                        expected="False",
                        got=f"{e}",
                        hint="An error answer has no 'model_version_status', only 'error'. "
                        "Check response.status_code == 200 before you read the body.",
                    ) from None
                raise
            if seen and name == "ready" and seen[-1]["method"] != "GET":
                raise Mismatch("the HTTP method", expected="GET", got=seen[-1]["method"])
            if name == "ready" and seen and not _PATH.match(seen[-1]["path"]):
                raise Mismatch(
                    "the URL you asked",
                    expected=f"{url}/v1/models/ready",
                    got=url + seen[-1]["path"],
                    hint="The status URL is f'{base_url}/v1/models/{name}'.",
                )
            if not isinstance(got, bool | np.bool_):
                raise Mismatch(
                    f"model_is_ready for {situation}",
                    expected=str(expected),
                    got=f"{type(got).__name__}: {got!r}"[:120],
                    hint="Return True or False, not the response or its JSON.",
                )
            if bool(got) != expected:
                hints = {
                    "loading": "Look at each version's 'state': only 'AVAILABLE' means it can answer.",
                    "nosuch": "A 404 means the server does not know the model: check the status code.",
                    "ready": "Read response.json()['model_version_status'] and look for state 'AVAILABLE'.",
                }
                raise Mismatch(
                    f"model_is_ready for {situation}", expected=expected, got=got, hint=hints[name]
                )


q2 = Exercise(
    "Q2 · is the model ready?",
    _check_ready,
    hint="GET f'{base_url}/v1/models/{name}'; if the status is not 200 return False; otherwise return whether "
    "any entry of response.json()['model_version_status'] has state 'AVAILABLE'.",
    lab="lab11_serving",
    solution_id="q2",
)


# ---------------------------------------------------------------------------------------------
# q3: the client
# ---------------------------------------------------------------------------------------------


def _sent(seen: list[dict[str, Any]]) -> Any:
    """The JSON body of the last POST the learner sent (or the raw bytes if it was not JSON)."""
    posts = [r for r in seen if r["method"] == "POST"]
    if not posts:
        return None
    try:
        return json.loads(posts[-1]["body"])
    except ValueError:
        return posts[-1]["body"][:80]


def _check_client(predict: Callable) -> None:
    from utils.deploy import ServingError

    images = np.random.default_rng(3).random((3, 8, 8, 1), dtype=np.float32)
    expected = np.asarray(_fake_predictions(images))
    with scripted_server() as (url, seen):
        # -- a good request
        try:
            got = call(predict, url, "digits", images)
        except LearnerError as e:
            body, error = _sent(seen), e.error
            if isinstance(error, TypeError) and "serializable" in str(error):
                raise Mismatch(
                    "the request body",
                    expected="JSON: nested lists of numbers",
                    got=str(error),
                    hint="JSON cannot hold a NumPy array: send images.tolist().",
                ) from None
            if isinstance(error, ServingError) and isinstance(body, list):
                raise Mismatch(
                    "the request body",
                    expected='{"instances": [...]}',
                    got="a bare list",
                    hint="TF Serving wants a JSON object: json={'instances': images.tolist()}.",
                ) from None
            if isinstance(error, ServingError) and seen and not _PATH.match(seen[-1]["path"]):
                raise Mismatch(
                    "the URL you posted to",
                    expected=f"{url}/v1/models/digits:predict",
                    got=url + seen[-1]["path"],
                    hint="The predict URL is f'{base_url}/v1/models/{name}:predict' (a colon before predict).",
                ) from None
            if isinstance(error, KeyError) and isinstance(body, dict):
                sent = "instances" if "instances" in body else "inputs"
                answer = "predictions" if sent == "instances" else "outputs"
                raise Mismatch(
                    "the key you read the answer from",
                    expected=repr(answer),
                    got=f"KeyError {error}",
                    hint=f"You sent {sent!r}, so the answer comes under {answer!r} "
                    "(row format: instances → predictions; columnar: inputs → outputs).",
                ) from None
            raise
        if isinstance(got, dict):
            raise Mismatch(
                "what predict returns",
                expected="the predictions, as an array of shape (3, 2) here",
                got=f"a dict with keys {list(got)}",
                hint="Return np.array(response.json()['predictions']), not the whole JSON.",
            )
        expect_close(got, expected, what="the predictions for 3 probe images", atol=1e-5)

        # -- the server's errors
        for name, status, situation in (
            ("broken", 400, "a 400 answer with a JSON error"),
            ("nosuch", 404, "a 404 answer (unknown model)"),
            ("behind-proxy", 502, "a 502 answer whose body is an HTML page, not JSON"),
        ):
            try:
                result = call(predict, url, name, images)
            except LearnerError as e:
                error = e.error
                if isinstance(error, ServingError):
                    if error.status != status:
                        raise Mismatch(
                            f"the ServingError's status for {situation}",
                            expected=status,
                            got=error.status,
                            hint="Pass response.status_code as the first argument.",
                        ) from None
                    if name == "broken" and BROKEN_MESSAGE not in str(error):
                        raise Mismatch(
                            f"the ServingError's message for {situation}",
                            expected=BROKEN_MESSAGE,
                            got=str(error)[:120],
                            hint="Pass the server's explanation on: response.json()['error'].",
                        ) from None
                    continue
                hints = {
                    "HTTPError": "raise_for_status() drops the server's explanation. Raise "
                    "ServingError(response.status_code, response.json()['error']) instead.",
                    "KeyError": "You read the predictions before checking the status code; an error answer "
                    "has only 'error'.",
                    "JSONDecodeError": "An error answer is not always JSON (a proxy may send an HTML page): "
                    "if response.json() fails, use response.text as the message.",
                }
                kind = type(error).__name__
                raise Mismatch(
                    f"what predict does for {situation}",
                    expected=f"raise ServingError({status}, <the server's message>)",
                    got=f"{kind}: {error}"[:160],
                    hint=hints.get(
                        kind, "Check response.status_code and raise ServingError when it is not 200."
                    ),
                ) from None
            raise Mismatch(
                f"what predict does for {situation}",
                expected=f"raise ServingError({status}, <the server's message>)",
                got=f"returned {type(result).__name__}",
                hint="Check response.status_code; when it is not 200, raise ServingError instead of returning.",
            )


q3 = Exercise(
    "Q3 · a client that handles errors",
    _check_client,
    hint="requests.post(f'{base_url}/v1/models/{name}:predict', json={'instances': images.tolist()}); if the "
    "status is not 200, raise ServingError(status, message) with message = response.json()['error'] "
    "(or response.text if that is not JSON); else return np.array(response.json()['predictions']).",
    lab="lab11_serving",
    solution_id="q3",
)


# ---------------------------------------------------------------------------------------------
# After the exercises: the learner's export, served for real, queried by the learner's client
# ---------------------------------------------------------------------------------------------


def serve_and_query(
    export_model: Callable,
    model_is_ready: Callable,
    predict: Callable,
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
) -> Any:
    """Export ``model`` with the learner's function, serve it, query it with the learner's client.

    Returns a table of labels and predictions, or a :class:`Feedback` if Q1–Q3 are not all passing
    (so an unfinished lab still runs to the end).
    """
    for exercise, answer in ((q1, export_model), (q2, model_is_ready), (q3, predict)):
        if not exercise.evaluate(answer).passed:
            return Feedback("not_done", "Serve your model", f"finish {exercise.title.split(' ·')[0]} first.")
    import pandas as pd

    from utils.deploy import ModelServer

    with tempfile.TemporaryDirectory(prefix="lab11-") as tmp:
        try:
            call(export_model, model, str(Path(tmp) / "digits" / "1"))
            with ModelServer({"digits": Path(tmp) / "digits"}) as server:
                print(f"serving your export on {server.url}")
                ready = call(model_is_ready, server.url, "digits")
                probs = np.asarray(call(predict, server.url, "digits", x), dtype=np.float32)
        except (NotDone, Mismatch, LearnerError) as exc:
            return Feedback("error", "Serve your model", f"it did not run: {exc}")
    keras_probs = model.predict(x, verbose=0)
    print(f"ready: {ready}; largest difference from Keras: {np.abs(probs - keras_probs).max():.1e}")
    print(f"accuracy of the served model on these {len(x)} images: {np.mean(probs.argmax(1) == y):.3f}")
    return pd.DataFrame({"label": y[:10], "served prediction": probs.argmax(1)[:10]}).T
