"""Where the default training step spends its time, by TensorFlow op type, under one precision policy.

    python benchmarks/profile_step.py                      # the policy PRECISION "auto" picks here
    python benchmarks/profile_step.py --policy float32     # as on a CPU without bf16 units

One epoch of 3,200 real digits is traced with TensorFlow's profiler after a warm-up epoch, and the ops' self
times are summed by type (the host's idle time left out). The trace is read with the converter TensorFlow
ships for TensorBoard's profile plugin (a module of TensorFlow's own, not a public API: it may move).
"""
import argparse
import collections
import glob
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import train_dcgan  # noqa: E402  (first: it quiets TensorFlow's start-up lines)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin  # noqa: E402


def op_self_times(trace_path):
    """{op type: total self time in microseconds} from a profiler trace (.xplane.pb), idle time left out."""
    converted = _pywrap_profiler_plugin.xspace_to_tools_data([trace_path], "framework_op_stats", {})
    table = json.loads(converted[0] if isinstance(converted, tuple) else converted)[0]
    columns = [column["id"] for column in table["cols"]]
    times = collections.Counter()
    for row in table["rows"]:
        values = {name: (cell or {}).get("v") for name, cell in zip(columns, row["c"])}
        if values["type"] != "IDLE":
            times[values["type"]] += values["total_self_time"]
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default=train_dcgan.choose_precision("auto"))
    parser.add_argument("--top", type=int, default=12, help="op types to list")
    args = parser.parse_args()
    data = train_dcgan.load_training_data("auto", train_dcgan.SEED, max_train_images=3200)
    config = dict(train_dcgan.DEFAULT_CONFIG, PRECISION=args.policy)
    classes = train_dcgan.run_classes(data.class_names, config)
    keras.utils.set_random_seed(0)
    dcgan = train_dcgan.build_dcgan(config, classes=classes)
    dataset = train_dcgan.make_dataset(data.images, config["BATCH_SIZE"], 0, config["LATENT_DIM"],
                                       data.labels if classes.count else None)
    dcgan.fit(dataset, epochs=1, verbose=0)  # warm-up: tracing and oneDNN's kernel choice
    with tempfile.TemporaryDirectory() as log_dir:
        tf.profiler.experimental.start(log_dir)
        dcgan.fit(dataset, epochs=1, verbose=0)
        tf.profiler.experimental.stop()
        times = op_self_times(glob.glob(os.path.join(log_dir, "**", "*.xplane.pb"), recursive=True)[0])
    total = sum(times.values())
    print(f"\n{train_dcgan.cpu_model_name()}, {os.cpu_count()} cores, policy {args.policy}: "
          f"{total / 1e6:.2f} s of op time for 3,200 digits (summed over threads)")
    for op_type, microseconds in times.most_common(args.top):
        print(f"{microseconds / total:6.1%}  {op_type}")


if __name__ == "__main__":
    main()
