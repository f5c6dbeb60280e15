"""Where a served request's time goes, and what server-side batching buys: lesson 11's serving table.

    python benchmarks/serving.py                      # the cpu-profile CNN, ~1 minute
    python benchmarks/serving.py --profile smoke --seconds 1

Builds lesson 11's small CNN (its width from the profile; the weights do not change the timing, so it
is not trained) for the lesson's images (MNIST, or scikit-learn's 8×8 digits offline), exports a
SavedModel and measures, each as the median of ``--repeats`` requests with a lean keep-alive client
(``http.client``):

1. one request: the server in its own process, against the floor (an empty ASGI app on uvicorn in
   its own process, same client) plus the model's signature call; the ratio is the server's own
   overhead (the target: within 1.5× of floor + model). Also the same server in a thread of this
   process (the GIL effect) and through ``requests`` (the client library's cost);
2. throughput and p50/p99 latency with 8 and 32 concurrent clients (a separate asyncio load
   generator process), with and without server-side batching.
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    parser.add_argument("--repeats", type=int, default=500, help="requests per median")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of load per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-timeout-micros", type=int, default=1000)
    args = parser.parse_args(argv)
    os.environ.setdefault("COURSE_OFFLINE", "1")

    import utils

    cfg = utils.env.setup(args.profile)
    import keras
    import requests
    import tensorflow as tf

    from utils import deploy

    data = utils.data.load_images("mnist")
    images = (data.x_test[:64, ..., None] / 255.0).astype("float32")
    width = cfg.pick(smoke=8, cpu=16)
    model = keras.Sequential(
        [
            keras.Input(images.shape[1:]),
            keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    work = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    base = work / "digits"
    spec = [tf.TensorSpec((None, *images.shape[1:]), tf.float32, name="images")]
    model.export(str(base / "1"), format="tf_saved_model", input_signature=spec, verbose=False)
    serve = tf.saved_model.load(str(base / "1")).signatures["serving_default"]
    one = images[:1]
    body = deploy.predict_body(one)
    path = "/v1/models/digits:predict"
    median_ms = lambda fn: 1e3 * deploy.time_call(fn, repeats=args.repeats, warmup=20, max_seconds=20)  # noqa: E731

    ms = {"model": median_ms(lambda: serve(images=tf.constant(one)))}
    with deploy.empty_server_process() as url, deploy.KeepAliveClient(url) as client:
        ms["floor"] = median_ms(lambda: client.post(path, body))
    with deploy.serve_in_process({"digits": base}) as url:
        with deploy.KeepAliveClient(url) as client:
            ms["process"] = median_ms(lambda: client.post(path, body))
        loads = {
            "off": [
                deploy.load_test(url, "digits", one, clients=c, seconds=args.seconds) for c in args.clients
            ]
        }
    batching = deploy.Batching(
        max_batch_size=args.max_batch_size, batch_timeout_micros=args.batch_timeout_micros
    )
    with deploy.serve_in_process({"digits": base}, batching=batching) as url:
        loads["on"] = [
            deploy.load_test(url, "digits", one, clients=c, seconds=args.seconds) for c in args.clients
        ]
    with deploy.ModelServer({"digits": base}) as server:
        with deploy.KeepAliveClient(server.url) as client:
            ms["thread"] = median_ms(lambda: client.post(path, body))
        with requests.Session() as session:
            ms["requests"] = median_ms(
                lambda: session.post(
                    server.url + path, data=body, headers={"Content-Type": "application/json"}
                )
            )
    shutil.rmtree(work)

    floor = ms["floor"] + ms["model"]
    print(
        f"\nprofile {cfg.profile}: {model.count_params():,} parameters, input {list(images.shape[1:])}, "
        f"{data.description.split('.')[0]}; {os.cpu_count()} CPU cores; one image per request; "
        f"median of up to {args.repeats} requests\n"
    )
    print("| one request | ms |\n|---|---:|")
    rows = [
        ("SavedModel signature call (the model)", ms["model"]),
        ("empty ASGI app on uvicorn, own process (the floor)", ms["floor"]),
        ("floor + model", floor),
        ("server in its own process (http.client)", ms["process"]),
        ("server in a thread of this process (http.client)", ms["thread"]),
        ("server in a thread of this process (requests)", ms["requests"]),
    ]
    for name, value in rows:
        print(f"| {name} | {value:.3f} |")
    print(
        f"\nserver / (floor + model): {ms['process'] / floor:.2f}×; the server's own work "
        f"{ms['process'] - floor:.3f} ms; GIL (thread vs process) {ms['thread'] - ms['process']:+.3f} ms; "
        f"requests vs http.client {ms['requests'] - ms['thread']:+.3f} ms\n"
    )
    print(
        f"Batching: max_batch_size={batching.max_batch_size}, batch_timeout_micros={batching.batch_timeout_micros}; "
        f"{args.seconds:g} s of load per row\n"
    )
    print("| clients | batching | req/s | p50 ms | p99 ms | errors |\n|---:|---|---:|---:|---:|---:|")
    for i, clients in enumerate(args.clients):
        for mode in ("off", "on"):
            r = loads[mode][i]
            print(
                f"| {clients} | {mode} | {r['req/s']:,.0f} | {r['p50 ms']:.2f} | {r['p99 ms']:.2f} | {r['errors']} |"
            )
    for i, clients in enumerate(args.clients):
        gain = loads["on"][i]["req/s"] / loads["off"][i]["req/s"]
        print(f"\n{clients} clients: batching on / off throughput {gain:.2f}×", end="")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
