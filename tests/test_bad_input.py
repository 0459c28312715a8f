"""The malformed-input corpus, part 1: bad data files for every reader, and runs that would
mean nothing. Each case runs the real command line and checks the contract: exit code 2,
one line naming the problem (the file, and the line where there is one), no traceback,
nothing left at ``--out``. Every file is generated here, tiny."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import refused, tiny_ratings, write_movielens

GOOD = "user,item,rating,timestamp\n1,10,4,100\n1,11,3,101\n2,10,5,102\n2,12,2,103\n"
"""A valid little log; cases spoil one line of it."""


def ml100k(tmp, files: dict[str, str | bytes] | None = None, *, folder: str | None = None):
    """A miniature ml-100k under ``tmp`` with ``files`` (name: text) written over it and
    ``folder`` made a directory; returns train arguments."""
    root = write_movielens(tmp / "data")
    for name, text in (files or {}).items():
        path = root / "ml-100k" / name
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    if folder:
        (root / "ml-100k" / folder).unlink(missing_ok=True)
        (root / "ml-100k" / folder).mkdir()
    return ["--model", "biased-mf", "--dataset", "ml-100k", "--data-dir", root]


def named(tmp, name: str, folder: str, file: str, text: str):
    """A release other than ml-100k, with only its ratings file."""
    (tmp / "data" / folder).mkdir(parents=True)
    (tmp / "data" / folder / file).write_text(text)
    return ["--model", "biased-mf", "--dataset", name, "--data-dir", tmp / "data"]


def ncf(tmp, train="0\t0\n0\t1\n1\t1\n1\t2\n", test="0\t2\n1\t0\n",
        negative="(0,2)\t1\n(1,0)\t2\n"):
    """An NCF set ``tmp/set`` from the three files' text (None: the file is absent)."""
    for suffix, text in ((".train.rating", train), (".test.rating", test),
                         (".test.negative", negative)):
        if text is not None:
            (tmp / f"set{suffix}").write_text(text)
    return ["--model", "gmf", "--dataset", f"ncf:{tmp / 'set'}", "--k", "2"]


def log(tmp, text: str | bytes = GOOD, name: str = "log.csv", *extra):
    path = tmp / name
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return ["--model", "biased-mf", "--dataset", path, *extra]


def parquet(tmp, frame: pd.DataFrame | None = None, raw: bytes | None = None):
    path = tmp / "log.parquet"
    if raw is not None:
        path.write_bytes(raw)
    else:
        frame.to_parquet(path)
    return ["--model", "biased-mf", "--dataset", path]


def spoil(line: int, text: str, base: str = GOOD) -> str:
    """``base`` with line ``line`` (1-based) replaced."""
    lines = base.splitlines()
    lines[line - 1] = text
    return "\n".join(lines) + "\n"


U_DATA = "\n".join("\t".join(map(str, row)) for row in tiny_ratings(20, 30).tolist()) + "\n"

