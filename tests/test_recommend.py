"""recommend / similar_items on hand-made scores, then TrainedModel and the CLI on a real run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import fresh_python, refused

from deepmf.cli import main
from deepmf.data import Interactions
from deepmf.errors import DeepMFError
from deepmf.evaluate import evaluate_full
from deepmf.experiment.trained import UnknownIdError
from deepmf.models import MF, ItemPop, Recommender
from deepmf.recommend import recommend, seen_pairs, similar_items


class FixedScores(Recommender):
    """A 'model' whose scores are a given matrix."""

    def __init__(self, table):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32))
        self.n_users, self.n_items = self.table.shape

    def forward(self, users, items):
        return self.table[users, items]

    def score_all(self, users):
        return self.table[users]


TABLE = [[0.1, 0.9, 0.5, 0.7, 0.3],
         [0.8, 0.2, 0.6, 0.4, 0.0]]
SEEN = Interactions(np.array([0, 0, 0, 1]), np.array([1, 3, 4, 0]), n_users=2, n_items=5)


def test_recommend_ranks_by_score_and_leaves_out_seen_items():
    items, scores = recommend(FixedScores(TABLE), [0, 1], k=2, exclude=SEEN.csr)
    assert items.tolist() == [[2, 0], [2, 3]]
    np.testing.assert_allclose(scores, [[0.5, 0.1], [0.6, 0.4]], rtol=1e-6)


def test_recommend_without_exclusion_keeps_seen_items():
    items, _ = recommend(FixedScores(TABLE), [0], k=3)
    assert items.tolist() == [[1, 3, 2]]


def test_batch_equals_single_user_calls():
    model, users = FixedScores(np.random.default_rng(0).random((6, 9))), [4, 0, 5, 2]
    seen = Interactions(np.array([0, 0, 2, 4, 5]), np.array([3, 8, 1, 1, 0]), n_users=6, n_items=9)
    batch_items, batch_scores = recommend(model, users, k=4, exclude=seen.csr)
    for row, user in enumerate(users):
        items, scores = recommend(model, [user], k=4, exclude=seen.csr)
        assert items[0].tolist() == batch_items[row].tolist()
        np.testing.assert_array_equal(scores[0], batch_scores[row])


def test_fewer_unseen_items_than_k_returns_only_valid_ones():
    items, scores = recommend(FixedScores(TABLE), [0], k=10, exclude=SEEN.csr)
    assert items.tolist() == [[2, 0]]  # 5 items, 3 seen: two left
    items, scores = recommend(FixedScores(TABLE), [0, 1], k=10, exclude=SEEN.csr)
    assert items.shape == (2, 4)  # user 1 has four left; user 0's row is padded
    assert items[0].tolist() == [2, 0, -1, -1] and np.isinf(scores[0, 2:]).all()


@pytest.mark.parametrize("batch_users", [1, 2, 3])
def test_users_scored_in_batches_give_the_lists_of_one_batch(batch_users):
    """Batches of users keep their own top k; the lists, and the padding of a user with
    fewer unseen items than k (user 0: two left), are those of scoring everyone at once."""
    table = np.random.default_rng(1).random((5, 5))
    table[:2] = TABLE
    seen = Interactions(np.array([0, 0, 0, 1]), np.array([1, 3, 4, 0]), n_users=5, n_items=5)
    model, users = FixedScores(table), [3, 0, 1, 4, 2]
    calls = []
    score_all = model.score_all
    model.score_all = lambda batch: calls.append(len(batch)) or score_all(batch)
    items, scores = recommend(model, users, k=4, exclude=seen.csr, batch_users=batch_users)
    assert max(calls) == batch_users and sum(calls) == len(users)
    whole = np.argsort(-np.where(seen.csr.toarray()[users] > 0, -np.inf, table[users]), axis=1)
    for row, user in enumerate(users):
        unseen = [i for i in whole[row].tolist() if (user, i) not in {(0, 1), (0, 3), (0, 4),
                                                                      (1, 0)}][:4]
        assert items[row].tolist() == unseen + [-1] * (4 - len(unseen))
        np.testing.assert_allclose(scores[row, : len(unseen)], table[user, unseen], rtol=1e-6)
    assert np.isinf(scores[users.index(0), 2:]).all()


def test_recommend_for_no_users_has_the_usual_width():
    items, scores = recommend(FixedScores(TABLE), [], k=3)
    assert items.shape == scores.shape == (0, 3)


def test_masking_never_writes_into_the_model():
    # ItemPop's score_all is a view of its counts buffer: masking must copy, not write.
    log = Interactions(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 2]), n_users=3, n_items=4)
    model = ItemPop(3, 4, log)
    before = model.counts.clone()
    items, _ = recommend(model, [1], k=2, exclude=log.csr)
    assert items.tolist() == [[2, 3]]
    assert torch.equal(model.counts, before)


@pytest.mark.parametrize("fresh", [True, False])
def test_scores_are_masked_in_place_only_where_the_model_says_they_are_fresh(fresh):
    """A model whose ``score_all`` gives a new tensor each call lets ``recommend`` and full
    ranking write ``-inf`` into it (no copy); any other keeps its output intact."""
    model = FixedScores(TABLE)
    model.fresh_scores = fresh
    outputs = []
    model.score_all = lambda users: outputs.append(model.table[users]) or outputs[-1]
    items, _ = recommend(model, [0, 1], k=2, exclude=SEEN.csr)
    assert items.tolist() == [[2, 0], [2, 3]]
    full = evaluate_full(model, SEEN, Interactions(np.array([0, 1]), np.array([2, 2]),
                                                   n_users=2, n_items=5), k=1)
    assert full["hr@1"] == 1.0  # item 2 is both users' best unseen item
    written = [bool(torch.isinf(out).any()) for out in outputs]
    assert written == [fresh, fresh]
    assert not torch.isinf(model.table).any()


def test_seen_pairs_lists_each_rows_items():
    rows, cols = seen_pairs(SEEN.csr, np.array([1, 0]))
    assert rows.tolist() == [0, 1, 1, 1] and cols.tolist() == [0, 1, 3, 4]


def test_similar_items_is_cosine_without_the_item_itself():
    model = MF(1, 4, dim=2)
    with torch.no_grad():
        vectors = [[1.0, 0], [3.0, 0.1], [0, 1.0], [-1.0, -0.5]]
        model.item_factors.weight.copy_(torch.tensor(vectors))
    items, sims = similar_items(model, [0, 2], k=2)
    assert items.tolist() == [[1, 2], [1, 0]]
    assert sims[0, 0] == pytest.approx(0.99944, abs=1e-4) and sims[0, 1] == pytest.approx(0.0)


def test_similar_items_needs_item_embeddings():
    log = Interactions(np.array([0]), np.array([0]), n_users=1, n_items=2)
    with pytest.raises(DeepMFError, match="no item embeddings"):
        similar_items(ItemPop(1, 2, log), [0], k=1)


# -- a trained ml-100k run -------------------------------------------------------------


def test_trained_model_recommends_unseen_titled_items(trained):
    recs = trained.recommend([1], k=10)[0]
    assert len(recs) == 10 and all(r.title for r in recs)
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
    user = trained.user_index(1)
    seen = set(trained.seen.csr[user].indices.tolist())
    assert not seen & set(trained.item_indices([r.item for r in recs]).tolist())
    items, _ = recommend(trained.model, [user], 10, trained.seen.csr)
    assert [r.item for r in recs] == trained.items.raw(items[0]).tolist()


def test_raw_ids_match_as_text_or_numbers(trained):
    assert trained.recommend(["1"], 5) == trained.recommend([1], 5)
    with pytest.raises(UnknownIdError, match="unknown user 'nobody'"):
        trained.recommend(["nobody"], 5)
    with pytest.raises(UnknownIdError, match="unknown item 99999"):
        trained.similar([99999])


def test_history_is_latest_first_with_ratings(trained):
    rows = trained.history(1, limit=15)
    assert len(rows) == 15 and all(r.rating in (1, 2, 3, 4, 5) for r in rows)
    times = [r.timestamp for r in rows]
    assert times == sorted(times, reverse=True)


def test_cli_recommend_json_matches_library(run_dir, trained, capsys):
    assert main(["recommend", str(run_dir), "--user", "1", "--k", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["user"] == 1 and out["source"] == "model"
    assert [r["item"] for r in out["items"]] == [r.item for r in trained.recommend([1], 10)[0]]
    assert [r["rank"] for r in out["items"]] == list(range(1, 11))


def test_cli_recommend_table_and_history(run_dir, data_root, capsys):
    args = ["recommend", str(run_dir), "--user", "1", "--k", "3", "--history", "2",
            "--data-dir", str(data_root)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "top 3 for user 1" in out and "latest seen items" in out and "rating" in out


def test_cli_unknown_user_exits_2_or_falls_back(run_dir, capsys):
    assert main(["recommend", str(run_dir), "--user", "424242"]) == 2
    assert "unknown user '424242'" in capsys.readouterr().err
    assert main(["recommend", str(run_dir), "--user", "424242", "--fallback", "popular",
                 "--json", "--k", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "popular" and len(out["items"]) == 3
    assert main(["recommend", str(run_dir), "--user", "1", "--fallback", "nope"]) == 2


def test_a_served_model_computes_its_item_side_once(tmp_path, data_root, capsys):
    """A loaded run keeps its model's scorers: DMF's item tower runs once for recommending
    and once for scoring pairs, not on every request, with the lists of a fresh call."""
    from deepmf.experiment.trained import TrainedModel

    out = tmp_path / "dmf"
    assert main(["train", "--model", "dmf", "--dataset", "ml-100k", "--epochs", "1", "--quiet",
                 "--data-dir", str(data_root), "--out", str(out)]) == 0
    capsys.readouterr()
    served = TrainedModel(out, load_data=False)
    calls = []
    item_vectors = served.model.item_vectors
    served.model.item_vectors = lambda: calls.append(1) or item_vectors()
    lists = [served.recommend_indices([user], 5)[0] for user in (0, 1, 2)]
    scores = [served.score(served.raw_users[0], served.raw_items[:3]) for _ in range(2)]
    assert len(calls) == 2 and scores[0] == scores[1]
    items, _ = recommend(served.model, [0, 1, 2], 5, served.exclude)  # made afresh
    assert [[r.item for r in row] for row in lists] == [served.items.raw(r).tolist()
                                                        for r in items]


def test_cli_writes_every_users_list_as_the_single_user_command_ranks_it(run_dir, trained,
                                                                         tmp_path, capsys):
    """``--all-users`` writes each user's top k, best first, seen items left out, the same
    lists (and scores) as asking user by user; `.parquet` keeps the types."""
    import pandas as pd

    out = tmp_path / "all.parquet"
    assert main(["recommend", str(run_dir), "--all-users", "--k", "4", "--out", str(out)]) == 0
    assert f"top 4 of {len(trained.users):,} users" in capsys.readouterr().out
    table = pd.read_parquet(out)
    assert list(table.columns) == ["user", "rank", "item", "score", "source"]
    assert len(table) == 4 * len(trained.users) and set(table["source"]) == {"model"}
    assert table["user"].drop_duplicates().tolist() == trained.raw_users  # model order
    assert (table.groupby("user")["score"].diff().dropna() <= 0).all()
    for raw in (1, 100, trained.raw_users[-1]):
        mine = table[table["user"] == raw]
        expected = trained.recommend([raw], 4)[0]
        assert mine["rank"].tolist() == [1, 2, 3, 4]
        assert mine["item"].tolist() == [r.item for r in expected]
        np.testing.assert_allclose(mine["score"], [r.score for r in expected], rtol=1e-6)
        assert not trained.seen_mask(raw, mine["item"].tolist()).count(True)


def test_cli_lists_for_a_file_of_users_in_its_order_with_the_popular_fallback(
        tiny_run, tmp_path, capsys):
    """``--users FILE`` keeps the file's order; an unknown id fails the whole command (one
    line, nothing written) unless ``--fallback popular`` gives it the most-seen items."""
    import pandas as pd

    from deepmf.experiment.trained import TrainedModel

    ids = tmp_path / "users.txt"
    ids.write_text("7\n\nghost\n3\n")
    out = tmp_path / "some.csv"
    refused(capsys, ["recommend", tiny_run, "--users", ids, "--out", out],
            "unknown user 'ghost'", "--fallback popular", out=out)
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))
    assert main(["recommend", str(tiny_run), "--users", str(ids), "--out", str(out),
                 "--k", "3", "--fallback", "popular"]) == 0
    table = pd.read_csv(out, dtype={"user": str})
    assert table["user"].tolist() == ["7"] * 3 + ["ghost"] * 3 + ["3"] * 3
    assert table["source"].tolist() == ["model"] * 3 + ["popular"] * 3 + ["model"] * 3
    model = TrainedModel(tiny_run, load_data=False)
    popular = model.popular_items(3)
    assert table["item"].tolist()[3:6] == [p.item for p in popular]
    assert table["score"].tolist()[3:6] == [p.score for p in popular]
    assert table["item"].tolist()[6:] == [r.item for r in model.recommend([3], 3)[0]]


def test_loading_a_run_to_recommend_does_not_import_the_compiler(tiny_run):
    """A run's model is checked against a meta-device skeleton before it is built; that
    skeleton's ``normal_`` would import ``torch._dynamo`` (seconds of every ``recommend``,
    ``evaluate`` and ``serve`` start) if it were not skipped."""
    probe = ("import sys\n"
             "from deepmf.experiment.trained import TrainedModel\n"
             f"model = TrainedModel({str(tiny_run)!r}, load_data=False)\n"
             "print('LISTS', len(model.top_table(None, 3)))\n"
             "print('DYNAMO', 'torch._dynamo' in sys.modules)\n")
    output = fresh_python(probe)
    assert "DYNAMO False" in output, output[-1000:]
    assert "LISTS 600" in output  # 200 users x 3


def test_no_model_imports_the_compiler_when_checked_against_a_checkpoint():
    """Every model's skeleton (built on the meta device to check a checkpoint's shapes)
    draws and computes nothing that would import ``torch._dynamo``."""
    probe = ("import sys\n"
             "import numpy as np\n"
             "from deepmf.checkpoint import _shapes_only\n"
             "from deepmf.data import Interactions\n"
             "from deepmf.models import MODELS, build_model\n"
             "data = Interactions(np.arange(4), np.array([1, 2, 3, 0]), n_users=4, n_items=4,\n"
             "                    ratings=np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32))\n"
             "for name in sorted(MODELS):\n"
             "    with _shapes_only():\n"
             "        model = build_model(name, data)\n"
             "    assert all(p.is_meta for p in model.parameters()), name\n"
             "    if 'torch._dynamo' in sys.modules:\n"
             "        print('IMPORTED BY', name)\n"
             "        break\n"
             "print('CHECKED', len(MODELS))\n")
    output = fresh_python(probe)
    assert "CHECKED" in output and "IMPORTED" not in output, output[-1000:]
