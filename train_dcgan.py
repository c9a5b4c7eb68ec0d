"""Train a DCGAN on MNIST handwritten digits, on a CPU, in one file.

    python train_dcgan.py                          # 50 epochs on the 60,000 MNIST training digits
    python train_dcgan.py --epochs 2 --max_train_images 2048 --output_dir /tmp/run
    python train_dcgan.py --generate 100           # digits from the saved generator, no training
    python train_dcgan.py --generate 100 --pretrained   # ... from the committed pretrained/generator.keras
    python train_dcgan.py --evaluate               # quality metrics of the saved generator
    python train_dcgan.py --interpolate            # interpolation.gif: digits morphing through the latent space
    python train_dcgan.py --help                   # every constant below, with its default

Every setting is an UPPERCASE constant right below; each one can be overridden from the command line by its
lower-case name. Outputs go to OUTPUT_DIR (see README.md for what each file is). Killing a run and starting the
same command again resumes from the last finished epoch; a larger --epochs continues a finished run.
"""
import argparse
import collections
import contextlib
import csv
import errno
import glob
import gzip
import hashlib
import json
import math
import os
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
import zlib


def _import_tensorflow_and_keras():
    """Import TensorFlow and Keras 3 as this script needs them, leaving the environment as it was. Keras 3 would
    otherwise follow a KERAS_BACKEND of "jax" or "torch". TensorFlow's C++ log shows warnings and errors only, and on
    a machine without an NVIDIA driver not even errors: there its GPU probe logs "failed call to cuInit ... UNKNOWN
    ERROR (303)" on every healthy run. (TensorFlow's own start-up notes, "oneDNN custom operations are on" and the
    like, come before any log level applies; they are harmless.)"""
    wanted = {"KERAS_BACKEND": "tensorflow",
              "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL",
                                                     "2" if os.path.exists("/proc/driver/nvidia") else "3")}
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        import keras
        import tensorflow
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if keras.backend.backend() != "tensorflow":
        raise ImportError(f"train_dcgan needs Keras on TensorFlow, and this Python imported Keras on "
                          f"{keras.backend.backend()} before it. Start a fresh Python (restart the notebook's kernel).")
    return keras, tensorflow


try:
    keras, tf = _import_tensorflow_and_keras()
except KeyboardInterrupt:
    if __name__ != "__main__":
        raise
    print("interrupted while TensorFlow was loading; nothing was written.", file=sys.stderr)
    sys.exit(130)
import filelock  # noqa: E402
import h5py  # noqa: E402
import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402
from keras import layers  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402  (not pyplot: no backend is chosen, none is changed)
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError  # noqa: E402

# ----------------------------------------------------------------------------------------------------------------
# Constants: every tunable of the script. Override any of them as `--lower_case_name value`.
# ----------------------------------------------------------------------------------------------------------------
DATA = "auto"              # "auto" (data/mnist.npz, else Keras' loader), a .npz, an IDX folder or an image folder
MAX_TRAIN_IMAGES = 0       # train on N digits drawn at random (fixed by SEED) only (0 = all); for quick runs
OUTPUT_DIR = "outputs"     # where samples, GIF, models, CSVs and the resume checkpoint go
EPOCHS = 50                # passes over the training digits
BATCH_SIZE = 32            # real digits per training step (and as many generated ones), over all devices together
LATENT_DIM = 128           # length of the generator's noise vector
G_CHANNELS = 128           # generator channels at 7x7; halved at 14x14, quartered at 28x28
D_CHANNELS = 32            # discriminator channels at 14x14; doubled at 7x7
DROPOUT = 0.0              # discriminator dropout rate (0 = none: R1_GAMMA regularises D instead)
D_GROUP_STD = 2            # D also sees how much digits differ in groups of this many (minibatch std-dev; 0 = off)
D_LEARNING_RATE = 4e-4     # Adam learning rate of the discriminator
G_LEARNING_RATE = 4e-4     # Adam learning rate of the generator
LR_DROP_AT = 0.8           # after this fraction of EPOCHS both rates drop to LR_DROP_FACTOR of theirs (1 = never)
LR_DROP_FACTOR = 0.25      # ... the fraction of the learning rates kept for the run's last epochs
R1_GAMMA = 0.1             # weight of D's gradient penalty on real digits (R1; 0 = off), applied every 16th step
BETA_1 = 0.5               # Adam beta_1 of both (0.5 is the DCGAN paper's value)
EMA_DECAY = 0.999          # samples and generator.keras average G's weights with this decay per step (0 = the latest)
STRATEGY = "auto"          # "auto" (all GPUs mirrored when there are several), "mirrored", "multiworker" (TF_CONFIG)
PRECISION = "auto"         # "auto" (bfloat16 on CPUs with bf16 units, float16 on GPUs, else float32) or a policy
STEPS_PER_EXECUTION = 25   # training steps per call from Python; higher = less overhead, coarser progress bar
GRID_ROWS = 10             # the sample grid is GRID_ROWS x GRID_ROWS digits from fixed noise
GIF_FRAME_SECONDS = 0.2    # how long each epoch's frame shows in the GIF
INTERPOLATION_FRAMES = 96  # frames of interpolation.gif (--interpolate): a loop through 4 latent points per digit
METRICS_EVERY = 10         # FID, KID, precision/recall, class balance after epoch 1, every N and the last (0 = never)
METRICS_SAMPLES = 10000    # generated digits per metrics evaluation
SEED = 42                  # fixes weight initialisation, noise, shuffling and the sample grid's noise
CONDITIONAL = False        # 1: learn to draw the class you ask for (--generate N --digit 7); needs labelled data
NOISE_CLASS = True         # the noise's first components pick each digit's class, learnt from the labels (needs them)

IMAGE_SHAPE = (28, 28, 1)  # MNIST's; every data source is converted to it
DEFAULT_CONFIG = {name: value for name, value in list(globals().items())
                  if name.isupper() and isinstance(value, (int, float, str))}
MIN_METRICS_SAMPLES = 100  # fewer generated digits make FID, KID and the k-NN precision/recall meaningless
R1_INTERVAL = 16           # steps between two R1 penalties (each weighted 16-fold), StyleGAN2's lazy schedule
SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
MNIST_PATH = os.path.join(SCRIPT_DIR, "data", "mnist.npz")  # MNIST's 70,000 digits (data/README.md: why, licence)


class FixableError(Exception):
    """Bad data, settings or paths. The message names the problem and how to fix it."""


class TrainingDivergedError(Exception):
    """A loss became NaN or infinite; the last good epoch's outputs and checkpoint are kept."""


# ------------------------------------------------------------------------------------------------------------------
# MNIST and the input pipeline: every source becomes float32 digits in [0, 1], shape (N, 28, 28, 1), white on black
# ------------------------------------------------------------------------------------------------------------------
def to_unit_float(uint8_images):
    """uint8 digits (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1]."""
    return (np.asarray(uint8_images, dtype=np.float32) / 255.0).reshape((-1,) + IMAGE_SHAPE)


def load_digits(data, split="train"):
    """(images, labels or None, description of the source) for DATA; see the DATA constant. For split "test":
    the source's own test split, or None when it has none (an image folder, an npz without x_test)."""
    if data == "auto":
        if os.path.exists(MNIST_PATH):
            return (*load_npz(MNIST_PATH, split), f"MNIST {split} digits from {MNIST_PATH}")
        return (*load_keras_mnist(split), f"MNIST {split} digits from keras.datasets.mnist")
    if not os.path.exists(data):
        raise FixableError(f"--data {data!r} does not exist. Give a .npz file, a folder of MNIST IDX files or a "
                            f"folder of images, or leave it as 'auto' for MNIST.")
    if os.path.isfile(data):
        if not data.endswith(".npz"):
            raise FixableError(f"--data {data!r} is a file but not a .npz. Give a Keras-format mnist.npz, "
                                f"a folder of IDX files or a folder of images.")
        loaded, source = load_npz(data, split), f"{split} digits from {data}"
    elif find_idx_file(data, "train-images-idx3-ubyte") or find_idx_file(data, "t10k-images-idx3-ubyte"):
        loaded, source = load_idx_folder(data, split), f"{split} digits from the IDX files in {data}"
    else:
        loaded, source = load_image_folders(data, split)
    return None if loaded is None else (*loaded, source)


# The reference is what the metrics compare with; `pool` every training image before MAX_TRAIN_IMAGES picks some,
# from which the metrics' real-data floor is drawn. `path`: DATA resolved ("auto" stays).
TrainingData = collections.namedtuple(
    "TrainingData", "images labels class_names source reference reference_name pool path")


def load_training_data(data, seed, max_train_images=0):
    """The images to train on, their class indices and class names (None and [] for unlabelled data), and the real
    images the metrics compare with: the source's own test split, or else a held-out tenth, set aside before
    training and never trained on."""
    images, labels, source = load_digits(data, "train")
    test = load_digits(data, "test")
    if test is not None:
        reference, reference_name = test[0], f"the {len(test[0]):,} {test[2]}"
    else:
        images, labels, reference = hold_out(images, labels, seed)
        reference_name = f"{len(reference):,} images held out of {source} before training"
    pool = images
    if max_train_images and max_train_images < len(images):
        # A random sample (fixed by SEED), not the first N: files come sorted, so an image folder of class
        # folders 0/ 1/ 2/ ... would otherwise give only zeros.
        keep = np.sort(np.random.default_rng(seed).choice(len(images), max_train_images, replace=False))
        images, labels = images[keep], None if labels is None else labels[keep]
    class_indices, class_names = encode_labels(labels) if labels is not None else (None, [])
    return TrainingData(images, class_indices, class_names, source, reference, reference_name, pool,
                        data if data == "auto" else os.path.abspath(data))


def make_dataset(images, batch_size, seed, latent_dim, labels=None):
    """tf.data batches of (real digits, noise for the generated ones), and with `labels` each real digit's class
    index as a third element, the batch ordered by class; reshuffled and re-drawn every epoch; whole batches only.

    Shuffling indices and gathering a batch at a time costs one op per batch instead of one per digit. The
    noise is drawn here rather than in train_step so that, under tf.distribute, each device gets the slice of
    noise that belongs to its slice of the batch: N devices then compute exactly what one device would.
    """
    images = tf.constant(images)
    labels = None if labels is None else tf.constant(labels, tf.int32)

    def gather_with_noise(indices, noise_seed):
        noise = tf.random.stateless_normal((tf.shape(indices)[0], latent_dim), seed=noise_seed)
        if labels is None:
            return tf.gather(images, indices), noise
        # Digits of one class side by side (the generated ones are asked for the same classes), so that the
        # discriminator's minibatch std-dev groups (D_GROUP_STD) mostly hold one class: the spread it then
        # compares is that of a class's hands, which a generator drawing each class's typical strokes lacks,
        # rather than the gap between a 1 and an 8, which any mix of classes shows.
        indices = tf.gather(indices, tf.argsort(tf.gather(labels, indices), stable=True))
        return tf.gather(images, indices), noise, tf.gather(labels, indices)

    batches = (tf.data.Dataset.range(len(images))
               .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
               .batch(batch_size, drop_remainder=True))
    noise_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return without_autotune(tf.data.Dataset.zip((batches, noise_seeds)).map(gather_with_noise).prefetch(2))


