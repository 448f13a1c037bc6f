"""Model-input transforms: plain resize to a square, tensor, normalisation (method §1)."""

from __future__ import annotations

from collections.abc import Sequence

from torchvision import transforms as T

from protoexplain.data.augmentation import OriginalAugmentation

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def eval_transform(
    image_size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> T.Compose:
    """Resize to (size, size) without keeping the aspect ratio, ToTensor, Normalize."""
    return T.Compose(
        [T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(list(mean), list(std))]
    )


def train_transform(
    image_size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    augment: bool = True,
) -> T.Compose:
    """The evaluation transform, preceded (``augment``) by the online original augmentation.

    The augmentation runs at the image's native resolution, like the original offline copies,
    then the image is resized.
    """
    steps = [OriginalAugmentation()] if augment else []
    steps += [T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(list(mean), list(std))]
    return T.Compose(steps)
