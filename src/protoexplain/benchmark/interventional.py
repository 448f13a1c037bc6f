"""The interventional reference: how much each prototype's similarity drops under ``do(f)``.

For every prototype p and intervention f (a re-rendering of the same synthetic image with one
generating factor changed, :mod:`protoexplain.data.interventions`), with the method's own
weighting (:mod:`protoexplain.explain.scores`): I_int[p, f] = Σ_x Δ·s / Σ_x s, where s is p's
similarity at x's best cell and Δ = s(x) − s(do(f) x) at that same cell. Images are rendered and
scored in batches on the model's device; only running sums are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np
import pandas as pd
import torch
from PIL import Image

from protoexplain.data.interventions import get_intervention, rerender
from protoexplain.data.transforms import eval_transform
from protoexplain.explain.scores import ScoreSums, score_batch
from protoexplain.progress import progress_bar


@dataclass(frozen=True)
class SampleRef:
    """Where a generated image comes from: enough to draw it again from its seed."""

    preset: str
    class_index: int
    split: str
    index: int
    seed: int
    size: int
    background: str = "plain"


#: What the reference calls each intervention: label → {intervention name: dose}.
Doses = dict[str, dict[str, float]]


def _batches(items: Sequence, size: int) -> Iterable[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _versions(sample: SampleRef, doses: Doses, transform) -> torch.Tensor:
    """(1 + K, 3, H, W): the image and its K intervened re-renderings, normalised."""
    settings = [{}, *doses.values()]
    images = [
        rerender(sample.preset, sample.class_index, sample.split, sample.index, sample.seed,
                 sample.size, sample.background, setting)[1].image
        for setting in settings
    ]
    return torch.stack([transform(Image.fromarray(image)) for image in images])


@torch.inference_mode()
def interventional_importance(
    model: torch.nn.Module, samples: Sequence[SampleRef], doses: Doses, *,
    device: torch.device | str = "cpu", batch_size: int = 32, progress: bool = False,
) -> pd.DataFrame:
    """I_int for every prototype and label of ``doses``: columns ``prototype, intervention,
    importance`` (the method's weighting, see the module docstring), one row per pair."""
    for setting in doses.values():
        for name in setting:
            get_intervention(name)
    spec = model.spec
    transform = eval_transform(spec.image_size, spec.mean, spec.std)
    model = model.to(device).eval()
    sums = ScoreSums.zeros(len(doses), int(model.num_prototypes), 0)
    bar = progress_bar(total=len(samples), unit="img", desc="interventions", disable=not progress)
    for batch in _batches(samples, batch_size):
        versions = torch.stack([_versions(sample, doses, transform) for sample in batch])
        similarity, delta = score_batch(model, versions.to(device))
        sums.add(similarity.double().cpu().numpy(), delta.double().cpu().numpy(),
                 np.zeros((len(batch), 0)))
        bar.update(len(batch))
    bar.close()
    importance = sums.weighted_delta()  # (K, P)
    prototypes = importance.shape[1]
    return pd.DataFrame({
        "prototype": np.tile(np.arange(prototypes), len(doses)),
        "intervention": np.repeat(list(doses), prototypes),
        "importance": importance.reshape(-1),
    })
