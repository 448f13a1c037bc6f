"""Each loss term against a naive per-sample computation."""

import torch
import torch.nn.functional as F

from protoexplain.training.losses import (
    LossWeights,
    cluster_cost,
    protopnet_loss,
    separation_cost,
    wrong_class_l1,
)


def _setup(seed=0):
    generator = torch.Generator().manual_seed(seed)
    min_distances = torch.rand(6, 8, generator=generator) * 5
    labels = torch.tensor([0, 1, 2, 3, 1, 0])
    prototype_class = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    weight = torch.randn(4, 8, generator=generator)
    return min_distances, labels, prototype_class, weight


def test_cluster_and_separation_equal_naive_minima():
    d, labels, classes, _ = _setup()
    own, other = [], []
    for i in range(d.shape[0]):
        own.append(min(float(d[i, j]) for j in range(8) if classes[j] == labels[i]))
        other.append(min(float(d[i, j]) for j in range(8) if classes[j] != labels[i]))
    assert torch.isclose(cluster_cost(d, labels, classes), torch.tensor(sum(own) / 6))
    assert torch.isclose(separation_cost(d, labels, classes), torch.tensor(sum(other) / 6))


def test_l1_counts_only_wrong_class_connections():
    _, _, classes, weight = _setup()
    naive = sum(
        abs(float(weight[c, j])) for c in range(4) for j in range(8) if classes[j] != c
    )
    assert abs(float(wrong_class_l1(weight, classes)) - naive) < 1e-5


def test_total_loss_combines_terms_with_spec_coefficients():
    d, labels, classes, weight = _setup(1)
    logits = torch.randn(6, 4)
    total, terms = protopnet_loss(logits, d, labels, classes, weight, LossWeights())
    expected = (
        F.cross_entropy(logits, labels)
        + 0.8 * cluster_cost(d, labels, classes)
        - 0.08 * separation_cost(d, labels, classes)
        + 1e-4 * wrong_class_l1(weight, classes)
    )
    assert torch.isclose(total, expected)
    assert set(terms) == {"ce", "cluster", "separation", "l1"}
