"""Known-answer networks: a prototype model built by hand to respond to one factor only must come
out with that factor first, in the interventional reference and in the method."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from protoexplain.benchmark.interventional import SampleRef, interventional_importance
from protoexplain.data import ImageFolderDataset, eval_transform, generate_synthetic
from protoexplain.explain import explain_dataset
from protoexplain.models import InputSpec, SimilarityModelAdapter

SIZE = 64
PER_CLASS = 3
#: Reference doses: each characteristic's intervention at a clear, in-range dose.
DOSES = {
    "hue": {"hue": 0.1},
    "saturation": {"saturation": 0.7},
    "brightness": {"brightness": 0.8},
    "contrast": {"contrast": 0.45},
    "texture": {"texture": 1.0},
    "shape": {"shape->triangle": 1.0},
}


class HueModel(torch.nn.Module):
    """One latent cell whose similarity is exp(4·(⟨m, p⟩ − 1)), m the image's mean unit hue vector
    (opponent colour axes) and p the prototype's hue direction: it sees the hue angle of every
    pixel and nothing else (not chroma, lightness, where a pixel lies, or edges)."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.register_buffer("directions", torch.zeros(count, 2))

    @staticmethod
    def mean_hue(x: torch.Tensor) -> torch.Tensor:
        """(B, 2, 1, 1) mean over pixels of each pixel's unit hue vector (opponent axes)."""
        red, green, blue = x.unbind(1)
        opponent = torch.stack([red - (green + blue) / 2, math.sqrt(3) / 2 * (green - blue)], 1)
        unit = opponent / opponent.norm(dim=1, keepdim=True).clamp_min(1e-3)
        return F.adaptive_avg_pool2d(unit, 1)

    def push(self, images: torch.Tensor) -> None:
        """Set prototype j to the hue direction of image j (as ProtoPNet's push sets a prototype
        to a training patch), so that each prototype sits at the peak of its own image."""
        mean = self.mean_hue(images).flatten(1)
        self.directions.copy_(mean / mean.norm(dim=1, keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean_hue(x)
        return torch.exp(4.0 * (torch.einsum("bchw,pc->bphw", mean, self.directions) - 1.0))


class PatternModel(torch.nn.Module):
    """One prototype, one cell: similarity = the share of the luma's variance above the 3 × 3
    box blur (fine detail over all detail). A ratio of luma deviations, it is blind to hue and
    saturation and to any affine change of luma (brightness, contrast about the mean); it sees
    how much of the image is fine pattern."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        luma = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
        fine = luma - F.avg_pool2d(luma, 3, 1, 1, count_include_pad=False)
        spread = (luma - luma.mean((2, 3), keepdim=True)).square().mean((2, 3), keepdim=True)
        return fine.square().mean((2, 3), keepdim=True) / spread.clamp_min(1e-8)


class OutlineModel(torch.nn.Module):
    """Similarity exp(−4·|log(c / c_p)|) between the compactness c (perimeter² / 4π·area) of the
    image's silhouette and prototype p's. The silhouette is every pixel enclosed by edges: pixels
    whose largest channel step to a neighbour is above a quarter of the image's 99th-percentile
    step, dilated by one pixel, holes filled. Relative steps make it blind to colour changes that
    keep the outline visible (hue, saturation, brightness, contrast) and filling makes it blind
    to the pattern inside; it sees only the outline."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.register_buffer("compactness", torch.ones(count))

    @staticmethod
    def silhouette(x: torch.Tensor) -> torch.Tensor:
        """(B, H, W) float mask of the region enclosed by the image's edges."""
        step_y = (x[:, :, 1:, :-1] - x[:, :, :-1, :-1]).abs().amax(1)
        step_x = (x[:, :, :-1, 1:] - x[:, :, :-1, :-1]).abs().amax(1)
        step = F.pad(torch.maximum(step_x, step_y), (0, 1, 0, 1))
        reference = torch.quantile(step.flatten(1), 0.99, dim=1)[:, None, None]
        edges = (step > 0.25 * reference).cpu().numpy()
        filled = [ndimage.binary_fill_holes(ndimage.binary_dilation(e)) for e in edges]
        return torch.from_numpy(np.stack(filled)).to(x.device, torch.float32)

    @classmethod
    def measure(cls, x: torch.Tensor) -> torch.Tensor:
        """(B,) compactness of each image's silhouette."""
        mask = cls.silhouette(x)
        step_y = mask[:, 1:, :-1] - mask[:, :-1, :-1]
        step_x = mask[:, :-1, 1:] - mask[:, :-1, :-1]
        perimeter = (step_x.square() + step_y.square()).sqrt().sum((1, 2))
        return perimeter.square() / (4 * math.pi * mask.sum((1, 2)).clamp_min(1.0))

    def push(self, images: torch.Tensor) -> None:
        """Set prototype j to the compactness of image j."""
        self.compactness.copy_(self.measure(images))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ratio = self.measure(x)[:, None] / self.compactness[None]
        return torch.exp(-4.0 * ratio.log().abs())[:, :, None, None]


def _data(tmp_path_factory, preset: str):
    root = tmp_path_factory.mktemp(preset) / "data"
    generate_synthetic(root, preset, seed=0, size=SIZE, train_per_class=1,
                       test_per_class=PER_CLASS, progress=False)
    return root


@pytest.fixture(scope="module")
def hue_data(tmp_path_factory):
    return _data(tmp_path_factory, "hue")


@pytest.fixture(scope="module")
def texture_data(tmp_path_factory):
    return _data(tmp_path_factory, "texture")


@pytest.fixture(scope="module")
def shape_data(tmp_path_factory):
    return _data(tmp_path_factory, "shape")


def _samples(preset: str) -> list[SampleRef]:
    return [SampleRef(preset, c, "test", i, 0, SIZE) for c in range(4) for i in range(PER_CLASS)]


def _explainable(module: torch.nn.Module, count: int) -> SimilarityModelAdapter:
    """``module`` seen through the model contract: prototype j is of class j, unnormalised input."""
    return SimilarityModelAdapter(module, InputSpec(SIZE, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
                                  torch.eye(count))


def _pushed(model: HueModel | OutlineModel, data) -> SimilarityModelAdapter:
    """``model`` pushed onto the first test image of each of the four classes."""
    transform = eval_transform(SIZE, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    dataset = ImageFolderDataset(data / "test", transform=transform)
    model.push(torch.stack([dataset[c * PER_CLASS][0] for c in range(4)]))
    return _explainable(model, 4)


def _hue_model(data) -> SimilarityModelAdapter:
    return _pushed(HueModel(4), data)


def test_hue_model_is_hue_first_in_the_reference(hue_data):
    model = _hue_model(hue_data)
    table = interventional_importance(model, _samples("hue"), DOSES)
    top = table.loc[table.groupby("prototype")["importance"].idxmax(), "intervention"]
    assert list(top) == ["hue"] * 4


@pytest.mark.parametrize("family", ["paper", "perceptual", "paper-lightness"])
def test_hue_model_is_hue_first_in_the_method(hue_data, family):
    model = _hue_model(hue_data)
    scores = explain_dataset(model, ImageFolderDataset(hue_data / "test"), family=family,
                             bootstrap=0).global_scores
    top = scores.loc[scores.groupby("prototype")["weighted_delta"].idxmax(), "modification"]
    assert list(top) == ["hue"] * 4


def test_pattern_model_is_texture_first_in_the_reference():
    table = interventional_importance(_explainable(PatternModel(), 1), _samples("texture"), DOSES)
    assert table.loc[table["importance"].idxmax(), "intervention"] == "texture"


@pytest.mark.parametrize("family", [
    pytest.param("paper", marks=pytest.mark.xfail(
        strict=True, reason="measured: the paper's non-local means (h = 4) leaves the pattern; "
        "no modification lowers this model's similarity (docs/correctness.md)")),
    "perceptual",
    pytest.param("paper-lightness", marks=pytest.mark.xfail(
        strict=True, reason="its texture is the paper's non-local means (see the paper case)")),
])
def test_pattern_model_is_texture_first_in_the_method(texture_data, family):
    model = _explainable(PatternModel(), 1)
    scores = explain_dataset(model, ImageFolderDataset(texture_data / "test"), family=family,
                             bootstrap=0).global_scores
    assert scores.loc[scores["weighted_delta"].idxmax(), "modification"] == "texture"


def test_outline_model_is_shape_first_in_the_reference(shape_data):
    # a morph toward a prototype's own outline brings the other classes' images closer to it,
    # so each prototype must be most sensitive to one of two outline changes
    doses = {**DOSES, "shape (ellipse)": {"shape->ellipse": 1.0}}
    table = interventional_importance(_pushed(OutlineModel(4), shape_data), _samples("shape"),
                                      doses)
    top = table.loc[table.groupby("prototype")["importance"].idxmax(), "intervention"]
    assert [label.startswith("shape") for label in top] == [True] * 4, list(top)


@pytest.mark.parametrize("family", ["paper", "perceptual", "paper-lightness"])
def test_outline_model_is_shape_first_in_the_method(shape_data, family):
    model = _pushed(OutlineModel(4), shape_data)
    scores = explain_dataset(model, ImageFolderDataset(shape_data / "test"), family=family,
                             bootstrap=0).global_scores
    top = scores.loc[scores.groupby("prototype")["weighted_delta"].idxmax(), "modification"]
    assert list(top) == ["shape"] * 4
