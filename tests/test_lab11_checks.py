"""Lab 11's checks: right answers pass however they are written, each usual mistake gets its own
hint, placeholders are "not done yet", a learner's exception is reported without a course traceback."""

import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import requests

from utils.checks import lab11 as ex
from utils.deploy import ServingError

# ---------------------------------------------------------------------------------------------
# Q1-Q3: int8 by hand
# ---------------------------------------------------------------------------------------------


def params(x_min, x_max):
    lo, hi = min(x_min, 0.0), max(x_max, 0.0)
    scale = (hi - lo) / 255
    return scale, int(round(-128 - lo / scale))


def params_from_max(x_min, x_max):  # the zero point from the top of the range: the same number
    lo, hi = np.minimum(x_min, 0), np.maximum(x_max, 0)
    s = np.float32((hi - lo) / 255.0)
    return float(s), int(np.rint(127 - hi / s))


def quantize(x, scale, zero_point):
    return np.clip(np.round(np.asarray(x) / scale) + zero_point, -128, 127).astype(np.int8)


def quantize_tf(x, scale, zero_point):
    import tensorflow as tf

    q = tf.clip_by_value(tf.round(tf.constant(x, tf.float32) / scale) + zero_point, -128, 127)
    return tf.cast(q, tf.int8)


def dequantize(q, scale, zero_point):
    return (scale * (np.asarray(q, np.int32) - zero_point)).astype(np.float32)


def dequantize_float(q, scale, zero_point):
    return scale * (q.astype(np.float32) - np.float32(zero_point))


PARAMS_MISTAKES = {
    "range not widened": (
        lambda a, b: ((b - a) / 255, round(-128 - a * 255 / (b - a))),
        "does not include 0",
    ),
    "uint8": (lambda a, b: (s := (max(b, 0) - min(a, 0)) / 255, round(-min(a, 0) / s)), "uint8"),
    "symmetric": (lambda a, b: (max(abs(a), abs(b)) / 127, 0), "symmetric"),
    "256 steps": (lambda a, b: (s := (max(b, 0) - min(a, 0)) / 256, round(-128 - min(a, 0) / s)), "255 gaps"),
    "sign": (lambda a, b: (s := (max(b, 0) - min(a, 0)) / 255, round(-128 + min(a, 0) / s)), "wrong sign"),
    "not rounded": (lambda a, b: (s := (max(b, 0) - min(a, 0)) / 255, -128 - min(a, 0) / s), "Round it"),
}
QUANT_MISTAKES = {
    "cast truncates": (
        lambda x, s, z: np.clip(np.asarray(x) / s + z, -128, 127).astype(np.int8),
        "truncated",
    ),
    "trunc first": (
        lambda x, s, z: np.clip(np.trunc(np.asarray(x) / s) + z, -128, 127),
        "truncated towards 0",
    ),
    "floor": (lambda x, s, z: np.clip(np.floor(np.asarray(x) / s) + z, -128, 127), "rounded down"),
    "no clip, int8": (
        lambda x, s, z: (np.round(np.asarray(x) / s) + z).astype(np.int64).astype(np.int8),
        "wrapped",
    ),
    "no clip": (lambda x, s, z: np.round(np.asarray(x) / s) + z, "outside [−128, 127]"),
    "no zero point": (lambda x, s, z: np.clip(np.round(np.asarray(x) / s), -128, 127), "not shifted"),
    "minus zero point": (lambda x, s, z: np.clip(np.round(np.asarray(x) / s) - z, -128, 127), "subtracted"),
}
DEQUANT_MISTAKES = {
    "int8 subtraction": (lambda q, s, z: s * (q - z), "overflowed"),
    "no zero point": (lambda q, s, z: s * q.astype(np.float32), "did not take the zero point off"),
    "zero point added": (lambda q, s, z: s * (q.astype(np.float32) + z), "added the zero point"),
    "divided": (lambda q, s, z: (q.astype(np.float32) - z) / s, "divided by the scale"),
}


@pytest.mark.slow
@pytest.mark.parametrize("answer", [params, params_from_max])
def test_q1_right_answers_match_tflite(answer):
    fb = ex.q1.evaluate(answer)
    assert fb.passed, str(fb)


