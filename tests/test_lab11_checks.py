"""Lab 11's checks: right answers pass however they are written, each usual mistake gets its own
message, placeholders are "not done yet"."""

import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import requests

from utils.checks import lab11 as ex
from utils.deploy import ServingError
from utils.env import import_tensorflow

tf = import_tensorflow()

# ---------------------------------------------------------------------------------------------
# Answers: right ones, written differently, and the usual mistakes
# ---------------------------------------------------------------------------------------------


def export_model(model, export_dir):
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="images")
    model.export(export_dir, format="tf_saved_model", input_signature=[spec], verbose=False)


def export_archive(model, export_dir):  # the long way round, with keras.export.ExportArchive
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32, name="images")
    archive.add_endpoint("serving_default", model.call, input_signature=[spec])
    archive.write_out(export_dir, verbose=False)


def export_default_name(model, export_dir):
    model.export(export_dir, format="tf_saved_model", verbose=False)


def export_fixed_shape(model, export_dir):
    spec = tf.TensorSpec((None, 8, 8, 1), tf.float32, name="images")
    model.export(export_dir, format="tf_saved_model", input_signature=[spec], verbose=False)


def export_batch_of_one(model, export_dir):
    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name="images")
    model.export(export_dir, format="tf_saved_model", input_signature=[spec], verbose=False)


def export_float64(model, export_dir):
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float64, name="images")
    model.export(export_dir, format="tf_saved_model", input_signature=[spec], verbose=False)


def export_keras_file(model, export_dir):
    model.save(export_dir + ".keras")


def ready(base_url, name):
    r = requests.get(f"{base_url}/v1/models/{name}", timeout=10)
    return r.status_code == 200 and any(v["state"] == "AVAILABLE" for v in r.json()["model_version_status"])


def ready_urllib(base_url, name):
    try:
        with urllib.request.urlopen(f"{base_url}/v1/models/{name}", timeout=10) as r:
            status = json.loads(r.read())
    except urllib.error.HTTPError:
        return False
    return "AVAILABLE" in [v["state"] for v in status["model_version_status"]]


def ready_no_status_check(base_url, name):
    r = requests.get(f"{base_url}/v1/models/{name}", timeout=10)
    return any(v["state"] == "AVAILABLE" for v in r.json()["model_version_status"])


def ready_ignores_state(base_url, name):
    return requests.get(f"{base_url}/v1/models/{name}", timeout=10).status_code == 200


def ready_returns_json(base_url, name):
    return requests.get(f"{base_url}/v1/models/{name}", timeout=10).json()


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
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exercise", "answer"),
    [
        (ex.q1, export_model),
        (ex.q1, export_archive),
        (ex.q2, ready),
        (ex.q2, ready_urllib),
        (ex.q3, predict),
        (ex.q3, predict_columnar),
    ],
)
@pytest.mark.slow
def test_right_answers_pass(exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.parametrize(
    ("exercise", "answer", "fragment"),
    [
        (ex.q1, export_default_name, "name='images'"),
        (ex.q1, export_fixed_shape, "model.input_shape"),
        (ex.q1, export_batch_of_one, "None as the first dimension"),
        (ex.q1, export_float64, "tf.float32"),
        (ex.q1, export_keras_file, "model.save writes a .keras file"),
        (ex.q2, ready_no_status_check, "status_code"),
        (ex.q2, ready_ignores_state, "'state'"),
        (ex.q2, ready_returns_json, "True or False"),
        (ex.q3, predict_numpy_body, ".tolist()"),
        (ex.q3, predict_bare_list, "JSON object"),
        (ex.q3, predict_reads_outputs, "'predictions'"),
        (ex.q3, predict_returns_json, "not the whole JSON"),
        (ex.q3, predict_no_status_check, "before checking the status code"),
        (ex.q3, predict_raise_for_status, "raise_for_status() drops"),
        (ex.q3, predict_assumes_json_errors, "not always JSON"),
        (ex.q3, predict_loses_message, "response.json()['error']"),
        (ex.q3, predict_wrong_url, ":predict"),
    ],
)
def test_usual_mistakes_get_their_own_message(exercise, answer, fragment):
    fb = exercise.evaluate(answer)
    assert fb.status == "incorrect", str(fb)
    assert fragment in (fb.hint or ""), str(fb)
    assert "Traceback" not in str(fb)


def _placeholder(*args):
    # YOUR CODE HERE
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3])
def test_placeholders_are_not_done(exercise):
    assert exercise.evaluate(_placeholder).status == "not_done"
    assert exercise.evaluate(...).status == "not_done"


def test_learner_exception_is_reported_without_course_traceback():
    def broken(base_url, name, images):
        return 1 / 0

    fb = ex.q3.evaluate(broken)
    assert fb.status == "error" and "ZeroDivisionError" in fb.message and "Traceback" not in str(fb)


def test_scripted_server_answers_like_tf_serving():
    with ex.scripted_server() as (url, seen):
        assert requests.get(f"{url}/v1/models/ready", timeout=10).json()["model_version_status"][0][
            "state"
        ] == ("AVAILABLE")
        r = requests.post(f"{url}/v1/models/broken:predict", json={"instances": [[1]]}, timeout=10)
        assert r.status_code == 400 and r.json() == {"error": ex.BROKEN_MESSAGE}
        r = requests.post(f"{url}/v1/models/behind-proxy:predict", json={}, timeout=10)
        assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")
        assert [s["path"] for s in seen] == [
            "/v1/models/ready",
            "/v1/models/broken:predict",
            "/v1/models/behind-proxy:predict",
        ]


@pytest.mark.slow
def test_serve_and_query_runs_the_learners_answers_for_real():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")]
    )
    x = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)
    table = ex.serve_and_query(export_model, ready, predict, model, x, np.arange(5))
    assert list(table.index) == ["label", "served prediction"]
    np.testing.assert_array_equal(
        table.loc["served prediction"].to_numpy(), model.predict(x, verbose=0).argmax(1)
    )
    fb = ex.serve_and_query(_placeholder, ready, predict, model, x, np.arange(5))
    assert fb.status == "not_done" and "Q1" in fb.message


# ---------------------------------------------------------------------------------------------
# Q1 under mixed precision: a learner on a GPU (float16) or a TPU (bfloat16) writes the same code
# ---------------------------------------------------------------------------------------------


def export_float32_copy(model, export_dir):  # lesson 11's way: the float32 copy, same weights
    from utils.deploy import float32_model

    export_model(float32_model(model), export_dir)


def export_casts_to_float16(model, export_dir):  # a float16 answer: not a served interface
    import keras

    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="images")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", lambda x: tf.cast(model(x), tf.float16), input_signature=[spec])
    archive.write_out(export_dir, verbose=False)


@pytest.mark.slow
@pytest.mark.parametrize("answer", [export_model, export_archive, export_float32_copy])
def test_q1_right_answers_pass_under_mixed_precision(mixed_policy, answer):
    fb = ex.q1.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (export_fixed_shape, "model.input_shape"),
        (export_float64, "tf.float32"),
        (export_casts_to_float16, "answers in float32"),
    ],
)
@pytest.mark.slow
def test_q1_mistakes_are_named_under_mixed_precision(mixed_policy, answer, fragment):
    fb = ex.q1.evaluate(answer)
    assert fb.status == "incorrect" and fragment in (fb.hint or ""), str(fb)