def without_autotune(dataset):
    """The dataset with tf.data's autotuning off. With it on, the iterator's destructor at each epoch's end waits
    for the autotune thread's next wake-up (10 ms, doubling), so epochs end at exactly 10.24, 40.96 or 81.92 s."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


# ------------------------------------------------------------------------------------------------------------------
# The models: the generator (noise -> a 28x28 digit) and the discriminator (a digit -> a real/fake logit)
# ------------------------------------------------------------------------------------------------------------------
# How a generator takes the class of the digit it draws: `count` classes (0: it knows none), picked by the largest
# of its noise's first `count` components (`from_noise`, NOISE_CLASS) or given as a second input (CONDITIONAL).
GeneratorClasses = collections.namedtuple("GeneratorClasses", "count from_noise")
NO_CLASSES = GeneratorClasses(0, False)


def run_classes(class_names, config):
    """The one decision of how many classes a run's models know and how its generator takes them: the data's
    classes, when it has two or more and CONDITIONAL or NOISE_CLASS is on (CONDITIONAL wins); else none."""
    if len(class_names) < 2 or not (config["CONDITIONAL"] or config["NOISE_CLASS"]):
        return NO_CLASSES
    return GeneratorClasses(len(class_names), from_noise=not config["CONDITIONAL"])


def generator_classes(generator):
    """The same, read back from a built or saved generator."""
    if len(generator.inputs) == 2:
        return GeneratorClasses(generator.get_layer("class_vector").input_dim, from_noise=False)
    count = next((layer.output.shape[-1] for layer in generator.layers if layer.name == "noise_class"), 0)
    return GeneratorClasses(count, from_noise=bool(count))


def generator_inputs(classes, noise, labels=None):
    """What a generator that takes `classes` is fed for digits of classes `labels`: the noise alone, arranged to
    pick them when the noise picks the class, or the noise and the labels."""
    if not classes.count:
        return noise
    if classes.from_noise:
        return noise_for_classes(noise, labels, classes.count)
    return [noise, labels]


def build_generator(latent_dim, channels, classes=NO_CLASSES):
    """Noise (n, latent_dim) -> digits (n, 28, 28, 1) in [0, 1]: Dense, Reshape, two stride-2 transposed convs
    (7x7 -> 14x14 -> 28x28), then a 3x3 conv with a sigmoid. With `classes` (a GeneratorClasses, see
    run_classes) a learned vector per class joins the noise: the input is the noise alone, whose largest of the
    first `classes.count` components names the class (see noise_for_classes), or [noise, class index (n,)].

    The last conv at full resolution gives the strokes a layer of their own. The 7x7 and 14x14 layers are
    normalised within each digit (its 7x7 features, then each position's channels, as in Karras et al. 2018), not
    over the batch, so the generator that is sampled is the one the discriminator trained. The 28x28 layer, the
    largest, is not: normalising it cost about a tenth of the step and bought no FID or recall (docs/experiments.md).
    The output layer computes in float32 under mixed precision so the sigmoid saturates cleanly.
    """
    body = [
        layers.Dense(7 * 7 * channels, use_bias=False),
        layers.LayerNormalization(),
        layers.LeakyReLU(0.2),
        layers.Reshape((7, 7, channels)),
        layers.Conv2DTranspose(channels // 2, 3, strides=2, padding="same", use_bias=False),  # 14x14
        layers.LayerNormalization(),
        layers.LeakyReLU(0.2),
        layers.Conv2DTranspose(channels // 4, 3, strides=2, padding="same"),  # 28x28
        layers.LeakyReLU(0.2),
        layers.Conv2D(1, 3, padding="same", activation="sigmoid", dtype="float32"),
    ]
    if not classes.count:
        return keras.Sequential([keras.Input((latent_dim,)), *body], name="generator")
    # The class enters once, through the first Dense layer: concatenating a class vector to the noise there
    # equals a learned per-class offset of every 7x7 feature, which the following layers carry into the strokes.
    noise = keras.Input((latent_dim,), name="noise")
    if classes.from_noise:
        # Keras has no argmax layer, so the one-hot class is a softmax of the first components scaled 100,000-fold
        # (standard layers only: the saved model loads anywhere). In float32, since bfloat16's 8-bit mantissa
        # would make near-equal components tie. A Dense layer without bias on a one-hot row is a class lookup.
        first = layers.Reshape((latent_dim, 1), dtype="float32")(noise)
        first = layers.Reshape((classes.count,), dtype="float32")(
            layers.Cropping1D((0, latent_dim - classes.count), dtype="float32")(first))
        one_hot = layers.Softmax(dtype="float32", name="noise_class")(layers.Rescaling(1e5, dtype="float32")(first))
        inputs, class_vector = noise, layers.Dense(32, use_bias=False, name="class_vector")(one_hot)
    else:
        label = keras.Input((), dtype="int32", name="label")
        inputs, class_vector = [noise, label], layers.Embedding(classes.count, 32, name="class_vector")(label)
    features = layers.Concatenate()([noise, class_vector])
    for layer in body:
        features = layer(features)
    return keras.Model(inputs, features, name="generator")


def noise_for_classes(noise, labels, classes):
    """`noise` with, in each row, its largest of the first `classes` components swapped into place `labels`, so
    that a generator whose noise picks the class draws those classes. A swap keeps the components' joint
    distribution, so the rest of the noise is as random as before."""
    noise = tf.convert_to_tensor(noise)
    head = noise[:, :classes]
    labels = tf.cast(labels, tf.int32)
    largest = tf.reduce_max(head, axis=1, keepdims=True)
    at_label = tf.gather(head, labels, batch_dims=1)[:, None]
    is_label = tf.one_hot(labels, classes) > 0
    is_largest = tf.one_hot(tf.argmax(head, axis=1, output_type=tf.int32), classes) > 0
    head = tf.where(is_label, largest, tf.where(is_largest, at_label, head))
    return tf.concat([head, noise[:, classes:]], axis=1)


def build_discriminator(channels, dropout, group_std=0, classes=0):
    """Digits (n, 28, 28, 1) -> one real/fake logit each: two stride-2 convs with LeakyReLU and Dropout (at rate 0,
    the default, it passes its input on untouched), and with `group_std` > 0 the within-group spread as an extra
    7x7 feature map before the output. With `classes` > 0 the inputs are [digits, class index (n,)] and the logit
    also says whether the digit fits its class."""
    body = [
        layers.Conv2D(channels, 4, strides=2, padding="same"),  # 14x14
        layers.LeakyReLU(0.2),
        layers.Dropout(dropout),
        layers.Conv2D(channels * 2, 4, strides=2, padding="same"),  # 7x7
        layers.LeakyReLU(0.2),
        layers.Dropout(dropout),
        *([GroupStdDev(group_std)] if group_std else []),
        layers.Flatten(),
    ]
    realness = layers.Dense(1, dtype="float32")  # a logit: the loss applies the sigmoid, in float32
    if not classes:
        return keras.Sequential([keras.Input(IMAGE_SHAPE), *body, realness], name="discriminator")
    image = keras.Input(IMAGE_SHAPE, name="image")
    features = image
    for layer in body:
        features = layer(features)
    # A projection discriminator (Miyato & Koyama 2018): the logit gains the dot product of the digit's features
    # with a learned vector of its class. Unlike label maps stacked onto the image, the class costs one dot
    # product instead of wider convolutions, and D is asked the question directly: "is this a real 7?".
    label = keras.Input((), dtype="int32", name="label")
    class_vector = layers.Embedding(classes, features.shape[-1], name="class_projection")(label)
    fit_to_class = RowDot(dtype="float32")([features, class_vector])
    return keras.Model([image, label], layers.Add(dtype="float32")([realness(features), fit_to_class]),
                       name="discriminator")


# ------------------------------------------------------------------------------------------------------------------
# The DCGAN: both models and one training step of each, run by model.fit
# ------------------------------------------------------------------------------------------------------------------
class DCGAN(keras.Model):
    """A discriminator update on a batch of real and generated digits, then a generator update, per step.

    The generator that samples, is evaluated and is saved is `ema_generator`: the trained generator's weights
    averaged over the last ~1/(1 - ema_decay) steps. A GAN's generator keeps circling its equilibrium instead
    of settling; the average sits nearer the middle and draws cleaner digits (Yazici et al. 2019).
    """

    def __init__(self, generator, discriminator, ema_decay, r1_gamma=0.0, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.ema_decay = ema_decay
        self.r1_gamma = r1_gamma
        # With classes, D judges each digit against its class, and G draws the real batch's classes: asked through
        # its noise or through its second input.
        self.classes = generator_classes(generator)
        # Under tf.distribute Keras divides each replica's loss by the number of replicas, so that the gradients
        # summed over devices are one batch's; the losses added here are divided alike, and the logs multiplied back.
        self.replicas = tf.distribute.get_strategy().num_replicas_in_sync
        self.ema_generator = keras.models.clone_model(generator)
        self.ema_generator.set_weights(generator.get_weights())
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.real_score_tracker = keras.metrics.Mean(name="d_real")  # D's mean probability that real is real
        self.fake_score_tracker = keras.metrics.Mean(name="d_fake")  # ... and that generated is real
        self.built = True  # both parts are built Sequentials; saving the weights needs the flag

    def compile(self, d_optimizer, g_optimizer, loss_fn, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        # Optimizer moments exist only after build; building now lets a checkpoint restore them.
        d_optimizer.build(self.discriminator.trainable_variables)
        g_optimizer.build(self.generator.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras (3.15, TensorFlow backend) overrides this under tf.distribute to pull one batch from the
        # iterator and build compiled losses and metrics on it. This model compiles neither; the pull crashes
        # under MultiWorkerMirroredStrategy (keras-team/keras#20585) and, under MirroredStrategy, uses up the
        # epoch's first batch. Both models are already built, so there is nothing to do.
        return

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.real_score_tracker, self.fake_score_tracker]

    def call(self, noise, training=False):
        return self.ema_generator(noise, training=training)

    def dense_gradients(self, gradients):
        """The gradients, with the class tables' made dense. An Embedding's gradient comes as IndexedSlices, one row
        per lookup, and MirroredStrategy's all-gather refuses the devices' differing row counts ("Shape mismatch in
        the collective"). Dense on every device count, so that N devices make the updates one device makes (Adam
        then also moves a class the batch lacked, by its moments); a table of ten rows costs nothing dense."""
        return [tf.convert_to_tensor(grad) if isinstance(grad, tf.IndexedSlices) else grad for grad in gradients]

    def update_ema_generator(self):
        # The decay ramps up over the first steps (as in tf.train.ExponentialMovingAverage), so the average
        # forgets the random initial weights quickly.
        steps = tf.cast(self.g_optimizer.iterations, "float32")
        decay = tf.minimum(self.ema_decay, (1.0 + steps) / (10.0 + steps))
        for average, weight in zip(self.ema_generator.weights, self.generator.weights):
            average.assign(decay * average + (1.0 - decay) * weight)

    def generator_loss(self, fake_logits):
        """Minus D's logit on generated digits: the cross-entropy against "real" minus that against "fake". Unlike
        DCGAN's -log sigmoid(logit) it does not fade for digits D already calls real, so G keeps learning from all
        of them (docs/experiments.md, until 2026-11-23). Written through the cross-entropy so that it is
        reduced over the batch and across devices exactly as D's loss is."""
        return (self.loss_fn(tf.ones_like(fake_logits), fake_logits)
                - self.loss_fn(tf.zeros_like(fake_logits), fake_logits))

    def discriminate(self, images, labels):
        """D's real/fake logits; `labels`: [] or, in a run with classes, [the digits' classes]."""
        return self.discriminator([images, *labels] if labels else images, training=True)

    def real_gradient_penalty(self, real_images, labels):
        """R1 (Mescheder et al. 2018): gamma/2 times the squared gradient of D's logit with respect to real digits.
        A discriminator whose verdict changes steeply around the real digits pushes the generator back and forth
        across them; penalising the slope there lets both settle. Computed every R1_INTERVAL-th step only, and
        scaled up by as much ("lazy" regularisation, Karras et al. 2020): the same average pull for a sixteenth
        of the cost. `labels`: [] or, in a run with classes, [the digits' classes]."""
        real_images = tf.convert_to_tensor(real_images)  # a tape watches tensors only (train_step on NumPy batches)

        def penalty():
            with tf.GradientTape() as tape:
                tape.watch(real_images)
                logit_sum = tf.reduce_sum(self.discriminate(real_images, labels))
            slopes = tf.cast(tape.gradient(logit_sum, real_images), "float32")
            squared_slopes = tf.reduce_mean(tf.reduce_sum(tf.square(slopes), [1, 2, 3]))
            return 0.5 * self.r1_gamma * R1_INTERVAL * squared_slopes / self.replicas

        return tf.cond(self.d_optimizer.iterations % R1_INTERVAL == 0, penalty, lambda: 0.0)

    def train_step(self, data):
        # In a run with classes the batches carry the real digits' classes ([] else); the generated digits are
        # asked for the same classes, so the discriminator cannot tell real from generated by how often one comes.
        real_images, noise, *labels = data
        batch_size = tf.shape(real_images)[0]
        ones = tf.ones((batch_size, 1))
        zeros = tf.zeros((batch_size, 1))

        # One batch of generated digits serves both updates (as in PyTorch's DCGAN example): the discriminator
        # learns from it, then the generator is scored on it by the updated discriminator. A second generator
        # pass on fresh noise would cost a quarter of the generator's work per step.
        with tf.GradientTape() as g_tape:
            fake_images = self.generator(generator_inputs(self.classes, noise, *labels), training=True)
            # Discriminator: one call on real and generated digits together, half the calls of two batches.
            with tf.GradientTape() as d_tape:
                both = tf.concat([real_images, tf.stop_gradient(fake_images)], axis=0)
                logits = self.discriminate(both, [tf.concat([label, label], axis=0) for label in labels])
                d_loss = self.loss_fn(tf.concat([ones, zeros], axis=0), logits)
                penalty = self.real_gradient_penalty(real_images, labels) if self.r1_gamma else 0.0
                scaled_loss = self.d_optimizer.scale_loss(d_loss + penalty)  # float16 loss scaling; else a no-op
            grads = self.dense_gradients(d_tape.gradient(scaled_loss, self.discriminator.trainable_variables))
            self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_variables))

            # Generator: the same digits, scored by the just-updated discriminator, labelled "real".
            g_loss = self.generator_loss(self.discriminate(fake_images, labels))
            scaled_loss = self.g_optimizer.scale_loss(g_loss)
        grads = self.dense_gradients(g_tape.gradient(scaled_loss, self.generator.trainable_variables))
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        self.update_ema_generator()

        scores = tf.sigmoid(logits)
        self.d_loss_tracker.update_state(d_loss * self.replicas)  # the true batch losses (see __init__)
        self.g_loss_tracker.update_state(g_loss * self.replicas)
        self.real_score_tracker.update_state(tf.reduce_mean(scores[:batch_size]))
        self.fake_score_tracker.update_state(tf.reduce_mean(scores[batch_size:]))
        logs = {m.name: m.result() for m in self.metrics}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras averages multi-worker logs over their first axis, which scalars do not have.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs


def build_dcgan(config, strategy=None, classes=NO_CLASSES, policy=None, steps_per_execution=None):
    """Generator, discriminator and the compiled DCGAN, built in the strategy's scope under `policy` (default: the
    one PRECISION resolves to); `classes` (see run_classes): what both models know of the classes.
    `steps_per_execution`: default STEPS_PER_EXECUTION."""
    strategy = strategy or tf.distribute.get_strategy()
    policy = policy or choose_precision(config["PRECISION"])
    keras.mixed_precision.set_global_policy(policy)

    def adam(learning_rate):
        optimizer = keras.optimizers.Adam(learning_rate, beta_1=config["BETA_1"])
        # float16 gradients underflow without loss scaling; bfloat16 has float32's range and needs none.
        return keras.optimizers.LossScaleOptimizer(optimizer) if policy == "mixed_float16" else optimizer

    with strategy.scope():
        dcgan = DCGAN(build_generator(config["LATENT_DIM"], config["G_CHANNELS"], classes),
                      build_discriminator(config["D_CHANNELS"], config["DROPOUT"], config["D_GROUP_STD"],
                                          classes.count),
                      config["EMA_DECAY"], config["R1_GAMMA"])
        dcgan.compile(
            d_optimizer=adam(config["D_LEARNING_RATE"]),
            g_optimizer=adam(config["G_LEARNING_RATE"]),
            loss_fn=keras.losses.BinaryCrossentropy(from_logits=True),
            steps_per_execution=steps_per_execution or config["STEPS_PER_EXECUTION"],
            jit_compile=False,  # XLA on CPU bypasses oneDNN's fast kernels
        )
    return dcgan


# ------------------------------------------------------------------------------------------------------------------
# Each epoch: the learning rates as it starts; grid, logs, metrics, models and checkpoint as it ends; last, the GIF
# ------------------------------------------------------------------------------------------------------------------
class LearningRateDrop(keras.callbacks.Callback):
    """Sets both learning rates as each epoch starts: the configured ones, and LR_DROP_FACTOR of them for the epochs
    after LR_DROP_AT of the run. At full rates the two models keep circling their equilibrium; smaller steps let
    them settle nearer it (docs/experiments.md, "a quarter of the learning rates for the last fifth").

    Keras' LearningRateScheduler sets `model.optimizer` only, not the two this model has. Set from the epoch, the
    rates are right on a resumed run too, whatever rate the checkpoint's Adam saved beside its moments."""

    def __init__(self, learning_rates, last_epoch, drop_at, drop_factor):
        super().__init__()
        self.learning_rates = learning_rates  # [discriminator's, generator's]
        self.first_dropped_epoch = first_dropped_epoch(last_epoch, drop_at)
        self.drop_factor = drop_factor
        self.drops = self.first_dropped_epoch <= last_epoch and drop_factor != 1

    def describe(self):
        """The log's line on the rates."""
        rates = f"learning rates: discriminator {self.learning_rates[0]:g}, generator {self.learning_rates[1]:g}"
        return rates + (f"; {self.drop_factor:g} of them from epoch {self.first_dropped_epoch} on (LR_DROP_AT)"
                        if self.drops else "")

    def on_epoch_begin(self, epoch, logs=None):
        factor = self.drop_factor if epoch + 1 >= self.first_dropped_epoch else 1.0
        for optimizer, learning_rate in zip([self.model.d_optimizer, self.model.g_optimizer], self.learning_rates):
            optimizer.learning_rate = learning_rate * factor


