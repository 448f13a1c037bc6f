"""The interventional reference: how much each prototype's similarity drops under ``do(f)``.

For every prototype p and intervention f (a re-rendering of the same synthetic image with one
generating factor changed, :mod:`protoexplain.data.interventions`), with the method's own
weighting (:mod:`protoexplain.explain.scores`): I_int[p, f] = Σ_x Δ·s / Σ_x s, where s is p's
similarity at x's best cell and Δ = s(x) − s(do(f) x) at that same cell. Images are rendered and
scored in batches on the model's device; only running sums are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np
import pandas as pd
import torch
from PIL import Image

from protoexplain.data.interventions import get_intervention, rerender
from protoexplain.data.transforms import eval_transform
from protoexplain.explain.scores import ScoreSums, score_batch
from protoexplain.models.protocol import PrototypeModel
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


def render(sample: SampleRef, interventions: dict[str, float] | None = None) -> np.ndarray:
    """The (H, W, 3) uint8 image of ``sample``, re-rendered with ``interventions`` applied."""
    return rerender(sample.preset, sample.class_index, sample.split, sample.index, sample.seed,
                    sample.size, sample.background, interventions)[1].image


@torch.inference_mode()
def interventional_importances(
    models: Mapping[str, PrototypeModel], samples: Sequence[SampleRef], doses: Doses, *,
    device: torch.device | str = "cpu", batch_size: int = 32, progress: bool = False,
) -> dict[str, pd.DataFrame]:
    """:func:`interventional_importance` of several models on the same renderings (each image
    and its re-renderings are drawn once and scored by every model), keyed like ``models``."""
    for setting in doses.values():
        for name in setting:
            get_intervention(name)
    settings = [{}, *doses.values()]
    ready = {key: model.to(device).eval() for key, model in models.items()}
    transforms = {key: eval_transform(m.input_spec.image_size, m.input_spec.mean, m.input_spec.std)
                  for key, m in ready.items()}
    sums = {key: ScoreSums.zeros(len(doses), int(m.num_prototypes), 0) for key, m in ready.items()}
    bar = progress_bar(total=len(samples), unit="img", desc="interventions", disable=not progress)
    for batch in _batches(samples, batch_size):
        images = [[Image.fromarray(render(sample, setting)) for setting in settings]
                  for sample in batch]
        for key, model in ready.items():
            versions = torch.stack([torch.stack([transforms[key](im) for im in versions])
                                    for versions in images])
            similarity, delta = score_batch(model, versions.to(device))
            sums[key].add(similarity.double().cpu().numpy(), delta.double().cpu().numpy(),
                          np.zeros((len(batch), 0)))
        bar.update(len(batch))
    bar.close()
    return {key: _table(total.weighted_delta(), list(doses)) for key, total in sums.items()}


def _table(importance: np.ndarray, labels: list[str]) -> pd.DataFrame:
    prototypes = importance.shape[1]
    return pd.DataFrame({
        "prototype": np.tile(np.arange(prototypes), len(labels)),
        "intervention": np.repeat(labels, prototypes),
        "importance": importance.reshape(-1),
    })


def interventional_importance(
    model: PrototypeModel, samples: Sequence[SampleRef], doses: Doses, *,
    device: torch.device | str = "cpu", batch_size: int = 32, progress: bool = False,
) -> pd.DataFrame:
    """I_int for every prototype and label of ``doses``: columns ``prototype, intervention,
    importance`` (the method's weighting, see the module docstring), one row per pair."""
    return interventional_importances(
        {"model": model}, samples, doses, device=device, batch_size=batch_size, progress=progress
    )["model"]
