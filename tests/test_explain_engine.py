"""The engine against a naive one-image-at-a-time implementation written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy import stats

from protoexplain.data import ImageFolderDataset, eval_transform
from protoexplain.errors import UserError
from protoexplain.explain import explain_dataset, explain_image, run_explain
from protoexplain.explain.engine import ExplainConfig
from protoexplain.explain.modifications import resolve_settings
from protoexplain.models import ModelSpec, ProtoPNet

STRENGTHS = {"hue": [0.1, 0.3]}


def make_folder(root: Path, per_class: int = 5) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(["crow", "gull"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            size = (36 + 3 * i, 40 + 2 * c)  # native sizes differ from the model input
            blocks = np.kron(rng.integers(0, 256, (6, 6, 3)), np.ones((8, 8, 1)))
            blocks = blocks[: size[0], : size[1]]
            noisy = np.clip(blocks + rng.normal(0, 8, blocks.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(root / name / f"img{i}.png")
    return root


def make_model(prototypes: int = 4, pruned: bool = False) -> ProtoPNet:
    torch.manual_seed(0)
    model = ProtoPNet(ModelSpec("small_cnn", 2, (prototypes, 16, 1, 1), image_size=32))
    if pruned:  # fewer prototypes, classes in no particular order
        model.select_prototypes([3, 0, 5])
    return model.eval()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("data"))


def naive_scores(model, dataset) -> pd.DataFrame:
    """One image at a time: original forward, modified forward, read at the original's cell."""
    settings = resolve_settings(None, STRENGTHS)
    spec = model.spec
    transform = eval_transform(spec.image_size, spec.mean, spec.std)
    rows = []
    with torch.no_grad():
        for index, (path, label) in enumerate(dataset.samples):
            image = dataset.load_image(index)
            x = transform(image)[None]
            cell = model.distance_maps(x)[0].flatten(1).argmin(dim=1)  # (P,)
            sim = model.similarity_maps(x)[0].flatten(1)
            modified = [
                model.similarity_maps(transform(setting.apply(image))[None])[0].flatten(1)
                for setting in settings
            ]
            for p in range(model.num_prototypes):
                s = sim[p, cell[p]].item()
                for setting, sim_m in zip(settings, modified, strict=True):
                    s_m = sim_m[p, cell[p]].item()
                    rows.append({
                        "image": Path(path).relative_to(dataset.root).as_posix(),
                        "class": dataset.classes[label], "prototype": p,
                        "prototype_class": int(model.prototype_class[p]),
                        "modification": setting.name, "strength": setting.strength,
                        "orig_similarity": s, "delta": s - s_m,
                    })  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def reference(folder) -> pd.DataFrame:
    return naive_scores(make_model(), ImageFolderDataset(folder))


KEY = ["image", "prototype", "modification", "strength"]
DELTA_ATOL = 1e-5  # engine vs naive deltas: float32 forward passes in other batch shapes


def p_value_tolerance(deltas: np.ndarray) -> float:
    """How far a one-sample t-test's p-value can move when every Δ moves by up to DELTA_ATOL.

    t = mean / (sd / √n): a shift ε of every value moves the mean and the sd by at most ε, so
    |dt| ≤ |t|·ε·(1/|mean| + 1/sd), and |dp| ≤ 2·pdf_t(t)·|dt| (p = 2·sf(|t|)); doubled for the
    second-order terms.
    """
    n, mean, sd = len(deltas), abs(deltas.mean()), deltas.std(ddof=1)
    t = mean / (sd / np.sqrt(n))
    dt = t * DELTA_ATOL * (1 / mean + 1 / sd)
    return 2 * 2 * stats.t.pdf(max(t - dt, 0.0), df=n - 1) * dt + 1e-12


def _local(result) -> pd.DataFrame:
    local = result.local_scores()
    for column in ("image", "class", "modification"):
        local[column] = local[column].astype(str)
    return local


