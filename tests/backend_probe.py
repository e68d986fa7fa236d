"""``KERAS_BACKEND=B python tests/backend_probe.py MODEL OUT.npz FLIGHT [FLIGHT ...]``: what the follower makes of
each flight under backend B, for tests/test_follower_backends.py (a process has one Keras backend).

For every frame of each flight: the class probabilities, whether the target was located, its pixel count,
centroid and world position (`follower.pipeline.process_frame`); for each flight, the summary of
`follower.replay` with the default tracker. Also the backend, the device and which backends were imported.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def probe(model: str, flights: list[str]) -> dict[str, np.ndarray]:
    """The arrays and the JSON summary (key ``"about"``) that `main` writes."""
    from follower.pipeline import Settings, process_frame
    from follower.replay import replay
    from follower.segmenter import Segmenter
    from sim_bridge.flight import read_flight

    segmenter = Segmenter.load(model)
    segment = segmenter.class_probabilities  # what the server calls
    settings = Settings()
    arrays: dict[str, np.ndarray] = {}
    summaries = {}
    for i, path in enumerate(flights):
        flight = read_flight(path)
        results = [process_frame(frame.data, segment, settings) for frame in flight.frames]
        found = [result.detection for result in results]
        arrays[f"probabilities_{i}"] = np.stack([result.segmentation for result in results])
        arrays[f"located_{i}"] = np.array([d is not None for d in found])
        arrays[f"pixels_{i}"] = np.array([d.pixels if d else 0 for d in found])
        arrays[f"centroid_{i}"] = np.array([d.centroid if d else (np.nan, np.nan) for d in found])
        arrays[f"position_{i}"] = np.array([d.position if d else np.full(3, np.nan) for d in found])
        summary = replay(flight, segment, settings)
        summary.pop("frames_per_s")
        summaries[path] = summary
    loaded = [name for name in ("tensorflow", "jax", "torch") if name in sys.modules]
    about = {"backend": segmenter.backend, "device": segmenter.device, "imported": loaded, "summaries": summaries}
    return {**arrays, "about": np.array(json.dumps(about))}


def main(argv: list[str]) -> None:
    model, out, *flights = argv
    np.savez_compressed(out, **probe(model, flights))


if __name__ == "__main__":
    main(sys.argv[1:])
