"""The correctness benchmark's two measurements take any model of the contract: the
interventional reference and the method (explain, faithful mode) on a tiny PIP-Net."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from protoexplain.benchmark.interventional import SampleRef, interventional_importances, render
from protoexplain.data import ImageFolderDataset, eval_transform, generate_synthetic
from protoexplain.explain import explain_dataset
from protoexplain.models import ModelSpec, PIPNet, PIPNetSpec, ProtoPNet

SIZE = 32
DOSES = {"hue": {"hue": 0.3}, "plain": {"texture": 1.0}}


def _pipnet() -> PIPNet:
    torch.manual_seed(4)
    return PIPNet(PIPNetSpec("small_cnn", 4, num_prototypes=5, image_size=SIZE)).eval()


def _protopnet() -> ProtoPNet:
    torch.manual_seed(4)
    return ProtoPNet(ModelSpec("small_cnn", 4, (8, 8, 1, 1), image_size=SIZE)).eval()


def _naive_reference(model, samples: list[SampleRef], doses: dict) -> np.ndarray:
    """(labels, P) Σ Δ·s / Σ s, one image at a time: s at the original's best cell."""
    spec = model.input_spec
    transform = eval_transform(spec.image_size, spec.mean, spec.std)

    def maps(pixels: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return model.similarity_maps(transform(Image.fromarray(pixels))[None])[0].flatten(1)

    weighted = np.zeros((len(doses), model.num_prototypes))
    total = np.zeros(model.num_prototypes)
    for sample in samples:
        original = maps(render(sample))
        cell = original.argmax(dim=1, keepdim=True)
        s = original.gather(1, cell)[:, 0].double().numpy()
        total += s
        for row, setting in enumerate(doses.values()):
            changed = maps(render(sample, setting)).gather(1, cell)[:, 0].double().numpy()
            weighted[row] += (s - changed) * s
    return weighted / total


def test_interventional_reference_of_both_architectures_equals_a_naive_loop() -> None:
    samples = [SampleRef("texture", c, "test", i, 0, SIZE) for c in range(4) for i in range(2)]
    models = {"pipnet": _pipnet(), "protopnet": _protopnet()}
    tables = interventional_importances(models, samples, DOSES, batch_size=3)
    for key, model in models.items():
        table = tables[key]
        got = np.stack([table.loc[table["intervention"] == label]
                        .sort_values("prototype")["importance"].to_numpy() for label in DOSES])
        expected = _naive_reference(model, samples, DOSES)
        assert got.shape == (2, model.num_prototypes)
        # batched float32 forwards differ from one-image ones by ~1e-7 relative; ProtoPNet's log
        # similarities are ~1–10, so Δ moves by ~1e-6 at most, while importances here are 1e-3
        assert np.allclose(got, expected, rtol=1e-4, atol=1e-6), key


@pytest.mark.parametrize("family", ["paper", "perceptual"])
def test_faithful_explanation_of_a_pipnet(tmp_path, family) -> None:
    generate_synthetic(tmp_path / "data", "hue", seed=0, size=SIZE, train_per_class=1,
                       test_per_class=1, progress=False)
    model = _pipnet()
    scores = explain_dataset(model, ImageFolderDataset(tmp_path / "data" / "test"),
                             family=family, modifications=["hue"], strengths={"hue": [0.25]},
                             mode="faithful", bootstrap=0).global_scores
    assert sorted(scores["prototype"]) == list(range(5))
    assert scores.sort_values("prototype")["prototype_class"].tolist() == \
        model.main_class.tolist()
    assert np.isfinite(scores["weighted_delta"]).all()
