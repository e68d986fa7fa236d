"""The QuadSim simulator's side of the wire: message parsing and building, camera geometry, recorded and
synthetic flights, and a simulated QuadSim that flies against the server (`sim_bridge.fly`).

Nothing here imports socket.io or Keras, so the server, the flight tools and the tests share it.
"""
