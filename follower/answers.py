"""What the follower says to the simulator: a tracker's decisions as the simulator's events.

A `follower.tracking.Decision` with a position to send is answered with ``object_detected`` at that position
and a fresh box marker there; a lost target with ``object_lost``; anything else with nothing. An `Answerer`
numbers its box markers 0, 1, 2, ...: the server keeps one per connection, beside that connection's tracker.
"""

from __future__ import annotations

from follower.tracking import Decision
from sim_bridge import protocol
from sim_bridge.protocol import Event


class Answerer:
    """Turns one connection's decisions into the events sent back, numbering its box markers."""

    def __init__(self) -> None:
        self.next_marker_id = 0

    def answer(self, decision: Decision) -> list[Event]:
        """The events that answer a frame the tracker decided on."""
        if decision.lost:
            return [protocol.object_lost()]
        if decision.position is None:
            return []
        marker = protocol.create_box_marker(self.next_marker_id, decision.position)
        self.next_marker_id += 1
        return [protocol.object_detected(decision.position), marker]
