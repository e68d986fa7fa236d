"""Datasets: a folder with ``images/*.jpeg`` and ``masks/*.png``, paired in sorted order.

Every problem is reported as a DatasetError naming the file: mismatched counts, empty folders, unreadable
files, masks whose size differs from their image or that are not RGB. Decoded arrays are cached on disk, keyed
by the content hash of the files and the size, so a dataset is decoded once.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from models.files import write_atomically
from models.imaging import resize_mask, resize_rgb

IMAGE_GLOB = "*.jpeg"
MASK_GLOB = "*.png"


class DatasetError(ValueError):
    """A dataset folder or file that cannot be used, with the path in the message."""


@dataclass
class Dataset:
    """Decoded images (N, S, S, 3) uint8 and class maps (N, S, S) uint8 at one square size."""

    root: Path
    names: list[str]
    images: np.ndarray
    classes: np.ndarray
    content_hash: str

    def __len__(self) -> int:
        return len(self.names)


def combine(datasets: list[Dataset]) -> Dataset:
    """The union of ``datasets`` in order, for training on several folders at once: its root is their common
    folder, its names are relative to it, and its hash covers theirs. One dataset is returned as it is."""
    if len(datasets) == 1:
        return datasets[0]
    root = Path(os.path.commonpath([d.root.resolve() for d in datasets]))
    names = [str((d.root.resolve() / "images" / name).relative_to(root)) for d in datasets for name in d.names]
    digest = hashlib.sha256("".join(d.content_hash for d in datasets).encode()).hexdigest()
    images = np.concatenate([d.images for d in datasets])
    classes = np.concatenate([d.classes for d in datasets])
    return Dataset(root, names, images, classes, digest)


def list_pairs(root: str | os.PathLike) -> list[tuple[Path, Path]]:
    """The (image, mask) paths of a dataset folder in sorted order; raises DatasetError when they do not pair."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"Dataset folder {str(root)!r} does not exist" if not root.exists() else
                           f"Dataset {str(root)!r} is not a folder")  # fmt: skip
    image_dir, mask_dir = root / "images", root / "masks"
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DatasetError(f"Dataset {str(root)!r} has no {folder.name}/ folder")
    images, masks = sorted(image_dir.glob(IMAGE_GLOB)), sorted(mask_dir.glob(MASK_GLOB))
    if not images:
        raise DatasetError(f"Dataset folder {str(image_dir)!r} holds no {IMAGE_GLOB} files")
    if len(images) != len(masks):
        raise DatasetError(
            f"Dataset {str(root)!r} has {len(images)} images but {len(masks)} masks; "
            "images/*.jpeg and masks/*.png must pair one-to-one in sorted order"
        )
    return list(zip(images, masks))


def open_rgb(path: Path, what: str, allowed_modes: tuple[str, ...]) -> np.ndarray:
    """Decode ``path`` as uint8 RGB; DatasetError names the file when it is unreadable or of another mode."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in allowed_modes:
                raise DatasetError(
                    f"{what} {str(path)!r} has mode {image.mode} ({len(image.getbands())} channels); "
                    f"expected {' or '.join(allowed_modes)}"
                )
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as error:
        raise DatasetError(f"Cannot read {what.lower()} {str(path)!r}: {error}") from error


def read_image(path: Path) -> np.ndarray:
    """An RGB image as uint8 (H, W, 3); greyscale JPEGs are expanded to RGB."""
    return open_rgb(path, "Image", ("RGB", "L"))


def read_mask(path: Path, image_shape: tuple[int, ...]) -> np.ndarray:
    """An RGB mask as uint8 (H, W, 3), checked against the size of its image."""
    mask = open_rgb(path, "Mask", ("RGB", "P"))
    if mask.shape[:2] != image_shape[:2]:
        raise DatasetError(
            f"Mask {str(path)!r} is {mask.shape[1]}x{mask.shape[0]} but its image is {image_shape[1]}x{image_shape[0]}"
        )
    return mask


def content_hash(pairs: list[tuple[Path, Path]]) -> str:
    """SHA-256 over the names and bytes of every file, in order: identifies the training data in cards."""
    digest = hashlib.sha256()
    for image, mask in pairs:
        for path in (image, mask):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """Where decoded datasets are cached: $FOLLOWME_CACHE or ~/.cache/followme."""
    return Path(os.environ.get("FOLLOWME_CACHE", Path.home() / ".cache" / "followme"))


def load_dataset(root: str | os.PathLike, size: int, cache_dir: Path | None = None) -> Dataset:
    """Decode every pair of ``root`` at ``size`` x ``size`` (PIL bilinear; mask classes by argmax), cached."""
    pairs = list_pairs(root)
    digest = content_hash(pairs)
    cache = (cache_dir or default_cache_dir()) / f"{digest[:16]}_{size}.npz"
    names = [image.name for image, _ in pairs]
    if cache.is_file():
        with np.load(cache) as data:
            return Dataset(Path(root), names, data["images"], data["classes"], digest)
    images = np.empty((len(pairs), size, size, 3), np.uint8)
    classes = np.empty((len(pairs), size, size), np.uint8)
    for i, (image_path, mask_path) in enumerate(pairs):
        image = read_image(image_path)
        images[i] = resize_rgb(image, size)
        classes[i] = resize_mask(read_mask(mask_path, image.shape), size)
    _write_cache(cache, images, classes)
    return Dataset(Path(root), names, images, classes, digest)


def _write_cache(cache: Path, images: np.ndarray, classes: np.ndarray) -> None:
    try:
        write_atomically(cache, lambda tmp: np.savez(tmp, images=images, classes=classes))
    except OSError as error:  # a read-only home only costs the next run a decode
        print(f"Note: cannot cache the decoded dataset at {cache}: {error}")
