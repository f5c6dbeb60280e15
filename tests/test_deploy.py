"""utils.deploy: the TF-Serving-compatible REST server (every bad request gets a 4xx JSON error and the
server stays up), server-side batching, the gRPC endpoint for TF Serving's own client, the client and the
measuring helpers, and SavedModel / TFLite / ONNX outputs agreeing with Keras."""

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import requests

from utils import deploy
from utils.env import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

SHAPE = (4, 4, 1)
MAX_BODY, MAX_BATCH = 64 * 1024, 64


def _tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny CNN exported twice (versions 1 and 2 of model 'tiny') with an explicit signature."""
    model = _tiny_model()
    base = tmp_path_factory.mktemp("models") / "tiny"
    spec = [tf.TensorSpec((None, *SHAPE), tf.float32, name="images")]
    for version in (1, 2):
        model.export(str(base / str(version)), format="tf_saved_model", input_signature=spec, verbose=False)
    return model, base


@pytest.fixture(scope="module")
def half_plus_two(tmp_path_factory):
    """TF Serving's documented example model: y = 0.5 x + 2 on a batch of scalars."""

    class HalfPlusTwo(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": 0.5 * x + 2.0}

    path = tmp_path_factory.mktemp("models") / "half_plus_two"
    module = HalfPlusTwo()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


@pytest.fixture(scope="module")
def server(exported, half_plus_two):
    _, base = exported
    srv = deploy.ModelServer(
        {"tiny": base, "half_plus_two": half_plus_two}, max_body_bytes=MAX_BODY, max_batch=MAX_BATCH
    )
    with srv:
        yield srv


def _x(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *SHAPE), dtype=np.float32)


def _good_request_works(server, model) -> None:
    x = _x(2)
    r = requests.post(f"{server.url}/v1/models/tiny:predict", json={"instances": x.tolist()}, timeout=10)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["predictions"], model(x).numpy(), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The documented contract
# ---------------------------------------------------------------------------------------------


def test_binds_to_localhost_by_default(server):
    assert server.host == "127.0.0.1" == deploy.DEFAULT_HOST
    assert server._server.servers[0].sockets[0].getsockname()[0] == "127.0.0.1"


