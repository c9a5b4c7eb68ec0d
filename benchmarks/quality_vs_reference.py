"""Sample quality of train_dcgan.py's fast DCGAN versus the straightforward reference, same epochs and data.

    python benchmarks/quality_vs_reference.py                 # 1 epoch on all 60,000 digits each
    python benchmarks/quality_vs_reference.py --epochs 2 --images 20000
    python benchmarks/quality_vs_reference.py --skip_reference   # only train_dcgan.py's model (the reference is slow)

Both are trained with the same seed, batch size and Adam settings on the same MNIST digits, then scored by
the script's own metrics (10,000 generated digits against the 10,000 MNIST test digits, in the feature space of
the committed MNIST classifier). The reference is the network of benchmarks/throughput.py. Prints one table.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_dcgan  # noqa: E402  (first: it quiets TensorFlow's start-up and grappler log lines)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from throughput import StraightforwardGAN  # noqa: E402


def train_reference(images, labels, epochs, seed):  # the reference uses no labels
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(seed)
    reference = StraightforwardGAN(train_dcgan.LATENT_DIM)
    reference.compile(jit_compile=False)
    data = tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=seed).batch(train_dcgan.BATCH_SIZE)
    reference.fit(data, epochs=epochs, verbose=2)
    return reference.generator


def train_script_model(images, labels, epochs, seed):
    keras.utils.set_random_seed(seed)
    config = dict(train_dcgan.DEFAULT_CONFIG, SEED=seed)
    classes = train_dcgan.run_classes([str(label) for label in np.unique(labels)], config)
    dcgan = train_dcgan.build_dcgan(config, classes=classes)
    dcgan.fit(train_dcgan.make_dataset(images, config["BATCH_SIZE"], seed, config["LATENT_DIM"],
                                       labels if classes.count else None), epochs=epochs, verbose=2)
    return dcgan.ema_generator  # the generator the script samples with and saves


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--images", type=int, default=60000, help="training digits (the first N of MNIST)")
    parser.add_argument("--seed", type=int, default=train_dcgan.SEED)
    parser.add_argument("--skip_reference", action="store_true", help="train and score only train_dcgan's model")
    args = parser.parse_args()
    data = train_dcgan.load_training_data("auto", args.seed)
    images, labels = data.images[:args.images], data.labels[:args.images]
    evaluator = train_dcgan.build_quality_evaluator(data, train_dcgan.METRICS_SAMPLES, train_dcgan.LATENT_DIM,
                                                    args.seed)
    rows = []
    candidates = [("straightforward float32", train_reference), ("train_dcgan (auto precision)", train_script_model)]
    for name, train in (candidates[1:] if args.skip_reference else candidates):
        started = time.perf_counter()
        generator = train(images, labels, args.epochs, args.seed)
        seconds = time.perf_counter() - started
        rows.append((name, seconds, evaluator.evaluate_generator(generator)))
    print(f"\n{args.epochs} epoch(s) on {len(images):,} MNIST digits, seed {args.seed}; "
          f"{train_dcgan.METRICS_SAMPLES:,} samples each vs the MNIST test digits")
    columns = ["fid", "kid", "precision", "recall", "class_entropy", "min_class_share", "mean_confidence"]
    print(f"{'model':30s} {'train s':>8s} " + " ".join(f"{c:>15s}" for c in columns))
    for name, seconds, metrics in rows:
        print(f"{name:30s} {seconds:8.0f} " + " ".join(f"{metrics[c]:15.4f}" for c in columns))


if __name__ == "__main__":
    main()
