"""The malformed-input corpus, part 3: damaged, edited or foreign run directories given to
``evaluate``, ``recommend`` and ``serve``; checkpoints are never unpickled; raw ids keep
their identity from the file to ``vocab.json`` to ``recommend --user``. Each damaged run is
a copy of one tiny trained run; the command must leave it exactly as it found it."""

from __future__ import annotations

import json
import pickle
import shutil

import pytest
import torch
from helpers import refused, snapshot
from safetensors.torch import load_file, save_file
from serve_run import free_port

from deepmf.cli import main

CK = "checkpoints/random:0.2"


def cut(name: str, keep: float = 0.5):
    """Damage: keep the first ``keep`` of the file's bytes (a partial copy)."""
    def damage(run):
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[: int(len(data) * keep)])
    return damage


def write(name: str, data: bytes | str):
    def damage(run):
        path = run / name
        path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)
    return damage


def edit_json(name: str, change):
    """Damage: ``change(object)`` applied to a JSON file (edits in place)."""
    def damage(run):
        value = json.loads((run / name).read_text())
        change(value)
        (run / name).write_text(json.dumps(value))
    return damage


def delete(name: str):
    def damage(run):
        path = run / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return damage


def nan_weights(run):
    state = load_file(run / CK / "model.safetensors")
    state["user_factors.weight"][0, 0] = float("nan")
    save_file(state, run / CK / "model.safetensors")


def other_arrays(run):
    save_file({"users": torch.zeros(3, dtype=torch.int64)}, run / CK / "interactions.safetensors")


