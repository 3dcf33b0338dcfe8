"""The CNN-LSTM speaker model: Conv1D blocks (BatchNorm, ReLU, MaxPooling; optionally residual with
squeeze-excitation) -> LSTM -> temporal pooling (mean, statistics or attentive statistics) -> Dense
embedding (L2-normalised) -> speaker classifier (softmax or AAM-softmax).

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
    # temporal pooling of the LSTM outputs: "mean", "stats" (mean + std) or "attentive" (weighted mean + std)
    pooling: str = "stats"
    attention_units: int = 64  # hidden width of the attentive pooling's frame-scoring MLP
    conv_blocks: str = "plain"  # "plain" (conv, BN, ReLU) or "residual" (two convs, squeeze-excitation, shortcut)
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


def _with_std(mean, mean_sq):
    """[mean, std] from the first two moments with builtin TFLite ops only (MUL, SUB, RSQRT,
    CONCATENATION). std = var * rsqrt(var): int8 SQRT (v2) is newer than tflite-runtime 2.14, int8
    RSQRT is not."""
    var = tf.maximum(mean_sq - mean * mean, 0.0) + 1e-5
    return tf.concat([mean, var * tf.math.rsqrt(var)], axis=-1)


def _mean_std(x):
    """Statistics pooling: mean and std of the frames."""
    return _with_std(tf.reduce_mean(x, axis=1), tf.reduce_mean(x * x, axis=1))


def _weighted_mean_std(inputs):
    """Attentive statistics pooling (Okabe et al. 2018): mean and std of the frames under the
    attention weights. The scores become weights by a softmax over the last axis, the only axis
    TFLite's SOFTMAX takes."""
    x, scores = inputs
    weights = tf.expand_dims(tf.nn.softmax(tf.squeeze(scores, axis=-1), axis=-1), axis=-1)
    return _with_std(tf.reduce_sum(weights * x, axis=1), tf.reduce_sum(weights * x * x, axis=1))


def _attentive_pool(x, cfg: ModelConfig):
    """A small MLP scores every frame; the scores weight the statistics pooling."""
    hidden = keras.layers.Dense(cfg.attention_units, activation="tanh", name="attention_hidden")(x)
    scores = keras.layers.Dense(1, name="attention_score")(hidden)
    return keras.layers.Lambda(_weighted_mean_std, name="temporal_pool")([x, scores])


def _temporal_pool(x, cfg: ModelConfig):
    if cfg.pooling == "attentive":
        return _attentive_pool(x, cfg)
    if cfg.pooling == "stats":
        return keras.layers.Lambda(_mean_std, name="temporal_pool")(x)
    return keras.layers.GlobalAveragePooling1D(name="temporal_pool")(x)


def _plain_block(x, i: int, filters: int, kernel: int):
    x = keras.layers.Conv1D(filters, kernel, padding="same", use_bias=False, name=f"conv{i}")(x)
    x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
    return keras.layers.ReLU(name=f"relu{i}")(x)


def _squeeze_excite(x, i: int, filters: int):
    """Channel gates from the block's mean over time (Hu et al. 2018), reduction 8."""
    s = keras.layers.GlobalAveragePooling1D(keepdims=True, name=f"se{i}_pool")(x)
    s = keras.layers.Dense(max(filters // 8, 4), activation="relu", name=f"se{i}_down")(s)
    s = keras.layers.Dense(filters, activation="sigmoid", name=f"se{i}_up")(s)
    return keras.layers.Multiply(name=f"se{i}_scale")([x, s])


def _residual_block(x, i: int, filters: int, kernel: int):
    """Conv-BN-ReLU-Conv-BN, squeeze-excitation, plus a shortcut (1x1 conv + BN when the width
    changes), then ReLU."""
    y = _plain_block(x, i, filters, kernel)
    y = keras.layers.Conv1D(filters, kernel, padding="same", use_bias=False, name=f"conv{i}b")(y)
    y = keras.layers.BatchNormalization(name=f"bn{i}b")(y)
    y = _squeeze_excite(y, i, filters)
    if x.shape[-1] != filters:
        x = keras.layers.Conv1D(filters, 1, use_bias=False, name=f"shortcut{i}")(x)
        x = keras.layers.BatchNormalization(name=f"shortcut_bn{i}")(x)
    return keras.layers.ReLU(name=f"res{i}_relu")(keras.layers.Add(name=f"res{i}_add")([x, y]))


def build_embedder(cfg: ModelConfig, frames: int | None = None, batch_size: int | None = None) -> keras.Model:
    """Features (batch, frames, n_ceps) -> unit embedding. Layer names are fixed so weights
    move between the training and the inference graph."""
    inp = keras.Input(shape=(frames, cfg.n_ceps), batch_size=batch_size, name="mfcc")
    block = _residual_block if cfg.conv_blocks == "residual" else _plain_block
    x = inp
    for i, (f, k) in enumerate(zip(cfg.conv_filters, cfg.conv_kernels)):
        x = block(x, i, f, k)
        x = keras.layers.MaxPooling1D(2, padding="same", name=f"pool{i}")(x)
    x = keras.layers.LSTM(cfg.lstm_units, return_sequences=True, name="lstm")(x)
    x = _temporal_pool(x, cfg)
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
