"""People and backgrounds for the flight world (`sim_bridge.world`): cut out of the simulator's own images.

`load_library` reads a Follow-Me dataset folder (``images/*.jpeg`` and ``masks/*.png``, red background, green other
people, blue the hero; ../shared/followme_data/train by default) at run time, in an order drawn from a seed, until
it holds enough of each kind:

- **heroes**: each 8-connected region of the hero class, **bystanders**: each region of the "other people" class,
  kept when it is a whole person seen alone: at least `models.augment.CUTOUT_MIN_PIXELS` pixels (so it scales down
  cleanly), not touching the image's border (cut off), 1.5 to 4.5 times as tall as wide, and filling at least a
  third of its box (two people side by side, or a person half hidden by a tree, fill less);
- **backgrounds**: whole images whose mask holds neither class and in which the hero's red (`is_hero_red`) covers at
  most `MAX_RED_SHARE` of the pixels: a person pasted over a photo is never hidden by what the photo shows close up,
  so a photo filled with near red foliage would swallow a far hero as the simulator's scenes never do.

A `Cutout` is the region's box of pixels with its mask as alpha. Nothing is written anywhere: the data stays in
../shared. `synthetic_library` draws a stand-in (people as simple figures, the hero in red, over a drawn park)
for machines without the data; flights over it test the loop's logic, not a network.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.augment import CUTOUT_MIN_PIXELS
from models.dataset import list_pairs, read_image, read_mask
from models.imaging import PEOPLE_CLASS, TARGET_CLASS, mask_to_classes

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "followme_data" / "train"
ASPECT_RANGE = (1.5, 4.5)  # height / width of a cut-out's box
MIN_FILL = 0.33  # share of a cut-out's box that its mask covers
COUNTS = {"heroes": 24, "bystanders": 48, "backgrounds": 12}
LIBRARY_SEED = 0
MAX_RED_SHARE = 0.01


@dataclass(frozen=True)
class Cutout:
    """A person cut out of an image: RGB (h, w, 3) uint8 within the region's box, and its mask (h, w) float32,
    1 on the person, used as alpha."""

    pixels: np.ndarray
    alpha: np.ndarray


@dataclass(frozen=True)
class Library:
    """What the world draws from: hero and bystander cut-outs, backgrounds (256, 256, 3) uint8, and where they
    came from (a folder, or ``synthetic``)."""

    heroes: tuple[Cutout, ...]
    bystanders: tuple[Cutout, ...]
    backgrounds: tuple[np.ndarray, ...]
    source: str


def is_hero_red(image: np.ndarray) -> np.ndarray:
    """Which pixels of an RGB image (H, W, 3) have the red of the hero's clothes: bright, red well above the rest."""
    red, green, blue = (image[..., channel].astype(np.int16) for channel in range(3))
    return (red > 90) & (red > 1.6 * green) & (red > 1.6 * blue)


