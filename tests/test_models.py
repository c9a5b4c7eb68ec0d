"""The models' shapes and ranges, one training step, the resume state, the NaN guard."""
import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import train_dcgan
from conftest import epoch_outputs


def assert_same_weights(weights_a, weights_b):
    assert len(weights_a) == len(weights_b)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)


def weights_differ(weights_a, weights_b):
    return any(not np.array_equal(a, b) for a, b in zip(weights_a, weights_b))


@pytest.fixture
def dcgan(tiny_config):
    keras.utils.set_random_seed(0)
    return train_dcgan.build_dcgan(tiny_config)


def test_generator_maps_noise_to_digits_in_unit_range(dcgan):
    noise = np.random.default_rng(0).standard_normal((5, train_dcgan.LATENT_DIM)).astype(np.float32)
    images = np.asarray(dcgan.generator(noise, training=False))
    assert images.shape == (5, 28, 28, 1)
    assert images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_a_digit_is_drawn_the_same_in_training_and_sampling_whatever_its_batch(tiny_config, small_digits):
    """The generator normalises within each digit: the discriminator trains the generator that is sampled."""
    keras.utils.set_random_seed(0)
    dcgan = train_dcgan.build_dcgan(dict(tiny_config, PRECISION="float32"))
    noise = np.random.default_rng(0).standard_normal((32, train_dcgan.LATENT_DIM)).astype(np.float32)
    dcgan.train_step((small_digits[0][:32], noise))  # weights away from their initial values
    in_training = np.asarray(dcgan.generator(noise, training=True))
    np.testing.assert_allclose(np.asarray(dcgan.generator(noise[:3], training=True)), in_training[:3], atol=1e-5)
    np.testing.assert_allclose(np.asarray(dcgan.generator(noise, training=False)), in_training, atol=1e-5)


def test_discriminator_gives_one_float32_logit_per_digit(dcgan, small_digits):
    logits = np.asarray(dcgan.discriminator(small_digits[0][:7], training=False))
    assert logits.shape == (7, 1) and logits.dtype == np.float32


def test_generator_loss_is_minus_the_mean_logit(tiny_config):
    dcgan = train_dcgan.build_dcgan(tiny_config)
    logits = np.array([[2.5], [-1.0], [0.3], [-4.0]], np.float32)
    np.testing.assert_allclose(float(dcgan.generator_loss(logits)), -np.mean(logits), rtol=1e-5)


def test_one_train_step_changes_both_models_and_returns_finite_losses(dcgan, small_digits):
    before_g = [w.copy() for w in dcgan.generator.get_weights()]
    before_d = [w.copy() for w in dcgan.discriminator.get_weights()]
    noise = np.random.default_rng(0).standard_normal((32, 128)).astype(np.float32)
    logs = dcgan.train_step((small_digits[0][:32], noise))
    assert all(math.isfinite(float(logs[key])) for key in ("d_loss", "g_loss", "d_real", "d_fake"))
    assert weights_differ(before_g, dcgan.generator.get_weights())
    assert weights_differ(before_d, dcgan.discriminator.get_weights())


def test_ema_generator_is_the_moving_average_of_the_trained_weights(tiny_config, small_digits):
    dcgan = train_dcgan.build_dcgan(dict(tiny_config, EMA_DECAY=0.05))
    start = [w.copy() for w in dcgan.generator.get_weights()]
    assert_same_weights(start, dcgan.ema_generator.get_weights())  # the average starts at the initial weights
    noise = np.random.default_rng(0).standard_normal((32, 128)).astype(np.float32)
    dcgan.train_step((small_digits[0][:32], noise))
    trained = dcgan.generator.get_weights()
    for w0, w1, average in zip(start, trained, dcgan.ema_generator.get_weights()):
        np.testing.assert_allclose(average, 0.05 * w0 + 0.95 * w1, rtol=1e-5, atol=1e-7)
    assert weights_differ(trained, dcgan.ema_generator.get_weights())


def test_ema_decay_zero_samples_with_the_latest_weights(tiny_config, small_digits):
    dcgan = train_dcgan.build_dcgan(dict(tiny_config, EMA_DECAY=0.0))
    noise = np.random.default_rng(0).standard_normal((32, 128)).astype(np.float32)
    dcgan.train_step((small_digits[0][:32], noise))
    assert_same_weights(dcgan.generator.get_weights(), dcgan.ema_generator.get_weights())


