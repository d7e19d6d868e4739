"""Raw image arrays from the places a data set can live.

Each function returns ``(x_train, y_train, x_test, y_test, max_value)`` as NumPy arrays:
images ``uint8`` ``(N, H, W)`` or ``(N, H, W, C)`` (HWC, as in the npz files), labels
integers ``(N,)``. Missing or malformed data raises :class:`DataError` saying where it
looked and how to get the data.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from .errors import DataError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
NPZ_FILES = {"mnist": "mnist.npz", "cifar10": "cifar10.npz"}
TORCHVISION_CLASSES = {"mnist": "MNIST", "cifar10": "CIFAR10"}
HOW_TO_GET = (
    "get it by: (a) copying {file} (arrays x_train, y_train, x_test, y_test, uint8 HWC) into {root}, "
    "or (b) adding data.download=true to let torchvision download it into {root} (needs internet), "
    "or (c) pointing data.root=... at a folder that holds either"
)


ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")  # an npz is a zip archive (the second: an empty one)


def _what_it_is(head: bytes) -> str:
    if not head:
        return "it is empty"
    if head.startswith(b"\x93NUMPY"):
        return "it is a single .npy array"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "it looks like text"
    return f"it starts with the bytes {head[:8]!r}"


def read_arrays(path: Path, keys: tuple[str, ...], what: str) -> list[np.ndarray]:
    """The arrays ``keys`` of the npz archive ``path`` (numeric arrays only, nothing unpickled);
    a file that is not an npz, lacks a key or holds Python objects is a :class:`DataError` saying so."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} ({exc.strerror or exc})") from exc
    if head[:4] not in ZIP_STARTS:
        raise DataError(
            f"{path} is not an npz file (a zip of NumPy arrays, as numpy.savez writes): {_what_it_is(head)}"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in keys if k not in archive.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing}; {what} needs {list(keys)}")
            return [archive[k] for k in keys]
    except DataError:
        raise
    except ValueError as exc:  # numpy refuses object arrays without allow_pickle
        raise DataError(f"{path}: an array holds Python objects, not numbers; {what} needs numeric arrays") from exc
    except Exception as exc:  # zipfile.BadZipFile (a cut-off file), OSError ...
        raise DataError(f"{path}: cannot read {what}: the npz file is damaged ({type(exc).__name__}: {exc})") from exc


def read_npz(path: Path, name: str):
    """Validated arrays from an npz file with the four standard keys."""
    arrays = read_arrays(path, NPZ_KEYS, f"{name} data")
    x_train, y_train, x_test, y_test = arrays
    for key, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.dtype != np.uint8 or x.ndim not in (3, 4):
            raise DataError(f"{path}: x_{key} must be uint8 (N, H, W) or (N, H, W, C); got {x.dtype} {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{path}: y_{key} must be (N,) with N = len(x_{key}) = {len(x)}; got {y.shape}")
        if len(x) == 0:
            raise DataError(f"{path}: the {key} split is empty")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: y_{key} must hold integer class labels; got {y.dtype}")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{path}: train images {x_train.shape[1:]} and test images {x_test.shape[1:]} differ in shape")
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def load_digits():
    """The UCI 8x8 digits shipped inside the package (pixel counts 0..16)."""
    path = resources.files("bioscale.datasets").joinpath("data/digits.npz")
    with resources.as_file(path) as real:
        return (*read_npz(Path(real), "digits"), 16)


def load_standard(name: str, root: str, source: str, download: bool):
    """MNIST or CIFAR-10 from ``root``: ``<name>.npz`` first, then torchvision's files.

    :param source: ``auto`` (npz, then torchvision), ``npz`` or ``torchvision``.
    """
    root_path = Path(root).expanduser()
    if root_path.is_file():
        raise DataError(
            f"data.root={root} is a file; it must be the folder that holds {NPZ_FILES[name]} "
            f"(or torchvision's {TORCHVISION_CLASSES[name]} files)"
        )
    npz_path = root_path / NPZ_FILES[name]
    looked = []
    if source in ("auto", "npz"):
        looked.append(str(npz_path))
        if npz_path.is_file():
            return (*read_npz(npz_path, name), 255)
    if source in ("auto", "torchvision"):
        looked.append(f"torchvision {TORCHVISION_CLASSES[name]} files under {root_path}")
        arrays = _load_torchvision(name, root_path, download)
        if arrays is not None:
            return (*arrays, 255)
    hint = HOW_TO_GET.format(file=NPZ_FILES[name], root=root_path)
    raise DataError(f"{name} data not found; looked in: {'; '.join(looked)}. {hint}")


def _load_torchvision(name: str, root: Path, download: bool):
    try:
        import torchvision
    except ImportError as exc:
        if download:
            raise DataError(f"data.download=true needs torchvision ({exc}); pip install torchvision") from exc
        return None
    cls = getattr(torchvision.datasets, TORCHVISION_CLASSES[name])
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
        if download:
            raise DataError(f"torchvision could not download {name} into {root}: {exc}") from exc
        return None
    except OSError as exc:  # download failures (no network)
        raise DataError(f"torchvision could not download {name} into {root}: {exc}") from exc

    def arrays(ds):
        x = np.asarray(ds.data, dtype=np.uint8)
        y = np.asarray(ds.targets, dtype=np.int64)
        return x, y

    return (*arrays(train), *arrays(test))
