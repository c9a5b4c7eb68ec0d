"""Retrain the metrics' fixed MNIST classifier, pretrained/mnist_classifier.weights.h5, deterministically.

    python tools/train_classifier.py

The metrics judge every generator in the feature space of one committed classifier, as FID judges with one fixed
Inception network: a classifier retrained elsewhere would score the same generator differently, so the training
script only ever loads the committed file (and checks its fingerprint). This tool is how that file was made: seed
0, the 60,000 MNIST training digits, 6 epochs, op determinism on, so the same machine type gives the same bits.
After retraining, the figures in README.md are no longer comparable with new ones.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import train_dcgan  # noqa: E402  (first: it quiets TensorFlow's start-up lines)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

EPOCHS = 6


def train_classifier(train_images, train_labels, test_images, test_labels, epochs=EPOCHS, seed=0):
    """A new metric classifier and its test accuracy: the same data, seed and machine give bit-identical weights."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()  # no public off switch: this process trains the classifier only
    classifier = train_dcgan.build_classifier()
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                       metrics=["accuracy"])
    classifier.fit(train_images, train_labels, batch_size=128, epochs=epochs, verbose=2)
    accuracy = classifier.evaluate(test_images, test_labels, batch_size=1000, verbose=0)[1]
    return classifier, float(accuracy)


def save_classifier(classifier, accuracy, path=train_dcgan.CLASSIFIER_PATH):
    """The weights, and beside them the JSON card with their fingerprint that load_classifier checks."""
    uncompiled = train_dcgan.build_classifier()  # the weights alone: a compiled model's file also holds Adam's moments
    uncompiled.set_weights(classifier.get_weights())
    with train_dcgan.atomic_output(path) as temp_path:
        uncompiled.save_weights(temp_path)
    card = {"fingerprint": train_dcgan.weights_fingerprint(classifier), "test_accuracy": accuracy,
            "tensorflow": tf.__version__, "keras": keras.__version__, "cpu": train_dcgan.cpu_model_name()}
    train_dcgan.write_json(path + ".json", card)
    return card


def main():
    train, test = (train_dcgan.load_digits("auto", split)[:2] for split in ("train", "test"))
    classifier, accuracy = train_classifier(*train, *test)
    card = save_classifier(classifier, accuracy)
    print(f"wrote {train_dcgan.CLASSIFIER_PATH}: test accuracy {accuracy:.4f}, fingerprint {card['fingerprint']}")


if __name__ == "__main__":
    main()