class Bomb:
    """Unpickling this creates ``self.marker``: proof that a file was unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def planted(kind: str):
    def damage(run):
        target, bomb = run / CK / "model.safetensors", Bomb(run.parent / "UNPICKLED")
        if kind == "torch.save":
            torch.save({"user_factors.weight": bomb}, target)
        else:
            target.write_bytes(pickle.dumps(bomb, protocol=4))
    return damage


def keep_at(where, **value):
    return lambda meta: meta.__setitem__(where, value.get("v")) if value else meta.pop(where)


DAMAGES = [
    ("model.safetensors empty", write(f"{CK}/model.safetensors", b""),
     ["model.safetensors", "not a readable safetensors file"]),
    ("model.safetensors cut in half", cut(f"{CK}/model.safetensors"),
     ["model.safetensors", "not a readable safetensors file"]),
    ("model.safetensors a few bytes", cut(f"{CK}/model.safetensors", 0.02),
     ["model.safetensors", "not a readable safetensors file"]),
    ("model.safetensors deleted", delete(f"{CK}/model.safetensors"),
     ["model.safetensors", "missing"]),
    ("interactions.safetensors cut in half", cut(f"{CK}/interactions.safetensors"),
     ["interactions.safetensors", "not a readable safetensors file"]),
    ("interactions.safetensors empty", write(f"{CK}/interactions.safetensors", b""),
     ["interactions.safetensors", "not a readable safetensors file"]),
    ("interactions.safetensors of other arrays", other_arrays,
     ["interactions.safetensors", "no fit_users"]),
    ("model.json cut", cut(f"{CK}/model.json"), ["model.json", "not valid JSON"]),
    ("model.json without n_users", edit_json(f"{CK}/model.json", keep_at("n_users")),
     ["model.json", "n_users and n_items must be whole numbers"]),
    ("model.json dim edited", edit_json(f"{CK}/model.json",
                                        lambda m: m["model_args"].update(dim=7)),
     ["model.safetensors", "but model.json describes float32 [", ", 7]"]),
    ("model.json n_users edited", edit_json(f"{CK}/model.json", keep_at("n_users", v=5)),
     ["5 users"]),
    ("model.json of another model", edit_json(f"{CK}/model.json", keep_at("model", v="gmf")),
     ["model.json", "model_args do not make a gmf model"]),
    ("weights of another model", edit_json(f"{CK}/model.json", lambda m: m.update(
        model="mf", model_args={"dim": m["model_args"]["dim"]})),
     ["model.safetensors", "so it is not the mf model that model.json describes"]),
    ("model.json unknown model", edit_json(f"{CK}/model.json", keep_at("model", v="svd")),
     ["model.json", "unknown model 'svd'"]),
    ("model.json from another version", edit_json(f"{CK}/model.json", keep_at("format", v=2)),
     ["model.json", "checkpoint format 2"]),
    ("model.json model_args a list", edit_json(f"{CK}/model.json",
                                               keep_at("model_args", v=[])),
     ["model.json", "model_args must be an object"]),
    ("model.json dim as text", edit_json(f"{CK}/model.json",
                                         lambda m: m["model_args"].update(dim="big")),
     ["model.json", "model_args do not make a biased-mf model"]),
    ("NaN weights", nan_weights, ["model.safetensors", "user_factors.weight holds NaN"]),
    ("torch.save file planted", planted("torch.save"),
     ["model.safetensors", "a pickle (torch.save) file", "never unpickles"]),
    ("pickle planted", planted("pickle"), ["model.safetensors", "a pickle"]),
    ("checkpoints deleted", delete("checkpoints"), ["checkpoint"]),
    ("metrics.json cut", cut("metrics.json"), ["metrics.json", "not valid JSON"]),
    ("metrics.json a list", write("metrics.json", "[1, 2]"),
     ["metrics.json", "expected a JSON object, found list"]),
    ("metrics.json deleted", delete("metrics.json"), ["not a deepmf run directory"]),
    ("config.toml cut", lambda run: (run / "config.toml").write_text('model = "bias'),
     ["config.toml", "not valid TOML"]),
    ("config.toml bad value", lambda run: (run / "config.toml").write_text(
        (run / "config.toml").read_text().replace("seed = 0", 'seed = "zero"')),
     ["config.toml", "--seed must be a whole number"]),
    ("config.toml deleted", delete("config.toml"), ["not a deepmf run directory"]),
    ("vocab.json cut", cut("vocab.json"), ["vocab.json", "not valid JSON"]),
    ("vocab.json repeated ids", edit_json("vocab.json", lambda v: v["users"].__setitem__(1, 1)),
     ["vocab.json", "'users'", "unique"]),
    ("vocab.json of floats", edit_json("vocab.json", lambda v: v.__setitem__("items", [0.5])),
     ["vocab.json", "'items' must hold whole numbers or text, not floating"]),
    ("vocab.json a user short", edit_json("vocab.json", lambda v: v["users"].pop()),
     ["vocab.json"]),
    ("vocab.json deleted", delete("vocab.json"), ["vocab.json", "missing"]),
]
ITEM_DAMAGES = [  # items.csv holds titles: evaluate does not read it
    ("items.csv garbage", write("items.csv", b'\x00\xff garbage,,\n"unclosed'),
     ["items.csv", "not a readable items table"]),
    ("items.csv bad index", write("items.csv", "index,item,title,genres\nzero,1,A,\n"),
     ["items.csv", "line 2", "index 'zero' is not a whole number"]),
    ("items.csv without index", write("items.csv", "item,title\n1,A\n"),
     ["items.csv", "no index column"]),
]
COMMANDS = {
    "evaluate": lambda run: ["evaluate", run],
    "recommend": lambda run: ["recommend", run, "--user", "1"],
    "serve": lambda run: ["serve", run, "--port", free_port()],
}
CASES = [(name, command, damage, needles) for name, damage, needles in DAMAGES
         for command in COMMANDS] + \
        [(name, command, damage, needles) for name, damage, needles in ITEM_DAMAGES
         for command in ("recommend", "serve")]


@pytest.fixture
def no_serving(monkeypatch):
    """``serve`` must fail before serving: a test that reached uvicorn would hang."""
    import uvicorn

    def refuse(self, *args, **kwargs):
        raise AssertionError("the server started on a damaged run")

    monkeypatch.setattr(uvicorn.Server, "run", refuse)


@pytest.mark.parametrize(("command", "damage", "needles"), [c[1:] for c in CASES],
                         ids=[f"{c[1]}: {c[0]}" for c in CASES])
def test_damaged_run_directory(command, damage, needles, tiny_run, tmp_path, capsys,
                               no_serving):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    damage(run)
    before = snapshot(run)
    refused(capsys, COMMANDS[command](run), *needles)
    assert snapshot(run) == before, "the command changed the run directory"
    assert not (tmp_path / "UNPICKLED").exists(), "a planted pickle was unpickled"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_not_a_run_directory(command, tmp_path, capsys, no_serving):
    refused(capsys, COMMANDS[command](tmp_path / "nowhere"), "not a deepmf run directory")


@pytest.mark.parametrize(("args", "needles"), [
    (["recommend", "{run}", "--user", "ghost"], ["unknown user 'ghost'", "--fallback popular"]),
    (["recommend", "{run}", "--user", "1", "--fallback", "random"], ["--fallback must be"]),
    (["recommend", "{run}", "--user", "1", "--split", "u9"], ["no checkpoint for split 'u9'"]),
    (["recommend", "{run}", "--user", "1", "--k", "0"], ["--k"]),
    (["recommend", "{run}", "--user", "1", "--k", "1000000"], ["--k"]),
    (["recommend", "{run}", "--user", "1", "--history", "-1"], ["--history"]),
    (["recommend", "{run}", "--user", "1", "--data-dir", "/no/such"], ["no such folder"]),
    (["recommend", "{run}"], ["give one of --user ID, --users FILE or --all-users"]),
    (["recommend", "{run}", "--user", "1", "--all-users"], ["give one of"]),
    (["recommend", "{run}", "--all-users"], ["need --out FILE"]),
    (["recommend", "{run}", "--all-users", "--out", "/tmp/top.json"], ["name a .csv, .tsv"]),
    (["recommend", "{run}", "--all-users", "--out", "/no/such/top.csv"], ["no such folder"]),
    (["recommend", "{run}", "--all-users", "--out", "top.csv", "--json"], ["--json is for"]),
    (["recommend", "{run}", "--all-users", "--out", "top.csv", "--history", "2"],
     ["--history is for one --user"]),
    (["recommend", "{run}", "--user", "1", "--out", "top.csv"], ["--out is for --users"]),
    (["recommend", "{run}", "--users", "/no/such.txt", "--out", "top.csv"],
     ["--users /no/such.txt: cannot read it"]),
    (["recommend", "{run}", "--users", "/dev/null", "--out", "top.csv"], ["no user ids in it"]),
    (["evaluate", "{run}", "--protocol", "bogus"], ["--protocol must be sampled or full"]),
    (["evaluate", "{run}", "--k", "0"], ["--k"]),
    (["evaluate", "{run}", "--data-dir", "/no/such"], ["no such folder"]),
    (["serve", "{run}", "--port", "70000"], ["--port"]),
    (["serve", "{run}", "--port", "-1"], ["--port"]),
    (["serve", "{run}", "--cache-size", "-1"], ["--cache-size"]),
    (["serve", "{run}", "--split", "u9"], ["no checkpoint for split 'u9'"]),
])
def test_bad_flags_for_a_run(args, needles, tiny_run, capsys, no_serving):
    refused(capsys, [a.format(run=tiny_run) for a in args], *needles)


def test_evaluate_refuses_data_that_changed_since_training(tiny_run, tiny_data, tmp_path,
                                                          capsys):
    """The ids of a re-read data set must be those the run was trained on."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    with open(data / "ml-100k" / "u.data", "a") as handle:
        handle.write("999\t1\t5\t881250949\n")  # a new user
    refused(capsys, ["evaluate", tiny_run, "--data-dir", data], "vocab.json",
            "the ids differ from those of ml-100k")


