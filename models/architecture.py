"""The follow-me FCN, built from a short spec string.

A spec is a comma-separated list of blocks, read left to right:

- ``sN`` (optional, first): a stem, a full 3x3 conv with N filters, stride 2, ReLU, then BatchNorm. The network
  reads the frame at full resolution and computes at half: a far target's few pixels reach the features, at less
  CPU time than a plain network at that input size. The encoders keep their names, so ``--init`` from a model
  without a stem carries them across.
- ``eN``: encoder block, 3x3 separable conv with N filters, stride 2, ReLU, then BatchNorm.
- ``cN``: the 1x1 conv in the middle, N filters, ReLU, then BatchNorm (exactly one, after the encoders).
- ``dN`` or ``dNxK``: decoder block, bilinear x2 upsampling, concatenation with the matching encoder output
  (the last decoder with the input image), then K (default 1) 3x3 separable convs with N filters, ReLU, BatchNorm.

Decoders match encoders in reverse. The output is a 1x1 conv with a softmax over 3 classes (0 background,
1 other people, 2 the target). A spec with fewer decoders than encoders stops decoding early and upsamples the
class probabilities bilinearly (x2 per missing decoder) to the input size: the full-resolution decoder is the most
expensive layer on a CPU. The presets fcn1..fcn5 are the architectures compared in the Follow-Me write-ups;
deep4, deep5 and slim5 are ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import keras

from models.imaging import NUM_CLASSES
from models.layers import BilinearUpSampling2D

PRESETS = {
    "fcn1": "e32,e64,c128,d64,d32",
    "fcn2": "e32,e64,e128,c256,d128,d64,d32",
    "fcn3": "e64,e128,e256,c512,d256,d128,d64",
    "fcn4": "e64,e128,c256,d128,d64",
    "fcn5": "e64,e128,c256,d128x2,d64x2",
    # Ours (docs/notes/2026-11-22-default-model-slim5.md): deeper encoders see more context and tell the target
    # from other people.
    "deep4": "e32,e64,e128,e256,c256,d256,d128,d64,d32",
    "deep5": "e32,e64,e128,e256,e256,c256,d256,d256,d128,d64,d32",
    # deep5's encoder with narrow decoders, about as accurate at about half the CPU time: the default until
    # 2026-11-27, and the start of the shipped model's lineage (c3, weights/model_weights.card.json).
    "slim5": "e32,e64,e128,e256,e256,c256,d256,d128,d32,d16,d8",
    # slim5 behind a stride-2 stem, for 256 px input at less CPU time than slim5 at 160
    # (docs/notes/2026-11-26-far-targets-first-cpu-runs.md).
    "stem5": "s16,e32,e64,e128,e256,e256,c256,d256,d128,d32,d16,d16",
}

_BLOCK = re.compile(r"^(?P<kind>[secd])(?P<filters>\d+)(?:x(?P<repeat>\d+))?$")


@dataclass(frozen=True)
class Spec:
    """A parsed architecture: stem width (0: none), encoder widths, the middle width, and (width, conv count) per
    decoder."""

    stem: int
    encoders: tuple[int, ...]
    middle: int
    decoders: tuple[tuple[int, int], ...]

    @property
    def stages(self) -> int:
        """The stride-2 stages: the stem, when there is one, and the encoders."""
        return len(self.encoders) + bool(self.stem)

    @property
    def downsampling(self) -> int:
        """The factor by which the deepest encoder output is smaller than the input."""
        return 2**self.stages


def resolve_arch(arch: str) -> str:
    """The spec string of a preset name, or ``arch`` itself when it is already a spec."""
    return PRESETS.get(arch.strip().lower(), arch.strip().lower())


def parse_spec(arch: str) -> Spec:
    """Parse a preset name or a spec string; raises ValueError naming the bad block."""
    spec = resolve_arch(arch)
    stems: list[int] = []
    encoders: list[int] = []
    middles: list[int] = []
    decoders: list[tuple[int, int]] = []
    for position, block in enumerate(spec.split(",")):
        match = _BLOCK.match(block.strip())
        if not match or int(match["filters"]) < 1 or (match["repeat"] and int(match["repeat"]) < 1):
            raise ValueError(
                f"Bad block {block!r} in architecture spec; expected sN, eN, cN, dN or dNxK "
                f"(presets: {', '.join(PRESETS)}). Received: arch={arch!r}"
            )
        if match["repeat"] and match["kind"] != "d":
            raise ValueError(f"Only decoder blocks take xK. Received: arch={arch!r}")
        filters = int(match["filters"])
        if match["kind"] == "s":
            if position:
                raise ValueError(f"A stem sN can only be the first block. Received: arch={arch!r}")
            stems.append(filters)
        elif match["kind"] == "e":
            if middles or decoders:
                raise ValueError(f"Encoders must come first. Received: arch={arch!r}")
            encoders.append(filters)
        elif match["kind"] == "c":
            middles.append(filters)
        else:
            decoders.append((filters, int(match["repeat"] or 1)))
    if not encoders or len(middles) != 1 or not 1 <= len(decoders) <= len(encoders) + len(stems):
        raise ValueError(
            "A spec needs one or more encoders, exactly one cN, and from one decoder to one per encoder "
            f"(and stem). Received: arch={arch!r}"
        )
    return Spec(stems[0] if stems else 0, tuple(encoders), middles[0], tuple(decoders))


def build_fcn(arch: str = "fcn4", input_size: int = 160) -> keras.Model:
    """Build the FCN for ``arch`` (a preset name or a spec string) on square ``input_size`` RGB inputs."""
    spec = parse_spec(arch)
    if input_size < spec.downsampling or input_size % spec.downsampling:
        raise ValueError(
            f"input_size must be a positive multiple of {spec.downsampling} for {spec.stages} "
            f"stride-2 stages. Received: input_size={input_size}"
        )
    inputs = keras.Input((input_size, input_size, 3), name="image")
    skips = [inputs]
    x = inputs
    if spec.stem:
        x = keras.layers.Conv2D(spec.stem, 3, strides=2, padding="same", activation="relu", name="stem_conv")(x)
        x = keras.layers.BatchNormalization(name="stem_bn")(x)
        skips.append(x)
    for i, filters in enumerate(spec.encoders, 1):
        x = keras.layers.SeparableConv2D(
            filters, 3, strides=2, padding="same", activation="relu", name=f"enc{i}_sepconv"
        )(x)
        x = keras.layers.BatchNormalization(name=f"enc{i}_bn")(x)
        skips.append(x)
    x = keras.layers.Conv2D(spec.middle, 1, activation="relu", name="middle_conv")(x)
    x = keras.layers.BatchNormalization(name="middle_bn")(x)
    for i, ((filters, repeat), skip) in enumerate(zip(spec.decoders, reversed(skips[:-1])), 1):
        x = BilinearUpSampling2D(name=f"dec{i}_up")(x)
        x = keras.layers.Concatenate(name=f"dec{i}_concat")([x, skip])
        for j in range(1, repeat + 1):
            x = keras.layers.SeparableConv2D(filters, 3, padding="same", activation="relu", name=f"dec{i}_sepconv{j}")(
                x
            )
            x = keras.layers.BatchNormalization(name=f"dec{i}_bn{j}")(x)
    outputs = keras.layers.Conv2D(NUM_CLASSES, 1, activation="softmax", name="classes")(x)
    for i in range(1, spec.stages - len(spec.decoders) + 1):
        outputs = BilinearUpSampling2D(name=f"classes_up{i}")(outputs)
    return keras.Model(inputs, outputs, name=resolve_arch(arch).replace(",", "_"))
