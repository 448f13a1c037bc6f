"""The settings of one explanation run: the ``[explain]`` section of a pipeline config, the options
of ``protoexplain explain`` (their defaults and help come from here) and the keyword arguments of
:func:`~protoexplain.explain.explain_dataset`.

Zero means "not used" where a count may be left out (``local_top_k``, ``max_images``,
``calibrate``), so that every setting can be written in TOML.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protoexplain.choices import EXPLAIN_MODES, MODIFY_AT
from protoexplain.data.folder import ON_ERROR_POLICIES
from protoexplain.errors import UserError
from protoexplain.explain.modifications import DEFAULT_FAMILY
from protoexplain.tomlconfig import setting


@dataclass
class ExplainConfig:
    """Settings of one explanation run (see ``protoexplain explain --help``)."""

    modifications: list[str] = field(
        default_factory=list, metadata={"doc": "modifications to use (empty: all of the family)"})
    strengths: dict[str, list[float]] = field(default_factory=dict, metadata={
        "doc": "strengths per modification, e.g. hue = [0.05, 0.1, 0.2] for a dose-response "
        "(empty: each modification's default)"})
    family: str = setting(DEFAULT_FAMILY, "modification family: paper (Nauta et al.) | "
                          "perceptual (docs/faithfulness.md) | paper-lightness (the paper's "
                          "with a contrast that keeps colour, docs/correctness.md)")
    mode: str = setting("faithful", "faithful: modifications at each image's native resolution "
                        "in DataLoader workers, exactly as the original | fast: batched on the "
                        "device after resizing")
    modify_at: str = setting("native", "faithful mode: native (modify, then resize: the paper's "
                             "order) | model (resize to the model's size first, so that "
                             "size-dependent modifications act alike on every image)")
    batch_size: int = setting(32, "images per batch; each brings 1 + K forward passes")
    workers: int = setting(0, "DataLoader worker processes")
    device: str = setting("auto", "auto | cpu | cuda | cuda:N")
    local_top_k: int = setting(0, "keep only each image's K most similar prototypes in the local "
                               "table (0: all; global scores always use all)")
    max_images: int = setting(0, "explain only N images spread evenly over the folder (0: all)")
    calibrate: float = setting(0.0, "choose each modification's strength so that its mean "
                               "CIEDE2000 change on a sample of the images equals this ΔE "
                               "(e.g. 5; 0: off); the strengths chosen go into explain.json")
    calibration_images: int = setting(32, "images sampled for calibrate")
    bootstrap: int = setting(200, "Poisson bootstrap replicates for the 95% intervals")
    seed: int = setting(0, "seed of the bootstrap and of the calibration sample")
    chunk_images: int = setting(512, "images per resumable chunk")
    on_error: str = setting("error", "unreadable images of the folder: error (stop, naming the "
                            "file) | skip (and count)")
    progress: bool = setting(True, "show progress bars")

    def check(self) -> None:
        """Raise :class:`UserError` for values that cannot work."""
        for name, allowed in (("mode", EXPLAIN_MODES), ("modify_at", MODIFY_AT),
                              ("on_error", ON_ERROR_POLICIES)):
            if getattr(self, name) not in allowed:
                raise UserError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")
        for names, minimum in ((("batch_size", "chunk_images", "calibration_images"), 1),
                               (("workers", "bootstrap", "local_top_k", "max_images"), 0)):
            for name in names:
                if getattr(self, name) < minimum:
                    raise UserError(f"{name} must be at least {minimum}, got "
                                    f"{getattr(self, name)}")
        if self.calibrate < 0:
            raise UserError(f"calibrate must be a positive ΔE (0: off), got {self.calibrate}")
        if self.calibrate and self.strengths:
            raise UserError("give either strengths or calibrate, not both")
