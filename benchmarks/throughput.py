"""Training throughput: the straightforward DCGAN versus train_dcgan.py's training step, side by side.

    python benchmarks/throughput.py                    # 3 rounds of one epoch on 6,400 real digits each
    python benchmarks/throughput.py --images 3200 --rounds 5
    python benchmarks/throughput.py --ablation_policy float32   # what each part costs on a CPU without bf16 units

"Straightforward" is the seed network written the usual way: float32, Keras fit with default settings
(one step per call), batch 32, separate discriminator calls on the real and the generated batch, and a
128-channel generator (Dense 7x7x128, two 128-channel stride-2 transposed convs, a 7x7 output conv) with a
64/128-channel discriminator, about 0.6 GFLOP per training image. Every variant writes its sample grid after
each epoch, as the script does. The machine's speed drifts, so the variants take turns, one epoch each, for
several rounds; the table reports medians and the ratio to the reference's median.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import train_dcgan  # noqa: E402  (first: it quiets TensorFlow's start-up and grappler log lines)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402


class StraightforwardGAN(keras.Model):
    """The reference: two discriminator calls per update, float32, no tricks."""

    def __init__(self, latent_dim):
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = keras.Sequential([
            keras.Input((latent_dim,)),
            layers.Dense(7 * 7 * 128), layers.LeakyReLU(0.2), layers.Reshape((7, 7, 128)),
            layers.Conv2DTranspose(128, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
            layers.Conv2DTranspose(128, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
            layers.Conv2D(1, 7, padding="same", activation="sigmoid")])
        self.discriminator = keras.Sequential([
            keras.Input((28, 28, 1)),
            layers.Conv2D(64, 3, strides=2, padding="same"), layers.LeakyReLU(0.2),
            layers.Conv2D(128, 3, strides=2, padding="same"), layers.LeakyReLU(0.2),
            layers.GlobalMaxPooling2D(), layers.Dense(1, activation="sigmoid")])
        self.d_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.g_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.loss_fn = keras.losses.BinaryCrossentropy()

    def call(self, noise, training=False):
        return self.generator(noise, training=training)  # no weight average: samples come from the generator

    def train_step(self, real_images):
        batch_size = tf.shape(real_images)[0]
        fake_images = self.generator(tf.random.normal((batch_size, self.latent_dim)))
        with tf.GradientTape() as tape:
            real_scores = self.discriminator(real_images, training=True)
            fake_scores = self.discriminator(fake_images, training=True)
            d_loss = (self.loss_fn(tf.ones_like(real_scores), real_scores)
                      + self.loss_fn(tf.zeros_like(fake_scores), fake_scores))
        grads = tape.gradient(d_loss, self.discriminator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_variables))
        with tf.GradientTape() as tape:
            fake_scores = self.discriminator(self.generator(tf.random.normal((batch_size, self.latent_dim)),
                                                            training=True), training=True)
            g_loss = self.loss_fn(tf.ones_like(fake_scores), fake_scores)
        grads = tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        return {"d_loss": d_loss, "g_loss": g_loss}


def cpu_description():
    text = train_dcgan.cpuinfo()
    flags = [flag for flag in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f" {flag}" in text]
    return (f"{train_dcgan.cpu_model_name()}, {os.cpu_count()} cores, "
            f"features: {', '.join(flags) or 'none of avx512/bf16/amx'}")


class GridEachEpoch(keras.callbacks.Callback):
    """The sample grid the script writes after every epoch, from its fixed noise (its other outputs are not timed)."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.noise, _ = train_dcgan.fixed_sample_inputs(train_dcgan.SEED, train_dcgan.GRID_ROWS, train_dcgan.LATENT_DIM)

    def on_epoch_end(self, epoch, logs=None):
        train_dcgan.save_grid_png(np.asarray(self.model(self.noise, training=False)), self.path)


