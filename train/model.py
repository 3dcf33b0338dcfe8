"""The CNN-LSTM speaker model: Conv1D blocks (BatchNorm, ReLU, MaxPooling) -> LSTM -> temporal
mean pooling -> Dense embedding (L2-normalised) -> speaker classifier (softmax or AAM-softmax).

Training uses variable-length inputs; the inference model takes exactly one window at batch 1
(what TFLite and the device run) and shares the trained weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from train.keras_env import keras, tf


@dataclass
class ModelConfig:
    n_ceps: int = 20
    conv_filters: tuple[int, ...] = (64, 128)
    conv_kernels: tuple[int, ...] = (5, 3)
    lstm_units: int = 128
    embedding_dim: int = 128
    pooling: str = "stats"  # temporal pooling of the LSTM outputs: "mean" or "stats" (mean + std)
    head: str = "aam"  # "softmax" (the original design) or "aam" (additive angular margin)
    margin: float = 0.2
    scale: float = 30.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        d["conv_filters"] = tuple(d["conv_filters"])
        d["conv_kernels"] = tuple(d["conv_kernels"])
        return cls(**d)


def _l2(x):
    return tf.math.l2_normalize(x, axis=-1)


def _mean_std(x):
    """Statistics pooling with builtin TFLite ops only (MEAN, MUL, SUB, RSQRT, CONCATENATION).
    std = var * rsqrt(var): int8 SQRT (v2) is newer than tflite-runtime 2.14, int8 RSQRT is not."""
    mean = tf.reduce_mean(x, axis=1)
    var = tf.maximum(tf.reduce_mean(x * x, axis=1) - mean * mean, 0.0) + 1e-5
    return tf.concat([mean, var * tf.math.rsqrt(var)], axis=-1)


def build_embedder(cfg: ModelConfig, frames: int | None = None, batch_size: int | None = None) -> keras.Model:
    """Features (batch, frames, n_ceps) -> unit embedding. Layer names are fixed so weights
    move between the training and the inference graph."""
    inp = keras.Input(shape=(frames, cfg.n_ceps), batch_size=batch_size, name="mfcc")
    x = inp
    for i, (f, k) in enumerate(zip(cfg.conv_filters, cfg.conv_kernels)):
        x = keras.layers.Conv1D(f, k, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        x = keras.layers.MaxPooling1D(2, padding="same", name=f"pool{i}")(x)
    x = keras.layers.LSTM(cfg.lstm_units, return_sequences=True, name="lstm")(x)
    if cfg.pooling == "stats":
        x = keras.layers.Lambda(_mean_std, name="temporal_pool")(x)
    else:
        x = keras.layers.GlobalAveragePooling1D(name="temporal_pool")(x)
    x = keras.layers.Dense(cfg.embedding_dim, name="embedding")(x)
    out = keras.layers.Lambda(_l2, name="l2norm")(x)
    return keras.Model(inp, out, name="speaker_embedder")


class SpeakerHead(keras.layers.Layer):
    """Classifier over unit embeddings. 'softmax': a plain dense softmax layer; 'aam': cosine
    logits with an additive angular margin on the target class (ArcFace)."""

    def __init__(self, n_classes: int, head: str, margin: float, scale: float, **kw):
        super().__init__(**kw)
        self.n_classes, self.head, self.margin, self.scale = n_classes, head, margin, scale

    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=(int(input_shape[-1]), self.n_classes),
                                 initializer="glorot_uniform", trainable=True)
        self.b = self.add_weight(name="b", shape=(self.n_classes,), initializer="zeros",
                                 trainable=self.head == "softmax")

    def call(self, emb, labels=None):
        if self.head == "softmax":
            return tf.matmul(emb, self.w) + self.b
        cos = tf.matmul(_l2(emb), tf.math.l2_normalize(self.w, axis=0))
        if labels is None:
            return self.scale * cos
        cos = tf.clip_by_value(cos, -1.0 + 1e-7, 1.0 - 1e-7)
        target = tf.cos(tf.acos(cos) + self.margin)
        onehot = tf.one_hot(labels, self.n_classes)
        return self.scale * (onehot * target + (1.0 - onehot) * cos)


def inference_model(trained: keras.Model, cfg: ModelConfig, frames: int) -> keras.Model:
    """The batch-1, fixed-window copy of `trained` that gets exported."""
    model = build_embedder(cfg, frames=frames, batch_size=1)
    model.set_weights(trained.get_weights())
    return model
