"""Push: ours against the original algorithm on the same model and images, same prototypes.

The original (ProtoPNet ``push.py``, as SPEC describes it) runs one forward pass per batch and
then loops over the prototypes in Python: for each, the distance maps of the batch's images of
its class, their minimum, and, when it beats the best so far, the latent patch, the upsampled
(bicubic) similarity map, its 95th-percentile box and the prototype's images, written with
matplotlib at that moment (again whenever a later batch improves the prototype). Ours is
``push_prototypes`` (one vectorised search) plus ``save_push_artifacts`` (threads), with and
without images. The floor is the data loading and forward passes alone. The model is resnet18
@224 with random weights (no download); the images are smooth random JPEGs (blobs, compressible
like photographs). Prints a table and writes JSON (default ``benchmarks/results/push.json``).
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import tempfile
import time
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import torch
from PIL import Image

from protoexplain.data import ImageFolderDataset, eval_transform, make_loader
from protoexplain.fileio import write_json
from protoexplain.models import ModelSpec, ProtoPNet
from protoexplain.training import push_prototypes, save_push_artifacts

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def make_images(root: Path, classes: int, per_class: int, seed: int) -> None:
    """Smooth random RGB JPEGs, ``root/cNN/i.jpg``, 256×300 px (noise upsampled 8×)."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / f"c{c:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            coarse = rng.integers(0, 256, (32, 38, 3), dtype=np.uint8)
            pixels = cv2.resize(coarse, (300, 256), interpolation=cv2.INTER_CUBIC)
            Image.fromarray(pixels).save(folder / f"{i}.jpg")


@torch.no_grad()
def original_push(model: ProtoPNet, dataset: ImageFolderDataset, batch_size: int, out: Path,
                  images: bool) -> tuple[np.ndarray, np.ndarray]:
    """The original's per-prototype loop; returns (image index, flat cell) per prototype."""
    model.eval()
    size = model.spec.image_size
    field = model.receptive_field()
    mean, std = np.array(model.spec.mean), np.array(model.spec.std)
    classes = model.prototype_class.numpy()
    num, depth, ph, pw = model.prototype_vectors.shape
    best = np.full(num, np.inf)
    best_image, best_cell = np.full(num, -1), np.full(num, -1)
    patches = np.zeros((num, depth, ph, pw), dtype=np.float32)
    loader = make_loader(dataset, batch_size=batch_size, shuffle=False, workers=0)
    start = 0
    for batch in loader:
        inputs, labels = batch[0], batch[1].numpy()
        latent = model.latent(inputs)
        dist = model.latent_distances(latent).numpy()
        latent = latent.numpy()
        by_class: dict[int, list[int]] = {}
        for i, label in enumerate(labels):
            by_class.setdefault(int(label), []).append(i)
        for j in range(num):
            members = by_class.get(int(classes[j]))
            if not members:
                continue
            maps = dist[members][:, j]
            low = np.amin(maps)
            if low >= best[j]:
                continue
            k, h, w = np.unravel_index(np.argmin(maps, axis=None), maps.shape)
            image = members[k]
            best[j], best_image[j], best_cell[j] = low, start + image, h * maps.shape[2] + w
            patches[j] = latent[image, :, h:h + ph, w:w + pw]
            if images:
                picture = inputs[image].numpy().transpose(1, 2, 0) * std + mean
                picture = np.clip(picture, 0, 1)
                similarity = model.distance_to_similarity(torch.from_numpy(dist[image, j])).numpy()
                up = cv2.resize(similarity, (size, size), interpolation=cv2.INTER_CUBIC)
                mask = up >= np.percentile(up, 95)
                rows, cols = np.nonzero(mask)
                h0, h1, w0, w1 = field.box(int(h), int(w), size)
                heat = cv2.applyColorMap(
                    np.uint8(255 * (up - up.min()) / max(up.max() - up.min(), 1e-12)),
                    cv2.COLORMAP_JET)
                overlay = 0.5 * picture + 0.3 * (heat[..., ::-1] / 255.0)
                plt.imsave(out / f"p{j}_original.png", picture)
                plt.imsave(out / f"p{j}_self_act.png", np.clip(overlay, 0, 1))
                plt.imsave(out / f"p{j}_rf.png", picture[h0:h1, w0:w1])
                plt.imsave(out / f"p{j}_ha.png",
                           picture[rows.min():rows.max() + 1, cols.min():cols.max() + 1])
        start += len(labels)
    model.prototype_vectors.data.copy_(torch.from_numpy(patches))
    return best_image, best_cell


@torch.no_grad()
def forward_floor(model: ProtoPNet, dataset: ImageFolderDataset, batch_size: int) -> None:
    """The work no push can skip: load every image and run the trunk on it once."""
    for batch in make_loader(dataset, batch_size=batch_size, shuffle=False, workers=0):
        model.latent(batch[0])


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(function, *args, **kwargs) -> tuple[object, tuple[float, float]]:
    """``function``'s value and its (wall, CPU) seconds."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    value = function(*args, **kwargs)
    return value, (time.perf_counter() - wall, cpu_seconds() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prototypes", type=int, default=400)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--images-per-class", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=75)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/push.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    spec = ModelSpec("resnet18", args.classes, (args.prototypes, 128, 1, 1),
                     class_names=[f"c{c:03d}" for c in range(args.classes)])
    model = ProtoPNet(spec).eval()
    rows: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_images(root / "data", args.classes, args.images_per_class, seed=0)
        dataset = ImageFolderDataset(root / "data", eval_transform(224, spec.mean, spec.std),
                                     classes=spec.class_names)
        model.latent(dataset[0][0].unsqueeze(0))  # warm-up: the first pass sets up kernels
        _, rows["floor: load + forward"] = timed(forward_floor, model, dataset, args.batch_size)
        original = copy.deepcopy(model)
        for images in (False, True):
            folder = root / f"original-{images}"
            folder.mkdir()
            pushed = original if not images else copy.deepcopy(model)
            (index, cell), rows[f"original, {_with(images)} images"] = timed(
                original_push, pushed, dataset, args.batch_size, folder, images)
        for images in (False, True):
            ours = copy.deepcopy(model)
            result, search = timed(push_prototypes, ours, dataset, batch_size=args.batch_size)
            _, artefacts = timed(save_push_artifacts, result, ours, dataset,
                                  root / f"ours-{images}", images=images)
            rows[f"ours, {_with(images)} images: search"] = search
            rows[f"ours, {_with(images)} images: artefacts"] = artefacts
            rows[f"ours, {_with(images)} images"] = (search[0] + artefacts[0],
                                                    search[1] + artefacts[1])
            width = ours.receptive_field().n
            cells = (result.cell_h * width + result.cell_w).numpy()
            assert np.array_equal(result.image_index.numpy(), index), "different source images"
            assert np.array_equal(cells, cell), "different cells"
            assert torch.allclose(ours.prototype_vectors, original.prototype_vectors, atol=1e-6)
    original_with = rows["original, with images"][0]
    speed_ups = {
        "ours with images vs original with images": original_with / rows["ours, with images"][0],
        "ours no images vs original with images": original_with / rows["ours, no images"][0],
        "ours no images vs original no images":
            rows["original, no images"][0] / rows["ours, no images"][0],
    }
    floor = rows["floor: load + forward"][0]
    print(f"push: {args.prototypes} prototypes, {args.classes * args.images_per_class} images, "
          f"resnet18 @224, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
          "same prototypes asserted")
    print(f"{'run':<36}{'wall s':>9}{'cpu s':>9}{'× floor':>9}")
    for name, (wall, cpu) in rows.items():
        print(f"{name:<36}{wall:>9.2f}{cpu:>9.2f}{wall / floor:>9.2f}")
    for name, ratio in speed_ups.items():
        print(f"speed-up, {name}: {ratio:.2f}×")
    write_json(args.out, {
        "prototypes": args.prototypes, "images": args.classes * args.images_per_class,
        "backbone": "resnet18", "image_size": 224, "cpus": os.cpu_count(),
        "load_average": os.getloadavg(), "same_prototypes": True,
        "runs": {name: {"wall_s": wall, "cpu_s": cpu} for name, (wall, cpu) in rows.items()},
        "speed_ups_wall": speed_ups,
    })
    print(f"wrote {args.out}")


def _with(images: bool) -> str:
    return "with" if images else "no"


if __name__ == "__main__":
    main()
