"""The follow-me server: receives the simulator's camera frames, finds the target, tells the drone to follow.

`follower.serve` is the entry point, `follower.pipeline` the per-frame logic without I/O, `follower.server`
the socket layer, `follower.state` what lives between frames, `follower.config` the settings.
"""