def person_regions(classes: np.ndarray, label: int) -> list[tuple[slice, slice, np.ndarray]]:
    """(rows, cols, mask within the box) of every region of ``label`` in a class map that passes the checks of
    the module docstring."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((classes == label).astype(np.uint8), connectivity=8)
    height, width = classes.shape
    regions = []
    for index in range(1, count):
        x, y, w, h, area = (int(value) for value in stats[index])
        whole = x > 0 and y > 0 and x + w < width and y + h < height
        if (
            area >= CUTOUT_MIN_PIXELS
            and whole
            and ASPECT_RANGE[0] <= h / w <= ASPECT_RANGE[1]
            and area >= MIN_FILL * w * h
        ):
            box = slice(y, y + h), slice(x, x + w)
            regions.append((*box, labels[box] == index))
    return regions


def cut(image: np.ndarray, rows: slice, cols: slice, mask: np.ndarray) -> Cutout:
    """The `Cutout` of a region of ``image``."""
    return Cutout(np.ascontiguousarray(image[rows, cols]), mask.astype(np.float32))


@functools.lru_cache(maxsize=4)
def load_library(
    data_dir: str | os.PathLike = DEFAULT_DATA, seed: int = LIBRARY_SEED, counts: tuple[int, int, int] | None = None
) -> Library:
    """Cut-outs and backgrounds from the dataset at ``data_dir``, read in an order drawn from ``seed`` until there
    are ``counts`` (heroes, bystanders, backgrounds; default `COUNTS`) or the images run out. Raises
    `models.dataset.DatasetError` for a folder that is not a dataset, ValueError when it lacks any kind."""
    wanted = dict(zip(COUNTS, counts)) if counts else dict(COUNTS)
    found: dict[str, list] = {kind: [] for kind in COUNTS}
    pairs = list_pairs(data_dir)
    for index in np.random.default_rng(seed).permutation(len(pairs)):
        if all(len(found[kind]) >= wanted[kind] for kind in COUNTS):
            break
        image_path, mask_path = pairs[index]
        image = read_image(image_path)
        classes = mask_to_classes(read_mask(mask_path, image.shape))
        if not ((classes == PEOPLE_CLASS) | (classes == TARGET_CLASS)).any():
            if is_hero_red(image).mean() <= MAX_RED_SHARE:
                found["backgrounds"].append(image)
            continue
        found["heroes"] += [cut(image, *region) for region in person_regions(classes, TARGET_CLASS)]
        found["bystanders"] += [cut(image, *region) for region in person_regions(classes, PEOPLE_CLASS)]
    missing = [kind for kind in COUNTS if not found[kind]]
    if missing:
        raise ValueError(f"{data_dir}: no {' and no '.join(missing)} found (see sim_bridge.cutouts for the checks)")
    return Library(
        heroes=tuple(found["heroes"][: wanted["heroes"]]),
        bystanders=tuple(found["bystanders"][: wanted["bystanders"]]),
        backgrounds=tuple(found["backgrounds"][: wanted["backgrounds"]]),
        source=str(data_dir),
    )


# ---------------------------------------------------------------------------------------------- drawn stand-in

HERO_CLOTHES = ((200, 30, 35), (120, 20, 25))  # shirt, hair: the simulator's hero wears red
BYSTANDER_CLOTHES = ((40, 80, 200), (40, 150, 60), (215, 195, 60), (120, 120, 130), (225, 225, 225), (95, 65, 40))
SKIN_RGB = (225, 180, 150)
TROUSERS_RGB = ((40, 40, 60), (90, 70, 50), (60, 60, 60))
FIGURE_SIZE = (96, 36)  # height, width in pixels


def draw_person(shirt: tuple[int, int, int], hair: tuple[int, int, int], trousers: tuple[int, int, int]) -> Cutout:
    """A person as a simple figure seen slightly from above: two legs, arms, shirt, head and hair."""
    height, width = FIGURE_SIZE
    rgba = np.zeros((height, width, 4), np.uint8)  # drawn with alpha 255: the figure's mask comes with it
    c = width // 2
    for (left, top), (right, bottom), colour in (
        ((c - 9, 52), (c - 2, 95), trousers),
        ((c + 2, 52), (c + 9, 95), trousers),
        ((c - 17, 22), (c - 12, 56), SKIN_RGB),
        ((c + 12, 22), (c + 17, 56), SKIN_RGB),
        ((c - 12, 20), (c + 12, 60), shirt),
    ):
        cv2.rectangle(rgba, (left, top), (right, bottom), (*colour, 255), -1)
    cv2.ellipse(rgba, (c, 11), (8, 10), 0, 0, 360, (*SKIN_RGB, 255), -1)
    cv2.ellipse(rgba, (c, 7), (9, 7), 0, 180, 360, (*hair, 255), -1)
    return Cutout(np.ascontiguousarray(rgba[..., :3]), (rgba[..., 3] > 0).astype(np.float32))


def draw_background(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """A park seen from the drone: grass, a paved path across it and a building's wall, all with noise."""
    image = np.empty((size, size, 3), np.float32)
    image[:] = (70, 150, 55)
    path_rows = int(rng.integers(size // 3, size - 40))
    image[path_rows : path_rows + 36] = (150, 150, 145)
    wall = int(rng.integers(0, size // 2))
    image[: int(rng.integers(30, 90)), wall : wall + int(rng.integers(60, 120))] = rng.choice(
        [(140, 80, 70), (110, 120, 150), (160, 150, 130)]
    )
    image += rng.normal(0.0, 12.0, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def synthetic_library(seed: int = LIBRARY_SEED) -> Library:
    """A drawn stand-in for `load_library`: one hero figure in red, bystanders in other clothes, drawn parks."""
    rng = np.random.default_rng(seed)
    bystanders = tuple(
        draw_person(shirt, BYSTANDER_CLOTHES[(i + 2) % len(BYSTANDER_CLOTHES)], TROUSERS_RGB[i % len(TROUSERS_RGB)])
        for i, shirt in enumerate(BYSTANDER_CLOTHES)
    )
    return Library(
        heroes=(draw_person(*HERO_CLOTHES, TROUSERS_RGB[0]),),
        bystanders=bystanders,
        backgrounds=tuple(draw_background(rng) for _ in range(4)),
        source="synthetic",
    )


def default_library(data_dir: str | os.PathLike | None = None) -> Library:
    """`load_library` of ``data_dir`` (default `DEFAULT_DATA`), or the `synthetic_library` when no ``data_dir``
    is given and the default is absent."""
    if data_dir is None and not DEFAULT_DATA.is_dir():
        return synthetic_library()
    return load_library(Path(data_dir or DEFAULT_DATA))
