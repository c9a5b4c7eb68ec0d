"""FID, KID, precision/recall, class balance and the mode-collapse alarm, on real digits and on noise."""
import json
import os
import shutil

import numpy as np
import pytest

import train_dcgan


@pytest.fixture(scope="module")
def evaluator(mnist_test):
    classifier = train_dcgan.load_classifier()
    return train_dcgan.QualityEvaluator(classifier, mnist_test[0][:2000], samples=500, latent_dim=128, seed=0)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((2000, 16)) @ rng.standard_normal((16, 16))
    assert abs(train_dcgan.frechet_distance(features, features)) < 1e-6
    distances = [train_dcgan.frechet_distance(features, features + rng.standard_normal(features.shape) * s)
                 for s in (0.1, 0.5, 2.0)]
    assert distances[0] < distances[1] < distances[2]


def test_kid_and_precision_recall_of_a_set_with_itself():
    features = np.random.default_rng(1).standard_normal((600, 8)).astype(np.float32)
    assert abs(train_dcgan.kernel_distance(features, features, subsets=5, subset_size=300)) < 0.05
    assert train_dcgan.precision_recall(features, features) == (1.0, 1.0)


def test_one_repeated_class_has_low_entropy_and_raises_the_alarm():
    probabilities = np.eye(10)[[3] * 95 + [1] * 5]
    balance = train_dcgan.class_balance(probabilities)
    assert balance["class_entropy"] < 0.5 and balance["min_class_share"] == 0.0
    warnings = train_dcgan.mode_collapse_warnings(balance, None)
    assert warnings and "0, 2, 4, 5, 6, 7, 8, 9" in warnings[0]


def test_balanced_classes_raise_no_alarm_but_a_sharp_entropy_drop_does():
    balanced = train_dcgan.class_balance(np.eye(10)[np.arange(1000) % 10])
    assert balanced["class_entropy"] == pytest.approx(np.log2(10))
    assert train_dcgan.mode_collapse_warnings(balanced, None) == []
    skewed = train_dcgan.class_balance(np.eye(10)[np.r_[np.arange(500) % 10, np.zeros(500, int)]])
    assert skewed["min_class_share"] > train_dcgan.MIN_CLASS_SHARE_ALARM
    assert any("entropy fell" in w for w in train_dcgan.mode_collapse_warnings(skewed, balanced))


def test_real_digits_beat_noise_on_every_measure(evaluator, mnist_train):
    real = evaluator.evaluate_images(mnist_train[0][:500])
    noise = evaluator.evaluate_images(np.random.default_rng(0).random((500, 28, 28, 1), dtype=np.float32))
    assert real["fid"] < noise["fid"] and real["kid"] < noise["kid"]
    assert real["recall"] > noise["recall"]
    # Precision cannot tell noise from digits in this feature space (noise lands among faint real digits, whose
    # k-NN balls are wide); it does tell digits moved off the real digits' manifold.
    shifted = evaluator.evaluate_images(np.roll(mnist_train[0][:500], 4, axis=2))
    assert real["precision"] > shifted["precision"] + 0.3
    assert real["class_entropy"] > noise["class_entropy"] and real["min_class_share"] > noise["min_class_share"]
    assert real["mean_confidence"] > noise["mean_confidence"]
    assert train_dcgan.mode_collapse_warnings(real, None) == []


def test_the_evaluators_kept_reference_radii_give_what_fresh_ones_give(evaluator, mnist_train):
    """The evaluator computes the real digits' 3-NN radii once; its precision and recall must equal the ones
    computed from scratch."""
    images = np.roll(mnist_train[0][:500], 2, axis=1)  # digits a little off the real manifold
    features, _ = evaluator.features_and_probabilities(images)
    kept = evaluator.evaluate_images(images)
    assert (kept["precision"], kept["recall"]) == train_dcgan.precision_recall(evaluator.reference_features, features)
    assert 0 < kept["precision"] < 1


def test_the_committed_classifier_matches_its_card_and_reads_real_digits(mnist_test):
    classifier = train_dcgan.load_classifier()
    with open(train_dcgan.CLASSIFIER_PATH + ".json") as file:
        card = json.load(file)
    assert train_dcgan.weights_fingerprint(classifier) == card["fingerprint"]
    images, labels = mnist_test
    accuracy = (classifier.predict(images[:2000], verbose=0).argmax(1) == labels[:2000]).mean()
    assert accuracy > 0.98 and card["test_accuracy"] > 0.99


def test_a_changed_classifier_is_refused(tmp_path):
    path = str(tmp_path / "mnist_classifier.weights.h5")
    shutil.copy(train_dcgan.CLASSIFIER_PATH, path)
    with open(train_dcgan.CLASSIFIER_PATH + ".json") as file:
        card = json.load(file)
    with open(path + ".json", "w") as file:
        json.dump(dict(card, fingerprint="0" * 16), file)
    with pytest.raises(train_dcgan.BadInputError, match="does not match its fingerprint"):
        train_dcgan.load_classifier(path)
    os.remove(path + ".json")
    with pytest.raises(train_dcgan.BadInputError, match="could not be loaded"):
        train_dcgan.load_classifier(path)


def test_classifier_training_is_deterministic_and_round_trips(tmp_path, mnist_train, mnist_test):
    data = (mnist_train[0][:512], mnist_train[1][:512], mnist_test[0][:256], mnist_test[1][:256])
    first, accuracy = train_dcgan.train_classifier(*data, epochs=1)
    second, _ = train_dcgan.train_classifier(*data, epochs=1)
    assert train_dcgan.weights_fingerprint(first) == train_dcgan.weights_fingerprint(second)
    path = str(tmp_path / "classifier.weights.h5")
    card = train_dcgan.save_classifier(first, accuracy, path)
    assert card["test_accuracy"] == accuracy
    assert train_dcgan.weights_fingerprint(train_dcgan.load_classifier(path)) == card["fingerprint"]


def test_fid_stays_finite_for_singular_covariances_and_refuses_nan():
    rng = np.random.default_rng(0)
    real = np.maximum(rng.standard_normal((500, 128)), 0)
    real[:, :40] = 0  # ReLU units that never fire
    one_digit = np.tile(real[:1], (500, 1))  # a collapsed generator: every sample alike
    distance = train_dcgan.frechet_distance(real, one_digit)
    assert np.isfinite(distance) and distance > train_dcgan.frechet_distance(real, real[::-1]) + 10
    with pytest.raises(train_dcgan.TrainingDivergedError, match="NaN or infinite"):
        train_dcgan.frechet_distance(real, np.full_like(real, np.nan))
