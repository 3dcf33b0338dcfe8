"""Import tf_keras (legacy Keras 2) the one way the export needs: Keras 3 LSTMs do not become a
fused TFLite UNIDIRECTIONAL_SEQUENCE_LSTM, tf_keras ones do."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
