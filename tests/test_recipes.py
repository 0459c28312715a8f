"""Defaults that depend on the log: each rule of the log's statistics sets a value the
run records in config.toml, with why; the user's own value always wins."""

from __future__ import annotations

from deepmf.experiment.config import RunConfig, read_config
from deepmf.experiment.plan import make_plan
from deepmf.experiment.run import train_run

SMALL = "synthetic:users=200,items=100,interactions=4000"


def test_a_small_log_halves_the_batch_and_says_why(tmp_path):
    plan = make_plan(RunConfig(model="gmf", dataset=SMALL))
    assert plan.config.batch_size == 256  # the recipe's 16384, for 3,800 pairs
    assert "16384 halved" in plan.notes["batch_size"] and "3,800 pairs" in plan.notes["batch_size"]
    run, _ = train_run(RunConfig(model="gmf", dataset=SMALL, epochs=1, out=str(tmp_path / "r")))
    text = (run / "config.toml").read_text()
    assert "# batch_size: the recipe's 16384 halved" in text
    assert RunConfig(**read_config(run / "config.toml")).batch_size == 256


def test_the_users_value_is_never_overruled():
    plan = make_plan(RunConfig(model="gmf", dataset=SMALL, batch_size=16384))
    assert plan.config.batch_size == 16384 and "batch_size" not in plan.notes


WIDE = "synthetic:users=90000,items=20000,interactions=150000"  # 110,000 users and items


def test_wide_tables_train_with_lazy_adam_and_say_why():
    plan = make_plan(RunConfig(model="biased-mf", dataset=WIDE))
    assert plan.config.optimizer == "lazy-adam"
    assert "110,000 users and items" in plan.notes["optimizer"]
    assert make_plan(RunConfig(model="biased-mf", dataset=SMALL)).config.optimizer == "adam"
    mine = make_plan(RunConfig(model="biased-mf", dataset=WIDE, optimizer="adam"))
    assert mine.config.optimizer == "adam" and "optimizer" not in mine.notes
    assert make_plan(RunConfig(model="neumf", dataset=WIDE)).config.optimizer == "adam"
    solver = make_plan(RunConfig(model="ials", dataset=WIDE))  # no optimizer to choose
    assert solver.config.optimizer is None and "optimizer" not in solver.notes


def test_large_tables_grow_the_batch_of_dense_adam_models_and_say_why():
    from deepmf.experiment.recipes import recipe

    # ml-20m's shape (the synthetic 20M log: 165,000 users and items): 16,384 -> 262,144
    grown = recipe("neumf", "implicit", n_train=19_862_000, n_rows=165_000)
    assert grown["batch_size"] == 262_144 and grown["lr"] == 0.06  # 0.015 x sqrt(16)
    ml_1m = recipe("neumf", "implicit", n_train=994_169, n_rows=9_746)
    assert ml_1m == recipe("neumf", "implicit", n_train=994_169)  # as tuned
    few = recipe("neumf", "implicit", n_train=150_000, n_rows=110_000)  # 64+ steps kept
    assert few == recipe("neumf", "implicit", n_train=150_000)
    assert recipe("gmf", "implicit", n_train=19_862_000, n_rows=165_000)["batch_size"] == 16384
    assert recipe("mlp", "implicit", n_train=19_862_000, n_rows=165_000)["batch_size"] == 4096
    assert recipe("neumf", "implicit", n_train=19_862_000, n_rows=165_000,
                  batch_size=16384)["lr"] == 0.015  # the user's batch: the recipe's rate
    plan = make_plan(RunConfig(model="neumf", dataset=LARGE))
    assert plan.config.batch_size == 65536 and plan.config.lr == 0.03
    assert "doubled up to the 40,000 users and items" in plan.notes["batch_size"]
    assert "x sqrt(4)" in plan.notes["lr"]
    mine = make_plan(RunConfig(model="neumf", dataset=LARGE, batch_size=8192))
    assert (mine.config.batch_size, mine.config.lr) == (8192, 0.015)


LARGE = "synthetic:users=30000,items=10000,interactions=2000000"
