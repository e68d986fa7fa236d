"""The QuadSim simulator's side of the wire: message parsing and building, camera geometry.

Nothing here imports socket.io or Keras, so the server, the flight tools and the tests share it.
"""
