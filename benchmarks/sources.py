"""Raw data sets: local files in torchvision's layout, downloads with checksums.

Loaders return uint8 arrays `(train_x, train_y, test_x, test_y)` with images
as [N, C, H, W]. Local `.gz` files are read directly; a data root is written
to only when a download was needed and allowed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clbench.errors import DataError

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class IdxSet:
    """An MNIST-format data set: four idx files in ROOT/<folder>/raw/."""

    folder: str
    mirrors: tuple[str, ...]
    md5: dict  # file name (.gz) -> md5
    image_shape: tuple[int, ...] = (28, 28)
    n_classes: int = 10


MNIST = IdxSet(
    "MNIST",
    ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
)
FASHION_MNIST = IdxSet(
    "FashionMNIST",
    ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_PY = "cifar-10-batches-py"
CIFAR10_BIN = "cifar-10-batches-bin"
CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def default_data_root() -> Path:
    """$CLBENCH_DATA_ROOT, else the user's cache folder."""
    if os.environ.get("CLBENCH_DATA_ROOT"):
        return Path(os.environ["CLBENCH_DATA_ROOT"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "clbench"


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(urls: tuple[str, ...], dest: Path, md5: str, timeout: float = 30.0) -> None:
    """Fetch the first mirror that answers into `dest` (atomically), checking its md5."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
            if md5sum(Path(tmp)) != md5:
                raise OSError(f"checksum mismatch for {url}")
            os.replace(tmp, dest)
            return
        except (OSError, urllib.error.URLError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise OSError("; ".join(errors))


def missing_data(benchmark: str, folder: Path, expected: list[str], why: str) -> DataError:
    return DataError(
        f"{benchmark}: data not found in {folder} (expected {', '.join(expected)}); {why}. "
        "Fix: pass --data-root DIR (or set CLBENCH_DATA_ROOT) to a folder holding it, "
        "or allow network access so it can be downloaded."
    )


# ------------------------------------------------------------------ idx files
VERIFY_ENV = "CLBENCH_VERIFY_DATA"  # 0: accept files in the official names that are not the official files


def verified_cache() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "clbench" / "verified-files.json"


def verify_md5(path: Path, expected: str) -> None:
    """A DataError unless `path` (a .gz file of a known data set) has the official MD5. The verdict is cached
    by path, size and modification time, so each file is read once."""
    if os.environ.get(VERIFY_ENV, "1") == "0" or path.suffix != ".gz":
        return
    stat, cache_file = path.stat(), verified_cache()
    stamp = [str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected]
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = []
    if stamp in cache:
        return
    found = md5sum(path)
    if found != expected:
        raise DataError(f"{path} has MD5 {found}, expected {expected} (the official file's): it is damaged or not "
                        "the official file. Fix: delete it and run again to download it, or pass --data-root to a "
                        f"good copy (for files you made yourself in this format, set {VERIFY_ENV}=0).")
    try:  # best effort: a read-only home only costs the check again next time
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps([*cache[-63:], stamp]))
    except OSError:
        pass


def read_idx(path: Path) -> np.ndarray:
    """Parse one idx file (plain or gzip-compressed)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path} is damaged ({type(exc).__name__}: {exc}): not a complete gzip file. Fix: delete "
                        "it and run again to download it, or pass --data-root to a good copy.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte idx file.")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: header says {dims}, found {data.size} values.")
    return data.reshape(dims)


def _find_idx(raw_dir: Path, name_gz: str) -> Path | None:
    for candidate in (raw_dir / name_gz, raw_dir / name_gz[:-3]):
        if candidate.is_file():
            return candidate
    return None


def load_idx_set(spec: IdxSet, root: Path, benchmark: str, allow_download: bool) -> Arrays:
    """Train and test arrays of an MNIST-format data set under `root`."""
    raw_dir = root / spec.folder / "raw"
    found = {name: _find_idx(raw_dir, name) for name in spec.md5}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        if not allow_download:
            raise missing_data(benchmark, raw_dir, missing, "downloads are disabled")
        new_folders = [folder for folder in (raw_dir, raw_dir.parent, root) if not folder.exists()]
        try:
            for name in missing:
                download(tuple(m + name for m in spec.mirrors), raw_dir / name, spec.md5[name])
                found[name] = raw_dir / name
        except OSError as exc:
            for folder in new_folders:  # nothing left behind by a download that failed
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            raise missing_data(benchmark, raw_dir, missing, f"the download failed ({exc})") from None
    for name, path in found.items():
        verify_md5(path, spec.md5[name])
    arrays = {name: read_idx(path) for name, path in found.items()}
    train_x, train_y, test_x, test_y = (arrays[n] for n in spec.md5)
    check_arrays(f"{benchmark} ({raw_dir})", spec, (train_x, train_y), (test_x, test_y))
    return train_x[:, None], train_y.astype(np.int64), test_x[:, None], test_y.astype(np.int64)


