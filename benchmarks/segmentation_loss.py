"""Lesson 05c's U-Net trained on cross-entropy alone and on cross-entropy + soft Dice, same everything else.

    python benchmarks/segmentation_loss.py                 # the lesson's cpu settings, seeds 42 and 7
    python benchmarks/segmentation_loss.py --seeds 1 --profile smoke
    python benchmarks/segmentation_loss.py --loss ce    # only the cross-entropy runs (the lesson is the other)

The lesson trains with ``det.segmentation_loss`` (cross-entropy + 1 − mean soft Dice) and says what plain
cross-entropy reaches with the same scenes, epochs, schedule and initial weights; this script measures it.
Prints one row per (seed, loss): training time, mean IoU over the five classes (background included), each
class's IoU, and the objects-vs-background IoU per image, on 400 held-out scenes.
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7])
    parser.add_argument(
        "--loss", choices=["both", "ce", "dice"], default="both", help="which trainings to run"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("COURSE_OFFLINE", "1")

    import utils

    rows = []
    for seed in args.seeds:
        cfg = utils.env.setup(args.profile, seed=seed)
        import keras
        import numpy as np

        from utils import detection as det

        # the lesson's settings (notebooks/05c_detection_and_segmentation.ipynb, section 5)
        width, epochs = cfg.pick(smoke=8, cpu=12, gpu=16), cfg.pick(smoke=1, cpu=6, gpu=20)
        n_seg, batch = cfg.pick(smoke=160, cpu=1200, gpu=8000), 16
        train = det.make_scenes(n_seg, size=64, seed=seed)
        test = det.make_scenes(cfg.pick(smoke=60, cpu=400, gpu=1000), size=64, seed=seed + 1)
        for name, dice_weight in (("cross-entropy", 0.0), ("cross-entropy + soft Dice", 1.0)):
            if args.loss != "both" and (dice_weight > 0) != (args.loss == "dice"):
                continue
            keras.utils.set_random_seed(seed)
            model = det.unet(64, 5, width=width, depth=3)
            schedule = keras.optimizers.schedules.CosineDecay(3e-3, epochs * math.ceil(n_seg / batch))
            model.compile(
                optimizer=keras.optimizers.Adam(schedule),
                loss=lambda y, p, w=dice_weight: det.segmentation_loss(y, p, dice_weight=w),
            )
            start = time.perf_counter()
            model.fit(train.images, train.masks, epochs=epochs, batch_size=batch, verbose=0)
            seconds = time.perf_counter() - start
            pred = keras.ops.convert_to_numpy(model.predict(test.images, verbose=0)).argmax(-1)
            ious = det.class_iou(pred, test.masks, 5)
            fg = det.mask_iou(pred > 0, test.masks > 0).mean()
            per = ", ".join(f"{v:.2f}" for v in ious)
            rows.append(f"| {seed} | {name} | {seconds:.0f} | {np.nanmean(ious):.3f} | {per} | {fg:.3f} |")
            print(rows[-1], flush=True)
    print(f"\nprofile {args.profile}, {os.cpu_count()} CPU cores\n")
    print(
        "| seed | loss | training (s) | mean IoU | IoU per class (background, 1-4) | objects' IoU per image |"
    )
    print("|---:|---|---:|---:|---|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
