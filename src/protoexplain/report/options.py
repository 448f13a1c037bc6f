"""The settings of the report step: ``protoexplain report``'s options (their defaults and help come
from here) and the pipeline's ``[report]`` section."""

from __future__ import annotations

from dataclasses import dataclass, field

from protoexplain.errors import UserError
from protoexplain.tomlconfig import setting

#: The formats the overview's figures may be written in.
FIGURE_FORMATS = ("png", "svg")


@dataclass
class ReportOptions:
    """How much to render and how."""

    max_prototype_pages: int = setting(
        0, "write pages (and figures) for at most N prototypes, those with the largest dominant "
        "score first (0: every prototype); the table always lists all")
    local_images: int = setting(8, "sample images with local explanation panels (0: none)")
    local_top_k: int = setting(3, "most similar prototypes shown per sample image")
    nearest_k: int = setting(5, "nearest training patches shown per prototype")
    misclassified: int = setting(100, "misclassified test images listed, most confident first "
                                 "(needs evaluate's predictions.csv)")
    formats: list[str] = field(default_factory=lambda: list(FIGURE_FORMATS), metadata={
        "doc": "formats of the overview's figures: png, svg (prototype pages draw inline SVG)"})
    workers: int = setting(0, "threads making the prototypes' image files (0: all in this "
                           "thread)")
    latent_ratio: float = setting(0.1, "redundant pairs: squared latent distance at most this × "
                                  "the median over all pairs")
    explanation_cosine: float = setting(0.9, "redundant pairs also need explanation vectors "
                                        "with at least this cosine similarity")
    seed: int = setting(0, "seed of the image sample")
    device: str = setting("auto", "device for locating patches of sample images: auto | cpu | "
                          "cuda | cuda:N")

    def check(self) -> None:
        """Raise :class:`UserError` for values that cannot work."""
        if not self.formats or set(self.formats) - set(FIGURE_FORMATS):
            raise UserError(f"formats {self.formats!r}: use png, svg or both")
        for name in ("max_prototype_pages", "local_images", "misclassified", "workers"):
            if getattr(self, name) < 0:
                raise UserError(f"{name.replace('_', '-')} must be 0 or more")
        if self.local_top_k < 1 or self.nearest_k < 1:
            raise UserError("local-top-k and nearest-k must be at least 1")
