"""The shipped model's recipes (models/recipes/) against the lineage and hyperparameters its card records, without
training (a training run from a recipe: test_models_train)."""

import json
from pathlib import Path

import pytest
from conftest import ROOT

from models import store
from models.train_config import load_recipe

RECIPES = sorted((ROOT / "models" / "recipes").glob("*.toml"))
SHIPPED = json.loads((ROOT / "weights" / "model_weights.card.json").read_text())
DESCRIBED = ("init", "teacher")  # the cards name these in words ("stage 10 (r6)"), not by path
PRUNED = Path("runs/p1")  # stage 7, written by models.prune (docs/training.md), not by a recipe
WIDENED = Path("runs/c2_wide")  # stage 13, written by models.widen


def stage(recipe: Path) -> int:
    return int(recipe.name.split("_", 1)[0])


def test_the_last_recipe_gives_the_shipped_models_hyperparameters_and_data():
    config = load_recipe(RECIPES[-1])
    assert stage(RECIPES[-1]) == len(SHIPPED["lineage"]) + 1
    ours = config.hyperparameters(steps=config.steps_per_epoch or 0)
    recorded = SHIPPED["hyperparameters"]
    assert {name for name in ours.keys() | recorded.keys() if ours.get(name) != recorded.get(name)} == {"init"}
    assert recorded["init"] == "stage 13 (c2 widened)" and config.init == WIDENED
    sources = [{"path": str(source.path), "weight": source.weight} for source in config.train]
    assert sources == [{"path": data["path"], "weight": data["weight"]} for data in SHIPPED["training_data"]["train"]]
    assert [str(folder) for folder in config.val] == SHIPPED["validation_data"]
    assert config.input_size == SHIPPED["input_size"]
    assert config.arch is None and SHIPPED["lineage"][-1]["spec"] == SHIPPED["spec"]  # stage 13's network


@pytest.mark.parametrize("recipe", RECIPES[:-1], ids=lambda path: path.stem)
def test_every_earlier_recipe_gives_its_lineage_stages_hyperparameters(recipe):
    (recorded,) = [entry["hyperparameters"] for entry in SHIPPED["lineage"] if entry["stage"] == stage(recipe)]
    config = load_recipe(recipe)
    # a recipe without steps_per_epoch makes one pass an epoch: the card's figure, for the data of the time
    ours = config.hyperparameters(steps=config.steps_per_epoch or recorded["steps_per_epoch"])
    compared = [name for name in recorded if name not in DESCRIBED]  # the early cards record fewer fields
    assert {name: ours[name] for name in compared} == {name: recorded[name] for name in compared}
    for name in DESCRIBED:
        assert (ours[name] is None) == (recorded.get(name) is None), name


def test_every_training_stage_has_a_recipe_that_starts_from_weights_an_earlier_stage_writes():
    trained = [entry["stage"] for entry in SHIPPED["lineage"] if "hyperparameters" in entry]
    assert [stage(recipe) for recipe in RECIPES] == [*trained, len(SHIPPED["lineage"]) + 1]
    written = {PRUNED, WIDENED}
    for recipe in RECIPES:
        config = load_recipe(recipe)
        for start in (config.init, config.teacher):
            assert start is None or start in written or store.card_path(ROOT / start).is_file(), (recipe.name, start)
        written.add(config.out)