def test_q1_reference_is_what_tflite_chose():  # the references the mistakes are measured against
    for lo_hi in ex.Q1_RANGES:
        scale, zero = ex.int8_reference(*lo_hi)
        assert isinstance(zero, int) and np.isclose(scale, params(*lo_hi)[0])


@pytest.mark.slow
@pytest.mark.parametrize(("answer", "fragment"), PARAMS_MISTAKES.values(), ids=list(PARAMS_MISTAKES))
def test_q1_mistakes_get_their_own_hint(answer, fragment):
    fb = ex.q1.evaluate(answer)
    assert fb.status == "incorrect" and fragment in (fb.hint or ""), str(fb)


@pytest.mark.parametrize(
    ("exercise", "answer"), [(ex.q2, quantize), (ex.q3, dequantize), (ex.q3, dequantize_float)]
)
def test_q2_q3_right_answers_pass(exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.slow
def test_q2_accepts_a_tensorflow_answer():
    assert ex.q2.evaluate(quantize_tf).passed


@pytest.mark.parametrize(("answer", "fragment"), QUANT_MISTAKES.values(), ids=list(QUANT_MISTAKES))
def test_q2_mistakes_get_their_own_hint(answer, fragment):
    fb = ex.q2.evaluate(answer)
    assert fb.status == "incorrect" and fragment in (fb.hint or ""), str(fb)


@pytest.mark.parametrize(("answer", "fragment"), DEQUANT_MISTAKES.values(), ids=list(DEQUANT_MISTAKES))
def test_q3_mistakes_get_their_own_hint(answer, fragment):
    fb = ex.q3.evaluate(answer)
    assert fb.status == "incorrect" and fragment in (fb.hint or ""), str(fb)


@pytest.mark.slow
def test_quantisation_checks_hold_under_mixed_precision(mixed_policy):
    for exercise, answer in ((ex.q1, params), (ex.q2, quantize), (ex.q3, dequantize)):
        assert exercise.evaluate(answer).passed
    assert ex.q3.evaluate(DEQUANT_MISTAKES["int8 subtraction"][0]).status == "incorrect"


# ---------------------------------------------------------------------------------------------
# Q4: the client
# ---------------------------------------------------------------------------------------------


def predict(base_url, name, images):
    r = requests.post(f"{base_url}/v1/models/{name}:predict", json={"instances": images.tolist()}, timeout=10)
    if r.status_code != 200:
        try:
            message = r.json()["error"]
        except ValueError:
            message = r.text
        raise ServingError(r.status_code, message)
    return np.array(r.json()["predictions"])


def predict_columnar(base_url, name, images):
    body = json.dumps({"inputs": {"images": np.asarray(images).tolist()}}).encode()
    request = urllib.request.Request(f"{base_url}/v1/models/{name}:predict", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.loads(r.read())["outputs"]  # a list is fine
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            text = json.loads(text)["error"]
        except ValueError:
            pass
        raise ServingError(e.code, text) from None


def predict_numpy_body(base_url, name, images):
    r = requests.post(f"{base_url}/v1/models/{name}:predict", json={"instances": images}, timeout=10)
    return np.array(r.json()["predictions"])


def predict_bare_list(base_url, name, images):
    r = requests.post(f"{base_url}/v1/models/{name}:predict", json=images.tolist(), timeout=10)
    if r.status_code != 200:
        raise ServingError(r.status_code, r.json()["error"])
    return np.array(r.json()["predictions"])


def predict_reads_outputs(base_url, name, images):
    r = requests.post(f"{base_url}/v1/models/{name}:predict", json={"instances": images.tolist()}, timeout=10)
    return np.array(r.json()["outputs"])


def predict_returns_json(base_url, name, images):
    return requests.post(
        f"{base_url}/v1/models/{name}:predict", json={"instances": images.tolist()}, timeout=10
    ).json()


def predict_no_status_check(base_url, name, images):
    r = requests.post(f"{base_url}/v1/models/{name}:predict", json={"instances": images.tolist()}, timeout=10)
    return np.array(r.json()["predictions"])


def predict_raise_for_status(base_url, name, images):
    r = requests.post(f"{base_url}/v1/models/{name}:predict", json={"instances": images.tolist()}, timeout=10)
    r.raise_for_status()
    return np.array(r.json()["predictions"])


def predict_assumes_json_errors(base_url, name, images):
    r = requests.post(f"{base_url}/v1/models/{name}:predict", json={"instances": images.tolist()}, timeout=10)
    if r.status_code != 200:
        raise ServingError(r.status_code, r.json()["error"])
    return np.array(r.json()["predictions"])


def predict_loses_message(base_url, name, images):
    r = requests.post(f"{base_url}/v1/models/{name}:predict", json={"instances": images.tolist()}, timeout=10)
    if r.status_code != 200:
        raise ServingError(r.status_code, "the server refused")
    return np.array(r.json()["predictions"])


def predict_wrong_url(base_url, name, images):
    r = requests.post(f"{base_url}/v1/models/{name}/predict", json={"instances": images.tolist()}, timeout=10)
    if r.status_code != 200:
        raise ServingError(r.status_code, r.text)
    return np.array(r.json()["predictions"])


# ---------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("answer", [predict, predict_columnar])
@pytest.mark.slow
def test_q4_right_answers_pass(answer):
    fb = ex.q4.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (predict_numpy_body, ".tolist()"),
        (predict_bare_list, "JSON object"),
        (predict_reads_outputs, '"predictions"'),
        (predict_returns_json, "not the whole JSON"),
        (predict_no_status_check, "before checking the status code"),
        (predict_raise_for_status, "raise_for_status() drops"),
        (predict_assumes_json_errors, "not always JSON"),
        (predict_loses_message, 'the "error" of its JSON'),
        (predict_wrong_url, ":predict"),
    ],
)
@pytest.mark.slow
def test_q4_mistakes_get_their_own_hint(answer, fragment):
    fb = ex.q4.evaluate(answer)
    assert fb.status == "incorrect" and fragment in (fb.hint or ""), str(fb)
    assert "Traceback" not in str(fb)