DATA_FILES = [
    # MovieLens ml-100k: u.data, u.item, u.genre, the official folds
    ("u.data short line", lambda t: ml100k(t, {"u.data": spoil(2, "1\t2\t3", U_DATA)}),
     ["u.data", "line 2", "expected 4 fields, got 3"]),
    ("u.data rating 99", lambda t: ml100k(t, {"u.data": spoil(3, "1\t2\t99\t5", U_DATA)}),
     ["u.data", "line 3", "rating 99 outside 1..5"]),
    ("u.data id 10**20", lambda t: ml100k(t, {"u.data": spoil(2, f"{10**20}\t2\t3\t5", U_DATA)}),
     ["u.data", "line 2", "does not fit in 64 bits"]),
    ("u.data text id", lambda t: ml100k(t, {"u.data": spoil(4, "1\tabc\t3\t5", U_DATA)}),
     ["u.data", "line 4", "item 'abc' is not an integer"]),
    ("u.data rating nan", lambda t: ml100k(t, {"u.data": spoil(2, "1\t2\tnan\t5", U_DATA)}),
     ["u.data", "line 2", "not a finite number"]),
    ("u.data time inf", lambda t: ml100k(t, {"u.data": spoil(2, "1\t2\t3\tinf", U_DATA)}),
     ["u.data", "line 2", "timestamp 'inf' is not an integer"]),
    ("u.data a folder", lambda t: ml100k(t, folder="u.data"), ["u.data", "not a file"]),
    ("u.data empty", lambda t: ml100k(t, {"u.data": ""}), ["u.data", "file is empty"]),
    ("u.data binary", lambda t: ml100k(t, {"u.data": bytes(range(256)) * 4}), ["u.data", "line"]),
    ("u.item id not a number",
     lambda t: ml100k(t, {"u.item": "1|A|x||u|0|1|0|0\nx|B|x||u|0|1|0|0\n"}),
     ["u.item", "line 2", "movie id 'x' is not an integer"]),
    ("u.item genre flag 7",
     lambda t: ml100k(t, {"u.item": "1|A|x||u|0|1|0|0\n2|B|x||u|0|7|0|0\n"}),
     ["u.item", "line 2", "genre flags must be 0 or 1"]),
    ("u.item too few fields", lambda t: ml100k(t, {"u.item": "1|A\n2|B\n"}),
     ["u.item", "2 fields a line"]),
    ("u.item ragged", lambda t: ml100k(t, {"u.item": "1|A|x||u|0|1|0|0\n2|B|x||u|0|1|0|0|1|1\n"}),
     ["u.item", "line 2", "expected 9 fields, got 11"]),
    ("u.genre garbled", lambda t: ml100k(t, {"u.genre": "Action|one\nDrama|two\n"}),
     ["u.genre", "not name|index lines"]),
    ("u1.base unknown user", lambda t: [*ml100k(t, {"u1.base": "999\t1\t3\t5\n",
                                                    "u1.test": U_DATA}), "--split", "u1"],
     ["u1.base", "line 1", "user or item not in u.data"]),
    # other MovieLens layouts
    ("ml-1m bad line", lambda t: named(t, "ml-1m", "ml-1m", "ratings.dat",
                                       "1::10::5::978300760\n1::10::5\n"),
     ["ratings.dat", "line 2", "expected 4 fields"]),
    ("ml-latest-small bad rating", lambda t: named(
        t, "ml-latest-small", "ml-latest-small", "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,five,964981247\n"),
     ["ratings.csv", "line 3", "rating 'five' is not a number"]),
    ("ml-latest-small time 1e300", lambda t: named(
        t, "ml-latest-small", "ml-latest-small", "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.0,1e300\n"),
     ["ratings.csv", "line 3", "timestamp '1e300' is not an integer"]),
    # NCF leave-one-out files
    ("ncf -1 negative", lambda t: ncf(t, negative="(0,2)\t-1\n(1,0)\t2\n"),
     ["set.test.negative", "line 1", "negative item '-1'"]),
    ("ncf id 999,999,999,999", lambda t: ncf(t, train="0\t0\n999999999999\t1\n"),
     ["set.train.rating", "line 2", "would make an id space of 1,000,000,000,000 users"]),
    ("ncf pairs differ", lambda t: ncf(t, negative="(0,2)\t1\n(1,1)\t2\n"),
     ["set.test.negative", "line 2", "does not match line 2 of set.test.rating"]),
    ("ncf no negatives file", lambda t: ncf(t, negative=None),
     ["set.test.negative", "no such file"]),
    ("ncf five fields", lambda t: ncf(t, train="0\t0\t1\t2\t3\n"),
     ["set.train.rating", "line 1", "expected 2 to 4 tab-separated fields, got 5"]),
    ("ncf text id", lambda t: ncf(t, train="0\t0\nzero\t1\n"),
     ["set.train.rating", "line 2", "user 'zero' is not an integer"]),
    ("ncf negative id in train", lambda t: ncf(t, train="0\t0\n-4\t1\n"),
     ["set.train.rating", "line 2", "negative id"]),
    ("ncf set missing", lambda t: ["--model", "gmf", "--dataset", f"ncf:{t / 'nowhere'}"],
     ["NCF dataset", "nowhere"]),
    # any log file
    ("csv BOM, bad rating", lambda t: log(t, "\ufeff" + spoil(3, "1,11,five,101")),
     ["log.csv", "line 3", "rating 'five' is not a number"]),
    ("csv ; separated, bad rating", lambda t: log(t, spoil(4, "2;10;x;102",
                                                          GOOD.replace(",", ";"))),
     ["log.csv", "line 4", "rating 'x' is not a number"]),
    ("csv | separated, short line", lambda t: log(t, spoil(2, "1|10", GOOD.replace(",", "|"))),
     ["log.csv", "line 2", "expected 4 fields, got 2"]),
    ("csv binary", lambda t: log(t, bytes(range(256)) * 4), ["log.csv", "binary data"]),
    ("csv timestamp a date among numbers", lambda t: log(t, spoil(3, "1,11,3,2020-01-01")),
     ["log.csv", "line 3", "timestamp '2020-01-01' is not a number"]),
    ("csv timestamp a number among dates", lambda t: log(
        t, "user,item,rating,time\n1,10,4,2020-01-01\n1,11,3,881250949\n"),
     ["log.csv", "line 3", "timestamp '881250949' is a number in a column of dates"]),
    ("csv timestamp 1e30", lambda t: log(t, spoil(5, "2,12,2,1e30")),
     ["log.csv", "line 5", "timestamp '1e+30' is out of range"]),
    ("csv timestamp not a date", lambda t: log(
        t, "user,item,rating,time\n1,10,4,2020-01-01\n1,11,3,someday\n"),
     ["log.csv", "line 3", "timestamp 'someday' is not a date"]),
    ("csv rating inf", lambda t: log(t, spoil(2, "1,10,inf,100")),
     ["log.csv", "line 2", "not a finite number"]),
    ("csv rating outside --rating-range", lambda t: log(t, spoil(3, "1,11,99,101"), "log.csv",
                                                        "--rating-range", "1,5"),
     ["log.csv", "line 3", "rating 99 outside 1..5 (--rating-range)"]),
    ("csv empty item", lambda t: log(t, spoil(2, "1,,4,100")), ["log.csv", "line 2", "empty item"]),
    ("csv extra field", lambda t: log(t, spoil(3, "1,11,3,101,9")),
     ["log.csv", "line 3", "expected 4 fields, got 5"]),
    ("csv header only", lambda t: log(t, "user,item,rating\n"), ["log.csv", "no data rows"]),
    ("csv empty", lambda t: log(t, ""), ["log.csv", "file is empty"]),
    ("csv one column", lambda t: log(t, "user\n1\n2\n"), ["log.csv", "no item column"]),
    ("csv unknown --user-col", lambda t: log(t, GOOD, "log.csv", "--user-col", "who",
                                             "--item-col", "item"),
     ["log.csv", "no column 'who'"]),
    ("tsv bad line", lambda t: log(t, spoil(3, "1\tx", GOOD.replace(",", "\t")), "log.tsv"),
     ["log.tsv", "line 3"]),
    ("text named .zip", lambda t: log(t, "hello\n", "ml-100k.zip"),
     ["ml-100k.zip", "an archive or compressed file"]),
    ("a folder as data set", lambda t: (t / "logs.csv").mkdir() or
     ["--model", "mf", "--dataset", t / "logs.csv"], ["logs.csv", "a directory"]),
    ("no such file", lambda t: ["--model", "mf", "--dataset", t / "absent.csv"],
     ["absent.csv", "no such file"]),
    ("unknown data set", lambda t: ["--model", "mf", "--dataset", "ml-2k"],
     ["unknown dataset 'ml-2k'"]),
    ("parquet float id 1e30", lambda t: parquet(t, pd.DataFrame(
        {"user": [1e30, 2.0], "item": [1, 2], "rating": [4.0, 3.0]})),
     ["log.parquet", "row 1", "user id 1e+30 is a float that is not an exact whole number"]),
    ("parquet garbage", lambda t: parquet(t, raw=b"PAR1 not really"),
     ["log.parquet", "not a readable Parquet file"]),
    ("parquet missing value", lambda t: parquet(t, pd.DataFrame(
        {"user": [1, None], "item": [1, 2], "rating": [4.0, 3.0]})),
     ["log.parquet", "row 2", "missing value"]),
]