def test_a_safetensors_header_starting_like_a_pickle_still_loads(tmp_path):
    """safetensors begins with its header's length: a length of 0x...80 is no pickle."""
    from deepmf.checkpoint import read_safetensors

    path = tmp_path / "w.safetensors"
    for pad in range(256):
        save_file({"w": torch.ones(2)}, path, metadata={"pad": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[:1] == b"\x80"
    assert torch.equal(read_safetensors(path)["w"], torch.ones(2))


RAW_IDS = ["18446744073709551615", "007", "u-1", "1e30", "42", "-0", "ünï"]


def test_raw_ids_round_trip_through_vocab_and_recommend(tmp_path, capsys):
    """Ids that are not whole 64-bit numbers are kept as the text they are: never wrapped
    (2**64 - 1 is not -1), never turned into floats (1e30), leading zeros kept."""
    rows = [f"{u},{i},{1 + (n % 5)}" for n, (u, i) in enumerate(
        (u, i) for u in RAW_IDS for i in range(8) if (hash(u) + i) % 3)]
    log = tmp_path / "ids.csv"
    log.write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main(["train", "--model", "biased-mf", "--dataset", str(log), "--epochs", "1",
                 "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    vocab = json.loads((out / "vocab.json").read_text())
    assert sorted(vocab["users"]) == sorted(RAW_IDS)
    for user in RAW_IDS:
        assert main(["recommend", str(out), "--user", user, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["user"] == user
    refused(capsys, ["recommend", out, "--user", "7"], "unknown user '7'")  # "007" is not 7


def test_integer_ids_stay_integers(tmp_path, capsys):
    log = tmp_path / "ids.csv"
    log.write_text("user,item,rating\n" + "".join(
        f"{u},{i},3\n" for u in (7, 2**63 - 1, -5) for i in range(6)))
    out = tmp_path / "run"
    assert main(["train", "--model", "biased-mf", "--dataset", str(log), "--epochs", "1",
                 "--quiet", "--out", str(out), "--split", "random:0.3"]) == 0
    assert json.loads((out / "vocab.json").read_text())["users"] == [-5, 7, 2**63 - 1]
    capsys.readouterr()
    assert main(["recommend", str(out), "--user", str(2**63 - 1), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["user"] == 2**63 - 1
