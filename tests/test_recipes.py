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