def check_arrays(where: str, spec: IdxSet, *splits: tuple[np.ndarray, np.ndarray]) -> None:
    """Images of the data set's shape, one label each, every label a class id, every class in every split."""
    for (x, y), split in zip(splits, ("training", "test")):
        if len(x) != len(y):
            raise DataError(f"{where}: {len(x)} {split} images but {len(y)} labels.")
        if tuple(x.shape[1:]) != spec.image_shape:
            raise DataError(f"{where}: {split} images of shape {tuple(x.shape[1:])}, expected {spec.image_shape}.")
        if y.ndim != 1 or (len(y) and int(y.max()) >= spec.n_classes):
            raise DataError(f"{where}: {split} labels outside 0-{spec.n_classes - 1} (found {int(y.max())}).")
        absent = sorted(set(range(spec.n_classes)) - set(np.unique(y).tolist()))
        if absent:
            raise DataError(f"{where}: no {split} samples of class {', '.join(map(str, absent))}: these are not "
                            f"the expected data (every split holds all {spec.n_classes} classes).")


# --------------------------------------------------------------------- CIFAR
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batches (dicts of numpy arrays and lists), nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")
        return super().find_class(module, name)


def _read_cifar_py(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open("rb") as handle:
        batch = _NumpyOnlyUnpickler(handle, encoding="latin1").load()
    data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64)
    return data, labels


def _read_cifar_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise DataError(f"{path} is not a CIFAR-10 binary batch (size {raw.size} is not a multiple of 3073).")
    records = raw.reshape(-1, 3073)
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), records[:, 0].astype(np.int64)


def _cifar_files(root: Path) -> tuple[list[Path], Path] | None:
    py = root / CIFAR10_PY
    if all((py / n).is_file() for n in CIFAR10_TRAIN + ["test_batch"]):
        return [py / n for n in CIFAR10_TRAIN], py / "test_batch"
    binary = root / CIFAR10_BIN
    if all((binary / f"{n}.bin").is_file() for n in CIFAR10_TRAIN + ["test_batch"]):
        return [binary / f"{n}.bin" for n in CIFAR10_TRAIN], binary / "test_batch.bin"
    return None


def _download_cifar(root: Path) -> None:
    archive = root / "cifar-10-python.tar.gz"
    if not archive.is_file():
        download((CIFAR10_URL,), archive, CIFAR10_MD5)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(root, filter="data")


def load_cifar10(root: Path, benchmark: str, allow_download: bool) -> Arrays:
    """CIFAR-10 from the python (pickled) or the binary version under `root`."""
    files = _cifar_files(root)
    if files is None:
        expected = [f"{CIFAR10_PY}/{{data_batch_1..5,test_batch}}", f"or {CIFAR10_BIN}/*.bin"]
        if not allow_download:
            raise missing_data(benchmark, root, expected, "downloads are disabled")
        try:
            _download_cifar(root)
        except (OSError, tarfile.TarError) as exc:
            raise missing_data(benchmark, root, expected, f"the download failed ({exc})") from None
        files = _cifar_files(root)
        if files is None:
            raise missing_data(benchmark, root, expected, "the downloaded archive did not contain them")
    train_paths, test_path = files
    reader = _read_cifar_bin if test_path.suffix == ".bin" else _read_cifar_py
    try:
        parts = [reader(p) for p in train_paths]
        test_x, test_y = reader(test_path)
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
        raise DataError(f"{benchmark}: cannot read CIFAR-10 batches in {test_path.parent}: {exc}.") from None
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    return train_x, train_y, test_x, test_y


# -------------------------------------------------------------------- digits
def load_digits(test_fraction: float = 0.3, split_seed: int = 0) -> Arrays:
    """scikit-learn's bundled 8x8 digits (values 0..16), a fixed stratified split."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = bunch.images.astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    rng = np.random.RandomState(split_seed)
    test_mask = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test_mask[rng.permutation(idx)[: int(round(test_fraction * len(idx)))]] = True
    return images[~test_mask], labels[~test_mask], images[test_mask], labels[test_mask]