@pytest.mark.parametrize(("batch_size", "workers"), [(1, 0), (3, 0), (4, 2), (16, 0)])
def test_deltas_match_naive_implementation(folder, reference, tmp_path, batch_size, workers):
    result = explain_dataset(
        make_model(), ImageFolderDataset(folder), strengths=STRENGTHS, out_dir=tmp_path,
        batch_size=batch_size, workers=workers, device="cpu", chunk_images=4, bootstrap=20,
    )  # fmt: skip
    local = _local(result)
    assert len(local) == len(reference)
    merged = reference.merge(local, on=KEY, suffixes=("", "_engine"), validate="1:1")
    assert (merged["class"] == merged["class_engine"]).all()
    assert (merged["prototype_class"] == merged["prototype_class_engine"]).all()
    np.testing.assert_allclose(
        merged.orig_similarity_engine, merged.orig_similarity, atol=DELTA_ATOL
    )
    np.testing.assert_allclose(merged.delta_engine, merged.delta, atol=DELTA_ATOL)
    np.testing.assert_allclose(
        merged.relative_delta, merged.delta_engine / merged.orig_similarity_engine, rtol=1e-5
    )


def test_global_scores_equal_hand_computation(folder, reference, tmp_path):
    result = explain_dataset(make_model(), ImageFolderDataset(folder), strengths=STRENGTHS,
                             out_dir=tmp_path, batch_size=4, device="cpu")  # fmt: skip
    table = result.global_scores
    local = _local(result)
    assert set(table.columns) >= {"prototype", "prototype_class", "modification", "strength",
                                  "weighted_delta", "n_images", "ci_low", "ci_high"}  # fmt: skip
    assert len(table) == 4 * 7 and (table.n_images == 10).all()
    for (p, name, strength), group in reference.groupby(["prototype", "modification", "strength"]):
        row = table[(table.prototype == p) & (table.modification == name)
                    & np.isclose(table.strength, strength)].iloc[0]  # fmt: skip
        s, d = group.orig_similarity.to_numpy(), group.delta.to_numpy()
        assert row.weighted_delta == pytest.approx((d * s).sum() / s.sum(), abs=1e-6)
        assert row.ci_low <= row.weighted_delta <= row.ci_high
        assert row.mean_delta == pytest.approx(d.mean(), abs=DELTA_ATOL)
        assert row.p_value == pytest.approx(
            stats.ttest_1samp(d, 0.0).pvalue, abs=p_value_tolerance(d)
        )
        own = local[(local.prototype == p) & (local.modification == name)
                    & np.isclose(local.strength, strength)].delta.to_numpy(np.float64)  # fmt: skip
        assert row.p_value == pytest.approx(stats.ttest_1samp(own, 0.0).pvalue, rel=1e-9)
    on_disk = pd.read_csv(tmp_path / "global_scores.csv")
    np.testing.assert_allclose(on_disk.weighted_delta, table.weighted_delta, rtol=1e-7)
    for name in ("stats.json", "summary.txt", "explain.json", "local_scores.parquet"):
        assert (tmp_path / name).is_file()
    assert not (tmp_path / "parts").exists()


def test_top_k_keeps_most_similar_and_global_unchanged(folder, tmp_path):
    dataset = ImageFolderDataset(folder)
    full = explain_dataset(make_model(), dataset, out_dir=tmp_path / "full", device="cpu")
    top = explain_dataset(make_model(), dataset, out_dir=tmp_path / "top", device="cpu",
                          local_top_k=2)  # fmt: skip
    pd.testing.assert_frame_equal(full.global_scores, top.global_scores)
    local_full, local_top = _local(full), _local(top)
    assert len(local_top) == len(dataset) * 2 * 6
    for image, group in local_full.groupby("image"):
        best = group.drop_duplicates("prototype").nlargest(2, "orig_similarity").prototype
        assert set(local_top[local_top.image == image].prototype) == set(best)


