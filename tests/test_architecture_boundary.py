"""Outside ``models/`` only ProtoPNet-only behaviour may name the ProtoPNet class; everything else
is written against the model contract (issue 17)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "protoexplain"

#: module (relative to the package) → the ProtoPNet-only behaviour it holds
PROTOPNET_ONLY = {
    "training/loop.py": "builds a ProtoPNet, runs its warm-up, joint, push and last-layer steps",
    "training/epoch.py": "ProtoPNet's training epoch (cluster and separation losses)",
    "training/push.py": "push: prototypes projected onto latent patches",
    "training/artifacts.py": "push artefacts (receptive-field boxes, prototype images)",
    "training/last_layer.py": "ProtoPNet's last-layer phase (signed weights, L1 on wrong classes)",
    "analysis/prune.py": "pruning by nearest patches and removal of prototypes",
    "benchmark/faithfulness.py": "its control models redraw ProtoPNet's prototype vectors",
}


def names_protopnet(tree: ast.AST) -> bool:
    """True when the module imports ``ProtoPNet`` or reads it as an attribute (``m.ProtoPNet``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "ProtoPNet" for a in node.names):
            return True
        if isinstance(node, ast.Import) and any(a.name.endswith(".ppnet") for a in node.names):
            return True
        if isinstance(node, ast.Attribute) and node.attr == "ProtoPNet":
            return True
    return False


def test_the_detector_sees_every_way_of_naming_the_class() -> None:
    for source in ("from protoexplain.models import ProtoPNet",
                   "from protoexplain.models.ppnet import ModelSpec, ProtoPNet as P",
                   "import protoexplain.models.ppnet",
                   "import protoexplain.models as m\nm.ProtoPNet"):
        assert names_protopnet(ast.parse(source)), source
    for source in ("from protoexplain.models import PrototypeModel, require_protopnet",
                   "'a ProtoPNet in a string'"):
        assert not names_protopnet(ast.parse(source)), source


def test_only_protopnet_only_modules_name_the_class() -> None:
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("models/"):
            continue
        if names_protopnet(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            found.add(relative)
    unexpected = sorted(found - set(PROTOPNET_ONLY))
    assert not unexpected, f"type these against PrototypeModel: {unexpected}"
    stale = sorted(set(PROTOPNET_ONLY) - found)
    assert not stale, f"no longer name ProtoPNet; drop them from PROTOPNET_ONLY: {stale}"