def first_dropped_epoch(last_epoch, drop_at):
    """The first epoch (counting from 1) trained at the dropped learning rates; last_epoch + 1 when none is."""
    return round(drop_at * last_epoch) + 1


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops the run at the first NaN or infinite loss, before the bad epoch's outputs overwrite the last good ones.
    keras.callbacks.TerminateOnNaN watches only logs["loss"], which a GAN reporting d_loss/g_loss never has."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        self.stop_if_not_finite(logs, f"at step {batch + 1} of epoch {self.epoch}")

    def on_epoch_end(self, epoch, logs=None):
        self.stop_if_not_finite(logs, f"at the end of epoch {epoch + 1}")

    @staticmethod
    def stop_if_not_finite(logs, where):
        bad = {k: float(v) for k, v in (logs or {}).items() if k in ("d_loss", "g_loss") and not math.isfinite(v)}
        if bad:
            raise TrainingDivergedError(
                f"{', '.join(f'{k}={v}' for k, v in bad.items())} {where}. The outputs and checkpoint of the last "
                f"finished epoch are kept; lower --d_learning_rate/--g_learning_rate or use --precision float32, then "
                f"run again to resume from that epoch.")


class EpochOutputs(keras.callbacks.Callback):
    """Everything the run keeps, written when an epoch ends, in the order on_epoch_end gives.

    Keras' BackupAndRestore would write the checkpoint in place (a kill while it writes leaves a corrupt one) and
    restore only `model.optimizer`, not the two this model has, so the checkpoint is written here, atomically.
    """

    def __init__(self, output_dir, last_epoch, images_per_epoch, grid, evaluator=None, metrics_every=0,
                 class_names=(), history_rows=(), metrics_rows=(), run_facts=None, plain_log=False):
        super().__init__()
        self.output_dir = output_dir
        self.last_epoch = last_epoch
        self.images_per_epoch = images_per_epoch
        self.grid_inputs, self.grid_rows = grid
        self.evaluator = evaluator
        self.metrics_every = metrics_every
        self.class_names = list(class_names)
        self.history_rows = list(history_rows)
        self.metrics_rows = list(metrics_rows)
        self.run_facts = run_facts or {}  # what state.json says of the whole run: its config, policy, spans
        self.plain_log = plain_log
        self.tensorboard = None
        self.notebook_grid = None
        self.bytes_per_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_started = epoch + 1, time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        epoch += 1
        logs["epoch_seconds"] = time.perf_counter() - self.epoch_started
        logs["images_per_s"] = self.images_per_epoch / logs["epoch_seconds"]
        # A full disk is found before writing: h5py, failing halfway through a checkpoint, crashes the interpreter.
        self.bytes_per_epoch = self.bytes_per_epoch or bytes_per_epoch(self.model)  # the same every epoch
        free, needed = shutil.disk_usage(self.output_dir).free, self.bytes_per_epoch
        try:
            if free < needed:
                raise OSError(errno.ENOSPC, f"{free / 2 ** 20:.1f} MB free, about {needed / 2 ** 20:.0f} MB needed")
            grid = self.write_grid(epoch)
            self.write_history(epoch, logs)
            quality = self.write_metrics(epoch) if self.metrics_due(epoch) else {}
            self.write_models()
            self.write_checkpoint(epoch)  # a run killed before this resumes at this epoch and rewrites the above so
            self.write_tensorboard(epoch, logs, quality, grid)  # after the checkpoint: no epoch is logged twice
        except OSError as error:
            raise FixableError(f"epoch {epoch} could not be saved in {self.output_dir} ({error.strerror or error}). "
                                f"{f'Epoch {epoch - 1} is kept whole' if epoch > 1 else 'Nothing is lost'}: "
                                f"make room on that disk (or fix the folder), then run the same command again to "
                                f"resume from there.") from None
        if self.plain_log:  # stdout is no terminal (`> train.log`), where Keras' progress bar is left out
            losses = ", ".join(f"{name} {float(logs[name]):.4f}" for name in ("d_loss", "g_loss", "d_real", "d_fake"))
            print(f"epoch {epoch}/{self.last_epoch}: {losses}, {logs['images_per_s']:.0f} images/s, "
                  f"{logs['epoch_seconds']:.0f} s", flush=True)

    def write_grid(self, epoch):
        # The model's call() is its sampler (the averaged generator).
        images = self.model(self.grid_inputs, training=False)
        path = sample_path(os.path.join(self.output_dir, "samples"), epoch)
        grid = save_grid_png(np.asarray(images), path, self.grid_rows)
        if in_notebook():  # the grid under the progress bar, the same picture replaced each epoch
            from IPython.display import Image as NotebookImage, display
            if self.notebook_grid is None:
                self.notebook_grid = display(NotebookImage(filename=path), display_id=True)
            else:
                self.notebook_grid.update(NotebookImage(filename=path))
        return grid

    def write_history(self, epoch, logs):
        # Rewritten whole, not appended as keras.callbacks.CSVLogger does: a kill can leave no half row, and a
        # resumed epoch is not logged twice.
        self.history_rows.append({"epoch": epoch, **{k: float(logs[k]) for k in HISTORY_COLUMNS[1:]}})
        write_csv(os.path.join(self.output_dir, "history.csv"), HISTORY_COLUMNS, self.history_rows)
        plot_losses(self.history_rows, os.path.join(self.output_dir, "losses.png"))

    def metrics_due(self, epoch):
        """After the first epoch (an early warning), every METRICS_EVERY epochs and after the last."""
        return bool(self.evaluator) and (epoch % self.metrics_every == 0 or epoch in (1, self.last_epoch))

    def write_metrics(self, epoch):
        started = time.perf_counter()
        metrics = self.evaluator.evaluate_generator(self.model.ema_generator, self.class_names)
        newline = "" if self.plain_log else "\n"  # step off the progress bar's line
        print(f"{newline}epoch {epoch} quality ({time.perf_counter() - started:.0f} s): {format_metrics(metrics)}",
              flush=True)
        print_mode_collapse_warnings(metrics, self.metrics_rows[-1] if self.metrics_rows else None,
                                     self.evaluator.digits)
        self.metrics_rows.append({"epoch": epoch, "training_minutes": training_minutes(self.history_rows), **metrics})
        write_csv(os.path.join(self.output_dir, "metrics.csv"), METRICS_COLUMNS, self.metrics_rows)
        plot_metrics(self.metrics_rows, os.path.join(self.output_dir, "metrics.png"))
        return metrics

    def write_models(self):
        for name, model in (("generator", self.model.ema_generator), ("discriminator", self.model.discriminator)):
            with atomic_output(os.path.join(self.output_dir, f"{name}.keras")) as temp_path:
                float32_copy(model).save(temp_path)

    def write_checkpoint(self, epoch):
        """Weights (both models, both optimizers' moments, the weight average) under a new name, then state.json
        renamed over the old one: that rename commits the epoch. The one writer of the run's finished mark."""
        checkpoint_dir = checkpoint_dir_of(self.output_dir)
        weights_name = f"epoch_{epoch:03d}.weights.h5"
        with atomic_output(os.path.join(checkpoint_dir, weights_name)) as temp_path:
            self.model.save_weights(temp_path)
        write_json(os.path.join(checkpoint_dir, "state.json"), dict(
            self.run_facts, epoch=epoch, epochs=self.last_epoch, finished=epoch == self.last_epoch,
            weights=weights_name,
            random_states=[variable.numpy().tolist() for variable in random_state_variables(self.model)]))
        # The earlier epochs' weights go (this script's only: the record says which; later epochs' names stay).
        remove_outputs(self.output_dir, keep=lambda name: not name.startswith("checkpoint/epoch_")
                       or int(name.split("_")[1].split(".")[0]) >= epoch)

    def write_tensorboard(self, epoch, logs, quality, grid):
        """OUTPUT_DIR/tensorboard/: the epoch's logs, its quality metrics and its sample grid, at step = epoch."""
        folder = os.path.join(self.output_dir, "tensorboard")
        if self.tensorboard is None:  # its file's name (time, host, process) is known only once it is made
            there = set(os.listdir(folder)) if os.path.isdir(folder) else set()
            self.tensorboard = tf.summary.create_file_writer(folder)
            record_outputs(self.output_dir, [f"tensorboard/{name}" for name in set(os.listdir(folder)) - there])
        scalars = {**{name: float(value) for name, value in logs.items()},
                   **{f"quality/{name}": value for name, value in quality.items()}}
        with self.tensorboard.as_default(step=epoch):
            for name, value in scalars.items():
                tf.summary.scalar(name, value)
            tf.summary.image("samples", grid[None, :, :, None])
        self.tensorboard.flush()


def write_training_gif(output_dir, last_epoch, frame_seconds):
    """OUTPUT_DIR/generated_images.gif, and its path: the grids of epochs 1..last_epoch that exist, in order, each
    with its epoch number drawn on it; a grid of another size (GRID_ROWS changed when the run continued) is fitted
    to the last one's."""
    samples_dir, gif_path = os.path.join(output_dir, "samples"), os.path.join(output_dir, "generated_images.gif")
    epochs = [epoch for epoch in range(1, last_epoch + 1) if os.path.exists(sample_path(samples_dir, epoch))]
    if not epochs:
        return None
    font = ImageFont.load_default(size=14)
    with Image.open(sample_path(samples_dir, epochs[-1])) as last:
        size = last.size
    frames = []
    for epoch in epochs:
        with Image.open(sample_path(samples_dir, epoch)) as grid:
            frame = Image.new("L", (size[0], size[1] + 20))
            frame.paste(grid.convert("L").resize(size, Image.Resampling.LANCZOS), (0, 20))
        ImageDraw.Draw(frame).text((4, 2), f"epoch {epoch}", fill=255, font=font)
        frames.append(np.asarray(frame))
    try:
        write_gif(gif_path, frames, frame_seconds)
    except OSError as error:
        raise FixableError(f"the run's {last_epoch} epochs are trained and saved, but {gif_path} could not be "
                            f"written ({error}). Fix that (a full disk, the folder's permissions), then run the "
                            f"same command again: it writes the GIF, training nothing.") from None
    return gif_path


# ------------------------------------------------------------------------------------------------------------------
# The run: check, build, restore, fit, finish
# ------------------------------------------------------------------------------------------------------------------
def train(config, restart=False):
    """Train for EPOCHS, resuming or continuing the run in OUTPUT_DIR (or with `restart` discarding it, once
    everything else has been checked), and write every output. In a multi-worker run every worker runs this
    (they must stay in step), but only the chief writes into OUTPUT_DIR; the others write into a temporary folder."""
    started = time.perf_counter()
    strategy = make_strategy(config["STRATEGY"])
    chief = is_chief(strategy)
    # 1. Check the run already there (every worker reads the chief's: on several machines OUTPUT_DIR must be
    # shared) and the data, before anything is written.
    policy = choose_precision(config["PRECISION"])
    state = None if restart else read_checkpoint_state(checkpoint_dir_of(config["OUTPUT_DIR"]))
    done_epochs = check_resumable(state, config, policy)
    check_workers_agree(strategy, "the epoch to resume from", done_epochs)
    finished = state is not None and done_epochs == config["EPOCHS"]
    data = None if finished else load_training_data(config["DATA"], config["SEED"], config["MAX_TRAIN_IMAGES"])
    if data is not None:
        fingerprint = data_fingerprint(data)
        check_same_data(state, data, fingerprint, config["OUTPUT_DIR"])
        check_training_data(data, config["BATCH_SIZE"], config["CONDITIONAL"])
        check_batch_per_replica(config["BATCH_SIZE"], config["D_GROUP_STD"], strategy.num_replicas_in_sync)
    output_dir = config["OUTPUT_DIR"] if chief else tempfile.mkdtemp(prefix="dcgan-worker-")
    with contextlib.ExitStack() as cleanup:
        if not chief:
            cleanup.callback(shutil.rmtree, output_dir, ignore_errors=True)
        cleanup.enter_context(locked_output_dir(output_dir))
        if finished:
            if chief:
                write_training_gif(output_dir, done_epochs, config["GIF_FRAME_SECONDS"])
            print(f"the run in {output_dir} has its {done_epochs} epochs: nothing to train (its GIF is rewritten "
                  f"from its grids). To train it further, pass a larger --epochs; to start over, {HOW_TO_START_ANEW}.")
            return 0

        # 2. Build the models and the metrics, the last things that can fail before anything is written.
        classes = run_classes(data.class_names, config)
        if classes.from_noise and config["LATENT_DIM"] < classes.count:
            raise FixableError(f"--latent_dim {config['LATENT_DIM']} is shorter than the {classes.count} classes the "
                               f"noise must pick from (NOISE_CLASS). Use --latent_dim {classes.count} or more, or "
                               f"--noise_class 0.")
        steps_per_epoch = len(data.images) // config["BATCH_SIZE"]
        keras.utils.set_random_seed(config["SEED"])  # initial weights, dropout masks, Python's and NumPy's draws
        # Keras 3.15's multi-step loop fails under tf.distribute's strategies ("You must feed a value for
        # placeholder tensor", keras-team/keras#19246; MultiWorkerMirroredStrategy otherwise): one step per call.
        distributed = strategy is not tf.distribute.get_strategy()
        steps_per_execution = 1 if distributed else min(config["STEPS_PER_EXECUTION"], steps_per_epoch)
        dcgan = build_dcgan(config, strategy, classes, policy, steps_per_execution)
        print(f"data: {len(data.images):,} training images: {data.source}" + describe_classes(data, classes, config))
        print(f"training on {training_devices()}; precision {policy}; {replicas_in_words(strategy)}, "
              f"{config['BATCH_SIZE']} digits a step")
        print(f"models: generator {dcgan.generator.count_params():,} parameters, discriminator "
              f"{dcgan.discriminator.count_params():,} (layer by layer in {os.path.join(output_dir, 'models.txt')})")
        learning_rate_drop = LearningRateDrop([config["D_LEARNING_RATE"], config["G_LEARNING_RATE"]],
                                              config["EPOCHS"], config["LR_DROP_AT"], config["LR_DROP_FACTOR"])
        print(learning_rate_drop.describe())
        evaluator = None
        if config["METRICS_EVERY"] and chief:
            evaluator = build_quality_evaluator(data, config["METRICS_SAMPLES"], config["LATENT_DIM"], config["SEED"])

        # 3. Claim the run's files (stopping, with nothing touched, where one of their names is taken by a file the
        # script did not write); discard an earlier run's files (--restart, or a run killed before its first
        # epoch), or restore it; write what the run keeps from its start.
        run_files = RUN_FILES + epoch_files(range(done_epochs + 1, config["EPOCHS"] + 1))
        refuse_files_not_ours(output_dir, run_files)
        discarded = discard_run(output_dir) if state is None else 0
        record_outputs(output_dir, run_files)
        remove_unfinished_writes(output_dir)
        if state is None:
            print(f"{'--restart' if restart else 'no run in ' + config['OUTPUT_DIR']}: "
                  f"{f'discarded the earlier run ({discarded} files), ' if discarded else ''}training from scratch")
        else:
            restore_checkpoint(dcgan, checkpoint_dir_of(config["OUTPUT_DIR"]), state)
        check_workers_agree(strategy, "the restored weights", int(weights_fingerprint(dcgan)[:6], 16))
        write_model_tables([dcgan.generator, dcgan.discriminator], os.path.join(output_dir, "models.txt"))
        shown = random_order(config["SEED"], len(data.images))[:config["GRID_ROWS"] ** 2]
        save_grid_png(data.images[shown], os.path.join(output_dir, "real_samples.png"))
        if classes.count:
            write_json(os.path.join(output_dir, "classes.json"), data.class_names)

        # 4. Fit; EpochOutputs writes every output after each epoch, the checkpoint among them.
        progress_bar = progress_bar_works()
        epoch_outputs = EpochOutputs(
            output_dir, config["EPOCHS"], steps_per_epoch * config["BATCH_SIZE"],
            fixed_sample_inputs(config["SEED"], config["GRID_ROWS"], config["LATENT_DIM"], classes),
            evaluator, config["METRICS_EVERY"], data.class_names if classes.count else [],
            read_csv_rows(os.path.join(output_dir, "history.csv"), done_epochs),
            read_csv_rows(os.path.join(output_dir, "metrics.csv"), done_epochs),
            run_facts={"config": config, "policy": policy, "spans": settings_spans(state, config, done_epochs),
                       "data": {"path": data.path, "source": data.source, "fingerprint": fingerprint}},
            plain_log=not progress_bar)
        dataset = make_dataset(data.images, config["BATCH_SIZE"], config["SEED"], config["LATENT_DIM"],
                               data.labels if classes.count else None)
        skip_done_epochs(dataset, done_epochs)
        training_started = time.perf_counter()
        dcgan.fit(dataset, epochs=config["EPOCHS"], initial_epoch=done_epochs,
                  callbacks=[learning_rate_drop, StopOnNonFiniteLoss(), epoch_outputs], shuffle=False,
                  verbose=1 if progress_bar else 0)
        training_seconds = time.perf_counter() - training_started

        # 5. Finish: the GIF, from the grids there are; the run is finished whether or not it can be written.
        gif_path = write_training_gif(output_dir, config["EPOCHS"], config["GIF_FRAME_SECONDS"]) if chief else "none"
        trained_images = (config["EPOCHS"] - done_epochs) * steps_per_epoch * config["BATCH_SIZE"]
        print(f"generator weights fingerprint: {weights_fingerprint(dcgan.ema_generator)}")
        print(f"done: {config['EPOCHS'] - done_epochs} epoch(s) of {steps_per_epoch * config['BATCH_SIZE']:,} images "
              f"in {training_seconds:.0f} s ({trained_images / training_seconds:.0f} images/s, per-epoch outputs "
              f"included); wall time {time.perf_counter() - started:.0f} s. Outputs in {output_dir}{os.sep}, GIF "
              f"{gif_path}")
        return 0