def build_variants(images, labels, samples_dir, ablation_policy):
    """name -> (model, dataset, sample-grid callback); each variant built under its own precision policy. The
    ablation rows (one thing left out or changed each) use the policy that PRECISION "auto" picks here, the one
    users of this CPU run."""
    variants = {}
    keras.mixed_precision.set_global_policy("float32")
    reference = StraightforwardGAN(train_dcgan.LATENT_DIM)
    reference.compile(jit_compile=False)
    # The reference's pipeline without autotuning too, so that neither side's epochs wait on its thread.
    reference_data = train_dcgan.without_autotune(
        tf.data.Dataset.from_tensor_slices(images).shuffle(len(images)).batch(train_dcgan.BATCH_SIZE))
    variants["straightforward float32"] = (reference, reference_data)
    policies = ["float32", "mixed_bfloat16"] + (["mixed_float16"] if tf.config.list_physical_devices("GPU") else [])
    defaults = {"STEPS_PER_EXECUTION": train_dcgan.STEPS_PER_EXECUTION, "R1_GAMMA": train_dcgan.R1_GAMMA,
                "NOISE_CLASS": train_dcgan.NOISE_CLASS, "DROPOUT": train_dcgan.DROPOUT, "EMA": True}
    # What each part costs (or would cost) per step: one change from the defaults per row. NOISE_CLASS off is the
    # plain DCGAN of the design card, no classes.
    changes = [{"STEPS_PER_EXECUTION": 1}, {"EMA": False}, {"R1_GAMMA": 0.0 if train_dcgan.R1_GAMMA else 1.0},
               {"NOISE_CLASS": not train_dcgan.NOISE_CLASS}, {"DROPOUT": 0.0 if train_dcgan.DROPOUT else 0.1}]
    class_names = [str(label) for label in np.unique(labels)]
    settings = [(policy, {}) for policy in policies] + [(ablation_policy, change) for change in changes]
    for policy, change in settings:
        setting = dict(defaults, **change)
        config = dict(train_dcgan.DEFAULT_CONFIG, PRECISION=policy,
                      **{name: value for name, value in setting.items() if name != "EMA"})  # EMA: not a setting
        classes = train_dcgan.run_classes(class_names, config)
        dcgan = train_dcgan.build_dcgan(config, classes=classes)
        if not setting["EMA"]:
            dcgan.update_ema_generator = lambda: None  # what the generator's weight average costs per step
        name = f"train_dcgan {policy}" + "".join(f", {key.lower()} {value}" for key, value in change.items())
        variants[name] = (dcgan, train_dcgan.make_dataset(images, config["BATCH_SIZE"], config["SEED"],
                                                          config["LATENT_DIM"],
                                                          labels if classes.count else None))
    return {name: (model, data, GridEachEpoch(os.path.join(samples_dir, f"{index}.png")))
            for index, (name, (model, data)) in enumerate(variants.items())}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=6400, help="real MNIST digits per timed epoch")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs per variant, taken in turns")
    parser.add_argument("--ablation_policy", default=train_dcgan.choose_precision("auto"),
                        help="precision policy of the rows that leave one part out (default: what 'auto' picks "
                             "here; float32 shows what a CPU without bf16 units spends on each part)")
    args = parser.parse_args()
    images, labels, _ = train_dcgan.load_digits("auto")
    images, labels = images[:args.images], labels[:args.images].astype("int32")
    with tempfile.TemporaryDirectory() as samples_dir:
        variants = build_variants(images, labels, samples_dir, args.ablation_policy)
        for model, data, grid in variants.values():  # warm-up: tracing and oneDNN kernel selection
            model.fit(data, epochs=1, verbose=0, callbacks=[grid])
        rates = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, (model, data, grid) in variants.items():
                started = time.perf_counter()
                model.fit(data, epochs=1, verbose=0, callbacks=[grid])
                rates[name].append(len(images) // train_dcgan.BATCH_SIZE * train_dcgan.BATCH_SIZE
                                   / (time.perf_counter() - started))
    reference = statistics.median(rates["straightforward float32"])
    print(f"\n{cpu_description()}; TensorFlow {tf.__version__}; {args.images} digits per epoch, "
          f"{args.rounds} alternating rounds; auto precision here: {train_dcgan.choose_precision('auto')}")
    width = max(len(name) for name in rates)
    print(f"{'variant':{width}s} {'median images/s':>16s} {'x reference':>12s}   each round")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:{width}s} {median:16.0f} {median / reference:12.2f}   {', '.join(f'{v:.0f}' for v in values)}")


if __name__ == "__main__":
    main()