def _placeholder(*args):
    # YOUR CODE HERE
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3, ex.q4])
def test_placeholders_are_not_done(exercise):
    assert exercise.evaluate(_placeholder).status == "not_done"
    assert exercise.evaluate(...).status == "not_done"


@pytest.mark.parametrize(
    ("exercise", "args"), [(ex.q2, "x, s, z"), (ex.q4, "base_url, name, images")], ids=["q2", "q4"]
)
def test_learner_exception_is_reported_without_course_traceback(exercise, args):
    fb = exercise.evaluate(lambda *a: 1 / 0)
    assert fb.status == "error" and "ZeroDivisionError" in fb.message and "Traceback" not in str(fb)


@pytest.mark.slow
def test_scripted_server_answers_like_tf_serving():
    with ex.scripted_server() as (url, seen):
        r = requests.post(f"{url}/v1/models/digits:predict", json={"instances": [[[[1.0]]]]}, timeout=10)
        assert r.status_code == 200 and r.json() == {"predictions": [[1.0, 1.0]]}
        r = requests.post(f"{url}/v1/models/broken:predict", json={"instances": [[1]]}, timeout=10)
        assert r.status_code == 400 and r.json() == {"error": ex.BROKEN_MESSAGE}
        r = requests.post(f"{url}/v1/models/behind-proxy:predict", json={}, timeout=10)
        assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")
        assert [s["path"] for s in seen][-1] == "/v1/models/behind-proxy:predict"


@pytest.mark.slow
def test_serve_and_query_runs_the_learners_client_for_real():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")]
    )
    x = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)
    table = ex.serve_and_query(predict, model, x, np.arange(5))
    assert list(table.index) == ["label", "served prediction"]
    np.testing.assert_array_equal(
        table.loc["served prediction"].to_numpy(), model.predict(x, verbose=0).argmax(1)
    )
    fb = ex.serve_and_query(_placeholder, model, x, np.arange(5))
    assert fb.status == "not_done" and "Q4" in fb.message
