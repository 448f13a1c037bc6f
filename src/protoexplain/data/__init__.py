"""Data: robust RGB loading, ImageFolder and image-list datasets, loaders, transforms, CUB-200-2011
preparation, the original offline augmentation and a synthetic data set with known factors."""

from protoexplain.data.augment import augment_folder
from protoexplain.data.augmentation import OriginalAugmentation
from protoexplain.data.cub import prepare_cub
from protoexplain.data.fingerprint import fingerprint_folder
from protoexplain.data.folder import ImageFolderDataset
from protoexplain.data.imagelist import ImageListDataset
from protoexplain.data.images import IMAGE_EXTENSIONS, load_rgb, save_image
from protoexplain.data.loader import Batch, SafeLoader, make_loader
from protoexplain.data.synth import generate_synthetic, list_presets
from protoexplain.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    eval_transform,
    train_transform,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_EXTENSIONS",
    "Batch",
    "ImageFolderDataset",
    "ImageListDataset",
    "OriginalAugmentation",
    "SafeLoader",
    "augment_folder",
    "eval_transform",
    "fingerprint_folder",
    "generate_synthetic",
    "list_presets",
    "load_rgb",
    "make_loader",
    "prepare_cub",
    "save_image",
    "train_transform",
]
