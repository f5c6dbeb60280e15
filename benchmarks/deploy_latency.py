"""Latency, throughput, size and accuracy of every way lesson 11 runs its CNN, in one run.

    python benchmarks/deploy_latency.py                  # cpu-profile model, 200 calls per median
    python benchmarks/deploy_latency.py --repeats 50 --profile smoke

Trains the lesson's small CNN on digits (offline: scikit-learn's 8×8 digits), exports a SavedModel,
converts it to TFLite (float32, dynamic range, int8) and ONNX, serves it with the course's
TF-Serving-compatible REST server on 127.0.0.1, and times each path on one image and on a batch
of 64: the median of ``--repeats`` calls (the machine is shared, so single calls are noisy).
Prints a markdown table and the ratio of ``model.predict`` to the served path for one image.
Where a served request's time goes, and server-side batching under load: ``benchmarks/serving.py``.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    parser.add_argument("--repeats", type=int, default=200, help="calls per median")
    args = parser.parse_args(argv)
    os.environ.setdefault("COURSE_OFFLINE", "1")

    import utils

    cfg = utils.env.setup(args.profile)
    import keras
    import numpy as np
    import requests
    import tensorflow as tf

    from utils import deploy

    tf.get_logger().setLevel("WARNING")
    data = utils.data.load_images("mnist")
    print(data.description)
    prep = lambda a: (a[..., None] / 255.0).astype("float32")  # noqa: E731
    x_train, y_train = (
        prep(data.x_train[: cfg.limit(len(data.x_train))]),
        data.y_train[: cfg.limit(len(data.x_train))],
    )
    x_test, y_test = (
        prep(data.x_test[: cfg.limit(len(data.x_test))]),
        data.y_test[: cfg.limit(len(data.x_test))],
    )
    width = cfg.pick(smoke=8, cpu=16)
    model = keras.Sequential(
        [
            keras.Input(x_train.shape[1:]),
            keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=cfg.pick(smoke=4, cpu=15), batch_size=32, verbose=0)

    work = Path(tempfile.mkdtemp(prefix="deploy-latency-"))
    signature = [tf.TensorSpec((None, *x_train.shape[1:]), tf.float32, name="images")]
    export_dir = work / "digits" / "1"
    model.export(str(export_dir), format="tf_saved_model", input_signature=signature, verbose=False)
    model.save(work / "digits.keras")
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    tflite = {m: deploy.to_tflite(export_dir, m, x_train[:300]) for m in ("float32", "dynamic", "int8")}
    onnx_bytes = deploy.to_onnx(export_dir)
    graph_fn = tf.function(lambda x: model(x, training=False), input_signature=signature)
    session = requests.Session()

    with deploy.ModelServer({"digits": work / "digits"}) as server:
        paths = {
            "model.predict": lambda x: model.predict(x, verbose=0),
            "model(x), direct": lambda x: model(x, training=False),
            "tf.function": graph_fn,
            "SavedModel signature": lambda x: serve(images=tf.constant(x))["output_0"],
            **{f"TFLite {m}": deploy.TFLiteModel(b) for m, b in tflite.items()},
            "onnxruntime": deploy.OnnxModel(onnx_bytes),
            "REST server, end to end": lambda x: deploy.rest_predict(
                server.url, "digits", x, session=session
            ),
        }
        sizes = {
            "model.predict": deploy.size_bytes(work / "digits.keras"),
            "SavedModel signature": deploy.size_bytes(export_dir),
            **{f"TFLite {m}": len(b) for m, b in tflite.items()},
            "onnxruntime": len(onnx_bytes),
            "REST server, end to end": deploy.size_bytes(export_dir),
        }
        keras_probs = model.predict(x_test, verbose=0)
        accuracy, agreement = {}, {}
        for name, fn in paths.items():
            probs = np.concatenate([np.asarray(fn(x_test[i : i + 64])) for i in range(0, len(x_test), 64)])
            accuracy[name] = float(np.mean(probs.argmax(1) == y_test))
            agreement[name] = float(np.abs(probs - keras_probs).max())
        inputs = {"1": x_test[:1], "64": x_test[:64]}
        rows = deploy.latency_rows(paths, inputs, repeats=args.repeats, max_seconds=30)
    session.close()

    ms = {(r["path"], r["input"]): r["ms per call"] for r in rows}
    throughput = {(r["path"], r["input"]): r["samples/s"] for r in rows}
    print(
        f"\nprofile {cfg.profile}, {model.count_params():,} parameters, {len(x_test)} test images, "
        f"median of up to {args.repeats} calls, {os.cpu_count()} CPU cores (shared: expect noise)\n"
    )
    print(
        "| path | size (KB) | test accuracy | max abs diff vs Keras | ms, 1 image | ms, batch of 64 | images/s, batch of 64 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in paths:
        size = f"{sizes[name] / 1024:.0f}" if name in sizes else "(in memory)"
        print(
            f"| {name} | {size} | {accuracy[name]:.3f} | {agreement[name]:.1e} | {ms[(name, '1')]:.3f} | "
            f"{ms[(name, '64')]:.3f} | {throughput[(name, '64')]:,.0f} |"
        )
    ratio = ms[("model.predict", "1")] / ms[("REST server, end to end", "1")]
    print(
        f"\nmodel.predict / REST server end to end, one image: {ratio:.1f}× "
        f"({ms[('model.predict', '1')]:.2f} ms vs {ms[('REST server, end to end', '1')]:.2f} ms)"
    )
    import shutil

    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