DEGENERATE = [
    ("one-row log", lambda t: log(t, "user,item,rating\n1,1,4\n"),
     ["random:0.2 leaves no test rows", "of the 1 rows of log.csv"]),
    ("--min-rating keeps nothing", lambda t: log(t, GOOD, "log.csv", "--model", "gmf",
                                                 "--min-rating", "10"),
     ["no training rows with --min-rating 10", "the ratings span 2..5"]),
    ("--split random:0.001 of 4 rows", lambda t: log(t, GOOD, "log.csv", "--split",
                                                     "random:0.001"),
     ["random:0.001 leaves no test rows"]),
    ("--split random:0.99 of 4 rows", lambda t: log(t, GOOD, "log.csv", "--split", "random:0.99"),
     ["random:0.99 leaves no training rows"]),
    ("--valid-fraction leaves nothing to fit", lambda t: [
        *ml100k(t), "--split", "random:0.2", "--valid-fraction", "0.999"],
     ["--valid-fraction 0.999 of", "leaves none to fit"]),
    ("loo of single-row users", lambda t: log(t, "user,item\n1,1\n2,2\n3,3\n", "log.csv",
                                             "--model", "gmf"),
     ["split loo leaves no test rows"]),
    ("--lr that moves no weight", lambda t: [*ml100k(t), "--split", "random:0.2",
                                             "--lr", "1e-320"],
     ["1 epoch of training changed no weight", "--lr 1e-320"]),
    ("--k above the items", lambda t: [*ncf(t), "--k", "1000"],
     ["--k 1000 is more than the 3 items", "every item would be a hit"]),
]


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a warning is more lines on stderr
@pytest.mark.parametrize(("build", "needles"), [c[1:] for c in DATA_FILES + DEGENERATE],
                         ids=[c[0] for c in DATA_FILES + DEGENERATE])
def test_bad_data_is_one_line_and_leaves_nothing(build, needles, tmp_path, capsys):
    out = tmp_path / "run"
    refused(capsys, ["train", *build(tmp_path), "--epochs", "1", "--quiet", "--out", out],
            *needles, out=out)
