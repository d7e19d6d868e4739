"""Structured (dataclass) schemas of a run's configuration.

OmegaConf validates every key and type against these before a run starts. A rule's own
settings live in its ``Config`` dataclass (a subclass of :class:`RuleConfig`), under
``rules.<name>.`` on the command line. Fields with a range declare it with
:func:`~bioscale.config.bounds.bounded`; values outside it are refused at resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING, OmegaConf

from .added_fields import without_defaults
from .bounds import bounded
from .optimizer import AdamConfig, LRSchedule, OptimizerConfig, OptimizerName  # noqa: F401  (re-exported)


class DataSource(Enum):
    auto = "auto"
    npz = "npz"
    torchvision = "torchvision"


class Normalization(Enum):
    standardize = "standardize"  # per-channel mean / std of the training split
    scale = "scale"  # pixels / max value, in [0, 1]
    none = "none"  # raw pixel values as floats


def plain_value(value):
    """An enum member of a structured config as its plain value; anything else as it is."""
    return getattr(value, "value", value)


def config_dict(node: Any, **options: Any) -> dict[str, Any]:
    """A DictConfig section as a plain dict (``OmegaConf.to_container`` with ``options``, typed as the
    dict a section always gives)."""
    plain = OmegaConf.to_container(node, **options)
    if not isinstance(plain, dict):
        raise TypeError(f"expected a config section, got {type(plain).__name__}")
    return plain  # type: ignore[return-value]  # keys of a section are str


class Decode(Enum):
    workers = "workers"  # PIL in DataLoader worker processes (the default)
    device = "device"  # reader threads, batched decode_jpeg on the training device (nvJPEG on CUDA)


class Precision(Enum):
    fp32 = "fp32"
    bf16 = "bf16"  # autocast of the step's maths; float32 weights, gradients and optimiser state


class Backend(Enum):
    auto = "auto"  # nccl when the run's device is CUDA, gloo otherwise
    gloo = "gloo"  # CPU or CUDA tensors; processes may share a GPU
    nccl = "nccl"  # CUDA only, one GPU per process


class WeightInit(Enum):
    glorot = "glorot"  # uniform within sqrt(6 / (fan_in + fan_out))
    orthogonal = "orthogonal"  # orthonormal rows (or columns) of each (out, in) matrix, gain 1


class BlockType(Enum):
    conv = "conv"
    lc = "lc"
    residual = "residual"  # He et al.'s basic block: two convolutions and a skip (architectures/build.py)


class ShortcutType(Enum):
    projection = "projection"  # a block that changes shape adds a 1x1 strided conv + batch norm of its input
    pad = "pad"  # He et al.'s option A: strided identity, channels zero-padded (no parameters)


@dataclass
class RuleConfig:
    """Base of every rule's config: the optimiser of the forward (model) parameters."""

    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    output_lr_scale: float = bounded(1.0, low=0)  # the output layer's forward lr is optimizer.lr times this (>= 0)


@dataclass
class DataConfig:
    name: str = "digits"
    root: str = "data"
    source: DataSource = DataSource.auto
    download: bool = False
    normalize: Normalization = Normalization.standardize
    validation: int = bounded(0, low=0)  # training examples held out as a validation split
    split_seed: int = bounded(
        0, low=0, high=2**62
    )  # chooses the validation / limit_train subsets, independent of the run seed
    limit_train: int = bounded(0, low=0)  # > 0: train on this many examples only (recorded, never silent)
    augment: bool = False  # random crops (zero padding) and horizontal flips
    crop_padding: int = bounded(4, low=0)
    flip: bool = True
    image_size: int = bounded(224, low=1)  # ImageNet folders: side of the square crop
    resize: int = bounded(256, low=1)  # ImageNet folders: shorter side before cropping
    workers: int = bounded(4, low=0)  # ImageNet folders: decoding processes (decode=device: reader threads)
    decode: Decode = Decode.workers  # ImageNet folders: where JPEGs are decoded (datasets/imagenet_device.py)


@dataclass
class BlockConfig:
    """A spatial layer: ``conv`` (shared weights), ``lc`` (locally connected) or ``residual`` (a
    basic block of two conv layers and a skip); optional batch norm and pooling after it."""

    type: BlockType = BlockType.conv
    channels: int = bounded(32, low=1)
    kernel: int = bounded(3, low=1)
    stride: int = bounded(1, low=1)
    padding: int | None = bounded(None, low=0)  # None: kernel // 2 (size kept at stride 1)
    bias: bool = True  # conv: a bias per channel (off before a batch norm, whose β is one)
    norm: bool = False  # batch norm after the op (residual: after each conv)
    pool: str = "none"  # after the activation: max / avg (pool_kernel, ...), global (average, to (B, C)), none
    pool_kernel: int = bounded(2, low=1)
    pool_stride: int | None = bounded(None, low=1)  # None: pool_kernel
    pool_padding: int = bounded(0, low=0)
    activation: str | None = None  # None: the model's
    shortcut: ShortcutType = ShortcutType.projection  # residual blocks that change shape


# block fields added after run records were first keyed by their resolved settings (reproduce's cell
# keys): left out of such keys while they hold their defaults, so the records keep their keys
ADDED_BLOCK_FIELDS = ("bias", "norm", "pool", "pool_kernel", "pool_stride", "pool_padding", "activation", "shortcut")


def block_without_added_defaults(block: dict) -> dict:
    """``block`` (a plain dict, enums as strings) without the :data:`ADDED_BLOCK_FIELDS` at their defaults."""
    return without_defaults(block, BlockConfig(), ADDED_BLOCK_FIELDS)


@dataclass
class ModelConfig:
    preset: str = "digits_fc"  # the preset these values came from ("custom" if edited freely)
    blocks: list[BlockConfig] = field(default_factory=list)
    widths: list[int] = bounded(default_factory=lambda: [256, 256, 256], low=1)
    activation: str = "tanh"
    weight_init: WeightInit = WeightInit.glorot  # initial forward weights; rule-owned weights stay Glorot


@dataclass
class TrainerConfig:
    epochs: int = bounded(30, low=1)
    batch_size: int = bounded(128, low=1)
    eval_batch_size: int = bounded(1000, low=1)
    device: str = "auto"  # auto: cuda when available, else cpu; under torchrun see distributed.plan_device
    backend: Backend = Backend.auto  # torchrun's process group (core/distributed.py)
    threads: int = bounded(0, low=0)  # CPU threads for torch; 0 keeps torch's default
    log_every: int = bounded(100, low=1)  # steps between host syncs (progress bar, NaN check)
    progress: bool | None = None  # None: on when stderr is a terminal or the process a Jupyter kernel
    checkpoint: bool = True
    label_smoothing: float = bounded(
        0.0, low=0, high=1, high_open=True
    )  # ε: the task loss is cross-entropy against (1 - ε) onehot(y) + ε / classes
    precision: Precision = Precision.fp32  # bf16: autocast of the step and of evaluation (core/step_modes.py)
    compile: bool = False  # torch.compile of the forward pass and the credit assignment (core/step_modes.py)


@dataclass
class RunConfig:
    rule: str = MISSING  # the rule to train: an installed rule name (bioscale rules)
    seed: int = bounded(0, low=0, high=2**62)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    output_dir: str = "runs"
    name: str = ""  # appended to the run folder's name
    rules: dict[str, Any] = field(default_factory=dict)  # rules.<name>.<key>: validated by each rule's Config
    observers: dict[str, Any] = field(default_factory=dict)  # observers.<name>.enabled / settings
