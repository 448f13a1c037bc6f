"""protoexplain: train ProtoPNet models and explain what their prototypes rely on."""

__version__ = "0.1.0"