def describe_classes(data, classes, config):
    """The data line's end: what the run does with the data's classes, or why it has none."""
    if classes.count:
        return (f", {classes.count} classes ({', '.join(data.class_names)}), "
                + ("each generated digit's class picked by its noise" if classes.from_noise else "asked for by label"))
    if config["NOISE_CLASS"]:  # (a conditional run without two classes was refused by check_training_data)
        return ("; no classes (noise class off), since "
                + ("the data has no labels" if data.labels is None else f"it has only the class {data.class_names}"))
    return "; classes not used (--noise_class 0)"


# ------------------------------------------------------------------------------------------------------------------
# Other data sources (npz, IDX files, image folders, Keras' loader), labels, and the checks on what was loaded
# ------------------------------------------------------------------------------------------------------------------
def one_label_per_image(labels, where):
    """Labels as one per image: whole numbers, (N,) as they are, (N, 1) flattened, one-hot rows (N, classes) as the
    index of their 1; or names (strings), which become classes as class folders' names do. Anything else is
    refused with what was found."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim == 1 and labels.dtype.kind in "US":  # names: "seven", b"7"
        return np.char.decode(labels, "utf-8") if labels.dtype.kind == "S" else labels
    if labels.ndim == 2 and np.isin(labels, (0, 1)).all() and (labels.sum(1) == 1).all():
        labels = labels.argmax(1)
    if (labels.ndim != 1 or labels.dtype.kind not in "biuf"
            or not np.issubdtype(labels.dtype, np.integer) and not np.all(labels == np.round(labels))):
        raise FixableError(f"{where} holds labels of shape {labels.shape} ({labels.dtype}); expected one per image: "
                           f"whole numbers or names, shape (N,) or (N, 1), or one-hot rows (N, classes).")
    return labels.astype(np.int64)


def checked_digits(images, labels, images_name, labels_name):
    """uint8 digits (N, 28, 28) and one label each (or None) -> (float digits, labels); anything else is refused with
    what was found."""
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise FixableError(f"{images_name} holds {images.dtype} images of shape {images.shape}; expected (N, 28, 28) "
                            f"uint8 digits, pixel values 0-255.")
    if labels is None:
        return to_unit_float(images), None
    labels = one_label_per_image(labels, labels_name)
    if len(labels) != len(images):
        raise FixableError(f"{labels_name} holds {len(labels)} labels for {len(images)} images; they must match one "
                            f"to one.")
    return to_unit_float(images), labels


def load_npz(path, split="train"):
    """A Keras-format mnist.npz: x_train/y_train/x_test/y_test, uint8 digits of 28x28. None for a missing test
    split."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if split == "test" and "x_test" not in archive:
                return None
            # The test split's labels are never used (the metrics compare images), so they may be missing.
            images = archive[f"x_{split}"]
            labels = archive["y_train"] if split == "train" else archive["y_test"] if "y_test" in archive else None
    except KeyError:
        raise FixableError(f"{path} has no x_{split}/y_{split} arrays. Give an npz in the Keras mnist.npz "
                            f"layout (x_train, y_train, and optionally x_test, y_test).") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise FixableError(f"{path} is not a readable .npz file ({error}). Re-create or re-download it.") from None
    return checked_digits(images, labels, f"{path}: x_{split}", f"{path}: y_{split}")