def test_checkpoint_weights_restore_both_optimizers_moments(dcgan, tiny_config, small_digits, tmp_path):
    dcgan.fit(train_dcgan.make_dataset(small_digits[0], 32, 0, 128), epochs=1, verbose=0, shuffle=False)
    path = str(tmp_path / "state.weights.h5")
    dcgan.save_weights(path)
    restored = train_dcgan.build_dcgan(tiny_config)
    restored.load_weights(path)
    for trained, loaded in ((dcgan.d_optimizer, restored.d_optimizer), (dcgan.g_optimizer, restored.g_optimizer)):
        assert int(loaded.iterations) == int(trained.iterations) == 9  # 300 // 32 steps
        for a, b in zip(trained.variables, loaded.variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert_same_weights(dcgan.ema_generator.get_weights(), restored.ema_generator.get_weights())
    assert weights_differ(dcgan.ema_generator.get_weights(), dcgan.generator.get_weights())


def test_group_std_feature_is_each_groups_spread_and_never_mixes_groups():
    layer = train_dcgan.GroupStdDev(2)
    same = np.ones((2, 3, 3, 2), np.float32)                    # a group of identical digits: spread 0
    different = np.stack([np.zeros((3, 3, 2)), np.full((3, 3, 2), 4.0)]).astype(np.float32)  # spread 2
    out = np.asarray(layer(np.concatenate([same, different])))
    assert out.shape == (4, 3, 3, 3)
    np.testing.assert_array_equal(out[..., :2], np.concatenate([same, different]))
    np.testing.assert_allclose(out[:2, ..., 2], 0.0, atol=1e-3)
    np.testing.assert_allclose(out[2:, ..., 2], 2.0, rtol=1e-5)
    odd = np.asarray(layer(different[:1]))                      # one digit: a group of one, spread 0
    np.testing.assert_allclose(odd[..., 2], 0.0, atol=1e-3)



def test_row_dot_is_kerass_dot_row_by_row():
    rng = np.random.default_rng(0)
    first, second = (rng.standard_normal((64, 3185)).astype(np.float32) for _ in range(2))
    ours = np.asarray(train_dcgan.RowDot()([first, second]))
    assert ours.shape == (64, 1)
    np.testing.assert_allclose(ours, np.asarray(keras.layers.Dot(axes=1)([first, second])), rtol=1e-4, atol=1e-3)


def test_discriminator_with_group_std_trains_and_reloads(tiny_config, small_digits, tmp_path):
    dcgan = train_dcgan.build_dcgan(dict(tiny_config, D_GROUP_STD=4))
    assert any(isinstance(layer, train_dcgan.GroupStdDev) for layer in dcgan.discriminator.layers)
    noise = np.random.default_rng(0).standard_normal((32, 128)).astype(np.float32)
    logs = dcgan.train_step((small_digits[0][:32], noise))
    assert math.isfinite(float(logs["d_loss"])) and math.isfinite(float(logs["g_loss"]))
    path = str(tmp_path / "discriminator.keras")
    dcgan.discriminator.save(path)
    reloaded = keras.models.load_model(path)
    digits = small_digits[0][:8]
    np.testing.assert_allclose(np.asarray(reloaded(digits, training=False)),
                               np.asarray(dcgan.discriminator(digits, training=False)), rtol=1e-5, atol=1e-5)


def test_nan_loss_stops_training_with_a_clear_error(dcgan, tmp_path):
    poisoned = np.full((64, 28, 28, 1), np.nan, dtype=np.float32)
    with pytest.raises(train_dcgan.TrainingDivergedError, match="d_loss=nan.* at step [0-9]+ of epoch 1"):
        dcgan.fit(train_dcgan.make_dataset(poisoned, 32, 0, 128), epochs=1, verbose=0, shuffle=False,
                  callbacks=[train_dcgan.StopOnNonFiniteLoss(), epoch_outputs(tmp_path)])
    assert not os.path.exists(tmp_path / "samples")  # stopped before the epoch wrote anything


def test_learning_rates_drop_for_the_runs_last_epochs_and_a_resumed_run_lands_on_them(dcgan, small_digits):
    """The rates each epoch's steps train at: the configured ones, then LR_DROP_FACTOR of them after LR_DROP_AT of
    the run; a run resumed past the drop (its Adams hold whatever the checkpoint saved) trains at the dropped ones."""
    rates_seen = []

    class RecordRates(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                rates_seen.append([float(self.model.d_optimizer.learning_rate),
                                   float(self.model.g_optimizer.learning_rate)])

    def fit(initial_epoch):
        drop = train_dcgan.LearningRateDrop([4e-4, 2e-4], last_epoch=5, drop_at=0.6, drop_factor=0.25)
        dcgan.fit(train_dcgan.make_dataset(small_digits[0][:64], 32, 0, 128), epochs=5, initial_epoch=initial_epoch,
                  verbose=0, shuffle=False, callbacks=[drop, RecordRates()])

    fit(initial_epoch=0)
    np.testing.assert_allclose(rates_seen, [[4e-4, 2e-4]] * 3 + [[1e-4, 5e-5]] * 2, rtol=1e-6)
    for optimizer in (dcgan.d_optimizer, dcgan.g_optimizer):
        optimizer.learning_rate = 0.5  # what a checkpoint's Adam might hold
    rates_seen.clear()
    fit(initial_epoch=3)
    np.testing.assert_allclose(rates_seen, [[1e-4, 5e-5]] * 2, rtol=1e-6)


@pytest.mark.parametrize("last_epoch, drop_at, first_dropped", [(50, 0.8, 41), (10, 0.8, 9), (2, 0.8, 3), (50, 1, 51)])
def test_the_first_epoch_at_dropped_rates(last_epoch, drop_at, first_dropped):
    assert train_dcgan.first_dropped_epoch(last_epoch, drop_at) == first_dropped


def test_precision_auto_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(train_dcgan.tf.config, "list_physical_devices", lambda kind=None: [])  # as if no GPU
    monkeypatch.setattr(train_dcgan, "cpu_has_bf16_units", lambda: True)
    assert train_dcgan.choose_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(train_dcgan, "cpu_has_bf16_units", lambda: False)
    assert train_dcgan.choose_precision("auto") == "float32"
    assert train_dcgan.choose_precision("mixed_float16") == "mixed_float16"


def test_float16_path_scales_the_loss_and_trains(tiny_config, small_digits):
    """The GPU policy's code path (loss-scaled float16) runs on the CPU too, with finite losses."""
    dcgan = train_dcgan.build_dcgan(dict(tiny_config, PRECISION="mixed_float16"))
    try:
        assert isinstance(dcgan.d_optimizer, keras.optimizers.LossScaleOptimizer)
        noise = np.random.default_rng(0).standard_normal((2, 32, 128)).astype(np.float32)
        logs = dcgan.train_step((small_digits[0][:32], noise[0]))
        assert all(math.isfinite(float(logs[key])) for key in ("d_loss", "g_loss"))
        images = np.asarray(dcgan.generator(noise[0], training=False))
        assert images.dtype == np.float32 and images.shape == (32, 28, 28, 1)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_precision_auto_picks_float16_on_a_gpu(monkeypatch):
    monkeypatch.setattr(train_dcgan.tf.config, "list_physical_devices",
                        lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    assert train_dcgan.choose_precision("auto") == "mixed_float16"


def test_nan_in_epoch_two_keeps_epoch_one_outputs(tiny_config, small_digits, tmp_path):
    """The guard stops before the NaN epoch's outputs overwrite the good ones (models, grid, checkpoint)."""
    dcgan = train_dcgan.build_dcgan(tiny_config)
    poison = train_dcgan.tf.Variable(0.0)  # becomes NaN after epoch 1; the input pipeline reads it each batch
    data = train_dcgan.make_dataset(small_digits[0], 32, 0, 128).map(lambda x, noise: (x + poison, noise))

    class PoisonAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            poison.assign(float("nan"))

    callbacks = [train_dcgan.StopOnNonFiniteLoss(), epoch_outputs(tmp_path, run_facts={"config": tiny_config}),
                 PoisonAfterFirstEpoch()]
    with pytest.raises(train_dcgan.TrainingDivergedError, match="epoch 2"):
        dcgan.fit(data, epochs=3, verbose=0, shuffle=False, callbacks=callbacks)
    assert sorted(os.listdir(tmp_path / "samples")) == ["epoch_001.png"]
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text())["epoch"] == 1
    saved = keras.models.load_model(str(tmp_path / "generator.keras"))
    images = np.asarray(saved(np.zeros((2, 128), np.float32)))
    assert np.isfinite(images).all()


def test_saved_generator_is_the_averaged_one(dcgan, small_digits, tmp_path):
    dcgan.fit(train_dcgan.make_dataset(small_digits[0], 32, 0, 128), epochs=1, verbose=0, shuffle=False,
              callbacks=[epoch_outputs(tmp_path, last_epoch=1)])
    saved = keras.models.load_model(str(tmp_path / "generator.keras")).get_weights()
    assert_same_weights(saved, dcgan.ema_generator.get_weights())
    assert weights_differ(saved, dcgan.generator.get_weights())


def real_slopes(discriminator, images):
    images = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        logit_sum = tf.reduce_sum(discriminator(images, training=False))
    return float(tf.reduce_mean(tf.reduce_sum(tf.square(tape.gradient(logit_sum, images)), [1, 2, 3])))


def test_r1_penalty_runs_on_its_schedule_and_flattens_d_around_real_digits(tiny_config, small_digits, monkeypatch):
    config = dict(tiny_config, PRECISION="float32", STEPS_PER_EXECUTION=1, DROPOUT=0.0)
    dcgan = train_dcgan.build_dcgan(dict(config, R1_GAMMA=2.0))
    real = tf.constant(small_digits[0][:32])
    penalty_now = float(dcgan.real_gradient_penalty(real, []))  # step 0: a penalty step
    expected = 0.5 * 2.0 * train_dcgan.R1_INTERVAL * real_slopes(dcgan.discriminator, small_digits[0][:32])
    assert penalty_now == pytest.approx(expected, rel=1e-4) and penalty_now > 0
    dcgan.d_optimizer.iterations.assign(1)
    assert float(dcgan.real_gradient_penalty(real, [])) == 0.0  # lazy: not on the steps in between

    monkeypatch.setattr(train_dcgan, "R1_INTERVAL", 1)
    slopes = {}
    for gamma in (0.0, 10.0):
        keras.utils.set_random_seed(0)
        model = train_dcgan.build_dcgan(dict(config, R1_GAMMA=gamma))
        model.fit(train_dcgan.make_dataset(small_digits[0], 32, 0, 128), epochs=3, verbose=0, shuffle=False)
        slopes[gamma] = real_slopes(model.discriminator, small_digits[0][:128])
    assert slopes[10.0] < 0.5 * slopes[0.0], slopes
