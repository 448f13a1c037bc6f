"""Values of the settings that take one of a fixed set of words.

One home for them, free of heavy imports, so that the command line (``choices=``), the pipeline
config's checks and the modules that act on them all agree.
"""

#: Explanation modes: modifications in DataLoader workers at native size, or batched on the device.
EXPLAIN_MODES = ("faithful", "fast")
#: Where faithful-mode modifications run: on the image as loaded, or resized to the model's input.
MODIFY_AT = ("native", "model")
#: Backgrounds of the synthetic images (see :mod:`protoexplain.data.synth_factors`).
BACKGROUNDS = ("plain", "like-parts")