def read_idx(path):
    """One IDX file (plain or gzipped) as a numpy array of unsigned bytes."""
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as file:
            raw = file.read()
        ndim = raw[3] if len(raw) > 3 and raw[:3] == b"\0\0\x08" else 0  # magic: 0, 0, 0x08 (unsigned bytes)
        shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
        if not ndim or len(raw) != 4 + 4 * ndim + math.prod(shape):
            raise ValueError("not an IDX file of unsigned bytes, or truncated or padded")
    except (OSError, EOFError, zlib.error, ValueError, struct.error) as error:  # zlib: a damaged stream in a .gz
        raise FixableError(f"{path} cannot be read ({error}). Re-download the MNIST IDX files.") from None
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find_idx_file(folder, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def load_idx_folder(folder, split="train"):
    """The MNIST IDX files (train-images-idx3-ubyte[.gz] and so on) in one folder; None for a missing test split."""
    prefix = "train" if split == "train" else "t10k"
    images_path = find_idx_file(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = find_idx_file(folder, f"{prefix}-labels-idx1-ubyte")
    if split == "test" and images_path is None:
        return None
    if images_path is None or labels_path is None:
        raise FixableError(f"{folder} lacks {prefix}-images-idx3-ubyte or {prefix}-labels-idx1-ubyte "
                            f"(plain or .gz). Put both MNIST IDX files there.")
    return checked_digits(read_idx(images_path), read_idx(labels_path), images_path, labels_path)


def image_files(folder):
    """Every file under `folder`, sorted, following symlinks but visiting each real folder once (a link back up
    the tree would otherwise repeat images without end)."""
    paths, seen = [], set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        paths += [os.path.join(root, name) for name in sorted(files)]
    return [path for path in paths if os.path.isfile(path)]


def grayscale_pixels(image):
    """Any PIL image -> uint8 grayscale (H, W). Transparent drawings are laid on a background that contrasts with
    their ink (dropping the alpha channel would turn black-on-transparent ink into black on black); 16- and
    32-bit images are scaled to 0-255 rather than clipped, and float images with values in [0, 1] by 255."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        ink = rgba[..., 3] > 127
        luminance = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        background = 255.0 if ink.any() and luminance[ink].mean() < 128 else 0.0
        alpha = rgba[..., 3] / 255.0
        return np.rint(luminance * alpha + background * (1 - alpha)).astype(np.uint8)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max() > 255 else 1.0 if image.mode == "F" and values.max() <= 1 else 255.0
        return np.rint(np.clip(values / top, 0, 1) * 255).astype(np.uint8)
    return np.asarray(image.convert("L"), dtype=np.uint8)


def load_image_folder(folder):
    """Every image file under `folder`, any size or mode, as 28x28 grayscale digits, and their labels: the names
    of the subfolders they sit in (`my_digits/7/a.png` is a 7) where there are two such class folders or more,
    else None. Files beside class folders have no class; they are skipped with a warning naming them.

    Files that are not images, and images too large for Pillow to decode safely (over Image.MAX_IMAGE_PIXELS
    pixels twice over, about 179 million: its guard against decompression bombs), are skipped with a warning
    naming them. Phone photos are turned upright by their EXIF orientation. Images whose border is mostly bright
    (dark ink on white paper) are inverted, since the models learn MNIST's white-on-black digits.
    """
    paths = [os.path.relpath(path, folder) for path in image_files(folder)]
    classes = {path.split(os.sep)[0] for path in paths if os.sep in path}
    beside = sorted(path for path in paths if os.sep not in path) if len(classes) > 1 else []
    digits, skipped, too_large, labels = [], [], [], []
    for relative in sorted(set(paths) - set(beside)):
        try:
            with warnings.catch_warnings():  # Pillow warns of images over 89 megapixels; this one shrinks it at once
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(os.path.join(folder, relative)) as image:
                    pixels = grayscale_pixels(shrunk(ImageOps.exif_transpose(image)))
            pixels = np.asarray(Image.fromarray(pixels).resize(IMAGE_SHAPE[:2], Image.Resampling.LANCZOS))
        except Image.DecompressionBombError:
            too_large.append(relative)
            continue
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            skipped.append(relative)
            continue
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        digits.append(255 - pixels if border.mean() > 127 else pixels)
        labels.append(relative.split(os.sep)[0] if os.sep in relative else None)
    for paths, what in ((skipped, "that are not images"),
                        (too_large, "too large to decode safely; shrink them below 100 megapixels"),
                        (beside, f"beside its {len(classes)} class folders, which gives them no class; move them "
                                 f"into one")):
        if paths:
            print(f"warning: skipped {len(paths)} file(s) in {folder} {what}: "
                  f"{', '.join(paths[:5])}{' ...' if len(paths) > 5 else ''}")
    if not digits:
        raise FixableError(f"{folder} holds no readable images. Put PNG/JPEG/... digit images in it "
                            f"(any size or colour mode; they are converted to 28x28 grayscale).")
    return to_unit_float(np.stack(digits)), None if None in labels else np.array(labels)


def load_image_folders(folder, split):
    """An image folder's (images, labels or None) for `split`, and its description. A folder whose subfolders are
    train/ and test/, or train/ alone (each with its class folders, or none), holds splits, not classes; any other
    folder is all training images. None for a missing test split."""
    halves = {name.lower(): os.path.join(folder, name) for name in os.listdir(folder)
              if os.path.isdir(os.path.join(folder, name))}
    if "train" in halves and set(halves) <= {"train", "test"}:
        if split not in halves:
            return None, ""
        return load_image_folder(halves[split]), f"the image folder {halves[split]} (its {split} split)"
    return (None if split == "test" else load_image_folder(folder)), f"the image folder {folder}"


def shrunk(image, side=4 * IMAGE_SHAPE[0]):
    """`image` reduced by a whole factor toward `side` pixels on its shorter edge where it is twice that or more:
    the pixels of a photo are otherwise converted whole (as floats, for transparency) before the 28x28 resize."""
    factor = min(image.size) // side
    if factor < 2:
        return image
    if image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F") or "transparency" in image.info:
        image = image.convert("I" if image.mode.startswith("I;16") else "RGBA" if image.mode in ("P", "PA")
                              or "transparency" in image.info else "L")
    return image.reduce(factor)


def load_keras_mnist(split="train"):
    """Keras' own MNIST loader: its cache in ~/.keras/datasets, or a download where there is internet."""
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:  # the loader raises whatever its download hit
        raise FixableError(f"MNIST could not be loaded: {MNIST_PATH}, which comes with the repository, is missing, "
                            f"and Keras' download failed ({error}). Restore the file with `git checkout -- data` "
                            f"(or copy it from a fresh clone), or pass --data PATH to a local mnist.npz, IDX folder "
                            f"or image folder.") from None
    return (to_unit_float(x_train), y_train) if split == "train" else (to_unit_float(x_test), y_test)


def random_order(seed, count):
    """The indices 0..count-1 in an order fixed by `seed`: which images are held out, shown, or scored as the floor."""
    return np.random.default_rng(seed).permutation(count)


def hold_out(images, labels, seed, share=0.1, most=10000):
    """(kept images, kept labels, held-out images): a random `share` of the images (at most `most`, at least 1),
    fixed by `seed`, set aside before training as the metrics' reference for data without a test split."""
    count = min(most, max(1, round(len(images) * share)))
    order = random_order(seed, len(images))
    kept = np.sort(order[count:])
    return images[kept], None if labels is None else labels[kept], images[np.sort(order[:count])]


def encode_labels(labels):
    """Labels of any kind (MNIST's integers, class folders' names) -> (class indices 0..n-1 as int32, the n class
    names in index order). Names sort as numbers when they all are numbers, so folder "10" follows "9"."""
    def number_first(name):
        return (0, int(name), "") if name.isdigit() else (1, 0, name)

    names = sorted({str(label) for label in labels}, key=number_first)
    index = {name: position for position, name in enumerate(names)}
    return np.array([index[str(label)] for label in labels], dtype=np.int32), names


def check_training_data(data, batch_size, conditional):
    """Refuse what cannot be trained: fewer images than a batch, a conditional run without two classes."""
    if batch_size > len(data.images):
        raise FixableError(f"--batch_size {batch_size} is larger than the {len(data.images)} training "
                            f"images. Use a smaller --batch_size or more images.")
    if conditional and len(data.class_names) < 2:
        have = "has no labels" if data.labels is None else f"has only the class {data.class_names}"
        raise FixableError(f"--conditional 1 needs labelled images of at least two classes, and {data.source} "
                            f"{have}. Use MNIST (--data auto), an .npz with y_train, MNIST IDX files with their "
                            f"labels file, or an image folder with one subfolder per class (my_digits/0/*.png, "
                            f"my_digits/1/*.png, ...); or train unconditionally with --conditional 0.")


# ------------------------------------------------------------------------------------------------------------------
# Model parts: std-dev and row-dot layers, noise, the grid's inputs, float32 copies, fingerprints
# ------------------------------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="train_dcgan")
class GroupStdDev(layers.Layer):
    """Appends one feature map: how much the digits in each group of `group_size` consecutive digits differ.

    A generator that draws the same few digits for different noise makes groups that vary less than real
    ones; this lets the discriminator see it and push back (the minibatch standard deviation of Karras et al.
    2018). Groups are consecutive, so a batch of real digits followed by as many generated ones never mixes
    the two in a group when the group size divides the batch size. A batch it does not divide (a user's odd
    batch through the saved model) gets groups of one, whose spread is 0.
    """

    def __init__(self, group_size, **kwargs):
        super().__init__(**kwargs)
        self.group_size = group_size

    def call(self, features):
        count = tf.shape(features)[0]
        group = tf.where(count % self.group_size == 0, self.group_size, 1)
        values = tf.cast(features, "float32")
        grouped = tf.reshape(values, tf.concat([[count // group, group], tf.shape(values)[1:]], axis=0))
        # The small constant keeps the square root's gradient finite where a group agrees exactly (dropout
        # can zero the same unit in all its digits).
        std = tf.sqrt(tf.math.reduce_variance(grouped, axis=1) + 1e-8)
        spread = tf.reduce_mean(std, axis=[1, 2, 3])  # one number per group
        per_digit = tf.repeat(spread, group)
        feature_map = tf.ones_like(values[..., :1]) * per_digit[:, None, None, None]
        return tf.concat([features, tf.cast(feature_map, features.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape[:-1] + (input_shape[-1] + 1,)

    def get_config(self):
        return dict(super().get_config(), group_size=self.group_size)


@keras.saving.register_keras_serializable(package="train_dcgan")
class RowDot(layers.Layer):
    """The dot product of two (n, k) inputs row by row, (n, 1), in float32. Keras' Dot layer computes it as n
    products of a 1 x k by a k x 1 matrix, which oneDNN runs slowly (docs/experiments.md, 2026-12-05)."""

    def call(self, inputs):
        first, second = (tf.cast(value, "float32") for value in inputs)
        return tf.reduce_sum(first * second, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0][:-1] + (1,)


def latent_dim_of(generator):
    """The length of the noise vector a (saved) generator takes."""
    return generator.inputs[0].shape[-1]


def fixed_noise(seed, count, latent_dim):
    """`count` noise vectors drawn from `seed` alone: the same seed gives the same digits, in any run."""
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)


def fixed_sample_inputs(seed, rows, latent_dim, classes=NO_CLASSES):
    """(generator inputs, rows) of every epoch's sample grid: rows x rows digits from noise drawn from SEED alone
    (a resumed run gets the same); for a run with classes one row per class, the same noise down each column, so
    every class is seen improving side by side (and the noise's share of the look, the style, along each row)."""
    noise = fixed_noise(seed, rows ** 2, latent_dim)
    if not classes.count:
        return noise, None
    labels = np.repeat(np.arange(classes.count, dtype=np.int32), rows)
    return generator_inputs(classes, np.tile(noise[:rows], (classes.count, 1)), labels), classes.count


def float32_copy(model):
    """`model` with the same weights, every layer computing in float32. The precision policy is the training's
    choice for this machine, not the model's: a saved model computes in float32 wherever it is loaded (bfloat16 is
    emulated, slowly, on most hardware) and converts to TFLite, which has no bfloat16 matrix products."""
    def in_float32(layer):
        return layer.__class__.from_config(dict(layer.get_config(), dtype="float32"))

    training_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # for the input layers, which the clone makes anew
    try:
        copy = keras.models.clone_model(model, clone_function=in_float32)
    finally:
        keras.mixed_precision.set_global_policy(training_policy)
    copy.set_weights(model.get_weights())
    return copy


def weights_fingerprint(model):
    """A short hash of all weights: equal fingerprints mean bit-identical models (compare runs or workers)."""
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()[:16]


def random_state_variables(model):
    """The states of the model's random-number generators (Dropout's), which save_weights leaves out; without
    them a resumed run would replay the first epoch's dropout masks."""
    return [variable for variable in model.variables if "seed_generator_state" in variable.path]


# ------------------------------------------------------------------------------------------------------------------
# The run on disk: checkpoint, resume and continue, settings spans, the lock; atomic files, grids, CSVs, plots
# ------------------------------------------------------------------------------------------------------------------
HISTORY_COLUMNS = ["epoch", "d_loss", "g_loss", "d_real", "d_fake", "images_per_s", "epoch_seconds"]
# Settings a run keeps for life: the models' shapes, and what its training state depends on. A checkpoint made
# with other values is refused rather than loaded into models it does not fit, or silently mixed with other data.
RESUME_SETTINGS = ["CONDITIONAL", "NOISE_CLASS", "LATENT_DIM", "G_CHANNELS", "D_CHANNELS", "D_GROUP_STD",
                   "BATCH_SIZE", "DATA", "MAX_TRAIN_IMAGES", "SEED"]
# Settings that may change when a run continues; state.json keeps those of each span of epochs.
TRAINING_SETTINGS = ["D_LEARNING_RATE", "G_LEARNING_RATE", "LR_DROP_AT", "LR_DROP_FACTOR", "BETA_1", "R1_GAMMA",
                     "EMA_DECAY", "DROPOUT"]
# What state.json holds (write_checkpoint); a state without one of them cannot be continued.
STATE_KEYS = ["epoch", "finished", "weights", "config", "policy", "spans", "data", "random_states"]
HOW_TO_START_ANEW = "pick another --output_dir, or pass --restart to discard this run and train anew"


def checkpoint_dir_of(output_dir):
    return os.path.join(output_dir, "checkpoint")


def read_checkpoint_state(checkpoint_dir):
    """The run's state.json, or None when there is no run."""
    path = os.path.join(checkpoint_dir, "state.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as file:
            state = json.load(file)
        missing = [key for key in STATE_KEYS if state.get(key) is None]
        missing = missing or [name for name in RESUME_SETTINGS if name not in state["config"]]
        if missing:
            raise ValueError(f"it has no {', '.join(missing)}")
    except (OSError, ValueError, TypeError, AttributeError) as error:  # JSON that is not an object
        raise FixableError(f"{path} is damaged, or was written by an older version of the script ({error}). The "
                            f"run's other outputs are still in {os.path.dirname(checkpoint_dir) or '.'} and its "
                            f"generator.keras works with --generate, --evaluate and --interpolate, but it cannot be "
                            f"resumed: {HOW_TO_START_ANEW}.") from None
    return state


def check_resumable(state, config, policy):
    """How many epochs the run in OUTPUT_DIR has (0 for none), once it is checked that this command can go on
    with it: the same models, data and precision policy, and at least as many epochs as it has."""
    if state is None:
        return 0
    run = f"the {'finished' if state['finished'] else 'unfinished'} run in {config['OUTPUT_DIR']}"
    saved, saved_policy = state["config"], state["policy"]
    # DATA is compared by what the data was (check_same_data), not by how it was spelled.
    names = [name for name in RESUME_SETTINGS if name != "DATA"
             and not (name == "NOISE_CLASS" and saved["CONDITIONAL"] and config["CONDITIONAL"])]  # it ignores it
    changed = [f"{name} was {saved[name]!r}, now {config[name]!r}" for name in names if saved[name] != config[name]]
    if saved_policy != policy:  # a changed policy would drop the Adam moments with only a Keras warning
        changed.append(f"the precision policy was {saved_policy}, now {policy}")
    if changed:
        flags = [word for name in names for word in (f"--{name.lower()}", str(saved[name]))]
        raise FixableError(f"{run} (epoch {state['epoch']}) used other settings ({'; '.join(changed)}). Continue it "
                           f"with {shell_words(flags + ['--precision', saved_policy])}; or {HOW_TO_START_ANEW}.")
    if state["epoch"] > config["EPOCHS"]:
        raise FixableError(f"{run} already did {state['epoch']} epochs, more than --epochs {config['EPOCHS']}; it is "
                            f"kept as it is. To train it further, pass a larger --epochs (e.g. --epochs "
                            f"{state['epoch'] + 10}); to start over, {HOW_TO_START_ANEW}.")
    return state["epoch"]


def data_fingerprint(data):
    """A short hash of the images, labels and class names trained on (a TrainingData): what tells a resumed run
    whether it still has the same data, however DATA is spelled."""
    digest = hashlib.sha256(np.ascontiguousarray(data.images).tobytes())
    digest.update(json.dumps(data.class_names).encode() + (b"" if data.labels is None else data.labels.tobytes()))
    return digest.hexdigest()[:16]


def check_same_data(state, data, fingerprint, output_dir):
    """Refuse to go on with a run on other images than it was trained on, however --data is spelled now."""
    if state is not None and state["data"]["fingerprint"] != fingerprint:
        continue_with = shell_words(["--data", state["data"]["path"]])
        raise FixableError(f"the run in {output_dir} was trained on other images ({state['data']['source']}) than "
                           f"the {data.source} it was given now. Continue it with {continue_with}, if those images "
                           f"are still there; or {HOW_TO_START_ANEW}.")


def shell_words(words):
    """`words` as text to paste into this system's shell: quoted for cmd on Windows, for sh elsewhere."""
    return subprocess.list2cmdline(words) if os.name == "nt" else shlex.join(words)


def settings_spans(state, config, done_epochs):
    """The training settings of each span of the run's epochs, ending with this command's: a new span, said out
    loud, when they differ from the last one's (lowering the learning rates to continue is fine, but the record
    must show it)."""
    current = {name: config[name] for name in TRAINING_SETTINGS}
    if state is None:
        return [dict(first_epoch=1, **current)]
    spans = state["spans"]
    changed = [f"{name.lower()} {spans[-1].get(name)} -> {current[name]}" for name in TRAINING_SETTINGS
               if spans[-1].get(name) != current[name]]
    if not changed:
        return spans
    print(f"note: epochs {spans[-1]['first_epoch']}-{done_epochs} were trained with other settings; from epoch "
          f"{done_epochs + 1} on: {', '.join(changed)} (checkpoint/state.json keeps each span's settings)")
    return spans + [dict(first_epoch=done_epochs + 1, **current)]


def restore_checkpoint(dcgan, checkpoint_dir, state):
    """Load the run's weights, both optimizers' moments, the weight average and the random states into `dcgan`."""
    weights_path = os.path.join(checkpoint_dir, state["weights"])
    try:
        with h5py.File(weights_path, "r"):
            pass
    except OSError as error:  # missing, truncated or overwritten
        raise FixableError(f"the checkpoint in {checkpoint_dir} is damaged: its weights file {state['weights']} "
                            f"{'is missing' if not os.path.exists(weights_path) else f'cannot be read ({error})'}. "
                            f"The run's outputs up to epoch {state['epoch']} (generator.keras, the grids, the CSVs) "
                            f"are still there, but it cannot be resumed: {HOW_TO_START_ANEW}.") from None
    try:
        with warnings.catch_warnings():  # Keras warns of each layer it cannot fill before it raises
            warnings.simplefilter("ignore")
            dcgan.load_weights(weights_path)
    except Exception as error:  # Keras reports a layer or shape mismatch in many exception types
        lines = str(error).strip().splitlines() or [type(error).__name__]
        cause = next((line for line in lines if "expected" in line), lines[0])  # names a layer and what it lacks
        raise FixableError(f"the checkpoint in {checkpoint_dir} does not fit the models this version of the script "
                            f"builds ({cause}); it was probably made by another version (the generator's "
                            f"normalisation changed on 2026-12-06). Finish it with that version, or "
                            f"{HOW_TO_START_ANEW}.") from None
    for variable, value in zip(random_state_variables(dcgan), state["random_states"]):
        variable.assign(np.asarray(value, dtype=variable.dtype))
    print(f"{'continuing the finished' if state['finished'] else 'resuming the unfinished'} run in "
          f"{os.path.dirname(checkpoint_dir) or '.'} after epoch {state['epoch']} (weights, optimizer moments and "
          f"weight average restored)")


def skip_done_epochs(dataset, epochs):
    """Advance the dataset past `epochs` epochs' shuffle orders and noise, so that a resumed run continues the
    input pipeline instead of replaying epoch 1's. Each new iterator draws the next seeds when it is created,
    before any element is read, so this costs next to nothing. fit (Keras 3.15) makes two iterators per epoch
    of a finite dataset, one when the epoch starts and a spare when it ends, so a done epoch used up two; a test
    checks that a resumed run's batches are the uninterrupted run's."""
    for _ in range(2 * epochs):
        iter(dataset)


# The script removes or overwrites only files it wrote itself. OUTPUT_DIR/OUTPUTS_RECORD lists them (paths relative
# to OUTPUT_DIR, "/"-separated); a name is recorded before its file is first written, so a kill in between leaves
# nothing unrecorded. A file of an output's name that is not in the record is the user's: the script stops instead.
OUTPUTS_RECORD = ".written_by_train_dcgan.json"
RUN_FILES = ["checkpoint/state.json", "history.csv", "losses.png", "metrics.csv", "metrics.png", "models.txt",
             "generated_images.gif", "generator.keras", "discriminator.keras", "classes.json", "real_samples.png"]
ACTION_FILES = ("generated/", "interpolation.gif")  # what --generate and --interpolate write; --restart keeps it


def epoch_files(epochs):
    """The files a run writes for each of `epochs`: its grid and its checkpoint weights."""
    return [name for epoch in epochs for name in (f"samples/epoch_{epoch:03d}.png",
                                                  f"checkpoint/epoch_{epoch:03d}.weights.h5")]


def recorded_outputs(output_dir):
    """The set of files the script has written in OUTPUT_DIR. A run of the version before the record (its
    checkpoint/state.json there, no record) is taken to own the files of its outputs' names."""
    try:
        with open(os.path.join(output_dir, OUTPUTS_RECORD), encoding="utf-8") as file:
            return set(json.load(file))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError) as error:
        raise FixableError(f"{os.path.join(output_dir, OUTPUTS_RECORD)}, the list of files this script wrote in "
                           f"{output_dir}, is damaged ({error}), so it cannot tell its files from yours there. Give "
                           f"another --output_dir, or move your own files out and delete that list.") from None
    if not os.path.exists(os.path.join(output_dir, "checkpoint", "state.json")):
        return set()
    patterns = RUN_FILES + ["samples/epoch_*.png", "checkpoint/epoch_*.weights.h5", "tensorboard/events.out.*"]
    return {os.path.relpath(path, output_dir).replace(os.sep, "/")
            for pattern in patterns for path in glob.glob(os.path.join(output_dir, *pattern.split("/")))}


def claim_outputs(output_dir, names):
    """Record `names` as the script's files in OUTPUT_DIR, before any of them is written; stop first where one is
    taken by a file the script did not write."""
    refuse_files_not_ours(output_dir, names)
    record_outputs(output_dir, names)


def refuse_files_not_ours(output_dir, names):
    """Stop, with the list, where files of any of these names are in OUTPUT_DIR and the script did not write them."""
    ours = recorded_outputs(output_dir)
    theirs = [name for name in names
              if name not in ours and os.path.lexists(os.path.join(output_dir, *name.split("/")))]
    if theirs:
        shown = ", ".join(theirs[:6]) + (f" and {len(theirs) - 6} more" if len(theirs) > 6 else "")
        raise FixableError(f"{output_dir} holds {shown}, which this script did not write and would overwrite. "
                           f"Your files were left as they were: move those elsewhere, or give another "
                           f"--output_dir.")


def record_outputs(output_dir, names):
    """Add `names` to the record of the script's files in OUTPUT_DIR."""
    ours = recorded_outputs(output_dir)
    if not ours.issuperset(names):
        write_record(output_dir, ours.union(names))


def write_record(output_dir, names):
    write_json(os.path.join(output_dir, OUTPUTS_RECORD), sorted(names))


def remove_outputs(output_dir, keep=lambda name: False):
    """Remove the files the script wrote in OUTPUT_DIR (those `keep` does not keep) and the folders they leave empty;
    nothing else there is touched. How many files were removed."""
    ours = recorded_outputs(output_dir)
    gone, removed = {name for name in ours if not keep(name)}, 0
    for name in sorted(gone):
        path = os.path.join(output_dir, *name.split("/"))
        if os.path.lexists(path):
            os.remove(path)
            removed += 1
    for folder in sorted({os.path.dirname(name) for name in gone if "/" in name}, reverse=True):
        with contextlib.suppress(OSError):  # a folder that still holds the user's files stays
            os.rmdir(os.path.join(output_dir, *folder.split("/")))
    if gone:
        write_record(output_dir, ours - gone)
    return removed


def discard_run(output_dir):
    """Remove an earlier run's files from OUTPUT_DIR (not --generate's or --interpolate's, nor anyone else's)."""
    return remove_outputs(output_dir, keep=lambda name: name.startswith(ACTION_FILES))


def remove_unfinished_writes(output_dir):
    """Remove the temporary files of writes that a kill cut short (atomic_output's .tmp-PID-NAME beside NAME), where
    NAME is one of the script's files; the run holds OUTPUT_DIR's lock, so no other process is writing them."""
    for name in recorded_outputs(output_dir):
        folder, base = os.path.split(os.path.join(output_dir, *name.split("/")))
        for path in glob.glob(os.path.join(glob.escape(folder), f".tmp-*-{glob.escape(base)}")):
            if os.path.basename(path)[5:-len(base) - 1].isdigit():
                os.remove(path)


def writable_folder(folder):
    """Create `folder` if need be and prove it writable (a file created there and removed), or raise the error that
    says so; the folder's path."""
    try:
        os.makedirs(folder, exist_ok=True)  # subfolders are made as files are written (atomic_output)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise FixableError(f"{folder} is not a folder you can write to ({error.strerror}). Give an --output_dir "
                           f"you can write to, e.g. --output_dir ~/dcgan_outputs.") from None
    return folder


@contextlib.contextmanager
def locked_output_dir(output_dir):
    """Create OUTPUT_DIR, prove it writable before anything is trained, and hold its lock for the run: one
    training run per folder at a time. The lock is the operating system's (filelock's
    flock on Linux and macOS, msvcrt on Windows), released when the process ends however it ends, so a killed run
    never blocks the next one; the file stays, since removing it would let two runs lock two different files."""
    path = os.path.join(writable_folder(output_dir), ".lock")
    lock = filelock.FileLock(path, timeout=0, preserve_lock_file=True)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise FixableError(f"another training run is using {output_dir} right now (it holds {path}). Wait for "
                            f"it to end, stop it, or give this run another --output_dir.") from None
    except OSError as error:
        raise FixableError(f"{path} cannot be locked ({error}); the file system of {output_dir} may not "
                            f"support locks (some network drives). Use an --output_dir on a local disk.") from None
    try:
        yield
    finally:
        lock.release()


def bytes_per_epoch(dcgan):
    """About how much more disk an epoch's outputs need while the last epoch's are still there: the checkpoint
    holds every variable (both models, both optimizers' moments, the weight average), the two .keras files the
    saved models' weights, and 1 MB covers the grid, CSVs and plots."""
    def size(variables):
        return sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables)

    everything = dcgan.variables + dcgan.d_optimizer.variables + dcgan.g_optimizer.variables
    return size(everything) + size(dcgan.ema_generator.weights + dcgan.discriminator.weights) + 2 ** 20


def training_minutes(history_rows):
    """Training time of every epoch so far, NaN when an older history did not record it."""
    return sum(row.get("epoch_seconds", math.nan) for row in history_rows) / 60


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block finishes.

    A kill at any moment leaves either the old file or the new one, never half of one. The temporary name
    keeps the real name as its suffix, since Keras and imageio pick the format from the extension.
    """
    folder, name = os.path.split(path)
    os.makedirs(folder or ".", exist_ok=True)
    temp_path = os.path.join(folder, f".tmp-{os.getpid()}-{name}")
    try:
        yield temp_path
        os.replace(temp_path, path)
    finally:
        if os.path.exists(temp_path):
            os.remove(temp_path)


def write_model_tables(models, path):
    """Keras' layer-by-layer summary of each model, into one text file."""
    lines = []
    for model in models:
        model.summary(line_length=100, print_fn=lambda text, **_: lines.append(text))
    with atomic_output(path) as temp_path:
        with open(temp_path, "w", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")


def write_json(path, value):
    with atomic_output(path) as temp_path:
        with open(temp_path, "w", encoding="utf-8") as file:
            json.dump(value, file, indent=1)


def save_npy(path, array):
    with atomic_output(path) as temp_path:
        with open(temp_path, "wb") as file:
            np.save(file, array)


def image_grid(images, rows):
    """(n, 28, 28, 1) floats in [0, 1] -> one uint8 picture of `rows` x ceil(n / rows) digits, 2 px apart."""
    columns = math.ceil(len(images) / rows)
    height, width = images.shape[1:3]
    grid = np.zeros((rows * (height + 2) + 2, columns * (width + 2) + 2), dtype=np.uint8)
    for index, image in enumerate(np.clip(images[..., 0], 0, 1)):
        top, left = 2 + (index // columns) * (height + 2), 2 + (index % columns) * (width + 2)
        grid[top:top + height, left:left + width] = np.rint(image * 255)
    return grid


def save_grid_png(images, path, rows=None):
    """A grid of `rows` rows (default: as square as the count allows) as a PNG; the grid's pixels."""
    grid = image_grid(images, rows or math.isqrt(len(images) - 1) + 1)
    with atomic_output(path) as temp_path:
        Image.fromarray(grid).save(temp_path)
    return grid


def sample_path(samples_dir, epoch):
    return os.path.join(samples_dir, f"epoch_{epoch:03d}.png")


def write_gif(path, frames, frame_seconds):
    """An endlessly looping GIF of `frames` (uint8 pictures of one size)."""
    with atomic_output(path) as temp_path:
        iio.imwrite(temp_path, np.stack(frames), extension=".gif", duration=round(frame_seconds * 1000), loop=0)


def write_csv(path, columns, rows):
    with atomic_output(path) as temp_path:
        with open(temp_path, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def read_csv_rows(path, up_to_epoch):
    """The rows of an earlier run's CSV for epochs 1..up_to_epoch (for a resumed run), as floats."""
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as file:
        # A column that an older version of the script did not write, or left empty, reads as NaN.
        rows = [{k: float(v) if v else math.nan for k, v in row.items()} for row in csv.DictReader(file)]
    return [dict(row, epoch=int(row["epoch"])) for row in rows if row["epoch"] <= up_to_epoch]


def plot_curves(rows, panels, path):
    """A row of line plots over epochs; `panels`: (title, y label, {column: legend label}, y limits or None)."""
    epochs = [row["epoch"] for row in rows]
    figure = Figure(figsize=(5 * len(panels), 4))
    all_axes = figure.subplots(1, len(panels), squeeze=False)
    for axes, (title, ylabel, columns, ylim) in zip(all_axes[0], panels):
        for column, label in columns.items():
            axes.plot(epochs, [row.get(column, math.nan) for row in rows], marker=".", label=label)
        axes.set(xlabel="epoch", ylabel=ylabel, title=title, ylim=ylim)
        axes.legend()
        axes.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_output(path) as temp_path:
        figure.savefig(temp_path, format="png", dpi=100)


def plot_losses(rows, path):
    """losses.png: the two losses and D's mean scores over epochs."""
    plot_curves(rows, [("losses", "loss (D: cross-entropy; G: minus D's logit)",
                        {"d_loss": "d_loss", "g_loss": "g_loss"}, None),
                       ("discriminator scores", "mean probability 'real'",
                        {"d_real": "D(real)", "d_fake": "D(generated)"}, (0, 1))], path)


def plot_metrics(rows, path):
    """metrics.png: FID, precision and recall over epochs, and the class entropy where the classes are digits."""
    panels = [("FID, lower is better", "FID (classifier features)", {"fid": "FID"}, None),
              ("precision and recall", "share", {"precision": "precision", "recall": "recall"}, (0, 1))]
    if "class_entropy" in rows[-1]:
        panels.append(("class entropy of the samples", "bits (all 10 equal: 3.32)",
                       {"class_entropy": "class entropy"}, (0, 3.5)))
    plot_curves(rows, panels, path)


# ------------------------------------------------------------------------------------------------------------------
# Metrics: how good and how varied the digits are, in the feature space of an MNIST classifier
# ------------------------------------------------------------------------------------------------------------------
QUALITY_COLUMNS = ["fid", "kid", "precision", "recall", "class_entropy", "min_class_share",
                   "mean_confidence"] + [f"share_{digit}" for digit in range(10)]
# A conditional generator's "asked for a 7, got a 7": overall, per requested digit; empty for unconditional runs.
QUALITY_COLUMNS += ["class_accuracy"] + [f"class_accuracy_{digit}" for digit in range(10)]
METRICS_COLUMNS = ["epoch", "training_minutes"] + QUALITY_COLUMNS  # metrics.csv; minutes of training so far
# The metrics' classifier is one fixed, committed file (like FID's fixed Inception weights): a classifier retrained
# on another machine would score the same generator differently.
CLASSIFIER_PATH = os.path.join(SCRIPT_DIR, "pretrained", "mnist_classifier.weights.h5")
MIN_REFERENCE_IMAGES = 50      # fewer real images to compare with make FID and precision/recall noise
MIN_CLASS_SHARE_ALARM = 0.02   # a digit class under 2% of the samples (10% when balanced) has nearly vanished
ENTROPY_DROP_ALARM = 0.25      # bits of class entropy lost between two evaluations
NEIGHBOURS = 3                 # precision/recall: a sample is on a manifold inside a point's k-NN ball, this k


def build_classifier():
    """A small convnet for MNIST digits; its 128-unit "features" layer is the metrics' feature space."""
    return keras.Sequential([
        keras.Input(IMAGE_SHAPE),
        layers.Conv2D(32, 3, activation="relu", dtype="float32"),
        layers.MaxPooling2D(dtype="float32"),
        layers.Conv2D(64, 3, activation="relu", dtype="float32"),
        layers.MaxPooling2D(dtype="float32"),
        layers.Flatten(dtype="float32"),
        layers.Dropout(0.3, dtype="float32"),
        layers.Dense(128, activation="relu", name="features", dtype="float32"),
        layers.Dropout(0.3, dtype="float32"),
        layers.Dense(10, activation="softmax", dtype="float32"),
    ], name="mnist_classifier")


def load_classifier(path=CLASSIFIER_PATH):
    """The fixed metric classifier. Its fingerprint is checked, so every figure comes from the same weights."""
    retrain = (f"Restore it with `git checkout -- {os.path.dirname(path)}`, or make a new one with "
               f"`python tools/train_classifier.py` (its figures are then not comparable with README's).")
    try:
        with open(path + ".json", encoding="utf-8") as file:
            card = json.load(file)
        classifier = build_classifier()
        classifier.load_weights(path)
    except Exception as error:  # a missing or damaged file surfaces as many exception types
        raise FixableError(f"the metric classifier {path} could not be loaded ({error}). {retrain}") from None
    if weights_fingerprint(classifier) != card["fingerprint"]:
        raise FixableError(f"the metric classifier {path} does not match its fingerprint {card['fingerprint']} "
                            f"in {path}.json: the weights were changed. {retrain}")
    return classifier


def frechet_distance(features_a, features_b, ridge=1e-6):
    """FID: the Frechet distance between Gaussians fitted to two sets of features.

    ReLU features that are always 0 (or samples that all look alike) make the covariance product singular, and
    its square root then comes out complex or NaN; a small ridge on both covariances keeps it defined.
    """
    if not (np.isfinite(features_a).all() and np.isfinite(features_b).all()):
        raise TrainingDivergedError("the digits scored for FID hold NaN or infinite values, so the generator "
                                    "has diverged; resume from an earlier checkpoint with lower learning rates.")
    mean_a, mean_b = features_a.mean(0), features_b.mean(0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqrtm warns about the singular product; the ridge below handles it
        cov_sqrt = scipy.linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(cov_sqrt).all() or np.abs(np.imag(cov_sqrt)).max() > 1e-3 * max(np.abs(cov_sqrt).max(), 1):
            eye = np.eye(len(cov_a)) * ridge * max(np.trace(cov_a), np.trace(cov_b), 1e-12) / len(cov_a)
            cov_sqrt = scipy.linalg.sqrtm((cov_a + eye) @ (cov_b + eye))
    distance = float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * np.real(cov_sqrt)))
    if not math.isfinite(distance):
        raise ValueError(f"FID came out {distance} even with a ridge on the covariances ({len(features_a)} and "
                         f"{len(features_b)} samples); this is a bug, please report it with the metrics settings.")
    return distance


def kernel_distance(features_a, features_b, subsets=50, subset_size=1000, seed=0):
    """KID: the unbiased squared MMD with the cubic polynomial kernel, averaged over random subsets (one subset,
    the whole of both sets, when neither is larger than `subset_size`: more would repeat it)."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(features_a), len(features_b))
    dim = features_a.shape[1]
    estimates = []
    for _ in range(subsets if max(len(features_a), len(features_b)) > size else 1):
        a = features_a[rng.choice(len(features_a), size, replace=False)].astype(np.float64)
        b = features_b[rng.choice(len(features_b), size, replace=False)].astype(np.float64)
        k_aa, k_bb, k_ab = ((x @ y.T / dim + 1) ** 3 for x, y in ((a, a), (b, b), (a, b)))
        off_diagonal = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (size * (size - 1))
        estimates.append(off_diagonal - 2 * k_ab.mean())
    return float(np.mean(estimates))


def squared_distances(a, b):
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0)


def knn_radii(features, k, chunk=2000):
    """Distance from each point to its k-th nearest other point of the same set."""
    radii = np.empty(len(features), dtype=np.float32)
    for start in range(0, len(features), chunk):
        distances = squared_distances(features[start:start + chunk], features)
        radii[start:start + chunk] = np.sqrt(np.partition(distances, k, axis=1)[:, k])  # index 0 is itself
    return radii


def fraction_inside_manifold(points, manifold, radii, chunk=2000):
    """Share of `points` inside at least one k-NN ball around the points of `manifold`."""
    inside = np.zeros(len(points), dtype=bool)
    for start in range(0, len(points), chunk):
        distances = np.sqrt(squared_distances(points[start:start + chunk], manifold))
        inside[start:start + chunk] = (distances <= radii[None, :]).any(1)
    return float(inside.mean())


def precision_recall(real_features, fake_features, k=NEIGHBOURS, real_radii=None):
    """Improved precision and recall (Kynkaanniemi et al. 2019): how much of the generated digits lie on
    the real digits' k-NN manifold, and how much of the real digits lie on the generated ones'. `real_radii`:
    knn_radii(real_features, k), when the caller already has them."""
    real_features, fake_features = real_features.astype(np.float32), fake_features.astype(np.float32)
    if real_radii is None:
        real_radii = knn_radii(real_features, k)
    precision = fraction_inside_manifold(fake_features, real_features, real_radii)
    recall = fraction_inside_manifold(real_features, fake_features, knn_radii(fake_features, k))
    return precision, recall


ALL_DIGITS = tuple(range(10))


def class_balance(probabilities, digits=ALL_DIGITS):
    """Share of each predicted digit class, its entropy in bits, the smallest share among `digits` (the classes
    the data has: a generator is not faulted for digits it never saw), the mean confidence."""
    shares = np.bincount(probabilities.argmax(1), minlength=10) / len(probabilities)
    nonzero = shares[shares > 0]
    entropy = -(nonzero * np.log2(nonzero)).sum() + 0.0  # + 0.0 turns one class's -0.0 into 0.0
    return {"class_entropy": float(entropy), "min_class_share": float(shares[list(digits)].min()),
            "mean_confidence": float(probabilities.max(1).mean()),
            **{f"share_{digit}": float(share) for digit, share in enumerate(shares)}}


def requested_class_accuracy(probabilities, requested_digits):
    """Asked for a 7, got a 7: the share of samples the classifier reads as the digit they were asked for, overall
    and per requested digit."""
    hits = probabilities.argmax(1) == requested_digits
    return {"class_accuracy": float(hits.mean()),
            **{f"class_accuracy_{digit}": float(hits[requested_digits == digit].mean())
               for digit in np.unique(requested_digits)}}


def class_digits(class_names):
    """The MNIST digit each class stands for, when every class name is one ("0" ... "9"), else None: the metric
    classifier can only judge digits."""
    if not class_names or not all(name in [str(digit) for digit in range(10)] for name in class_names):
        return None
    return np.array([int(name) for name in class_names])


def balanced_labels(count, classes):
    """`count` class indices, every class equally often (within one), in order: a conditional sample set."""
    return (np.arange(count) * classes // count).astype(np.int32) if classes else np.zeros(count, np.int32)


def print_mode_collapse_warnings(metrics, previous, digits):
    for warning in mode_collapse_warnings(metrics, previous, digits):
        print(f"WARNING: {warning}")


def mode_collapse_warnings(metrics, previous, digits=ALL_DIGITS):
    """Plain-language warnings when one of the data's digit classes (`digits`) nearly vanishes or the class entropy
    drops sharply; none for data whose classes are not digits (no class metrics)."""
    alarms = []
    if "class_entropy" not in metrics:
        return alarms
    if metrics["min_class_share"] < MIN_CLASS_SHARE_ALARM:
        rare = [str(d) for d in digits if metrics[f"share_{d}"] < MIN_CLASS_SHARE_ALARM]
        alarms.append(f"possible mode collapse: digit(s) {', '.join(rare)} make up less than "
                      f"{MIN_CLASS_SHARE_ALARM:.0%} of the samples each")
    if previous is not None and previous["class_entropy"] - metrics["class_entropy"] > ENTROPY_DROP_ALARM:
        alarms.append(f"possible mode collapse: class entropy fell from {previous['class_entropy']:.2f} to "
                      f"{metrics['class_entropy']:.2f} bits since the last evaluation")
    return alarms


def format_metrics(metrics):
    text = (f"FID {metrics['fid']:.2f}, KID {metrics['kid']:.4f}, precision {metrics['precision']:.3f}, "
            f"recall {metrics['recall']:.3f}")
    if "class_entropy" in metrics:
        text += (f", class entropy {metrics['class_entropy']:.3f} bits, smallest class "
                 f"{metrics['min_class_share']:.1%}, mean confidence {metrics['mean_confidence']:.3f}")
    if "class_accuracy" in metrics:
        per_digit = {k: v for k, v in metrics.items() if k.startswith("class_accuracy_")}
        worst = min(per_digit, key=per_digit.get)
        text += (f", requested class drawn {metrics['class_accuracy']:.1%} (worst: digit {worst.split('_')[-1]} "
                 f"{per_digit[worst]:.1%})")
    return text


class QualityEvaluator:
    """Scores sets of images against real reference images (MNIST's test digits, or those held out of the user's
    data) in the classifier's feature space; with `digits` (the digits the data's classes are; None where they are
    not digits), also how the classifier reads them as digits."""

    def __init__(self, classifier, reference_images, samples, latent_dim, seed, digits=ALL_DIGITS):
        self.extractor = keras.Model(classifier.inputs,
                                     [classifier.get_layer("features").output, classifier.outputs[0]])
        self.reference_features, _ = self.features_and_probabilities(reference_images)
        # The real digits' k-NN radii are the same at every evaluation; computing them once saves a third of it.
        self.reference_radii = knn_radii(self.reference_features.astype(np.float32), NEIGHBOURS)
        self.samples = samples
        self.latent_dim = latent_dim
        self.seed = seed
        self.digits = None if digits is None else tuple(int(digit) for digit in digits)

    def features_and_probabilities(self, images):
        return self.extractor.predict(images, batch_size=1000, verbose=0)

    def evaluate_images(self, images, requested_digits=None):
        """The metrics of `images`; with `requested_digits` (what a conditional generator was asked to draw, one
        per image) also how often it drew them."""
        features, probabilities = self.features_and_probabilities(images)
        precision, recall = precision_recall(self.reference_features, features, real_radii=self.reference_radii)
        metrics = {"fid": frechet_distance(self.reference_features, features),
                   "kid": kernel_distance(self.reference_features, features),
                   "precision": precision, "recall": recall}
        if self.digits is not None:
            metrics.update(class_balance(probabilities, self.digits))
        if requested_digits is not None and self.digits is not None:
            metrics.update(requested_class_accuracy(probabilities, requested_digits))
        return metrics

    def evaluate_generator(self, generator, class_names=None):
        """The metrics of SAMPLES digits from `generator`; a conditional one is asked for every class equally
        often, and scored on drawing them when its classes (`class_names`, default "0", "1", ...) are digits."""
        classes = generator_classes(generator).count
        labels = balanced_labels(self.samples, classes)
        images = sample(generator, fixed_noise(self.seed, self.samples, self.latent_dim), labels)
        digits = class_digits(class_names or [str(index) for index in range(classes)]) if classes else None
        return self.evaluate_images(images, None if digits is None else digits[labels])


def build_quality_evaluator(data, samples, latent_dim, seed):
    """The fixed classifier with `data`'s reference images (a TrainingData); None, said aloud, when there are too
    few of them. Prints the real data's own scores at the same count, the floor a generator's scores approach:
    FID, KID and precision/recall all depend on how many samples are compared."""
    if len(data.reference) < MIN_REFERENCE_IMAGES:
        print(f"metrics: off, since only {len(data.reference)} real images are there to compare with (at least "
              f"{MIN_REFERENCE_IMAGES} needed); add images, or pass --metrics_every 0 to say so")
        return None
    digits = class_digits(data.class_names)
    evaluator = QualityEvaluator(load_classifier(), data.reference, samples, latent_dim, seed, digits)
    floor = data.pool[random_order(seed, len(data.pool))[:samples]]
    floor_metrics = evaluator.evaluate_images(floor)
    print(f"metrics: against {data.reference_name}; real-data floor ({len(floor):,} training images): "
          f"{format_metrics(floor_metrics)}"
          f"{' (KID is an unbiased estimate: near zero it can come out below it)' if floor_metrics['kid'] < 0 else ''}"
          f"{'' if digits is not None else ' (no class metrics: the classes are not digits)'}")
    return evaluator


# ------------------------------------------------------------------------------------------------------------------
# The saved generator's actions: --generate, --evaluate, --interpolate
# ------------------------------------------------------------------------------------------------------------------
PRETRAINED_GENERATOR_PATH = os.path.join(SCRIPT_DIR, "pretrained", "generator.keras")


def load_saved_generator(path):
    """A saved generator and its class names: for a conditional one those in classes.json beside it, or "0", "1",
    ... when there are none that fit; [] for an unconditional one."""
    if not os.path.exists(path) and path == PRETRAINED_GENERATOR_PATH:
        raise FixableError(f"the committed pretrained generator {path} is missing. Restore it with "
                            f"`git checkout -- {os.path.dirname(path)}`, or train your own and leave out --pretrained.")
    if not os.path.exists(path):
        raise FixableError(f"there is no trained generator at {path}. Train one first with "
                            f"`python train_dcgan.py`, point --output_dir at a finished run's folder, or pass "
                            f"--pretrained to use the committed one.")
    try:
        generator = keras.models.load_model(path)
    except Exception as error:  # a damaged zip or config surfaces as many exception types
        saved_by, cause = saved_keras_version(path), str(error).strip().splitlines()[-1]  # Keras nests its causes
        cause = cause.removeprefix("Exception encountered: ")
        if saved_by and version_tuple(saved_by) > version_tuple(keras.__version__):
            raise FixableError(f"{path} was saved by Keras {saved_by} and does not load in the Keras "
                               f"{keras.__version__} installed here ({cause}). Upgrade Keras: `pip install -U keras` "
                               f"(3.15 or newer, as requirements.txt asks).") from None
        fix = (f"Restore it with `git checkout -- {os.path.dirname(path)}`" if path == PRETRAINED_GENERATOR_PATH
               else "Train again to replace it, or point --output_dir at another run's folder")
        raise FixableError(f"{path} could not be loaded ({cause}). {fix}.") from None
    classes = generator_classes(generator).count
    try:
        with open(os.path.join(os.path.dirname(path), "classes.json"), encoding="utf-8") as file:
            names = json.load(file)
    except (OSError, ValueError):
        names = None
    fits = isinstance(names, list) and len(names) == classes
    return generator, [str(name) for name in names] if fits else [str(index) for index in range(classes)]


def saved_keras_version(path):
    """The version of Keras that saved a .keras file (from the metadata.json inside it), or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            return str(json.loads(archive.read("metadata.json"))["keras_version"])
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile):
        return None


def version_tuple(version):
    """"3.15.1" -> (3, 15, 1); a pre-release's suffix ("3.16.0rc1") is left out."""
    return tuple(int("".join(c for c in part if c.isdigit()) or 0) for part in version.split(".")[:3])


def sample(generator, noise, labels):
    """The generator's digits for `noise` (and, for a conditional one, class indices `labels`) as float32 numpy,
    a thousand at a time. Direct calls rather than predict(): predict would run under a training's strategy."""
    classes, labels = generator_classes(generator), np.asarray(labels, np.int32)
    return np.concatenate([
        np.asarray(generator(generator_inputs(classes, noise[start:start + 1000], labels[start:start + 1000]),
                             training=False), np.float32)
        for start in range(0, len(noise), 1000)])


def generate_digits(output_dir, seed, count, generator_path, digit=None):
    """--generate N [--digit D]: N digits from the saved generator as a grid, single PNGs and a .npy array; from a
    conditional generator N of class D, or of every class equally often with their labels in labels.npy. What an
    earlier --generate left in generated/ is replaced, not mixed in."""
    generator, class_names = load_saved_generator(generator_path)
    if digit is not None and not class_names:
        raise FixableError(f"--digit {digit} needs a generator that draws classes, and this one draws whatever its "
                            f"noise gives (it was trained without labels, or with --noise_class 0). Train one on "
                            f"labelled data with the defaults or --conditional 1, or leave out --digit.")
    if digit is not None and digit not in class_names:
        raise FixableError(f"--digit {digit!r} is not one of this generator's classes: {', '.join(class_names)}.")
    labels = (balanced_labels(count, len(class_names)) if digit is None
              else np.full(count, class_names.index(digit), np.int32))
    out_dir = writable_folder(os.path.join(output_dir, "generated"))  # before the sampling it would waste
    names = [f"generated/{name}" for name in ["grid.png", "digits.npy", *(["labels.npy"] if class_names else []),
                                              *(f"digit_{index:04d}.png" for index in range(count))]]
    claim_outputs(output_dir, names)
    images = sample(generator, fixed_noise(seed, count, latent_dim_of(generator)), labels)
    remove_outputs(output_dir, keep=lambda name, wanted=set(names): not name.startswith("generated/") or name in wanted)
    if class_names:
        save_npy(os.path.join(out_dir, "labels.npy"), labels)
    save_grid_png(images, os.path.join(out_dir, "grid.png"))
    for index, image in enumerate(images):
        with atomic_output(os.path.join(out_dir, f"digit_{index:04d}.png")) as temp_path:
            Image.fromarray(np.rint(image[..., 0] * 255).astype(np.uint8)).save(temp_path, format="PNG")
    save_npy(os.path.join(out_dir, "digits.npy"), images)
    which = f" of class {digit}" if digit is not None else ""
    if class_names and digit is None:
        which = f", every class equally often (labels.npy: class indices of {', '.join(class_names)})"
    print(f"wrote {count} digits{which} to {out_dir}{os.sep}: grid.png, digit_0000.png ... digit_{count - 1:04d}.png, "
          f"digits.npy (shape {images.shape}, values in [0, 1]); seed {seed}")
    return 0


def evaluate_saved(data_source, seed, max_train_images, samples, generator_path):
    """--evaluate: the quality metrics of the saved generator against DATA's reference images, as a table."""
    generator, class_names = load_saved_generator(generator_path)
    data = load_training_data(data_source, seed, max_train_images)
    evaluator = build_quality_evaluator(data, samples, latent_dim_of(generator), seed)
    if evaluator is None:
        raise FixableError(f"--evaluate needs at least {MIN_REFERENCE_IMAGES} real images to compare with, and "
                            f"{data.source} leaves {len(data.reference)}. Add images to it.")
    result = evaluator.evaluate_generator(generator, class_names)
    print(f"\nquality of {generator_path} ({samples:,} samples against {data.reference_name}):")
    for name in QUALITY_COLUMNS:
        if name in result:
            print(f"  {name:18s} {result[name]:.4f}")
    print_mode_collapse_warnings(result, None, evaluator.digits)
    return 0


def slerp(start, end, fraction):
    """Spherical interpolation between latent vectors: the path keeps the norm that Gaussian noise has, where a
    straight line would pass through unlikely, too-short vectors halfway."""
    cos_angle = np.sum(start * end, -1, keepdims=True) / (
        np.linalg.norm(start, axis=-1, keepdims=True) * np.linalg.norm(end, axis=-1, keepdims=True))
    angle = np.arccos(np.clip(cos_angle, -1.0, 1.0))
    sin_angle = np.maximum(np.sin(angle), 1e-6)
    return (np.sin((1 - fraction) * angle) * start + np.sin(fraction * angle) * end) / sin_angle


def latent_loop(keypoints, frames):
    """(frames, ..., latent_dim): a closed path through `keypoints` (k, ..., latent_dim), slerp between
    neighbours, so the last frame leads back into the first."""
    positions = np.arange(frames) * len(keypoints) / frames
    return np.stack([slerp(keypoints[int(p)], keypoints[(int(p) + 1) % len(keypoints)], p - int(p))
                     for p in positions]).astype(np.float32)


def write_interpolation(output_dir, seed, rows, frames, generator_path, keypoints=4):
    """--interpolate: interpolation.gif, a rows x rows grid of digits, each morphing along its own loop through
    `keypoints` random latent points, in `frames` frames that loop seamlessly."""
    generator, class_names = load_saved_generator(generator_path)
    writable_folder(output_dir)
    claim_outputs(output_dir, ["interpolation.gif"])
    digits = rows ** 2
    keypoint_noise = fixed_noise(seed, keypoints * digits, latent_dim_of(generator))
    path = latent_loop(keypoint_noise.reshape(keypoints, digits, -1), frames)
    labels = balanced_labels(digits, len(class_names))  # a conditional generator: classes in order
    pictures = [image_grid(sample(generator, noise, labels), rows) for noise in path]
    gif_path = os.path.join(output_dir, "interpolation.gif")
    write_gif(gif_path, pictures, 0.06)
    print(f"wrote {gif_path}: {len(pictures)} frames of {digits} digits, each looping through {keypoints} random "
          f"latent points (seed {seed})")
    return 0


# ------------------------------------------------------------------------------------------------------------------
# The platform: the CPU, the precision policy, the devices, tf.distribute
# ------------------------------------------------------------------------------------------------------------------
def cpuinfo():
    """The text of /proc/cpuinfo, or "" where there is none (not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            return file.read()
    except OSError:
        return ""


def cpu_has_bf16_units():
    """True on CPUs whose matrix or vector units compute bfloat16 (Intel AMX, AVX512-BF16)."""
    flags = cpuinfo()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def cpu_model_name():
    """The CPU's model name from /proc/cpuinfo (figures depend on it), or "unknown CPU"."""
    return next((line.split(":", 1)[1].strip() for line in cpuinfo().splitlines() if line.startswith("model name")),
                "unknown CPU")


def nvidia_driver_present():
    """True where an NVIDIA driver is installed (Linux's /proc entry, or nvidia-smi on the PATH, as on Windows)."""
    return os.path.exists("/proc/driver/nvidia") or shutil.which("nvidia-smi") is not None


def training_devices():
    """What trains, in words for the log: the GPUs TensorFlow sees, or the CPU, with the fix where an NVIDIA driver
    is installed and TensorFlow sees no GPU (plain `tensorflow` without CUDA's libraries trains on the CPU)."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
        return (f"{len(gpus)} GPU(s): {', '.join(names)}. GPU kernels are not bit-deterministic, so a resumed run "
                f"ends close to an unbroken one, not bit-identical as on a CPU.")
    if not nvidia_driver_present():
        return f"the CPU ({cpu_model_name()})"
    return (f"the CPU ({cpu_model_name()}), although an NVIDIA driver is installed: TensorFlow sees no GPU. On "
            f"Linux, `pip install \"tensorflow[and-cuda]==2.21.*\"` adds the CUDA libraries it needs; on Windows, "
            f"TensorFlow uses a GPU only under WSL2.")


def in_notebook():
    """True inside a Jupyter kernel (Jupyter, JupyterLab, Colab, VS Code's notebooks)."""
    return "ipykernel" in sys.modules


def progress_bar_works():
    """Whether Keras' progress bar shows: on a terminal and in a notebook; not into a file, nor where stdout is
    closed (pythonw, `>&-`), where the log is one plain line per epoch or nothing."""
    return sys.stdout is not None and (in_notebook() or getattr(sys.stdout, "isatty", lambda: False)())


def choose_precision(precision):
    """Resolve PRECISION='auto' to the fastest policy this machine runs well."""
    if precision != "auto":
        return precision
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bf16_units() else "float32"


def make_strategy(name):
    """The tf.distribute strategy for STRATEGY; "mirrored" on a machine without GPUs mirrors its CPU devices."""
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()  # reads the cluster from TF_CONFIG
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        if len(devices) == 1:
            print(f"note: --strategy mirrored found one device ({devices[0].name}) to mirror over, so it trains as "
                  f"one device would. TensorFlow shows a CPU as one device, however many cores it has.")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def replicas_in_words(strategy):
    """How many copies of the models train side by side, in words for the log."""
    replicas = strategy.num_replicas_in_sync
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return f"{replicas} replicas over the workers of a multi-worker run"
    return f"mirrored over {replicas} devices" if strategy is not tf.distribute.get_strategy() else "one device"


def is_chief(strategy):
    """True unless this process is a non-chief worker of a multi-worker run (worker 0 leads when no chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type in (None, "chief"):
        return True
    return (resolver.task_type == "worker" and resolver.task_id == 0
            and "chief" not in resolver.cluster_spec().as_dict())


def check_batch_per_replica(batch_size, group_std, replicas):
    """Each device gets BATCH_SIZE / replicas real digits followed by as many generated ones; the minibatch
    std-dev groups must divide that share, or a group on some device would mix real and generated digits."""
    per_replica, rest = divmod(batch_size, replicas)
    if rest or (group_std and per_replica % group_std):
        divisible = f" divisible by --d_group_std {group_std}" if group_std else ""
        raise FixableError(f"--batch_size {batch_size} over {replicas} devices gives each "
                            f"{batch_size / replicas:g} digits, which must be a whole number{divisible}. "
                            f"Use a --batch_size that is a multiple of {replicas * max(group_std, 1)}.")


def check_workers_agree(strategy, what, value):
    """In a multi-worker run, stop every worker with the same clear error when they hold different values of
    `what` (an integer below 2**24): workers that restored different epochs would all-reduce the gradients of
    different models and hang at the end. Each worker sums its value and its square over all replicas; they
    agree exactly when replicas * sum of squares == sum ** 2."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    mine = tf.constant(float(value), tf.float64)
    total, squares = (float(strategy.reduce("SUM", strategy.run(lambda x=x: tf.identity(x)), axis=None))
                      for x in (mine, mine * mine))
    if strategy.num_replicas_in_sync * squares != total * total:
        raise FixableError(f"the workers of this multi-worker run do not agree on {what} (this one: {value}): "
                            f"each resumed its own OUTPUT_DIR. On several machines, OUTPUT_DIR must be one shared "
                            f"folder; or pass --restart to every worker to train anew.")


# ------------------------------------------------------------------------------------------------------------------
# The command line: flags from the constants, their checks, the action asked for; main() last
# ------------------------------------------------------------------------------------------------------------------
def constant_comments():
    """Each constant's comment in this file, so that --help says what the constants section says."""
    comments = {}
    with open(__file__, encoding="utf-8") as source:
        for line in source:
            name = line.split("=")[0].strip()
            if name in DEFAULT_CONFIG and "#" in line:
                comments[name] = line.split("#", 1)[1].strip()
    return comments


def parse_flag_value(text, default):
    """Turn a command-line string into the type of the constant's default."""
    if isinstance(default, bool):
        words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
        if text.lower() not in words:
            raise ValueError(text)
        return words[text.lower()]
    return type(default)(text)


# The values a text setting can take; argparse refuses others with the list.
CHOICES = {"STRATEGY": ["auto", "mirrored", "multiworker"],
           "PRECISION": ["auto", "float32", "mixed_bfloat16", "mixed_float16"]}
# What each number must be, checked before anything is loaded: (settings, test, the rule as the error says it).
NUMBER_RULES = [
    (["EPOCHS", "BATCH_SIZE", "LATENT_DIM", "D_CHANNELS", "STEPS_PER_EXECUTION", "GRID_ROWS",
      "INTERPOLATION_FRAMES"], lambda value: value >= 1, "at least 1"),
    (["G_CHANNELS"], lambda value: value >= 4, "at least 4: it is quartered on the way to 28x28"),
    (["METRICS_SAMPLES"], lambda value: value >= MIN_METRICS_SAMPLES,
     f"at least {MIN_METRICS_SAMPLES}: precision and recall need each sample's nearest neighbours, FID a "
     f"covariance (10000 is the usual count, 1000 a quick look)"),
    (["MAX_TRAIN_IMAGES", "METRICS_EVERY", "D_GROUP_STD"], lambda value: value >= 0, "0 or more"),
    (["R1_GAMMA"], lambda value: value >= 0, "0 (off) or a positive weight"),
    (["D_LEARNING_RATE", "G_LEARNING_RATE", "GIF_FRAME_SECONDS"], lambda value: value > 0, "a positive number"),
    (["EMA_DECAY", "BETA_1", "DROPOUT"], lambda value: 0 <= value < 1, "at least 0 and below 1"),
    (["LR_DROP_AT", "LR_DROP_FACTOR"], lambda value: 0 < value <= 1, "above 0 and at most 1"),
    (["SEED"], lambda value: 0 <= value < 2 ** 32,
     "0 or more and below 2**32 = 4294967296, the random generators' range"),
]


def build_arg_parser():
    parser = argparse.ArgumentParser(
        description="Train a DCGAN on MNIST. Each flag overrides the constant of the same name in upper case.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter, allow_abbrev=False)
    comments = constant_comments()
    for name, default in DEFAULT_CONFIG.items():
        def convert(text, default=default, name=name):
            try:
                return parse_flag_value(text, default)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{text!r} is not a valid {type(default).__name__} for --{name.lower()} (default {default!r})")
        parser.add_argument(f"--{name.lower()}", dest=name, type=convert, default=default, choices=CHOICES.get(name),
                            metavar=type(default).__name__.upper(), help=comments.get(name, ""))
    parser.add_argument("--digit", metavar="CLASS", default=None,
                        help="with --generate N: N digits of this class (e.g. 7), from a generator that draws "
                             "classes (the default's, or a --conditional 1 one); without it, every class equally")
    parser.add_argument("--pretrained", action="store_true",
                        help="with --generate, --evaluate or --interpolate: use the committed "
                             "pretrained/generator.keras instead of OUTPUT_DIR/generator.keras")
    actions = parser.add_argument_group("one action at a time; training when none is given")
    actions = actions.add_mutually_exclusive_group()
    actions.add_argument("--restart", action="store_true",
                         help="discard the run in OUTPUT_DIR (checkpoint, grids, CSVs, models, GIF) and train anew; "
                              "without it a finished run is kept, and a larger --epochs continues it")
    actions.add_argument("--generate", type=int, metavar="N", default=None,
                         help="write N digits from OUTPUT_DIR/generator.keras to OUTPUT_DIR/generated/ and exit")
    actions.add_argument("--evaluate", action="store_true",
                         help="print the quality metrics of OUTPUT_DIR/generator.keras and exit")
    actions.add_argument("--interpolate", action="store_true",
                         help="write OUTPUT_DIR/interpolation.gif, digits morphing along loops through the latent "
                              "space, from the saved generator, and exit")
    return parser


def validate_config(config):
    """Check every value that can be checked before loading anything; raise FixableError naming the fix."""
    for names, test, rule in NUMBER_RULES:
        for name in names:
            value = config[name]
            if not test(value) or isinstance(value, float) and not math.isfinite(value):
                raise FixableError(f"--{name.lower()} must be {rule} (got {value}).")
    if config["D_GROUP_STD"] and config["BATCH_SIZE"] % config["D_GROUP_STD"]:
        raise FixableError(f"--d_group_std must be 0 (off) or divide --batch_size {config['BATCH_SIZE']} "
                            f"(got {config['D_GROUP_STD']}); the default is {DEFAULT_CONFIG['D_GROUP_STD']}.")
    if config["STRATEGY"] == "multiworker" and "TF_CONFIG" not in os.environ:
        raise FixableError("--strategy multiworker needs the TF_CONFIG environment variable describing the "
                            "cluster and this worker's place in it (see README.md, 'Several GPUs or machines').")


def chosen_action(args):
    """The one action the command line asks for: "train" unless --generate, --evaluate or --interpolate."""
    given = {"generate": args.generate is not None, "evaluate": args.evaluate, "interpolate": args.interpolate}
    action = next((name for name, asked in given.items() if asked), "train")
    if args.generate is not None and args.generate < 1:
        raise FixableError(f"--generate needs a number of digits of at least 1 (got {args.generate}).")
    if args.digit is not None and action != "generate":
        raise FixableError(f"--digit {args.digit} picks the class that --generate N draws; add --generate N.")
    if args.pretrained and action == "train":
        raise FixableError("--pretrained picks the generator for --generate N, --evaluate or --interpolate; "
                            "add one of them (training always starts from fresh weights).")
    return action


def parse_config(argv, settings=None):
    """Parse the command line, and main()'s keyword `settings` as the flags they stand for, into (config dict of
    constants, action arguments with .action the one to take)."""
    parser = build_arg_parser()
    args = parser.parse_args([*argv, *keyword_flags(parser, settings or {})])
    config = {name: getattr(args, name) for name in DEFAULT_CONFIG}
    validate_config(config)
    args.action = chosen_action(args)
    return config, args


def keyword_flags(parser, settings):
    """main()'s keyword settings as the command-line words they stand for: epochs=2 is --epochs 2, pretrained=True is
    --pretrained (and pretrained=False nothing)."""
    switches = {action.dest for action in parser._actions if action.nargs == 0}
    words = []
    for name, value in settings.items():
        if name.lower() in switches:
            words += [f"--{name.lower()}"] if value else []
        else:
            words += [f"--{name.lower()}", str(value)]
    return words


def main(argv=(), **settings):
    """Run the script as its command line does: `argv` holds command-line words (`main(["--epochs", "2"])`),
    `settings` the same by keyword (`main(epochs=2)`, `main(generate=10, digit=7, pretrained=True)`); with neither,
    the defaults (in a notebook too, whose own command line is not read). Returns the exit status: 0 done, 1
    diverged, 2 a problem the message names, 130 interrupted. Keras' precision policy is left as it was found."""
    policy, args = keras.mixed_precision.global_policy(), None
    try:
        config, args = parse_config(argv, settings)
        generator_path = (PRETRAINED_GENERATOR_PATH if args.pretrained
                          else os.path.join(config["OUTPUT_DIR"], "generator.keras"))
        if args.action == "generate":
            return generate_digits(config["OUTPUT_DIR"], config["SEED"], args.generate, generator_path, args.digit)
        if args.action == "evaluate":
            return evaluate_saved(config["DATA"], config["SEED"], config["MAX_TRAIN_IMAGES"], config["METRICS_SAMPLES"],
                                  generator_path)
        if args.action == "interpolate":
            return write_interpolation(config["OUTPUT_DIR"], config["SEED"], config["GRID_ROWS"],
                                       config["INTERPOLATION_FRAMES"], generator_path)
        return train(config, restart=args.restart)
    except SystemExit as stop:  # argparse after --help or a bad flag, which it has explained
        return stop.code
    except KeyboardInterrupt:
        print(f"\ninterrupted; {interrupted_where(config if args and args.action == 'train' else None)}")
        return 130
    except FixableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingDivergedError as error:
        print(f"error: training diverged: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # what the checks above could not foresee: a disk filling up, a folder made read-only
        print(f"error: {error}. Check the disk's free space and the folders' permissions, then run the same command "
              f"again (training resumes after its last saved epoch; every file is whole, old or new).", file=sys.stderr)
        return 2
    finally:
        keras.mixed_precision.set_global_policy(policy)


def interrupted_where(config):
    """Where an interrupted command left things: for a training run (`config`), the epoch to resume after."""
    if config is None:
        return "every file written is whole, old or new."
    try:
        state = read_checkpoint_state(checkpoint_dir_of(config["OUTPUT_DIR"]))
    except FixableError:
        state = None
    if state is None:
        return "no epoch had finished; run the same command again to start anew."
    return f"epoch {state['epoch']} is saved; run the same command again to resume after it."


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