def test_pruned_model_and_sharded_runs_merge_exactly(folder, tmp_path):
    dataset = ImageFolderDataset(folder)
    model = make_model(prototypes=6, pruned=True)
    assert model.prototype_class.tolist() == [1, 0, 1]
    config = ExplainConfig(batch_size=2, chunk_images=2, device="cpu", progress=False)
    single = run_explain(model, dataset, tmp_path / "single", config, rank=0, world_size=1)
    assert run_explain(model, dataset, tmp_path / "shard", config, rank=1, world_size=2) is None
    sharded = run_explain(model, dataset, tmp_path / "shard", config, rank=0, world_size=2)
    pd.testing.assert_frame_equal(single.global_scores, sharded.global_scores, rtol=1e-12)
    pd.testing.assert_frame_equal(single.local_scores(), sharded.local_scores())
    assert sorted(single.global_scores.prototype_class.unique()) == [0, 1]


def test_fast_mode_and_explain_image(folder, tmp_path):
    dataset = ImageFolderDataset(folder)
    model = make_model()
    fast = explain_dataset(model, dataset, out_dir=tmp_path / "fast", mode="fast", device="cpu",
                           batch_size=16)  # fmt: skip
    assert np.isfinite(fast.global_scores.weighted_delta).all()
    faithful = explain_dataset(model, dataset, out_dir=tmp_path / "faith", device="cpu")
    one = explain_image(model, dataset.load_image(3), prototype=2)
    assert list(one.prototype.unique()) == [2] and len(one) == 6
    local = _local(faithful)
    rows = local[(local.image == "crow/img3.png") & (local.prototype == 2)]
    merged = one.merge(rows, on=["modification", "strength"], suffixes=("", "_engine"))
    np.testing.assert_allclose(merged.delta, merged.delta_engine, atol=1e-5)


def test_compare_with_other_split(folder, tmp_path):
    dataset = ImageFolderDataset(folder)
    first = explain_dataset(make_model(), dataset, out_dir=tmp_path / "a", device="cpu")
    second = run_explain(make_model(), dataset, tmp_path / "b", ExplainConfig(device="cpu",
                         progress=False, max_images=6), compare_with=tmp_path / "a")  # fmt: skip
    tests = second.stats["comparison"]["tests"]
    assert {row["modification"] for row in tests} == set(first.global_scores.modification)
    assert all(0 <= row["welch_p"] <= 1 for row in tests if row["welch_p"] is not None)
    assert second.n_images == 6


def test_modify_at_model_resolution_equals_explaining_resized_images(folder, tmp_path):
    """``modify_at = "model"`` modifies the image resized to the model's input: the same as
    explaining copies resized beforehand (by PIL here) at their native size."""
    resized_root = tmp_path / "resized"
    dataset = ImageFolderDataset(folder)
    for path, _ in dataset.samples:
        target = resized_root / Path(path).relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(path).convert("RGB").resize((32, 32), Image.BILINEAR).save(target)
    model = make_model()
    strengths = {"shape": [4.0], "hue": [0.1]}

    def explain(data, out, modify_at):
        return explain_dataset(model, ImageFolderDataset(data), out_dir=tmp_path / out,
                               strengths=strengths, modifications=["shape", "hue"],
                               modify_at=modify_at, device="cpu", bootstrap=0).global_scores

    at_model = explain(folder, "model", "model")
    pre_resized = explain(resized_root, "pre", "native")
    np.testing.assert_allclose(at_model.weighted_delta, pre_resized.weighted_delta, atol=1e-5)
    native = explain(folder, "native", "native").set_index("modification")
    at_model = at_model.set_index("modification")
    assert not np.allclose(native.loc["shape", "weighted_delta"],
                           at_model.loc["shape", "weighted_delta"])  # the warp is size-dependent
    one = explain_image(model, dataset.load_image(3), prototype=1, modifications=["shape"],
                        strengths={"shape": [4.0]}, modify_at="model")
    again = explain_image(model, Image.open(resized_root / "crow" / "img3.png"), prototype=1,
                          modifications=["shape"], strengths={"shape": [4.0]})
    np.testing.assert_allclose(one.delta, again.delta, atol=1e-5)
    with pytest.raises(UserError):
        ExplainConfig(modify_at="display").check()
