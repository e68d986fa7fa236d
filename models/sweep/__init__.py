"""Multi-objective hyperparameter sweeps over `models.train` with Optuna: ``python -m models.sweep``.

- `space`: the search space file (the default: ``space.toml``);
- `study`: the storage (SQLite file or PostgreSQL) and the study in it;
- `trial`: one trial (train, time the network, prune);
- `workers`: the processes that run trials, and how they split the machine;
- `report`: the Pareto front, best trials and export;
- `cli`: the command line.
"""