def test_documented_half_plus_two_examples_work_unchanged(server):
    """The request bodies and answers of TF Serving's REST documentation, sent with the standard library."""

    def post(body: str) -> dict:
        request = urllib.request.Request(
            f"{server.url}/v1/models/half_plus_two:predict", data=body.encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    assert post('{"instances": [1.0, 2.0, 5.0]}') == {"predictions": [2.5, 3.0, 4.5]}
    assert post('{"inputs": [1.0, 2.0, 5.0]}') == {"outputs": [2.5, 3.0, 4.5]}
    assert post('{"signature_name": "serving_default", "instances": [1.0]}') == {"predictions": [2.5]}
    assert post('{"instances": [{"x": 1.0}, {"x": 2.0}]}') == {"predictions": [2.5, 3.0]}
    assert post('{"inputs": {"x": [1.0, 2.0]}}') == {"outputs": [2.5, 3.0]}


def test_row_and_columnar_predictions_match_keras(server, exported):
    model, _ = exported
    x = _x(5)
    expected = model(x).numpy()
    row = requests.post(f"{server.url}/v1/models/tiny:predict", json={"instances": x.tolist()}, timeout=10)
    col = requests.post(
        f"{server.url}/v1/models/tiny/versions/1:predict", json={"inputs": {"images": x.tolist()}}, timeout=10
    )
    assert row.status_code == col.status_code == 200
    np.testing.assert_allclose(row.json()["predictions"], expected, atol=1e-6)
    np.testing.assert_allclose(col.json()["outputs"], expected, atol=1e-6)


def test_status_and_metadata(server):
    status = requests.get(f"{server.url}/v1/models/tiny", timeout=10).json()
    assert [s["version"] for s in status["model_version_status"]] == ["2", "1"]
    assert all(
        s["state"] == "AVAILABLE" and s["status"]["error_code"] == "OK"
        for s in status["model_version_status"]
    )
    one = requests.get(f"{server.url}/v1/models/tiny/versions/1", timeout=10).json()
    assert one == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    meta = requests.get(f"{server.url}/v1/models/tiny/metadata", timeout=10).json()
    assert meta["model_spec"] == {"name": "tiny", "signature_name": "", "version": "2"}
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    images = sig["inputs"]["images"]
    assert images["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "4", "4", "1"]
    assert "__saved_model_init_op" not in meta["metadata"]["signature_def"]["signature_def"]
    v1 = requests.get(f"{server.url}/v1/models/tiny/versions/1/metadata", timeout=10).json()
    assert v1["model_spec"]["version"] == "1"


# ---------------------------------------------------------------------------------------------
# Every bad request: the right 4xx, a JSON error, and the server still serves
# ---------------------------------------------------------------------------------------------

GOOD = np.zeros((1, *SHAPE)).tolist()
BAD_REQUESTS = {
    "malformed JSON": ("POST", "/v1/models/tiny:predict", b'{"instances": [1, 2', 400, "not valid JSON"),
    "not an object": ("POST", "/v1/models/tiny:predict", json.dumps(GOOD).encode(), 400, "JSON object"),
    "neither instances nor inputs": ("POST", "/v1/models/tiny:predict", b'{"x": 1}', 400, "exactly one"),
    "both instances and inputs": (
        "POST",
        "/v1/models/tiny:predict",
        json.dumps({"instances": GOOD, "inputs": GOOD}).encode(),
        400,
        "exactly one",
    ),
    "wrong shape": (
        "POST",
        "/v1/models/tiny:predict",
        json.dumps({"instances": np.zeros((2, 3, 3, 1)).tolist()}).encode(),
        400,
        "expected shape [-1, 4, 4, 1], got [2, 3, 3, 1]",
    ),
    "ragged instances": (
        "POST",
        "/v1/models/tiny:predict",
        json.dumps({"instances": [np.zeros(SHAPE).tolist(), [[0.0]]]}).encode(),
        400,
        "ragged",
    ),
    "strings instead of numbers": (
        "POST",
        "/v1/models/tiny:predict",
        json.dumps({"instances": np.full((1, *SHAPE), "a").tolist()}).encode(),
        400,
        "expected numbers",
    ),
    "booleans": (
        "POST",
        "/v1/models/tiny:predict",
        json.dumps({"instances": np.full((1, *SHAPE), True).tolist()}).encode(),
        400,
        "booleans",
    ),
    "null": ("POST", "/v1/models/tiny:predict", b'{"instances": [null]}', 400, "expected numbers"),
    "NaN": (
        "POST",
        "/v1/models/tiny:predict",
        json.dumps({"instances": [[[[float("nan")]] * 4] * 4]}).encode(),
        400,
        "NaN",
    ),
    "infinity": (
        "POST",
        "/v1/models/tiny:predict",
        json.dumps({"instances": [[[[float("inf")]] * 4] * 4]}).encode(),
        400,
        "infinity",
    ),
    "overflows float32": (
        "POST",
        "/v1/models/tiny:predict",
        json.dumps({"instances": [[[[1e300]] * 4] * 4]}).encode(),
        400,
        "too large",
    ),
    "empty batch": ("POST", "/v1/models/tiny:predict", b'{"instances": []}', 400, "empty"),
    "empty columnar batch": ("POST", "/v1/models/tiny:predict", b'{"inputs": []}', 400, "shape"),
    "unknown signature": (
        "POST",
        "/v1/models/tiny:predict",
        json.dumps({"signature_name": "nope", "instances": GOOD}).encode(),
        400,
        "signature 'nope' not found",
    ),
    "wrong input name": (
        "POST",
        "/v1/models/tiny:predict",
        json.dumps({"inputs": {"pixels": GOOD}}).encode(),
        400,
        "images",
    ),
    "body over the size limit": (
        "POST",
        "/v1/models/tiny:predict",
        b'{"instances": [' + b"0.0, " * (MAX_BODY // 5) + b"0.0]}",
        413,
        "larger than the limit",
    ),
    "batch over the limit": (
        "POST",
        "/v1/models/tiny:predict",
        json.dumps({"instances": np.zeros((MAX_BATCH + 1, *SHAPE), dtype=int).tolist()}).encode(),
        413,
        "more than the limit",
    ),
    "unknown model": (
        "POST",
        "/v1/models/nosuch:predict",
        json.dumps({"instances": GOOD}).encode(),
        404,
        "nosuch",
    ),
    "unknown model status": ("GET", "/v1/models/nosuch", None, 404, "not served"),
    "unknown version": (
        "POST",
        "/v1/models/tiny/versions/7:predict",
        json.dumps({"instances": GOOD}).encode(),
        404,
        "no version 7",
    ),
    "unknown version status": ("GET", "/v1/models/tiny/versions/7", None, 404, "no version 7"),
    "unknown version metadata": ("GET", "/v1/models/tiny/versions/7/metadata", None, 404, "no version 7"),
    "non-numeric version": ("POST", "/v1/models/tiny/versions/x:predict", b"{}", 404, "No route"),
    "GET on predict": ("GET", "/v1/models/tiny:predict", None, 405, "not allowed"),
    "POST on status": ("POST", "/v1/models/tiny", b"{}", 405, "not allowed"),
    "unknown verb": ("POST", "/v1/models/tiny:classify", b"{}", 404, "No route"),
    "unknown route": ("GET", "/v2/anything", None, 404, "No route"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_bad_request_gets_4xx_json_error_and_server_stays_up(server, exported, case):
    method, path, body, status, fragment = BAD_REQUESTS[case]
    r = requests.request(method, server.url + path, data=body, timeout=10)
    assert r.status_code == status, (case, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert isinstance(error, str) and fragment.lower() in error.lower(), error
    _good_request_works(server, exported[0])


def test_chunked_body_over_the_limit_is_refused(server, exported):
    """A body sent without a Content-Length is counted as it arrives."""
    chunks = (b"0.0, " * 2000 for _ in range(20))  # 200 kB in chunks; requests sends it chunked
    r = requests.post(f"{server.url}/v1/models/tiny:predict", data=chunks, timeout=10)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    _good_request_works(server, exported[0])


def test_client_returns_predictions_and_raises_the_servers_message(server, exported):
    x = _x(3)
    got = deploy.rest_predict(server.url, "tiny", x, version=2)
    np.testing.assert_allclose(got, exported[0](x).numpy(), atol=1e-6)
    with pytest.raises(deploy.ServingError, match="nosuch") as info:
        deploy.rest_predict(server.url, "nosuch", x)
    assert info.value.status == 404
    with pytest.raises(deploy.ServingError, match="expected shape") as info:
        deploy.rest_predict(server.url, "tiny", x[:, :3])
    assert info.value.status == 400


# ---------------------------------------------------------------------------------------------
# Server-side batching and the gRPC endpoint
# ---------------------------------------------------------------------------------------------


def test_batching_options_are_checked():
    with pytest.raises(ValueError, match="max_batch_size"):
        deploy.Batching(max_batch_size=0)
    with pytest.raises(ValueError, match="batch_timeout_micros"):
        deploy.Batching(batch_timeout_micros=-1)


@pytest.mark.slow
def test_batching_answers_each_concurrent_client_with_its_own_rows(exported):
    """Clients sending at once (1, 2 or 3 instances each) are batched together and each gets its own rows."""
    model, base = exported
    batching = deploy.Batching(max_batch_size=16, batch_timeout_micros=50_000)
    inputs = {i: _x(1 + i % 3, seed=100 + i) for i in range(12)}
    got, start = {}, threading.Barrier(len(inputs))
    with deploy.ModelServer({"tiny": base}, batching=batching) as server:

        def client(i: int) -> None:
            with deploy.KeepAliveClient(server.url) as c:
                start.wait()
                for _ in range(3):
                    got[i] = json.loads(c.post("/v1/models/tiny:predict", deploy.predict_body(inputs[i])))

        threads = [threading.Thread(target=client, args=(i,)) for i in inputs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        stats = server.app.batch_stats
        _good_request_works(server, model)  # a lone request is not held longer than the timeout
        bad = requests.post(f"{server.url}/v1/models/tiny:predict", json={"instances": [[1]]}, timeout=10)
        assert bad.status_code == 400  # refused before the queue, and the server stays up
        _good_request_works(server, model)
    for i, x in inputs.items():
        np.testing.assert_allclose(got[i]["predictions"], model(x).numpy(), atol=1e-6)
    assert stats["instances"] >= 3 * sum(len(x) for x in inputs.values())
    assert stats["mean batch size"] > 1.5, stats  # requests really ran together


def test_grpc_endpoint_answers_tf_servings_own_client_with_the_rest_numbers(exported):
    grpc = pytest.importorskip("grpc")
    apis = pytest.importorskip("tensorflow_serving.apis")
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    model, base = exported
    x = _x(3, seed=7)
    with deploy.ModelServer({"tiny": base}, grpc_port=0) as server:
        assert apis and server.grpc_target.startswith("127.0.0.1:")
        rest = deploy.rest_predict(server.url, "tiny", x)
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest()  # as TF Serving's client examples build it
            request.model_spec.name = "tiny"
            request.model_spec.signature_name = "serving_default"
            request.inputs["images"].CopyFrom(tf.make_tensor_proto(x))
            response = stub.Predict(request, 10.0)
            assert response.model_spec.version.value == 2  # the latest version answered
            request.model_spec.version.value = 1
            np.testing.assert_array_equal(
                tf.make_ndarray(stub.Predict(request, 10.0).outputs["output_0"]), rest
            )
            bad = predict_pb2.PredictRequest()
            bad.model_spec.name = "nosuch"
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(bad, 10.0)
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            request.inputs["images"].CopyFrom(tf.make_tensor_proto(x[:, :3]))
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(request, 10.0)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "expected shape" in info.value.details()
    out = tf.make_ndarray(response.outputs["output_0"])
    np.testing.assert_array_equal(out, rest)
    np.testing.assert_allclose(out, model(x).numpy(), atol=1e-6)


@pytest.mark.slow
def test_server_in_its_own_process_the_floor_and_the_load_generator(exported):
    model, base = exported
    x = _x(1)
    body = deploy.predict_body(x)
    with deploy.empty_server_process() as floor, deploy.KeepAliveClient(floor) as client:
        assert floor.startswith("http://127.0.0.1:")
        assert json.loads(client.post("/v1/models/any:predict", body)) == {"predictions": [[0.0]]}
    with deploy.serve_in_process({"tiny": base}, batching=deploy.Batching(max_batch_size=4)) as url:
        assert url.startswith("http://127.0.0.1:")
        np.testing.assert_allclose(deploy.rest_predict(url, "tiny", x), model(x).numpy(), atol=1e-6)
        result = deploy.load_test(url, "tiny", x, clients=4, seconds=0.5, warmup=0.2)
    assert result["clients"] == 4 and result["requests"] > 10 and result["errors"] == 0, result
    assert result["req/s"] > 0 and 0 < result["p50 ms"] <= result["p99 ms"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        child = deploy._child_server(["empty", "--port", str(taken.getsockname()[1])], timeout=60)
        with pytest.raises(RuntimeError, match="did not start"), child:
            pass


# ---------------------------------------------------------------------------------------------
# Starting, stopping, loading safely
# ---------------------------------------------------------------------------------------------


def test_stop_frees_the_port_and_a_new_server_can_take_it(exported):
    _, base = exported
    first = deploy.ModelServer({"tiny": base / "1"}).start()
    port = first.port
    assert requests.get(f"{first.url}/v1/models/tiny", timeout=10).status_code == 200
    first.stop()
    assert not first.running
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    with deploy.ModelServer({"tiny": base / "1"}, port=port) as second:
        assert second.port == port
        assert requests.get(f"{second.url}/v1/models/tiny/versions/1", timeout=10).status_code == 200


def test_only_savedmodel_directories_are_loaded(tmp_path):
    keras_file = tmp_path / "model.keras"
    keras_file.write_bytes(b"PK\x03\x04")  # the start of a zip file, as a .keras file is
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(b"\x80\x04K\x01.")
    for path in (keras_file, pickled, tmp_path):
        with pytest.raises(ValueError, match="not a SavedModel"):
            deploy.load_servable(path)


def test_savedmodel_that_reads_files_is_refused(tmp_path):
    class Reader(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def serve(self, filename):
            return {"content": tf.io.read_file(filename)}

    module = Reader()
    tf.saved_model.save(module, str(tmp_path / "reader"), signatures={"serving_default": module.serve})
    assert "ReadFile" in deploy.saved_model_ops(tmp_path / "reader")
    with pytest.raises(ValueError, match="ReadFile"):
        deploy.load_servable(tmp_path / "reader")


def test_import_utils_deploy_imports_no_tensorflow():
    code = (
        "import sys, utils; utils.deploy; "
        "assert not {'tensorflow', 'uvicorn', 'grpc'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# SavedModel, TFLite and ONNX agree with Keras
# ---------------------------------------------------------------------------------------------


def test_savedmodel_signature_matches_keras(exported):
    model, base = exported
    x = _x(8)
    loaded = tf.saved_model.load(str(base / "1"))
    out = loaded.signatures["serving_default"](images=tf.constant(x))
    np.testing.assert_allclose(next(iter(out.values())).numpy(), model(x).numpy(), atol=1e-6)


@pytest.mark.parametrize(
    ("mode", "atol"),
    # float32 is the same arithmetic; dynamic range rounds the weights to 8 bits; int8 also the
    # activations and the input and output (an output step is 1/256 of a probability).
    [("float32", 1e-5), ("dynamic", 0.02), ("int8", 0.05)],
)
def test_tflite_matches_keras(exported, mode, atol):
    model, base = exported
    x = _x(16, seed=2)
    content = deploy.to_tflite(base / "1", mode, representative=_x(64, seed=3))
    lite = deploy.TFLiteModel(content)
    assert lite.input_dtype == (np.int8 if mode == "int8" else np.float32)
    if mode == "int8":  # q = round(x / s) + z, clipped to the int8 range
        scale, zero = lite.input_quantization
        assert scale > 0
        expected_q = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
        np.testing.assert_array_equal(lite.quantize(x), expected_q)
    expected = model(x).numpy()
    for batch in (x[:1], x):  # one sample, then a batch (the interpreter resizes its input)
        got = lite(batch)
        assert got.shape == (len(batch), 3) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected[: len(batch)], atol=atol)


def test_tflite_int8_needs_representative_data(exported):
    with pytest.raises(ValueError, match="representative"):
        deploy.to_tflite(exported[1] / "1", "int8")


def test_onnx_matches_keras(exported):
    model, base = exported
    x = _x(16, seed=4)
    onnx_model = deploy.OnnxModel(deploy.to_onnx(base / "1"))
    assert onnx_model.input_name == "images"
    np.testing.assert_allclose(onnx_model(x), model(x).numpy(), atol=1e-5)
    np.testing.assert_allclose(onnx_model(x[:1]), model(x[:1]).numpy(), atol=1e-5)


def test_time_call_takes_the_median(monkeypatch):
    # perf_counter: the start, then (before, after) for each call: 1 ms, one 499 ms outlier, 1 ms
    ticks = iter([0.0, 0.0, 0.001, 1.0, 1.499, 2.0, 2.001])
    monkeypatch.setattr(deploy.time, "perf_counter", lambda: next(ticks))
    assert deploy.time_call(lambda: None, repeats=3, warmup=0) == pytest.approx(0.001)
    ticks = iter([0.0, 0.0, 0.001, 1.0, 1.499])
    np.testing.assert_allclose(deploy.time_calls(lambda: None, repeats=2, warmup=0), [0.001, 0.499])


def test_latency_rows_and_size(tmp_path):
    rows = deploy.latency_rows({"sum": np.sum}, {"one": np.ones((1, 3)), "batch": np.ones((8, 3))}, repeats=5)
    assert [(r["path"], r["input"], r["batch"]) for r in rows] == [("sum", "one", 1), ("sum", "batch", 8)]
    assert all(r["ms per call"] > 0 and r["samples/s"] > 0 for r in rows)
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"x" * 5)
    assert deploy.size_bytes(tmp_path) == 15 and deploy.size_bytes(tmp_path / "a") == 10


def test_urlopen_sees_a_json_error_too(server):
    request = urllib.request.Request(f"{server.url}/v1/models/tiny:predict", data=b"[", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400 and "error" in json.loads(info.value.read())


# ---------------------------------------------------------------------------------------------
# Exports stay float32 however the model was trained (mixed_float16 on a GPU, mixed_bfloat16 on a TPU)
# ---------------------------------------------------------------------------------------------


def _nested_cnn() -> keras.Model:
    """The tiny CNN with a nested model and batch normalisation, under the active dtype policy."""
    inner = keras.Sequential(
        [keras.Input(SHAPE), keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.BatchNormalization()]
    )
    inputs = keras.Input(SHAPE)
    x = keras.layers.Flatten()(inner(inputs))
    # The output layer is float32, as the course builds classifiers.
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", dtype="float32")(x))


@pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
def mixed_model(request):
    """(compute dtype, the nested CNN built under a mixed policy); restores float32 afterwards."""
    keras.mixed_precision.set_global_policy(request.param)
    try:
        keras.utils.set_random_seed(0)
        yield request.param.removeprefix("mixed_"), _nested_cnn()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _export(model, path):
    spec = [tf.TensorSpec((None, *SHAPE), tf.float32, name="images")]
    model.export(str(path), format="tf_saved_model", input_signature=spec, verbose=False)
    return path


def test_float32_model_returns_a_float32_model_as_it_is(exported):
    model, base = exported
    assert deploy.float32_model(model) is model
    assert deploy.low_precision_dtypes(base / "1") == set()


def test_float32_model_copies_a_mixed_model_with_its_weights(mixed_model):
    low, model = mixed_model
    assert model.layers[1].layers[0].compute_dtype == low
    copy = deploy.float32_model(model)
    assert copy is not model
    assert {layer.compute_dtype for layer in copy._flatten_layers()} == {"float32"}
    for a, b in zip(copy.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # The same weights, in float32: exactly the arithmetic of a float32 model with these weights ...
    keras.mixed_precision.set_global_policy("float32")
    reference = _nested_cnn()
    reference.set_weights(model.get_weights())
    x = _x(8)
    np.testing.assert_allclose(copy(x).numpy(), reference(x).numpy(), atol=1e-6)
    # ... and the mixed model's outputs within its precision's rounding.
    from utils.env import tolerance

    np.testing.assert_allclose(copy(x).numpy(), model(x).numpy(), **tolerance(low))


def test_mixed_exports_are_refused_by_the_converters_with_the_fix(mixed_model, tmp_path):
    low, model = mixed_model
    raw = _export(model, tmp_path / "raw")
    assert deploy.low_precision_dtypes(raw) == {low}
    with pytest.raises(ValueError, match=f"computes in {low}.*float32_model"):
        deploy.to_tflite(raw)
    with pytest.raises(ValueError, match=f"computes in {low}.*float32_model"):
        deploy.to_onnx(raw)


@pytest.mark.slow
def test_float32_copy_exports_float32_in_and_out_everywhere(mixed_model, tmp_path):
    _, model = mixed_model
    copy = deploy.float32_model(model)
    path = _export(copy, tmp_path / "tiny" / "1")
    assert deploy.low_precision_dtypes(path) == set()
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    assert fn.structured_input_signature[1]["images"].dtype == tf.float32
    assert all(spec.dtype == tf.float32 for spec in fn.structured_outputs.values())
    x = _x(16, seed=5)
    expected = copy(x).numpy()
    for mode in ("float32", "float16"):
        lite = deploy.TFLiteModel(deploy.to_tflite(path, mode))
        assert lite.input_dtype == np.float32
        got = lite(x)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-5 if mode == "float32" else 1e-3)
    np.testing.assert_allclose(deploy.OnnxModel(deploy.to_onnx(path))(x), expected, atol=1e-5)
    with deploy.ModelServer({"tiny": tmp_path / "tiny"}) as server:
        served = deploy.rest_predict(server.url, "tiny", x)
    np.testing.assert_allclose(served, expected, atol=1e-6)


@pytest.mark.slow
def test_tflite_float16_halves_the_weights(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256), keras.layers.Dense(3)])
    path = _export_vector(model, tmp_path / "dense")
    full, half = deploy.to_tflite(path, "float32"), deploy.to_tflite(path, "float16")
    assert len(half) < 0.6 * len(full)


def _export_vector(model, path):
    spec = [tf.TensorSpec((None, 64), tf.float32, name="x")]
    model.export(str(path), format="tf_saved_model", input_signature=spec, verbose=False)
    return path


def test_tflite_unknown_mode_is_refused(exported):
    with pytest.raises(ValueError, match="float16"):
        deploy.to_tflite(exported[1] / "1", "float8")


def test_converter_chatter_is_hidden_in_both_log_formats_and_errors_are_kept(capfd):
    # TF 2.21 logs in absl's format; TF 2.20 (Colab) in TensorFlow's older one. Both INFO and
    # WARNING lines of the converter are chatter a learner cannot act on; an error must show.
    chatter = [
        "W0000 00:00:1764860992.125486   123 flatbuffer_export.cc:3705] Skipping runtime version metadata",
        "2026-12-04 16:49:52.125486: W tensorflow/compiler/mlir/lite/flatbuffer_export.cc:3705] "
        "Skipping runtime version metadata in the model. This will be generated by the exporter.",
        "2026-12-04 16:49:52.125486: I tensorflow/compiler/mlir/lite/quantization/lite/quantize_model.cc] x",
    ]
    error = (
        "2026-12-04 16:49:52.125486: E tensorflow/compiler/mlir/lite/flatbuffer_export.cc] op not supported"
    )
    with deploy._quiet_converter():
        os.write(2, ("\n".join([*chatter, error]) + "\n").encode())
    assert capfd.readouterr().err.strip() == error
