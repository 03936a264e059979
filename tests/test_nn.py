"""The net: masks from ids, padding invariance, head outputs, training, checkpoints."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rfm_runtime.errors import RfmError  # noqa: E402
from rfm_runtime.tokenize import tokenize  # noqa: E402
from rfm_synthetic import make_cells, small_net_config  # noqa: E402

from dbt_rfm.nn.config import NetConfig  # noqa: E402
from dbt_rfm.nn.encoder import build_masks  # noqa: E402
from dbt_rfm.nn.train import (  # noqa: E402
    TrainConfig,
    build_net,
    load_checkpoint,
    save_checkpoint,
    to_tensors,
    train_icl,
)

CFG = small_net_config()


def _brute_masks(node, parent, column):
    """The mask definitions, one pair at a time."""
    s = len(node)
    out = np.zeros((4, s, s), dtype=bool)
    for i, j in itertools.product(range(s), range(s)):
        ok = node[i] >= 0 and node[j] >= 0
        out[0, i, j] = ok and column[i] == column[j]
        out[1, i, j] = ok and (node[j] == node[i] or node[j] == parent[i])
        out[2, i, j] = ok and parent[j] == node[i]
        out[3, i, j] = ok
        out[:, i, i] = True
    return out


def test_masks_match_their_definitions() -> None:
    cells, _ = make_cells(3, seed=11)
    b = tokenize(cells, None, CFG.tokenizer()).trimmed()
    masks = build_masks(
        *(torch.from_numpy(a) for a in (b.node_index, b.parent_index, b.column_index))
    )
    for a in range(b.num_anchors):
        expected = _brute_masks(b.node_index[a], b.parent_index[a], b.column_index[a])
        np.testing.assert_array_equal(masks[a].numpy(), expected)
    # a hop-1 order token sees its customer row (feature) and the customer sees the orders
    a, hop1 = 0, int(np.flatnonzero(b.hop[0] == 1)[0])
    assert masks[a, 1, hop1, 1] and masks[a, 2, 1, hop1] and not masks[a, 2, hop1, 1]


def test_embeddings_ignore_padding_and_other_anchors() -> None:
    encoder, _ = build_net(CFG)
    encoder.eval()
    cells, _ = make_cells(4, seed=12)
    b = tokenize(cells, None, CFG.tokenizer())
    with torch.no_grad():
        full = encoder(*(torch.from_numpy(a) for a in b.feeds().values()))  # S = 64, padded
        trimmed = encoder(*to_tensors(b))
        alone = encoder(*to_tensors(b.take(np.array([2]))))
    np.testing.assert_allclose(full.numpy(), trimmed.numpy(), atol=1e-5)
    np.testing.assert_allclose(alone.numpy()[0], full.numpy()[2], atol=1e-5)
    assert not np.allclose(full.numpy()[0], full.numpy()[1], atol=1e-3)


def test_head_outputs_are_distributions_over_active_classes() -> None:
    _, head = build_net(CFG)
    head.eval()
    q, c = torch.randn(5, CFG.d_model), torch.randn(9, CFG.d_model)
    cls = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        logits, probs = head(q, c, cls, torch.zeros(9), torch.tensor([2]), torch.tensor([3]))
    assert probs.shape == (5, CFG.max_classes)
    np.testing.assert_allclose(probs.sum(1).numpy(), 1.0, atol=1e-5)
    assert (probs[:, 3:] < 1e-6).all()


@pytest.mark.parametrize(("n", "d"), [(5, 32), (64, 64), (2000, 64), (300, 256)])
def test_ridge_scores_solve_the_ridge_problem(n: int, d: int) -> None:
    from dbt_rfm.nn.icl_head import RIDGE_LAMBDA, ridge_scores

    gen = torch.Generator().manual_seed(n + d)
    c = torch.randn(n, d, generator=gen) * torch.rand(d, generator=gen) * 3 + 1
    q = torch.randn(7, d, generator=gen) * 4  # some features outside the context's range
    y = torch.nn.functional.one_hot(torch.randint(0, 3, (n,), generator=gen), 8).float()
    mean = c.mean(0, dtype=torch.float64)
    std = ((c.double() - mean) ** 2).mean(0).add(1e-6).sqrt()
    z = (c.double() - mean) / std
    zq = torch.clamp((q.double() - mean) / std, z.amin(0), z.amax(0))  # held in the context's range
    share = y.double().mean(0)
    w = torch.linalg.solve(z.T @ z + RIDGE_LAMBDA * n * torch.eye(d, dtype=torch.float64),
                           z.T @ (y.double() - share))  # fmt: skip
    np.testing.assert_allclose(
        ridge_scores(q, c, y).numpy(), (zq @ w + share).numpy(), atol=1e-4, rtol=1e-4
    )


def test_ridge_term_reads_a_linear_signal_from_the_context() -> None:
    """An untrained head votes near chance on a label that is linear in the embedding; its
    in-context ridge term (binary tasks) recovers it, and only where its scale is set."""
    _, head = build_net(CFG, seed=0)
    head.eval()
    gen = torch.Generator().manual_seed(1)
    c, q = (
        torch.randn(400, CFG.d_model, generator=gen),
        torch.randn(200, CFG.d_model, generator=gen),
    )
    direction = torch.randn(CFG.d_model, generator=gen)
    cls, truth = (c @ direction > 0).long(), (q @ direction > 0).numpy()

    def auroc(task: int) -> float:
        with torch.no_grad():
            _, probs = head(q, c, cls, torch.zeros(400), torch.tensor([task]), torch.tensor([2]))
        p = probs[:, 1].numpy()
        return float((p[truth][:, None] > p[~truth][None, :]).mean())

    with torch.no_grad():
        head.ridge_scale.copy_(torch.tensor([2.0, 0.0, 0.0]))
    assert auroc(0) > 0.95  # binary: the ridge term is on
    assert auroc(2) < 0.8  # multiclass: off, the untrained vote alone


def test_config_rejects_unknown_keys_and_bad_heads() -> None:
    with pytest.raises(RfmError, match="did you mean 'd_model'"):
        NetConfig.from_dict({"dmodel": 64})
    with pytest.raises(RfmError, match="multiple of 4"):
        NetConfig(n_heads=6, d_model=96)
    assert NetConfig.from_dict(CFG.to_dict()) == CFG


def test_training_lowers_the_episode_loss_and_checkpoints_round_trip(tmp_path) -> None:
    cells, y = make_cells(160, seed=13)  # label: order amounts above the median
    tokens = tokenize(cells, None, CFG.tokenizer())
    encoder, head = build_net(CFG, seed=0)
    losses = train_icl(encoder, head, tokens, y, "binary",
                       TrainConfig(steps=24, lr=3e-3, context_size=24, query_size=16))  # fmt: skip
    assert len(losses) == 24
    assert np.mean(losses[-8:]) < np.mean(losses[:8])
    path = save_checkpoint(tmp_path / "net.pt", encoder, head, {"task": "binary"})
    enc2, head2, meta = load_checkpoint(path)
    assert meta == {"task": "binary"} and enc2.cfg == CFG
    args = to_tensors(tokens.take(np.arange(8)))
    with torch.no_grad():
        emb = encoder(*args)
        np.testing.assert_allclose(emb.numpy(), enc2(*args).numpy(), atol=1e-6)
        head_args = (emb[:3], emb[3:], torch.tensor([0, 1, 1, 0, 1]), torch.zeros(5),
                     torch.tensor([0]), torch.tensor([2]))  # fmt: skip
        np.testing.assert_allclose(
            head(*head_args)[1].numpy(), head2(*head_args)[1].numpy(), atol=1e-6
        )


def test_episodes_cover_every_task() -> None:
    from dbt_rfm.nn.train import episode_loss

    cells, y = make_cells(24, seed=14)
    tokens = tokenize(cells, None, CFG.tokenizer())
    encoder, head = build_net(CFG)
    rng = np.random.default_rng(0)
    amounts = np.arange(24, dtype=float)
    classes = np.array(["a", "b", "c"])[np.arange(24) % 3]
    lists = [["x"] if v else ["y", "z"] for v in y]
    for task, labels in (("binary", y), ("regression", amounts), ("multiclass", classes),
                         ("ranking", lists)):  # fmt: skip
        loss = episode_loss(encoder, head, tokens, labels, task, rng, 12, 6)
        assert loss is not None and torch.isfinite(loss) and loss.requires_grad
